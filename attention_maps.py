"""Where does a pixel look? Attention maps of the Styleformer generator, overlaid on the image.

    python attention_maps.py --outdir=out --seed=42 --network=PATH
    python attention_maps.py --outdir=out --seed=42 --layers=b16_0,b32_1 --heads=0,1 --query=10,20 --network=PATH

For the chosen query pixel (x,y in output-image coordinates, default: the centre) each row of
the output shows one encoder block, labelled at its left with the block name and the heads
shown: the generated image with the query marked, then the attention of that pixel's token
over all tokens of the block, per chosen head in the order given (or averaged over heads
with --heads=mean), upsampled and overlaid as a heat map. With Linformer the keys
are projected tokens; the map then shows the effective weight of each original token
(attention @ projection), so it may contain negative values; it is min-max scaled.
Writes seed{seed:04d}-attention.png.
"""

import os

import click
import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch

from tools import cli
from tools.attention_overlay import overlay, query_token_weights
from tools.rendering import seeds_to_z, synthesize
from training.images import image_grid, save_image, to_uint8

#----------------------------------------------------------------------------

def mark_query(image, query_xy, radius=2):
    """Red square outline around the query pixel."""
    marked = np.repeat(image, 3, axis=2).copy() if image.shape[2] == 1 else image.copy()
    x, y = query_xy
    h, w = marked.shape[:2]
    x0, x1, y0, y1 = max(x - radius, 0), min(x + radius, w - 1), max(y - radius, 0), min(y + radius, h - 1)
    marked[y0:y1 + 1, [x0, x1]] = [255, 0, 0]
    marked[[y0, y1], x0:x1 + 1] = [255, 0, 0]
    return marked


def label_rows(figure, labels, pad=4):
    """Prepend a white strip to a uint8 RGB figure of equal-height rows, with each row's label
    written in black (PIL's default font) at the top left of its row."""
    measure = PIL.ImageDraw.Draw(PIL.Image.new('RGB', (1, 1)))
    width = max(measure.multiline_textbbox((0, 0), text)[2] for text in labels) + 2 * pad
    strip = PIL.Image.new('RGB', (width, figure.shape[0]), 'white')
    draw = PIL.ImageDraw.Draw(strip)
    row_height = figure.shape[0] // len(labels)
    for i, text in enumerate(labels):
        draw.multiline_text((pad, i * row_height + pad), text, fill='black')
    return np.concatenate([np.asarray(strip), figure], axis=1)


def attention_figure(G, seed, label, layers=None, heads='mean', query_xy=None, truncation_psi=1, noise_mode='const', alpha=0.6, zoom=1):
    """uint8 figure: one row per block: [label, image with query marker, overlay per head]."""
    if not hasattr(G.synthesis, 'block_names'):
        raise ValueError('This network has no attention layers (attention maps need a Styleformer generator).')
    names = list(G.synthesis.block_names)
    layers = names if layers is None else layers
    unknown = [name for name in layers if name not in names]
    if unknown:
        raise ValueError(f'Unknown layer(s) {unknown}; this network has {names}.')
    query_xy = query_xy or (G.img_resolution // 2, G.img_resolution // 2)
    if not all(0 <= v < G.img_resolution for v in query_xy):
        raise ValueError(f'--query={query_xy} lies outside the {G.img_resolution}x{G.img_resolution} image.')

    with torch.no_grad():
        ws = G.mapping(seeds_to_z([seed], G.z_dim, label.device), label, truncation_psi=truncation_psi)
        img, maps = synthesize(G, ws, noise_mode, noise_seed=seed, return_attention=True)
    image = to_uint8(img)[0]
    if zoom > 1:
        image = np.kron(image, np.ones([zoom, zoom, 1], dtype=np.uint8))
    marked = mark_query(image, [v * zoom + zoom // 2 for v in query_xy], radius=max(2, zoom))

    rows = []
    for name in layers:
        block = G.synthesis.get_submodule(name)  # Dotted in Styleformer-C: transformer.b8_0.
        weights = query_token_weights(block, maps[names.index(name)][0].float(), query_xy, G.img_resolution).cpu().numpy()
        if heads == 'mean':
            panels = [weights.mean(axis=0)]
        else:
            bad = [h for h in heads if h >= weights.shape[0]]
            if bad:
                raise ValueError(f'Head(s) {bad} do not exist in {name}, which has {weights.shape[0]} heads.')
            panels = [weights[h] for h in heads]
        rows.append([marked] + [overlay(image, p, alpha) for p in panels])
    cols = max(len(row) for row in rows)
    cells = [cell for row in rows for cell in row + [np.zeros_like(marked)] * (cols - len(row))]
    heads_text = 'heads: mean' if heads == 'mean' else 'heads: ' + ','.join(str(h) for h in heads)
    return label_rows(image_grid(np.stack(cells), cols=cols), [f'{name}\n{heads_text}' for name in layers])


def parse_heads(text):
    if text == 'mean':
        return 'mean'
    try:
        heads = [int(h) for h in text.split(',')]
    except ValueError:
        raise click.BadParameter(f'--heads must be "mean" or a list like 0,1,2; got {text!r}')
    if any(h < 0 for h in heads):
        raise click.BadParameter('head indices must be >= 0')
    return heads


def parse_query(text):
    if text is None:
        return None
    try:
        x, y = (int(v) for v in text.split(','))
    except ValueError:
        raise click.BadParameter(f'--query must be x,y pixel coordinates, got {text!r}')
    return x, y

#----------------------------------------------------------------------------

@click.command(cls=cli.Command)
@cli.network_option()
@click.option('--seed', type=int, default=0, show_default=True, help='Seed of the image')
@click.option('--layers', help='Blocks to show, e.g. b8_0,b16_1 (Styleformer-C: transformer.b8_0) [default: all]')
@click.option('--heads', default='mean', show_default=True, help='"mean" or head indices, e.g. 0,1')
@click.option('--query', help='Query pixel x,y in image coordinates [default: centre]')
@click.option('--alpha', type=click.FloatRange(0, 1), default=0.6, show_default=True, help='Opacity of the heat map')
@click.option('--zoom', type=click.IntRange(min=1), help='Integer upscaling of the panels [default: to >= 256 pixels]')
@cli.trunc_option
@cli.class_option
@cli.noise_option
@click.option('--outdir', help='Where to save the figure', required=True, metavar='DIR')
@cli.device_option
@cli.trust_option
def attention_maps_cmd(network_pkl, seed, layers, heads, query, alpha, zoom, truncation_psi, class_idx, noise_mode, outdir, device, trust_pickle):
    """Visualise the attention of a query pixel in each encoder block."""
    heads, query_xy = parse_heads(heads), parse_query(query)
    G = cli.load_network(network_pkl, device, trust_pickle)
    label = cli.make_labels(G, class_idx, 1, device)
    zoom = zoom or max(1, 256 // G.img_resolution)
    layers = [name.strip() for name in layers.split(',')] if layers else None
    figure = attention_figure(G, seed, label, layers, heads, query_xy, truncation_psi, noise_mode, alpha, zoom)
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, f'seed{seed:04d}-attention.png')
    save_image(figure, path)
    print(f'Saved {path}')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    attention_maps_cmd()  # pylint: disable=no-value-for-parameter
