"""Training loop, loss and snapshots: crash-safe writes, path-length regularisation, learning
on real Fashion-MNIST, multi-process equivalence and exact resume after SIGKILL."""

import copy
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import dnnlib
import legacy
from snapshot_io.resume import read_resume_snapshot
from training import run_dirs, snapshot
from fashion_helpers import make_fashion_zip

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------
# Fixtures and helpers.

@pytest.fixture(scope='module')
def fashion_zip(tmp_path_factory):
    return make_fashion_zip(tmp_path_factory, 256)

pytestmark = pytest.mark.usefixtures('one_thread') # conftest.py

def tiny_options(data, **overrides):
    """Training-loop kwargs of the tiny preset, built by train.py's option code."""
    from tools.train_options import setup_training_options
    kwargs = dict(data=data, cfg='tiny', metrics=[], workers=0, seed=0)
    kwargs.update(overrides)
    _desc, args = setup_training_options(**kwargs)
    return args

def run_cli(args, **popen_kwargs):
    return subprocess.Popen([sys.executable, 'train.py', *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=dict(os.environ, OMP_NUM_THREADS='1'), **popen_kwargs)

def only_run_dir(outdir):
    dirs = sorted(os.listdir(outdir))
    return [os.path.join(outdir, d) for d in dirs]

def final_snapshot(run_dir):
    pkls = sorted(f for f in os.listdir(run_dir) if f.startswith('network-snapshot-'))
    with open(os.path.join(run_dir, pkls[-1]), 'rb') as f:
        return legacy.load_network_pkl(f)

def last_stats(run_dir):
    import json
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        return json.loads(f.readlines()[-1])

def max_param_diff(a, b):
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    return max((pa[k] - pb[k]).abs().max().item() for k in pa)

#----------------------------------------------------------------------------
# Crash-safe snapshot writes.

def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    path = tmp_path / 'network-snapshot-000000.pkl'
    snapshot.atomic_write(str(path), lambda f: pickle.dump({'version': 1}, f))
    def crash_midway(f):
        f.write(b'partial bytes that must never be seen')
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        snapshot.atomic_write(str(path), crash_midway)
    with open(path, 'rb') as f:
        assert pickle.load(f) == {'version': 1}
    assert os.listdir(tmp_path) == [path.name] # No temporary file left behind.

def test_atomic_write_survives_process_death(tmp_path):
    """The writer process dies (os._exit) in the middle of a write: the old snapshot stays intact
    and no partial file appears under a snapshot name."""
    path = tmp_path / 'network-snapshot-000004.pkl'
    snapshot.atomic_write(str(path), lambda f: pickle.dump({'version': 1}, f))
    code = ('import os, sys; sys.path.insert(0, sys.argv[2]); from training import snapshot\n'
            'def die(f):\n    f.write(b"x" * 100000); f.flush(); os._exit(3)\n'
            'snapshot.atomic_write(sys.argv[1], die)\n')
    result = subprocess.run([sys.executable, '-c', code, str(path), REPO_ROOT])
    assert result.returncode == 3
    with open(path, 'rb') as f:
        assert pickle.load(f) == {'version': 1}
    assert [n for n in os.listdir(tmp_path) if n.endswith('.pkl')] == [path.name]

#----------------------------------------------------------------------------
# Loss.

def test_path_length_regularization_runs_and_pl_mean_moves(fashion_zip):
    """Second derivatives through G's attention (the penalty differentiates a gradient)."""
    from training.loss import StyleGAN2Loss
    args = tiny_options(fashion_zip)
    args.G_kwargs.synthesis_kwargs.update(G_dict=[32, 16], num_layers=[1, 1]) # 16x16 keeps it quick.
    torch.manual_seed(0)
    G = dnnlib.util.construct_class_by_name(**args.G_kwargs, c_dim=0, img_resolution=16, img_channels=1).train()
    D = dnnlib.util.construct_class_by_name(**args.D_kwargs, c_dim=0, img_resolution=16, img_channels=1).train()
    loss = StyleGAN2Loss(device=torch.device('cpu'), G=G, D=D, pl_weight=2, style_mixing_prob=0.9)
    z, c = torch.randn([4, G.z_dim]), torch.zeros([4, 0])
    means = []
    G.requires_grad_(True)
    for _ in range(3):
        G.zero_grad(set_to_none=True)
        loss.accumulate_gradients('Greg', real_img=None, real_c=None, gen_z=z, gen_c=c, gain=4)
        means.append(float(loss.pl_mean))
        grads = [p.grad for p in G.synthesis.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0 # The penalty reaches the synthesis weights.
    assert means[0] > 0 and means[1] > means[0] and means[2] > means[1] # pl_mean EMA moves away from 0.

def test_a_training_step_reads_nothing_back_from_the_device(fashion_zip, monkeypatch):
    """What a step does (all four phases with the augment pipe's colour transforms, the
    replacement of non-finite gradients, the optimizer, the EMA, the ADA controller) never reads a tensor on the host: on a GPU each
    read would make the host wait for the work it has queued. Checked on the CPU by making
    every reading method raise, and the augment pipe told that p lives on a GPU (on the CPU it
    reads p to skip its work at p = 0). The geometric transforms read their padding, as published."""
    from training.augment import AdaController
    from training.loss import StyleGAN2Loss
    from training.ema import update_ema
    from training.optimizer_options import fast_optimizer_kwargs
    from training.training_loop import _replace_nonfinite_gradients
    args = tiny_options(fashion_zip)
    args.G_kwargs.synthesis_kwargs.update(G_dict=[16, 16], num_layers=[1, 1])
    torch.manual_seed(0)
    G = dnnlib.util.construct_class_by_name(**args.G_kwargs, c_dim=0, img_resolution=16, img_channels=1).train()
    D = dnnlib.util.construct_class_by_name(**args.D_kwargs, c_dim=0, img_resolution=16, img_channels=1).train()
    G_ema = copy.deepcopy(G).eval()
    pipe = dnnlib.util.construct_class_by_name(class_name='training.augment.AugmentPipe', brightness=1, contrast=1, saturation=1)
    pipe.p.fill_(0.5)
    ada = AdaController(pipe, batch_size=4, target=0.6, interval=1, ada_kimg=1)
    loss = StyleGAN2Loss(device=torch.device('cpu'), G=G, D=D, augment_pipe=pipe)
    adam = fast_optimizer_kwargs(dnnlib.EasyDict(class_name='torch.optim.Adam', lr=1e-3), 'cuda') # Fused, as on a GPU.
    opts = {net: dnnlib.util.construct_class_by_name(net.parameters(), **adam) for net in (G, D)}
    reals, z, c = torch.rand([4, 1, 16, 16]) * 2 - 1, torch.randn([4, G.z_dim]), torch.zeros([4, 0])

    def host_read(*_args, **_kwargs):
        raise AssertionError('a tensor was read on the host inside the step')
    with monkeypatch.context() as patch:
        for name in ['item', 'tolist', 'numpy', '__bool__', '__float__', '__int__', '__index__']:
            patch.setattr(torch.Tensor, name, host_read)
        patch.setattr('training.augment._free_to_read', lambda tensor: False)
        replaced = torch.zeros([], dtype=torch.int64)
        for phase, net in [('Gmain', G), ('Greg', G), ('Dmain', D), ('Dreg', D)]:
            net.requires_grad_(True)
            loss.accumulate_gradients(phase, real_img=reals, real_c=c, gen_z=z, gen_c=c, gain=1, cur_nimg=0)
            net.requires_grad_(False)
            replaced += _replace_nonfinite_gradients(net.parameters())
            opts[net].step()
        update_ema(G_ema, G, 0.99)
        ada.accumulate_sums(*loss.drain_real_signs())
        ada.step()
    assert ada.rt is not None and ada.p != 0.5 # The step happened; reading afterwards is fine.
    assert int(replaced) == 0

#----------------------------------------------------------------------------
# The loop.

@pytest.mark.slow
def test_nan_weights_stop_training_without_writing_a_bad_snapshot(fashion_zip, tmp_path):
    from training.training_loop import TrainingDivergedError, training_loop
    args = tiny_options(fashion_zip, batch=4, aug='noaug')
    args.G_opt_kwargs.lr = float('inf') # The first Adam step sends G's weights to +-inf (and 0 * inf to NaN).
    args.total_kimg, args.kimg_per_tick = 0.024, 0.008
    args.image_snapshot_ticks, args.network_snapshot_ticks = None, 1
    with pytest.raises(TrainingDivergedError, match='NaN/inf'):
        training_loop(run_dir=str(tmp_path), **args)
    assert not [n for n in os.listdir(tmp_path) if n.startswith('network-snapshot-')]

@pytest.fixture(scope='module')
def fashion16_zip(fashion_zip, tmp_path_factory):
    """The same images at 16x16: a CPU learns enough there in a minute."""
    import dataset_tool
    dest = str(tmp_path_factory.mktemp('data16') / 'fashion16.zip')
    result = CliRunner().invoke(dataset_tool.main, ['--source', fashion_zip, '--dest', dest, '--width', '16', '--height', '16'])
    assert result.exit_code == 0, result.output
    return dest

@pytest.mark.slow
def test_learning_on_fashion_mnist(fashion16_zip, tmp_path):
    """A short CPU run of the tiny preset (16x16 variant): D learns to tell reals from fakes, and
    the pixel statistics of G_ema's images (mean image and histogram of pixel values) move
    toward the data's. Thresholds from measured runs (seed 0, 16x16, batch 16): distance ratio
    0.53-0.60 after 120-200 steps, separation 0.28-0.51 from 0.03."""
    from training.training_loop import training_loop
    args = tiny_options(fashion16_zip, batch=16, aug='noaug', g_dict=['32', '16'], num_layers=['1', '1'])
    args.D_kwargs.update(channel_base=512, channel_max=32)
    args.total_kimg, args.kimg_per_tick = 160 * 16 / 1000, 1000
    args.image_snapshot_ticks = args.network_snapshot_ticks = None
    training_set = dnnlib.util.construct_class_by_name(**args.training_set_kwargs)
    reals = torch.tensor(np.stack([training_set[i][0] for i in range(256)])).float() / 127.5 - 1
    c = torch.zeros([256, 0])
    z = torch.randn([256, args.G_kwargs.z_dim], generator=torch.Generator().manual_seed(123))

    @torch.no_grad()
    def pixel_distance(G):
        fakes = G(z, c, noise_mode='const')
        hist = lambda x: torch.histc(x.clamp(-1, 1), bins=16, min=-1, max=1) / x.numel()
        return (fakes.mean(0) - reals.mean(0)).square().mean().sqrt().item() + (hist(fakes) - hist(reals)).abs().sum().item()

    @torch.no_grad()
    def separation(G, D):
        return (D(reals, c).mean() - D(G(z, c, noise_mode='const'), c).mean()).item()

    torch.manual_seed(args.random_seed) # The loop builds its networks from this seed: these are its initial ones.
    G0 = dnnlib.util.construct_class_by_name(**args.G_kwargs, c_dim=0, img_resolution=16, img_channels=1).train()
    D0 = dnnlib.util.construct_class_by_name(**args.D_kwargs, c_dim=0, img_resolution=16, img_channels=1).train()
    distance0, separation0 = pixel_distance(G0), separation(G0, D0)
    result = training_loop(run_dir=str(tmp_path), **args)
    assert abs(separation0) < 0.1
    assert separation(result['G'], result['D']) > 0.15
    assert pixel_distance(result['G_ema']) < 0.75 * distance0

#----------------------------------------------------------------------------
# Processes and resume, end to end through train.py.

def _cli_args(data, outdir, kimg, extra=()):
    return [f'--outdir={outdir}', f'--data={data}', '--cfg=tiny', '--metrics=none', '--workers=0', '--seed=0',
        f'--kimg={kimg}', '--tick=0.016', '--snap=1', *extra]

@pytest.mark.slow
def test_two_processes_match_one_process(fashion_zip, tmp_path):
    """--gpus=2 on the CPU (gloo): the loop checks at every snapshot that both ranks hold
    identical weights; with --accumulation=mean the result equals one process running the same
    global batch in two rounds (the published sum of rounds would double its gradients)."""
    # Global round g holds the same images and seeds in both layouts: only summation order
    # differs. Three steps (the first with R1): by the fifth, D's float32 rounding has grown to
    # 2e-3 in some weights, in one process with 2 threads against 1 just as between the layouts.
    extra = ['--batch=8', '--aug=noaug', '--accumulation=mean']
    two = run_cli(_cli_args(fashion_zip, tmp_path / 'two', 0.024, [*extra, '--gpus=2']))
    out_two = two.communicate(timeout=600)[0]
    assert two.returncode == 0, out_two
    one = run_cli(_cli_args(fashion_zip, tmp_path / 'one', 0.024, [*extra, '--gpus=1', '--batch-gpu=4']))
    out_one = one.communicate(timeout=600)[0]
    assert one.returncode == 0, out_one
    a, b = final_snapshot(only_run_dir(tmp_path / 'two')[0]), final_snapshot(only_run_dir(tmp_path / 'one')[0])
    assert last_stats(only_run_dir(tmp_path / 'two')[0])['Progress/kimg']['mean'] == pytest.approx(0.024)
    for name in ['G', 'D', 'G_ema']:
        assert max_param_diff(a[name], b[name]) < 1e-4, name

@pytest.mark.slow
def test_resume_after_sigkill_continues_exactly(fashion_zip, tmp_path):
    """Run A trains 0.096 kimg in one go. Run B is SIGKILLed after its tick-1 snapshot, then
    resumed from it: it ends at the same kimg with the same p and the same weights as A."""
    extra = ['--batch=8', '--aug=ada', '--target=0'] # Target 0: p rises whenever D calls most reals real.
    a = run_cli(_cli_args(fashion_zip, tmp_path / 'a', 0.096, extra))
    out_a = a.communicate(timeout=600)[0]
    assert a.returncode == 0, out_a
    run_a = only_run_dir(tmp_path / 'a')[0]

    b = run_cli(_cli_args(fashion_zip, tmp_path / 'b', 0.096, extra))
    deadline = time.time() + 600
    stats_b = None
    while time.time() < deadline and b.poll() is None:
        runs = only_run_dir(tmp_path / 'b') if os.path.isdir(tmp_path / 'b') else []
        stats_b = os.path.join(runs[0], 'stats.jsonl') if runs else None
        if stats_b and os.path.isfile(stats_b) and len(open(stats_b).readlines()) >= 2: # Ticks 0 and 1 done.
            break
        time.sleep(0.05)
    assert b.poll() is None, 'run B finished before it could be killed'
    b.send_signal(signal.SIGKILL)
    b.wait()
    run_b = os.path.dirname(stats_b)
    pkl = [n for n in os.listdir(run_b) if n.startswith('network-snapshot-')][-1]

    b2 = run_cli(_cli_args(fashion_zip, tmp_path / 'b', 0.096, [*extra, f'--resume={os.path.join(run_b, pkl)}']))
    out_b2 = b2.communicate(timeout=600)[0]
    assert b2.returncode == 0, out_b2
    assert 'Exact resume' in out_b2
    run_b2 = only_run_dir(tmp_path / 'b')[1]

    stats_a, stats_b2 = last_stats(run_a), last_stats(run_b2)
    assert stats_b2['Progress/kimg']['mean'] == stats_a['Progress/kimg']['mean'] == pytest.approx(0.096)
    assert stats_b2['Progress/augment']['mean'] == stats_a['Progress/augment']['mean'] > 0 # p moved (6.4e-5 measured).
    snap_a, snap_b2 = final_snapshot(run_a), final_snapshot(run_b2)
    for name in ['G', 'D', 'G_ema']:
        assert max_param_diff(snap_a[name], snap_b2[name]) < 1e-5, name
    assert float(snap_a['augment_pipe'].p) == float(snap_b2['augment_pipe'].p)

#----------------------------------------------------------------------------
# Training state and checked resume.

class _PlMean:
    """Stands in for the loss: one tensor of state."""
    def __init__(self, value=0.0):
        self.pl_mean = torch.tensor(value)

    def state_dict(self):
        return dict(pl_mean=self.pl_mean.clone())

    def load_state_dict(self, state):
        self.pl_mean = state['pl_mean'].clone()

def _checkpoint(run_dir, num_layers, seed):
    torch.manual_seed(seed)
    nets = {name: torch.nn.Sequential(*[torch.nn.Linear(3, 3) for _ in range(num_layers)]) for name in ['G', 'D', 'G_ema']}
    optimizers = {name: torch.optim.Adam(nets[name].parameters(), lr=0.1) for name in ['G', 'D']}
    state = snapshot.TrainingState(optimizers=optimizers, loss=_PlMean(seed))
    return snapshot.Checkpoint(str(run_dir), state, dict(nets, augment_pipe=None), dict(path='data.zip'), dict(total_kimg=1))

def test_checkpoint_saves_and_restores_the_whole_state(tmp_path):
    saved = _checkpoint(tmp_path, num_layers=2, seed=1)
    saved.modules['G'](torch.ones(1, 3)).sum().backward()
    saved.state.optimizers['G'].step()  # Adam now has moments to save.
    saved.state.cur_nimg, saved.state.cur_tick, saved.state.tick_start_nimg, saved.state.batch_idx = 4000, 3, 3000, 250
    pkl = saved.save()
    assert pkl == saved.path() == str(tmp_path / 'network-snapshot-000004.pkl')

    restored = _checkpoint(tmp_path, num_layers=2, seed=2)
    with open(pkl, 'rb') as f:  # Plain modules: pickle stands in for the safe loader of read_resume_snapshot.
        resume = snapshot.ResumeSnapshot(pkl, pickle.load(f), snapshot.load_training_state(pkl))
    exact, skipped = restored.restore(resume)
    assert exact and skipped == []
    assert (restored.state.cur_nimg, restored.state.cur_tick, restored.state.tick_start_nimg, restored.state.batch_idx) == (4000, 3, 3000, 250)
    assert float(restored.state.loss.pl_mean) == 1.0
    moments = lambda ckpt: [s['exp_avg'] for s in ckpt.state.optimizers['G'].state_dict()['state'].values()]
    assert all(torch.equal(a, b) for a, b in zip(moments(saved), moments(restored))) and len(moments(restored)) == 4
    for name in ['G', 'D', 'G_ema']:
        assert max_param_diff(saved.modules[name], restored.modules[name]) == 0
    # Training goes on in tensors of its own: the snapshot read once may be shared by several ranks.
    restored.modules['G'](torch.ones(1, 3)).sum().backward()
    restored.state.optimizers['G'].step()
    assert all(torch.equal(a, b) for a, b in zip(moments(saved), [s['exp_avg'] for s in resume.state['optimizers']['G']['state'].values()]))
    # The file keeps its published layout: plain keys, readable with weights_only.
    assert set(snapshot.load_training_state(pkl)) == {'optimizers', 'loss', 'ada', 'cur_nimg', 'cur_tick', 'tick_start_nimg', 'batch_idx'}

def test_resume_refuses_a_snapshot_that_does_not_fit(tmp_path):
    """Two layers into three: nothing is loaded silently; a partial load copies what fits and says what did not."""
    small = _checkpoint(tmp_path, num_layers=2, seed=1)
    pkl = small.save()
    with open(pkl, 'rb') as f:
        resume = snapshot.ResumeSnapshot(pkl, pickle.load(f), snapshot.load_training_state(pkl))
    big = _checkpoint(tmp_path, num_layers=3, seed=2)
    before = copy.deepcopy(big.modules['G'])
    with pytest.raises(snapshot.ResumeError, match=r'6 tensors differ, e\.g\. G: 2\.weight is not in the snapshot.*--resume-partial'):
        big.restore(resume)
    assert max_param_diff(big.modules['G'], before) == 0  # Nothing was half-loaded.

    exact, skipped = big.restore(resume, partial=True)
    assert not exact  # Optimizer states of other networks do not fit: fresh ones.
    assert skipped == [f'{name}: 2.{p} is not in the snapshot' for name in ['G', 'D', 'G_ema'] for p in ['weight', 'bias']]
    assert torch.equal(big.modules['G'][1].weight, small.modules['G'][1].weight)
    assert torch.equal(big.modules['G'][2].weight, before[2].weight)

    wide = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 3))
    problems = snapshot.load_matching_tensors(small.modules['G'], wide)
    assert problems == ['0.weight has shape [3, 3] in the snapshot but [4, 3] here', '0.bias has shape [3] in the snapshot but [4] here',
        '1.weight has shape [3, 3] in the snapshot but [3, 4] here']
    assert torch.equal(wide[1].bias, small.modules['G'][1].bias)

def test_misspelt_training_option_is_an_error(fashion_zip, tmp_path):
    from training.training_loop import training_loop
    args = tiny_options(fashion_zip)
    with pytest.raises(TypeError, match="unexpected keyword argument 'totl_kimg'"):
        training_loop(run_dir=str(tmp_path), totl_kimg=1, **args)
    with pytest.raises(ValueError, match='resume_pkl and resume_snapshot go together'):  # The loop reads no snapshot itself.
        training_loop(run_dir=str(tmp_path), resume_pkl='network-snapshot-000000.pkl', **args)
    assert os.listdir(tmp_path) == []  # Nothing started, nothing recorded.

@pytest.mark.slow
def test_resume_with_other_shape_stops_unless_partial(fashion_zip, tmp_path, capsys):
    from training.training_loop import training_loop
    args = tiny_options(fashion_zip, batch=4, aug='noaug')
    args.total_kimg, args.kimg_per_tick = 0.004, 1
    args.image_snapshot_ticks, args.network_snapshot_ticks = None, 1
    pkl = training_loop(run_dir=str(tmp_path), **args)['snapshot_pkl']
    args.G_kwargs.mapping_kwargs.num_layers = 4  # The tiny preset has 2.
    resumed_dir = tmp_path / 'resumed'
    resumed_dir.mkdir()
    resume = read_resume_snapshot(pkl)
    with pytest.raises(snapshot.ResumeError, match='G: mapping.fc2.weight is not in the snapshot'):
        training_loop(run_dir=str(resumed_dir), resume_pkl=pkl, resume_snapshot=resume, **args)
    training_loop(run_dir=str(resumed_dir), resume_pkl=pkl, resume_snapshot=resume, resume_partial=True, **args)
    out = capsys.readouterr().out
    assert 'Not loaded: G_ema: mapping.fc3.bias is not in the snapshot' in out and 'Partial load: 8 tensors not loaded' in out

#----------------------------------------------------------------------------

@pytest.mark.slow
def test_sigterm_writes_a_final_snapshot(fashion_zip, tmp_path):
    """SIGTERM to the whole process group (as Ctrl-C or `timeout` deliver it, data workers
    included): the run saves a snapshot (with its training state) where it stands and exits cleanly."""
    proc = run_cli(_cli_args(fashion_zip, tmp_path, 10, ['--batch=4', '--snap=1000', '--workers=1']), start_new_session=True)
    stats = None
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        runs = only_run_dir(tmp_path)
        stats = os.path.join(runs[0], 'stats.jsonl') if runs else None
        if stats and os.path.isfile(stats) and open(stats).read().count('\n') >= 1: # Tick 0 done, training goes on.
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, output
    assert 'Received SIGTERM' in output and 'exiting' in output
    run_dir = os.path.dirname(stats)
    state = snapshot.load_training_state(os.path.join(run_dir, 'network-snapshot-000000.pkl'))
    assert state is not None and state['cur_nimg'] >= 8 and state['cur_nimg'] % 4 == 0 # Past tick 0's snapshot (4 images).
    assert legacy.load_network_pkl(os.path.join(run_dir, 'network-snapshot-000000.pkl'))['G_ema'] is not None

@pytest.mark.slow
def test_snapshot_without_training_state_starts_fresh(fashion_zip, tmp_path, capsys):
    """A snapshot without its state file (as published snapshots are) gives the networks'
    weights but fresh optimizers and counters from zero."""
    from training.training_loop import training_loop
    args = tiny_options(fashion_zip, batch=4, aug='noaug')
    args.total_kimg, args.kimg_per_tick = 0.004, 1
    args.image_snapshot_ticks, args.network_snapshot_ticks = None, 1
    first = training_loop(run_dir=str(tmp_path), **args)
    pkl = first['snapshot_pkl']
    os.remove(run_dirs.training_state_path_for(pkl))
    resumed_dir = tmp_path / 'resumed'
    resumed_dir.mkdir()
    args.total_kimg = 0.008
    resume = read_resume_snapshot(pkl)
    os.remove(pkl)  # The loop works from what was read (train.py reads it once, before the run directory exists).
    training_loop(run_dir=str(resumed_dir), resume_pkl=pkl, resume_snapshot=resume, **args)
    assert 'No training state beside the snapshot: fresh optimizers' in capsys.readouterr().out
    import json
    with open(resumed_dir / 'stats.jsonl') as f:
        kimgs = [json.loads(line)['Progress/kimg']['mean'] for line in f]
    assert kimgs == pytest.approx([0.004, 0.008]) # Ticks counted from zero (an exact resume would log 0.008 only).

#----------------------------------------------------------------------------
# Reduced precision on the CPU (train.py --precision=reduced).

def test_reduced_precision_trains_in_bfloat16_on_the_cpu(fashion_zip, tmp_path, monkeypatch):
    """With --precision=reduced the marked blocks of G and D run in bfloat16 on the CPU, every
    phase (the double-backward ones too) stays finite and the weights move."""
    from training.networks_Discriminator import DiscriminatorBlock
    from training.networks_Generator import Encoderlayer
    from training.training_loop import training_loop
    args = tiny_options(fashion_zip, batch=4, aug='noaug', g_dict=['16', '16', '16'], precision='reduced')
    assert args.loss_kwargs.precision == 'reduced'
    args.total_kimg, args.kimg_per_tick = 16 * 4 / 1000, 1000 # Covers G's and D's regularization phases.
    args.image_snapshot_ticks = args.network_snapshot_ticks = None
    seen = set() # (network, dtype of a block's output)
    for name, cls in [('D', DiscriminatorBlock), ('G', Encoderlayer)]:
        def forward(self, *inputs, _name=name, _original=cls.forward, **kwargs):
            out = _original(self, *inputs, **kwargs)
            seen.add((_name, (out[0] if isinstance(out, tuple) else out).dtype))
            return out
        monkeypatch.setattr(cls, 'forward', forward)
    torch.manual_seed(args.random_seed)
    G0 = dnnlib.util.construct_class_by_name(**args.G_kwargs, c_dim=0, img_resolution=32, img_channels=1)
    result = training_loop(run_dir=str(tmp_path), **args)
    assert ('D', torch.bfloat16) in seen and ('G', torch.bfloat16) in seen
    assert all(torch.isfinite(p).all() for m in [result['G'], result['D']] for p in m.parameters())
    assert max_param_diff(result['G'], G0) > 0
