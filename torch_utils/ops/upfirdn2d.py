"""Upsample, pad/crop, FIR filter, downsample (upfirdn) for NCHW images.

`upfirdn2d` does, per channel: insert `up - 1` zeros after every pixel, pad (negative
values crop), convolve with the filter `f` (a true convolution unless `flip_filter`),
keep every `down`-th pixel. Filters are 2-D `[fh, fw]` or separable 1-D `[ft]`
(applied horizontally, then vertically). The reference path is plain PyTorch; the CUDA
path's backward pass is an upfirdn2d itself, so gradients of any order stay on the plugin.
"""

import os

import torch

from torch_utils import custom_ops


def setup_filter(f, device=None, normalize=True, flip_filter=False, gain=1, separable=None):
    """Turn a filter spec (None, scalar, 1-D or 2-D array-like) into a float32 tensor for
    upfirdn2d. A 1-D filter stays separable when `separable` (default: 8 taps or more),
    else it becomes its outer product. `normalize` makes the taps sum to 1; `gain` is the
    overall gain of the (2-D) filter. `device` None: torch's default device (so that networks
    can be built on the meta device to check their shapes without allocating)."""
    # Computed on the CPU whatever the default device (on the meta device torch.outer would
    # import torch._dynamo, seconds), then moved.
    f = torch.ones([1], dtype=torch.float32, device='cpu') if f is None else torch.as_tensor(f, dtype=torch.float32, device='cpu')
    if f.ndim not in (0, 1, 2) or f.numel() == 0:
        raise ValueError(f'setup_filter: filter must be a non-empty scalar, 1-D or 2-D array, got shape {list(f.shape)}')
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if separable and f.ndim != 1:
        raise ValueError('setup_filter: separable=True needs a 1-D filter')
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=torch.get_default_device() if device is None else device)


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='cuda'):
    """Upsample by `up`, pad by `padding`, filter by `f`, downsample by `down`, scale by
    `gain`. `up`/`down`: int or [x, y]; `padding`: int, [x, y] or [x0, x1, y0, y1]
    (negative crops); `f`: filter from `setup_filter` (None = identity)."""
    spec = _parse_args(x, f, up, down, padding, flip_filter, gain, impl)
    # The plugin gives no filter gradients: a trainable filter takes the reference path. So
    # does code under torch.compile, whose graph the plugin call would split.
    if impl == 'cuda' and x.is_cuda and not (f is not None and f.requires_grad) and not torch.compiler.is_compiling() \
            and _plugin() is not None:
        return _upfirdn2d_cuda(x, f, spec)
    return _upfirdn2d_ref(x, f, spec)


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl='cuda'):
    """Filter `x` with `f`, keeping its size (plus `padding`)."""
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    """Upsample `x` by `up` with the interpolation filter `f` (output size = input * up
    plus `padding`). The filter gain is raised by up*up to keep the mean brightness."""
    upx, upy = _parse_scaling(up)
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    """Downsample `x` by `down` after low-pass filtering with `f` (output size = input / down
    plus `padding`)."""
    downx, downy = _parse_scaling(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


# ----------------------------------------------------------------------------
# Argument parsing.

def _parse_scaling(scaling):
    if isinstance(scaling, int):
        scaling = [scaling, scaling]
    sx, sy = [int(s) for s in scaling]
    if sx < 1 or sy < 1:
        raise ValueError(f'upfirdn2d: up/down factors must be >= 1, got {scaling}')
    return sx, sy


def _parse_padding(padding):
    if isinstance(padding, int):
        padding = [padding, padding]
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        padding = [padding[0], padding[0], padding[1], padding[1]]
    if len(padding) != 4:
        raise ValueError(f'upfirdn2d: padding must be an int, [x, y] or [x0, x1, y0, y1], got {padding}')
    return padding


def _filter_size(f):
    """(width, height) of a filter; a 1-D filter is square."""
    if f is None:
        return 1, 1
    if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2):
        raise ValueError('upfirdn2d: f must be None or a 1-D/2-D tensor (use setup_filter)')
    return f.shape[-1], f.shape[0]


def _parse_args(x, f, up, down, padding, flip_filter, gain, impl):
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f'upfirdn2d: x must be a 4-D NCHW tensor, got {getattr(x, "shape", type(x))}')
    if impl not in ('ref', 'cuda'):
        raise ValueError(f"upfirdn2d: impl must be 'ref' or 'cuda', got {impl!r}")
    upx, upy = _parse_scaling(up)
    downx, downy = _parse_scaling(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    out_w = (x.shape[3] * upx + px0 + px1 - fw) // downx + 1
    out_h = (x.shape[2] * upy + py0 + py1 - fh) // downy + 1
    if out_w < 1 or out_h < 1:
        raise ValueError(f'upfirdn2d: input {list(x.shape)} with up={up}, down={down}, padding={padding} and a '
                         f'{fh}x{fw} filter gives an empty output; use more padding or a smaller filter')
    return dict(up=(upx, upy), down=(downx, downy), padding=(px0, px1, py0, py1),
                flip_filter=bool(flip_filter), gain=float(gain), out_size=(out_h, out_w))


# ----------------------------------------------------------------------------
# Reference path: explicit zero insertion, pad, grouped convolution, strided slicing.

def _upfirdn2d_ref(x, f, spec):
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    batch, channels, in_h, in_w = x.shape
    (upx, upy), (downx, downy) = spec['up'], spec['down']
    px0, px1, py0, py1 = spec['padding']

    # Zero insertion: each pixel followed by up-1 zeros along each axis.
    if upx > 1 or upy > 1:
        x = x.reshape([batch, channels, in_h, 1, in_w, 1])
        x = torch.nn.functional.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape([batch, channels, in_h * upy, in_w * upx])

    # Pad with zeros, then crop where the padding is negative.
    x = torch.nn.functional.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]

    # conv2d correlates, so flip the filter to convolve (unless asked not to). Downsampling is
    # the convolution's stride: only the kept outputs are computed.
    f = f.to(x.dtype) * (spec['gain'] ** (f.ndim / 2))
    if not spec['flip_filter']:
        f = f.flip(list(range(f.ndim)))
    f = f[None, None].repeat([channels, 1] + [1] * f.ndim)
    if f.ndim == 4:
        return torch.nn.functional.conv2d(x, f, groups=channels, stride=[downy, downx])
    x = torch.nn.functional.conv2d(x, f.unsqueeze(2), groups=channels, stride=[1, downx])
    return torch.nn.functional.conv2d(x, f.unsqueeze(3), groups=channels, stride=[downy, 1])


# ----------------------------------------------------------------------------
# CUDA path. The kernel takes a 2-D float32 filter; a separable filter runs as two passes
# (horizontal, then vertical), each with sqrt(gain), like the reference path.

# What custom_ops needs to build the plugin (also used by tests/test_custom_ops_build.py).
PLUGIN = dict(module_name='upfirdn2d_plugin', sources=['upfirdn2d.cpp', 'upfirdn2d.cu'], headers=['upfirdn2d.h'],
              source_dir=os.path.dirname(os.path.abspath(__file__)))


def _plugin():
    return custom_ops.get_plugin_or_none(**PLUGIN)


def _upfirdn2d_cuda(x, f, spec):
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    f = f.to(device=x.device, dtype=torch.float32)
    (upx, upy), (downx, downy) = spec['up'], spec['down']
    px0, px1, py0, py1 = spec['padding']
    flip, gain = spec['flip_filter'], spec['gain']
    if f.ndim == 2:
        return _Upfirdn2dCuda.apply(x, f, (upx, upy), (downx, downy), (px0, px1, py0, py1), flip, gain)
    x = _Upfirdn2dCuda.apply(x, f[None, :], (upx, 1), (downx, 1), (px0, px1, 0, 0), flip, gain ** 0.5)
    return _Upfirdn2dCuda.apply(x, f[:, None], (1, upy), (1, downy), (0, 0, py0, py1), flip, gain ** 0.5)


class _Upfirdn2dCuda(torch.autograd.Function):
    """One kernel call with a 2-D filter. Its adjoint is again an upfirdn2d: swap up and
    down, flip the filter, and pad so that the output has the input's size."""

    @staticmethod
    def forward(ctx, x, f, up, down, padding, flip_filter, gain):
        ctx.save_for_backward(f)
        ctx.args = (x.shape, up, down, padding, flip_filter, gain)
        (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
        return _plugin().upfirdn2d(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain)

    @staticmethod
    def backward(ctx, dy):
        (f,) = ctx.saved_tensors
        in_shape, (upx, upy), (downx, downy), (px0, px1, py0, py1), flip_filter, gain = ctx.args
        fh, fw = f.shape
        in_h, in_w = in_shape[2], in_shape[3]
        out_h, out_w = dy.shape[2], dy.shape[3]
        padding = (fw - px0 - 1, in_w * upx - out_w * downx + px0 - upx + 1,
                   fh - py0 - 1, in_h * upy - out_h * downy + py0 - upy + 1)
        dx = _Upfirdn2dCuda.apply(dy, f, (downx, downy), (upx, upy), padding, not flip_filter, gain)
        return dx, None, None, None, None, None, None
