"""Small PyTorch helpers: cached constants (the augment pipe), an infinite rank-aware
sampler and a module summary table (the training loop), parameter listing (distributed,
snapshot). The shape checks and the profiler label (`assert_shape`,
`suppress_tracer_warnings`, `profiled_function`) are not used by this codebase's networks:
they are here for the source embedded in published snapshots, which calls them when such a
snapshot is unpickled with `--trust-pickle`."""

import contextlib
import functools
import warnings

import numpy as np
import torch

import dnnlib

#----------------------------------------------------------------------------
# Constants, created once per (value, shape, dtype, device, memory format).

_constant_cache = dict()

def constant(value, shape=None, dtype=None, device=None, memory_format=None):
    """A tensor holding `value` (broadcast to `shape`), cached so that layers that need the
    same constant every call do not re-upload it. The tensor is shared: never modify it."""
    value = np.asarray(value)
    shape = tuple(shape) if shape is not None else None
    dtype = dtype if dtype is not None else torch.get_default_dtype()
    device = torch.device(device) if device is not None else torch.device('cpu')
    memory_format = memory_format if memory_format is not None else torch.contiguous_format

    key = (value.shape, value.dtype, value.tobytes(), shape, dtype, device, memory_format)
    tensor = _constant_cache.get(key)
    if tensor is None:
        tensor = torch.as_tensor(value.copy(), dtype=dtype, device=device)
        if shape is not None:
            tensor = tensor.expand(shape)
        tensor = tensor.contiguous(memory_format=memory_format)
        # Tensors made under inference_mode cannot enter autograd later, so they are not cached.
        if not torch.is_inference_mode_enabled():
            _constant_cache[key] = tensor
    return tensor

#----------------------------------------------------------------------------
# Shape checks.

@contextlib.contextmanager
def suppress_tracer_warnings():
    """Silence torch.jit.TracerWarning (shape checks are meant to be baked into traces)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
        yield


def assert_shape(tensor, ref_shape):
    """Raise AssertionError unless `tensor` has len(ref_shape) dimensions and every size
    matches the reference; None in `ref_shape` matches any size."""
    if tensor.ndim != len(ref_shape):
        raise AssertionError(f'Wrong number of dimensions: got {tensor.ndim} (shape {list(tensor.shape)}), '
            f'expected {len(ref_shape)} (shape {list(ref_shape)})')
    for idx, (size, ref_size) in enumerate(zip(tensor.shape, ref_shape)):
        if ref_size is None:
            continue
        message = f'Wrong size for dimension {idx}: got {size}, expected {ref_size} (shape {list(tensor.shape)}, expected {list(ref_shape)})'
        if isinstance(size, torch.Tensor) or isinstance(ref_size, torch.Tensor):
            # Under torch.jit.trace sizes are tensors; record the check in the trace instead of a Python branch.
            with suppress_tracer_warnings():
                torch._assert(torch.equal(torch.as_tensor(size), torch.as_tensor(ref_size)), message)
        elif size != ref_size:
            raise AssertionError(message)

#----------------------------------------------------------------------------

def profiled_function(fn):
    """Decorator that labels every call of `fn` in the PyTorch profiler."""
    @functools.wraps(fn)
    def decorator(*args, **kwargs):
        with torch.autograd.profiler.record_function(fn.__name__):
            return fn(*args, **kwargs)
    return decorator

#----------------------------------------------------------------------------

class InfiniteSampler(torch.utils.data.Sampler):
    """Endless stream of dataset indices, split across ranks.

    The global stream is a sequence of passes over the dataset, each pass a permutation of
    all indices. Rank r of R takes the global positions r, r+R, r+2R, ..., so the ranks see
    disjoint shards of every stretch of the stream and, together, each index once per pass.
    Every rank computes the same stream from `seed`, so no communication is needed.

    With shuffle, the first pass is a random permutation and every later pass reshuffles the
    previous order: each position swaps with a random earlier position at most
    `window_size * len(dataset)` places back. window_size >= 1 gives an independent uniform
    permutation per pass; small values keep passes similar; a window below 2 items keeps the
    first order forever.

    `start` skips the first `start` positions of the global stream (e.g. the images already
    trained on when resuming): whole passes are only reshuffled, not walked item by item."""

    def __init__(self, dataset, rank=0, num_replicas=1, shuffle=True, seed=0, window_size=0.5, start=0):
        if len(dataset) < 1:
            raise ValueError('InfiniteSampler: the dataset is empty')
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f'InfiniteSampler: need 0 <= rank < num_replicas, got rank={rank}, num_replicas={num_replicas}')
        if window_size < 0:
            raise ValueError(f'InfiniteSampler: window_size must be >= 0, got {window_size}')
        if start < 0:
            raise ValueError(f'InfiniteSampler: start must be >= 0, got {start}')
        super().__init__()  # Since torch 2.x, Sampler.__init__ takes no dataset.
        self.dataset_size = len(dataset)
        self.rank = rank
        self.num_replicas = num_replicas
        self.shuffle = shuffle
        self.seed = seed
        self.window_size = window_size
        self.start = start

    def _passes(self):
        """Yield the order of each pass over the dataset (numpy int64 arrays)."""
        order = np.arange(self.dataset_size)
        if not self.shuffle:
            while True:
                yield order
        rnd = np.random.RandomState(self.seed)
        rnd.shuffle(order)
        window = min(int(np.rint(self.dataset_size * self.window_size)), self.dataset_size)
        while True:
            yield order
            if window >= 2:
                positions = np.arange(self.dataset_size)
                # Swap position i with i - k, k uniform in [0, min(window, i + 1)); with a full
                # window this is the forward Fisher-Yates shuffle.
                back = (rnd.random_sample(self.dataset_size) * np.minimum(window, positions + 1)).astype(np.int64)
                swapped = order.tolist()  # Python lists swap elements far faster than numpy arrays.
                for i, j in zip(positions.tolist(), (positions - back).tolist()):
                    swapped[i], swapped[j] = swapped[j], swapped[i]
                order = np.array(swapped)

    def __iter__(self):
        global_pos = 0  # Global stream position of the pass's first item.
        for order in self._passes():
            if global_pos + self.dataset_size > self.start:
                # This rank's positions of the pass, from `start` on.
                first = max(self.start - global_pos, 0)
                first += (self.rank - global_pos - first) % self.num_replicas
                yield from order[first::self.num_replicas].tolist()
            global_pos += self.dataset_size

#----------------------------------------------------------------------------
# Parameters and buffers.

def params_and_buffers(module):
    """All parameters followed by all buffers of `module`."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f'Expected a torch.nn.Module, got {type(module).__name__}')
    return list(module.parameters()) + list(module.buffers())


def named_params_and_buffers(module):
    """(name, tensor) for all parameters followed by all buffers of `module`."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f'Expected a torch.nn.Module, got {type(module).__name__}')
    return list(module.named_parameters()) + list(module.named_buffers())

#----------------------------------------------------------------------------
# Module summary.

def print_module_summary(module, inputs, max_nesting=3, skip_redundant=True):
    """Run `module(*inputs)` once and print a table of its submodules (up to `max_nesting`
    levels deep) with their parameter and buffer counts and output shapes. Returns the
    module's outputs. With skip_redundant, submodules that add no tensors of their own and
    only pass on outputs already listed (containers, wrappers) are left out."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f'Expected a torch.nn.Module, got {type(module).__name__}')
    if not isinstance(inputs, (tuple, list)):
        raise TypeError('print_module_summary: pass the inputs as a tuple or list, e.g. [z, c]')

    # Record each module call that finishes within max_nesting levels, innermost first.
    entries = []
    depth = [0]
    def pre_hook(_mod, _inputs):
        depth[0] += 1
    def post_hook(mod, _inputs, outputs):
        depth[0] -= 1
        if depth[0] < max_nesting:
            outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
            entries.append(dnnlib.EasyDict(mod=mod, outputs=[t for t in outputs if isinstance(t, torch.Tensor)]))
    hooks = [mod.register_forward_pre_hook(pre_hook) for mod in module.modules()]
    hooks += [mod.register_forward_hook(post_hook) for mod in module.modules()]
    try:
        outputs = module(*inputs)
    finally:
        for hook in hooks:
            hook.remove()

    # Each tensor is credited to the first (innermost) entry that owns it.
    seen_tensors = set()
    seen_outputs = set()
    for e in entries:
        e.params = [t for t in e.mod.parameters() if id(t) not in seen_tensors]
        e.buffers = [t for t in e.mod.buffers() if id(t) not in seen_tensors]
        e.num_params = sum(t.numel() for t in e.params)
        e.num_buffers = sum(t.numel() for t in e.buffers)
        e.redundant = not e.params and not e.buffers and all(id(t) in seen_outputs for t in e.outputs)
        seen_tensors |= {id(t) for t in e.params + e.buffers}
        seen_outputs |= {id(t) for t in e.outputs}
    if skip_redundant:
        entries = [e for e in entries if not e.redundant or e.mod is module]

    # Build and print the table.
    names = {mod: name for name, mod in module.named_modules()}
    rows = [[type(module).__name__, 'Parameters', 'Buffers', 'Output shape', 'Datatype']]
    rows += [['---'] * len(rows[0])]
    for e in entries:
        name = '<top-level>' if e.mod is module else names[e.mod]
        shapes = [str(list(t.shape)) for t in e.outputs] or ['-']
        dtypes = [str(t.dtype).split('.')[-1] for t in e.outputs] or ['-']
        rows.append([name, str(e.num_params or '-'), str(e.num_buffers or '-'), shapes[0], dtypes[0]])
        for idx in range(1, len(shapes)):
            rows.append([f'{name}:{idx}', '-', '-', shapes[idx], dtypes[idx]])
    rows += [['---'] * len(rows[0])]
    rows.append(['Total', str(sum(e.num_params for e in entries)), str(sum(e.num_buffers for e in entries)), '-', '-'])
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    print()
    for row in rows:
        print('  '.join(cell + ' ' * (width - len(cell)) for cell, width in zip(row, widths)).rstrip())
    print()
    return outputs

#----------------------------------------------------------------------------
