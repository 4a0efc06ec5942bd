"""Rendering for the command-line tools (generate, style mixing, video, attention maps,
projector) and the explorer: seeds to latents, class labels, projected w's, and images from a
generator. They raise ordinary exceptions (ValueError, OSError); tools/cli.py turns them into
click errors for the command lines."""

import zipfile

import numpy as np
import torch
from tqdm import tqdm

from training.images import to_uint8

#----------------------------------------------------------------------------

def seeds_to_z(seeds, z_dim, device):
    """z [len(seeds), z_dim], one RandomState per seed (the published convention)."""
    return torch.from_numpy(np.concatenate([np.random.RandomState(seed).randn(1, z_dim) for seed in seeds])).to(device)


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
