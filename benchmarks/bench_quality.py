"""Time to quality: the FID a training configuration reaches in a fixed number of minutes.

    python benchmarks/bench_quality.py --minutes=10 --seeds=0,1,2 -- --cfg=tiny
    python benchmarks/bench_quality.py --minutes=10 --data=a.zip,b.zip -- --cfg=tiny --gamma=0.1

Everything after `--` goes to train.py (a configuration and its overrides). For each dataset
and seed, train.py runs in a subprocess with that seed; after --minutes of wall clock, counted
from the start of the process (data conversion is not counted: the zip must exist), it gets
SIGTERM, writes its final snapshot and exits. Then the FID of --num-gen G_ema images against
the first --num-real images of the dataset is computed in this process (metric seed 0, the
dataset statistics cached as every metric's are). One row per run; with several seeds, a
median row per dataset. Columns: the train.py arguments, dataset, seed, minutes, kimg reached,
s/kimg (the training loop's own time over kimg), FID, and the mean 1-minute load average of
the machine while it trained (other jobs slow training down: say so when comparing rows).

Fashion-MNIST 32x32: python dataset_tool.py --source=fashion-mnist --dest=datasets/fashion-mnist-32x32.zip
"""

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import click

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import dnnlib  # noqa: E402
from metrics import detectors, frechet_inception_distance, metric_utils  # noqa: E402
from snapshot_io import safe_load  # noqa: E402
from training.dataset import DATASET_CLASS  # noqa: E402

# train.py options this script sets itself.
_OWN_OPTIONS = ('--data', '--seed', '--outdir', '--kimg', '--snap', '--metrics', '--gpus', '--resume')
_STOP_GRACE_S = 600  # How long the final snapshot may take before a second signal.


class BenchError(click.ClickException):
    exit_code = 2


def _train_command(train_args, data, seed, outdir):
    # A duration it never reaches: the run ends by the signal. No snapshots before that one.
    return [sys.executable, os.path.join(ROOT, 'train.py'), f'--outdir={outdir}', f'--data={data}', f'--seed={seed}',
        '--kimg=1000000', '--snap=1000000', '--metrics=none', *train_args]


def check_train_args(train_args, data):
    """train.py --dry-run with the same arguments: a mistake stops the benchmark before any training."""
    for arg in train_args:
        if arg.split('=')[0] in _OWN_OPTIONS:
            raise BenchError(f'{arg.split("=")[0]} is set by bench_quality.py; leave it out of the train.py arguments')
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(_train_command(train_args, data, 0, tmp) + ['--dry-run'], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BenchError(f'train.py rejects the arguments {" ".join(train_args)!r} with --data={data}:\n{result.stderr.strip()}')


def train_for(train_args, data, seed, minutes, outdir):
    """Runs train.py for `minutes`, stops it with SIGTERM; -> (snapshot path, run dir, mean load)."""
    os.makedirs(outdir, exist_ok=True)
    log_path = os.path.join(outdir, f'train-{os.path.basename(data)}-seed{seed}.log')
    loads = []
    with open(log_path, 'wt') as log:
        start = time.monotonic()
        proc = subprocess.Popen(_train_command(train_args, data, seed, outdir), stdout=log, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None and time.monotonic() - start < minutes * 60:
                time.sleep(min(5, max(minutes * 60 - (time.monotonic() - start), 0.01)))
                loads.append(os.getloadavg()[0])
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # train.py saves a snapshot and exits.
                try:
                    proc.wait(timeout=_STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGTERM)  # A second signal exits at once.
                    proc.wait()
        except BaseException:
            proc.kill()
            raise
    with open(log_path, 'rt') as f:
        output = f.read()
    saved = re.search(r'^Saved (.+); exiting\.$', output, re.MULTILINE)
    run_dir = re.search(r'^Output directory:\s+(.+)$', output, re.MULTILINE)
    if proc.returncode != 0 or saved is None or run_dir is None:
        tail = '\n'.join(output.splitlines()[-15:])
        raise BenchError(f'train.py ended without a final snapshot (exit code {proc.returncode}); log {log_path}:\n{tail}')
    return saved.group(1), run_dir.group(1), statistics.mean(loads) if loads else os.getloadavg()[0]


def training_progress(run_dir):
    """(kimg, training seconds) of the last progress line of a run (its stats.jsonl)."""
    with open(os.path.join(run_dir, 'stats.jsonl'), 'rt') as f:
        last = json.loads(f.read().splitlines()[-1])
    return last['Progress/kimg']['mean'], last['Timing/total_sec']['mean']


def real_set(path):
    """Dataset options of a set of real images, the same in every benchmark (they key the statistics cache)."""
    return dnnlib.EasyDict(class_name=DATASET_CLASS, path=path, use_labels=False, xflip=False, max_size=None)


def snapshot_fid(snapshot_pkl, data, num_gen, num_real, feature_precision, detector=None, device='cpu'):
    """FID of `num_gen` G_ema images of the snapshot against the first `num_real` images of
    `data` -> (FID, the detectors used)."""
    G = safe_load.open_snapshot(snapshot_pkl, verbose=False)['G_ema']
    dataset_kwargs = real_set(data)
    resolution = dnnlib.util.construct_class_by_name(**dataset_kwargs).resolution
    if resolution != G.img_resolution:
        raise BenchError(f'{snapshot_pkl} makes {G.img_resolution}x{G.img_resolution} images, {data} holds {resolution}x{resolution}')
    opts = metric_utils.MetricOptions(G=G, dataset_kwargs=dataset_kwargs, num_gpus=1, rank=0, device=device,
        progress=False, detector=detector, feature_precision=feature_precision, seed=0)
    return frechet_inception_distance.compute_fid(opts, max_real=num_real, num_gen=num_gen), opts.detectors_used


def _row(cells):
    return ' | '.join(str(c) for c in cells)


@click.command(context_settings=dict(ignore_unknown_options=True))
@click.option('--minutes', help='Wall-clock training time per run', type=click.FloatRange(min=0, min_open=True), default=10, show_default=True)
@click.option('--seeds', help='Comma-separated training seeds (a median row when several)', default='0', show_default=True)
@click.option('--data', help='Comma-separated dataset zips or folders', default='datasets/fashion-mnist-32x32.zip', show_default=True)
@click.option('--num-gen', help='Generated images for the FID', type=click.IntRange(min=2), default=2000, show_default=True)
@click.option('--num-real', help='Real images for the FID (the first ones of the dataset)', type=click.IntRange(min=2), default=5000, show_default=True)
@click.option('--feature-precision', help='Precision of the Inception features (see docs/benchmarks.md)',
    type=click.Choice(list(detectors.PRECISIONS)), default='float32', show_default=True)
@click.option('--detector', help='Inception detector file or "fid-helper" (see metrics/detectors.py)', default=None)
@click.option('--outdir', help='Where the runs go', default='runs/bench-quality', show_default=True)
@click.argument('train_args', nargs=-1, type=click.UNPROCESSED)
def main(minutes, seeds, data, num_gen, num_real, feature_precision, detector, outdir, train_args):
    """Prints one row per run: config | data | seed | minutes | kimg | s/kimg | FID | load."""
    try:
        seeds = [int(s) for s in seeds.split(',')]
    except ValueError:
        raise BenchError(f'--seeds takes comma-separated integers, got {seeds!r}') from None
    datasets = [d.strip() for d in data.split(',') if d.strip()]
    if not datasets:
        raise BenchError('--data needs at least one dataset zip or folder')
    for path in datasets:
        if not os.path.exists(path):
            raise BenchError(f'--data: {path} does not exist; make it first, e.g. '
                f'python dataset_tool.py --source=fashion-mnist --dest={path}')
        check_train_args(train_args, path)
    config = ' '.join(train_args) or '(train.py defaults)'

    print(_row(['config', 'data', 'seed', 'minutes', 'kimg', 's/kimg', 'FID', 'load']), flush=True)
    for path in datasets:
        fids = []
        for seed in seeds:
            snapshot_pkl, run_dir, load = train_for(train_args, path, seed, minutes, outdir)
            kimg, train_sec = training_progress(run_dir)
            fid, detectors_used = snapshot_fid(snapshot_pkl, path, num_gen, num_real, feature_precision, detector)
            fids.append(fid)
            print(_row([config, os.path.basename(path), seed, f'{minutes:g}', f'{kimg:.1f}', f'{train_sec / kimg:.2f}',
                f'{fid:.2f}', f'{load:.1f}']), flush=True)
        if len(seeds) > 1:
            print(_row([config, os.path.basename(path), 'median', f'{minutes:g}', '', '', f'{statistics.median(fids):.2f}', '']), flush=True)
    print(f'FID: {num_gen} G_ema images vs the first {num_real} real images; detector {"; ".join(detectors_used)}; '
        f'features in {feature_precision}. Runs in {outdir}.')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
