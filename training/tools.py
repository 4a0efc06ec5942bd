"""Helpers shared by the command-line tools (generate, style mixing, video, attention maps,
projector) and the training loop's image grids: seed and range parsing, devices, labels,
latents, rendering, uint8 images and grids. They raise ordinary exceptions (ValueError,
OSError); training/cli.py turns them into click errors for the command lines."""

import re
import zipfile

import numpy as np
import PIL.Image
import torch
from tqdm import tqdm

#----------------------------------------------------------------------------

def parse_range(text, max_count):
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]; ValueError, before anything is expanded, when
    it would hold more than `max_count` values."""
    if isinstance(text, list):
        return text
    ranges = []
    for part in str(text).split(','):
        part = part.strip()
        match = re.fullmatch(r'(-?\d{1,18})(?:-(-?\d{1,18}))?', part)
        if match is None:
            raise ValueError(f'{_shown(part)} is not a number or a range like 0-7 (in {_shown(str(text))})')
        lo, hi = int(match.group(1)), int(match.group(2) if match.group(2) is not None else match.group(1))
        if hi < lo:
            raise ValueError(f'Range {_shown(part)} runs backwards; write it as {hi}-{lo}')
        ranges.append((lo, hi))
    count = sum(hi - lo + 1 for lo, hi in ranges)
    if count > max_count:
        raise ValueError(f'{_shown(str(text))} holds {count} values; at most {max_count} are allowed here')
    return [value for lo, hi in ranges for value in range(lo, hi + 1)]


def _shown(text):
    return repr(text[:40]) + ('...' if len(text) > 40 else '')  # Escaped and short: it may come from a web request.


def seeds_to_z(seeds, z_dim, device):
    """z [len(seeds), z_dim], one RandomState per seed (the published convention)."""
    return torch.from_numpy(np.concatenate([np.random.RandomState(seed).randn(1, z_dim) for seed in seeds])).to(device)


def default_device(device=None):
    """torch.device of the name given, else CUDA when present, else the CPU."""
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f'Unknown device {device!r}; use cpu, cuda or cuda:N.') from None
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError('CUDA was asked for, but no CUDA device is available; use the cpu.')
    return device


def make_labels(G, class_idx, num, device):
    """One-hot labels [num, c_dim] of class `class_idx` (None for an unconditional network)."""
    label = torch.zeros([num, G.c_dim], device=device)
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError('a class was given, but this network is unconditional (no labels); drop it.')
        return label
    if class_idx is None:
        raise ValueError(f'this network is conditional with {G.c_dim} classes: pick a class N with 0 <= N < {G.c_dim}.')
    if not 0 <= class_idx < G.c_dim:
        raise ValueError(f'class {class_idx} is out of range: this network has classes 0..{G.c_dim - 1}.')
    label[:, class_idx] = 1
    return label


MAX_PROJECTED_WS = 1000  # w's in one projected_w.npz (projector.py writes one).


def load_projected_w(path, G, device):
    """w's saved by projector.py (an .npz with array 'w' [N, num_ws, w_dim]) for the network G."""
    try:
        npz = np.load(path)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError('it holds a single array (.npy)')
        with npz:
            # The stored size is checked before the array is inflated from the zip.
            max_bytes = MAX_PROJECTED_WS * G.num_ws * G.w_dim * 8 + 4096
            if npz.zip.getinfo('w.npy').file_size > max_bytes:
                raise ValueError(f'its array "w" is larger than {MAX_PROJECTED_WS} w\'s of this network')
            ws = npz['w']
    except (KeyError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f'{path} is not an .npz with an array "w" (as projector.py writes): {err}') from None
    if ws.ndim != 3 or ws.shape[1:] != (G.num_ws, G.w_dim) or ws.dtype.kind != 'f':
        raise ValueError(f'{path} holds w\'s of shape {list(ws.shape)} ({ws.dtype}), but this network needs floats of '
            f'shape [N, {G.num_ws}, {G.w_dim}] (was it projected with another network?).')
    return torch.tensor(ws, device=device, dtype=torch.float32)


def quantize(img, drange=(-1, 1)):
    """Float images with values in drange -> uint8 tensor of the same shape: scaled to [0, 255],
    rounded half up and clamped (the published conversion, bit for bit, for drange (-1, 1))."""
    lo, hi = drange
    scale = 255 / (hi - lo)
    return (torch.as_tensor(img).to(torch.float32) * scale + (0.5 - lo * scale)).clamp(0, 255).to(torch.uint8)


def to_uint8(img, drange=(-1, 1)):
    """Images [N, C, H, W] (generator output by default) -> uint8 numpy [N, H, W, C]."""
    return quantize(torch.as_tensor(img).permute(0, 2, 3, 1), drange).cpu().numpy()


def save_image(array, path):
    """Save a uint8 [H, W, C] array with C = 1 (grayscale) or 3 (RGB) as PNG to a path or binary file object."""
    if array.shape[2] == 1:
        PIL.Image.fromarray(array[:, :, 0], 'L').save(path, format='PNG')
    elif array.shape[2] == 3:
        PIL.Image.fromarray(array, 'RGB').save(path, format='PNG')
    else:
        raise ValueError(f'Cannot save an image with {array.shape[2]} channels as PNG (1 or 3 needed).')


def image_grid(images, cols=None):
    """uint8 images [N, H, W, C] -> one [rows*H, cols*W, C] image, filled row by row (black padding)."""
    n, h, w, c = images.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = (n + cols - 1) // cols
    grid = np.zeros([rows * h, cols * w, c], dtype=np.uint8)
    for i, image in enumerate(images):
        grid[(i // cols) * h:(i // cols + 1) * h, (i % cols) * w:(i % cols + 1) * w] = image
    return grid


def save_image_grid(images, path, drange, grid_size):
    """Save images [gw * gh, C, H, W] with values in drange as one PNG of gw columns and gh rows
    (the training loop's reals.png and fakes*.png)."""
    gw, gh = grid_size
    if len(images) != gw * gh:
        raise ValueError(f'A {gw}x{gh} grid needs {gw * gh} images, got {len(images)}.')
    save_image(image_grid(to_uint8(images, drange), cols=gw), path)


def synthesize(G, ws, noise_mode, noise_seed=None, full_precision=True, return_attention=False):
    """G.synthesis with reproducible random noise (torch RNG seeded by noise_seed when given).
    float32 by default: the published Styleformer generator always ran in float32, so its images
    are reproduced; full_precision=False runs the snapshot's reduced-precision blocks on CUDA.
    The published keyword force_fp32 is used, so networks loaded with their own code take it too.
    return_attention=True also returns the attention maps (see SynthesisNetwork.forward)."""
    if noise_mode == 'random' and noise_seed is not None:
        torch.manual_seed(noise_seed)
    kwargs = dict(force_fp32=True) if full_precision else {}
    if return_attention:  # Only when asked: StyleGAN2 generators have no such argument.
        kwargs['return_attention'] = True
    return G.synthesis(ws, noise_mode=noise_mode, **kwargs)


def generate_images(G, seeds, label, truncation_psi=1, truncation_cutoff=None, noise_mode='const', batch_size=1, full_precision=True):
    """uint8 images [len(seeds), H, W, C] for the seeds, `batch_size` at a time."""
    device = label.device
    images = []
    for start in tqdm(range(0, len(seeds), batch_size), desc='Generating', unit='batch', disable=len(seeds) <= batch_size):
        batch = seeds[start:start + batch_size]
        z = seeds_to_z(batch, G.z_dim, device)
        with torch.no_grad():
            ws = G.mapping(z, label[:len(batch)], truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
            images.append(to_uint8(synthesize(G, ws, noise_mode, noise_seed=batch[0], full_precision=full_precision)))
    return np.concatenate(images)
