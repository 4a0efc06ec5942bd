"""Latent interpolation videos (mp4 through imageio-ffmpeg).

    # One interpolation through seeds 0..7 and back to 0, 60 frames per transition.
    python gen_video.py --output=lerp.mp4 --seeds=0-7 --network=PATH

    # A 2x2 grid of interpolations (each cell takes every 4th seed), in z space, not looping.
    python gen_video.py --output=grid.mp4 --seeds=0-15 --grid=2x2 --space=z --no-loop --network=PATH

    # Through projected images (projector.py's projected_w.npz), after seed 5.
    python gen_video.py --output=proj.mp4 --seeds=5 --projected-w=a/projected_w.npz --projected-w=b/projected_w.npz --network=PATH

In w space the w's are interpolated linearly; in z space the z's are interpolated along the
great circle (slerp), which keeps their norm typical of Gaussian samples. Keyframes are the
seeds first, then the w's of each --projected-w file in the order given (w space only; the
truncation applies to the seeds).
"""

import os
import re

import click
import imageio
import numpy as np
import torch
from tqdm import tqdm

from tools import cli
from tools.rendering import load_projected_w, seeds_to_z, synthesize
from training.images import image_grid, to_uint8

#----------------------------------------------------------------------------

def slerp(a, b, t):
    """Spherical interpolation between the rows of a and b (falls back to lerp when they are parallel)."""
    a_unit = a / a.norm(dim=-1, keepdim=True)
    b_unit = b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_unit * b_unit).sum(dim=-1, keepdim=True).clamp(-1, 1))
    sin_omega = torch.sin(omega)
    safe = sin_omega.abs() > 1e-6
    wa = torch.where(safe, torch.sin((1 - t) * omega) / sin_omega.where(safe, torch.ones_like(sin_omega)), torch.full_like(omega, 1 - t))
    wb = torch.where(safe, torch.sin(t * omega) / sin_omega.where(safe, torch.ones_like(sin_omega)), torch.full_like(omega, t))
    return wa * a + wb * b


def interpolation_latents(keys, frames_per_transition, loop, space):
    """keys [cells, K, ...] -> per-frame latents [frames, cells, ...] passing through every key."""
    num_keys = keys.shape[1]
    num_transitions = num_keys if loop else num_keys - 1
    frames = []
    for frame in range(num_transitions * frames_per_transition + (0 if loop else 1)):
        idx, t = divmod(frame, frames_per_transition)
        t = t / frames_per_transition
        a, b = keys[:, idx % num_keys], keys[:, (idx + 1) % num_keys]
        frames.append(slerp(a, b, t) if space == 'z' else a.lerp(b, t))
    return torch.stack(frames)


def parse_grid(text):
    match = re.fullmatch(r'(\d+)x(\d+)', text or '')
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise click.BadParameter(f'--grid must look like 2x2 (columns x rows), got {text!r}')
    return int(match.group(1)), int(match.group(2))


def keyframes(G, seeds, projected_ws, label, cells, space, truncation_psi):
    """Keyframe latents [cells, K, ...] (z's or w's): the seeds', then the projected w's
    [N, num_ws, w_dim]; dealt to the cells in turn, so each cell takes every cells-th key."""
    num_keys = len(seeds) + len(projected_ws)
    if num_keys % cells != 0 or num_keys // cells < 2:
        raise click.UsageError(f'--seeds and --projected-w must give at least 2 keyframes per grid cell, and a multiple of '
            f'the {cells} cells; got {num_keys} keyframes.')
    if len(projected_ws) and space == 'z':
        raise click.UsageError('--projected-w gives w\'s, which have no z: use --space=w')
    if space == 'z':
        keys = seeds_to_z(seeds, G.z_dim, label.device)
    elif seeds:
        with torch.no_grad():
            keys = G.mapping(seeds_to_z(seeds, G.z_dim, label.device), label.expand(len(seeds), -1), truncation_psi=truncation_psi)
        keys = torch.cat([keys, projected_ws.to(keys)])
    else:
        keys = projected_ws
    return keys.reshape(num_keys // cells, cells, *keys.shape[1:]).transpose(0, 1)


def render_video(G, seeds, label, output, grid_w=1, grid_h=1, frames_per_transition=60, loop=True, space='w',
                 truncation_psi=1, noise_mode='const', fps=30, batch_size=8, projected_ws=None):
    """Write the interpolation video through the keyframes to `output`; returns the number of frames."""
    cells = grid_w * grid_h
    if projected_ws is None:
        projected_ws = torch.zeros([0, G.num_ws, G.w_dim], device=label.device)
    keys = keyframes(G, seeds, projected_ws, label, cells, space, truncation_psi)
    latents = interpolation_latents(keys, frames_per_transition, loop, space).flatten(0, 1)  # [frames * cells, ...]

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    writer = imageio.get_writer(output, mode='I', fps=fps, codec='libx264', macro_block_size=1)
    images = []
    try:
        for start in tqdm(range(0, len(latents), batch_size), desc='Rendering', unit='batch'):
            batch = latents[start:start + batch_size]
            with torch.no_grad():
                ws = batch if space == 'w' else G.mapping(batch, label.expand(len(batch), -1), truncation_psi=truncation_psi)
                images.extend(to_uint8(synthesize(G, ws, noise_mode, noise_seed=0)))
            while len(images) >= cells:
                frame = image_grid(np.stack(images[:cells]), cols=grid_w)
                writer.append_data(np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame)
                images = images[cells:]
    finally:
        writer.close()
    return len(latents) // cells

#----------------------------------------------------------------------------

@click.command(cls=cli.Command)
@cli.network_option()
@click.option('--seeds', callback=cli.parse_range, help='Keyframe seeds, e.g. 0-7')
@click.option('--projected-w', 'projected_w_files', multiple=True, help='Keyframes from a projected_w.npz (projector.py); repeatable', metavar='FILE')
@click.option('--grid', default='1x1', show_default=True, help='Grid of interpolations, columns x rows')
@click.option('--w-frames', 'frames_per_transition', type=click.IntRange(min=1), default=60, show_default=True, help='Frames per transition')
@click.option('--loop/--no-loop', default=True, show_default=True, help='Return to the first seed at the end')
@click.option('--space', type=click.Choice(['w', 'z']), default='w', show_default=True, help='Interpolate in W (linear) or Z (slerp)')
@cli.trunc_option
@cli.class_option
@cli.noise_option
@click.option('--fps', type=click.IntRange(min=1), default=30, show_default=True, help='Frames per second')
@click.option('--batch', 'batch_size', type=click.IntRange(min=1), default=8, show_default=True, help='Images per forward pass')
@click.option('--output', help='Output .mp4 file', required=True, metavar='FILE')
@cli.device_option
@cli.trust_option
def generate_video_cmd(network_pkl, seeds, projected_w_files, grid, frames_per_transition, loop, space, truncation_psi, class_idx,
                       noise_mode, fps, batch_size, output, device, trust_pickle):
    """Render a latent interpolation video through seeds and projected images."""
    if seeds is None and not projected_w_files:
        raise click.UsageError('Pass --seeds (e.g. --seeds=0-7), --projected-w, or both.')
    grid_w, grid_h = parse_grid(grid)
    G = cli.load_network(network_pkl, device, trust_pickle)
    label = cli.make_labels(G, class_idx, 1, device)
    with cli.input_errors('--projected-w'):
        projected_ws = torch.cat([load_projected_w(path, G, device) for path in projected_w_files]) if projected_w_files else None
    num_frames = render_video(G, seeds or [], label, output, grid_w, grid_h, frames_per_transition, loop, space,
        truncation_psi, noise_mode, fps, batch_size, projected_ws)
    print(f'Saved {output} ({num_frames} frames)')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    generate_video_cmd()  # pylint: disable=no-value-for-parameter
