"""Fused bias + activation + gain + clamp: `y = clamp(act(x + b) * gain, -clamp, clamp)`.

The reference path is plain PyTorch (any order of gradients). The CUDA path computes the
forward pass and the derivative multipliers with one kernel (bias_act.cu); its backward
pass calls the same kernel, so first and second order gradients stay fused (any order for
linear/relu/lrelu, whose second derivative is zero; up to second order for the others).
"""

import math
import os

import torch

import dnnlib
from torch_utils import custom_ops

# Each activation: its function (given alpha), defaults, and its index in the CUDA kernel.
# `has_2nd_grad` is False where the second derivative is zero almost everywhere.
activation_funcs = {
    'linear':   dnnlib.EasyDict(func=lambda x, alpha: x,                                    def_alpha=0,   def_gain=1,            cuda_idx=1, has_2nd_grad=False),
    'relu':     dnnlib.EasyDict(func=lambda x, alpha: torch.relu(x),                        def_alpha=0,   def_gain=math.sqrt(2), cuda_idx=2, has_2nd_grad=False),
    'lrelu':    dnnlib.EasyDict(func=lambda x, alpha: torch.nn.functional.leaky_relu(x, alpha), def_alpha=0.2, def_gain=math.sqrt(2), cuda_idx=3, has_2nd_grad=False),
    'tanh':     dnnlib.EasyDict(func=lambda x, alpha: torch.tanh(x),                        def_alpha=0,   def_gain=1,            cuda_idx=4, has_2nd_grad=True),
    'sigmoid':  dnnlib.EasyDict(func=lambda x, alpha: torch.sigmoid(x),                     def_alpha=0,   def_gain=1,            cuda_idx=5, has_2nd_grad=True),
    'elu':      dnnlib.EasyDict(func=lambda x, alpha: torch.nn.functional.elu(x),           def_alpha=0,   def_gain=1,            cuda_idx=6, has_2nd_grad=True),
    'selu':     dnnlib.EasyDict(func=lambda x, alpha: torch.nn.functional.selu(x),          def_alpha=0,   def_gain=1,            cuda_idx=7, has_2nd_grad=True),
    'softplus': dnnlib.EasyDict(func=lambda x, alpha: torch.nn.functional.softplus(x),      def_alpha=0,   def_gain=1,            cuda_idx=8, has_2nd_grad=True),
    'swish':    dnnlib.EasyDict(func=lambda x, alpha: torch.sigmoid(x) * x,                 def_alpha=0,   def_gain=1,            cuda_idx=9, has_2nd_grad=True),
}


def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl='cuda'):
    """Add bias `b` along dimension `dim` of `x`, apply `act`, scale by `gain`, clamp to
    [-clamp, clamp]. `alpha`/`gain` default to the activation's own values; `clamp=None`
    means no clamping. `impl='cuda'` uses the plugin for CUDA tensors when it builds."""
    spec = _parse_args(x, b, dim, act, alpha, gain, clamp, impl)
    # Code under torch.compile takes the reference path: inductor fuses it into one kernel,
    # whereas the plugin call would split the compiled graph in two.
    if impl == 'cuda' and x.is_cuda and not torch.compiler.is_compiling() and _plugin() is not None:
        if b is not None and b.dtype != x.dtype:  # Same type promotion as the reference path.
            dtype = torch.result_type(x, b)
            x, b = x.to(dtype), b.to(dtype)
        return _BiasActCuda.apply(x, b, spec)
    return _bias_act_ref(x, b, spec)


def _parse_args(x, b, dim, act, alpha, gain, clamp, impl):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'bias_act: x must be a torch.Tensor, got {type(x).__name__}')
    if act not in activation_funcs:
        raise ValueError(f'bias_act: unknown activation {act!r}; choose one of {sorted(activation_funcs)}')
    if impl not in ('ref', 'cuda'):
        raise ValueError(f"bias_act: impl must be 'ref' or 'cuda', got {impl!r}")
    if clamp is not None and clamp < 0:
        raise ValueError(f'bias_act: clamp must be None or >= 0, got {clamp}')
    if b is not None:
        if b.ndim != 1 or not 0 <= dim < x.ndim or b.shape[0] != x.shape[dim]:
            raise ValueError(f'bias_act: bias of shape {list(b.shape)} does not match dimension {dim} of x with shape {list(x.shape)}')
    info = activation_funcs[act]
    return dnnlib.EasyDict(
        dim=dim, act=act,
        alpha=float(alpha if alpha is not None else info.def_alpha),
        gain=float(gain if gain is not None else info.def_gain),
        clamp=float(clamp) if clamp is not None else None,
    )


def _bias_act_ref(x, b, spec):
    if b is not None:
        x = x + b.reshape([-1 if i == spec.dim else 1 for i in range(x.ndim)])
    x = activation_funcs[spec.act].func(x, spec.alpha)
    if spec.gain != 1:
        x = x * spec.gain
    if spec.clamp is not None:
        x = x.clamp(-spec.clamp, spec.clamp)
    return x


# ----------------------------------------------------------------------------
# CUDA path. The kernel has three modes (see bias_act.h): the forward value and the first
# and second derivative multipliers. Backward passes are built from those modes.

# What custom_ops needs to build the plugin (also used by tests/test_custom_ops_build.py).
PLUGIN = dict(module_name='bias_act_plugin', sources=['bias_act.cpp', 'bias_act.cu'], headers=['bias_act.h'],
              source_dir=os.path.dirname(os.path.abspath(__file__)))


def _plugin():
    return custom_ops.get_plugin_or_none(**PLUGIN)


def _run_kernel(x, b, dy, mode, spec):
    empty = x.new_empty([0])
    return _plugin().bias_act(x, empty if b is None else b, empty if dy is None else dy, mode, spec.dim,
                              activation_funcs[spec.act].cuda_idx, spec.alpha, spec.gain,
                              -1.0 if spec.clamp is None else spec.clamp)


def _sum_to_bias(dx, spec):
    return dx.sum([i for i in range(dx.ndim) if i != spec.dim])


class _BiasActCuda(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, spec):
        ctx.spec = spec
        ctx.save_for_backward(x, b)
        return _run_kernel(x, b, None, 0, spec)

    @staticmethod
    def backward(ctx, dy):
        x, b = ctx.saved_tensors
        dx = db = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            dx = _BiasActCudaGrad.apply(dy, x, b, ctx.spec)
        if ctx.needs_input_grad[1]:
            db = _sum_to_bias(dx, ctx.spec)
        return dx, db, None


class _BiasActCudaGrad(torch.autograd.Function):
    """dx = dy * gain * f'(x + b) (masked by the clamp); linear in dy."""

    @staticmethod
    def forward(ctx, dy, x, b, spec):
        ctx.spec = spec
        ctx.save_for_backward(dy, x, b)
        return _run_kernel(x, b, dy, 1, spec)

    @staticmethod
    def backward(ctx, d_dx):
        dy, x, b = ctx.saved_tensors
        spec = ctx.spec
        d_dy = d_x = d_b = None
        if ctx.needs_input_grad[0]:
            d_dy = _BiasActCudaGrad.apply(d_dx, x, b, spec)
        if activation_funcs[spec.act].has_2nd_grad and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            d_x = _BiasActCudaGrad2.apply(d_dx * dy, x, b, spec)
            d_b = _sum_to_bias(d_x, spec) if ctx.needs_input_grad[2] else None
        return d_dy, d_x, d_b, None


class _BiasActCudaGrad2(torch.autograd.Function):
    """dy * gain * f''(x + b); the end of the fused chain (second order)."""

    @staticmethod
    def forward(ctx, dy, x, b, spec):
        ctx.act = spec.act
        return _run_kernel(x, b, dy, 2, spec)

    @staticmethod
    def backward(ctx, _):
        raise NotImplementedError(f"bias_act: third-order gradients of act='{ctx.act}' on the CUDA path are not "
                                  "supported; pass impl='ref' for arbitrary order")
