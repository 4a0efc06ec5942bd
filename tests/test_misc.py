"""torch_utils.misc, training_stats and distributed (single process, and two gloo processes)."""

import itertools
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from torch_utils import distributed, misc, training_stats

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------
# InfiniteSampler.

def _global_stream(dataset_size, num_replicas, items_per_rank, **kwargs):
    """Interleave the ranks' streams back into the global stream they were cut from."""
    streams = [list(itertools.islice(misc.InfiniteSampler(range(dataset_size), rank=rank, num_replicas=num_replicas, **kwargs), items_per_rank))
        for rank in range(num_replicas)]
    return [streams[pos % num_replicas][pos // num_replicas] for pos in range(num_replicas * items_per_rank)]


@pytest.mark.parametrize('dataset_size, num_replicas', [(10, 1), (10, 3), (7, 2), (5, 8)])
def test_infinite_sampler_shards_are_disjoint_passes(dataset_size, num_replicas):
    num_passes = 6
    items_per_rank = dataset_size * num_passes // num_replicas + 1
    stream = _global_stream(dataset_size, num_replicas, items_per_rank, seed=3, window_size=0.5)
    passes = [stream[p * dataset_size:(p + 1) * dataset_size] for p in range(len(stream) // dataset_size)]
    assert len(passes) >= num_passes
    for order in passes:  # Each pass visits every index once, so the ranks' shards are disjoint.
        assert sorted(order) == list(range(dataset_size))
    if dataset_size >= 7:
        assert len({tuple(order) for order in passes}) > 1  # Later passes are reshuffled.


def test_infinite_sampler_is_deterministic_and_seeded():
    def take(**kwargs):
        return list(itertools.islice(misc.InfiniteSampler(range(50), **kwargs), 120))
    assert take(seed=1, rank=1, num_replicas=2) == take(seed=1, rank=1, num_replicas=2)
    assert take(seed=1) != take(seed=2)
    assert take(shuffle=False, rank=1, num_replicas=4)[:13] == list(range(1, 50, 4))
    frozen = take(seed=5, window_size=0)  # No reshuffling: every pass repeats the first order.
    assert frozen[:50] == frozen[50:100] and sorted(frozen[:50]) == list(range(50))
    full = take(seed=5, window_size=1)
    assert sorted(full[50:100]) == list(range(50)) and full[:50] != full[50:100]


def test_infinite_sampler_with_dataloader():
    dataset = torch.utils.data.TensorDataset(torch.arange(20) * 10)
    sampler = misc.InfiniteSampler(dataset, rank=1, num_replicas=2, seed=7)
    loader = iter(torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=4))
    values = torch.cat([next(loader)[0] for _ in range(8)])  # 32 items: beyond one pass.
    expected = list(itertools.islice(iter(sampler), 32))
    assert values.tolist() == [idx * 10 for idx in expected]


@pytest.mark.parametrize('start', [0, 3, 8, 21, 50, 63])
def test_infinite_sampler_start_continues_the_stream(start):
    """A sampler started at global position `start` yields what the full stream holds there:
    position p (p >= start) on rank p % num_replicas, in order (resume mid-stream)."""
    dataset_size, num_replicas = 10, 3
    whole = [list(itertools.islice(misc.InfiniteSampler(range(dataset_size), rank=r, num_replicas=num_replicas, seed=4), 40))
        for r in range(num_replicas)]
    stream = [whole[p % num_replicas][p // num_replicas] for p in range(100)]
    for rank in range(num_replicas):
        resumed = misc.InfiniteSampler(range(dataset_size), rank=rank, num_replicas=num_replicas, seed=4, start=start)
        expected = [stream[p] for p in range(start, 100) if p % num_replicas == rank][:10]
        assert list(itertools.islice(resumed, 10)) == expected


def test_infinite_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match='empty'):
        misc.InfiniteSampler([])
    with pytest.raises(ValueError, match='rank'):
        misc.InfiniteSampler(range(4), rank=2, num_replicas=2)
    with pytest.raises(ValueError, match='start'):
        misc.InfiniteSampler(range(4), start=-1)

#----------------------------------------------------------------------------
# Shapes, constants, parameters.

def test_assert_shape():
    x = torch.zeros(2, 3, 4)
    misc.assert_shape(x, [2, None, 4])
    with pytest.raises(AssertionError, match='dimensions'):
        misc.assert_shape(x, [2, 3])
    with pytest.raises(AssertionError, match='dimension 2: got 4, expected 5'):
        misc.assert_shape(x, [None, 3, 5])


def test_constant_cache():
    a = misc.constant([1, 2, 3], dtype=torch.float32)
    assert a is misc.constant([1, 2, 3], dtype=torch.float32)  # Cached.
    assert a.tolist() == [1.0, 2.0, 3.0] and a.dtype == torch.float32
    b = misc.constant([1, 2, 3], dtype=torch.int64)
    assert b is not a and b.dtype == torch.int64
    c = misc.constant(0.5, shape=[2, 3, 4, 5], memory_format=torch.channels_last)
    assert c.shape == (2, 3, 4, 5) and bool((c == 0.5).all())
    assert c.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        d = misc.constant([9.0, 8.0])
    assert d is not misc.constant([9.0, 8.0])  # Inference tensors are not cached.


def test_params_and_buffers():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    names = [name for name, _ in misc.named_params_and_buffers(net)]
    assert names == ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked']
    assert all(a is b for a, (_, b) in zip(misc.params_and_buffers(net), misc.named_params_and_buffers(net)))
    with pytest.raises(TypeError, match='Expected a torch.nn.Module'):
        misc.params_and_buffers(torch.zeros(1))


def test_print_module_summary_and_helpers(capsys):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(8, 3)), torch.nn.BatchNorm1d(3)).eval()
    x = torch.randn(5, 4)
    outputs = misc.print_module_summary(net, [x])
    assert torch.equal(outputs, net(x))
    table = capsys.readouterr().out
    total_params = sum(p.numel() for p in net.parameters())
    total_buffers = sum(b.numel() for b in net.buffers())
    assert table.splitlines()[-2].split() == ['Total', str(total_params), str(total_buffers), '-', '-']
    assert '[5, 8]' in table and '1.1' in table
    assert '\n1  ' not in table  # The inner Sequential only passes on 1.1's output: skipped.

    @misc.profiled_function
    def add_one(t):
        return t + 1
    assert add_one.__name__ == 'add_one' and add_one(torch.ones(1)).item() == 2
    with misc.suppress_tracer_warnings():
        pass

#----------------------------------------------------------------------------
# training_stats in one process.

def test_collector_single_process():
    collector = training_stats.Collector(regex='TestCollector/.*')
    values = np.array([1.0, 2.0, 4.0, 8.0])
    assert training_stats.report('TestCollector/a', torch.tensor(values[:3])) is not None
    training_stats.report('TestCollector/a', values[3])
    training_stats.report0('TestCollector/b', [3.0, 5.0])
    training_stats.report('TestCollector/empty', [])
    training_stats.report('OtherPrefix/c', 1.0)
    collector.update()
    assert collector.names() == ['TestCollector/a', 'TestCollector/b', 'TestCollector/empty']
    assert collector.num('TestCollector/a') == 4
    assert collector.mean('TestCollector/a') == pytest.approx(values.mean())
    assert collector.std('TestCollector/a') == pytest.approx(values.std())
    assert collector['TestCollector/b'] == pytest.approx(4.0)
    assert np.isnan(collector.mean('TestCollector/empty')) and collector.num('TestCollector/empty') == 0
    stats = collector.as_dict()
    assert set(stats) == {'TestCollector/a', 'TestCollector/b'}
    assert stats['TestCollector/b'].num == 2 and stats['TestCollector/b'].std == pytest.approx(1.0)

    # Next interval: only new values; with keep_previous, 'b' keeps its figures.
    training_stats.report('TestCollector/a', [10.0, 20.0])
    forgetful = training_stats.Collector(regex='TestCollector/.*', keep_previous=False)
    collector.update()
    assert collector.num('TestCollector/a') == 2 and collector.mean('TestCollector/a') == pytest.approx(15.0)
    assert collector.num('TestCollector/b') == 2
    forgetful.update()  # Created after the last sync: sees this interval's values of 'a' only.
    assert forgetful.num('TestCollector/a') == 2 and forgetful.num('TestCollector/b') == 0


def test_report_under_inference_mode():
    collector = training_stats.Collector(regex='TestInference/.*')
    with torch.inference_mode():
        training_stats.report('TestInference/x', torch.ones(3))
    training_stats.report('TestInference/x', torch.zeros(1))  # Updates the counter outside inference mode.
    with torch.inference_mode():
        collector.update()
    assert collector.num('TestInference/x') == 4 and collector.mean('TestInference/x') == pytest.approx(0.75)

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_paths():
    cuda = torch.device('cuda')
    a = misc.constant([1.0, 2.0], device=cuda)
    assert a.device.type == 'cuda' and a is misc.constant([1.0, 2.0], device=cuda)
    collector = training_stats.Collector(regex='TestCuda/.*')
    training_stats.report('TestCuda/x', torch.tensor([1.0, 3.0], device=cuda))  # Counted on the GPU...
    training_stats.report('TestCuda/x', 5.0)                                     # ...and on the CPU.
    collector.update()
    assert collector.num('TestCuda/x') == 3 and collector.mean('TestCuda/x') == pytest.approx(3.0)
    assert distributed.device() == torch.device('cuda', distributed.get_local_rank())

#----------------------------------------------------------------------------
# distributed in one process, then two processes over gloo.

def test_distributed_single_process_defaults(monkeypatch):
    for name in ['RANK', 'LOCAL_RANK', 'WORLD_SIZE']:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('MASTER_ADDR', 'localhost')  # Restored afterwards; init() only fills in defaults.
    monkeypatch.setenv('MASTER_PORT', '29500')
    distributed.init()
    assert not distributed.is_initialized()  # No process group for a single process.
    assert (distributed.get_rank(), distributed.get_world_size(), distributed.get_local_rank()) == (0, 1, 0)
    assert distributed.device().type == ('cuda' if torch.cuda.is_available() else 'cpu')
    x = torch.arange(6.0).reshape(3, 2)
    assert torch.equal(distributed.all_gather_cat(x), x)
    assert torch.equal(distributed.all_reduce_sum(x), x)
    assert distributed.any_rank(True) is True and distributed.any_rank(0) is False
    assert distributed.broadcast_object('runs/00003-x') == 'runs/00003-x'
    vote = distributed.AnyRankVote()
    assert [vote.poll(flag) for flag in [False, True, False]] == [False, True, False]  # One process: no lag.
    net = torch.nn.Linear(2, 1)
    distributed.check_consistency(net)  # Single process: nothing to compare.
    distributed.broadcast_module(net)
    net(x).sum().backward()
    expected = net.weight.grad / 3
    distributed.average_gradients(net.parameters(), divisor=3)  # Three rounds of one batch: the mean.
    assert torch.allclose(net.weight.grad, expected)
    distributed.shutdown()

    monkeypatch.setenv('WORLD_SIZE', '2')
    monkeypatch.setenv('RANK', '5')
    with pytest.raises(ValueError, match='RANK=5'):
        distributed.init()
    monkeypatch.setenv('RANK', 'zero')
    with pytest.raises(ValueError, match='must be an integer'):
        distributed.init()


WORKER = textwrap.dedent('''
    import json, torch
    from torch_utils import distributed, misc, training_stats
    distributed.init()
    rank = distributed.get_rank()
    collector = training_stats.Collector(regex='T/.*')
    training_stats.report('T/x', torch.tensor([10.0 * rank, 10.0 * rank + 1]))
    training_stats.report0('T/only0', 5.0 + rank)
    collector.update()
    total = distributed.all_reduce_sum(torch.tensor([float(rank), 2.0 * rank + 1]))
    gathered = distributed.all_gather_cat(torch.full([rank + 1, 2], float(rank)))
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    distributed.check_consistency(net)
    with torch.no_grad():
        net.bias[0] += rank
    try:
        distributed.check_consistency(net)
        mismatch = None
    except AssertionError as err:
        mismatch = str(err)
    distributed.check_consistency(net, ignore_regex=r'Linear\\.bias')
    distributed.broadcast_module(net)
    net.weight.grad = torch.full_like(net.weight, float(rank + 1))
    distributed.average_gradients([net.weight, net.bias], divisor=2)
    vote = distributed.AnyRankVote()
    votes = [vote.poll(rank == 1 and step == 1) for step in range(4)]
    print(json.dumps(dict(rank=rank, world_size=distributed.get_world_size(), stats=collector.as_dict(),
        total=total.tolist(), gathered=gathered.tolist(), mismatch=mismatch, bias=net.bias.tolist(),
        grad=net.weight.grad.flatten().tolist(), bias_grad=net.bias.grad is None,
        any1=distributed.any_rank(rank == 1), any_none=distributed.any_rank(False),
        summed=distributed.all_reduce_sum(torch.tensor([rank + 1.0])).tolist(), votes=votes)))
    distributed.shutdown()
''')


@pytest.mark.slow  # Two fresh processes that import torch and form a process group.
def test_two_process_gloo_reduction():
    port = distributed.free_port()
    procs = []
    for rank in range(2):
        env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
        env.update(PYTHONPATH=REPO_ROOT, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2',
            MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), CUDA_VISIBLE_DEVICES='')
        procs.append(subprocess.Popen([sys.executable, '-c', WORKER], cwd=REPO_ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr
        results.append(json.loads(stdout.strip().splitlines()[-1]))

    x = np.array([0.0, 1.0, 10.0, 11.0])
    for rank, res in enumerate(results):
        assert res['rank'] == rank and res['world_size'] == 2
        assert res['stats']['T/x']['num'] == 4
        assert res['stats']['T/x']['mean'] == pytest.approx(x.mean())
        assert res['stats']['T/x']['std'] == pytest.approx(x.std())
        assert res['stats']['T/only0'] == {'num': 1, 'mean': 5.0, 'std': 0.0}
        assert res['total'] == [1.0, 4.0]
        assert res['gathered'] == [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]
    assert results[0]['mismatch'] is None  # Rank 0 is the reference.
    assert 'Linear.bias' in results[1]['mismatch']
    assert results[0]['bias'] == results[1]['bias']  # broadcast_module: rank 0's copy everywhere.
    for res in results:
        assert res['grad'] == [0.75] * 6  # (1 + 2) / (2 ranks * 2 rounds).
        assert res['bias_grad']  # No gradient stays none.
        assert res['votes'] == [False, False, True, False]  # Rank 1's step-1 request, seen by all at step 2.
        assert res['any1'] is True and res['any_none'] is False
        assert res['summed'] == [3.0]

#----------------------------------------------------------------------------
