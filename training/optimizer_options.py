"""Options added to the optimizers' kwargs for speed: the multi-tensor kernels of Adam."""

import torch

import dnnlib

#----------------------------------------------------------------------------

def fast_optimizer_kwargs(opt_kwargs, device):
    """Adam/AdamW kwargs with their multi-tensor kernels: fused on CUDA (one kernel for all
    parameters), foreach on the CPU. Explicit choices in `opt_kwargs` are kept."""
    if opt_kwargs.get('class_name') not in ('torch.optim.Adam', 'torch.optim.AdamW'):
        return opt_kwargs
    if 'fused' in opt_kwargs or 'foreach' in opt_kwargs:
        return opt_kwargs
    key = 'fused' if torch.device(device).type == 'cuda' else 'foreach'
    return dnnlib.EasyDict(opt_kwargs, **{key: True})

#----------------------------------------------------------------------------
