"""Bilinear grid sampling (zeros padding, align_corners=False) with double backward.

R1 through the ADA augment pipe differentiates the gradient of grid_sample. Whether
PyTorch's native op allows that depends on the version and the device: torch 2.13 does on
the CPU, but torch 2.11 fails on the CPU and on CUDA (checked on an H200) with "derivative
for aten::grid_sampler_2d_backward is not implemented", the failure StyleGAN2-ADA users hit
on every torch after 1.8. So we sample with gather and arithmetic only, which autograd
differentiates to any order on every device and version.
"""


def grid_sample(input, grid):
    """Same result as torch.nn.functional.grid_sample(input, grid, 'bilinear', 'zeros',
    align_corners=False). input: [N, C, H, W]; grid: [N, H_out, W_out, 2], (x, y) in [-1, 1]."""
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
