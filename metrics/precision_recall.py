"""Improved precision and recall (Kynkäänniemi et al. 2019) on VGG16 features: a sample lies on
a manifold when it is within the k-th nearest neighbour distance of some manifold point.
Features are rounded to float16 as in StyleGAN2-ADA; distances are taken in float32."""

import torch

from . import metric_utils


def _distances(rows, cols, col_batch_size):
    return torch.cat([torch.cdist(rows, c) for c in cols.split(col_batch_size)], dim=1)


def manifold_coverage(manifold, probes, nhood_size, row_batch_size=10000, col_batch_size=10000):
    """Fraction of `probes` within the `nhood_size`-NN radius of at least one manifold point."""
    radii = torch.cat([_distances(rows, manifold, col_batch_size).kthvalue(nhood_size + 1, dim=1).values  # +1: self
        for rows in manifold.split(row_batch_size)])
    covered = torch.cat([(_distances(rows, manifold, col_batch_size) <= radii.unsqueeze(0)).any(dim=1)
        for rows in probes.split(row_batch_size)])
    return float(covered.float().mean())


def precision_recall(real_features, gen_features, nhood_size, row_batch_size=10000, col_batch_size=10000):
    precision = manifold_coverage(real_features, gen_features, nhood_size, row_batch_size, col_batch_size)
    recall = manifold_coverage(gen_features, real_features, nhood_size, row_batch_size, col_batch_size)
    return precision, recall


def compute_pr(opts, max_real, num_gen, nhood_size, row_batch_size, col_batch_size):
    def as_half_rounded(stats):
        return stats.get_all_torch().to(opts.device).half().float()
    real = metric_utils.compute_feature_stats_for_dataset(opts, 'vgg16', max_items=max_real, capture_all=True)
    gen = metric_utils.compute_feature_stats_for_fakes(opts, 'vgg16', max_items=num_gen, capture_all=True)
    return precision_recall(as_half_rounded(real), as_half_rounded(gen), nhood_size, row_batch_size, col_batch_size)
