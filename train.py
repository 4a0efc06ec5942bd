"""Train a Styleformer GAN (StyleGAN2-ADA training: losses, lazy regularisation, ADA).

The options keep the names and meanings of the published StyleGAN2-ADA / Styleformer
train.py, so their commands run unchanged. Every option is checked before any work: a
mistake gives one message and exit code 2, and no run directory is created.

Processes: `--gpus=N` starts N processes on this machine; under
`torchrun --nnodes=M --nproc-per-node=N train.py ...` each torchrun process is one rank
(the world size comes from torchrun). On a machine without CUDA the ranks use gloo on the CPU.
"""

import copy
import json
import os
import sys

import click
import torch

import dnnlib
from snapshot_io import safe_load
from torch_utils import distributed
from training import compilation, precision, presets, run_dirs, snapshot
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

def _int_list(values, option):
    try:
        values = [int(v) for v in values]
    except ValueError:
        raise UserError(f'{option} takes comma-separated integers, e.g. {option}=1,3,3; got {",".join(values)}') from None
    if not values or min(values) < 1:
        raise UserError(f'{option} needs positive integers, one per generator stage')
    return values

#----------------------------------------------------------------------------

def open_dataset(training_set_kwargs, option='--data'):
    """Construct the dataset once to check it and learn its shape; errors become UserError."""
    try:
        return dnnlib.util.construct_class_by_name(**training_set_kwargs)
    except (IOError, OSError, ValueError, RuntimeError) as err:
        raise UserError(f'{option}: cannot open {training_set_kwargs["path"]!r}: {err}') from None

def setup_training_options(world_size=None, **opts):
    """Options -> (run description, training-loop kwargs). Raises UserError on bad input.
    `opts` are train.py's options by name; the ones not given take the command-line defaults.
    world_size: the process count when it comes from torchrun instead of --gpus."""
    defaults = _command_line_defaults()
    unknown = sorted(set(opts) - set(defaults))
    if unknown:
        raise TypeError(f'setup_training_options: unknown option(s) {", ".join(unknown)}; valid: {", ".join(sorted(defaults))}')
    opts = dnnlib.EasyDict(defaults, **opts)
    if opts.resume == 'noresume': # Published spelling of "no resume".
        opts.resume = None
    if opts.cfg not in presets.CFG_CHOICES:
        raise UserError(f'--cfg={opts.cfg} is not a known configuration; choose one of {", ".join(presets.CFG_CHOICES)}')
    args = dnnlib.EasyDict(num_gpus=world_size if world_size is not None else opts.gpus, random_seed=opts.seed)
    args.image_snapshot_ticks = args.network_snapshot_ticks = opts.snap
    args.metrics = _metrics(opts.metrics, opts.cfg)
    desc, training_set = _dataset_options(args, opts)
    resolution = training_set.resolution
    desc += _hyperparameters(args, opts, resolution)
    resume_data = _open_resume_snapshot(opts.resume) if opts.resume is not None else None
    if resume_data is None or _shape_given(opts):
        _network_options(args, opts, resolution)
    else:
        _networks_from_snapshot(args, resume_data, opts.resume)
    _batch_options(args, opts)
    desc += _augmentation_options(args, opts)
    desc += _resume_options(args, opts)
    _performance_options(args, opts)
    if resume_data is not None and not opts.resume_partial:
        _check_resume_fits(args, resume_data, training_set)
    return desc, args

def _command_line_defaults():
    """Every option's value when not given (the click options own the defaults)."""
    ctx = main.make_context('train.py', ['--outdir=.', '--data=.']) # Placeholders for the two required options.
    return {name: value for name, value in ctx.params.items() if name not in ('outdir', 'dry_run')} | dict(data=None)

def _metrics(metrics, cfg):
    if metrics is None: # A CPU demo preset should not spend hours on a 50k-image FID at every snapshot.
        return [] if cfg == 'tiny' else ['fid50k_full']
    if metrics:
        try:
            from metrics import metric_main
        except ImportError as err:
            raise UserError(f'--metrics={",".join(metrics)} needs the metrics package, which failed to import ({err}); use --metrics=none') from None
        bad = [m for m in metrics if not metric_main.is_valid_metric(m)]
        if bad:
            raise UserError(f'--metrics: unknown metric {bad[0]!r}; valid: {", ".join(metric_main.list_valid_metrics())}')
    return metrics

def _dataset_options(args, opts):
    """Training set and data loader; returns (run description, the opened training set)."""
    if opts.data is None:
        raise UserError('--data is required: a dataset zip or folder made with dataset_tool.py')
    args.training_set_kwargs = dnnlib.EasyDict(class_name=DATASET_CLASS, path=opts.data, use_labels=True, max_size=None, xflip=False)
    num_workers = opts.workers if opts.workers is not None else 3 if torch.cuda.is_available() else 1
    args.data_loader_kwargs = dnnlib.EasyDict(pin_memory=True, num_workers=num_workers, prefetch_factor=2)
    training_set = open_dataset(args.training_set_kwargs)
    dataset = args.training_set_kwargs
    dataset.resolution = training_set.resolution
    dataset.max_size = len(training_set)
    dataset.use_labels = bool(opts.cond)
    desc = training_set.name
    if opts.cond:
        if not training_set.has_labels:
            raise UserError('--cond=True needs labels in the dataset (dataset.json); make the dataset with labels or drop --cond')
        desc += '-cond'
    elif training_set.has_labels and os.environ.get('RANK', '0') == '0':  # Said once, by rank 0 (also under torchrun).
        print(f'Note: {opts.data} has labels, but they are not used; pass --cond=true to train a class-conditional model.')
    if opts.subset is not None:
        if not 1 <= opts.subset <= dataset.max_size:
            raise UserError(f'--subset must be between 1 and {dataset.max_size}')
        desc += f'-subset{opts.subset}'
        if opts.subset < dataset.max_size:
            dataset.max_size = opts.subset
            dataset.random_seed = opts.seed
    if opts.mirror:
        desc += '-mirror'
        dataset.xflip = True
    return desc, training_set

def _generator_shape(opts, resolution):
    """The transformer layout (EasyDict): the preset's, then the explicit options; it must fit
    the data's resolution."""
    preset = presets.STYLEFORMER_PRESETS.get(opts.cfg, {})
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

def _network_options(args, opts, resolution):
    """G and D from the preset and the shape options."""
    shape = _generator_shape(opts, resolution)
    preset = presets.STYLEFORMER_PRESETS.get(opts.cfg, {})
    spec = presets.base_config(opts.cfg, resolution, args.num_gpus)
    synthesis = dnnlib.EasyDict(channel_base=int(spec.fmaps * 32768), channel_max=512, depth=shape.depth, minimum_head=shape.minimum_head,
        num_layers=shape.num_layers, G_dict=shape.g_dict, linformer=shape.linformer) # channel_*: unused by G, kept as published.
    if shape.start_res != 8:
        synthesis.start_resolution = shape.start_res
    args.G_kwargs = dnnlib.EasyDict(class_name='training.networks_Generator.Generator', z_dim=preset.get('z_dim', 512), w_dim=preset.get('w_dim', 512),
        mapping_kwargs=dnnlib.EasyDict(num_layers=spec.map), synthesis_kwargs=synthesis)
    if shape.switch_res is not None: # Styleformer-C: StyleGAN2 blocks above the switch, as wide as D's.
        args.G_kwargs.class_name = 'training.networks_StyleformerC.Generator'
        synthesis.update(switch_resolution=shape.switch_res, channel_base=int(spec.fmaps * 32768), channel_max=512)
    args.D_kwargs = dnnlib.EasyDict(class_name='training.networks_Discriminator.Discriminator', block_kwargs=dnnlib.EasyDict(),
        mapping_kwargs=dnnlib.EasyDict(), epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=spec.mbstd),
        channel_base=int(spec.fmaps * 32768), channel_max=512)
    if opts.batch is not None:
        args.D_kwargs.epilogue_kwargs.mbstd_group_size = min(opts.batch // args.num_gpus, 4)
    for kwargs in [synthesis, args.D_kwargs]:
        kwargs.update(precision.REDUCED_PRECISION) # Used with --precision=reduced (and auto on CUDA).
    args.D_kwargs.update(preset.get('D', {}))
    if _small_scale(opts.cfg) and opts.cfg != 'tiny':
        args.D_kwargs.architecture = 'orig' # No residual D at CIFAR scale (published).

def _small_scale(cfg):
    return cfg in ('cifar', 'tiny') or presets.STYLEFORMER_PRESETS.get(cfg, {}).get('base') == 'cifar'

def _hyperparameters(args, opts, resolution):
    """Optimizers, loss, length, batch and EMA from --cfg and the overrides; returns the run
    description's part."""
    spec = presets.base_config(opts.cfg, resolution, args.num_gpus)
    desc = f'-{opts.cfg}' + (f'{args.num_gpus:d}' if opts.cfg == 'auto' else '')
    args.G_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8)
    args.D_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8)
    args.loss_kwargs = dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=spec.gamma)
    if _small_scale(opts.cfg):
        args.loss_kwargs.pl_weight = 0          # No path-length regularisation,
        args.loss_kwargs.style_mixing_prob = 0  # and no style mixing.
    args.total_kimg, args.batch_size, args.batch_gpu = spec.kimg, spec.mb, spec.mb // spec.ref_gpus
    args.ema_kimg, args.ema_rampup = spec.ema, spec.ramp
    args.kimg_per_tick = opts.tick
    if opts.gamma is not None:
        desc += f'-gamma{opts.gamma:g}'
        args.loss_kwargs.r1_gamma = opts.gamma
    if opts.kimg is not None:
        desc += f'-kimg{opts.kimg:g}'
        args.total_kimg = opts.kimg
    if opts.batch is not None:
        if opts.batch % args.num_gpus != 0:
            raise UserError(f'--batch={opts.batch} must be at least 1 and divisible by the number of GPUs/processes ({args.num_gpus})')
        desc += f'-batch{opts.batch}'
        args.batch_size = opts.batch
        args.batch_gpu = opts.batch // args.num_gpus
    if opts.batch_gpu is not None:
        if not opts.batch_gpu <= args.batch_size // args.num_gpus:
            raise UserError(f'--batch-gpu must be between 1 and batch / processes = {args.batch_size // args.num_gpus}')
        args.batch_gpu = opts.batch_gpu
    if args.batch_gpu < 1 or args.batch_size % (args.batch_gpu * args.num_gpus) != 0:
        raise UserError(f'batch {args.batch_size} cannot be split into {args.num_gpus} processes x rounds of {args.batch_gpu}; '
            f'give a --batch divisible by the processes (and by processes x --batch-gpu)')
    return desc

def _batch_options(args, opts):
    """D's minibatch-std groups must divide the samples of one forward pass."""
    epilogue = args.D_kwargs.setdefault('epilogue_kwargs', dnnlib.EasyDict())
    group = epilogue.get('mbstd_group_size', 4)
    if opts.batch_gpu is not None:
        group = min(group, opts.batch_gpu)
    epilogue.mbstd_group_size = group if args.batch_gpu % min(group, args.batch_gpu) == 0 else 1

def _augmentation_options(args, opts):
    """ADA, a fixed p or none; returns the run description's part."""
    desc = f'-{opts.aug}' if opts.aug != 'ada' else ''
    if opts.aug == 'ada':
        args.ada_target = 0.6
    elif opts.aug == 'fixed' and opts.p is None:
        raise UserError('--aug=fixed needs --p')
    for option, value, needed_aug, field in [('--p', opts.p, 'fixed', 'augment_p'), ('--target', opts.target, 'ada', 'ada_target')]:
        if value is not None:
            if opts.aug != needed_aug:
                raise UserError(f'{option} can only be given with --aug={needed_aug}')
            desc += f'-{option[2:]}{value:g}'
            args[field] = value
    if opts.augpipe is not None:
        if opts.aug == 'noaug':
            raise UserError('--augpipe cannot be given with --aug=noaug')
        desc += f'-{opts.augpipe}'
    if opts.aug != 'noaug':
        from training.augment import augpipe_specs
        linformer = bool(args.G_kwargs.get('synthesis_kwargs', {}).get('linformer', False)) # Published: caps p at 0.7.
        args.augment_kwargs = dnnlib.EasyDict(class_name='training.augment.AugmentPipe', aug_linformer=linformer, **augpipe_specs[opts.augpipe or 'bgc'])
    return desc

def _resume_options(args, opts):
    """Resume / transfer learning and Freeze-D; returns the run description's part."""
    desc = ''
    if opts.resume is not None:
        desc += '-resumecustom'
        args.resume_pkl = opts.resume
        args.resume_partial = opts.resume_partial
        if opts.resume_partial or not snapshot.has_training_state(opts.resume): # Transfer learning (published; a partial
            args.ada_kimg = 100     # load starts fresh too): ADA reacts faster, the loaded G_ema keeps its half-life.
            args.ema_rampup = None
    elif opts.resume_partial:
        raise UserError('--resume-partial needs --resume')
    if opts.keep is not None:
        args.keep_snapshots = opts.keep  # Pruned by training/run_dirs.py after each snapshot.
    if opts.freezed:
        desc += f'-freezed{opts.freezed:d}'
        args.D_kwargs.setdefault('block_kwargs', dnnlib.EasyDict()).freeze_layers = opts.freezed
    return desc

def _performance_options(args, opts):
    if opts.fp32:
        for kwargs in [args.G_kwargs.setdefault('synthesis_kwargs', dnnlib.EasyDict()), args.D_kwargs]:
            kwargs.update(precision.FULL_PRECISION)
    if opts.nhwc:
        args.D_kwargs.setdefault('block_kwargs', dnnlib.EasyDict()).fp16_channels_last = True
        if args.G_kwargs.class_name == 'training.networks_StyleformerC.Generator': # The only generator with convolutions.
            args.G_kwargs.synthesis_kwargs.fp16_channels_last = True
    if opts.nobench:
        args.cudnn_benchmark = False
    if opts.allow_tf32:
        args.allow_tf32 = True
    args.torch_compile = opts.torch_compile
    args.round_gradients = opts.accumulation
    args.loss_kwargs.precision = opts.precision
    on_cpu = not torch.cuda.is_available()
    if opts.precision == 'reduced' and on_cpu and not precision.cpu_has_fast_bfloat16():
        print('Note: this CPU has no bfloat16 matrix hardware (AMX or AVX-512 BF16); --precision=reduced will be slow here.')
    if opts.precision == 'full' and not opts.fp32 and on_cpu and precision.cpu_has_fast_bfloat16():
        print('Note: this CPU has bfloat16 matrix hardware; --precision=reduced runs the mixed-precision blocks in bfloat16, '
              'about 2-3x faster here (the default trains in float32, as published).')

#----------------------------------------------------------------------------
# Resuming.

SHAPE_OPTIONS = ['g_dict', 'num_layers', 'depth', 'minimum_head', 'linformer', 'switch_res']

def _shape_given(opts):
    return any(opts[name] is not None for name in SHAPE_OPTIONS)

def _open_resume_snapshot(resume):
    """The --resume snapshot, read once here: it is checked against the networks to train (and,
    without shape options, gives their architecture) before anything is written."""
    try:
        return safe_load.open_snapshot(resume)
    except safe_load.LoadError as err:
        raise UserError(f'--resume: {err}') from None

def _networks_from_snapshot(args, data, resume):
    """G_kwargs and D_kwargs as the snapshot's networks were built (the dataset still sets
    the resolution, channels and labels)."""
    if data.get('G') is None or data.get('D') is None:
        raise UserError(f'--resume: {resume!r} holds no G and D to train on; give the generator shape options to train new networks from it')
    for key, name in [('G_kwargs', 'G'), ('D_kwargs', 'D')]:
        module = data[name]
        kwargs = dnnlib.EasyDict(copy.deepcopy(dict(module.init_kwargs)))
        for dataset_given in ['c_dim', 'img_resolution', 'img_channels']:
            kwargs.pop(dataset_given, None)
        args[key] = dnnlib.EasyDict(class_name=f'{type(module).__module__}.{type(module).__name__}', **_easydicts(kwargs))

def _check_resume_fits(args, data, training_set):
    """Every tensor of the snapshot's networks must fit the networks to train (unless
    --resume-partial); these are built on the meta device, which allocates nothing."""
    common = dict(c_dim=training_set.label_dim if args.training_set_kwargs.use_labels else 0,
        img_resolution=training_set.resolution, img_channels=training_set.num_channels)
    with torch.device('meta'):
        G = dnnlib.util.construct_class_by_name(**args.G_kwargs, **common)
        D = dnnlib.util.construct_class_by_name(**args.D_kwargs, **common)
    try:
        snapshot.check_resume_fits(data, dict(G=G, D=D, G_ema=G))
    except snapshot.ResumeError as err:
        raise UserError(f'--resume: {err}') from None

def _easydicts(value):
    if isinstance(value, dict):
        return dnnlib.EasyDict({k: _easydicts(v) for k, v in value.items()})
    return value

#----------------------------------------------------------------------------
# Processes.

def run_training(args):
    """The work of one rank, inside its process group (see distributed.launch)."""
    from training import training_loop
    rank = distributed.get_rank()
    args.run_dir = distributed.broadcast_object(args.run_dir)  # Rank 0's pick (see main()).
    logger = dnnlib.util.Logger(file_name=os.path.join(args.run_dir, 'log.txt') if rank == 0 else None, file_mode='a', should_flush=True)
    if rank != 0:
        sys.stdout = open(os.devnull, 'w') # Only rank 0 talks (errors still reach stderr).
        from torch_utils import custom_ops
        custom_ops.verbosity = 'none'
    try:
        training_loop.training_loop(**args)
    except training_loop.TrainingDivergedError as err:
        print(f'Error: training diverged: {err}', file=sys.stderr)
        sys.exit(1)
    except (snapshot.ResumeError, safe_load.LoadError) as err:  # Checked in setup; the file may have changed since.
        print(f'Error: --resume: {err}', file=sys.stderr)
        sys.exit(1)
    finally:
        logger.close()

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
# General options.
@click.option('--outdir', help='Where to save the results', required=True, metavar='DIR')
@click.option('--gpus', help='Number of GPUs (processes) to use', type=click.IntRange(min=1), default=1, show_default=True, metavar='INT')
@click.option('--snap', help='Snapshot interval in ticks', type=click.IntRange(min=1), default=50, show_default=True, metavar='INT')
@click.option('--metrics', help='Comma-separated list or "none"  [default: fid50k_full; none with --cfg=tiny]', type=CommaSeparatedList())
@click.option('--seed', help='Random seed', type=int, default=0, show_default=True, metavar='INT')
@click.option('-n', '--dry-run', '--dry_run', 'dry_run', help='Print training options and exit', is_flag=True)
# Dataset.
@click.option('--data', help='Training data (directory or zip)', metavar='PATH', required=True)
@click.option('--cond', help='Train conditional model based on dataset labels', type=bool, default=False, show_default=True, metavar='BOOL')
@click.option('--subset', help='Train with only N images  [default: all]', type=click.IntRange(min=1), metavar='INT')
@click.option('--mirror', help='Enable dataset x-flips', type=bool, default=False, show_default=True, metavar='BOOL')
# Base config.
@click.option('--cfg', help='Base config or preset', type=click.Choice(presets.CFG_CHOICES), default='auto', show_default=True)
@click.option('--gamma', help='Override R1 gamma', type=click.FloatRange(min=0), metavar='FLOAT')
@click.option('--kimg', help='Override training duration (may be fractional)', type=click.FloatRange(min=0, min_open=True), metavar='KIMG')
@click.option('--batch', help='Override batch size', type=click.IntRange(min=1), metavar='INT')
@click.option('--batch-gpu', '--batch_gpu', 'batch_gpu', help='Samples per forward pass per GPU (gradient accumulation)  [default: batch/gpus]', type=click.IntRange(min=1), metavar='INT')
@click.option('--tick', help='Progress interval in kimg', type=click.FloatRange(min=0, min_open=True), default=4, show_default=True, metavar='KIMG')
# Discriminator augmentation.
@click.option('--aug', help='Augmentation mode', type=click.Choice(['noaug', 'ada', 'fixed']), default='ada', show_default=True)
@click.option('--p', help='Augmentation probability for --aug=fixed', type=click.FloatRange(0, 1), metavar='FLOAT')
@click.option('--target', help='ADA target value for --aug=ada  [default: 0.6]', type=click.FloatRange(0, 1), metavar='FLOAT')
@click.option('--augpipe', help='Augmentation pipeline  [default: bgc]', type=click.Choice(['blit', 'geom', 'color', 'filter', 'noise', 'cutout', 'bg', 'bgc', 'bgcf', 'bgcfn', 'bgcfnc']))
# Transfer learning.
@click.option('--resume', help='Resume from a network pickle, path, URL or model name (exact when its training-state file is beside it; its architecture unless shape options are given); latest: the newest in --outdir', metavar='PKL')
@click.option('--resume-partial', '--resume_partial', 'resume_partial', help='With --resume: load only the tensors that fit (fine-tuning another shape)', is_flag=True)
@click.option('--keep', help='Keep only the newest N network snapshots of the run (and those marked with a .pkl.keep file)', type=click.IntRange(min=1), metavar='N')
@click.option('--freezed', help='Freeze-D: number of frozen layers', type=click.IntRange(min=0), default=0, show_default=True, metavar='INT')
# Performance.
@click.option('--fp32', help='Disable mixed-precision training', type=bool, default=False, show_default=True, metavar='BOOL')
@click.option('--nhwc', help='Use NHWC memory format with FP16', type=bool, default=False, show_default=True, metavar='BOOL')
@click.option('--nobench', help='Disable cuDNN benchmarking', type=bool, default=False, show_default=True, metavar='BOOL')
@click.option('--allow-tf32', '--allow_tf32', 'allow_tf32', help='Allow PyTorch to use TF32 internally', type=bool, default=False, show_default=True, metavar='BOOL')
@click.option('--precision', help='full = float32 everywhere (published); reduced = the --fp32=false blocks in bfloat16/float16 (departs from the published training); auto = reduced on CUDA only', type=click.Choice(precision.PRECISIONS), default='full', show_default=True)
@click.option('--accumulation', help='Gradients of several rounds per process: sum (published; the update depends on the process layout) or mean (it does not)', type=click.Choice(['sum', 'mean']), default='sum', show_default=True)
@click.option('--compile', 'torch_compile', help='torch.compile G and D (auto: off until verified on a GPU; on: compile, not yet verified on a GPU, needs g++ on the CPU)', type=click.Choice(compilation.COMPILE_CHOICES), default='auto', show_default=True)
@click.option('--workers', help='Number of DataLoader workers  [default: 3 with CUDA, else 1]', type=click.IntRange(min=0), metavar='INT')
# Styleformer generator shape (default: --cfg's, or the --resume snapshot's).
@click.option('--g_dict', '--g-dict', 'g_dict', help='Hidden size of the transformer per resolution', type=CommaSeparatedList())
@click.option('--num_layers', '--num-layers', 'num_layers', help='Number of transformer encoder blocks per resolution', type=CommaSeparatedList())
@click.option('--depth', help='Target width per attention head (heads = hidden // depth)', type=click.IntRange(min=1), metavar='INT')
@click.option('--minimum_head', '--minimum-head', 'minimum_head', help='Minimum number of attention heads', type=click.IntRange(min=1), metavar='INT')
@click.option('--linformer', help='Use Linformer at 32x32 and above', type=bool, metavar='BOOL')
@click.option('--switch-res', '--switch_res', 'switch_res', help='Styleformer-C: transformer up to this resolution, StyleGAN2 blocks above  [default: the preset\'s; none: Styleformer]', type=click.IntRange(min=4), metavar='INT')
def main(outdir, dry_run, **config_kwargs):
    """Train a Styleformer GAN with StyleGAN2-ADA's training setup.

    \b
    Examples:
    # CIFAR-10 with the paper's Styleformer-Large generator on 1 GPU.
    python train.py --outdir=~/training-runs --data=~/datasets/cifar10.zip --gpus=1 \\
        --cfg=cifar --g_dict=1024,512,512 --num_layers=1,3,3 --depth=32
    \b
    # The same with a preset.
    python train.py --outdir=~/training-runs --data=~/datasets/cifar10.zip --cfg=styleformer-cifar10
    \b
    # A few minutes on a laptop CPU (Fashion-MNIST at 32x32).
    python train.py --outdir=runs --data=datasets/fashion-mnist-32x32.zip --cfg=tiny --kimg=20 --metrics=fid2k

    \b
    Presets (--cfg) beyond StyleGAN2-ADA's auto, stylegan2, paper256/512/1024, cifar:
      styleformer-cifar10    32x32, hidden 1024,512,512, layers 1,3,3
      styleformer-stl10      48x48 from 12x12, hidden 1024,256,64, layers 1,2,2
      styleformer-celeba64   64x64 with Linformer
      styleformer-church128  128x128 with Linformer
      tiny                   32x32 CPU demo (small G and D, batch 16)
      styleformer-c-clevr256       Styleformer-C, CLEVR 256x256: transformer 8-32, StyleGAN2 blocks 64-256
      styleformer-c-cityscapes256  Styleformer-C, Cityscapes 256x256 (padded as GANformer did)
    """
    world_size = int(os.environ['WORLD_SIZE']) if 'WORLD_SIZE' in os.environ else None
    rank = int(os.environ.get('RANK', '0'))
    if config_kwargs['resume'] == 'latest':  # --resume=latest: see training/run_dirs.py.
        try:
            config_kwargs['resume'] = run_dirs.find_latest_snapshot(outdir)
        except run_dirs.NoSnapshotError as err:
            raise UserError(f'--resume=latest: {err}') from None
    run_desc, args = setup_training_options(**config_kwargs, world_size=world_size)

    # Only rank 0 (this process, or rank 0 of a torchrun job) picks and creates the run
    # directory: under torchrun on several machines each sees its own listing of outdir. The
    # other ranks receive its choice in run_training().
    args.run_dir = run_dirs.next_run_dir(outdir, run_desc) if rank == 0 else None
    if rank == 0:
        print()
        print('Training options:')
        print(json.dumps(args, indent=2))
        print()
        print(f'Output directory:    {args.run_dir}')
        print(f'Training data:       {args.training_set_kwargs.path}')
        print(f'Training duration:   {args.total_kimg} kimg')
        print(f'Number of processes: {args.num_gpus}')
        print(f'Number of images:    {args.training_set_kwargs.max_size}')
        print(f'Image resolution:    {args.training_set_kwargs.resolution}')
        print(f'Conditional model:   {args.training_set_kwargs.use_labels}')
        print(f'Dataset x-flips:     {args.training_set_kwargs.xflip}')
        print()
    if dry_run:
        print('Dry run; exiting.')
        return
    if rank == 0: # Other torchrun ranks never write to the run directory.
        print('Creating output directory...')
        os.makedirs(args.run_dir)
        with open(os.path.join(args.run_dir, 'training_options.json'), 'wt') as f:
            json.dump(args, f, indent=2)
    print('Launching processes...')
    try:
        distributed.launch(run_training, (args,), args.num_gpus)
    except distributed.LaunchError as err:
        print(err, file=sys.stderr)
        sys.exit(err.exit_code)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
