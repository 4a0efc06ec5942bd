"""Perceptual Path Length (Karras et al. 2019): the LPIPS distance between images generated at
two latents epsilon apart along random interpolation paths, divided by epsilon^2, averaged
after dropping the lowest and highest percent. Defined as in StyleGAN2-ADA.

Works with any generator of this codebase: the synthesis network is called with
`noise_mode='const'` only (force_fp32 is passed just where the network takes it), and the
constant noise buffers are re-drawn before each batch."""

import copy
import inspect

import numpy as np
import torch

from . import metric_utils


def slerp(a, b, t):
    """Spherical interpolation between the directions of a and b (unit-length result)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(dim=-1, keepdim=True)
    angle = t * torch.acos(cos.clamp(-1, 1))
    ortho = b - cos * a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True)
    out = a * torch.cos(angle) + ortho * torch.sin(angle)
    return out / out.norm(dim=-1, keepdim=True)


def _takes_argument(fn, name):
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


class PathLengthSampler(torch.nn.Module):
    def __init__(self, G, G_kwargs, epsilon, space, sampling, crop, lpips):
        if space not in ('z', 'w') or sampling not in ('full', 'end'):
            raise ValueError(f'PPL space must be z or w and sampling full or end, got {space!r}, {sampling!r}')
        super().__init__()
        self.G = copy.deepcopy(G)
        self.G_kwargs = dict(G_kwargs)
        self.G_kwargs.pop('noise_mode', None)
        if _takes_argument(self.G.synthesis.forward, 'force_fp32'):
            self.G_kwargs['force_fp32'] = True
        self.epsilon = epsilon
        self.space = space
        self.sampling = sampling
        self.crop = crop
        self.lpips = lpips  # callable: float images [N, 3, H, W] in [0, 255] -> LPIPS feature vectors

    def _interpolated_ws(self, c, t):
        z0, z1 = torch.randn([c.shape[0] * 2, self.G.z_dim], device=c.device).chunk(2)
        if self.space == 'w':
            w0, w1 = self.G.mapping(torch.cat([z0, z1]), torch.cat([c, c])).chunk(2)
            t = t[:, None, None]
            return w0.lerp(w1, t), w0.lerp(w1, t + self.epsilon)
        zt0 = slerp(z0, z1, t[:, None])
        zt1 = slerp(z0, z1, t[:, None] + self.epsilon)
        return self.G.mapping(torch.cat([zt0, zt1]), torch.cat([c, c])).chunk(2)

    @torch.no_grad()
    def forward(self, c):
        t = torch.rand([c.shape[0]], device=c.device) * (1 if self.sampling == 'full' else 0)
        wt0, wt1 = self._interpolated_ws(c, t)
        for name, buf in self.G.named_buffers():
            if name.endswith('noise_const'):
                buf.copy_(torch.randn_like(buf))
        img = self.G.synthesis(torch.cat([wt0, wt1]), noise_mode='const', **self.G_kwargs)

        if self.crop:  # The central face region, as in the original FFHQ definition.
            assert img.shape[2] == img.shape[3]
            s = img.shape[2] // 8
            img = img[:, :, s * 3:s * 7, s * 2:s * 6]
        factor = self.G.img_resolution // 256
        if factor > 1:  # Box-downsample to 256x256, the resolution LPIPS was made for.
            img = img.reshape([-1, img.shape[1], img.shape[2] // factor, factor, img.shape[3] // factor, factor]).mean([3, 5])
        img = (img + 1) * (255 / 2)
        if img.shape[1] == 1:
            img = img.repeat([1, 3, 1, 1])

        lpips_t0, lpips_t1 = self.lpips(img).chunk(2)
        return (lpips_t0 - lpips_t1).square().sum(1) / self.epsilon ** 2


def trimmed_mean(dist):
    """Mean of the distances between the 1st and 99th percentiles (outliers come from
    discontinuities of the mapping, not from smoothness)."""
    lo = np.percentile(dist, 1, method='lower')
    hi = np.percentile(dist, 99, method='higher')
    return float(dist[(dist >= lo) & (dist <= hi)].mean())


def compute_ppl(opts, num_samples, epsilon, space, sampling, crop, batch_size):
    if opts.G is None:
        raise ValueError('PPL needs a generator (--network)')
    vgg16 = opts.get_detector('vgg16', 'lpips')
    sampler = PathLengthSampler(opts.G, opts.G_kwargs, epsilon, space, sampling, crop, lpips=vgg16.lpips)
    sampler.eval().requires_grad_(False).to(opts.device)
    labels = metric_utils.LabelSampler(opts, opts.G.c_dim, seed=opts.seed * 65536 + opts.rank)

    dist = []
    with opts.make_progress('ppl sampling', num_samples) as bar, metric_utils.seeded_rng(opts):
        for _ in range(0, num_samples, batch_size * opts.num_gpus):
            dist.append(metric_utils.gather_interleaved(sampler(labels(batch_size)), opts))
            bar.update(min(batch_size * opts.num_gpus, num_samples - bar.n))
    return trimmed_mean(torch.cat(dist)[:num_samples].cpu().numpy())
