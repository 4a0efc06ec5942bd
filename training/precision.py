"""The mixed-precision policy of the generators and the discriminator, in one place.

- Which blocks: those of the `num_fp16_res` highest resolutions (never below 8x8, or below the
  Styleformer's start resolution), as published.
- Which dtype: the Styleformer blocks take `reduced_dtype` ('bfloat16' by default, 'float16'
  works with conv_clamp); the convolutional blocks (StyleGAN2 G, D) run in float16 on CUDA and
  in bfloat16 elsewhere (conv_dtype).
- When: a forward's `precision` is 'auto' (reduced precision on CUDA only: the published code
  never ran fp16 on the CPU), 'full' (always float32) or 'reduced' (on any device, e.g. to
  train in bfloat16 on a CPU with AMX: train.py --precision=reduced). The published keyword `force_fp32` is still accepted:
  True means 'full', False means 'reduced'.
- Training defaults (train.py, and the safe loader's `force_fp16`): REDUCED_PRECISION, i.e.
  the 4 highest resolutions with conv_clamp 256, which keeps float16 activations finite.
"""

import torch

PRECISIONS = ('auto', 'full', 'reduced')
REDUCED_PRECISION = dict(num_fp16_res=4, conv_clamp=256)    # What training uses by default (and --fp32 turns off).
FULL_PRECISION = dict(num_fp16_res=0, conv_clamp=None)
_DTYPES = {'bfloat16': torch.bfloat16, 'bf16': torch.bfloat16, 'float16': torch.float16, 'fp16': torch.float16}

#----------------------------------------------------------------------------

def parse_dtype(name):
    """'bfloat16' / 'float16' -> torch dtype, with a clear error for anything else."""
    if name not in _DTYPES:
        raise ValueError(f'Unknown reduced-precision dtype {name!r}; use one of {sorted(_DTYPES)}.')
    return _DTYPES[name]


def uses_reduced_precision(resolution, img_resolution, num_fp16_res, min_resolution=8):
    """Does the block at `resolution` belong to the `num_fp16_res` highest resolutions?"""
    return num_fp16_res > 0 and resolution >= max(img_resolution * 2 // 2 ** num_fp16_res, min_resolution)


def resolve(precision='auto', force_fp32=None):
    """The precision mode of one forward pass, from `precision` or the published `force_fp32`."""
    if force_fp32 is not None:
        return 'full' if force_fp32 else 'reduced'
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}.')
    return precision


def conv_dtype(device):
    """Reduced dtype of the convolutional blocks: float16 on CUDA (as published); bfloat16
    elsewhere, which CPUs with AMX or AVX-512 BF16 multiply in hardware (they have no fast float16)."""
    return torch.float16 if torch.device(device).type == 'cuda' else torch.bfloat16


def cpu_has_fast_bfloat16():
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX tiles or AVX-512 BF16)."""
    return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()  # pylint: disable=protected-access


def block_dtype(use_reduced, device, precision='auto', reduced_dtype=torch.float16, full_dtype=torch.float32):
    """Working dtype of a block built with `use_reduced` (its `use_fp16`) for a resolved
    `precision` mode; `full_dtype` otherwise (float64 networks are used for gradient checks)."""
    if not use_reduced or precision == 'full':
        return full_dtype
    if precision == 'auto' and device.type != 'cuda':
        return full_dtype
    return reduced_dtype

#----------------------------------------------------------------------------
