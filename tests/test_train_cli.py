"""train.py: option validation (one message, exit code 2, no run directory), published
commands and spellings, presets, and an end-to-end run that writes every artifact."""

import json
import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

import train
from fashion_helpers import make_fashion_zip
from tools import train_options

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

@pytest.fixture(scope='module')
def fashion_zip(tmp_path_factory):
    return make_fashion_zip(tmp_path_factory, 64)

def invoke(args):
    return CliRunner().invoke(train.main, args)

#----------------------------------------------------------------------------
# Validation.

@pytest.mark.parametrize('args, message', [
    (['--cfg=nosuchpreset'], "Invalid value for '--cfg'"),
    (['--cfg=cifar', '--g_dict=256,64'], '--g_dict: you gave 2 values (256,64), but a 32x32 dataset needs one per generator stage (8,16,32): 3 values'),
    (['--cfg=cifar', '--num_layers=1,2,2,2'], '--num_layers: you gave 4 values'),
    (['--cfg=styleformer-celeba64'], '--cfg=styleformer-celeba64 is built for 64x64 images, but the dataset is 32x32'),
    (['--cfg=styleformer-celeba64', '--num_layers=1,1,1'], '--g_dict: --cfg=styleformer-celeba64 uses 4 values'),
    (['--gpus=3', '--batch=16'], '--batch=16 must be at least 1 and divisible by the number of GPUs/processes (3)'),
    (['--g_dict=a,b,c'], '--g_dict takes comma-separated integers'),
    (['--aug=fixed'], '--aug=fixed needs --p'),
    (['--p=0.3'], '--p can only be given with --aug=fixed'),
    (['--metrics=fid51x'], "--metrics: unknown metric 'fid51x'"),
    (['--resume=/no/such/snapshot.pkl'], "--resume: Cannot load '/no/such/snapshot.pkl': No such file"),
    (['--resume-partial'], '--resume-partial needs --resume'),
    # Ranges are checked by the options themselves.
    (['--gpus=0'], "Invalid value for '--gpus': 0 is not in the range x>=1"),
    (['--aug=fixed', '--p=1.5'], "Invalid value for '--p'"),
    (['--kimg=0'], "Invalid value for '--kimg'"),
    (['--freezed=-1'], "Invalid value for '--freezed'"),
])
def test_invalid_options_fail_cleanly(fashion_zip, tmp_path, args, message):
    outdir = tmp_path / 'runs'
    result = invoke([f'--outdir={outdir}', f'--data={fashion_zip}', '--metrics=none', *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert 'Traceback' not in result.output
    assert not outdir.exists()

@pytest.mark.parametrize('make_data, message', [
    (lambda tmp: str(tmp / 'missing.zip'), 'cannot open'),
    (lambda tmp: _write(tmp / 'broken.zip', b'this is not a zip file'), 'cannot open'),
    (lambda tmp: str((tmp / 'empty').mkdir() or tmp / 'empty'), 'holds no image files'),
])
def test_unreadable_dataset_fails_cleanly(tmp_path, make_data, message):
    outdir = tmp_path / 'runs'
    result = invoke([f'--outdir={outdir}', f'--data={make_data(tmp_path)}', '--metrics=none'])
    assert result.exit_code == 2, result.output
    assert result.output.count('Error:') == 1 and message in result.output
    assert not outdir.exists()

def _write(path, data):
    path.write_bytes(data)
    return str(path)

#----------------------------------------------------------------------------
# Published commands and presets (dry runs: options only).

def dry_run_options(args):
    desc, options = train_options.setup_training_options(**args)
    return desc, options

def test_published_readme_command_runs_unchanged(fashion_zip, tmp_path):
    # From the Styleformer README ("Training new networks"), with our dataset path.
    result = invoke([f'--outdir={tmp_path}/training-runs', f'--data={fashion_zip}', '--gpus=1', '--batch=32', '--cfg=cifar',
        '--g_dict=256,64,16', '--num_layers=1,2,2', '--depth=32', '--dry-run'])
    assert result.exit_code == 0, result.output
    assert 'Dry run; exiting.' in result.output
    options = json.loads(result.output[result.output.index('{'):result.output.index('\nOutput directory')])
    synthesis = options['G_kwargs']['synthesis_kwargs']
    assert synthesis['G_dict'] == [256, 64, 16] and synthesis['num_layers'] == [1, 2, 2] and synthesis['depth'] == 32
    assert options['batch_size'] == 32 and options['loss_kwargs']['r1_gamma'] == 0.01 and options['D_kwargs']['architecture'] == 'orig'
    assert not (tmp_path / 'training-runs').exists()

def test_dash_and_underscore_spellings_agree(fashion_zip, tmp_path):
    outputs = []
    for spelling in [['--g_dict=64,32,16', '--num_layers=1,1,2', '--minimum_head=2', '--allow_tf32=1', '--dry_run'],
                     ['--g-dict=64,32,16', '--num-layers=1,1,2', '--minimum-head=2', '--allow-tf32=1', '--dry-run']]:
        result = invoke([f'--outdir={tmp_path}', f'--data={fashion_zip}', '--metrics=none', *spelling])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert outputs[0] == outputs[1]
    assert '"minimum_head": 2' in outputs[0] and '"allow_tf32": true' in outputs[0]

def test_presets_set_the_paper_shapes(fashion_zip):
    _desc, options = dry_run_options(dict(data=fashion_zip, cfg='styleformer-cifar10', metrics=[]))
    synthesis = options.G_kwargs.synthesis_kwargs
    assert synthesis.G_dict == [1024, 512, 512] and synthesis.num_layers == [1, 3, 3] and synthesis.depth == 32
    assert options.batch_size == 32 and options.loss_kwargs.pl_weight == 0
    _desc, options = dry_run_options(dict(data=fashion_zip, cfg='tiny', metrics=[]))
    assert options.G_kwargs.synthesis_kwargs.G_dict == [128, 64, 32] and options.G_opt_kwargs.lr == 0.005
    assert options.D_kwargs.channel_max == 64 and options.batch_size == 8
    # Explicit options win over the preset.
    _desc, options = dry_run_options(dict(data=fashion_zip, cfg='tiny', metrics=[], g_dict=['32', '32', '16'], batch=16))
    assert options.G_kwargs.synthesis_kwargs.G_dict == [32, 32, 16] and options.batch_gpu == 16

def _write_snapshot(fashion_zip, run_dir, **shape):
    """A snapshot of fresh tiny networks built with `shape` options (as train.py would build them)."""
    import dnnlib
    from training import snapshot
    _desc, options = dry_run_options(dict(data=fashion_zip, cfg='tiny', metrics=[], **shape))
    common = dict(c_dim=0, img_resolution=32, img_channels=1)
    G = dnnlib.util.construct_class_by_name(**options.G_kwargs, **common)
    D = dnnlib.util.construct_class_by_name(**options.D_kwargs, **common)
    data = snapshot.network_snapshot_data(dict(G=G, D=D, G_ema=G, augment_pipe=None), options.training_set_kwargs, options)
    return snapshot.save_snapshot(str(run_dir), 0, data, dict())

def test_resume_takes_the_snapshots_architecture(fashion_zip, tmp_path):
    pkl = _write_snapshot(fashion_zip, tmp_path, g_dict=['32', '16', '8'], depth=8)
    _desc, options = dry_run_options(dict(data=fashion_zip, cfg='tiny', metrics=[], resume=pkl))
    synthesis = options.G_kwargs.synthesis_kwargs
    assert options.G_kwargs.class_name == 'training.networks_Generator.Generator'
    assert synthesis.G_dict == [32, 16, 8] and synthesis.depth == 8  # The snapshot's, not the preset's 128,64,32 and 16.
    assert 'img_resolution' not in options.G_kwargs and 'c_dim' not in options.D_kwargs  # The dataset sets these.
    assert options.D_kwargs.channel_max == 64 and options.resume_partial is False
    # A shape option means new networks of that shape (then the resume is checked, or partial).
    _desc, options = dry_run_options(dict(data=fashion_zip, cfg='tiny', metrics=[], resume=pkl, depth=4, resume_partial=True))
    assert options.G_kwargs.synthesis_kwargs.G_dict == [128, 64, 32] and options.G_kwargs.synthesis_kwargs.depth == 4
    assert options.resume_partial is True

def test_resume_that_does_not_fit_stops_before_the_run_directory(fashion_zip, tmp_path):
    pkl = _write_snapshot(fashion_zip, tmp_path, g_dict=['32', '16', '8'])
    outdir = tmp_path / 'runs'
    args = [f'--outdir={outdir}', f'--data={fashion_zip}', '--cfg=tiny', '--metrics=none', f'--resume={pkl}']
    result = invoke(args + ['--g_dict=64,32,16'])  # Other widths than the snapshot's.
    assert result.exit_code == 2, result.output
    assert result.output.count('Error:') == 1 and 'Traceback' not in result.output
    assert 'does not fit the networks being trained' in result.output and '--resume-partial' in result.output
    assert "G: synthesis.b8_0.const has shape [64, 32] in the snapshot but [64, 64] here" in result.output
    assert not outdir.exists()
    # The same options fine-tune with --resume-partial (a dry run: the check passes, nothing is written).
    result = invoke(args + ['--g_dict=64,32,16', '--resume-partial', '--dry-run'])
    assert result.exit_code == 0, result.output
    assert not outdir.exists()

def test_resume_with_unreadable_training_state_stops_before_the_run_directory(fashion_zip, tmp_path):
    from training import run_dirs
    pkl = _write_snapshot(fashion_zip, tmp_path, g_dict=['32', '16', '8'])
    with open(run_dirs.training_state_path_for(pkl), 'wb') as f:
        f.write(b'PK\x03\x04 cut short')  # A damaged file (torch.save writes zip archives).
    outdir = tmp_path / 'runs'
    result = invoke([f'--outdir={outdir}', f'--data={fashion_zip}', '--cfg=tiny', '--metrics=none', f'--resume={pkl}'])
    assert result.exit_code == 2, result.output
    assert result.output.count('Error:') == 1 and 'Traceback' not in result.output
    assert f'--resume: cannot read {run_dirs.training_state_path_for(pkl)}' in result.output
    assert not outdir.exists()

@pytest.mark.parametrize('shape', [[], ['--g_dict=32,16,8']], ids=['own-architecture', 'same-shape-options'])
def test_resume_that_fits_starts(fashion_zip, tmp_path, monkeypatch, shape):
    pkl = _write_snapshot(fashion_zip, tmp_path, g_dict=['32', '16', '8'])
    launched = []
    monkeypatch.setattr(train.distributed, 'launch', lambda fn, args, num_gpus: launched.append(args))
    outdir = tmp_path / 'runs'
    result = invoke([f'--outdir={outdir}', f'--data={fashion_zip}', '--cfg=tiny', '--metrics=none', f'--resume={pkl}', *shape])
    assert result.exit_code == 0, result.output
    ((options, resume),) = launched
    assert options.resume_pkl == resume.path == pkl and resume.data['G'] is not None  # Read once, handed to the ranks.
    assert options.G_kwargs.synthesis_kwargs.G_dict == [32, 16, 8]
    assert os.path.isfile(os.path.join(options.run_dir, 'training_options.json'))

def test_misspelt_option_is_an_error(fashion_zip):
    with pytest.raises(TypeError, match='unknown option.s. gamam; valid: accumulation, allow_tf32, aug'):
        dry_run_options(dict(data=fashion_zip, gamam=1))

def test_generator_options_are_recorded_once_and_as_published(fashion_zip):
    _desc, options = dry_run_options(dict(data=fashion_zip, cfg='cifar', metrics=[]))
    synthesis = options.G_kwargs.synthesis_kwargs # channel_*: unused by G, but in the published kwargs.
    assert synthesis.channel_base == options.D_kwargs.channel_base == 32768 and synthesis.channel_max == 512
    for recorded_once in ['G_dict', 'num_layers', 'depth', 'minimum_head', 'linformer']:
        assert recorded_once not in options  # Only in G_kwargs.synthesis_kwargs.

def test_options_resolve_without_files():
    # resolve() takes facts, not files: no dataset or snapshot on disk is needed.
    opts, given = train_options.option_values(data='/no/such/cars.zip', cfg='tiny', batch=8)
    desc, options = train_options.resolve(opts, given, train_options.DatasetFacts('cars32', 32, 100, has_labels=False), num_gpus=2)
    assert desc == 'cars32-tiny-batch8' and options.batch_size == 8 and options.batch_gpu == 4 and options.num_gpus == 2
    assert options.training_set_kwargs.max_size == 100 and options.D_kwargs.epilogue_kwargs.mbstd_group_size == 4
    assert options.metrics == [] and options.ada_target == 0.6 and options.augment_kwargs.xflip == 1  # The defaults: none for tiny, ADA, bgc.

def test_a_preset_batch_is_shared_among_more_processes_than_it_was_laid_out_for():
    # tiny's batch 8 is laid out for one process; with two, each takes 4 per round (no --batch needed).
    opts, given = train_options.option_values(data='/no/such/cars.zip', cfg='tiny')
    facts = train_options.DatasetFacts('cars32', 32, 100, has_labels=False)
    _desc, options = train_options.resolve(opts, given, facts, num_gpus=2)
    assert options.batch_size == 8 and options.batch_gpu == 4
    _desc, options = train_options.resolve(opts, given, facts, num_gpus=1)
    assert options.batch_size == 8 and options.batch_gpu == 8
    # A published configuration laid out for 8 GPUs keeps its per-GPU batch (gradient accumulation on fewer).
    opts, given = train_options.option_values(data='/no/such/cars.zip', cfg='stylegan2')
    _desc, options = train_options.resolve(opts, given, facts, num_gpus=2)
    assert options.batch_size == 32 and options.batch_gpu == 4

def test_a_default_given_explicitly_counts_as_given(fashion_zip):
    # Given on the command line, a value equal to its default still names the run and is checked.
    assert dry_run_options(dict(data=fashion_zip, cfg='tiny'))[0] == 'fashion32-tiny'
    desc, options = dry_run_options(dict(data=fashion_zip, cfg='tiny', target=0.6, augpipe='bgc', metrics=['fid50k_full']))
    assert desc == 'fashion32-tiny-target0.6-bgc' and options.metrics == ['fid50k_full']
    with pytest.raises(train_options.UserError, match='--target can only be given with --aug=ada'):
        dry_run_options(dict(data=fashion_zip, aug='noaug', target=0.6))
    result = invoke(['--outdir=.', f'--data={fashion_zip}', '--cfg=tiny', '--metrics=fid50k_full', '--target=0.6', '--dry-run'])
    assert result.exit_code == 0 and '"fid50k_full"' in result.output and 'fashion32-tiny-target0.6' in result.output, result.output

def test_start_resolution_and_stage_count():
    from training import presets
    assert presets.stage_count(32, 8) == 3 and presets.stage_count(48, 12) == 3 and presets.stage_count(128, 8) == 5
    assert presets.stage_count(48, 8) is None and presets.stage_count(4, 8) is None
    assert presets.STYLEFORMER_PRESETS['styleformer-stl10']['start_res'] == 12

#----------------------------------------------------------------------------
# End to end.

@pytest.mark.slow
def test_tiny_run_writes_every_artifact(fashion_zip, tmp_path):
    outdir = tmp_path / 'runs'
    result = subprocess.run([sys.executable, 'train.py', f'--outdir={outdir}', f'--data={fashion_zip}', '--cfg=tiny',
        '--batch=4', '--kimg=0.012', '--tick=0.004', '--snap=2', '--metrics=fid16', '--workers=0'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = outdir.iterdir()
    assert run_dir.name == '00000-fashion32-tiny-kimg0.012-batch4'
    names = set(os.listdir(run_dir))
    for name in ['training_options.json', 'log.txt', 'stats.jsonl', 'reals.png', 'fakes_init.png', 'fakes000000.png',
                 'network-snapshot-000000.pkl', 'training-state-000000.pt', 'metric-fid16.jsonl']:
        assert name in names, name
    assert any(n.startswith('events.out.tfevents.') for n in names)
    # One progress line per tick: kimg, time, sec/kimg, ETA, memory and the augment probability (README).
    ticks = [line for line in result.stdout.splitlines() if line.startswith('tick ')]
    assert [t.split()[3] for t in ticks] == ['0.004', '0.008', '0.012'] # Tick 0 after the first step, then every 4 images.
    for field in ['kimg', 'sec/kimg', 'eta', 'cpumem', 'augment']:
        assert field in ticks[-1]
    with open(run_dir / 'log.txt') as f:
        assert ticks[-1] in f.read()
    metric = json.loads((run_dir / 'metric-fid16.jsonl').read_text().splitlines()[-1])
    assert metric['results']['fid16'] > 0 and metric['snapshot_pkl'] == 'network-snapshot-000000.pkl'
    # The snapshot holds the published entries and loads through legacy.
    import legacy
    data = legacy.load_network_pkl(str(run_dir / 'network-snapshot-000000.pkl'))
    for key in ['G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs']:
        assert data[key] is not None, key
    assert data['training_options']['batch_size'] == 4

def test_metric_defaults(fashion_zip):
    # As published, fid50k_full by default; the CPU demo preset computes none unless asked.
    assert dry_run_options(dict(data=fashion_zip, cfg='cifar'))[1]['metrics'] == ['fid50k_full']
    assert dry_run_options(dict(data=fashion_zip, cfg='tiny'))[1]['metrics'] == []
    assert dry_run_options(dict(data=fashion_zip, cfg='tiny', metrics=['fid2k']))[1]['metrics'] == ['fid2k']

@pytest.mark.parametrize('fast_bf16, options, note', [
    (True, {}, '--precision=reduced runs the mixed-precision blocks in bfloat16'),  # The fast path, pointed out.
    (True, dict(fp32=True), None),                                                 # Nothing to speed up.
    (True, dict(precision='reduced'), None),                                       # Already asked for.
    (False, {}, None),
    (False, dict(precision='reduced'), 'no bfloat16 matrix hardware'),             # Asked for, and slow here.
])
def test_cpu_precision_notes(fashion_zip, monkeypatch, capsys, fast_bf16, options, note):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(train_options.precision, 'cpu_has_fast_bfloat16', lambda: fast_bf16)
    dry_run_options(dict(data=fashion_zip, cfg='tiny', **options))
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith('Note: this CPU')]
    if note is None:
        assert notes == []
    else:
        assert len(notes) == 1 and note in notes[0]
