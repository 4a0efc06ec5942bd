"""The metric registry: names as in StyleGAN2-ADA (so numbers compare with published tables),
sized variants for quick checks, and reporting to metric-{name}.jsonl.

Naming: `fid50k` uses 50k generated images and at most 50k real ones; `_full` uses every real
image. `fid{N}k` / `fid{N}` (and kid, is) are the same metric with N thousand / N generated
images. `fid` and `kid` compare two image sets (MetricOptions.gen_dataset_kwargs) using
every image of both."""

import json
import os
import re
import time

import dnnlib
from . import frechet_inception_distance
from . import inception_score
from . import kernel_inception_distance
from . import metric_utils
from . import perceptual_path_length
from . import precision_recall

#----------------------------------------------------------------------------
# Metric definitions. Each takes MetricOptions and returns {result_name: value}.

def _use_whole_dataset(opts, xflip=None):
    opts.dataset_kwargs.update(max_size=None)
    if xflip is not None:
        opts.dataset_kwargs.update(xflip=xflip)


def fid(opts, num_gen, max_real, full):
    _use_whole_dataset(opts, xflip=False if full else None)
    return frechet_inception_distance.compute_fid(opts, max_real=max_real, num_gen=num_gen)


def kid(opts, num_gen, max_real, full):
    _use_whole_dataset(opts, xflip=False if full else None)
    return kernel_inception_distance.compute_kid(opts, max_real=max_real, num_gen=num_gen, num_subsets=100, max_subset_size=1000)


def inception_score_metric(opts, num_gen):
    _use_whole_dataset(opts, xflip=False)
    return inception_score.compute_is(opts, num_gen=num_gen, num_splits=10)


def pr(opts, num_gen, max_real, full):
    _use_whole_dataset(opts, xflip=False if full else None)
    return precision_recall.compute_pr(opts, max_real=max_real, num_gen=num_gen, nhood_size=3, row_batch_size=10000, col_batch_size=10000)


def ppl(opts, space, sampling, crop):
    return perceptual_path_length.compute_ppl(opts, num_samples=50000, epsilon=1e-4, space=space, sampling=sampling, crop=crop, batch_size=2)


def _parse_count(digits, thousands):
    return int(digits) * (1000 if thousands else 1)


def _sized_metric(name):
    """(function, kwargs, needs_generator) for fid/kid/is with a size in the name, else None.
    Real-set caps follow the published metrics: fid/kid/pr cap at the generated count
    (kid_full at 1M, pr_full at 200k), _full variants use the unflipped dataset."""
    m = re.fullmatch(r'(fid|kid|is)(\d+)(k?)(_full)?', name)
    if m is not None:
        kind, num_gen, full = m.group(1), _parse_count(m.group(2), m.group(3)), m.group(4) is not None
        if num_gen < 2 or (kind == 'is' and full):
            return None
        if kind == 'fid':
            return lambda opts: {name: fid(opts, num_gen, None if full else num_gen, full)}
        if kind == 'kid':
            return lambda opts: {name: kid(opts, num_gen, 1000000 if full else num_gen, full)}
        return lambda opts: dict(zip([f'{name}_mean', f'{name}_std'], inception_score_metric(opts, num_gen)))
    m = re.fullmatch(r'pr(\d+)(k?)3(_full)?', name)
    if m is not None:
        num_gen, full = _parse_count(m.group(1), m.group(2)), m.group(3) is not None
        def run(opts):
            precision, recall = pr(opts, num_gen, 200000 if full else num_gen, full)
            return {f'{name}_precision': precision, f'{name}_recall': recall}
        return run
    return None


_PPL_METRICS = {  # name -> (space, sampling, crop)
    'ppl2_wend': ('w', 'end', False),
    'ppl_zfull': ('z', 'full', True),
    'ppl_wfull': ('w', 'full', True),
    'ppl_zend': ('z', 'end', True),
    'ppl_wend': ('w', 'end', True),
}

_SET_METRICS = {  # Two image sets, every image of both.
    'fid': lambda opts: dict(fid=fid(opts, num_gen=None, max_real=None, full=True)),
    'kid': lambda opts: dict(kid=kid(opts, num_gen=None, max_real=None, full=True)),
}

_PUBLISHED = ['fid50k_full', 'kid50k_full', 'pr50k3_full', 'ppl2_wend', 'is50k',
    'fid50k', 'kid50k', 'pr50k3', 'ppl_zfull', 'ppl_wfull', 'ppl_zend', 'ppl_wend']
_QUICK = ['fid10k', 'fid2k', 'fid10k_full', 'kid10k', 'kid2k']


def _metric_fn(metric):
    if metric in _PPL_METRICS:
        space, sampling, crop = _PPL_METRICS[metric]
        return lambda opts: {metric: ppl(opts, space, sampling, crop)}
    if metric in _SET_METRICS:
        return _SET_METRICS[metric]
    return _sized_metric(metric)


def is_valid_metric(metric):
    return isinstance(metric, str) and _metric_fn(metric) is not None


def needs_generator(metric):
    return metric not in _SET_METRICS


def list_valid_metrics():
    """The published metrics, the quick sized ones, and the two image-set comparisons.
    Any other size is also accepted: fid{N}k, fid{N}, kid{N}k, is{N}k, pr{N}k3 (+ _full)."""
    return _PUBLISHED + _QUICK + list(_SET_METRICS)

#----------------------------------------------------------------------------

def calc_metric(metric, **kwargs):
    """Computes one metric. kwargs are those of metric_utils.MetricOptions (G, G_kwargs,
    dataset_kwargs, gen_dataset_kwargs, num_gpus, rank, device, progress, cache, detector,
    verbose, seed, feature_precision). Every rank returns the same numbers."""
    if not is_valid_metric(metric):
        raise ValueError(f'Unknown metric {metric!r}. Valid metrics: {", ".join(list_valid_metrics())} '
            f'(and sized variants such as fid5k or kid20k_full)')
    opts = metric_utils.MetricOptions(**kwargs)
    if needs_generator(metric) and opts.G is None:
        raise ValueError(f'{metric} evaluates a generator; give one (--network). '
            f'To compare two image sets use --metrics=fid or --metrics=kid with --gen-data.')
    if needs_generator(metric) and opts.gen_dataset_kwargs is not None:
        raise ValueError(f'{metric} evaluates a generator; two image sets are compared with fid or kid.')
    if not needs_generator(metric) and opts.gen_dataset_kwargs is None:
        raise ValueError(f'{metric} compares two image sets; give the second one (--gen-data), '
            f'or use a sized metric such as fid50k_full to evaluate a network.')

    start_time = time.time()
    results = _metric_fn(metric)(opts)
    total_time = time.time() - start_time
    return dnnlib.EasyDict(
        results=dnnlib.EasyDict({k: float(v) for k, v in results.items()}),
        metric=metric,
        total_time=total_time,
        total_time_str=dnnlib.util.format_time(total_time),
        num_gpus=opts.num_gpus,
        detector='; '.join(opts.detectors_used),
    )


def report_metric(result_dict, run_dir=None, snapshot_pkl=None, print_line=True):
    """Prints the result as one JSON line and appends it to RUN_DIR/metric-{metric}.jsonl."""
    metric = result_dict['metric']
    if run_dir is not None and snapshot_pkl is not None:
        snapshot_pkl = os.path.relpath(snapshot_pkl, run_dir)
    jsonl_line = json.dumps(dict(result_dict, snapshot_pkl=snapshot_pkl, timestamp=time.time()))
    if print_line:
        print(jsonl_line)
    if run_dir is not None and os.path.isdir(run_dir):
        with open(os.path.join(run_dir, f'metric-{metric}.jsonl'), 'at') as f:
            f.write(jsonl_line + '\n')
