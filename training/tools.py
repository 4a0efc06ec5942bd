"""Helpers shared by the command-line tools (generate, style mixing, video, attention maps,
projector, explorer): seed and range parsing, latents, rendering, uint8 images and grids.
They raise ordinary exceptions; the CLIs turn them into their own error messages."""

import re

import numpy as np
import PIL.Image
import torch
from tqdm import tqdm

#----------------------------------------------------------------------------

def parse_range(text):
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]."""
    if isinstance(text, list):
        return text
    values = []
    for part in str(text).split(','):
        part = part.strip()
        match = re.fullmatch(r'(-?\d+)(?:-(-?\d+))?', part)
        if match is None:
            raise ValueError(f'"{part}" is not a number or a range like 0-7 (in "{text}")')
        lo, hi = int(match.group(1)), int(match.group(2) if match.group(2) is not None else match.group(1))
        if hi < lo:
            raise ValueError(f'Range "{part}" runs backwards; write it as {hi}-{lo}')
        values.extend(range(lo, hi + 1))
    return values


def seeds_to_z(seeds, z_dim, device):
    """z [len(seeds), z_dim], one RandomState per seed (the published convention)."""
    return torch.from_numpy(np.concatenate([np.random.RandomState(seed).randn(1, z_dim) for seed in seeds])).to(device)


def to_uint8(img):
    """Generator output [N, C, H, W] in about [-1, 1] -> uint8 numpy [N, H, W, C] (the published conversion)."""
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def save_image(array, path):
    """Save a uint8 [H, W, C] array with C = 1 (grayscale) or 3 (RGB) as PNG."""
    if array.shape[2] == 1:
        PIL.Image.fromarray(array[:, :, 0], 'L').save(path)
    elif array.shape[2] == 3:
        PIL.Image.fromarray(array, 'RGB').save(path)
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


def synthesize(G, ws, noise_mode, noise_seed=None, force_fp32=True, return_attention=False):
    """G.synthesis with reproducible random noise (torch RNG seeded by noise_seed when given).
    float32 by default: the published Styleformer generator always ran in float32, so its images
    are reproduced; force_fp32=None uses the snapshot's reduced-precision blocks on CUDA.
    return_attention=True also returns the attention maps (see SynthesisNetwork.forward)."""
    if noise_mode == 'random' and noise_seed is not None:
        torch.manual_seed(noise_seed)
    if return_attention:
        return G.synthesis(ws, noise_mode=noise_mode, force_fp32=force_fp32, return_attention=True)
    return G.synthesis(ws, noise_mode=noise_mode, force_fp32=force_fp32)


def generate_images(G, seeds, label, truncation_psi=1, truncation_cutoff=None, noise_mode='const', batch_size=1, force_fp32=True):
    """uint8 images [len(seeds), H, W, C] for the seeds, `batch_size` at a time."""
    device = label.device
    images = []
    for start in tqdm(range(0, len(seeds), batch_size), desc='Generating', unit='batch', disable=len(seeds) <= batch_size):
        batch = seeds[start:start + batch_size]
        z = seeds_to_z(batch, G.z_dim, device)
        with torch.no_grad():
            ws = G.mapping(z, label[:len(batch)], truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
            images.append(to_uint8(synthesize(G, ws, noise_mode, noise_seed=batch[0], force_fp32=force_fp32)))
    return np.concatenate(images)
