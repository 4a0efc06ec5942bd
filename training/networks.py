"""StyleGAN2's convolutional generator, so that StyleGAN2-ADA PyTorch snapshots load here.

Class names, constructor arguments and state-dict names follow the published StyleGAN2-ADA
`training/networks.py`. The module keeps that name, though it holds StyleGAN2's networks only:
StyleGAN2-ADA's training options record it (`training.networks.Generator`) and
Styleformer-C's embedded source imports it (docs/architecture.md, "Frozen import paths"). The
discriminator and the layers shared with Styleformer live in their own modules and are
re-exported from here, so `training.networks.Discriminator` is the same class as
`training.networks_Discriminator.Discriminator`.

Synthesis: a learned 4x4 constant, then per resolution two modulated 3x3 convolutions (the
first one upsampling 2x) with per-pixel noise, and a modulated 1x1 ToRGB whose images are
upsampled and summed across resolutions ('skip' architecture; 'orig' and 'resnet' too).
"""

import numpy as np
import torch

from torch_utils import persistence
from torch_utils.ops import bias_act
from torch_utils.ops import conv2d_resample
from torch_utils.ops import fma
from torch_utils.ops import upfirdn2d
from training import precision as mp
from training.layers import MappingSynthesisGenerator, Conv2dLayer, FullyConnectedLayer, MappingNetwork, check_shape, normalize_2nd_moment
from training.networks_Discriminator import Discriminator, DiscriminatorBlock, DiscriminatorEpilogue, MinibatchStdLayer

__all__ = ['normalize_2nd_moment', 'modulated_conv2d', 'FullyConnectedLayer', 'Conv2dLayer', 'MappingNetwork',
           'SynthesisLayer', 'ToRGBLayer', 'SynthesisBlock', 'SynthesisNetwork', 'Generator',
           'Discriminator', 'DiscriminatorBlock', 'DiscriminatorEpilogue', 'MinibatchStdLayer']

#----------------------------------------------------------------------------

def modulated_conv2d(
    x,                  # Input [N, in, H, W].
    weight,             # Shared weight [out, in, kh, kw].
    styles,             # Per-sample input scales [N, in].
    noise=None,         # Noise added after the convolution, broadcastable to the output.
    up=1, down=1,       # Resampling factors.
    padding=0,          # Padding of the convolution.
    resample_filter=None,
    demodulate=True,    # Normalize each output channel to unit expected variance?
    flip_weight=True,   # False = convolution (used with up=2), True = correlation.
    fused_modconv=True, # One grouped convolution with per-sample weights instead of scaling x.
):
    """StyleGAN2 modulated convolution: scale the weight's input channels by `styles`, then
    divide each output channel by its norm (demodulation)."""
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    check_shape(styles, [batch_size, in_channels], 'styles')

    # In fp16 the products below can overflow; normalizing first changes nothing after demodulation.
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / np.sqrt(in_channels * kh * kw) / weight.norm(float('inf'), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float('inf'), dim=1, keepdim=True)

    w = dcoefs = None
    if demodulate or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample.conv2d_resample(x=x, w=weight.to(x.dtype), f=resample_filter, up=up, down=down,
            padding=padding, flip_weight=flip_weight)
        if demodulate and noise is not None:
            return fma.fma(x, dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1), noise.to(x.dtype))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        if noise is not None:
            return x + noise.to(x.dtype)
        return x

    if demodulate:
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample.conv2d_resample(x=x, w=w.to(x.dtype), f=resample_filter, up=up, down=down,
        padding=padding, groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    def __init__(self,
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        w_dim,                          # Intermediate latent (W) size.
        resolution,                     # Output resolution.
        kernel_size     = 3,            # Convolution kernel size.
        up              = 1,            # Upsampling factor.
        use_noise       = True,         # Add per-pixel noise?
        activation      = 'lrelu',      # Activation name understood by bias_act.
        resample_filter = [1,3,3,1],    # Low-pass filter used when upsampling.
        conv_clamp      = None,         # Clamp the output to +-conv_clamp, None = no clamping.
        channels_last   = False,        # Keep the weight in channels_last memory format?
    ):
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = bias_act.activation_funcs[activation].def_gain

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        if use_noise:
            self.register_buffer('noise_const', torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode='random', fused_modconv=True, gain=1):
        if noise_mode not in ('random', 'const', 'none'):
            raise ValueError(f'noise_mode must be random, const or none, got {noise_mode!r}')
        in_resolution = self.resolution // self.up
        check_shape(x, [None, self.weight.shape[1], in_resolution, in_resolution], 'SynthesisLayer input')
        styles = self.affine(w)

        noise = None
        if self.use_noise and noise_mode == 'random':
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        if self.use_noise and noise_mode == 'const':
            noise = self.noise_const * self.noise_strength

        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, noise=noise, up=self.up, padding=self.padding,
            resample_filter=self.resample_filter, flip_weight=(self.up == 1), fused_modconv=fused_modconv)
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=act_clamp)

#----------------------------------------------------------------------------

@persistence.persistent_class
class ToRGBLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None, channels_last=False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))

    def forward(self, x, w, fused_modconv=True):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisBlock(torch.nn.Module):
    def __init__(self,
        in_channels,                        # Input channels, 0 = first block (starts from the constant).
        out_channels,                       # Output channels.
        w_dim,                              # Intermediate latent (W) size.
        resolution,                         # Resolution of this block.
        img_channels,                       # Number of output color channels.
        is_last,                            # Is this the last block?
        architecture        = 'skip',       # 'orig', 'skip' or 'resnet'.
        resample_filter     = [1,3,3,1],    # Low-pass filter used when upsampling.
        conv_clamp          = None,         # Clamp the convolution outputs, None = no clamping.
        use_fp16            = False,        # Run this block in fp16 (on CUDA)?
        fp16_channels_last  = False,        # channels_last memory format together with fp16?
        **layer_kwargs,                     # Passed on to SynthesisLayer.
    ):
        if architecture not in ('orig', 'skip', 'resnet'):
            raise ValueError(f'architecture must be orig, skip or resnet, got {architecture!r}')
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                resample_filter=resample_filter, conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
            conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == 'skip':
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp, channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == 'resnet':
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, ws, precision='auto', fused_modconv=None, **layer_kwargs):
        check_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim], 'block ws')
        w_iter = iter(ws.unbind(dim=1))
        dtype = mp.block_dtype(self.use_fp16, ws.device, precision, mp.conv_dtype(ws.device))
        memory_format = torch.channels_last if self.channels_last and dtype != torch.float32 else torch.contiguous_format
        if fused_modconv is None:
            # One grouped convolution is faster in inference; training needs the separate path's gradients.
            fused_modconv = (not self.training) and (dtype == torch.float32 or int(ws.shape[0]) == 1)

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            check_shape(x, [None, self.in_channels, self.resolution // 2, self.resolution // 2], 'block input')
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=np.sqrt(0.5), **layer_kwargs)
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        if img is not None:
            img = upfirdn2d.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == 'skip':
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv).to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    def __init__(self,
        w_dim,                  # Intermediate latent (W) size.
        img_resolution,         # Output resolution (a power of two >= 4).
        img_channels,           # Number of output color channels.
        channel_base    = 32768,# Overall multiplier for the number of channels.
        channel_max     = 512,  # Maximum number of channels in any block.
        num_fp16_res    = 0,    # Use fp16 for the N highest resolutions.
        **block_kwargs,         # Passed on to SynthesisBlock.
    ):
        if img_resolution < 4 or img_resolution & (img_resolution - 1) != 0:
            raise ValueError(f'img_resolution must be a power of two >= 4, got {img_resolution}')
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        channels_dict = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}

        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels_dict[res // 2] if res > 4 else 0
            is_last = (res == self.img_resolution)
            block = SynthesisBlock(in_channels, channels_dict[res], w_dim=w_dim, resolution=res,
                img_channels=img_channels, is_last=is_last, use_fp16=mp.uses_reduced_precision(res, img_resolution, num_fp16_res), **block_kwargs)
            # Consecutive blocks share a w: a block's ToRGB reads the w of the next block's first conv.
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f'b{res}', block)

    def forward(self, ws, precision='auto', force_fp32=None, **block_kwargs):
        """precision: 'auto', 'full' or 'reduced' (training/precision.py); force_fp32 is the published spelling."""
        check_shape(ws, [None, self.num_ws, self.w_dim], 'ws')
        block_kwargs['precision'] = mp.resolve(precision, force_fp32)
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            x, img = block(x, img, ws.narrow(1, w_idx, block.num_conv + block.num_torgb), **block_kwargs)
            w_idx += block.num_conv
        return img

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(MappingSynthesisGenerator):
    """StyleGAN2 generator: modulated convolutions. See training.layers.MappingSynthesisGenerator."""
    synthesis_class = SynthesisNetwork

#----------------------------------------------------------------------------
