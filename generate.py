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

The rendering helpers live in tools/rendering.py, the image conversion in training/images.py
and the options shared with the other tools in tools/cli.py.
"""

import os

import click
import numpy as np
import torch

from tools import cli
from tools.rendering import generate_images, load_projected_w, synthesize
from training.images import image_grid, save_image, to_uint8

#----------------------------------------------------------------------------

@click.command(cls=cli.Command)
@cli.network_option()
@click.option('--seeds', callback=cli.parse_range, help='Seeds, ranges and lists (e.g. 0-7,100)')
@cli.trunc_option
@click.option('--trunc-cutoff', 'truncation_cutoff', type=int, help='Truncate only the first N w\'s [default: all]')
@cli.class_option
@cli.noise_option
@click.option('--projected-w', help='Render the w\'s of this .npz (from projector.py) instead of seeds', metavar='FILE')
@click.option('--grid', is_flag=True, help='Also save all images as one grid.png in --outdir (remove it before using the folder as an image set)')
@click.option('--batch', 'batch_size', type=click.IntRange(min=1), default=1, show_default=True, help='Images per forward pass')
@click.option('--reduced-precision', is_flag=True, help='Run the snapshot\'s fp16/bf16 blocks on CUDA (faster, not bit-identical)')
@click.option('--outdir', help='Where to save the output images', required=True, metavar='DIR')
@cli.device_option
@cli.trust_option
def generate_images_cmd(network_pkl, seeds, truncation_psi, truncation_cutoff, class_idx, noise_mode, projected_w,
                        grid, batch_size, reduced_precision, outdir, device, trust_pickle):
    """Generate images using a pretrained network snapshot.

    \b
    python generate.py --outdir=out --seeds=100-105 --network=network-snapshot.pkl
    python generate.py --outdir=out --seeds=0-35 --grid --trunc=0.7 --network=PATH
    python generate.py --outdir=out --projected-w=projected_w.npz --network=PATH
    """
    if projected_w is None and seeds is None:
        raise click.UsageError('Pass --seeds (e.g. --seeds=0-7) or --projected-w.')
    G = cli.load_network(network_pkl, device, trust_pickle)
    os.makedirs(outdir, exist_ok=True)

    if projected_w is not None:
        if seeds is not None:
            print('Note: --seeds is ignored when --projected-w is given.')
        with cli.input_errors('--projected-w'):
            ws = load_projected_w(projected_w, G, device)
        with torch.no_grad():
            images = np.concatenate([to_uint8(synthesize(G, w.unsqueeze(0), noise_mode, noise_seed=0, full_precision=not reduced_precision)) for w in ws])
        names = [f'proj{idx:02d}.png' for idx in range(len(images))]
    else:
        label = cli.make_labels(G, class_idx, min(batch_size, len(seeds)), device)
        images = generate_images(G, seeds, label, truncation_psi, truncation_cutoff, noise_mode, batch_size, not reduced_precision)
        names = [f'seed{seed:04d}.png' for seed in seeds]

    for name, image in zip(names, images):
        save_image(image, os.path.join(outdir, name))
    if grid:
        save_image(image_grid(images), os.path.join(outdir, 'grid.png'))
    print(f'Saved {len(images)} image(s) to {outdir}' + (' and grid.png' if grid else ''))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    generate_images_cmd()  # pylint: disable=no-value-for-parameter
