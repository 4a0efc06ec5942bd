"""torch.compile of G and D for the training step, and inductor's compile cache.

What is compiled: G's mapping and synthesis networks and D, each with static shapes
(dynamic=False: one graph per batch size and resolution). They serve the phases whose
gradient is not differentiated again (Gmain, Dmain). The regularisation phases (path length,
R1) need double backward, which compiled graphs do not provide, so they keep calling the
eager modules; both share the same parameters.

Backends: on the CPU inductor writes C++ and needs a system compiler; on CUDA it needs
Triton. Where one is missing, `resolve_compile` says so in one line and training stays eager.
"""

import importlib.util
import os
import shutil

import torch

import dnnlib

#----------------------------------------------------------------------------
# Whether to compile.

COMPILE_CHOICES = ('auto', 'on', 'off')

def backend_problem(device):
    """Why inductor cannot compile for `device`, or None when it can."""
    device = torch.device(device)
    if device.type == 'cuda':
        if importlib.util.find_spec('triton') is None:
            return 'Triton is not installed (pip install triton)'
        return None
    if device.type == 'cpu':
        compiler = os.environ.get('CXX', 'g++')
        if shutil.which(compiler) is None and shutil.which('c++') is None:
            return f'no C++ compiler ({compiler}) on PATH (apt-get install g++)'
        return None
    return f'inductor does not support device type {device.type!r}'

def resolve_compile(choice, device, verbose=True):
    """'on' | 'off' | 'auto' -> bool. 'auto' is eager everywhere for now: the compiled CUDA
    path (CUDA graphs, fused Adam) has not yet passed its tests on a GPU, and on the CPU
    compiling pays only for long runs (it takes minutes there the first time). 'on' compiles.
    A missing backend falls back to eager with one line."""
    if choice not in COMPILE_CHOICES:
        raise ValueError(f'compile={choice!r}: use one of {", ".join(COMPILE_CHOICES)}')
    if choice in ('off', 'auto'):
        return False
    problem = backend_problem(device)
    if problem is not None:
        if verbose:
            print(f'torch.compile is off: {problem}; training runs eagerly.')
        return False
    return True

#----------------------------------------------------------------------------
# Compiled networks.

def use_compile_cache(cache_dir=None):
    """Keep inductor's compiled kernels and graphs in a persistent folder (`cache_dir`, else
    $TORCHINDUCTOR_CACHE_DIR, else the dnnlib cache: ~/.cache/dnnlib/inductor), so a resumed or
    repeated run reuses them instead of recompiling. Call before the first compilation."""
    if cache_dir is not None:
        os.environ['TORCHINDUCTOR_CACHE_DIR'] = cache_dir
    os.environ.setdefault('TORCHINDUCTOR_CACHE_DIR', dnnlib.util.make_cache_dir_path('inductor'))
    os.makedirs(os.environ['TORCHINDUCTOR_CACHE_DIR'], exist_ok=True)
    torch._inductor.config.fx_graph_cache = True # pylint: disable=protected-access
    torch._functorch.config.enable_autograd_cache = True # pylint: disable=protected-access
    return os.environ['TORCHINDUCTOR_CACHE_DIR']

class CompiledGenerator:
    """G's mapping and synthesis, compiled; calls share G's parameters and buffers."""
    def __init__(self, G, mode):
        self.mapping = torch.compile(G.mapping, dynamic=False, mode=mode)
        self.synthesis = torch.compile(G.synthesis, dynamic=False, mode=mode)

class CompiledNetworks:
    """What the loss calls in its first-order phases: `.G.mapping`, `.G.synthesis` and `.D`."""
    def __init__(self, G, D, device):
        # CUDA graphs replay the fixed-shape phases without per-kernel launches.
        mode = 'reduce-overhead' if torch.device(device).type == 'cuda' else None
        self.G = CompiledGenerator(G, mode)
        self.D = torch.compile(D, dynamic=False, mode=mode)

def clear_compile_marks(module):
    """Remove the attribute torch.compile sets on the tensors it saw (and deepcopy keeps):
    pickled, it turns a tensor into a call the safe snapshot loader rightly refuses."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        tensor.__dict__.pop('_dynamo_static_input_type', None)


#----------------------------------------------------------------------------
