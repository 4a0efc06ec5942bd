"""conv2d / conv_transpose2d with a switch that skips weight gradients.

The regularization passes (path length, R1) differentiate the output w.r.t. inputs only;
inside `no_weight_gradients()` the backward pass of these convolutions computes no weight
gradient at all (weight.grad stays untouched), while input gradients still flow and can
be differentiated again. Current PyTorch differentiates `aten::convolution_backward` to any
order natively, so the backward pass below is built from it; no custom kernels are needed.
`enabled = False` makes both functions plain `torch.nn.functional` calls.
"""

import contextlib

import torch

enabled = True
weight_gradients_disabled = False


@contextlib.contextmanager
def no_weight_gradients(disable=True):
    """Within this context (when `disable`), backward passes skip conv weight gradients."""
    global weight_gradients_disabled
    previous = weight_gradients_disabled
    weight_gradients_disabled = previous or bool(disable)
    try:
        yield
    finally:
        weight_gradients_disabled = previous


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if not enabled or isinstance(padding, str):
        return torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups)
    spec = _ConvSpec(transposed=False, stride=stride, padding=padding, dilation=dilation, output_padding=0, groups=groups)
    return _Convolution.apply(input, weight, bias, spec)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    if not enabled:
        return torch.nn.functional.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)
    spec = _ConvSpec(transposed=True, stride=stride, padding=padding, dilation=dilation, output_padding=output_padding, groups=groups)
    return _Convolution.apply(input, weight, bias, spec)


class _ConvSpec:
    """The hyper-parameters of one convolution, as lists of two ints for aten."""

    def __init__(self, transposed, stride, padding, dilation, output_padding, groups):
        pair = lambda v: [int(v), int(v)] if isinstance(v, int) else [int(e) for e in v]
        self.transposed = transposed
        self.stride, self.padding, self.dilation, self.output_padding = pair(stride), pair(padding), pair(dilation), pair(output_padding)
        self.groups = int(groups)

    def args(self):
        return self.stride, self.padding, self.dilation, self.transposed, self.output_padding, self.groups


class _Convolution(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias, spec):
        ctx.save_for_backward(input, weight)
        ctx.spec = spec
        ctx.bias_sizes = None if bias is None else list(bias.shape)
        return torch.ops.aten.convolution(input, weight, bias, *spec.args())

    @staticmethod
    def backward(ctx, grad_output):
        input, weight = ctx.saved_tensors
        need_input, need_weight, need_bias = ctx.needs_input_grad[:3]
        need_weight = need_weight and not weight_gradients_disabled
        if not (need_input or need_weight or need_bias):
            return None, None, None, None
        grad_input, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
            grad_output, input, weight, ctx.bias_sizes, *ctx.spec.args(), [need_input, need_weight, need_bias])
        return (grad_input if need_input else None), (grad_weight if need_weight else None), (grad_bias if need_bias else None), None
