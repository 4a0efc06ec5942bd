"""Everything that spans processes: launching ranks, the process group and the collectives.

`torchrun --nproc_per_node=N train.py ...` sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR
and MASTER_PORT; a plain `python train.py ...` sets none of them and runs as the only
process without any process group, or `launch()` spawns the ranks on this machine. The
backend is nccl when CUDA is available, else gloo, so the same code runs on a laptop CPU and
on a GPU node. Every collective here is a no-op (or the identity) in a single process."""

import os
import re
import signal
import socket

import torch

from . import misc
from . import training_stats

#----------------------------------------------------------------------------

def _env_int(name, default):
    value = os.environ.get(name, '')
    try:
        return int(value) if value != '' else default
    except ValueError:
        raise ValueError(f'Environment variable {name}={value!r} must be an integer') from None


def init():
    """Join the process group described by the environment (no-op for a single process),
    select this rank's GPU, and let training_stats reduce across ranks."""
    os.environ.setdefault('MASTER_ADDR', 'localhost')
    os.environ.setdefault('MASTER_PORT', '29500')
    rank = _env_int('RANK', 0)
    local_rank = _env_int('LOCAL_RANK', 0)
    world_size = _env_int('WORLD_SIZE', 1)
    if not 0 <= rank < world_size:
        raise ValueError(f'RANK={rank} is outside [0, WORLD_SIZE={world_size}); start with torchrun or fix the variables')

    if torch.cuda.is_available():
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f'LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA device(s) are visible; '
                f'start at most that many processes per node')
        torch.cuda.set_device(local_rank)
    if world_size > 1 and not is_initialized():
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
        device_id = device() if backend == 'nccl' else None  # Binds nccl to this rank's GPU up front.
        torch.distributed.init_process_group(backend=backend, init_method='env://', rank=rank,
            world_size=world_size, device_id=device_id)
    training_stats.init_multiprocessing(rank=get_rank(), sync_device=device() if get_world_size() > 1 else None)


def is_initialized():
    """True when a multi-process group is running."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def get_rank():
    return torch.distributed.get_rank() if is_initialized() else 0


def get_world_size():
    return torch.distributed.get_world_size() if is_initialized() else 1


def get_local_rank():
    """Index of this process on its node (LOCAL_RANK, 0 when unset)."""
    return _env_int('LOCAL_RANK', 0)


def device():
    """The device this rank computes on: cuda:LOCAL_RANK when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device('cuda', get_local_rank())
    return torch.device('cpu')


def print0(*args, **kwargs):
    """print() on rank 0 only."""
    if get_rank() == 0:
        print(*args, **kwargs)


def shutdown():
    """Leave the process group, if any (call at the end of a multi-process run)."""
    if is_initialized():
        torch.distributed.destroy_process_group()

#----------------------------------------------------------------------------
# Collectives that also work in a single process.

def _comm_tensor(tensor):
    """nccl can only move CUDA tensors; gloo takes CPU tensors (and copies CUDA ones itself)."""
    if torch.distributed.get_backend() == 'nccl':
        return tensor.to(device())
    return tensor


def all_reduce_sum(tensor):
    """The element-wise sum of `tensor` over all ranks, as a new tensor on tensor's device
    (the tensor itself for a single process)."""
    if get_world_size() == 1:
        return tensor
    reduced = _comm_tensor(tensor.detach().clone())
    torch.distributed.all_reduce(reduced, op=torch.distributed.ReduceOp.SUM)
    return reduced.to(tensor.device)


def all_gather_cat(tensor):
    """Concatenate `tensor` from all ranks along dim 0, in rank order. The ranks may hold
    different numbers of rows (e.g. a last, smaller batch); other dimensions must agree."""
    world_size = get_world_size()
    if world_size == 1:
        return tensor
    local = _comm_tensor(tensor.detach().contiguous())
    sizes = torch.tensor([local.shape[0]], dtype=torch.int64, device=local.device)
    all_sizes = [torch.zeros_like(sizes) for _ in range(world_size)]
    torch.distributed.all_gather(all_sizes, sizes)
    all_sizes = [int(s) for s in all_sizes]
    # all_gather needs equal shapes: pad to the largest row count, then trim.
    padded = local.new_zeros([max(all_sizes), *local.shape[1:]])
    padded[:local.shape[0]] = local
    gathered = [torch.empty_like(padded) for _ in range(world_size)]
    torch.distributed.all_gather(gathered, padded)
    return torch.cat([g[:n] for g, n in zip(gathered, all_sizes)]).to(tensor.device)


def broadcast_object(obj):
    """Rank 0's `obj` (a picklable value, e.g. a path it chose) on every rank; `obj` itself
    in a single process. The other ranks' `obj` is ignored."""
    if get_world_size() == 1:
        return obj
    holder = [obj]
    torch.distributed.broadcast_object_list(holder, src=0, device=device())
    return holder[0]


def any_rank(flag):
    """True on every rank when `flag` is true on any. For rank 0's flag on every rank, pass
    `flag and get_rank() == 0`."""
    if get_world_size() == 1:
        return bool(flag)
    value = torch.tensor(float(bool(flag)), device=device())
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())

class AnyRankVote:
    """any_rank() for a flag polled every training step without stalling the step: each
    poll starts the all-reduce of this step's flag and returns the outcome of the previous
    poll, so every rank sees a request one step after it was made, at the same step. The host
    waits only for the previous step's all-reduce (long finished on a GPU), never for the
    work it has just queued. One process: the flag itself, at once."""

    def __init__(self):
        self._pending = None  # (host copy of the last vote, CUDA event after its copy or None).

    def poll(self, flag):
        if get_world_size() == 1:
            return bool(flag)
        outcome = False
        if self._pending is not None:
            host, ready = self._pending
            if ready is not None:
                ready.synchronize()
            outcome = bool(host.item())
        value = torch.tensor(float(bool(flag)), device=device())
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX, async_op=True).wait()  # NCCL: a stream wait, not a host one.
        ready = None
        if value.is_cuda:
            host = value.to('cpu', non_blocking=True)
            ready = torch.cuda.Event()
            ready.record()
        else:
            host = value
        self._pending = (host, ready)
        return outcome

#----------------------------------------------------------------------------
# Keeping the networks of all ranks identical.

def broadcast_module(module):
    """Make every rank hold rank 0's parameters and buffers."""
    if module is None or get_world_size() == 1:
        return
    for tensor in misc.params_and_buffers(module):
        torch.distributed.broadcast(tensor.data, src=0)


def average_gradients(params, divisor=1):
    """Average gradients over ranks (as DistributedDataParallel does), and divide them by
    `divisor` too (the rounds per rank, to average rather than sum a rank's rounds).
    Parameters without a gradient keep none (the optimizer then leaves them alone, as with a
    single process); which ones have one is the same on every rank."""
    params = [p for p in params if p.grad is not None]
    if not params or divisor * get_world_size() == 1:  # Nothing to sum or divide.
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    if get_world_size() > 1:
        torch.distributed.all_reduce(flat)
    flat /= divisor * get_world_size()
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad = g.view_as(p)


def check_consistency(module, ignore_regex=None):
    """Raise AssertionError unless every parameter and buffer equals rank 0's copy. Tensors
    whose name ('<ClassName>.<param name>') fully matches `ignore_regex` are skipped."""
    if get_world_size() == 1:
        return
    for name, tensor in misc.named_params_and_buffers(module):
        full_name = type(module).__name__ + '.' + name
        if ignore_regex is not None and re.fullmatch(ignore_regex, full_name):
            continue
        tensor = tensor.detach()
        if tensor.is_floating_point():
            tensor = torch.nan_to_num(tensor)  # NaN != NaN would report a false mismatch.
        other = tensor.clone()
        torch.distributed.broadcast(tensor=other, src=0)
        if not torch.equal(tensor, other):
            raise AssertionError(f'{full_name} differs between rank {get_rank()} and rank 0')

#----------------------------------------------------------------------------
# Launching the ranks of one machine.

class LaunchError(RuntimeError):
    """A spawned rank failed; `exit_code` is what the launching process should exit with."""
    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


def free_port():
    """A TCP port that is free on this machine now (for MASTER_PORT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('localhost', 0))
        return s.getsockname()[1]


def launch(fn, args, num_procs):
    """Run `fn(*args)` on every rank, each inside its process group.

    Under torchrun (WORLD_SIZE set) or with one process, this process is the rank. Otherwise
    `num_procs` ranks are spawned on this machine and this process waits for them. Ctrl-C
    reaches the ranks from the terminal and SIGTERM is passed on to them, so that each can
    finish cleanly (e.g. write a final snapshot); a failed rank raises LaunchError."""
    if 'WORLD_SIZE' in os.environ or num_procs == 1:
        _run_rank(fn, args)
        return
    env = dict(WORLD_SIZE=str(num_procs), MASTER_ADDR='localhost', MASTER_PORT=str(free_port()))
    threads = max(torch.get_num_threads() // num_procs, 1)
    context = torch.multiprocessing.start_processes(_spawned_rank, args=(fn, args, env, threads), nprocs=num_procs,
        join=False, start_method='spawn')
    def forward(signum, _frame):
        for process in context.processes:
            if process.is_alive():
                os.kill(process.pid, signum)
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN), signal.SIGTERM: signal.signal(signal.SIGTERM, forward)}
    try:
        while not context.join():
            pass
    except torch.multiprocessing.ProcessRaisedException as err:
        raise LaunchError(f'A process failed:\n{err}') from None
    except torch.multiprocessing.ProcessExitedException as err:
        raise LaunchError(f'A process exited with code {err.exit_code}', err.exit_code if err.exit_code and err.exit_code > 0 else 1) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _spawned_rank(rank, fn, args, env, threads):
    os.environ.update(env, RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(threads)  # The ranks share this machine's cores.
    _run_rank(fn, args)


def _run_rank(fn, args):
    init()
    try:
        fn(*args)
    finally:
        shutdown()

#----------------------------------------------------------------------------
