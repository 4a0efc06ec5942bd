"""Style mixing grid: the w's of row seeds with some layers taken from column seeds.

    python style_mixing.py --outdir=out --rows=85,100,75 --cols=55,821,1789 --network=PATH
    python style_mixing.py --outdir=out --rows=0-3 --cols=10-13 --styles=4-7 --network=PATH

The top row shows the column seeds and the left column the row seeds; cell (r, c) is row
seed r with the w's of the layers in --styles replaced by those of column seed c (low layers:
coarse layout, high layers: colors and fine detail). Writes grid.png and one PNG per cell.
"""

import os

import click
import numpy as np
import torch

from tools import cli
from tools.rendering import seeds_to_z, synthesize
from training.images import image_grid, save_image, to_uint8

#----------------------------------------------------------------------------

def style_mixing_grid(G, row_seeds, col_seeds, styles, label, truncation_psi=1, noise_mode='const'):
    """uint8 grid image [(rows+1)*H, (cols+1)*W, C] with the seeds' own images along the top and left."""
    if not styles or max(styles) >= G.num_ws:
        raise ValueError(f'--styles must name w indices in 0..{G.num_ws - 1} (this network has num_ws={G.num_ws}).')
    seeds = list(dict.fromkeys(row_seeds + col_seeds))
    with torch.no_grad():
        ws = G.mapping(seeds_to_z(seeds, G.z_dim, label.device), label.expand(len(seeds), -1), truncation_psi=truncation_psi)
        w_of = dict(zip(seeds, ws))
        own = dict(zip(seeds, to_uint8(synthesize(G, ws, noise_mode, noise_seed=0))))
        mixed = []
        for row_seed in row_seeds:
            w = w_of[row_seed].unsqueeze(0).repeat([len(col_seeds), 1, 1])
            w[:, styles] = torch.stack([w_of[col_seed][styles] for col_seed in col_seeds])
            mixed.append(to_uint8(synthesize(G, w, noise_mode, noise_seed=0)))

    blank = np.zeros_like(own[seeds[0]])
    cells = [blank] + [own[s] for s in col_seeds]
    for row_seed, row_images in zip(row_seeds, mixed):
        cells += [own[row_seed]] + list(row_images)
    return image_grid(np.stack(cells), cols=len(col_seeds) + 1), mixed

#----------------------------------------------------------------------------

@click.command(cls=cli.Command)
@cli.network_option()
@click.option('--rows', 'row_seeds', callback=cli.parse_range, help='Seeds of the rows, e.g. 0-3,10', required=True)
@click.option('--cols', 'col_seeds', callback=cli.parse_range, help='Seeds of the columns', required=True)
@click.option('--styles', 'col_styles', callback=cli.parse_range, help='w indices taken from the column seeds [default: first half]')
@cli.trunc_option
@cli.class_option
@cli.noise_option
@click.option('--outdir', help='Where to save the output images', required=True, metavar='DIR')
@cli.device_option
@cli.trust_option
def style_mixing_cmd(network_pkl, row_seeds, col_seeds, col_styles, truncation_psi, class_idx, noise_mode, outdir, device, trust_pickle):
    """Generate a style mixing grid, as in the paper's teaser."""
    G = cli.load_network(network_pkl, device, trust_pickle)
    if col_styles is None:
        col_styles = list(range(max(1, G.num_ws // 2)))
    label = cli.make_labels(G, class_idx, 1, device)
    grid, mixed = style_mixing_grid(G, row_seeds, col_seeds, col_styles, label, truncation_psi, noise_mode)
    os.makedirs(outdir, exist_ok=True)
    for row_seed, row_images in zip(row_seeds, mixed):
        for col_seed, image in zip(col_seeds, row_images):
            save_image(image, os.path.join(outdir, f'{row_seed}-{col_seed}.png'))
    save_image(grid, os.path.join(outdir, 'grid.png'))
    print(f'Saved {outdir}/grid.png (styles {col_styles} from the column seeds)')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    style_mixing_cmd()  # pylint: disable=no-value-for-parameter
