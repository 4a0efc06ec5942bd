"""Kernel Inception Distance (Binkowski et al. 2018): the unbiased estimate of the squared MMD
with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3 on Inception features, averaged
over random subsets, as in StyleGAN2-ADA."""

import numpy as np

from . import metric_utils


def _poly_kernel(x, y):
    return (x @ y.T / x.shape[1] + 1) ** 3


def kernel_distance(real_features, gen_features, num_subsets=100, max_subset_size=1000, rng=None):
    """Mean over `num_subsets` pairs of random subsets (m items each, without replacement) of
    the unbiased MMD^2: the within-set kernel means leave out the diagonal."""
    rng = rng if rng is not None else np.random.default_rng(0)
    real = np.asarray(real_features, np.float64)
    gen = np.asarray(gen_features, np.float64)
    m = min(len(real), len(gen), max_subset_size)
    if m < 2:
        raise ValueError(f'KID needs at least 2 items per set, got {len(real)} real and {len(gen)} generated')
    total = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(len(gen), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        total += within - 2 * kxy.mean()
    return float(total / num_subsets)


def compute_kid(opts, max_real, num_gen, num_subsets, max_subset_size):
    real = metric_utils.compute_feature_stats_for_dataset(opts, 'inception', max_items=max_real, capture_all=True).get_all()
    gen = metric_utils.compute_feature_stats_for_fakes(opts, 'inception', max_items=num_gen, capture_all=True).get_all()
    return kernel_distance(real, gen, num_subsets, max_subset_size, rng=np.random.default_rng(opts.seed))
