"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) over splits of the
generated images, with the class probabilities of NVIDIA's Inception network (no output bias,
as in the original implementation). The offline fallback network has no classifier head."""

import numpy as np

from . import metric_utils


def inception_score(probs, num_splits):
    """(mean, std) of the score over `num_splits` consecutive splits."""
    probs = np.asarray(probs, np.float64)
    n = len(probs)
    scores = []
    for i in range(num_splits):
        part = probs[i * n // num_splits:(i + 1) * n // num_splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part) - np.log(marginal))).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def compute_is(opts, num_gen, num_splits):
    probs = metric_utils.compute_feature_stats_for_fakes(
        opts, 'inception', mode='probabilities', max_items=num_gen, capture_all=True).get_all()
    return inception_score(probs, num_splits)
