"""Time of one explorer request (render + PNG encoding), per kind of request, against the goal
of under a second on the CPU for the demo (`--cfg=tiny`) snapshot.

    python benchmarks/bench_explorer.py                          # tiny and styleformer-cifar10 shapes, CPU
    python benchmarks/bench_explorer.py --cfg=tiny --iters=20     # the demo snapshot's shape only
    python benchmarks/bench_explorer.py --device=cuda
    python benchmarks/bench_explorer.py --network=SNAPSHOT.pkl    # a real snapshot

Without --network the generators are built from the presets with random weights (the time does
not depend on the weights). Prints the median of --iters calls after one warm-up, in ms, and
its ratio to the one-second goal.
"""

import argparse
import dataclasses
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dnnlib  # noqa: E402
from explorer_app.render import Renderer, View  # noqa: E402
from explorer_app.server import png_bytes  # noqa: E402
from tools import cli  # noqa: E402
from training import presets  # noqa: E402

GOAL_SECONDS = 1.0


def preset_generator(name):
    """A Generator with the shape train.py builds for --cfg=NAME (random weights)."""
    preset = presets.STYLEFORMER_PRESETS[name]
    spec = presets.base_config(name, preset['resolution'], 1)
    synthesis = dict(depth=preset['depth'], minimum_head=preset['minimum_head'], num_layers=preset['num_layers'],
        G_dict=preset['g_dict'], linformer=preset['linformer'], num_fp16_res=4, conv_clamp=256)
    if preset['start_res'] != 8:
        synthesis['start_resolution'] = preset['start_res']
    torch.manual_seed(0)
    G = dnnlib.util.construct_class_by_name(class_name='training.networks_Generator.Generator', z_dim=preset.get('z_dim', 512),
        w_dim=preset.get('w_dim', 512), c_dim=0, img_resolution=preset['resolution'], img_channels=3,
        mapping_kwargs=dict(num_layers=spec.map), synthesis_kwargs=synthesis)
    return G.eval().requires_grad_(False)


def median_ms(fn, iters):
    fn()  # Warm-up.
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        png_bytes(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def bench(name, G, device, iters):
    renderer = Renderer(G.to(device), device)
    view = View(seed=1, psi=0.7, class_idx=0 if G.c_dim else None)
    last_block = renderer.block_names[-1]
    requests = {
        'image': lambda: renderer.image(view),
        'image, style mixing': lambda: renderer.image(dataclasses.replace(view, mix_seed=2, mix_styles=(0, 1))),
        f'attention ({last_block}, mean)': lambda: renderer.attention(view, last_block, 'mean', (0, 0)),
        'interpolation, 8 steps': lambda: renderer.interpolation(view, 2, 8),
    }
    for what, fn in requests.items():
        ms = median_ms(fn, iters)
        print(f'{name:22s} {what:28s} {ms:9.1f} ms   {ms / 1000 / GOAL_SECONDS:6.3f} x goal')


def main():
    parser = argparse.ArgumentParser(description='Time the explorer\'s requests.')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--network', help='Snapshot to time instead of the preset shapes')
    parser.add_argument('--cfg', default='tiny,styleformer-cifar10', help='Presets whose shapes are timed (comma-separated)')
    parser.add_argument('--iters', type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f'device={device}, torch threads={torch.get_num_threads()}, median of {args.iters} after one warm-up')
    if args.network:
        bench(os.path.basename(args.network), cli.load_network(args.network, device), device, args.iters)
    else:
        for name in args.cfg.split(','):
            bench(name, preset_generator(name), device, args.iters)


if __name__ == '__main__':
    main()
