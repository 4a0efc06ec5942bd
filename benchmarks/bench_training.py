"""Training throughput: sec/kimg, kimg/s and peak memory of the real training loop.

Runs `training.training_loop` (all phases, lazy regularisation, ADA pipe, G EMA) on a small
synthetic dataset for a few ticks per configuration and reads the figures of the last tick:
  tick 0 = 1 step, tick 1 = --steps warm-up steps, tick 2 = --steps measured steps.
With the default 16 steps a tick holds exactly one D regularisation step and four G ones,
so the figure includes the amortised cost of lazy regularisation.

    python benchmarks/bench_training.py                         # both configs, CPU or the GPU
    python benchmarks/bench_training.py --device=cpu --configs=tiny --steps=8
"""

import json
import os
import sys
import tempfile
import time

import click
import numpy as np
import PIL.Image
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.train_options import setup_training_options  # noqa: E402

# Dataset shape per configuration: (channels, resolution).
CONFIG_DATA = {
    'styleformer-cifar10': (3, 32),  # The paper's CIFAR-10 config (Styleformer-Large, batch 32).
    'tiny': (1, 32),                 # The CPU demo config (Fashion-MNIST 32x32).
}

# Dense bfloat16 peaks (NVIDIA data sheets) by device-name fragment, most specific first.
DENSE_BF16_TFLOPS = [('H100 PCIe', 756.0), ('H100', 989.0), ('H200', 989.0)]

def make_dataset(folder, channels, resolution, count=64):
    """Random PNGs: throughput does not depend on the pixel values."""
    os.makedirs(folder, exist_ok=True)
    rnd = np.random.RandomState(0)
    for i in range(count):
        pixels = rnd.randint(0, 256, size=[resolution, resolution, channels], dtype=np.uint8)
        PIL.Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels).save(os.path.join(folder, f'img{i:05d}.png'))
    return folder

def build(class_kwargs, **common):
    import dnnlib
    return dnnlib.util.construct_class_by_name(**class_kwargs, **common)

def matmul_flops_per_image(G, D):
    """Model FLOPs of one training image: the matmuls, convolutions and attention of one G and
    one D forward pass (torch.utils.flop_counter, float32 on the CPU, batch 2 / 2), weighted by
    the phases: Gmain runs G and D forward and backward (3x each, backward = 2x forward),
    Dmain runs G forward once and D forward and backward on fakes and on reals (2 x 3x).
    Lazy regularisation and elementwise work are left out, so the figure is a lower bound."""
    from torch.utils.flop_counter import FlopCounterMode
    z, c = torch.zeros([2, G.z_dim]), torch.zeros([2, G.c_dim])
    with torch.no_grad():
        with FlopCounterMode(display=False) as g_count:
            img = G(z, c)
        with FlopCounterMode(display=False) as d_count:
            D(img, c)
    g_fwd, d_fwd = g_count.get_total_flops() / 2, d_count.get_total_flops() / 2
    return 4 * g_fwd + 9 * d_fwd

def bench_config(cfg, steps, workdir, batch=None, compile='off', precision='full'): # pylint: disable=redefined-builtin
    from training.training_loop import training_loop
    channels, resolution = CONFIG_DATA[cfg]
    data = make_dataset(os.path.join(workdir, f'data-{cfg}'), channels, resolution)
    overrides = dict(batch=batch) if batch else {}
    _desc, args = setup_training_options(data=data, cfg=cfg, metrics=[], workers=0, seed=0, **overrides)
    args.total_kimg = (1 + 2 * steps) * args.batch_size / 1000
    args.kimg_per_tick = steps * args.batch_size / 1000
    args.image_snapshot_ticks = args.network_snapshot_ticks = None
    args.torch_compile = compile
    args.loss_kwargs.precision = precision
    run_dir = os.path.join(workdir, f'run-{cfg}')
    os.makedirs(run_dir)
    start = time.time()
    cpu_marks = [] # Process CPU time (all threads) at each tick end: robust to a busy machine.
    training_loop(run_dir=run_dir, progress_fn=lambda cur, total: cpu_marks.append(time.process_time()), **args)
    wall = time.time() - start
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        last = json.loads(f.readlines()[-1])
    common = dict(c_dim=0, img_resolution=resolution, img_channels=channels)
    G, D = build(args.G_kwargs, **common), build(args.D_kwargs, **common)
    sec_per_kimg = last['Timing/sec_per_kimg']['mean']
    peak = last.get('Resources/peak_gpu_mem_gb', last['Resources/cpu_mem_gb'])['mean']
    return dict(cfg=cfg, batch=args.batch_size, batch_gpu=args.batch_gpu, G_params=sum(p.numel() for p in G.parameters()),
        D_params=sum(p.numel() for p in D.parameters()), flops_per_img=matmul_flops_per_image(G, D), sec_per_kimg=sec_per_kimg, kimg_per_s=1 / sec_per_kimg,
        peak_gb=peak, peak_kind='GPU peak' if 'Resources/peak_gpu_mem_gb' in last else 'CPU RSS', wall_s=wall,
        cpu_sec_per_kimg=(cpu_marks[-1] - cpu_marks[-2]) / (steps * args.batch_size / 1000))

@click.command()
@click.option('--device', type=click.Choice(['auto', 'cpu', 'cuda']), default='auto', show_default=True, help='cuda needs a GPU; cpu hides any GPU')
@click.option('--configs', default='styleformer-cifar10,tiny', show_default=True, help='Comma-separated configurations')
@click.option('--steps', type=int, default=16, show_default=True, help='Training steps per tick (warm-up tick, then measured tick)')
@click.option('--batch', type=int, default=None, help='Override the configurations\' batch size')
@click.option('--threads', type=int, default=None, help='CPU threads (torch.set_num_threads)')
@click.option('--peak-tflops', type=float, default=None, help='Peak TFLOP/s of the device for model-FLOPs utilisation [default: bf16 dense peak of an H100/H200, else none]')
@click.option('--compile', 'compile_', type=click.Choice(['auto', 'on', 'off']), default='auto', show_default=True, help='torch.compile G and D (as train.py --compile)')
@click.option('--precision', type=click.Choice(['full', 'reduced', 'auto']), default='full', show_default=True, help='As train.py --precision (full: float32, as published)')
def main(device, configs, steps, batch, threads, peak_tflops, compile_, precision):
    """Measure training throughput of the paper's CIFAR-10 config and the tiny demo config."""
    if device == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = '' # The loop takes its device from torch_utils.distributed.
    if device == 'cuda' and not torch.cuda.is_available():
        raise click.ClickException('--device=cuda: no CUDA device is visible')
    if threads:
        torch.set_num_threads(threads)
    where = torch.cuda.get_device_name() if torch.cuda.is_available() and device != 'cpu' else f'CPU, {torch.get_num_threads()} threads'
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for cfg in configs.split(','):
            if cfg not in CONFIG_DATA:
                raise click.ClickException(f'--configs: unknown {cfg!r}; choose from {", ".join(CONFIG_DATA)}')
            print(f'Benchmarking {cfg} on {where}...', flush=True)
            results.append(bench_config(cfg, steps, workdir, batch, compile_, precision))

    print()
    print(f'Training throughput on {where} (torch {torch.__version__}, compile {compile_}, precision {precision}), last tick of {steps} steps:')
    header = f"{'config':<22}{'batch':>6}{'G params':>11}{'D params':>11}{'sec/kimg':>11}{'kimg/s':>9}{'img/s':>9}{'CPU s/kimg':>12}{'peak GB':>9}  memory"
    print(header)
    print('-' * len(header))
    for r in results:
        print(f"{r['cfg']:<22}{r['batch']:>6}{r['G_params']:>11,}{r['D_params']:>11,}{r['sec_per_kimg']:>11.2f}{r['kimg_per_s']:>9.4f}"
              f"{r['kimg_per_s'] * 1000:>9.1f}{r['cpu_sec_per_kimg']:>12.1f}{r['peak_gb']:>9.2f}  {r['peak_kind']}")
    print('(sec/kimg: wall clock; CPU s/kimg: process CPU time over all threads, which a busy machine inflates less)')
    if peak_tflops is None:
        peak_tflops = next((tflops for name, tflops in DENSE_BF16_TFLOPS if name in where), None)
    for r in results:
        achieved = r['flops_per_img'] * r['kimg_per_s'] * 1000 / 1e12
        mfu = f', MFU {achieved / peak_tflops:.2%} of {peak_tflops:g} TFLOP/s' if peak_tflops else ''
        print(f"{r['cfg']}: {r['flops_per_img'] / 1e9:.2f} GFLOP per training image (matmuls/convolutions/attention), "
              f"{achieved * 1000:.1f} GFLOP/s achieved{mfu}")
    if len(results) == 2:
        print(f"\nsec/kimg ratio {results[0]['cfg']} / {results[1]['cfg']}: {results[0]['sec_per_kimg'] / results[1]['sec_per_kimg']:.1f}x")

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter
