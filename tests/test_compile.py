"""torch.compile path of training (training/compilation.py): compiled networks compute what the
eager ones do (the published reference cases on both paths), the compile policy falls back
cleanly, the fused optimizer options (training/optimizer_options.py) and the EMA update
(training/ema.py) do the published maths, and a compiled training run
resumes exactly."""

import copy
import json
import os

import pytest
import torch

import dnnlib
from training import compilation, ema, optimizer_options
from test_networks_reference import D_CASES, G_CASES, _assert_close, _build

#----------------------------------------------------------------------------
# Compiled networks against the published reference outputs and the eager path.

pytestmark = pytest.mark.usefixtures('one_thread') # conftest.py

@pytest.fixture(autouse=True, scope='module')
def compile_cache(tmp_path_factory):
    """A cache of our own: results must not depend on what an earlier run left behind."""
    previous = os.environ.get('TORCHINDUCTOR_CACHE_DIR')
    flags = torch._inductor.config.fx_graph_cache, torch._functorch.config.enable_autograd_cache # pylint: disable=protected-access
    compilation.use_compile_cache(str(tmp_path_factory.mktemp('inductor')))
    torch._dynamo.reset() # pylint: disable=protected-access
    yield
    torch._inductor.config.fx_graph_cache, torch._functorch.config.enable_autograd_cache = flags # pylint: disable=protected-access
    if previous is None:
        del os.environ['TORCHINDUCTOR_CACHE_DIR']
    else:
        os.environ['TORCHINDUCTOR_CACHE_DIR'] = previous

needs_backend = pytest.mark.skipif(compilation.backend_problem('cpu') is not None, reason='no C++ compiler for inductor')
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available() or compilation.backend_problem('cuda') is not None,
    reason='needs a CUDA GPU and Triton')
# What training compiles for each device (CUDA: CUDA graphs through reduce-overhead).
DEVICES = ['cpu', pytest.param('cuda', marks=needs_cuda)]
MODES = {'cpu': None, 'cuda': 'reduce-overhead'}

@pytest.fixture
def no_tf32():
    """The reference outputs are float32: TF32 matmuls and convolutions would be 1e-3 off."""
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags

def _build_on(name, device):
    net, io = _build(name)
    return net.to(device), {key: value.to(device) for key, value in io.items()}

# Compiling takes tens of seconds per network on 2 cores: the larger cases run with the slow tests.
def _slow_unless(name, fast):
    return name if name == fast else pytest.param(name, marks=pytest.mark.slow)

@needs_backend
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('name', [_slow_unless(name, 'g_small') for name in G_CASES])
def test_compiled_generator_matches_reference(name, device, no_tf32):
    G, io = _build_on(name, device)
    compiled = compilation.CompiledGenerator(G, mode=MODES[device])
    with torch.no_grad():
        _assert_close(compiled.mapping(io['z'], io['c'], truncation_psi=0.7), io['ws'], f'{name} ws (compiled)')
        _assert_close(compiled.synthesis(io['ws'], noise_mode='const', precision='full'), io['img'], f'{name} img (compiled)')

@needs_backend
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('name', D_CASES)
def test_compiled_discriminator_matches_reference(name, device, no_tf32):
    D, io = _build_on(name, device)
    with torch.no_grad():
        logits = torch.compile(D, dynamic=False, mode=MODES[device])(io['img'], io['c'], precision='full')
        _assert_close(logits, io['logits'], f'{name} logits (compiled)')

@pytest.mark.parametrize('device', DEVICES)
def test_networks_trace_into_one_graph(device):
    """G and D in training mode, gradients included, trace into one graph each (fullgraph=True
    fails at a graph break, which would split the CUDA graphs and leave Python between the
    pieces). On CUDA this also checks that the custom-op plugins stay out of compiled code."""
    G, io = _build_on('g_small', device)
    D, d_io = _build_on('d_resnet_cond', device)
    G.train().requires_grad_(True)
    D.train().requires_grad_(True)
    def trace(fn):
        return torch.compile(fn, fullgraph=True, backend='eager', dynamic=False)
    ws = trace(G.mapping)(io['z'], io['c'], update_emas=True)
    img = trace(G.synthesis)(ws)
    logits = trace(D)(img, d_io['c'])
    logits.sum().backward()
    assert all(p.grad is not None for p in D.parameters()) and G.synthesis.b8_0.enc.q_weight.grad is not None

@needs_cuda
def test_compiled_reduced_precision_matches_eager_on_cuda():
    """Training's default on CUDA: the marked blocks in bfloat16 (G) and float16 (D), compiled
    with CUDA graphs, against the same eager networks (rounding-level agreement)."""
    G, io = _build_on('g_small', 'cuda')
    D, d_io = _build_on(D_CASES[0], 'cuda')
    compiled = compilation.CompiledNetworks(G, D, 'cuda')
    runs = [('img', lambda net: net.synthesis(io['ws'], noise_mode='const'), G, compiled.G),
            ('logits', lambda net: net(d_io['img'], d_io['c']), D, compiled.D)]
    with torch.no_grad():
        for what, run, eager, fast in runs:
            expected = run(eager)
            err = (run(fast) - expected).abs().max().item() / expected.abs().max().item() # Read before the next graph replays.
            assert err < 2e-2, f'{what}: relative max error {err:.3g}'

@needs_backend
@pytest.mark.slow
def test_compiled_generator_gradients_match_eager():
    """What training uses: first-order parameter gradients through the compiled synthesis."""
    G, io = _build('g_small')
    G.train()
    grads = {}
    for path, synthesis in [('eager', G.synthesis), ('compiled', compilation.CompiledGenerator(G, mode=None).synthesis)]:
        G.zero_grad(set_to_none=True)
        img = synthesis(io['ws'], noise_mode='const')
        (img * torch.linspace(-1, 1, img.numel()).reshape(img.shape)).sum().backward()
        grads[path] = {n: p.grad.clone() for n, p in G.synthesis.named_parameters() if p.grad is not None}
    assert grads['compiled'].keys() == grads['eager'].keys() and grads['eager']
    for n, g in grads['eager'].items():
        _assert_close(grads['compiled'][n], g, f'grad {n}')

#----------------------------------------------------------------------------
# Policy and helpers.

def test_resolve_compile_policy(monkeypatch, capsys):
    assert compilation.resolve_compile('off', 'cpu') is False
    assert compilation.resolve_compile('auto', 'cpu') is False # Opt-in on the CPU (minutes of compiling).
    assert compilation.resolve_compile('auto', 'cuda') is False # Eager on CUDA until the compiled path has run on a GPU.
    monkeypatch.setattr(compilation.shutil, 'which', lambda _name: None)
    assert compilation.resolve_compile('on', 'cpu') is False
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and 'no C++ compiler' in out[0] and 'eagerly' in out[0]
    with pytest.raises(ValueError, match='compile='):
        compilation.resolve_compile('yes', 'cpu')

def test_fast_optimizer_kwargs():
    adam = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=0.002, betas=[0, 0.99], eps=1e-8)
    assert optimizer_options.fast_optimizer_kwargs(adam, 'cpu') == dict(adam, foreach=True)
    assert optimizer_options.fast_optimizer_kwargs(adam, 'cuda') == dict(adam, fused=True)
    assert optimizer_options.fast_optimizer_kwargs(dict(adam, foreach=False), 'cuda') == dict(adam, foreach=False) # Explicit choice kept.
    sgd = dict(class_name='torch.optim.SGD', lr=0.1)
    assert optimizer_options.fast_optimizer_kwargs(sgd, 'cpu') == sgd

def test_update_ema_is_the_published_lerp():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    averaged = copy.deepcopy(module)
    for p in module.parameters():
        p.data.normal_()
    module[1].running_mean.normal_()
    expected = [p.lerp(p_ema, 0.9) for p_ema, p in zip(averaged.parameters(), module.parameters())]
    ema.update_ema(averaged, module, 0.9)
    for p_ema, e in zip(averaged.parameters(), expected):
        torch.testing.assert_close(p_ema, e)
    assert torch.equal(averaged[1].running_mean, module[1].running_mean)

@needs_backend
def test_snapshot_of_compiled_modules_loads_safely(tmp_path):
    """torch.compile marks the tensors it saw; a snapshot must not carry the marks, which
    pickle as a call that the safe loader refuses."""
    import legacy
    from training import snapshot
    D, io = _build('d_orig')
    torch._dynamo.reset() # pylint: disable=protected-access # Tracing (which sets the marks) must happen here.
    with torch.no_grad():
        torch.compile(D, dynamic=False)(io['img'], io['c'])
    assert any(t.__dict__ for t in D.buffers()) # The marks this test is about are there.
    data = snapshot.network_snapshot_data(dict(D=D, G_ema=_build('g_small')[0]), {}, {})
    loaded = legacy.load_network_pkl(snapshot.save_snapshot(str(tmp_path), 0, data, None))
    for a, b in zip(loaded['D'].state_dict().values(), D.state_dict().values()):
        assert torch.equal(a, b)

#----------------------------------------------------------------------------
# Training with compile on: an interrupted and resumed run ends where an uninterrupted one does.

@pytest.fixture(scope='module')
def small_zip(tmp_path_factory):
    from fashion_helpers import make_fashion_zip
    return make_fashion_zip(tmp_path_factory, 64)

def _run(data, run_dir, kimg, resume=None):
    from snapshot_io.resume import read_resume_snapshot
    from tools.train_options import setup_training_options
    from training.training_loop import training_loop
    _desc, args = setup_training_options(data=data, cfg='tiny', metrics=[], workers=0, seed=0, batch=4, aug='noaug',
        g_dict=['16', '16', '16'], torch_compile='on')
    args.total_kimg, args.kimg_per_tick = kimg, 0.008
    args.image_snapshot_ticks, args.network_snapshot_ticks = None, 1
    os.makedirs(run_dir)
    torch._dynamo.reset() # pylint: disable=protected-access # Each run compiles its own networks (as a new process would).
    return training_loop(run_dir=run_dir, resume_pkl=resume, resume_snapshot=read_resume_snapshot(resume) if resume else None, **args)

@needs_backend
@pytest.mark.slow
def test_compiled_training_resumes_exactly(small_zip, tmp_path, capsys):
    """D regularisation every 16 steps: the runs cross both the compiled and the eager phases."""
    whole = _run(small_zip, str(tmp_path / 'whole'), 0.072)
    first = _run(small_zip, str(tmp_path / 'first'), 0.036)
    resumed = _run(small_zip, str(tmp_path / 'resumed'), 0.072, resume=first['snapshot_pkl'])
    assert 'Exact resume' in capsys.readouterr().out
    for name in ['G', 'D', 'G_ema']:
        for (key, a), b in zip(whole[name].state_dict().items(), resumed[name].state_dict().values()):
            assert torch.equal(a, b), f'{name}.{key} differs after resume'
    with open(tmp_path / 'whole' / 'stats.jsonl') as f:
        assert json.loads(f.readlines()[-1])['Progress/kimg']['mean'] == pytest.approx(0.072)
