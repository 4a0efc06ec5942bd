"""Styleformer-C (Park & Kim, CVPR 2022): the Styleformer generator up to a switch resolution,
where self-attention over all pixels lays out the scene and the relations between objects,
then StyleGAN2's modulated-convolution blocks up to the image, which are cheap at high
resolution.

Both parts are the existing classes, unchanged: `synthesis.transformer` is a Styleformer
`networks_Generator.SynthesisNetwork` whose image resolution is the switch resolution, and
`synthesis.b{res}` are StyleGAN2 `networks.SynthesisBlock`s ('skip' architecture) from twice
the switch resolution up. One mapping network feeds one `ws` layout (docs/architecture.md):

    ws index  0 .. B-1      the B transformer blocks, one w each (toRGB: the next block's w)
              B             the first convolution above the switch (and the last transformer toRGB)
              B+1 ..        the convolutions above, two per resolution; the last one more for the final toRGB

so neighbouring layers share a w exactly as in StyleGAN2 and every w is read. The hand-over:
the last transformer block's tokens [N, switch**2, C] are reshaped to a feature map
[N, C, switch, switch], which the first convolutional block upsamples 2x; the transformer's
image at the switch resolution is upsampled and summed with the toRGB outputs above it.

Mixed precision follows training/precision.py over the whole network: the `num_fp16_res`
highest resolutions, counted from the image, so a transformer stage is in reduced precision
only when it is among them. Attention options (`attention_impl`, `return_attention`, Linformer)
apply to the transformer part; the convolutional part uses the custom ops as in StyleGAN2.
"""

import numpy as np
import torch

from torch_utils import persistence
from training import networks as conv_networks
from training import networks_Generator as former
from training import precision as mp
from training.layers import MappingSynthesisGenerator, check_shape

__all__ = ['SynthesisNetwork', 'Generator']

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    def __init__(self,
        w_dim,                      # Size of w.
        img_resolution,             # Output resolution: switch_resolution * 2**k, k >= 1.
        img_channels,               # Number of output image channels.
        switch_resolution,          # Last transformer resolution; convolutions above it.
        depth,                      # Transformer: target width per attention head.
        minimum_head,               # Transformer: lower bound on the number of heads.
        num_layers,                 # Transformer: encoder blocks per resolution (start .. switch).
        G_dict,                     # Transformer: token width per resolution (start .. switch).
        conv_clamp      = None,     # Clamp the layer outputs of both parts to +-conv_clamp.
        channel_base    = 16384,    # Convolutions: channels at resolution r are min(channel_base // r, channel_max).
        channel_max     = 512,      # Convolutions: maximum number of channels.
        num_fp16_res    = 0,        # Reduced precision for this many of the highest resolutions (both parts).
        start_resolution = 8,       # Transformer: resolution of the learned constant.
        fp16_channels_last = False, # Convolutions: channels_last memory format in reduced precision?
        **transformer_kwargs,       # Transformer: linformer, linformer_length, linformer_min_resolution, reduced_dtype, attention_impl.
    ):
        super().__init__()
        log2_ratio = np.log2(img_resolution / switch_resolution) if img_resolution > switch_resolution else 0
        if log2_ratio < 1 or log2_ratio != int(log2_ratio):
            raise ValueError(f'img_resolution={img_resolution} must be switch_resolution={switch_resolution} times 2, 4, 8, ...; '
                             f'pick a smaller switch resolution (or use the Styleformer generator for transformer-only synthesis).')
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.switch_resolution = switch_resolution
        conv_fp16_res = min(num_fp16_res, int(log2_ratio))
        self.transformer = former.SynthesisNetwork(w_dim=w_dim, img_resolution=switch_resolution, img_channels=img_channels,
            depth=depth, minimum_head=minimum_head, num_layers=num_layers, G_dict=G_dict, conv_clamp=conv_clamp,
            num_fp16_res=num_fp16_res - conv_fp16_res, start_resolution=start_resolution, **transformer_kwargs)
        self.block_names = [f'transformer.{name}' for name in self.transformer.block_names] # The attention blocks.

        self.conv_resolutions = [switch_resolution * 2 ** i for i in range(1, int(log2_ratio) + 1)]
        in_channels = G_dict[len(self.transformer.block_resolutions) - 1]
        self.num_ws = len(self.transformer.block_names)
        for res in self.conv_resolutions:
            out_channels = min(channel_base // res, channel_max)
            block = conv_networks.SynthesisBlock(in_channels, out_channels, w_dim=w_dim, resolution=res, img_channels=img_channels,
                is_last=(res == img_resolution), architecture='skip', conv_clamp=conv_clamp, fp16_channels_last=fp16_channels_last,
                use_fp16=mp.uses_reduced_precision(res, img_resolution, conv_fp16_res))
            setattr(self, f'b{res}', block)
            self.num_ws += block.num_conv
            in_channels = out_channels
        self.num_ws += 1 # The final toRGB.

    def forward(self, ws, noise_mode='random', precision='auto', force_fp32=None, attention_impl=None, return_attention=False,
                fused_modconv=None):
        """ws: [batch, num_ws, w_dim] -> image [batch, img_channels, img_resolution, img_resolution]
        (and the attention maps of the transformer blocks, in `block_names` order, if asked).
        precision: 'auto', 'full' or 'reduced' (training/precision.py); force_fp32 is the published spelling.
        attention_impl: 'fast' or 'math' for the transformer, None = its own. fused_modconv: see networks.SynthesisBlock."""
        precision, attention_impl = self.transformer.resolve_options(noise_mode, precision, force_fp32, attention_impl)
        check_shape(ws, [None, self.num_ws, self.w_dim], 'ws')
        handover = self.transformer.num_ws_read - 1 # The first conv's w is also the last transformer toRGB's.
        tokens, img, maps = self.transformer.run_blocks(ws[:, :handover + 1], noise_mode, precision, attention_impl, return_attention)

        # Hand-over: tokens in raster order [N, res*res, C] -> feature map [N, C, res, res].
        res = self.switch_resolution
        x = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], res, res)
        ws = ws.to(torch.float32)
        w_idx = handover
        for res in self.conv_resolutions:
            block = getattr(self, f'b{res}')
            x, img = block(x, img, ws.narrow(1, w_idx, block.num_conv + block.num_torgb), precision=precision,
                           fused_modconv=fused_modconv, noise_mode=noise_mode)
            w_idx += block.num_conv
        return (img, maps) if return_attention else img

    def extra_repr(self):
        return (f'w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, '
                f'switch_resolution={self.switch_resolution}')

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(MappingSynthesisGenerator):
    """Styleformer-C generator: transformer synthesis up to the switch resolution, modulated
    convolutions above. See training.layers.MappingSynthesisGenerator."""
    synthesis_class = SynthesisNetwork

#----------------------------------------------------------------------------
