"""Adaptive discriminator augmentation (ADA), after Karras et al., "Training Generative
Adversarial Networks with Limited Data" (NeurIPS 2020).

- `AugmentPipe`: the differentiable augmentations applied to every image the discriminator
  sees (reals and fakes). Each transform is applied to each image independently with
  probability `p * strength`; `p` is a buffer that the training loop (or `AdaController`)
  sets. Gradients flow through the pipe to the images, second derivatives included, so R1
  works on augmented reals.
- `augpipe_specs`: the named pipelines of StyleGAN2-ADA's `--augpipe`.
- `AdaController`: the heuristic that moves `p` to keep r_t, the mean sign of D's outputs
  on reals (a measure of overfitting), near a target.

Images are NCHW in about [-1, 1] with 1 (grayscale) or 3 (RGB) channels, any size.
"""

import numpy as np
import torch

from torch_utils import distributed
from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import grid_sample_gradfix
from torch_utils.ops import upfirdn2d

#----------------------------------------------------------------------------
# Named pipelines (StyleGAN2-ADA's --augpipe). Each letter adds one group: b = blit,
# g = geom, c = color, f = filter, n = noise, c (last) = cutout.

_blit = dict(xflip=1, rotate90=1, xint=1)
_geom = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_color = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
_filter = dict(imgfilter=1)
_noise = dict(noise=1)
_cutout = dict(cutout=1)

augpipe_specs = dict(
    blit=_blit, geom=_geom, color=_color, filter=_filter, noise=_noise, cutout=_cutout,
    bg=dict(**_blit, **_geom),
    bgc=dict(**_blit, **_geom, **_color),
    bgcf=dict(**_blit, **_geom, **_color, **_filter),
    bgcfn=dict(**_blit, **_geom, **_color, **_filter, **_noise),
    bgcfnc=dict(**_blit, **_geom, **_color, **_filter, **_noise, **_cutout),
)

#----------------------------------------------------------------------------
# Orthogonal lowpass filters: the published coefficients of the Daubechies least-asymmetric
# wavelets ("symlets") with 2 and 6 vanishing moments (data, as tabulated e.g. by PyWavelets).

_SYM2 = [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025]
_SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
         0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
         -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]

# Image-space filtering splits the spectrum into 4 octave bands (lowest first); natural
# images have roughly 1/f power, which puts 10/13 of the power in the lowest band.
_NUM_BANDS = 4
LINFORMER_MAX_P = 0.7 # The published cap of p with Linformer (`aug_linformer`).
_BAND_POWER = np.array([10, 1, 1, 1]) / 13

def _dilate(f, factor):
    """Insert factor-1 zeros between the taps of a 1-D filter: f(z) -> f(z^factor)."""
    out = np.zeros((len(f) - 1) * factor + 1)
    out[::factor] = f
    return out

def _octave_filter_bank(lowpass, num_bands):
    """Zero-phase 1-D filters [num_bands, taps], lowest band first, that sum to a unit
    impulse: an undecimated wavelet split built from the half-band pair
    L(z) = H(z)H(1/z)/2, B(z) = H(-z)H(-1/z)/2 with L + B = 1 (H orthogonal)."""
    lo = np.asarray(lowpass, dtype=np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2 = np.convolve(lo, lo[::-1]) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bands = []
    smooth = np.ones(1) # Lowpass of all finer octaves so far.
    for octave in range(num_bands - 1):
        bands.append(np.convolve(smooth, _dilate(hi2, 2 ** octave)))
        smooth = np.convolve(smooth, _dilate(lo2, 2 ** octave))
    bands.append(smooth)
    taps = smooth.size
    bank = np.stack([np.pad(b, (taps - b.size) // 2) for b in bands])
    return bank[::-1].copy()

#----------------------------------------------------------------------------
# Batched matrices; entries are numbers or tensors of one common shape.

def _matrix(rows, device):
    entries = [torch.as_tensor(e, dtype=torch.float32, device=device) for row in rows for e in row]
    entries = torch.broadcast_tensors(*entries)
    return torch.stack(entries, dim=-1).unflatten(-1, (len(rows), len(rows[0])))

def _translate2d(tx, ty, device):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], device)

def _scale2d(sx, sy, device):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], device)

def _rotate2d(theta, device):
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], device)

def _translate3d(t, device):
    return _matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], device)

def _scale3d(s, device):
    return _matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], device)

def _rotate3d(axis, theta):
    """Rotation by theta [N] about the unit vector axis[:3] (Rodrigues), as [N, 4, 4]."""
    x, y, z = axis[0], axis[1], axis[2]
    c, s = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    cross = _matrix([[0, -z, y, 0], [z, 0, -x, 0], [-y, x, 0, 0], [0, 0, 0, 0]], axis.device)
    outer = torch.outer(axis, axis)
    eye = torch.eye(4, device=axis.device)
    rot = c * eye + s * cross + (1 - c) * outer
    rot[:, 3, 3] = 1
    return rot

#----------------------------------------------------------------------------

def _mirror_index(idx, size):
    """Map integer pixel indices into [0, size) by mirroring at the edges (edge pixel not
    repeated), as often as needed."""
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = idx.remainder(period)
    return torch.where(idx < size, idx, period - idx)

def _mirror_pad(x, left, right, top, bottom):
    """Reflect padding of any width, also wider than the image."""
    x = x.index_select(3, _mirror_index(torch.arange(-left, x.shape[3] + right, device=x.device), x.shape[3]))
    return x.index_select(2, _mirror_index(torch.arange(-top, x.shape[2] + bottom, device=x.device), x.shape[2]))

#----------------------------------------------------------------------------

class _Draws:
    """The random numbers of one forward pass, drawn with torch's RNG on the images' device,
    and the probability multiplier `p` they are gated with. With a debug percentile q every
    draw is replaced by its q-quantile and every transform is applied, which shows each
    transform at a chosen strength."""

    def __init__(self, batch_size, device, p, debug_percentile=None):
        self.batch_size = batch_size
        self.device = device
        self.p = p
        self.q = None if debug_percentile is None else torch.as_tensor(float(debug_percentile), device=device)

    def uniform(self, *shape):
        if self.q is None:
            return torch.rand([self.batch_size, *shape], device=self.device)
        return self.q.expand(self.batch_size, *shape).clone()

    def normal(self, *shape):
        if self.q is None:
            return torch.randn([self.batch_size, *shape], device=self.device)
        return torch.special.ndtri(self.q).expand(self.batch_size, *shape).clone()

    def gated(self, value, prob, identity, independent=False):
        """`value` where a transform is drawn (probability `prob`), `identity` elsewhere; one
        draw per image, or per element of `value` when `independent`."""
        if self.q is not None:
            return value
        shape = value.shape if independent else [self.batch_size] + [1] * (value.ndim - 1)
        chosen = torch.rand(shape, device=self.device) < prob
        return torch.where(chosen, value, torch.as_tensor(identity, dtype=value.dtype, device=self.device))

#----------------------------------------------------------------------------

@persistence.persistent_class
class AugmentPipe(torch.nn.Module):
    """The ADA augmentation pipeline. Every argument without `_std`/`_max`/`_size`/`_bands`
    is the relative probability of one transform (final probability: that times `p`):

    - pixel blitting: `xflip` (mirror x), `rotate90` (by k*90 degrees), `xint` (integer
      translation, up to `xint_max` of the image size);
    - geometric: `scale` (isotropic, lognormal with `scale_std` octaves), `rotate` (uniform
      up to `rotate_max` half-turns, applied before and after anisotropic scaling, each with
      the probability that makes "either" equal p), `aniso` (`aniso_std` octaves), `xfrac`
      (fractional translation, normal with `xfrac_std` of the image size);
    - color: `brightness` (add, normal with `brightness_std`), `contrast` (`contrast_std`
      octaves), `lumaflip` (mirror the luma axis), `hue` (rotate about the luma axis, up to
      `hue_max` half-turns), `saturation` (`saturation_std` octaves). A grayscale image is
      treated as R = G = B and averaged back, so lumaflip negates it, hue and saturation
      leave it unchanged (and are skipped);
    - `imgfilter`: amplify each of 4 octave bands (lowest first) by `imgfilter_std` octaves,
      with relative probabilities `imgfilter_bands`, keeping the expected image power;
    - `noise`: additive Gaussian noise with std |N(0, noise_std)|;
    - `cutout`: zero a square of `cutout_size` times the image size at a random place.

    Blitting rearranges pixels exactly. The geometric transforms are one resampling per
    image: inverse affine map, mirror padding, 2x upsampling with an orthogonal wavelet
    lowpass, bilinear grid_sample, filtered 2x downsampling. `p` starts at 1 (as
    published); the training loop sets it. `aug_linformer` (published; train.py sets it with
    --linformer) applies the transforms with min(p, 0.7). The random draws use torch's RNG on
    the images' device, so a seeded generator gives the same augmentations.
    """

    def __init__(self,
        xflip=0, rotate90=0, xint=0, xint_max=0.125,
        scale=0, rotate=0, aniso=0, xfrac=0, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125,
        brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0, brightness_std=0.2, contrast_std=0.5, hue_max=1, saturation_std=1,
        imgfilter=0, imgfilter_bands=[1,1,1,1], imgfilter_std=1,
        noise=0, cutout=0, noise_std=0.1, cutout_size=0.5, aug_linformer=False,
    ):
        super().__init__()
        self.aug_linformer = bool(aug_linformer) # Published: with Linformer, transforms use min(p, 0.7).
        strengths = dict(xflip=xflip, rotate90=rotate90, xint=xint, scale=scale, rotate=rotate, aniso=aniso, xfrac=xfrac,
            brightness=brightness, contrast=contrast, lumaflip=lumaflip, hue=hue, saturation=saturation,
            imgfilter=imgfilter, noise=noise, cutout=cutout)
        params = dict(xint_max=xint_max, scale_std=scale_std, rotate_max=rotate_max, aniso_std=aniso_std, xfrac_std=xfrac_std,
            brightness_std=brightness_std, contrast_std=contrast_std, hue_max=hue_max, saturation_std=saturation_std,
            imgfilter_std=imgfilter_std, noise_std=noise_std, cutout_size=cutout_size)
        for name, value in {**strengths, **params}.items():
            if not np.isfinite(float(value)) or float(value) < 0:
                raise ValueError(f'AugmentPipe: {name} must be a finite number >= 0, got {value!r}')
            setattr(self, name, float(value))
        self.imgfilter_bands = [float(b) for b in imgfilter_bands]
        if len(self.imgfilter_bands) != _NUM_BANDS or min(self.imgfilter_bands) < 0:
            raise ValueError(f'AugmentPipe: imgfilter_bands must be {_NUM_BANDS} numbers >= 0 (lowest band first), '
                f'got {imgfilter_bands!r}')

        self.register_buffer('p', torch.ones([])) # Overall probability multiplier.
        self.register_buffer('Hz_geom', upfirdn2d.setup_filter(_SYM6)) # Resampling lowpass.
        self.register_buffer('Hz_fbank', torch.as_tensor(_octave_filter_bank(_SYM2, _NUM_BANDS), dtype=torch.float32))

    def forward(self, images, debug_percentile=None):
        """Augment `images` [N, C, H, W] (C = 1 or 3, floating point). `debug_percentile`
        in (0, 1) applies every enabled transform with each random draw replaced by its
        quantile at that percentile, to look at the transforms; None (training) draws."""
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f'AugmentPipe: expected images [N, C, H, W] with C = 1 (grayscale) or 3 (RGB), '
                f'got {getattr(images, "shape", type(images))}')
        if debug_percentile is None and _free_to_read(self.p) and not bool(self.p > 0):
            return images # Nothing can be drawn at p = 0 (where ADA starts): skip the work.
        p = self.p.clamp(0, LINFORMER_MAX_P) if self.aug_linformer else self.p
        draws = _Draws(images.shape[0], images.device, p, debug_percentile)
        originals = images
        images = self._blit(images, draws)
        images = self._geometric(images, draws)
        images = self._color(images, draws)
        if self.imgfilter > 0:
            images = self._filter(images, draws)
        if self.noise > 0:
            sigma = draws.gated(draws.normal(1, 1, 1).abs() * self.noise_std, self.noise * draws.p, 0)
            images = images + torch.randn_like(images) * sigma.to(images.dtype)
        if self.cutout > 0:
            images = self._cutout(images, draws)
        if debug_percentile is None:
            # At p = 0 every draw is the identity, but resampling is not exact: return the input
            # itself, chosen on the device where reading p would stall the step.
            images = torch.where(self.p > 0, images, originals)
        return images

    def _blit(self, images, draws):
        """Flips, quarter turns and integer translations: an exact rearrangement of each
        image's pixels, mirrored at the edges. (A quarter turn of a non-square image whose
        sides differ by an odd count lands between pixels and takes the next one.)"""
        if max(self.xflip, self.rotate90, self.xint) == 0:
            return images
        batch_size, channels, height, width = images.shape
        dev = images.device
        inv = torch.eye(3, device=dev) # Output pixel -> input pixel, centred coordinates.
        if self.xflip > 0:
            flip = draws.gated(torch.floor(draws.uniform() * 2), self.xflip * draws.p, 0)
            inv = inv @ _scale2d(1 - 2 * flip, 1, dev)
        if self.rotate90 > 0:
            quarter_turns = draws.gated(torch.floor(draws.uniform() * 4), self.rotate90 * draws.p, 0)
            inv = inv @ _rotate2d(-np.pi / 2 * quarter_turns, dev)
        if self.xint > 0:
            t = draws.gated((draws.uniform(2) * 2 - 1) * self.xint_max, self.xint * draws.p, 0)
            inv = inv @ _translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height), dev)

        cx, cy = (width - 1) / 2, (height - 1) / 2
        x = (torch.arange(width, device=dev) - cx)[None, None, :]
        y = (torch.arange(height, device=dev) - cy)[None, :, None]
        inv = inv.round() # Exact small integers: cos(pi/2) is not.
        src_x = inv[:, 0, 0, None, None] * x + inv[:, 0, 1, None, None] * y + inv[:, 0, 2, None, None] + cx
        src_y = inv[:, 1, 0, None, None] * x + inv[:, 1, 1, None, None] * y + inv[:, 1, 2, None, None] + cy
        src_x = _mirror_index(torch.floor(src_x + 0.5).to(torch.int64), width)
        src_y = _mirror_index(torch.floor(src_y + 0.5).to(torch.int64), height)
        src = (src_y * width + src_x).flatten(1)[:, None, :].expand(-1, channels, -1) # [batch, channels, pixels]
        return images.flatten(2).gather(2, src).reshape(batch_size, channels, height, width)

    def _geometric(self, images, draws):
        """Scaling, rotation, anisotropic scaling and fractional translation, composed as
        one inverse map (output pixel -> input pixel, centred pixel units) and executed by a
        single resampling."""
        if max(self.scale, self.rotate, self.aniso, self.xfrac) == 0:
            return images
        _, _, height, width = images.shape
        dev = images.device
        inv = torch.eye(3, device=dev)
        if self.scale > 0:
            s = draws.gated(torch.exp2(draws.normal() * self.scale_std), self.scale * draws.p, 1)
            inv = inv @ _scale2d(1 / s, 1 / s, dev)
        if self.rotate > 0:
            # Rotation comes before and after the anisotropic scaling, each with probability
            # p_rot such that 1 - (1 - p_rot)^2 = rotate * p.
            p_rot = 1 - torch.sqrt((1 - self.rotate * draws.p).clamp(0, 1))
            theta = draws.gated((draws.uniform() * 2 - 1) * np.pi * self.rotate_max, p_rot, 0)
            inv = inv @ _rotate2d(-theta, dev)
        if self.aniso > 0:
            s = draws.gated(torch.exp2(draws.normal() * self.aniso_std), self.aniso * draws.p, 1)
            inv = inv @ _scale2d(1 / s, s, dev)
        if self.rotate > 0:
            theta = draws.gated((draws.uniform() * 2 - 1) * np.pi * self.rotate_max, p_rot, 0)
            inv = inv @ _rotate2d(-theta, dev)
        if self.xfrac > 0:
            t = draws.gated(draws.normal(2) * self.xfrac_std, self.xfrac * draws.p, 0)
            inv = inv @ _translate2d(-t[:, 0] * width, -t[:, 1] * height, dev)
        return self._resample(images, inv)

    def _resample(self, images, inv):
        batch_size, channels, height, width = images.shape
        dev = images.device
        margin = self.Hz_geom.shape[0] // 4 # Filter support on each side, in input pixels.

        # Mirror-pad the input to cover where the output's corners come from, plus the
        # filters' support; beyond one image width, grid_sample reads zeros.
        cx, cy = (width - 1) / 2, (height - 1) / 2
        corners = misc.constant([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]], device=dev)
        src = (inv @ corners)[:, :2, :].transpose(0, 1).flatten(1) # [xy, batch * corner]
        reach = torch.cat([(-src).amax(dim=1), src.amax(dim=1)]) # [left, top, right, bottom]
        reach = reach + misc.constant([2 * margin - cx, 2 * margin - cy] * 2, device=dev)
        reach = reach.clamp(min=0).minimum(misc.constant([width - 1, height - 1] * 2, device=dev))
        left, top, right, bottom = reach.ceil().to(torch.int64).tolist()
        images = _mirror_pad(images, left, right, top, bottom)
        inv = _translate2d((left - right) / 2, (top - bottom) / 2, dev) @ inv

        # Sample at twice the resolution. The symlet lowpass is not symmetric: it delays the
        # upsampled image by about half a pixel, which the map absorbs here; the flipped
        # filter on the way down delays it back.
        images = upfirdn2d.upsample2d(images, self.Hz_geom, up=2)
        inv = _scale2d(2, 2, dev) @ inv @ _scale2d(0.5, 0.5, dev)
        inv = _translate2d(-0.5, -0.5, dev) @ inv @ _translate2d(0.5, 0.5, dev)

        # affine_grid works in [-1, 1] coordinates (align_corners=False). The output keeps
        # `margin` extra pixels per side for the downsampling filter, cropped afterwards.
        out_h, out_w = (height + 2 * margin) * 2, (width + 2 * margin) * 2
        inv = _scale2d(2 / images.shape[3], 2 / images.shape[2], dev) @ inv @ _scale2d(out_w / 2, out_h / 2, dev)
        grid = torch.nn.functional.affine_grid(inv[:, :2, :].to(images.dtype), [batch_size, channels, out_h, out_w], align_corners=False)
        images = grid_sample_gradfix.grid_sample(images, grid)
        return upfirdn2d.downsample2d(images, self.Hz_geom, down=2, padding=-2 * margin, flip_filter=True)

    def _color(self, images, draws):
        """Color transforms as one affine map of (r, g, b), a 4x4 homogeneous matrix per image."""
        channels = images.shape[1]
        use_hue = self.hue > 0 and channels == 3
        use_saturation = self.saturation > 0 and channels == 3
        if max(self.brightness, self.contrast, self.lumaflip) == 0 and not (use_hue or use_saturation):
            return images
        dev = images.device
        eye = torch.eye(4, device=dev)
        luma = misc.constant(np.array([1, 1, 1, 0]) / np.sqrt(3), device=dev) # Unit luma axis.
        luma_proj = torch.outer(luma, luma)
        C = eye
        if self.brightness > 0:
            b = draws.gated(draws.normal() * self.brightness_std, self.brightness * draws.p, 0)
            C = _translate3d(b, dev) @ C
        if self.contrast > 0:
            c = draws.gated(torch.exp2(draws.normal() * self.contrast_std), self.contrast * draws.p, 1)
            C = _scale3d(c, dev) @ C
        if self.lumaflip > 0:
            flip = draws.gated(torch.floor(draws.uniform(1, 1) * 2), self.lumaflip * draws.p, 0)
            C = (eye - 2 * luma_proj * flip) @ C # Householder reflection.
        if use_hue:
            theta = draws.gated((draws.uniform() * 2 - 1) * np.pi * self.hue_max, self.hue * draws.p, 0)
            C = _rotate3d(luma, theta) @ C
        if use_saturation:
            s = draws.gated(torch.exp2(draws.normal(1, 1) * self.saturation_std), self.saturation * draws.p, 1)
            C = (luma_proj + (eye - luma_proj) * s) @ C

        C = C.to(images.dtype)
        rgb = images.expand(-1, 3, -1, -1) # Grayscale: R = G = B.
        out = torch.einsum('nij,njhw->nihw', C[:, :3, :3], rgb) + C[:, :3, 3, None, None]
        return out if channels == 3 else out.mean(dim=1, keepdim=True)

    def _filter(self, images, draws):
        """Random per-band gains of a zero-phase octave filter bank, applied separably."""
        batch_size, channels, height, width = images.shape
        band_power = misc.constant(_BAND_POWER, device=images.device)
        bands = misc.constant(self.imgfilter_bands, device=images.device)
        gains = torch.exp2(draws.normal(_NUM_BANDS) * self.imgfilter_std)
        gains = draws.gated(gains, bands * (self.imgfilter * draws.p), 1, independent=True)
        gains = torch.where(bands > 0, gains, torch.ones_like(gains)) # Disabled bands stay off in debug mode too.
        # Each band's amplification is renormalised to keep the expected power, one band
        # at a time: band i alone scales the power by 1 + w_i (g_i^2 - 1).
        gains = gains / torch.sqrt(1 + band_power * (gains.square() - 1)).prod(dim=1, keepdim=True)
        taps = (gains @ self.Hz_fbank).to(images.dtype) # [batch, taps]
        taps = taps.repeat_interleave(channels, dim=0)[:, None, None, :] # [batch * channels, 1, 1, taps]

        half = self.Hz_fbank.shape[1] // 2
        x = _mirror_pad(images, half, half, half, half).reshape(1, batch_size * channels, height + 2 * half, width + 2 * half)
        x = conv2d_gradfix.conv2d(x, taps, groups=batch_size * channels) # Horizontal.
        x = conv2d_gradfix.conv2d(x, taps.transpose(2, 3), groups=batch_size * channels) # Vertical.
        return x.reshape(batch_size, channels, height, width)

    def _cutout(self, images, draws):
        batch_size, _, height, width = images.shape
        dev = images.device
        size = draws.gated(torch.full([batch_size, 1], self.cutout_size, device=dev), self.cutout * draws.p, 0)
        center = draws.uniform(2)
        xs = (torch.arange(width, device=dev) + 0.5) / width
        ys = (torch.arange(height, device=dev) + 0.5) / height
        outside_x = (xs[None, :] - center[:, 0:1]).abs() >= size / 2 # [batch, width]
        outside_y = (ys[None, :] - center[:, 1:2]).abs() >= size / 2 # [batch, height]
        keep = outside_x[:, None, None, :] | outside_y[:, None, :, None]
        return images * keep.to(images.dtype)


def _free_to_read(tensor):
    """Reading a CPU tensor on the host costs nothing; reading a GPU tensor waits for the GPU."""
    return tensor.device.type == 'cpu'

#----------------------------------------------------------------------------

class AdaController:
    """The ADA heuristic for `augment_pipe.p` (Karras et al. 2020, section 3).

    r_t = E[sign(D(augmented reals))] measures overfitting: 0 while D generalises, 1 when it
    is sure of every real. Every `interval` training steps, p moves by
    batch_size * interval / (ada_kimg * 1000) up when r_t > target and down when r_t < target
    (so it can traverse 0 -> 1 in `ada_kimg` kimg), never below 0; as published, p may pass 1,
    where the transforms are always applied. With `target=None`, p stays fixed (`--aug=fixed`)
    and r_t is still measured for logging. `--aug=noaug` (or a fixed p of 0) builds neither
    the augment pipe nor a controller.

    Usage, with `batch_size` the global batch (all ranks together):

        ada = AdaController(augment_pipe, batch_size=64, target=0.6)
        for each training step:
            ... ada.accumulate(real_logits)  # or ada.accumulate_sums(sign_sum, count)
            ada.step()                       # once per step, on every rank
        log ada.p, ada.rt; save ada.state_dict() with the training state.

    Under torch.distributed, `step` sums the tallies over all ranks (a collective: every rank
    must call it), so all ranks keep the same p.
    """

    def __init__(self, augment_pipe, batch_size, target=0.6, interval=4, ada_kimg=500):
        if not (isinstance(interval, int) and interval >= 1):
            raise ValueError(f'AdaController: interval must be an integer >= 1 (steps between adjustments), got {interval!r}')
        if not ada_kimg > 0 or not batch_size > 0:
            raise ValueError(f'AdaController: batch_size and ada_kimg must be > 0, got {batch_size!r} and {ada_kimg!r}')
        if target is not None and not 0 <= target <= 1:
            raise ValueError(f'AdaController: target must be in [0, 1] (or None for a fixed p), got {target!r}')
        self.augment_pipe = augment_pipe
        self.batch_size = batch_size
        self.target = target
        self.interval = interval
        self.ada_kimg = ada_kimg
        self._steps = 0     # Steps since the start of training.
        self._tally = None  # float64 [sum of signs, count] since the last adjustment.
        # r_t of the last completed interval, on the device (NaN before the first): the
        # adjustment of p never waits for the device; only reading `rt` does.
        self._rt = torch.full([], float('nan'), dtype=torch.float64, device=augment_pipe.p.device)

    @property
    def adaptive(self):
        return self.target is not None

    @property
    def p(self):
        return float(self.augment_pipe.p)

    @property
    def rt(self):
        """r_t of the last completed interval, or None before the first."""
        rt = float(self._rt)
        return None if np.isnan(rt) else rt

    def accumulate_sums(self, sign_sum, count):
        """Add the sum of sign(D(real)) over `count` real images."""
        sign_sum = torch.as_tensor(sign_sum).detach()
        tally = torch.stack([sign_sum.to(torch.float64), torch.as_tensor(count, dtype=torch.float64, device=sign_sum.device)])
        self._tally = tally if self._tally is None else self._tally + tally.to(self._tally.device)

    def accumulate(self, real_logits):
        """Add D's outputs (any shape, one per image) on a batch of augmented reals."""
        self.accumulate_sums(real_logits.detach().sign().sum(), real_logits.numel())

    def step(self):
        """Count one training step; at the end of each interval, update r_t and p on the
        device (unless D saw no reals in it)."""
        self._steps += 1
        if self._steps % self.interval != 0:
            return
        p = self.augment_pipe.p
        tally = self._tally if self._tally is not None else torch.zeros([2], dtype=torch.float64, device=p.device)
        sign_sum, count = distributed.all_reduce_sum(tally).to(p.device)
        self._tally = None
        seen_reals = count > 0 # The same on all ranks (summed tally).
        rt = sign_sum / count.clamp(min=1)
        self._rt = torch.where(seen_reals, rt, self._rt)
        if self.adaptive:
            step_size = (self.batch_size * self.interval) / (self.ada_kimg * 1000)
            adjusted = (p + torch.sign(rt - self.target).to(p.dtype) * step_size).clamp(min=0) # As published: no upper bound.
            p.copy_(torch.where(seen_reals, adjusted, p))

    def state_dict(self):
        """Everything needed to continue exactly: p, the step count, the open tally, r_t."""
        tally = None if self._tally is None else self._tally.detach().cpu().clone()
        return dict(p=self.augment_pipe.p.detach().cpu().clone(), steps=self._steps, tally=tally, rt=self.rt)

    def load_state_dict(self, state):
        p = self.augment_pipe.p
        p.copy_(torch.as_tensor(state['p']).to(p.device))
        self._steps = int(state['steps'])
        self._tally = None if state['tally'] is None else torch.as_tensor(state['tally'], dtype=torch.float64).to(p.device)
        self._rt.fill_(float('nan') if state['rt'] is None else state['rt'])

#----------------------------------------------------------------------------
