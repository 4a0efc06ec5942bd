"""Styleformer generator: a StyleGAN2-style generator whose synthesis layers are modulated
self-attention over the pixels of each resolution instead of convolutions.

The state-dict keys and the constructor kwargs are those of the published snapshots
(`training.networks_Generator.Generator`), so their weights load with `strict=True`.
See docs/architecture.md for a diagram and a walk through the code.

Attention implementations
-------------------------
Every encoder layer mixes its tokens with one of two implementations of the same maths:

- 'fast' (default): the style modulation/demodulation is folded into per-sample scales
  of the activations (the demodulation coefficients come from `styles^2 @ W^2`, so no
  [batch, out, in] weight is built), q/k/v come from one fused matmul and the attention
  core runs in `torch.nn.functional.scaled_dot_product_attention` (flash / memory-efficient
  kernels on CUDA, the fused flash kernel on the CPU), which never stores the attention map.
- 'math': the published formulation; modulated weights and the softmax attention map are
  materialized. Used by the tests (as the reference) and by the benchmark.

Choose one per network with the constructor argument `attention_impl='fast' | 'math'` of the
synthesis network (`synthesis_kwargs` of G; not saved in the state dict), or per call with
`G.synthesis(ws, attention_impl=...)` / `G(z, c, attention_impl=...)`.
`G.synthesis(ws, return_attention=True)` also returns the maps (computed with the 'math'
formulation only for that call).

Second derivatives (path-length regularization, gradient penalties through G) need no switch:
the fused kernels have no double backward, so the fast path wraps them in `_FusedAttention`,
an autograd.Function whose backward checks `torch.is_grad_enabled()`. That is true exactly
when the caller asked for `create_graph=True`; the backward then recomputes the attention
with differentiable math and differentiates it, so the returned gradient can itself be
differentiated. Otherwise it reuses the fused kernel's own backward (no recomputation).

Mixed precision (training/precision.py): the blocks of the highest `num_fp16_res` resolutions
run in `reduced_dtype` (bfloat16 by default, float16 with the conv_clamp also works) on CUDA;
on the CPU everything runs in float32 unless `precision='reduced'` is passed explicitly. Styles, demodulation sums,
the toRGB layers and the image path always stay in float32.
"""

import numpy as np
import torch
import torch.nn.functional as F

from torch_utils import persistence
from torch_utils.ops import bias_act
from torch_utils.ops import upfirdn2d
from training import precision as mp
from training.layers import MappingSynthesisGenerator, FullyConnectedLayer, MappingNetwork, check_shape

__all__ = ['Generator', 'SynthesisNetwork', 'EncoderBlock', 'Encoderlayer', 'ToRGBLayer', 'MappingNetwork',
           'ATTENTION_IMPLS']

#----------------------------------------------------------------------------
# Attention implementations (see the module docstring).

ATTENTION_IMPLS = ('fast', 'math')


def _check_attention_impl(impl):
    if impl not in ATTENTION_IMPLS:
        raise ValueError(f'Unknown attention implementation {impl!r}; use one of {ATTENTION_IMPLS}.')
    return impl

#----------------------------------------------------------------------------
# Attention cores. q, k, v: [batch, heads, tokens, head_dim].

def attention_math(q, k, v):
    """Softmax attention with the map materialized. Returns (output, map)."""
    scores = torch.matmul(q, k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    attn = scores.softmax(dim=-1)
    return torch.matmul(attn, v), attn


class _FusedAttention(torch.autograd.Function):
    """Fused SDPA forward; backward from the fused kernel, or from differentiable math when
    the caller builds a graph of the gradient (create_graph=True)."""

    @staticmethod
    def forward(ctx, q, k, v):
        # Keep a private graph of the fused call so the first-order backward can reuse its saved state.
        with torch.enable_grad():
            inner = [t.detach().requires_grad_(True) for t in (q, k, v)]
            out = F.scaled_dot_product_attention(*inner)
        ctx.save_for_backward(q, k, v)
        ctx.inner = (inner, out)
        return out.detach()

    @staticmethod
    def backward(ctx, grad_out):
        if torch.is_grad_enabled():
            q, k, v = ctx.saved_tensors
            out, _attn = attention_math(q, k, v)
            return torch.autograd.grad(out, (q, k, v), grad_out, create_graph=True)
        inner, out = ctx.inner
        return torch.autograd.grad(out, inner, grad_out, retain_graph=True)


def attention_fused(q, k, v):
    # A compiled graph never runs double backward (the loss keeps R1/path length eager), and
    # inductor fuses the plain SDPA call, so compiled code skips the autograd.Function.
    if torch.compiler.is_compiling():
        return F.scaled_dot_product_attention(q, k, v)
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return _FusedAttention.apply(q, k, v)
    return F.scaled_dot_product_attention(q, k, v)

#----------------------------------------------------------------------------
# Demodulation: rsqrt(sum_in (W[out, in] * s[b, in])^2 + 1e-8), always in float32.

def demodulation(weight, styles, materialize=False):
    if materialize: # Published formulation: builds the [batch, out, in] modulated weight.
        return ((weight.unsqueeze(0) * styles.unsqueeze(1)).square().sum(dim=2) + 1e-8).rsqrt()
    return (styles.square() @ weight.square().t() + 1e-8).rsqrt()


def _uniform_weight(out_features, in_features):
    bound = 1 / np.sqrt(in_features)
    return torch.nn.Parameter(torch.empty([out_features, in_features]).uniform_(-bound, bound))

#----------------------------------------------------------------------------

@persistence.persistent_class
class Encoderlayer(torch.nn.Module):
    """One modulated self-attention layer over the tokens (pixels) of one resolution."""

    def __init__(self,
        h_dim,                  # Token width (hidden size) at this resolution.
        w_dim,                  # Size of w.
        out_dim,                # Output token width.
        seq_length,             # Number of tokens (resolution ** 2).
        depth,                  # Target width per head: heads = max(minimum_head, h_dim // depth).
        minimum_head,           # Lower bound on the number of heads.
        conv_clamp  = None,     # Clamp the output to +-conv_clamp, None = no clamping.
        proj_weight = None,     # Linformer projection [proj_length, seq_length] shared with the block, or None.
    ):
        super().__init__()
        self.h_dim = h_dim
        self.w_dim = w_dim
        self.out_dim = out_dim
        self.seq_length = seq_length
        self.num_heads = max(minimum_head, h_dim // depth)
        if h_dim % self.num_heads != 0:
            raise ValueError(f'Hidden size {h_dim} does not split into {self.num_heads} heads; '
                             f'choose G_dict, depth and minimum_head so that the heads divide it.')
        self.conv_clamp = conv_clamp
        self.affine1 = FullyConnectedLayer(w_dim, h_dim * 2, bias_init=1)
        self.q_weight = _uniform_weight(h_dim, h_dim)
        self.k_weight = _uniform_weight(h_dim, h_dim)
        self.v_weight = _uniform_weight(h_dim, h_dim)
        self.w_weight = _uniform_weight(out_dim, h_dim)
        self.proj_weight = proj_weight
        self.u_weight = _uniform_weight(out_dim, h_dim)
        self.register_buffer('noise_const', torch.randn([seq_length, 1]))
        self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_dim]))

    def forward(self, x, w, noise_mode='random', attention_impl='fast', return_attention=False):
        """x: [batch, seq_length, h_dim] -> ([batch, seq_length, out_dim], attention map or None)."""
        styles = self.affine1(w)
        s_in, s_out = styles[:, :self.h_dim], styles[:, self.h_dim:]
        x = x * s_in.to(x.dtype).unsqueeze(1)
        x = F.layer_norm(x, [self.h_dim], eps=1e-5) # Each token over its channels, no affine.
        if return_attention or attention_impl == 'math':
            x, attn = self._mix_math(x, s_in, s_out)
        else:
            x, attn = self._mix_fast(x, s_in, s_out), None

        if noise_mode == 'random':
            x = x + torch.randn([x.shape[0], self.seq_length, 1], device=x.device, dtype=x.dtype) * self.noise_strength.to(x.dtype)
        elif noise_mode == 'const':
            x = x + (self.noise_const * self.noise_strength).to(x.dtype)
        x = bias_act.bias_act(x, self.bias.to(x.dtype), dim=2, act='lrelu', gain=1, clamp=self.conv_clamp)
        return x, attn

    def _split_heads(self, t):
        return t.unflatten(-1, [self.num_heads, -1]).transpose(1, 2)

    def _merge_heads(self, t):
        return t.transpose(1, 2).flatten(2)

    def _mix_math(self, x, s_in, s_out):
        """Published formulation: materialized modulated weights and attention map."""
        dt = x.dtype
        def project(weight, styles, t):
            return torch.matmul(t, weight.t().to(dt)) * demodulation(weight, styles, materialize=True).to(dt).unsqueeze(1)
        q = project(self.q_weight, s_in, x)
        k = project(self.k_weight, s_in, x)
        v = project(self.v_weight, s_in, x) * s_out.to(dt).unsqueeze(1)
        skip = v
        if self.proj_weight is not None:
            k = torch.matmul(self.proj_weight.to(dt), k)
            v = torch.matmul(self.proj_weight.to(dt), v)
        out, attn = attention_math(self._split_heads(q), self._split_heads(k), self._split_heads(v))
        out = self._merge_heads(out)
        return project(self.w_weight, s_out, out) + project(self.u_weight, s_out, skip), attn

    def _mix_fast(self, x, s_in, s_out):
        """Same maths with per-sample scales on the activations and fused attention."""
        dt, c = x.dtype, self.h_dim
        qkv_weight = torch.cat([self.q_weight, self.k_weight, self.v_weight])
        dq, dk, dv = demodulation(qkv_weight, s_in).split(c, dim=1)
        q, k, v = torch.matmul(x, qkv_weight.t().to(dt)).split(c, dim=-1)
        # q.k only sees the product of the q and k scales, so k stays unscaled.
        q = q * (dq * dk).to(dt).unsqueeze(1)
        v = v * (dv * s_out).to(dt).unsqueeze(1)
        v_attn = v
        if self.proj_weight is not None:
            proj = self.proj_weight.to(dt)
            k, v_attn = torch.matmul(proj, k), torch.matmul(proj, v)
        out = self._merge_heads(attention_fused(self._split_heads(q), self._split_heads(k), self._split_heads(v_attn)))
        dw = demodulation(self.w_weight, s_out).to(dt).unsqueeze(1)
        du = demodulation(self.u_weight, s_out).to(dt).unsqueeze(1)
        skip = torch.matmul(v, self.u_weight.t().to(dt)) * du
        return torch.addcmul(skip, torch.matmul(out, self.w_weight.t().to(dt)), dw)

    def extra_repr(self):
        return f'h_dim={self.h_dim}, out_dim={self.out_dim}, seq_length={self.seq_length}, num_heads={self.num_heads}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class ToRGBLayer(torch.nn.Module):
    """Modulated and demodulated 1x1 projection of the tokens to image channels (float32)."""

    def __init__(self, in_channels, out_channels, w_dim):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = _uniform_weight(out_channels, in_channels)
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, resolution, attention_impl='fast'):
        """x: [batch, resolution**2, in_channels] -> image [batch, out_channels, resolution, resolution]."""
        styles = self.affine(w)
        dcoefs = demodulation(self.weight, styles, materialize=(attention_impl == 'math'))
        y = torch.matmul(x.to(styles.dtype) * styles.unsqueeze(1), self.weight.t()) * dcoefs.unsqueeze(1)
        y = y + self.bias
        return y.transpose(1, 2).reshape(x.shape[0], self.out_channels, resolution, resolution)

#----------------------------------------------------------------------------

@persistence.persistent_class
class EncoderBlock(torch.nn.Module):
    """One encoder layer at one resolution, plus what the block's position requires: the learned
    constant input (first block overall), a positional embedding (first block of a resolution),
    toRGB and 2x upsampling (last block of a resolution)."""

    def __init__(self,
        h_dim,                          # Token width at this resolution.
        w_dim,                          # Size of w.
        out_dim,                        # Token width of the next resolution (used by the last block), None = h_dim.
        depth,                          # Target width per head.
        minimum_head,                   # Lower bound on the number of heads.
        img_resolution,                 # Output image resolution.
        resolution,                     # Resolution of this block.
        img_channels,                   # Number of image channels.
        is_first,                       # First block of its resolution?
        is_last,                        # Last block of its resolution?
        start_resolution    = 8,        # Resolution of the learned constant input.
        linformer           = False,    # Project k and v along the tokens at large resolutions?
        linformer_length    = 256,      # Projected number of tokens.
        linformer_min_resolution = 32,  # First resolution that uses the projection.
        conv_clamp          = None,     # Clamp the layer output to +-conv_clamp.
        use_fp16            = False,    # Run in reduced precision (on CUDA, see module docstring)?
        reduced_dtype       = 'bfloat16', # Reduced-precision dtype: 'bfloat16' or 'float16'.
        resample_filter     = [1,3,3,1],# Low-pass filter of the 2x upsampling.
    ):
        super().__init__()
        self.h_dim = h_dim
        self.w_dim = w_dim
        self.out_dim = out_dim if (is_last and out_dim is not None) else h_dim
        self.img_resolution = img_resolution
        self.resolution = resolution
        self.img_channels = img_channels
        self.seq_length = resolution * resolution
        self.is_first = is_first
        self.is_last = is_last
        self.use_fp16 = use_fp16
        self.reduced_dtype = mp.parse_dtype(reduced_dtype)
        self.num_ws_used = 2 if is_last else 1 # The toRGB layer reads the next block's w.
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))

        self.proj_weight = None
        if linformer and resolution >= linformer_min_resolution:
            self.proj_weight = _uniform_weight(linformer_length, self.seq_length)
        if is_first and resolution == start_resolution:
            self.const = torch.nn.Parameter(torch.randn([self.seq_length, h_dim]))
        if is_first:
            self.pos_embedding = torch.nn.Parameter(torch.zeros([1, self.seq_length, h_dim]))
        self.enc = Encoderlayer(h_dim=h_dim, w_dim=w_dim, out_dim=self.out_dim, seq_length=self.seq_length,
            depth=depth, minimum_head=minimum_head, conv_clamp=conv_clamp, proj_weight=self.proj_weight)
        if is_last:
            self.torgb = ToRGBLayer(self.out_dim, img_channels, w_dim=w_dim)

    def forward(self, x, img, ws, noise_mode='random', precision='auto', attention_impl='fast', return_attention=False):
        """ws: [batch, num_ws_used, w_dim]. Returns (x, img, attention map or None)."""
        dtype = mp.block_dtype(self.use_fp16, ws.device, precision, self.reduced_dtype, full_dtype=ws.dtype)
        if hasattr(self, 'const'):
            x = self.const.to(dtype).unsqueeze(0).expand(ws.shape[0], -1, -1)
        else:
            check_shape(x, [ws.shape[0], self.seq_length, self.h_dim], f'Input of block at {self.resolution}x{self.resolution}')
            x = x.to(dtype)
        if self.is_first:
            x = x + self.pos_embedding.to(dtype)
        x, attn = self.enc(x, ws[:, 0], noise_mode=noise_mode, attention_impl=attention_impl, return_attention=return_attention)

        if self.is_last:
            if img is not None:
                img = upfirdn2d.upsample2d(img, self.resample_filter)
            y = self.torgb(x, ws[:, 1], self.resolution, attention_impl)
            img = img + y if img is not None else y
            if self.resolution != self.img_resolution:
                x = x.transpose(1, 2).reshape(x.shape[0], self.out_dim, self.resolution, self.resolution)
                x = upfirdn2d.upsample2d(x, self.resample_filter)
                x = x.flatten(2).transpose(1, 2)
        return x, img, attn

    def extra_repr(self):
        return f'resolution={self.resolution}, h_dim={self.h_dim}, out_dim={self.out_dim}, use_fp16={self.use_fp16}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    def __init__(self,
        w_dim,                      # Size of w.
        img_resolution,             # Output resolution: start_resolution * 2**k.
        img_channels,               # Number of output image channels.
        depth,                      # Target width per attention head.
        minimum_head,               # Lower bound on the number of heads.
        num_layers,                 # Number of encoder blocks per resolution.
        G_dict,                     # Token width per resolution.
        conv_clamp,                 # Clamp the layer outputs to +-conv_clamp, None = no clamping.
        channel_base    = 8192,     # Accepted for snapshot compatibility; the widths come from G_dict.
        channel_max     = 256,      # Accepted for snapshot compatibility; the widths come from G_dict.
        num_fp16_res    = 0,        # Reduced precision for this many of the highest resolutions.
        linformer       = False,    # Linformer projection of k and v at large resolutions?
        linformer_length = 256,     # Number of tokens k and v are projected to.
        linformer_min_resolution = 32, # First resolution with the projection.
        start_resolution = 8,       # Resolution of the learned constant (12 for 48x48 / 96x96).
        reduced_dtype   = 'bfloat16', # 'bfloat16' or 'float16' for the reduced-precision blocks.
        attention_impl  = 'fast',   # Default attention implementation: 'fast' or 'math' (module docstring).
    ):
        super().__init__()
        del channel_base, channel_max
        self.attention_impl = _check_attention_impl(attention_impl)
        log2_ratio = np.log2(img_resolution / start_resolution) if img_resolution >= start_resolution else -1
        if log2_ratio < 0 or log2_ratio != int(log2_ratio):
            raise ValueError(f'img_resolution={img_resolution} must be start_resolution={start_resolution} times a power '
                             f'of two (use start_resolution=12 for 48x48 or 96x96 images).')
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [start_resolution * 2 ** i for i in range(int(log2_ratio) + 1)]
        self.num_block = list(num_layers)
        if len(self.num_block) != len(self.block_resolutions) or len(G_dict) < len(self.block_resolutions):
            raise ValueError(f'Resolutions {self.block_resolutions} need one num_layers entry and one G_dict entry each; '
                             f'got num_layers={list(num_layers)}, G_dict={list(G_dict)}.')
        widths = dict(zip(self.block_resolutions, G_dict))

        self.num_ws = 0
        self.block_names = [] # Execution order; the blocks themselves are attributes b{res}_{j}.
        for res, num_blocks in zip(self.block_resolutions, self.num_block):
            for j in range(num_blocks):
                block = EncoderBlock(h_dim=widths[res], w_dim=w_dim, out_dim=widths.get(res * 2), depth=depth,
                    minimum_head=minimum_head, img_resolution=img_resolution, resolution=res, img_channels=img_channels,
                    is_first=(j == 0), is_last=(j == num_blocks - 1), start_resolution=start_resolution,
                    linformer=linformer, linformer_length=linformer_length, linformer_min_resolution=linformer_min_resolution,
                    conv_clamp=conv_clamp, use_fp16=mp.uses_reduced_precision(res, img_resolution, num_fp16_res, start_resolution), reduced_dtype=reduced_dtype)
                setattr(self, f'b{res}_{j}', block)
                self.block_names.append(f'b{res}_{j}')
            # One w per block plus one per resolution (its toRGB); kept for snapshot compatibility.
            self.num_ws += num_blocks + 1

    def forward(self, ws, noise_mode='random', precision='auto', force_fp32=None, attention_impl=None, return_attention=False):
        """ws: [batch, num_ws, w_dim] -> image [batch, img_channels, img_resolution, img_resolution]
        (and the list of attention maps [batch, heads, tokens, keys], one per block, if asked).
        precision: 'auto', 'full' or 'reduced' (training/precision.py); force_fp32 is the published spelling.
        attention_impl: 'fast' or 'math' for this call, None = the network's own."""
        precision, attention_impl = self.resolve_options(noise_mode, precision, force_fp32, attention_impl)
        check_shape(ws, [None, self.num_ws, self.w_dim], 'ws')
        _x, img, maps = self.run_blocks(ws, noise_mode, precision, attention_impl, return_attention)
        return (img, maps) if return_attention else img

    def resolve_options(self, noise_mode, precision, force_fp32, attention_impl):
        """(precision mode, attention implementation) of one forward, after checking the options."""
        if noise_mode not in ('random', 'const', 'none'):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}.")
        return mp.resolve(precision, force_fp32), _check_attention_impl(attention_impl or self.attention_impl)

    def run_blocks(self, ws, noise_mode, precision, attention_impl, return_attention):
        """The blocks in order, with checked arguments; ws: [batch, >= num_ws_read, w_dim].
        Returns (tokens of the last block [batch, img_resolution**2, G_dict[-1]], image, maps):
        Styleformer-C (training/networks_StyleformerC.py) continues from the tokens."""
        ws = ws.to(getattr(self, self.block_names[0]).const.dtype) # float32, or float64 for gradient checks.
        x = img = None
        maps = []
        for w_idx, name in enumerate(self.block_names):
            block = getattr(self, name)
            x, img, attn = block(x, img, ws[:, w_idx:w_idx + block.num_ws_used], noise_mode=noise_mode,
                                 precision=precision, attention_impl=attention_impl, return_attention=return_attention)
            maps.append(attn)
        return x, img, maps

    @property
    def num_ws_read(self):
        """The w's the blocks read: one per block plus the last toRGB's (num_ws counts more)."""
        return len(self.block_names) + 1

    def extra_repr(self):
        return f'w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, blocks={self.num_block}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(MappingSynthesisGenerator):
    """Styleformer generator: Transformer synthesis. See training.layers.MappingSynthesisGenerator."""
    synthesis_class = SynthesisNetwork

#----------------------------------------------------------------------------
