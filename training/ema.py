"""The exponential moving average of G's weights (G_ema), updated in one kernel.

The decay per step (with its ramp-up) is chosen by the training loop
(training/training_loop.py, `_update_ema`); this module applies it."""

import torch

#----------------------------------------------------------------------------

@torch.no_grad()
def update_ema(ema_module, module, beta):
    """ema = beta * ema + (1 - beta) * param for all parameters in one foreach kernel;
    buffers are copied."""
    torch._foreach_lerp_(list(ema_module.parameters()), list(module.parameters()), 1 - beta) # pylint: disable=protected-access
    for b_ema, b in zip(ema_module.buffers(), module.buffers()):
        b_ema.copy_(b)

#----------------------------------------------------------------------------
