"""Fused multiply-add `a * b + c` with broadcasting and gradients of any order."""

import torch


def fma(a, b, c):
    # addcmul is one fused kernel and its autograd reduces the gradients over broadcast
    # dimensions, so no custom backward is needed.
    return torch.addcmul(c, a, b)
