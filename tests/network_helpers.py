"""Helpers shared by the generator tests."""

import torch


def move_off_init(G):
    """Move every parameter of G off its initial value (zero noise strengths and embeddings
    would hide whole code paths), as in trained networks; returns G."""
    with torch.no_grad():
        for name, p in G.named_parameters():
            p.add_(torch.randn_like(p) * (0.5 if 'noise_strength' in name or 'pos_embedding' in name else 0.05))
        G.mapping.w_avg.normal_()
    return G


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()
