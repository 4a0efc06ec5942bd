"""StyleGAN2-ADA discriminator, with the published constructor kwargs and state-dict keys.

Blocks b{res} run from img_resolution down, halving the resolution each time, to the
epilogue, which appends minibatch-standard-deviation features, then conv, fc and the output
layer. For a power of two that is b4 at 4x4, as published; other sizes halve while they
stay even and at least 4 (48 and 96 end in an epilogue b6 at 6x6, for STL-10). Architectures: 'orig' (image enters the first block only), 'skip' (a downsampled
image enters every block through fromRGB), 'resnet' (residual blocks with a 1x1 skip).
With c_dim > 0 a mapping network embeds the label into `cmap` and the logit is the scaled
dot product of the output with it (projection discriminator).

The highest `num_fp16_res` resolutions run in float16 on CUDA (conv_clamp keeps the
activations in range); on the CPU they run in float32 unless `precision='reduced'` is passed,
as the published code was GPU-only (training/precision.py holds the policy). `block_kwargs=dict(freeze_layers=N)` turns the first N
layers (counted from the input image) into buffers (Freeze-D).
"""

import numpy as np
import torch

from torch_utils import persistence
from torch_utils.ops import upfirdn2d
from training import precision as mp
from training.layers import Conv2dLayer, FullyConnectedLayer, MappingNetwork, check_shape

__all__ = ['Discriminator', 'DiscriminatorBlock', 'DiscriminatorEpilogue', 'MinibatchStdLayer']

_ARCHITECTURES = ('orig', 'skip', 'resnet')

#----------------------------------------------------------------------------

@persistence.persistent_class
class DiscriminatorBlock(torch.nn.Module):
    def __init__(self,
        in_channels,                        # Channels coming from the previous block, 0 = first block.
        tmp_channels,                       # Channels of the intermediate layers.
        out_channels,                       # Channels passed to the next block.
        resolution,                         # Resolution of this block.
        img_channels,                       # Number of image channels.
        first_layer_idx,                    # Index of this block's first layer (for freeze_layers).
        architecture        = 'resnet',     # 'orig', 'skip' or 'resnet'.
        activation          = 'lrelu',      # Activation of the layers.
        resample_filter     = [1,3,3,1],    # Low-pass filter of the downsampling.
        conv_clamp          = None,         # Clamp the layer outputs to +-conv_clamp.
        use_fp16            = False,        # Run in float16 (on CUDA, see module docstring)?
        fp16_channels_last  = False,        # Use channels_last memory format with float16?
        freeze_layers       = 0,            # Layers with an index below this are frozen.
    ):
        if architecture not in _ARCHITECTURES:
            raise ValueError(f'Unknown discriminator architecture {architecture!r}; use one of {_ARCHITECTURES}.')
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))

        self.num_layers = 0
        def trainable():
            layer_idx = first_layer_idx + self.num_layers
            self.num_layers += 1
            return layer_idx >= freeze_layers

        common = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, resample_filter=resample_filter,
            trainable=trainable(), **common)
        if architecture == 'resnet':
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                resample_filter=resample_filter, trainable=trainable(), channels_last=self.channels_last)

    def forward(self, x, img, precision='auto'):
        device = (x if x is not None else img).device
        dtype = mp.block_dtype(self.use_fp16, device, precision, mp.conv_dtype(device))
        # oneDNN's bfloat16 convolutions run a few percent faster on channels-last tensors, so the CPU
        # uses that format for reduced precision whatever fp16_channels_last says.
        channels_last = dtype != torch.float32 and (self.channels_last or device.type == 'cpu')
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if x is not None:
            check_shape(x, [None, self.in_channels, self.resolution, self.resolution], f'Input of block b{self.resolution}')
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0 or self.architecture == 'skip':
            check_shape(img, [None, self.img_channels, self.resolution, self.resolution], 'img')
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = upfirdn2d.downsample2d(img, self.resample_filter) if self.architecture == 'skip' else None

        if self.architecture == 'resnet':
            # Both branches are scaled by sqrt(1/2) so that the sum keeps unit variance.
            y = self.skip(x, gain=0.5 ** 0.5) # A Python float: compiles without a graph break.
            x = self.conv0(x)
            x = self.conv1(x, gain=0.5 ** 0.5)
            x = y.add_(x)
        else:
            x = self.conv1(self.conv0(x))
        return x, img

#----------------------------------------------------------------------------

@persistence.persistent_class
class MinibatchStdLayer(torch.nn.Module):
    """Append the standard deviation across groups of samples as extra feature channels."""

    def __init__(self, group_size, num_channels=1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x):
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g != 0:
            raise ValueError(f'The batch size ({n}) must be a multiple of the minibatch-stddev group size ({g}).')
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)   # [group, subgroups, f, c/f, h, w]: sample i belongs to subgroup i % (n/g).
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])               # [subgroups, f]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self):
        return f'group_size={self.group_size}, num_channels={self.num_channels}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class DiscriminatorEpilogue(torch.nn.Module):
    def __init__(self,
        in_channels,                    # Number of input channels.
        cmap_dim,                       # Size of the label embedding, 0 = unconditional.
        resolution,                     # Resolution of this block (4).
        img_channels,                   # Number of image channels.
        architecture        = 'resnet', # 'orig', 'skip' or 'resnet'.
        mbstd_group_size    = 4,        # Group size of the minibatch stddev, None = whole batch.
        mbstd_num_channels  = 1,        # Number of stddev features, 0 = no minibatch stddev.
        activation          = 'lrelu',  # Activation of the layers.
        conv_clamp          = None,     # Clamp the conv output to +-conv_clamp.
    ):
        if architecture not in _ARCHITECTURES:
            raise ValueError(f'Unknown discriminator architecture {architecture!r}; use one of {_ARCHITECTURES}.')
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture

        if architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap):
        check_shape(x, [None, self.in_channels, self.resolution, self.resolution], 'Input of the epilogue')
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == 'skip':
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x

#----------------------------------------------------------------------------

@persistence.persistent_class
class Discriminator(torch.nn.Module):
    def __init__(self,
        c_dim,                          # Label size, 0 = unconditional.
        img_resolution,                 # Input resolution (>= 4; e.g. 32, 48, 64).
        img_channels,                   # Number of input image channels.
        architecture        = 'resnet', # 'orig', 'skip' or 'resnet'.
        channel_base        = 32768,    # Channels at resolution r: min(channel_base // r, channel_max).
        channel_max         = 512,      # Upper bound on the channels of any layer.
        num_fp16_res        = 0,        # float16 for this many of the highest resolutions (counting the epilogue's).
        conv_clamp          = None,     # Clamp the conv outputs to +-conv_clamp, None = no clamping.
        cmap_dim            = None,     # Size of the label embedding, None = channels at 4x4.
        block_kwargs        = {},       # Arguments for DiscriminatorBlock (e.g. freeze_layers).
        mapping_kwargs      = {},       # Arguments for the label MappingNetwork.
        epilogue_kwargs     = {},       # Arguments for DiscriminatorEpilogue (e.g. mbstd_group_size).
    ):
        super().__init__()
        if img_resolution < 4:
            raise ValueError(f'Discriminator img_resolution must be at least 4, got {img_resolution}.')
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = []
        bottom = img_resolution
        while bottom % 2 == 0 and bottom // 2 >= 4:
            self.block_resolutions.append(bottom)
            bottom //= 2
        self.epilogue_name = f'b{bottom}'
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [bottom]}
        if cmap_dim is None:
            cmap_dim = channels[bottom]
        if c_dim == 0:
            cmap_dim = 0

        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0, channels[res], channels[res // 2],
                resolution=res, first_layer_idx=layer_idx, use_fp16=mp.uses_reduced_precision(res, img_resolution, num_fp16_res), **block_kwargs, **common)
            setattr(self, f'b{res}', block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs)
        setattr(self, self.epilogue_name, DiscriminatorEpilogue(channels[bottom], cmap_dim=cmap_dim, resolution=bottom, **epilogue_kwargs, **common))

    def forward(self, img, c, update_emas=False, precision='auto', force_fp32=None):
        """img: [N, img_channels, img_resolution, img_resolution]; c: [N, c_dim] -> logits [N, 1].
        precision: 'auto', 'full' or 'reduced' (training/precision.py); force_fp32 is the published
        spelling. update_emas is accepted for call compatibility with the generator (D tracks no averages)."""
        del update_emas
        precision = mp.resolve(precision, force_fp32)
        check_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], 'img')
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f'b{res}')(x, img, precision=precision)
        cmap = None
        if self.c_dim > 0:
            cmap = self.mapping(None, c)
        return getattr(self, self.epilogue_name)(x, img, cmap)

    def extra_repr(self):
        return f'c_dim={self.c_dim}, img_resolution={self.img_resolution}, img_channels={self.img_channels}'

#----------------------------------------------------------------------------
