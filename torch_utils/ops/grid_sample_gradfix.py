"""Bilinear grid sampling (zeros padding, align_corners=False) with double backward.

StyleGAN2-ADA needed a custom op here because PyTorch could not differentiate
`aten::grid_sampler_2d_backward` (the failure "derivative for aten::grid_sampler_2d_backward
is not implemented" on torch up to about 2.1). Current PyTorch differentiates it on every
device (`grid_sampler_2d_double_backward` in its derivatives.yaml), so the native op is enough; tests/test_ops.py checks the double backward against
gradgradcheck and the values against an independent bilinear sampler.
"""

import torch


def grid_sample(input, grid):
    """input: [N, C, H, W]; grid: [N, H_out, W_out, 2] with (x, y) in [-1, 1]."""
    return torch.nn.functional.grid_sample(input, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
