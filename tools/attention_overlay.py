"""Attention maps as pictures: the weights of one query pixel's token over a block's tokens,
as a heat map blended over the generated image. Shared by attention_maps.py and the explorer."""

import numpy as np

#----------------------------------------------------------------------------

def heat_colors(values):
    """Values in [0, 1] [...] -> uint8 RGB [..., 3] (dark blue -> cyan -> yellow -> red)."""
    stops = np.array([[0, 0, 128], [0, 200, 255], [255, 255, 0], [255, 0, 0]], dtype=np.float32)
    pos = np.clip(values, 0, 1) * (len(stops) - 1)
    lo = np.minimum(pos.astype(np.int64), len(stops) - 2)
    frac = (pos - lo)[..., None]
    return (stops[lo] * (1 - frac) + stops[lo + 1] * frac).round().astype(np.uint8)


def query_token_weights(block, attn, query_xy, img_resolution):
    """Attention [heads, tokens, keys] of one block -> per-head weights over the block's token grid
    [heads, res, res] for the token that covers the query pixel."""
    res = block.resolution
    qx, qy = (int(v) * res // img_resolution for v in query_xy)
    weights = attn[:, qy * res + qx]  # [heads, keys]
    if weights.shape[-1] != res * res:
        proj = block.enc.proj_weight  # Linformer: keys = proj_weight @ tokens.
        weights = weights @ proj.to(weights.dtype)
    return weights.reshape(-1, res, res)


def overlay(image, weights, alpha):
    """Blend a heat map of weights [h, w] (any scale) over a uint8 image [H, W, C] (H multiple of h)."""
    w = weights - weights.min()
    w = w / max(float(w.max()), 1e-12)
    zoom = image.shape[0] // weights.shape[0]
    heat = heat_colors(np.kron(w, np.ones([zoom, zoom], dtype=np.float32)))
    base = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    return ((1 - alpha) * base + alpha * heat).round().astype(np.uint8)
