"""Training speed against the published Styleformer code, same configuration, same machine.

Each measurement runs in its own subprocess (both codebases have packages named dnnlib,
torch_utils and training), and the two sides alternate, so that a change in the machine's
load hits both. Each side builds its options with its own train.py option parser from the
same inputs and runs its own training loop for three ticks: tick 0 = 1 step, tick 1 =
--steps warm-up steps, tick 2 = --steps measured steps; the figure is tick 2's sec/kimg.

The published code is run as it is, patched at run time (in its subprocess only) where it
breaks with torch 2.x (the Sampler base class's constructor argument) and, with --device=cpu,
on a CPU (the training loop's hard-wired CUDA device and CUDA events, pinned memory).

    git --git-dir=/work/.mirror/Jeeseung-Park+Styleformer/repo archive HEAD | tar -x -C /tmp/published
    python benchmarks/bench_published.py --compare-published=/tmp/published --configs=small --repeats=2
    python benchmarks/bench_published.py --compare-published=/tmp/published --configs=cifar10 --steps=2 --batch=4
    python benchmarks/bench_published.py --compare-published=/tmp/published --mode=gfb --configs=cifar10 --batch=4
    python benchmarks/bench_published.py --compare-published=/tmp/published --device=cuda --configs=cifar10 --batch=32
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import click

OURS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Training options both train.py parsers accept: no augmentation, D from StyleGAN2-ADA's cifar
# config. Both sides run float32 on the CPU whatever num_fp16_res says (--fp32 is not passed: the
# published G then fails on conv_clamp=None).
CONFIGS = {
    'small':   dict(cfg='cifar', g_dict=['64', '32', '16'], num_layers=['1', '1', '1'], depth=32), # The tiny preset's G (CPU-sized).
    'cifar10': dict(cfg='cifar', g_dict=['1024', '512', '512'], num_layers=['1', '3', '3'], depth=32), # The paper's Styleformer-Large.
}

#----------------------------------------------------------------------------
# Worker: one measurement of one side, in a fresh process.

def _patch_published(device):
    """Run-time patches for the published code with torch 2.x (this process only); on the CPU
    also for its hard-wired CUDA device."""
    import types
    import torch
    import torch.utils.data
    from training import training_loop as published_loop # The published module (its root is on sys.path).
    # torch 2.x's Sampler.__init__ takes no data source; the published InfiniteSampler passes one.
    torch.utils.data.Sampler.__init__ = lambda self, *_args, **_kwargs: None
    if device == 'cuda':
        return

    class NoEvent: # Stands in for torch.cuda.Event: the loop only records and reads phase times.
        def __init__(self, **_kwargs): pass
        def record(self, *_args): pass
        def synchronize(self): pass
        def elapsed_time(self, _other): return 0.0

    cuda = types.SimpleNamespace(Event=NoEvent, current_stream=lambda *_a: None, max_memory_allocated=lambda *_a: 0,
        reset_peak_memory_stats=lambda *_a: None)
    def cpu_device(*_args, **_kwargs):
        return torch.device('cpu')
    # The loop sees `torch` through this proxy: torch.device('cuda', rank) -> CPU, torch.cuda -> stand-ins.
    published_loop.torch = types.SimpleNamespace(**{name: getattr(torch, name) for name in dir(torch) if not name.startswith('__')})
    published_loop.torch.device = cpu_device
    published_loop.torch.cuda = cuda
    torch.Tensor.pin_memory = lambda self, *_args, **_kwargs: self # Pinning needs a GPU.

def _training_args(side, config, data, batch):
    options = dict(CONFIGS[config], data=data, batch=batch, aug='noaug', metrics=[], workers=1, seed=0)
    if side == 'ours':
        from tools.train_options import setup_training_options
        _desc, args = setup_training_options(**options)
        return args
    from train import setup_training_loop_kwargs # pylint: disable=import-error
    _desc, args = setup_training_loop_kwargs(**options)
    return args

def worker_train(side, config, data, batch, steps, run_dir, compile_, precision):
    import torch
    args = _training_args(side, config, data, batch)
    args.total_kimg = (1 + 2 * steps) * args.batch_size / 1000
    args.kimg_per_tick = steps * args.batch_size / 1000
    args.image_snapshot_ticks = args.network_snapshot_ticks = None
    args.run_dir = run_dir
    os.makedirs(run_dir)
    if side == 'ours':
        args.torch_compile = compile_
        args.loss_kwargs.precision = precision
        from training.training_loop import training_loop
        training_loop(**args)
    else:
        from training.training_loop import training_loop # pylint: disable=import-error
        training_loop(rank=0, **args)
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        last = json.loads(f.readlines()[-1])
    return dict(sec_per_kimg=last['Timing/sec_per_kimg']['mean'], threads=torch.get_num_threads())

def worker_gfb(side, config, batch, iters, compile_, precision):
    """G forward+backward (mapping and synthesis, sum of the image as the loss), mean of `iters` after one warm-up."""
    import torch
    import dnnlib
    shape = CONFIGS[config]
    G_kwargs = dnnlib.EasyDict(class_name='training.networks_Generator.Generator', z_dim=512, w_dim=512,
        mapping_kwargs=dnnlib.EasyDict(num_layers=2), synthesis_kwargs=dnnlib.EasyDict(channel_base=32768, channel_max=512,
        depth=shape['depth'], minimum_head=1, num_layers=[int(x) for x in shape['num_layers']],
        G_dict=[int(x) for x in shape['g_dict']], linformer=False, num_fp16_res=4, conv_clamp=256)) # As train.py (float32 on the CPU).
    torch.manual_seed(0)
    G = dnnlib.util.construct_class_by_name(**G_kwargs, c_dim=0, img_resolution=32, img_channels=3).train()
    z = torch.randn([batch, 512])
    c = torch.zeros([batch, 0])
    run = G
    if side == 'ours' and compile_ == 'on':
        from training.compilation import CompiledGenerator
        run = CompiledGenerator(G, mode=None)
    kwargs = dict(precision=precision) if side == 'ours' else {}
    def step():
        run.synthesis(run.mapping(z, c), **kwargs).sum().backward()
    step()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return dict(sec_per_iter=(time.perf_counter() - start) / iters, threads=torch.get_num_threads())

#----------------------------------------------------------------------------
# Driver.

def make_dataset(folder, count=64):
    """Random 32x32 RGB PNGs with a dataset.json-free layout both dataset classes read."""
    import numpy as np
    import PIL.Image
    os.makedirs(folder, exist_ok=True)
    rnd = np.random.RandomState(0)
    for i in range(count):
        PIL.Image.fromarray(rnd.randint(0, 256, size=[32, 32, 3], dtype=np.uint8)).save(os.path.join(folder, f'img{i:05d}.png'))
    return folder

def run_side(side, published, **kwargs):
    root = OURS if side == 'ours' else published
    env = dict(os.environ, PYTHONPATH=root, PYTHONWARNINGS='ignore')
    if kwargs['device'] == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    cmd = [sys.executable, os.path.abspath(__file__), '--worker', side, '--compare-published', published]
    cmd += [f'--{key.replace("_", "-")}={value}' for key, value in kwargs.items()]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith('RESULT ')]
    if proc.returncode != 0 or not lines:
        raise click.ClickException(f'{side} run failed (exit {proc.returncode}):\n' + (proc.stderr or proc.stdout)[-3000:])
    return json.loads(lines[-1][len('RESULT '):])

@click.command()
@click.option('--compare-published', 'published', required=True, type=click.Path(exists=True, file_okay=False), help='Checkout of the published Styleformer code')
@click.option('--configs', default='small', show_default=True, help=f'Comma-separated: {", ".join(CONFIGS)}')
@click.option('--mode', type=click.Choice(['train', 'gfb']), default='train', show_default=True, help='train: training sec/kimg; gfb: G forward+backward')
@click.option('--batch', type=int, default=8, show_default=True, help='Batch size (both sides)')
@click.option('--steps', type=int, default=8, show_default=True, help='train: steps per tick; gfb: timed iterations')
@click.option('--repeats', type=int, default=1, show_default=True, help='Alternating ours/published pairs per config')
@click.option('--compile', 'compile_', type=click.Choice(['on', 'off']), default='off', show_default=True, help='Our side: torch.compile G and D')
@click.option('--precision', type=click.Choice(['full', 'reduced', 'auto']), default='full', show_default=True, help='Our side (train.py --precision): full = float32 as published; reduced = bfloat16/float16 blocks; auto = reduced on CUDA only')
@click.option('--device', type=click.Choice(['cpu', 'cuda']), default='cpu', show_default=True, help='Where both sides train (cuda: the published code unpatched)')
@click.option('--worker', type=click.Choice(['ours', 'published']), default=None, hidden=True)
@click.option('--config', default=None, hidden=True)
@click.option('--data', default=None, hidden=True)
@click.option('--run-dir', default=None, hidden=True)
def main(published, configs, mode, batch, steps, repeats, compile_, precision, device, worker, config, data, run_dir):
    """Time our training loop (or G) and the published one on the same configuration, alternating."""
    if worker is not None:
        if worker == 'published':
            _patch_published(device)
        if mode == 'train':
            result = worker_train(worker, config, data, batch, steps, run_dir, compile_, precision)
        else:
            result = worker_gfb(worker, config, batch, steps, compile_, precision)
        print('RESULT ' + json.dumps(result), flush=True)
        return

    published = os.path.abspath(published)
    if not os.path.isfile(os.path.join(published, 'training', 'training_loop.py')):
        raise click.ClickException(f'--compare-published: {published} has no training/training_loop.py; pass a Styleformer checkout')
    for config in configs.split(','):
        if config not in CONFIGS:
            raise click.ClickException(f'--configs: unknown {config!r}; choose from {", ".join(CONFIGS)}')
    unit = 'sec/kimg' if mode == 'train' else 'sec/iter'
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        data = make_dataset(os.path.join(workdir, 'data'))
        for config in configs.split(','):
            times = {'ours': [], 'published': []}
            for rep in range(repeats):
                for side in ['ours', 'published']:
                    print(f'{config}: {side}, run {rep + 1}/{repeats}...', flush=True)
                    kwargs = dict(mode=mode, config=config, batch=batch, steps=steps, compile=compile_, precision=precision, device=device)
                    if mode == 'train':
                        kwargs.update(data=data, run_dir=os.path.join(workdir, f'run-{config}-{side}-{rep}'))
                    result = run_side(side, published, **kwargs)
                    times[side].append(result['sec_per_kimg' if mode == 'train' else 'sec_per_iter'])
            rows.append((config, times, result['threads']))

    print()
    print(f'{"G forward+backward" if mode == "gfb" else "Training"}, batch {batch}, {unit} (best of {repeats}; all runs in brackets):')
    for config, times, threads in rows:
        ours, theirs = min(times['ours']), min(times['published'])
        print(f'{config:<9} ours {ours:9.2f} {times["ours"]}  published {theirs:9.2f} {times["published"]}  '
              f'ratio ours/published {ours / theirs:.2f}  ({threads} threads, compile {compile_}, precision {precision})')

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter
