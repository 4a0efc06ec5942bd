"""2-D convolution with optional FIR up/downsampling, as one operation.

The result is defined as: upsample `x` by `up` (zero insertion, filter `f`, gain up^2),
pad, correlate with `w` (a convolution when `flip_weight=False`), then filter with `f` and
keep every `down`-th pixel. `padding` is given in the resampled frame as for upsample2d /
downsample2d. The code picks cheaper but equivalent orders: strided convolution for
downsampling, transposed convolution for upsampling, a 1x1 convolution at the low
resolution side. Every path is a composition of linear shift-invariant steps, so they all
give the same values (up to rounding).
"""

import torch

from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import upfirdn2d
from torch_utils.ops.upfirdn2d import _filter_size, _parse_padding


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """x: [N, C_in, H, W]; w: [C_out, C_in / groups, kh, kw]; f: filter from
    upfirdn2d.setup_filter (None = box); up, down: ints >= 1; padding: int, [x, y] or
    [x0, x1, y0, y1]."""
    if not (isinstance(x, torch.Tensor) and x.ndim == 4 and isinstance(w, torch.Tensor) and w.ndim == 4):
        raise ValueError('conv2d_resample: x and w must be 4-D tensors (NCHW input, [out, in/groups, kh, kw] weight)')
    if w.dtype != x.dtype:
        raise ValueError(f'conv2d_resample: x ({x.dtype}) and w ({w.dtype}) must have the same dtype')
    if not (isinstance(up, int) and isinstance(down, int) and up >= 1 and down >= 1):
        raise ValueError(f'conv2d_resample: up and down must be ints >= 1, got up={up}, down={down}')
    if x.shape[1] != w.shape[1] * groups:
        raise ValueError(f'conv2d_resample: x has {x.shape[1]} channels but w expects {w.shape[1]} x {groups} groups')
    kh, kw = w.shape[2:]
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)

    # Padding of the resampling filters, as in upsample2d / downsample2d.
    if up > 1:
        px0, px1, py0, py1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1, py0, py1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2, py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    pad = [px0, px1, py0, py1]

    if kw == 1 and kh == 1 and up == 1 and down > 1:
        # A 1x1 convolution commutes with resampling: do it at the low resolution.
        x = upfirdn2d.upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)

    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d.upfirdn2d(x, f, up=up, padding=pad, gain=up ** 2, flip_filter=flip_filter)

    if up == 1 and down > 1:
        # Filter, then a strided convolution keeps only the pixels that survive downsampling.
        x = upfirdn2d.upfirdn2d(x, f, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if up > 1:
        # A transposed convolution with stride `up` equals zero insertion followed by a full
        # convolution (input padded by k-1 before, k-up after). Move that padding out of
        # `pad`; whatever is left (crop or extra zeros) goes to the filter step.
        px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
        crop_x, crop_y = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
        x = _conv(x, _transpose_weight(w, groups), stride=up, padding=[crop_y, crop_x], groups=groups,
                  transpose=True, flip_weight=not flip_weight)
        x = upfirdn2d.upfirdn2d(x, f, padding=[px0 + crop_x, px1 + crop_x, py0 + crop_y, py1 + crop_y],
                                gain=up ** 2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    # Asymmetric or negative padding without resampling: pad/crop explicitly.
    x = upfirdn2d.upfirdn2d(x, None, padding=pad)
    return _conv(x, w, groups=groups, flip_weight=flip_weight)


def _transpose_weight(w, groups):
    """[out, in/groups, kh, kw] -> [in, out/groups, kh, kw], the layout of conv_transpose2d."""
    out_channels, in_per_group, kh, kw = w.shape
    w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
    return w.reshape(groups * in_per_group, out_channels // groups, kh, kw)


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    # torch convolutions correlate; flip the kernel for a true convolution.
    if not flip_weight and (w.shape[2] > 1 or w.shape[3] > 1):
        w = w.flip([2, 3])
    if transpose:
        return conv2d_gradfix.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return conv2d_gradfix.conv2d(x, w, stride=stride, padding=padding, groups=groups)
