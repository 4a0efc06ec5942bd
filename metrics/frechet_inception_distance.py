"""Fréchet Inception Distance (Heusel et al. 2017) on Inception-v3 pool features, defined as in
StyleGAN2-ADA: population covariances, all real images or the first `max_real` of them."""

import numpy as np

from . import metric_utils


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2, which are
    those of the symmetric PSD matrix S1^(1/2) S2 S1^(1/2); two symmetric eigendecompositions
    are faster and steadier than a general matrix square root (no complex round-off)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f'Mismatched statistics: means {mu1.shape} {mu2.shape}, covariances {sigma1.shape} {sigma2.shape}')
    evals, evecs = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    sqrt_sigma1 = (evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T
    inner = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    fid = np.square(mu1 - mu2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    return float(fid)


def compute_fid(opts, max_real, num_gen):
    mu_real, sigma_real = metric_utils.compute_feature_stats_for_dataset(
        opts, 'inception', max_items=max_real, capture_mean_cov=True).get_mean_cov()
    mu_gen, sigma_gen = metric_utils.compute_feature_stats_for_fakes(
        opts, 'inception', max_items=num_gen, capture_mean_cov=True).get_mean_cov()
    return frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)
