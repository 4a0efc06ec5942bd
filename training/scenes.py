"""Rendered multi-object scenes: a compositional colour dataset that needs no download
(`dataset_tool.py --source=scenes`), for tests, benchmarks and CPU experiments with
Styleformer-C.

Each image is a shaded floor-and-wall background with 2 to 5 overlapping objects (spheres,
cubes and pyramids) of random colour, size and position, each with a soft shadow, drawn back
to front (objects lower in the image are nearer and cover those behind). Image `index` of a
seed depends on (seed, index) only, so any subset renders the same on every machine; pure
numpy and Pillow, supersampled 2x and box-filtered for smooth edges.
"""

import numpy as np
import PIL.Image

SHAPES = ('sphere', 'cube', 'pyramid')
COLORS = np.array([       # CLEVR's eight colours.
    [87, 87, 87], [173, 35, 35], [42, 75, 215], [29, 105, 20],
    [129, 74, 25], [129, 38, 192], [41, 208, 208], [255, 238, 51]], dtype=np.float32) / 255
LIGHT = np.array([-0.5, -0.6, 0.62], dtype=np.float32) / np.linalg.norm([-0.5, -0.6, 0.62])

#----------------------------------------------------------------------------

def render_scene(seed, index, resolution):
    """Image `index` of the scenes of `seed`: uint8 [resolution, resolution, 3]."""
    rng = np.random.default_rng([seed, index])
    size = 2 * resolution # Supersampled.
    y, x = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    image = _background(rng, y)
    objects = [dict(shape=SHAPES[rng.integers(len(SHAPES))], color=COLORS[rng.integers(len(COLORS))] * rng.uniform(0.85, 1.15),
                    radius=rng.uniform(0.07, 0.16), cx=rng.uniform(0.12, 0.88), cy=rng.uniform(0.4, 0.85))
               for _ in range(rng.integers(2, 6))]
    for obj in sorted(objects, key=lambda o: o['cy'] + o['radius']): # Far (higher in the image) first.
        _draw_shadow(image, x, y, obj)
        mask, shade = _shape_mask_and_shade(obj['shape'], (x - obj['cx']) / obj['radius'], (y - obj['cy']) / obj['radius'])
        image[mask] = np.clip(obj['color'] * shade[mask, None] + _specular(obj, x, y)[mask, None], 0, 1)
    pixels = np.rint(image * 255).astype(np.uint8)
    return np.asarray(PIL.Image.fromarray(pixels).resize((resolution, resolution), PIL.Image.Resampling.BOX))


def _background(rng, y):
    """A wall above a floor: two tinted grey gradients meeting at a random horizon."""
    wall = rng.uniform(0.55, 0.8) * (1 + rng.uniform(-0.08, 0.08, 3))
    floor = rng.uniform(0.35, 0.6) * (1 + rng.uniform(-0.08, 0.08, 3))
    horizon = rng.uniform(0.3, 0.45)
    t = y[..., None]
    return np.where(t < horizon, wall * (0.85 + 0.15 * t / horizon), floor * (0.75 + 0.35 * (t - horizon))).astype(np.float32)


def _draw_shadow(image, x, y, obj):
    r = obj['radius']
    d = ((x - obj['cx'] - 0.35 * r) / (1.2 * r)) ** 2 + ((y - obj['cy'] - 0.85 * r) / (0.45 * r)) ** 2
    image *= (1 - 0.35 * np.clip(1 - d, 0, 1))[..., None]


def _shape_mask_and_shade(shape, u, v):
    """Inside-mask and brightness of a shape in coordinates scaled by its radius (u right, v down)."""
    if shape == 'sphere':
        d2 = u ** 2 + v ** 2
        nz = np.sqrt(np.clip(1 - d2, 0, 1))
        return d2 < 1, 0.25 + 0.75 * np.clip(u * LIGHT[0] + v * LIGHT[1] + nz * LIGHT[2], 0, 1)
    if shape == 'cube': # Front face, with a lighter top face above it.
        mask = (np.abs(u) < 0.85) & (v > -1) & (v < 0.85)
        top = v < -0.45
        return mask, np.where(top, 1.0, 0.75 - 0.2 * (u + 0.85) / 1.7)
    mask = (v < 0.85) & (np.abs(u) < (v + 1) / 1.85) # Pyramid: apex at the top, lit left face.
    return mask, np.where(u < 0, 0.95, 0.6) - 0.1 * (v + 1) / 1.85


def _specular(obj, x, y):
    if obj['shape'] != 'sphere':
        return np.zeros_like(x)
    r = obj['radius']
    d2 = ((x - obj['cx'] + 0.35 * r) ** 2 + (y - obj['cy'] + 0.4 * r) ** 2) / (0.3 * r) ** 2
    return 0.5 * np.exp(-d2)

#----------------------------------------------------------------------------
