"""G_ema exported to ONNX (legacy.py --dest=g.onnx) against PyTorch, both on the CPU: export time,
file size, images/s per batch size, the onnxruntime/PyTorch ratio and the largest image difference.

    python benchmarks/bench_onnx.py                       # the paper's CIFAR-10 Styleformer-Large shape
    python benchmarks/bench_onnx.py --config=linformer-64 --batch=1,8 --iters=3

The generator has random weights (the speed does not depend on them) and the shapes of
bench_networks.py's configs; the graph has a dynamic batch and constant noise.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_networks import CONFIGS  # noqa: E402
from snapshot_io import onnx_export  # noqa: E402
from training.networks_Generator import Generator  # noqa: E402


def images_per_second(run, batch, iters):
    run()  # Warm-up: first-call allocations and kernel choices.
    start = time.perf_counter()
    for _ in range(iters):
        run()
    return batch * iters / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', choices=sorted(CONFIGS), default='cifar10-32')
    parser.add_argument('--batch', default='1,16', help='comma-separated batch sizes')
    parser.add_argument('--iters', type=int, default=5)
    args = parser.parse_args()
    import onnxruntime  # pylint: disable=import-outside-toplevel

    torch.manual_seed(0)
    G = Generator(**CONFIGS[args.config]['G']).eval().requires_grad_(False)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'g.onnx')
        start = time.perf_counter()
        onnx_export.export_onnx(G, path, dynamic_batch=True, verbose=False)
        print(f'{args.config}: export {time.perf_counter() - start:.1f} s, {os.path.getsize(path) / 2**20:.1f} MiB, '
            f'torch threads {torch.get_num_threads()}, CPUs {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}')
        session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])

    print(f'{"batch":>5} {"PyTorch img/s":>14} {"onnxruntime img/s":>18} {"ratio":>6} {"max diff":>9}')
    for batch in [int(b) for b in args.batch.split(',')]:
        z = np.random.RandomState(batch).randn(batch, G.z_dim).astype(np.float32)
        with torch.no_grad():
            ours = lambda: G(torch.from_numpy(z), None, noise_mode='const')  # pylint: disable=cell-var-from-loop
            theirs = lambda: session.run(['img'], dict(z=z))[0]  # pylint: disable=cell-var-from-loop
            diff = np.abs(ours().numpy() - theirs()).max()
            torch_rate = images_per_second(ours, batch, args.iters)
        ort_rate = images_per_second(theirs, batch, args.iters)
        print(f'{batch:>5} {torch_rate:>14.1f} {ort_rate:>18.1f} {ort_rate / torch_rate:>6.2f} {diff:>9.1e}')


if __name__ == '__main__':
    main()
