"""Named scalar statistics for the training log.

Anywhere in the code, `report('Loss/G/loss', tensor)` adds the tensor's elements to the
running count / sum / sum of squares kept under that name, on the tensor's own device and
without a GPU sync. Once per tick the training loop calls `Collector.update()`, which sums
what every rank reported since the previous update (torch.distributed all_reduce when a
process group is running) and exposes the mean, std and count of that interval.

Every rank must report the same set of names (possibly with empty values, as report0
does on ranks other than 0): the ranks reduce the names in the same sorted order."""

import re

import numpy as np
import torch

import dnnlib

#----------------------------------------------------------------------------

_num_moments = 3                 # count, sum, sum of squares
_counter_dtype = torch.float64   # Sums of many float32 values lose precision in float32.
_rank = None                     # Set by init_multiprocessing; else taken from torch.distributed.
_sync_device = None              # Device for the cross-rank reduction; None = chosen from the backend.
_counters = dict()               # name -> {device: moments accumulated since the last sync}
_cumulative = dict()             # name -> moments of all ranks since the start (CPU, float64)

#----------------------------------------------------------------------------

def init_multiprocessing(rank, sync_device):
    """Tell this module its rank and the device to reduce on (a CUDA device for nccl, the
    CPU for gloo; None picks one from the process group's backend)."""
    global _rank, _sync_device
    _rank = rank
    _sync_device = torch.device(sync_device) if sync_device is not None else None


def _dist_world_size():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def _get_rank():
    if _rank is not None:
        return _rank
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def _reduction_device():
    if _sync_device is not None:
        return _sync_device
    if _dist_world_size() > 1 and torch.distributed.get_backend() == 'nccl':
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')

#----------------------------------------------------------------------------

def report(name, value):
    """Add the elements of `value` (number, array or tensor of any shape; may be empty) to
    the statistic `name`. Returns `value` unchanged, so it can wrap an expression."""
    counters = _counters.setdefault(name, dict())  # Register the name even for empty values.
    elems = torch.as_tensor(value)
    if elems.numel() == 0:
        return value
    # Counters must be normal tensors: one made under inference_mode (e.g. in a metric) could
    # not be updated in place afterwards.
    with torch.inference_mode(False), torch.no_grad():
        elems = elems.detach().flatten().to(_counter_dtype)
        moments = torch.stack([torch.ones_like(elems).sum(), elems.sum(), elems.square().sum()])
        if elems.device in counters:
            counters[elems.device].add_(moments)
        else:
            counters[elems.device] = moments
    return value


def report0(name, value):
    """Like report(), but only rank 0's values count; the other ranks register the name."""
    report(name, value if _get_rank() == 0 else [])
    return value

#----------------------------------------------------------------------------

def _sync(names):
    """Move the local counters of `names` into the cumulative totals, summed over all ranks.
    A collective operation when several ranks run: all ranks must call it with equal names."""
    if not names:
        return dict()
    device = _reduction_device()
    deltas = torch.zeros([len(names), _num_moments], dtype=_counter_dtype, device=device)
    for idx, name in enumerate(names):
        for counter in _counters.get(name, dict()).values():
            deltas[idx].add_(counter.to(device))
            counter.zero_()
    if _dist_world_size() > 1:
        torch.distributed.all_reduce(deltas)
    deltas = deltas.cpu()
    for idx, name in enumerate(names):
        _cumulative[name] = _cumulative.get(name, torch.zeros(_num_moments, dtype=_counter_dtype)) + deltas[idx]
    return {name: _cumulative[name] for name in names}

#----------------------------------------------------------------------------

class Collector:
    """Statistics of the names that fully match `regex`, over the interval between the two
    latest update() calls. With keep_previous, a name that got no values in the latest
    interval keeps its previous figures; otherwise its count becomes 0 and its mean NaN.
    The baseline is what was already synchronised when the collector was created."""

    def __init__(self, regex='.*', keep_previous=True):
        self._regex = re.compile(regex)
        self._keep_previous = keep_previous
        self._baseline = {name: moments.clone() for name, moments in _cumulative.items() if self._regex.fullmatch(name)}
        self._moments = dict()

    def names(self):
        """The reported names this collector follows, sorted (the same order on every rank)."""
        return sorted(name for name in _counters if self._regex.fullmatch(name))

    def update(self):
        """Gather the values reported since the previous update (from all ranks)."""
        for name, cumulative in _sync(self.names()).items():
            delta = cumulative - self._baseline.get(name, torch.zeros_like(cumulative))
            self._baseline[name] = cumulative.clone()
            if delta[0] > 0 or not self._keep_previous:
                self._moments[name] = delta

    def num(self, name):
        """Number of scalars collected for `name` in the interval."""
        moments = self._moments.get(name)
        return int(moments[0]) if moments is not None else 0

    def mean(self, name):
        """Mean of `name` in the interval (NaN when nothing was collected)."""
        moments = self._moments.get(name)
        if moments is None or moments[0] == 0:
            return float('nan')
        return float(moments[1] / moments[0])

    def std(self, name):
        """Standard deviation (population) of `name` in the interval (NaN when nothing was collected)."""
        moments = self._moments.get(name)
        if moments is None or moments[0] == 0:
            return float('nan')
        mean = moments[1] / moments[0]
        return float(np.sqrt(max(float(moments[2] / moments[0] - mean.square()), 0)))  # Rounding can go below 0.

    def as_dict(self):
        """{name: EasyDict(num, mean, std)} for every name with figures, e.g. for stats.jsonl."""
        return dnnlib.EasyDict({name: dnnlib.EasyDict(num=self.num(name), mean=self.mean(name), std=self.std(name))
            for name in sorted(self._moments)})

    def __getitem__(self, name):
        """The mean of `name`: `collector['Loss/G/loss']`."""
        return self.mean(name)

#----------------------------------------------------------------------------

default_collector = Collector()  # Shared by code that reports and reads without passing a collector around.

#----------------------------------------------------------------------------
