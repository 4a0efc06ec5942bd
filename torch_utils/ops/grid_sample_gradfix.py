"""Bilinear grid sampling (zeros padding, align_corners=False) with double backward.

R1 through the ADA augment pipe differentiates the gradient of grid_sample. PyTorch's
native op supports that on the CPU, but not on CUDA (checked on an H200 with torch 2.11:
"derivative for aten::grid_sampler_2d_backward is not implemented", the same failure
StyleGAN2-ADA users hit on every torch newer than 1.8). Off the CPU we therefore sample
with `bilinear_grid_sample`, written with gather and arithmetic only, so autograd
differentiates it to any order on every device.
"""

import torch


def grid_sample(input, grid):
    """input: [N, C, H, W]; grid: [N, H_out, W_out, 2] with (x, y) in [-1, 1]."""
    if input.device.type == 'cpu':
        return torch.nn.functional.grid_sample(input, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    return bilinear_grid_sample(input, grid)


def bilinear_grid_sample(input, grid):
    """Same result as the native op, built from differentiable elementary operations."""
    N, C, H, W = input.shape
    _, H_out, W_out, _ = grid.shape
    # align_corners=False: -1 and +1 are the outer edges of the border pixels.
    x = ((grid[..., 0] + 1) * W - 1) / 2
    y = ((grid[..., 1] + 1) * H - 1) / 2
    x0 = x.detach().floor()
    y0 = y.detach().floor()
    flat = input.reshape(N, C, H * W)
    out = 0
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - (x - xi).abs()) * (1 - (y - yi).abs())
            inside = ((xi >= 0) & (xi <= W - 1) & (yi >= 0) & (yi <= H - 1)).to(input.dtype)
            index = (yi.clamp(0, H - 1) * W + xi.clamp(0, W - 1)).long()
            values = flat.gather(2, index.reshape(N, 1, H_out * W_out).expand(N, C, -1))
            out = out + values.reshape(N, C, H_out, W_out) * (weight * inside).unsqueeze(1)
    return out
