"""What every metric shares: options, feature statistics, the dataset statistics cache and the
loops that push dataset or generated images through a detector, on every rank."""

import contextlib
import copy
import hashlib
import os

import numpy as np
import torch
from tqdm import tqdm

import dnnlib
from torch_utils import distributed
from training.images import quantize
from . import detectors

#----------------------------------------------------------------------------

class MetricOptions:
    """Everything a metric needs. `G` is the generator (None when two image sets are compared,
    then `gen_dataset_kwargs` names the second set). `detector` is the --detector value,
    `feature_precision` that of the Inception features (detectors.PRECISIONS)."""

    def __init__(self, G=None, G_kwargs={}, dataset_kwargs={}, gen_dataset_kwargs=None, num_gpus=None, rank=None,
            device=None, progress=True, cache=True, detector=None, verbose=False, seed=0, feature_precision='float32'):
        self.num_gpus = num_gpus if num_gpus is not None else distributed.get_world_size()
        self.rank = rank if rank is not None else distributed.get_rank()
        if not 0 <= self.rank < self.num_gpus:
            raise ValueError(f'rank {self.rank} is outside 0..{self.num_gpus - 1}')
        self.G = G
        self.G_kwargs = dnnlib.EasyDict(G_kwargs)
        self.dataset_kwargs = dnnlib.EasyDict(dataset_kwargs)
        self.gen_dataset_kwargs = dnnlib.EasyDict(gen_dataset_kwargs) if gen_dataset_kwargs is not None else None
        self.device = torch.device(device) if device is not None else distributed.device()
        self.progress = bool(progress) and self.rank == 0
        self.cache = cache
        self.detector = detector
        self.verbose = verbose and self.rank == 0
        self.seed = seed
        self.feature_precision = feature_precision
        self.detectors_used = []  # describe() of each detector that produced a number.

    def get_detector(self, kind, mode='features'):
        """The detector of `kind`, checked up front for `mode` ('features', 'probabilities'
        or 'lpips') so that a missing network is reported before any image is generated."""
        precision = self.feature_precision if kind == 'inception' else 'float32'
        det = detectors.get_detector(kind, device=self.device, spec=self.detector, verbose=self.verbose, precision=precision)
        if mode == 'probabilities' and not det.has_probabilities:
            det.probabilities(None)  # Raises DetectorUnavailable naming the file to fetch.
        if mode == 'lpips' and not det.has_lpips:
            det.lpips(None)
        if det.describe() not in self.detectors_used:
            self.detectors_used.append(det.describe())
        return det

    def make_progress(self, desc, total):
        return tqdm(total=total, desc=desc, unit='img', disable=not self.progress, dynamic_ncols=True, leave=False)

#----------------------------------------------------------------------------

class FeatureStats:
    """Running statistics of feature vectors: all of them and/or their mean and covariance
    (float64 sums, so that 50k x 2048 features lose no precision). Stops at `max_items`."""

    def __init__(self, capture_all=False, capture_mean_cov=False, max_items=None):
        self.capture_all = capture_all
        self.capture_mean_cov = capture_mean_cov
        self.max_items = max_items
        self.num_items = 0
        self.num_features = None
        self.all_features = []
        self.raw_sum = None
        self.raw_outer = None

    def is_full(self):
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, x):
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f'Features must be [N, F], got shape {x.shape}')
        if self.max_items is not None:
            x = x[:max(self.max_items - self.num_items, 0)]
        if self.num_features is None:
            self.num_features = x.shape[1]
            self.raw_sum = np.zeros([self.num_features], dtype=np.float64)
            self.raw_outer = np.zeros([self.num_features, self.num_features], dtype=np.float64)
        if x.shape[1] != self.num_features:
            raise ValueError(f'Expected {self.num_features} features per item, got {x.shape[1]}')
        self.num_items += x.shape[0]
        if self.capture_all:
            self.all_features.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self.raw_sum += x64.sum(axis=0)
            self.raw_outer += x64.T @ x64

    def get_all(self):
        assert self.capture_all
        if not self.all_features:
            return np.zeros([0, self.num_features or 0], dtype=np.float32)
        return np.concatenate(self.all_features, axis=0)

    def get_all_torch(self):
        return torch.from_numpy(self.get_all())

    def get_mean_cov(self):
        """Mean and the population (1/N) covariance, as in the reference FID code."""
        assert self.capture_mean_cov and self.num_items > 0
        mean = self.raw_sum / self.num_items
        cov = self.raw_outer / self.num_items - np.outer(mean, mean)
        return mean, cov

    def save(self, path):
        """Atomic .npz write: concurrent runs see no file or the whole file."""
        arrays = dict(capture_all=self.capture_all, capture_mean_cov=self.capture_mean_cov,
            max_items=-1 if self.max_items is None else self.max_items, num_items=self.num_items)
        if self.num_features is not None:
            arrays.update(raw_sum=self.raw_sum, raw_outer=self.raw_outer, all_features=self.get_all() if self.capture_all else np.zeros([0]))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        dnnlib.util.atomic_write(path, lambda f: np.savez(f, **arrays))

    @staticmethod
    def load(path):
        with np.load(path, allow_pickle=False) as data:
            max_items = int(data['max_items'])
            stats = FeatureStats(bool(data['capture_all']), bool(data['capture_mean_cov']), None if max_items < 0 else max_items)
            stats.num_items = int(data['num_items'])
            if 'raw_sum' in data:
                stats.raw_sum = data['raw_sum']
                stats.raw_outer = data['raw_outer']
                stats.num_features = stats.raw_sum.shape[0]
                stats.all_features = [data['all_features']] if stats.capture_all else []
        return stats

#----------------------------------------------------------------------------

def gather_interleaved(x, opts):
    """Features of one batch from every rank, interleaved (rank 0 item 0, rank 1 item 0, ...)
    so that the order matches the dataset order in which ranks took their items."""
    if opts.num_gpus == 1:
        return x
    y = distributed.all_gather_cat(x)
    return y.reshape(opts.num_gpus, x.shape[0], *x.shape[1:]).transpose(0, 1).flatten(0, 1)


def _run_detector(detector, mode, images):
    return detector.probabilities(images) if mode == 'probabilities' else detector.features(images)


def _dataset_fingerprint(dataset_kwargs):
    """Size and modification time of the dataset path, so that a rebuilt dataset is not
    mistaken for the cached one."""
    path = dataset_kwargs.get('path')
    if path is None or not os.path.exists(path):
        return None
    st = os.stat(path)
    return (st.st_size, int(st.st_mtime))


def stats_cache_path(dataset_name, detector, args):
    key = hashlib.md5(repr(sorted(args.items())).encode('utf-8')).hexdigest()
    return dnnlib.make_cache_dir_path('gan-metrics', f'{dataset_name}-{detector.name}-{key}.npz')


def compute_feature_stats_for_dataset(opts, detector_kind, mode='features', dataset_kwargs=None, max_items=None,
        batch_size=64, desc='dataset features', **stats_kwargs):
    """Feature statistics of (the first `max_items` images of) a dataset, cached on disk by a
    hash of (dataset options, dataset file, detector, statistics options)."""
    dataset_kwargs = dnnlib.EasyDict(dataset_kwargs if dataset_kwargs is not None else opts.dataset_kwargs)
    dataset = dnnlib.util.construct_class_by_name(**dataset_kwargs)
    detector = opts.get_detector(detector_kind, mode)

    cache_file = None
    if opts.cache:
        args = dict(dataset_kwargs=sorted(dataset_kwargs.items()), fingerprint=_dataset_fingerprint(dataset_kwargs),
            detector=detector.name, mode=mode, max_items=max_items, stats_kwargs=sorted(stats_kwargs.items()))
        cache_file = stats_cache_path(dataset.name, detector, args)
        if distributed.any_rank(opts.rank == 0 and os.path.isfile(cache_file)):
            if opts.verbose:
                print(f'Reusing cached dataset statistics {cache_file}')
            return FeatureStats.load(cache_file)

    num_items = len(dataset) if max_items is None else min(len(dataset), max_items)
    if num_items == 0:
        raise ValueError(f'Dataset {dataset_kwargs.get("path")} has no images')
    stats = FeatureStats(max_items=num_items, **stats_kwargs)
    # Every rank takes every num_gpus-th item; the last round wraps around so that all ranks
    # run equally many batches, and the extra items fall past max_items.
    item_subset = [(i * opts.num_gpus + opts.rank) % num_items for i in range((num_items - 1) // opts.num_gpus + 1)]
    on_cuda = opts.device.type == 'cuda'
    loader = torch.utils.data.DataLoader(dataset, sampler=item_subset, batch_size=batch_size,
        num_workers=3 if on_cuda else 0, pin_memory=on_cuda)
    with opts.make_progress(desc, num_items) as bar:
        for images, _labels in loader:
            features = _run_detector(detector, mode, images.to(opts.device))
            before = stats.num_items
            stats.append(gather_interleaved(features, opts).cpu().numpy())
            bar.update(stats.num_items - before)

    if cache_file is not None and opts.rank == 0:
        stats.save(cache_file)
    return stats

#----------------------------------------------------------------------------

@contextlib.contextmanager
def seeded_rng(opts):
    """Seeds torch's global RNG (latents, and the generator's random noise) so that the same
    seed gives the same number, and restores the caller's RNG state afterwards so that a
    training run continues as if no metric had been computed."""
    devices = [opts.device.index if opts.device.index is not None else torch.cuda.current_device()] if opts.device.type == 'cuda' else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(opts.seed * 65536 + opts.rank)
        yield


class LabelSampler:
    """Random conditioning labels drawn from the dataset (zeros of width 0 for an
    unconditional generator), as the published metrics do."""

    def __init__(self, opts, c_dim, seed):
        self.c_dim = c_dim
        self.device = opts.device
        self.rng = np.random.default_rng(seed)
        self.dataset = dnnlib.util.construct_class_by_name(**opts.dataset_kwargs) if c_dim > 0 else None

    def __call__(self, batch_size):
        if self.dataset is None:
            return torch.zeros([batch_size, self.c_dim], device=self.device)
        labels = [self.dataset.get_label(int(i)) for i in self.rng.integers(len(self.dataset), size=batch_size)]
        return torch.from_numpy(np.stack(labels)).to(self.device)


def generate_images(G, z, c, G_kwargs):
    """uint8 images [N, C, H, W] from the generator's [-1, 1] output."""
    return quantize(G(z, c, **G_kwargs))


def compute_feature_stats_for_generator(opts, detector_kind, mode='features', max_items=None, batch_size=64,
        batch_gen=4, desc='generator features', **stats_kwargs):
    """Feature statistics of `max_items` generated images. Every rank generates batches and
    the features are gathered, so each rank ends with the same statistics."""
    if max_items is None:
        raise ValueError('The number of generated images (max_items) must be given')
    if opts.G is None:
        raise ValueError('This metric needs a generator (--network)')
    batch_gen = min(batch_gen, batch_size)
    detector = opts.get_detector(detector_kind, mode)
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    labels = LabelSampler(opts, G.c_dim, seed=opts.seed * 65536 + opts.rank)

    stats = FeatureStats(max_items=max_items, **stats_kwargs)
    with opts.make_progress(desc, max_items) as bar, torch.no_grad(), seeded_rng(opts):
        while not stats.is_full():
            # No more images than still needed (the same count on every rank).
            num = min(batch_size, -(-(max_items - stats.num_items) // opts.num_gpus))
            images = []
            for start in range(0, num, batch_gen):
                n = min(batch_gen, num - start)
                z = torch.randn([n, G.z_dim], device=opts.device)
                images.append(generate_images(G, z, labels(n), opts.G_kwargs))
            features = _run_detector(detector, mode, torch.cat(images))
            before = stats.num_items
            stats.append(gather_interleaved(features, opts).cpu().numpy())
            bar.update(stats.num_items - before)
    return stats


def compute_feature_stats_for_fakes(opts, detector_kind, mode='features', max_items=None, **stats_kwargs):
    """The 'generated' side of a metric: the generator, or the second image set when two sets
    are compared (then every image of it, ignoring max_items)."""
    if opts.gen_dataset_kwargs is not None:
        return compute_feature_stats_for_dataset(opts, detector_kind, mode, dataset_kwargs=opts.gen_dataset_kwargs,
            desc='generated-set features', **stats_kwargs)
    return compute_feature_stats_for_generator(opts, detector_kind, mode, max_items=max_items, **stats_kwargs)
