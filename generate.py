"""Generate images with a trained generator.

    # One PNG per seed (seed0100.png ...), as in the published code.
    python generate.py --outdir=out --seeds=100-105 --network=network-snapshot.pkl

    # Truncation, a class of a conditional network, all seeds in one grid image.
    python generate.py --outdir=out --seeds=0-7,100 --trunc=0.7 --class=3 --grid --network=PATH

    # Render w's found by projector.py.
    python generate.py --outdir=out --projected-w=projected_w.npz --network=PATH

Seed s uses z = np.random.RandomState(s).randn(1, z_dim), so a seed gives the same image as
the published code. With --noise-mode=random the noise is drawn after torch.manual_seed(s)
(of the batch's first seed), so the output is reproducible too.

The rendering helpers live in training/tools.py; the click helpers and options here are shared
by the other tools (style_mixing.py, gen_video.py, attention_maps.py, projector.py).
"""

import os

import click
import numpy as np
import torch

from training import safe_load
from training.tools import (generate_images, image_grid, parse_range, save_image, seeds_to_z,  # pylint: disable=unused-import
    synthesize, to_uint8)

#----------------------------------------------------------------------------
# Helpers shared by the tools.


def click_range(ctx, param, value):
    """click callback: parse a seeds/layers option with parse_range."""
    if value is None:
        return None
    try:
        values = parse_range(value)
    except ValueError as err:
        raise click.BadParameter(str(err))
    if any(v < 0 for v in values):
        raise click.BadParameter(f'values must be >= 0, got {value}')
    return values


def default_device(device=None):
    """The requested device, else CUDA when present, else the CPU."""
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise click.UsageError('--device=cuda was asked for, but no CUDA device is available; use --device=cpu.')
    return device


def load_network(network, device, trust=False):
    """G_ema of the snapshot at `network` (path, URL or model name), with readable errors for the CLI."""
    print(f'Loading network from "{network}"...')
    try:
        return safe_load.load_generator(network, device, trust=trust)
    except (safe_load.LoadError, OSError, ValueError) as err:
        raise click.ClickException(f'Cannot load --network={network}: {err}')


def make_labels(G, class_idx, num, device):
    """Label batch [num, c_dim] for --class, with clear errors for the wrong kind of network."""
    label = torch.zeros([num, G.c_dim], device=device)
    if G.c_dim == 0:
        if class_idx is not None:
            raise click.UsageError('--class was given, but this network is unconditional (no labels); drop --class.')
        return label
    if class_idx is None:
        raise click.UsageError(f'This network is conditional with {G.c_dim} classes: pass --class=N with 0 <= N < {G.c_dim}.')
    if not 0 <= class_idx < G.c_dim:
        raise click.UsageError(f'--class={class_idx} is out of range: this network has classes 0..{G.c_dim - 1}.')
    label[:, class_idx] = 1
    return label


def load_projected_w(path, G, device):
    """w's saved by projector.py: [N, num_ws, w_dim]."""
    try:
        ws = np.load(path)['w']
    except (OSError, KeyError, ValueError) as err:
        raise click.ClickException(f'Cannot read --projected-w={path} (an .npz with array "w" is expected): {err}')
    if ws.ndim != 3 or ws.shape[1:] != (G.num_ws, G.w_dim):
        raise click.ClickException(f'--projected-w has shape {list(ws.shape)}, but this network needs '
            f'[N, {G.num_ws}, {G.w_dim}] (was it projected with another network?).')
    return torch.tensor(ws, device=device, dtype=torch.float32)

# Options shared by the tools.
network_option = click.option('--network', 'network_pkl', help='Network snapshot: path, URL or model name (docs/models.md)', required=True, metavar='PATH')
trust_option = click.option('--trust-pickle', is_flag=True, help='Load the snapshot with its own embedded code (only for files you trust)')
device_option = click.option('--device', help='torch device [default: cuda if available, else cpu]', metavar='DEVICE')
noise_option = click.option('--noise-mode', help='Noise mode', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
trunc_option = click.option('--trunc', 'truncation_psi', type=float, help='Truncation psi', default=1, show_default=True)
class_option = click.option('--class', 'class_idx', type=int, help='Class label (conditional networks only)')

#----------------------------------------------------------------------------

@click.command()
@network_option
@click.option('--seeds', callback=click_range, help='Seeds, ranges and lists (e.g. 0-7,100)')
@trunc_option
@click.option('--trunc-cutoff', 'truncation_cutoff', type=int, help='Truncate only the first N w\'s [default: all]')
@class_option
@noise_option
@click.option('--projected-w', help='Render the w\'s of this .npz (from projector.py) instead of seeds', metavar='FILE')
@click.option('--grid', is_flag=True, help='Also save all images as one grid.png in --outdir (remove it before using the folder as an image set)')
@click.option('--batch', 'batch_size', type=click.IntRange(min=1), default=1, show_default=True, help='Images per forward pass')
@click.option('--reduced-precision', is_flag=True, help='Run the snapshot\'s fp16/bf16 blocks on CUDA (faster, not bit-identical)')
@click.option('--outdir', help='Where to save the output images', required=True, metavar='DIR')
@device_option
@trust_option
def generate_images_cmd(network_pkl, seeds, truncation_psi, truncation_cutoff, class_idx, noise_mode, projected_w,
                        grid, batch_size, reduced_precision, outdir, device, trust_pickle):
    """Generate images using a pretrained network snapshot.

    \b
    python generate.py --outdir=out --seeds=100-105 --network=network-snapshot.pkl
    python generate.py --outdir=out --seeds=0-35 --grid --trunc=0.7 --network=PATH
    python generate.py --outdir=out --projected-w=projected_w.npz --network=PATH
    """
    device = default_device(device)
    if projected_w is None and seeds is None:
        raise click.UsageError('Pass --seeds (e.g. --seeds=0-7) or --projected-w.')
    G = load_network(network_pkl, device, trust_pickle)
    force_fp32 = None if reduced_precision else True  # None: reduced precision where the network allows it (CUDA).
    os.makedirs(outdir, exist_ok=True)

    if projected_w is not None:
        if seeds is not None:
            print('Note: --seeds is ignored when --projected-w is given.')
        ws = load_projected_w(projected_w, G, device)
        with torch.no_grad():
            images = np.concatenate([to_uint8(synthesize(G, w.unsqueeze(0), noise_mode, noise_seed=0, force_fp32=force_fp32)) for w in ws])
        names = [f'proj{idx:02d}.png' for idx in range(len(images))]
    else:
        label = make_labels(G, class_idx, min(batch_size, len(seeds)), device)
        images = generate_images(G, seeds, label, truncation_psi, truncation_cutoff, noise_mode, batch_size, force_fp32)
        names = [f'seed{seed:04d}.png' for seed in seeds]

    for name, image in zip(names, images):
        save_image(image, os.path.join(outdir, name))
    if grid:
        save_image(image_grid(images), os.path.join(outdir, 'grid.png'))
    print(f'Saved {len(images)} image(s) to {outdir}' + (' and grid.png' if grid else ''))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    generate_images_cmd()  # pylint: disable=no-value-for-parameter
