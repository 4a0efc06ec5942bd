"""Training configurations selectable with `train.py --cfg`.

Two kinds live here:
- StyleGAN2-ADA's base configurations (`auto`, `stylegan2`, `paper256`, `paper512`,
  `paper1024`, `cifar`): training hyperparameters only. With them the generator shape comes
  from --g_dict/--num_layers/--depth/--minimum_head/--linformer (published defaults below).
- Styleformer presets: a base configuration plus a full generator shape for one dataset
  resolution, and `tiny`, a small generator and discriminator that learn on a CPU in minutes.
  The `styleformer-c-*` presets select Styleformer-C (a `switch_res`; docs/styleformer-c.md).

The numbers of the base configurations are the published StyleGAN2-ADA table. Styleformer's
CIFAR-10 shape (hidden sizes 1024,512,512; layers 1,3,3; depth 32) is the paper's
Styleformer-Large; the other Styleformer shapes follow the paper's appendix as far as we
could establish it; `tiny` is ours.
"""

import math

import dnnlib

#----------------------------------------------------------------------------
# StyleGAN2-ADA base configurations. Fields: ref_gpus (GPU count the batch is laid out for),
# kimg (training length), mb (batch), mbstd (minibatch-std group), fmaps (channel_base
# multiplier of 32768), lrate, gamma (R1), ema (G EMA half-life in kimg), ramp (EMA
# ramp-up), map (mapping layers).

BASE_CONFIGS = {
    'stylegan2': dict(ref_gpus=8, kimg=25000,  mb=32, mbstd=4,  fmaps=1,   lrate=0.002,  gamma=10,   ema=10,  ramp=None, map=8),
    'paper256':  dict(ref_gpus=8, kimg=25000,  mb=64, mbstd=8,  fmaps=0.5, lrate=0.0025, gamma=1,    ema=20,  ramp=None, map=8),
    'paper512':  dict(ref_gpus=8, kimg=25000,  mb=64, mbstd=8,  fmaps=1,   lrate=0.0025, gamma=0.5,  ema=20,  ramp=None, map=8),
    'paper1024': dict(ref_gpus=8, kimg=25000,  mb=32, mbstd=4,  fmaps=1,   lrate=0.002,  gamma=2,    ema=10,  ramp=None, map=8),
    'cifar':     dict(ref_gpus=1, kimg=100000, mb=32, mbstd=32, fmaps=1,   lrate=0.0025, gamma=0.01, ema=500, ramp=0.05, map=2),
}

# Generator shape used by the published train.py when none is given.
DEFAULT_SHAPE = dict(g_dict=[256, 64, 16], num_layers=[1, 3, 3], depth=32, minimum_head=1, linformer=False)

#----------------------------------------------------------------------------
# Styleformer presets: base config + generator shape (+ extra overrides).
#   resolution:  the dataset resolution the shape is built for.
#   start_res:   resolution of the first transformer stage (8 unless noted).
#   g_dict / num_layers: hidden size and number of encoder blocks per stage.
#   switch_res:  Styleformer-C only: the last transformer stage; StyleGAN2 blocks above it.
#   D:           discriminator overrides (channel_base, channel_max, architecture, mbstd).

STYLEFORMER_PRESETS = {
    # CIFAR-10 32x32, Styleformer-Large (FID 2.82).
    'styleformer-cifar10': dict(base='cifar', resolution=32, start_res=8,
        g_dict=[1024, 512, 512], num_layers=[1, 3, 3], depth=32, minimum_head=1, linformer=False),
    # STL-10 48x48: stages at 12, 24, 48.
    'styleformer-stl10': dict(base='cifar', resolution=48, start_res=12,
        g_dict=[1024, 256, 64], num_layers=[1, 2, 2], depth=32, minimum_head=1, linformer=False),
    # CelebA 64x64 with Linformer (stages at 32 and 64 project to 256 tokens).
    'styleformer-celeba64': dict(base='cifar', resolution=64, start_res=8,
        g_dict=[1024, 256, 64, 64], num_layers=[1, 2, 1, 1], depth=32, minimum_head=1, linformer=True),
    # LSUN Church 128x128 with Linformer.
    'styleformer-church128': dict(base='paper256', resolution=128, start_res=8,
        g_dict=[1024, 256, 64, 64, 64], num_layers=[1, 2, 1, 1, 1], depth=32, minimum_head=1, linformer=True),
    # CPU demo, tuned for the FID of 10 minutes on 2 CPU cores (docs/benchmarks.md, "The small-budget recipe"): a small G
    # (hidden 128,64,32) and a smaller D so neither dominates, lr 0.005, batch 8 (more steps beat faster images).
    'tiny': dict(base=dict(ref_gpus=1, kimg=100, mb=8, mbstd=4, fmaps=1, lrate=0.005, gamma=0.05, ema=2, ramp=0.05, map=2),
        resolution=32, start_res=8, g_dict=[128, 64, 32], num_layers=[1, 1, 1], depth=16, minimum_head=1, linformer=False,
        z_dim=64, w_dim=64, D=dict(channel_base=1024, channel_max=64, architecture='resnet')),
    # Styleformer-C (docs/styleformer-c.md): the CIFAR-10 Styleformer-Large shape for the stages 8..32, StyleGAN2
    # blocks above as wide as D (fmaps 0.5); R1 gamma as GANformer used on each dataset. Our choices: the paper gives none of it.
    'styleformer-c-clevr256': dict(base=dict(BASE_CONFIGS['paper256'], gamma=40), resolution=256, start_res=8, switch_res=32,
        g_dict=[1024, 512, 512], num_layers=[1, 3, 3], depth=32, minimum_head=1, linformer=False),
    'styleformer-c-cityscapes256': dict(base=dict(BASE_CONFIGS['paper256'], gamma=20), resolution=256, start_res=8, switch_res=32,
        g_dict=[1024, 512, 512], num_layers=[1, 3, 3], depth=32, minimum_head=1, linformer=False),
}

CFG_CHOICES = ['auto'] + list(BASE_CONFIGS) + list(STYLEFORMER_PRESETS)

#----------------------------------------------------------------------------

def auto_base_config(resolution, num_gpus):
    """StyleGAN2-ADA's `auto` heuristic: hyperparameters from resolution and GPU count."""
    mb = max(min(num_gpus * min(4096 // resolution, 32), 64), num_gpus)
    return dict(ref_gpus=num_gpus, kimg=25000, mb=mb, mbstd=min(mb // num_gpus, 4),
        fmaps=1 if resolution >= 512 else 0.5, lrate=0.002 if resolution >= 1024 else 0.0025,
        gamma=0.0002 * resolution ** 2 / mb, ema=mb * 10 / 32, ramp=0.05, map=2)

def base_config(cfg, resolution, num_gpus):
    """The base hyperparameters (EasyDict) of a --cfg value."""
    if cfg == 'auto':
        return dnnlib.EasyDict(auto_base_config(resolution, num_gpus))
    if cfg in BASE_CONFIGS:
        return dnnlib.EasyDict(BASE_CONFIGS[cfg])
    base = STYLEFORMER_PRESETS[cfg]['base']
    return base_config(base, resolution, num_gpus) if isinstance(base, str) else dnnlib.EasyDict(base)

def stage_count(resolution, start_res):
    """Number of generator stages from start_res up to resolution, or None when the
    resolution is not start_res times a power of two."""
    if resolution < start_res or resolution % start_res != 0:
        return None
    ratio = resolution // start_res
    if ratio & (ratio - 1) != 0:
        return None
    return int(math.log2(ratio)) + 1

#----------------------------------------------------------------------------
