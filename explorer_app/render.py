"""What the explorer shows, computed with the same helpers and conventions as the command-line
tools, so that a view can be reproduced exactly with them:

- seed, truncation, class, noise mode: `generate.py --seeds=SEED --trunc=PSI --class=C --noise-mode=M`
  (random noise is drawn after torch.manual_seed(SEED));
- style mixing: `style_mixing.py --rows=SEED --cols=MIX_SEED --styles=LO-HI`, image SEED-MIX_SEED.png
  (w's of the layers LO..HI taken from MIX_SEED; random noise seeded with 0, as there);
- interpolation: linear in W between two seeds' w's, as gen_video.py's default --space=w;
- attention: the weights of the query pixel's token as attention_maps.py draws them.
"""

import dataclasses
import math
import threading

import numpy as np
import torch

from tools.attention_overlay import overlay, query_token_weights
from tools.rendering import make_labels, seeds_to_z, synthesize
from training.images import to_uint8

NOISE_MODES = ('const', 'random', 'none')
MAX_SEED = 2**32 - 1            # numpy's RandomState accepts seeds up to this.
MAX_INTERPOLATION_STEPS = 16

#----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class View:
    """One image of the explorer: the settings of the page."""
    seed: int = 0
    psi: float = 1.0
    class_idx: int = None       # Conditional networks only.
    noise_mode: str = 'const'
    mix_seed: int = None        # Style mixing: the seed whose w's replace those of `mix_styles`.
    mix_styles: tuple = ()      # w indices taken from mix_seed.


class Renderer:
    """Images of one generator for the explorer. Invalid settings raise ValueError with a message
    for the user. Calls are serialized: the generator and torch's RNG are shared."""

    def __init__(self, G, device):
        self.G = G
        self.device = torch.device(device)
        self.lock = threading.Lock()
        self.block_names = list(getattr(G.synthesis, 'block_names', []))

    def info(self):
        """What the page needs to build its controls."""
        blocks = []
        for name in self.block_names:
            block = self.G.synthesis.get_submodule(name)
            blocks.append(dict(name=name, resolution=block.resolution, heads=block.enc.num_heads,
                linformer=block.proj_weight is not None))
        return dict(resolution=self.G.img_resolution, channels=self.G.img_channels, num_classes=self.G.c_dim,
            num_ws=self.G.num_ws, blocks=blocks, device=str(self.device), max_seed=MAX_SEED, noise_modes=list(NOISE_MODES),
            max_interpolation_steps=MAX_INTERPOLATION_STEPS)

    def check(self, view):
        """Raise ValueError, saying what to change, unless the view can be rendered."""
        if not 0 <= view.seed <= MAX_SEED or (view.mix_seed is not None and not 0 <= view.mix_seed <= MAX_SEED):
            raise ValueError(f'Seeds must be in 0..{MAX_SEED}.')
        if not math.isfinite(view.psi):
            raise ValueError(f'Truncation psi must be a finite number; got {view.psi}.')
        if view.noise_mode not in NOISE_MODES:
            raise ValueError(f'Noise mode must be one of {", ".join(NOISE_MODES)}; got {view.noise_mode!r}.')
        if self.G.c_dim == 0 and view.class_idx is not None:
            raise ValueError('This network is unconditional: leave the class out.')
        if self.G.c_dim > 0 and (view.class_idx is None or not 0 <= view.class_idx < self.G.c_dim):
            raise ValueError(f'This network is conditional: choose a class in 0..{self.G.c_dim - 1}.')
        if view.mix_seed is not None and (not view.mix_styles or not all(0 <= i < self.G.num_ws for i in view.mix_styles)):
            raise ValueError(f'Style mixing needs layers (w indices) in 0..{self.G.num_ws - 1}.')

    def _ws(self, view):
        """(ws [1, num_ws, w_dim], noise seed) of a view, as generate.py or style_mixing.py compute them."""
        label = make_labels(self.G, view.class_idx, 1, self.device)  # check() has vetted the class.
        if view.mix_seed is None:
            return self.G.mapping(seeds_to_z([view.seed], self.G.z_dim, self.device), label, truncation_psi=view.psi), view.seed
        seeds = list(dict.fromkeys([view.seed, view.mix_seed]))
        ws = self.G.mapping(seeds_to_z(seeds, self.G.z_dim, self.device), label.expand(len(seeds), -1), truncation_psi=view.psi)
        mixed = ws[:1].clone()
        styles = list(view.mix_styles)
        mixed[:, styles] = ws[-1, styles]
        return mixed, 0

    def image(self, view):
        """uint8 [H, W, C]: the view's image."""
        self.check(view)
        with self.lock, torch.no_grad():
            ws, noise_seed = self._ws(view)
            return to_uint8(synthesize(self.G, ws, view.noise_mode, noise_seed=noise_seed))[0]

    def interpolation(self, view, seed_to, steps):
        """uint8 [H, steps * W, C]: `steps` images from the view's seed to `seed_to`, linear in W
        (without the view's style mixing)."""
        start = dataclasses.replace(view, mix_seed=None, mix_styles=())
        end = dataclasses.replace(start, seed=seed_to)
        self.check(start)
        self.check(end)
        if not 2 <= steps <= MAX_INTERPOLATION_STEPS:
            raise ValueError(f'The interpolation needs 2..{MAX_INTERPOLATION_STEPS} steps; got {steps}.')
        with self.lock, torch.no_grad():
            w_from, noise_seed = self._ws(start)
            w_to, _ = self._ws(end)
            t = torch.linspace(0, 1, steps, device=self.device).reshape(-1, 1, 1)
            images = to_uint8(synthesize(self.G, w_from.lerp(w_to, t), view.noise_mode, noise_seed=noise_seed))
        return np.concatenate(list(images), axis=1)

    def attention(self, view, block_name, head, query_xy, alpha=0.6):
        """uint8 RGB [H, W, 3]: the view's image with the attention of the token under pixel
        query_xy = (x, y) in block `block_name` (head index, or 'mean' over heads) drawn over it.
        With Linformer the keys are projected tokens; the map then shows attention @ projection,
        the effective weight of each original token, min-max scaled."""
        self.check(view)
        if block_name not in self.block_names:
            raise ValueError(f'Unknown block {block_name!r}; this network has {", ".join(self.block_names) or "no attention blocks"}.')
        block = self.G.synthesis.get_submodule(block_name)
        if head != 'mean' and not 0 <= head < block.enc.num_heads:
            raise ValueError(f'Block {block_name} has heads 0..{block.enc.num_heads - 1}; got {head}.')
        if not all(0 <= v < self.G.img_resolution for v in query_xy):
            raise ValueError(f'Pixel {tuple(query_xy)} lies outside the {self.G.img_resolution}x{self.G.img_resolution} image.')
        with self.lock, torch.no_grad():
            ws, noise_seed = self._ws(view)
            img, maps = synthesize(self.G, ws, view.noise_mode, noise_seed=noise_seed, return_attention=True)
        attn = maps[self.block_names.index(block_name)][0].float()
        weights = query_token_weights(block, attn, query_xy, self.G.img_resolution).cpu().numpy()
        return overlay(to_uint8(img)[0], weights.mean(axis=0) if head == 'mean' else weights[head], alpha)
