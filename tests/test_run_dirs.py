"""training/run_dirs.py and the train.py options built on it: runs are numbered from the
directories only and rank 0 picks the number for all ranks, snapshot names round-trip,
--resume=latest finds the newest snapshot of the newest run, --keep=N prunes old snapshots
but never the newest, a marked one or the one just written; a labelled dataset trained
without --cond says so once."""

import json
import pickle
import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

import dnnlib
import train
from fashion_helpers import make_fashion_zip
from torch_utils import distributed
from tools import train_options
from training import run_dirs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------

def make_snapshot(run_dir, kimg, with_state=True):
    """Stand-in snapshot files under their real names (their contents do not matter here)."""
    os.makedirs(run_dir, exist_ok=True)
    pkl = run_dirs.network_snapshot_path(str(run_dir), kimg)
    with open(pkl, 'wb') as f:
        f.write(b'pkl')
    if with_state:
        with open(run_dirs.training_state_path_for(pkl), 'wb') as f:
            f.write(b'state')
    return pkl

def names(folder):
    return sorted(os.listdir(folder))

#----------------------------------------------------------------------------
# Names.

def test_next_run_dir_counts_only_directories(tmp_path):
    assert run_dirs.next_run_dir(str(tmp_path / 'missing'), 'a') == str(tmp_path / 'missing' / '00000-a')
    (tmp_path / '00002-run').mkdir()
    (tmp_path / '00041-notes.txt').write_text('')  # A plain file is not a run.
    (tmp_path / '7-short').mkdir()  # Any number of digits counts.
    (tmp_path / 'logs').mkdir()
    assert run_dirs.next_run_dir(str(tmp_path), 'cifar10-32x32') == str(tmp_path / '00008-cifar10-32x32')
    assert run_dirs.list_runs(str(tmp_path)) == [str(tmp_path / '7-short'), str(tmp_path / '00002-run')]

@pytest.mark.parametrize('kimg', [0, 400, 123456, 1234567])
def test_snapshot_names_round_trip(tmp_path, kimg):
    pkl = run_dirs.network_snapshot_path(str(tmp_path), kimg)
    assert os.path.dirname(pkl) == str(tmp_path) and run_dirs.snapshot_kimg(pkl) == kimg
    state = run_dirs.training_state_path_for(pkl)
    assert os.path.dirname(state) == str(tmp_path) and os.path.basename(state) == f'training-state-{kimg:06d}.pt'
    make_snapshot(tmp_path, kimg)
    assert run_dirs.list_snapshots(str(tmp_path)) == [pkl]

def test_other_files_are_not_snapshots(tmp_path):
    for name in ['network-snapshot.pkl', 'model.pkl', '.network-snapshot-000200.pkl.x1.tmp', 'network-snapshot-000200.pkl.keep']:
        assert run_dirs.snapshot_kimg(name) is None and run_dirs.training_state_path_for(str(tmp_path / name)) is None, name

#----------------------------------------------------------------------------
# Finding the snapshot to resume from.

def test_latest_snapshot_of_the_newest_run(tmp_path):
    make_snapshot(tmp_path / '00000-old', 900)
    make_snapshot(tmp_path / '00002-newer', 40)
    newest = make_snapshot(tmp_path / '00002-newer', 120)
    make_snapshot(tmp_path / '00002-newer', 80)
    (tmp_path / '00002-newer' / '.network-snapshot-000200.pkl.x1.tmp').write_bytes(b'half written')
    (tmp_path / '00003-crashed-before-its-first-snapshot').mkdir()
    (tmp_path / '00010-not-a-dir').write_text('')
    (tmp_path / 'notes').mkdir()
    assert run_dirs.find_latest_snapshot(str(tmp_path)) == newest
    assert run_dirs.list_runs(str(tmp_path))[0].endswith('00003-crashed-before-its-first-snapshot')

def test_no_snapshot_to_resume_from(tmp_path):
    with pytest.raises(run_dirs.NoSnapshotError, match='holds no run directories'):
        run_dirs.find_latest_snapshot(str(tmp_path / 'missing'))
    (tmp_path / '00000-empty').mkdir()
    with pytest.raises(run_dirs.NoSnapshotError, match='network-snapshot'):
        run_dirs.find_latest_snapshot(str(tmp_path))

#----------------------------------------------------------------------------
# Pruning.

def test_prune_keeps_the_newest_and_marked_snapshots(tmp_path):
    paths = [make_snapshot(tmp_path, kimg) for kimg in [0, 40, 80, 120, 160]]
    open(paths[1] + run_dirs.KEEP_SUFFIX, 'w').close()
    (tmp_path / 'fakes000040.png').write_bytes(b'png')
    deleted = run_dirs.prune_snapshots(str(tmp_path), keep=2)
    assert deleted == [paths[0], paths[2]]
    assert names(tmp_path) == ['fakes000040.png',
        'network-snapshot-000040.pkl', 'network-snapshot-000040.pkl.keep', 'network-snapshot-000120.pkl',
        'network-snapshot-000160.pkl', 'training-state-000040.pt', 'training-state-000120.pt', 'training-state-000160.pt']
    assert run_dirs.prune_snapshots(str(tmp_path), keep=2) == []  # Already pruned.

def test_prune_spares_protected_paths_and_tolerates_missing_state(tmp_path):
    old = make_snapshot(tmp_path, 0, with_state=False)
    protected = make_snapshot(tmp_path, 40)
    make_snapshot(tmp_path, 80)
    assert run_dirs.prune_snapshots(str(tmp_path), keep=1, protect=[protected, None]) == [old]
    assert names(tmp_path) == ['network-snapshot-000040.pkl', 'network-snapshot-000080.pkl',
                               'training-state-000040.pt', 'training-state-000080.pt']
    with pytest.raises(ValueError, match='at least 1'):
        run_dirs.prune_snapshots(str(tmp_path), keep=0)

#----------------------------------------------------------------------------
# train.py (dry runs: options only).

@pytest.fixture(scope='module')
def fashion_zip(tmp_path_factory):
    return make_fashion_zip(tmp_path_factory, 16)  # Labelled.

def dry_run(*args):
    result = CliRunner().invoke(train.main, ['--cfg=tiny', '--dry-run', *args])
    options = json.loads(result.output[result.output.index('{'):result.output.index('\nOutput directory')]) if result.exit_code == 0 else None
    return result, options

def write_networks(pkl, data, **options):
    """A real snapshot at `pkl` of the networks train.py builds for `options`, with an (empty)
    training state beside it: --resume reads both."""
    import torch
    _desc, args = train_options.setup_training_options(data=data, cfg='tiny', metrics=[], **options)
    common = dict(c_dim=0, img_resolution=32, img_channels=1)
    G, D = [dnnlib.util.construct_class_by_name(**args[key], **common) for key in ['G_kwargs', 'D_kwargs']]
    with open(pkl, 'wb') as f:
        pickle.dump(dict(G=G, D=D, G_ema=G, augment_pipe=None, training_set_kwargs=None), f)
    torch.save({}, run_dirs.training_state_path_for(pkl))

def test_resume_latest_and_keep_options(fashion_zip, tmp_path):
    outdir = tmp_path / 'runs'
    newest = make_snapshot(outdir / '00000-fashion32-tiny', 8)
    make_snapshot(outdir / '00000-fashion32-tiny', 4)
    write_networks(newest, fashion_zip, depth=32) # --resume reads the newest; it must fit the new networks.
    result, options = dry_run(f'--outdir={outdir}', f'--data={fashion_zip}', '--resume=latest', '--keep=3', '--depth=32')
    assert result.exit_code == 0, result.output
    assert options['resume_pkl'] == newest and options['keep_snapshots'] == 3
    assert options['ema_rampup'] is not None  # Its training state is beside it: an exact resume.
    # A partial load starts fresh optimizers and counters, so it gets the transfer-learning settings.
    result, options = dry_run(f'--outdir={outdir}', f'--data={fashion_zip}', '--resume=latest', '--resume-partial', '--depth=32')
    assert result.exit_code == 0 and options['resume_partial'], result.output
    assert options['ema_rampup'] is None and options['ada_kimg'] == 100

    _result, options = dry_run(f'--outdir={outdir}', f'--data={fashion_zip}')
    assert 'keep_snapshots' not in options and 'resume_pkl' not in options

def test_resume_latest_without_snapshots_fails_cleanly(fashion_zip, tmp_path):
    outdir = tmp_path / 'runs'
    result = CliRunner().invoke(train.main, [f'--outdir={outdir}', f'--data={fashion_zip}', '--cfg=tiny', '--resume=latest'])
    assert result.exit_code == 2 and result.output.count('Error:') == 1, result.output
    assert '--resume=latest' in result.output and str(outdir) in result.output
    assert not outdir.exists()
    result = CliRunner().invoke(train.main, [f'--outdir={outdir}', f'--data={fashion_zip}', '--cfg=tiny', '--keep=0'])
    assert result.exit_code == 2 and '--keep' in result.output

def test_unused_labels_are_mentioned_once(fashion_zip, tmp_path):
    result, _options = dry_run(f'--outdir={tmp_path}', f'--data={fashion_zip}')
    assert result.output.count('has labels, but they are not used; pass --cond=true') == 1
    result, options = dry_run(f'--outdir={tmp_path}', f'--data={fashion_zip}', '--cond=true')
    assert 'not used' not in result.output and options['training_set_kwargs']['use_labels']

#----------------------------------------------------------------------------
# Two ranks that see different listings of --outdir (as under torchrun on two machines).

RANK_WORKER = textwrap.dedent('''
    import json, os, sys
    import train
    from training import training_loop
    def record_run_dir(run_dir, **_kwargs):  # Stands in for the training.
        with open(os.environ['RUN_DIR_RECORD'], 'w') as f:
            json.dump(run_dir, f)
    training_loop.training_loop = record_run_dir
    train.main(sys.argv[1:])
''')

@pytest.mark.slow  # Two fresh processes that import torch and form a process group.
def test_rank_0_picks_the_run_dir_for_all_ranks(fashion_zip, tmp_path):
    machines = [tmp_path / 'machine0', tmp_path / 'machine1']
    (machines[0] / 'runs').mkdir(parents=True)
    (machines[0] / 'runs' / '00004-notes.txt').write_text('')  # Not a run: rank 0 picks 00000.
    (machines[1] / 'runs' / '00007-other').mkdir(parents=True)  # Rank 1 alone would pick 00008.
    port = distributed.free_port()
    procs = []
    for rank, machine in enumerate(machines):
        env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
        env.update(PYTHONPATH=REPO_ROOT, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2', MASTER_ADDR='127.0.0.1',
            MASTER_PORT=str(port), CUDA_VISIBLE_DEVICES='', RUN_DIR_RECORD=str(machine / 'run_dir.json'))
        args = ['--outdir=runs', f'--data={fashion_zip}', '--cfg=tiny', '--batch-gpu=4', '--workers=0']  # --outdir relative to each machine.
        procs.append(subprocess.Popen([sys.executable, '-c', RANK_WORKER, *args], cwd=machine, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for proc in procs:
        output = proc.communicate(timeout=240)[0]
        assert proc.returncode == 0, output
    picked = os.path.join('runs', '00000-fashion32-tiny')
    assert [json.loads((machine / 'run_dir.json').read_text()) for machine in machines] == [picked, picked]
    assert (machines[0] / picked / 'training_options.json').is_file()
    assert names(machines[1] / 'runs') == ['00007-other']  # Rank 1 creates nothing.

#----------------------------------------------------------------------------
# The training loop prunes after writing a snapshot.

def test_training_loop_prunes_after_each_snapshot(fashion_zip, tmp_path):
    import torch
    from training.training_loop import training_loop
    _desc, args = train_options.setup_training_options(data=fashion_zip, cfg='tiny', metrics=[], workers=0, seed=0, batch=4, aug='noaug', keep=1)
    args.total_kimg, args.kimg_per_tick = 0.004, 1
    args.image_snapshot_ticks, args.network_snapshot_ticks = None, 1
    # Older snapshots of higher kimg (this run writes kimg 0), one of them marked: the one just
    # written stays although it sorts first, then the newest 1 and the marked one.
    for kimg in [1, 2, 3]:
        make_snapshot(tmp_path, kimg)
    open(run_dirs.network_snapshot_path(str(tmp_path), 2) + run_dirs.KEEP_SUFFIX, 'w').close()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = training_loop(run_dir=str(tmp_path), **args)
    finally:
        torch.set_num_threads(threads)
    assert result['snapshot_pkl'] == run_dirs.network_snapshot_path(str(tmp_path), 0)
    snapshots = [name for name in names(tmp_path) if name.startswith(('network-snapshot-', 'training-state-'))]
    assert snapshots == ['network-snapshot-000000.pkl', 'network-snapshot-000002.pkl', 'network-snapshot-000002.pkl.keep',
        'network-snapshot-000003.pkl', 'training-state-000000.pt', 'training-state-000002.pt', 'training-state-000003.pt']
