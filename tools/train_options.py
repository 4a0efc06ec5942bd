"""train.py's options and what they resolve to.

The click declarations below own every default: train.py applies them (`command_options`),
and tests and benchmarks name the same options to `setup_training_options`. `resolve` is the
one computation from the options to the training loop's kwargs and the run description:
pure (it opens no file and prints nothing), and each field is computed once, in one place.
Around it `setup_training_options` opens the dataset, takes the --resume snapshot (read once,
by `read_resume`) and checks it against the networks to train, all before anything is
written.
"""

import copy
import os
from typing import NamedTuple

import click
import torch

import dnnlib
from snapshot_io import resume as resume_io
from snapshot_io import safe_load
from training import compilation, precision, presets, snapshot
from training.augment import augpipe_specs
from training.dataset import DATASET_CLASS

#----------------------------------------------------------------------------

class UserError(click.ClickException):
    """A mistake in the options or the data: printed as one message, exit code 2."""
    exit_code = 2

class CommaSeparatedList(click.ParamType):
    name = 'list'

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        if value is None or value.lower() == 'none' or value == '':
            return []
        return value.split(',')

def _no_resume(_ctx, _param, value):
    return None if value == 'noresume' else value # The published spelling of "no resume".

DATA_WORKERS = dict(cuda=3, cpu=1) # DataLoader workers unless --workers is given (3: published).

def _default_workers():
    return DATA_WORKERS['cuda' if torch.cuda.is_available() else 'cpu']

#----------------------------------------------------------------------------
# The options of train.py, in the order of its --help.

OPTIONS = [
    # General options.
    click.option('--outdir', help='Where to save the results', required=True, metavar='DIR'),
    click.option('--gpus', help='Number of GPUs (processes) to use', type=click.IntRange(min=1), default=1, show_default=True, metavar='INT'),
    click.option('--snap', help='Snapshot interval in ticks', type=click.IntRange(min=1), default=50, show_default=True, metavar='INT'),
    click.option('--metrics', help='Comma-separated list or "none" (--cfg=tiny: none unless given)', type=CommaSeparatedList(),
        default='fid50k_full', show_default=True),
    click.option('--seed', help='Random seed', type=int, default=0, show_default=True, metavar='INT'),
    click.option('-n', '--dry-run', '--dry_run', 'dry_run', help='Print training options and exit', is_flag=True),
    # Dataset.
    click.option('--data', help='Training data (directory or zip)', metavar='PATH', required=True),
    click.option('--cond', help='Train conditional model based on dataset labels', type=bool, default=False, show_default=True, metavar='BOOL'),
    click.option('--subset', help='Train with only N images', type=click.IntRange(min=1), show_default='all', metavar='INT'),
    click.option('--mirror', help='Enable dataset x-flips', type=bool, default=False, show_default=True, metavar='BOOL'),
    # Base config.
    click.option('--cfg', help='Base config or preset', type=click.Choice(presets.CFG_CHOICES), default='auto', show_default=True),
    click.option('--gamma', help='Override R1 gamma', type=click.FloatRange(min=0), metavar='FLOAT'),
    click.option('--kimg', help='Override training duration (may be fractional)', type=click.FloatRange(min=0, min_open=True), metavar='KIMG'),
    click.option('--batch', help='Override batch size', type=click.IntRange(min=1), metavar='INT'),
    click.option('--batch-gpu', '--batch_gpu', 'batch_gpu', help='Samples per forward pass per GPU (gradient accumulation)',
        type=click.IntRange(min=1), show_default='batch/gpus', metavar='INT'),
    click.option('--tick', help='Progress interval in kimg', type=click.FloatRange(min=0, min_open=True), default=4, show_default=True, metavar='KIMG'),
    # Discriminator augmentation.
    click.option('--aug', help='Augmentation mode', type=click.Choice(['noaug', 'ada', 'fixed']), default='ada', show_default=True),
    click.option('--p', help='Augmentation probability for --aug=fixed', type=click.FloatRange(0, 1), metavar='FLOAT'),
    click.option('--target', help='ADA target value for --aug=ada', type=click.FloatRange(0, 1), default=0.6, show_default=True, metavar='FLOAT'),
    click.option('--augpipe', help='Augmentation pipeline', type=click.Choice(list(augpipe_specs)), default='bgc', show_default=True),
    # Transfer learning.
    click.option('--resume', help='Resume from a network pickle, path, URL or model name (exact when its training-state file is beside it; '
        'its architecture unless shape options are given); latest: the newest in --outdir', callback=_no_resume, metavar='PKL'),
    click.option('--resume-partial', '--resume_partial', 'resume_partial', help='With --resume: load only the tensors that fit (fine-tuning another shape)', is_flag=True),
    click.option('--keep', help='Keep only the newest N network snapshots of the run (and those marked with a .pkl.keep file)', type=click.IntRange(min=1), metavar='N'),
    click.option('--freezed', help='Freeze-D: number of frozen layers', type=click.IntRange(min=0), default=0, show_default=True, metavar='INT'),
    # Performance.
    click.option('--fp32', help='Disable mixed-precision training', type=bool, default=False, show_default=True, metavar='BOOL'),
    click.option('--nhwc', help='Use NHWC memory format with FP16', type=bool, default=False, show_default=True, metavar='BOOL'),
    click.option('--nobench', help='Disable cuDNN benchmarking', type=bool, default=False, show_default=True, metavar='BOOL'),
    click.option('--allow-tf32', '--allow_tf32', 'allow_tf32', help='Allow PyTorch to use TF32 internally', type=bool, default=False, show_default=True, metavar='BOOL'),
    click.option('--precision', help='full = float32 everywhere (published); reduced = the --fp32=false blocks in bfloat16/float16 (departs from '
        'the published training); auto = reduced on CUDA only', type=click.Choice(precision.PRECISIONS), default='full', show_default=True),
    click.option('--accumulation', help='Gradients of several rounds per process: sum (published; the update depends on the process layout) or '
        'mean (it does not)', type=click.Choice(['sum', 'mean']), default='sum', show_default=True),
    click.option('--compile', 'torch_compile', help='torch.compile G and D (auto: off until verified on a GPU; on: compile, not yet verified on a GPU, '
        'needs g++ on the CPU)', type=click.Choice(compilation.COMPILE_CHOICES), default='auto', show_default=True),
    click.option('--workers', help='Number of DataLoader workers', type=click.IntRange(min=0), default=_default_workers,
        show_default=f'{DATA_WORKERS["cuda"]} with CUDA, else {DATA_WORKERS["cpu"]}', metavar='INT'),
    # Styleformer generator shape (default: --cfg's, or the --resume snapshot's).
    click.option('--g_dict', '--g-dict', 'g_dict', help='Hidden size of the transformer per resolution', type=CommaSeparatedList()),
    click.option('--num_layers', '--num-layers', 'num_layers', help='Number of transformer encoder blocks per resolution', type=CommaSeparatedList()),
    click.option('--depth', help='Target width per attention head (heads = hidden // depth)', type=click.IntRange(min=1), metavar='INT'),
    click.option('--minimum_head', '--minimum-head', 'minimum_head', help='Minimum number of attention heads', type=click.IntRange(min=1), metavar='INT'),
    click.option('--linformer', help='Use Linformer at 32x32 and above', type=bool, metavar='BOOL'),
    click.option('--switch-res', '--switch_res', 'switch_res', help='Styleformer-C: transformer up to this resolution, StyleGAN2 blocks above',
        type=click.IntRange(min=4), show_default="the preset's; none: Styleformer", metavar='INT'),
]

SHAPE_OPTIONS = ['g_dict', 'num_layers', 'depth', 'minimum_head', 'linformer', 'switch_res']
COMMAND_ONLY = ['outdir', 'dry_run'] # What train.py does, not what it trains.

def command_options(function):
    """Decorate a click command function with train.py's options."""
    for option in reversed(OPTIONS):
        function = option(function)
    return function

_OPTIONS_ONLY = click.command()(command_options(lambda **_options: None))

def option_values(**given):
    """(every option's value, EasyDict; the names given). The options not given take their
    defaults, read from the declarations above."""
    ctx = _OPTIONS_ONLY.make_context('train.py', ['--outdir=.', '--data=.']) # Placeholders for the required options.
    defaults = {name: value for name, value in ctx.params.items() if name not in COMMAND_ONLY} | dict(data=None)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(f'unknown option(s) {", ".join(unknown)}; valid: {", ".join(sorted(defaults))}')
    return dnnlib.EasyDict(defaults, **given), frozenset(given)

#----------------------------------------------------------------------------
# Reading the inputs, checking them, and the notes about them.

class DatasetFacts(NamedTuple):
    """What the options depend on of the opened training set."""
    name: str
    resolution: int
    size: int
    has_labels: bool

def open_dataset(training_set_kwargs):
    """Construct the dataset once to check it and learn its shape; errors become UserError."""
    try:
        return dnnlib.util.construct_class_by_name(**training_set_kwargs)
    except (IOError, OSError, ValueError, RuntimeError) as err:
        raise UserError(f'--data: cannot open {training_set_kwargs["path"]!r}: {err}') from None

def read_resume(resume):
    """The --resume snapshot with its training state: the one read of these files in a run."""
    try:
        return resume_io.read_resume_snapshot(resume)
    except (safe_load.LoadError, snapshot.ResumeError) as err:
        raise UserError(f'--resume: {err}') from None

def _check_resume_fits(loop_kwargs, resume, training_set):
    """Every tensor of the snapshot's networks must fit the networks to train (unless
    --resume-partial); these are built on the meta device, which allocates nothing."""
    common = dict(c_dim=training_set.label_dim if loop_kwargs.training_set_kwargs.use_labels else 0,
        img_resolution=training_set.resolution, img_channels=training_set.num_channels)
    with torch.device('meta'):
        G = dnnlib.util.construct_class_by_name(**loop_kwargs.G_kwargs, **common)
        D = dnnlib.util.construct_class_by_name(**loop_kwargs.D_kwargs, **common)
    try:
        snapshot.check_resume_fits(resume.data, dict(G=G, D=D, G_ema=G))
    except snapshot.ResumeError as err:
        raise UserError(f'--resume: {err}') from None

def _print_label_note(opts, dataset):
    if dataset.has_labels and not opts.cond and os.environ.get('RANK', '0') == '0':  # Said once, by rank 0 (also under torchrun).
        print(f'Note: {opts.data} has labels, but they are not used; pass --cond=true to train a class-conditional model.')

def _print_precision_note(opts):
    on_cpu = not torch.cuda.is_available()
    if opts.precision == 'reduced' and on_cpu and not precision.cpu_has_fast_bfloat16():
        print('Note: this CPU has no bfloat16 matrix hardware (AMX or AVX-512 BF16); --precision=reduced will be slow here.')
    if opts.precision == 'full' and not opts.fp32 and on_cpu and precision.cpu_has_fast_bfloat16():
        print('Note: this CPU has bfloat16 matrix hardware; --precision=reduced runs the mixed-precision blocks in bfloat16, '
              'about 2-3x faster here (the default trains in float32, as published).')

def setup_training_options(world_size=None, resume_snapshot=None, **given):
    """(run description, training-loop kwargs) of train.py's options named in `given` (the
    others take their defaults). Opens the dataset, and checks the --resume snapshot against
    the networks to train; writes nothing. Raises UserError on bad input.
    world_size: the process count when it comes from torchrun instead of --gpus.
    resume_snapshot: the --resume snapshot when the caller has read it (read_resume); else it is read here."""
    opts, given = option_values(**given)
    if opts.data is None:
        raise UserError('--data is required: a dataset zip or folder made with dataset_tool.py')
    training_set = open_dataset(dict(class_name=DATASET_CLASS, path=opts.data, use_labels=True, max_size=None, xflip=False))
    dataset = DatasetFacts(training_set.name, training_set.resolution, len(training_set), training_set.has_labels)
    if opts.resume is not None and resume_snapshot is None:
        resume_snapshot = read_resume(opts.resume)
    _print_label_note(opts, dataset)
    desc, loop_kwargs = resolve(opts, given, dataset, world_size if world_size is not None else opts.gpus, resume_snapshot)
    _print_precision_note(opts)
    if resume_snapshot is not None and not opts.resume_partial:
        _check_resume_fits(loop_kwargs, resume_snapshot, training_set)
    return desc, loop_kwargs

#----------------------------------------------------------------------------
# The computation.

def resolve(opts, given, dataset, num_gpus, resume=None):
    """(run description, training-loop kwargs) of the options.
    opts: every option's value (option_values); given: the names given explicitly (the others
    are defaults); dataset: DatasetFacts; num_gpus: the process count; resume: the --resume
    snapshot as read (snapshot.ResumeSnapshot), None without --resume. Raises UserError on bad input."""
    if opts.cfg not in presets.CFG_CHOICES:
        raise UserError(f'--cfg={opts.cfg} is not a known configuration; choose one of {", ".join(presets.CFG_CHOICES)}')
    preset = presets.STYLEFORMER_PRESETS.get(opts.cfg, {})
    spec = presets.base_config(opts.cfg, dataset.resolution, num_gpus)
    small_scale = opts.cfg in ('cifar', 'tiny') or preset.get('base') == 'cifar'
    metrics = _metrics(opts, given)
    training_set_kwargs, dataset_desc = _training_set(opts, dataset)
    batch_size, batch_gpu = _batch(opts, spec, num_gpus)
    transfer = opts.resume is not None and (opts.resume_partial or resume.state is None) # Fresh optimizers and counters.

    if resume is not None and not any(opts[name] is not None for name in SHAPE_OPTIONS):
        G_kwargs, D_kwargs = _snapshot_networks(resume)
        mbstd_group = D_kwargs.get('epilogue_kwargs', {}).get('mbstd_group_size', 4)
    else:
        G_kwargs, D_kwargs = _new_networks(opts, preset, spec, dataset.resolution, small_scale)
        mbstd_group = min(opts.batch // num_gpus, 4) if opts.batch is not None else spec.mbstd
    D_kwargs.setdefault('epilogue_kwargs', dnnlib.EasyDict()).mbstd_group_size = _fitting_mbstd_group(mbstd_group, opts.batch_gpu, batch_gpu)
    _network_switches(opts, G_kwargs, D_kwargs)
    augmentation, augmentation_desc = _augmentation(opts, given, G_kwargs)

    loss_kwargs = dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=opts.gamma if opts.gamma is not None else spec.gamma)
    if small_scale:
        loss_kwargs.update(pl_weight=0, style_mixing_prob=0) # No path-length regularisation and no style mixing (published).
    loss_kwargs.precision = opts.precision
    args = dnnlib.EasyDict(num_gpus=num_gpus, random_seed=opts.seed, image_snapshot_ticks=opts.snap, network_snapshot_ticks=opts.snap,
        metrics=metrics, training_set_kwargs=training_set_kwargs,
        data_loader_kwargs=dnnlib.EasyDict(pin_memory=True, num_workers=opts.workers, prefetch_factor=2),
        G_opt_kwargs=dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8),
        D_opt_kwargs=dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8),
        loss_kwargs=loss_kwargs, total_kimg=opts.kimg if opts.kimg is not None else spec.kimg, batch_size=batch_size, batch_gpu=batch_gpu,
        ema_kimg=spec.ema, ema_rampup=None if transfer else spec.ramp, kimg_per_tick=opts.tick, G_kwargs=G_kwargs, D_kwargs=D_kwargs,
        **augmentation)
    if opts.resume is not None:
        args.update(resume_pkl=opts.resume, resume_partial=opts.resume_partial)
        if transfer: # Transfer learning (published; a partial load starts fresh too): ADA reacts faster, the loaded G_ema keeps its half-life.
            args.ada_kimg = 100
    elif opts.resume_partial:
        raise UserError('--resume-partial needs --resume')
    if opts.keep is not None:
        args.keep_snapshots = opts.keep  # Pruned by training/run_dirs.py after each snapshot.
    if opts.nobench:
        args.cudnn_benchmark = False
    if opts.allow_tf32:
        args.allow_tf32 = True
    args.update(torch_compile=opts.torch_compile, round_gradients=opts.accumulation)

    desc = dataset_desc + f'-{opts.cfg}' + (f'{num_gpus:d}' if opts.cfg == 'auto' else '')
    desc += f'-gamma{opts.gamma:g}' if opts.gamma is not None else ''
    desc += f'-kimg{opts.kimg:g}' if opts.kimg is not None else ''
    desc += f'-batch{opts.batch}' if opts.batch is not None else ''
    desc += augmentation_desc
    desc += '-resumecustom' if opts.resume is not None else ''
    desc += f'-freezed{opts.freezed:d}' if opts.freezed else ''
    return desc, args

def _metrics(opts, given):
    if 'metrics' not in given: # A CPU demo preset should not spend hours on a 50k-image FID at every snapshot.
        return [] if opts.cfg == 'tiny' else opts.metrics
    if opts.metrics:
        try:
            from metrics import metric_main
        except ImportError as err:
            raise UserError(f'--metrics={",".join(opts.metrics)} needs the metrics package, which failed to import ({err}); use --metrics=none') from None
        bad = [m for m in opts.metrics if not metric_main.is_valid_metric(m)]
        if bad:
            raise UserError(f'--metrics: unknown metric {bad[0]!r}; valid: {", ".join(metric_main.list_valid_metrics())}')
    return opts.metrics

def _training_set(opts, dataset):
    """The training set's kwargs and the run description's part."""
    kwargs = dnnlib.EasyDict(class_name=DATASET_CLASS, path=opts.data, use_labels=bool(opts.cond), max_size=dataset.size,
        xflip=bool(opts.mirror), resolution=dataset.resolution)
    desc = dataset.name
    if opts.cond:
        if not dataset.has_labels:
            raise UserError('--cond=True needs labels in the dataset (dataset.json); make the dataset with labels or drop --cond')
        desc += '-cond'
    if opts.subset is not None:
        if not 1 <= opts.subset <= dataset.size:
            raise UserError(f'--subset must be between 1 and {dataset.size}')
        desc += f'-subset{opts.subset}'
        if opts.subset < dataset.size:
            kwargs.update(max_size=opts.subset, random_seed=opts.seed)
    if opts.mirror:
        desc += '-mirror'
    return kwargs, desc

def _batch(opts, spec, num_gpus):
    """(batch size, samples per forward pass and process)."""
    if opts.batch is not None and opts.batch % num_gpus != 0:
        raise UserError(f'--batch={opts.batch} must be at least 1 and divisible by the number of GPUs/processes ({num_gpus})')
    batch_size = opts.batch if opts.batch is not None else spec.mb
    # The preset's per-GPU batch, or the process's share where the preset was laid out for fewer processes
    # (the published code then fed each round a mismatched number of reals and latents).
    batch_gpu = opts.batch // num_gpus if opts.batch is not None else min(spec.mb // spec.ref_gpus, batch_size // num_gpus)
    if opts.batch_gpu is not None:
        if not opts.batch_gpu <= batch_size // num_gpus:
            raise UserError(f'--batch-gpu must be between 1 and batch / processes = {batch_size // num_gpus}')
        batch_gpu = opts.batch_gpu
    if batch_gpu < 1 or batch_size % (batch_gpu * num_gpus) != 0:
        raise UserError(f'batch {batch_size} cannot be split into {num_gpus} processes x rounds of {batch_gpu}; '
            f'give a --batch divisible by the processes (and by processes x --batch-gpu)')
    return batch_size, batch_gpu

def _fitting_mbstd_group(group, batch_gpu_option, batch_gpu):
    """D's minibatch-std group: at most --batch-gpu, and it must divide the samples of one
    forward pass (else 1)."""
    if batch_gpu_option is not None:
        group = min(group, batch_gpu_option)
    return group if batch_gpu % min(group, batch_gpu) == 0 else 1

def _int_list(values, option):
    try:
        values = [int(v) for v in values]
    except ValueError:
        raise UserError(f'{option} takes comma-separated integers, e.g. {option}=1,3,3; got {",".join(values)}') from None
    if not values or min(values) < 1:
        raise UserError(f'{option} needs positive integers, one per generator stage')
    return values

def _generator_shape(opts, preset, resolution):
    """The transformer layout (EasyDict): the preset's, then the explicit options; it must fit
    the data's resolution."""
    shape = dnnlib.EasyDict(presets.DEFAULT_SHAPE)
    shape.update({k: preset[k] for k in shape if k in preset})
    if opts.g_dict is not None:
        shape.g_dict = _int_list(opts.g_dict, '--g_dict')
    if opts.num_layers is not None:
        shape.num_layers = _int_list(opts.num_layers, '--num_layers')
    shape.update({name: opts[name] for name in ['depth', 'minimum_head', 'linformer'] if opts[name] is not None})
    shape.switch_res = opts.switch_res or preset.get('switch_res')  # Styleformer-C: transformer stages up to here.
    if 'resolution' in preset and preset['resolution'] != resolution and opts.g_dict is None and opts.num_layers is None:
        raise UserError(f'--cfg={opts.cfg} is built for {preset["resolution"]}x{preset["resolution"]} images, but the dataset is '
            f'{resolution}x{resolution}; pick a preset of that size, or give --g_dict and --num_layers')
    shape.start_res = preset.get('start_res')
    if shape.start_res is None: # Resolutions like 48 and 96 start at 12x12.
        shape.start_res = 12 if presets.stage_count(resolution, 8) is None and presets.stage_count(resolution, 12) is not None else 8
    stages = presets.stage_count(resolution, shape.start_res)
    if stages is None:
        raise UserError(f'the dataset is {resolution}x{resolution}, but the generator needs {shape.start_res}x{shape.start_res} times a power of two')
    if shape.switch_res is not None:
        if shape.switch_res >= resolution or presets.stage_count(resolution, shape.switch_res) is None:
            raise UserError(f'--switch-res={shape.switch_res} must be the {resolution}x{resolution} dataset\'s resolution divided by 2, 4, 8, ...')
        stages = presets.stage_count(shape.switch_res, shape.start_res)
        if stages is None:
            raise UserError(f'--switch-res={shape.switch_res} must be {shape.start_res} times a power of two (the first transformer stage)')
    for option, values, given in [('--g_dict', shape.g_dict, opts.g_dict), ('--num_layers', shape.num_layers, opts.num_layers)]:
        if len(values) != stages:
            source = 'you gave' if given is not None else f'--cfg={opts.cfg} uses'
            res_list = ','.join(str(shape.start_res * 2 ** i) for i in range(stages))
            raise UserError(f'{option}: {source} {len(values)} values ({",".join(map(str, values))}), but a {resolution}x{resolution} dataset '
                f'needs one per {"transformer" if shape.switch_res else "generator"} stage ({res_list}): {stages} values')
    return shape

def _new_networks(opts, preset, spec, resolution, small_scale):
    """G_kwargs and D_kwargs of new networks, from the preset and the shape options."""
    shape = _generator_shape(opts, preset, resolution)
    channel_base = int(spec.fmaps * 32768)
    synthesis = dnnlib.EasyDict(channel_base=channel_base, channel_max=512, depth=shape.depth, minimum_head=shape.minimum_head,
        num_layers=shape.num_layers, G_dict=shape.g_dict, linformer=shape.linformer) # channel_*: unused by G, kept as published.
    if shape.start_res != 8:
        synthesis.start_resolution = shape.start_res
    G_kwargs = dnnlib.EasyDict(class_name='training.networks_Generator.Generator', z_dim=preset.get('z_dim', 512), w_dim=preset.get('w_dim', 512),
        mapping_kwargs=dnnlib.EasyDict(num_layers=spec.map), synthesis_kwargs=synthesis)
    if shape.switch_res is not None: # Styleformer-C: StyleGAN2 blocks above the switch, as wide as D's.
        G_kwargs.class_name = 'training.networks_StyleformerC.Generator'
        synthesis.switch_resolution = shape.switch_res
    D_kwargs = dnnlib.EasyDict(class_name='training.networks_Discriminator.Discriminator', block_kwargs=dnnlib.EasyDict(),
        mapping_kwargs=dnnlib.EasyDict(), epilogue_kwargs=dnnlib.EasyDict(), channel_base=channel_base, channel_max=512)
    for kwargs in [synthesis, D_kwargs]:
        kwargs.update(precision.REDUCED_PRECISION) # Used with --precision=reduced (and auto on CUDA).
    D_kwargs.update(preset.get('D', {}))
    if small_scale and opts.cfg != 'tiny':
        D_kwargs.architecture = 'orig' # No residual D at CIFAR scale (published).
    return G_kwargs, D_kwargs

def _snapshot_networks(resume):
    """G_kwargs and D_kwargs as the snapshot's networks were built (the dataset still sets
    the resolution, channels and labels)."""
    if resume.data.get('G') is None or resume.data.get('D') is None:
        raise UserError(f'--resume: {resume.path!r} holds no G and D to train on; give the generator shape options to train new networks from it')
    networks = []
    for module in [resume.data['G'], resume.data['D']]:
        kwargs = _easydicts(copy.deepcopy(dict(module.init_kwargs)))
        for dataset_given in ['c_dim', 'img_resolution', 'img_channels']:
            kwargs.pop(dataset_given, None)
        networks.append(dnnlib.EasyDict(class_name=f'{type(module).__module__}.{type(module).__name__}', **kwargs))
    return networks

def _easydicts(value):
    if isinstance(value, dict):
        return dnnlib.EasyDict({k: _easydicts(v) for k, v in value.items()})
    return value

def _network_switches(opts, G_kwargs, D_kwargs):
    """Freeze-D, --fp32 and --nhwc: the same on new networks and on the snapshot's."""
    if opts.freezed:
        D_kwargs.setdefault('block_kwargs', dnnlib.EasyDict()).freeze_layers = opts.freezed
    if opts.fp32:
        for kwargs in [G_kwargs.setdefault('synthesis_kwargs', dnnlib.EasyDict()), D_kwargs]:
            kwargs.update(precision.FULL_PRECISION)
    if opts.nhwc:
        D_kwargs.setdefault('block_kwargs', dnnlib.EasyDict()).fp16_channels_last = True
        if G_kwargs.class_name == 'training.networks_StyleformerC.Generator': # The only generator with convolutions.
            G_kwargs.synthesis_kwargs.fp16_channels_last = True

def _augmentation(opts, given, G_kwargs):
    """The loop kwargs of ADA, a fixed p or none, and the run description's part."""
    if opts.aug == 'fixed' and opts.p is None:
        raise UserError('--aug=fixed needs --p')
    if opts.p is not None and opts.aug != 'fixed':
        raise UserError('--p can only be given with --aug=fixed')
    if 'target' in given and opts.aug != 'ada':
        raise UserError('--target can only be given with --aug=ada')
    if 'augpipe' in given and opts.aug == 'noaug':
        raise UserError('--augpipe cannot be given with --aug=noaug')
    desc = f'-{opts.aug}' if opts.aug != 'ada' else ''
    desc += f'-p{opts.p:g}' if opts.p is not None else ''
    desc += f'-target{opts.target:g}' if 'target' in given else ''
    desc += f'-{opts.augpipe}' if 'augpipe' in given else ''
    kwargs = dnnlib.EasyDict()
    if opts.aug == 'ada':
        kwargs.ada_target = opts.target
    if opts.aug == 'fixed':
        kwargs.augment_p = opts.p
    if opts.aug != 'noaug':
        linformer = bool(G_kwargs.get('synthesis_kwargs', {}).get('linformer', False)) # Published: caps p at 0.7.
        kwargs.augment_kwargs = dnnlib.EasyDict(class_name='training.augment.AugmentPipe', aug_linformer=linformer, **augpipe_specs[opts.augpipe])
    return kwargs, desc

#----------------------------------------------------------------------------
