"""Process-group setup from torchrun's environment variables, with single-process defaults.

`torchrun --nproc_per_node=N train.py ...` sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR
and MASTER_PORT; a plain `python train.py ...` sets none of them and runs as the only
process without any process group. The backend is nccl when CUDA is available, else gloo,
so the same code runs on a laptop CPU and on a GPU node."""

import os

import torch

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


def barrier():
    """Wait until every rank gets here (no-op for a single process)."""
    if get_world_size() > 1:
        torch.distributed.barrier()


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


def all_reduce_mean(tensor):
    """The element-wise mean of `tensor` over all ranks, as a new tensor on tensor's device
    (the tensor itself for a single process)."""
    if get_world_size() == 1:
        return tensor
    reduced = _comm_tensor(tensor.detach().clone())
    if not reduced.is_floating_point():
        reduced = reduced.to(torch.float64)  # Integer means would be truncated.
    torch.distributed.all_reduce(reduced, op=torch.distributed.ReduceOp.SUM)
    return (reduced / get_world_size()).to(tensor.device)


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

#----------------------------------------------------------------------------
