"""Train a Styleformer GAN (StyleGAN2-ADA training: losses, lazy regularisation, ADA).

The options keep the names and meanings of the published StyleGAN2-ADA / Styleformer
train.py, so their commands run unchanged. Every option is checked before any work: a
mistake gives one message and exit code 2, and no run directory is created.

Processes: `--gpus=N` starts N processes on this machine; under
`torchrun --nnodes=M --nproc-per-node=N train.py ...` each torchrun process is one rank
(the world size comes from torchrun). On a machine without CUDA the ranks use gloo on the CPU.
"""

import json
import os
import re
import signal
import socket
import sys

import click
import torch

import dnnlib
from training import presets

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

def _has_training_state(pkl):
    from training import snapshot
    state = snapshot.training_state_path_for(pkl) if os.path.isfile(pkl) else None
    return state is not None and os.path.isfile(state)

def open_dataset(training_set_kwargs, option='--data'):
    """Construct the dataset once to check it and learn its shape; errors become UserError."""
    try:
        return dnnlib.util.construct_class_by_name(**training_set_kwargs)
    except (IOError, OSError, ValueError, RuntimeError) as err:
        raise UserError(f'{option}: cannot open {training_set_kwargs["path"]!r}: {err}') from None

def setup_training_options(
    gpus=None, snap=None, metrics=None, seed=None, data=None, cond=None, subset=None, mirror=None,
    cfg=None, gamma=None, kimg=None, batch=None, batch_gpu=None, aug=None, p=None, target=None, augpipe=None,
    resume=None, freezed=None, fp32=None, nhwc=None, nobench=None, allow_tf32=None, workers=None, compile=None, # pylint: disable=redefined-builtin
    g_dict=None, num_layers=None, depth=None, minimum_head=None, linformer=None, tick=None,
    world_size=None,
):
    """Options -> (run description, training-loop kwargs). Raises UserError on bad input.
    world_size: the process count when it comes from torchrun instead of --gpus."""
    args = dnnlib.EasyDict()
    cfg = cfg or 'auto'
    if cfg not in presets.CFG_CHOICES:
        raise UserError(f'--cfg={cfg} is not a known configuration; choose one of {", ".join(presets.CFG_CHOICES)}')
    preset = presets.STYLEFORMER_PRESETS.get(cfg, {})

    # General options.
    gpus = 1 if gpus is None else gpus
    if gpus < 1:
        raise UserError('--gpus must be at least 1')
    num_procs = world_size if world_size is not None else gpus
    args.num_gpus = num_procs
    snap = 50 if snap is None else snap
    if snap < 1:
        raise UserError('--snap must be at least 1')
    args.image_snapshot_ticks = args.network_snapshot_ticks = snap
    if metrics is None: # A CPU demo preset should not spend hours on a 50k-image FID at every snapshot.
        metrics = [] if cfg == 'tiny' else ['fid50k_full']
    if metrics:
        try:
            from metrics import metric_main
        except ImportError as err:
            raise UserError(f'--metrics={",".join(metrics)} needs the metrics package, which failed to import ({err}); use --metrics=none') from None
        bad = [m for m in metrics if not metric_main.is_valid_metric(m)]
        if bad:
            raise UserError(f'--metrics: unknown metric {bad[0]!r}; valid: {", ".join(metric_main.list_valid_metrics())}')
    args.metrics = metrics
    args.random_seed = 0 if seed is None else seed

    # Dataset.
    if data is None:
        raise UserError('--data is required: a dataset zip or folder made with dataset_tool.py')
    args.training_set_kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data, use_labels=True, max_size=None, xflip=False)
    args.data_loader_kwargs = dnnlib.EasyDict(pin_memory=True, num_workers=3 if torch.cuda.is_available() else 1, prefetch_factor=2)
    training_set = open_dataset(args.training_set_kwargs)
    resolution = training_set.resolution
    args.training_set_kwargs.resolution = resolution
    args.training_set_kwargs.use_labels = training_set.has_labels
    args.training_set_kwargs.max_size = len(training_set)
    desc = training_set.name
    del training_set
    if cond:
        if not args.training_set_kwargs.use_labels:
            raise UserError('--cond=True needs labels in the dataset (dataset.json); make the dataset with labels or drop --cond')
        desc += '-cond'
    else:
        args.training_set_kwargs.use_labels = False
    if subset is not None:
        if not 1 <= subset <= args.training_set_kwargs.max_size:
            raise UserError(f'--subset must be between 1 and {args.training_set_kwargs.max_size}')
        desc += f'-subset{subset}'
        if subset < args.training_set_kwargs.max_size:
            args.training_set_kwargs.max_size = subset
            args.training_set_kwargs.random_seed = args.random_seed
    if mirror:
        desc += '-mirror'
        args.training_set_kwargs.xflip = True

    # Generator shape: preset, then explicit options; it must fit the data's resolution.
    shape = dnnlib.EasyDict(presets.DEFAULT_SHAPE)
    shape.update({k: preset[k] for k in shape if k in preset})
    if g_dict is not None:
        shape.g_dict = _int_list(g_dict, '--g_dict')
    if num_layers is not None:
        shape.num_layers = _int_list(num_layers, '--num_layers')
    for name, value in [('depth', depth), ('minimum_head', minimum_head)]:
        if value is not None:
            if value < 1:
                raise UserError(f'--{name} must be at least 1')
            shape[name] = value
    if linformer is not None:
        shape.linformer = linformer
    if 'resolution' in preset and preset['resolution'] != resolution and g_dict is None and num_layers is None:
        raise UserError(f'--cfg={cfg} is built for {preset["resolution"]}x{preset["resolution"]} images, but the dataset is '
            f'{resolution}x{resolution}; pick a preset of that size, or give --g_dict and --num_layers')
    start_res = preset.get('start_res')
    if start_res is None: # Resolutions like 48 and 96 start at 12x12.
        start_res = 12 if presets.stage_count(resolution, 8) is None and presets.stage_count(resolution, 12) is not None else 8
    stages = presets.stage_count(resolution, start_res)
    if stages is None:
        raise UserError(f'the dataset is {resolution}x{resolution}, but the generator needs {start_res}x{start_res} times a power of two')
    for option, values, given in [('--g_dict', shape.g_dict, g_dict), ('--num_layers', shape.num_layers, num_layers)]:
        if len(values) != stages:
            source = 'you gave' if given is not None else f'--cfg={cfg} uses'
            res_list = ','.join(str(start_res * 2 ** i) for i in range(stages))
            raise UserError(f'{option}: {source} {len(values)} values ({",".join(map(str, values))}), but a {resolution}x{resolution} dataset '
                f'needs one per generator stage ({res_list}): {stages} values')

    # Base configuration.
    desc += f'-{cfg}'
    spec = presets.base_config(cfg, resolution, num_procs)
    if cfg == 'auto':
        desc += f'{num_procs:d}'
    args.G_kwargs = dnnlib.EasyDict(class_name='training.networks_Generator.Generator', z_dim=preset.get('z_dim', 512), w_dim=preset.get('w_dim', 512),
        mapping_kwargs=dnnlib.EasyDict(num_layers=spec.map), synthesis_kwargs=dnnlib.EasyDict())
    args.D_kwargs = dnnlib.EasyDict(class_name='training.networks_Discriminator.Discriminator', block_kwargs=dnnlib.EasyDict(),
        mapping_kwargs=dnnlib.EasyDict(), epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=spec.mbstd))
    synthesis = args.G_kwargs.synthesis_kwargs
    synthesis.channel_base = args.D_kwargs.channel_base = int(spec.fmaps * 32768)
    synthesis.channel_max = args.D_kwargs.channel_max = 512
    synthesis.depth = shape.depth
    synthesis.minimum_head = shape.minimum_head
    synthesis.num_layers = shape.num_layers
    synthesis.G_dict = shape.g_dict
    synthesis.linformer = shape.linformer
    if start_res != 8:
        synthesis.start_resolution = start_res
    synthesis.num_fp16_res = args.D_kwargs.num_fp16_res = 4 # Mixed precision on GPUs (the networks stay float32 on the CPU).
    synthesis.conv_clamp = args.D_kwargs.conv_clamp = 256   # Keeps float16 activations finite.
    args.D_kwargs.update(preset.get('D', {}))
    args.G_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8)
    args.D_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8)
    args.loss_kwargs = dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=spec.gamma)
    args.total_kimg = spec.kimg
    args.batch_size = spec.mb
    args.batch_gpu = spec.mb // spec.ref_gpus
    args.ema_kimg = spec.ema
    args.ema_rampup = spec.ramp
    if cfg == 'cifar' or preset.get('base') == 'cifar' or cfg == 'tiny':
        args.loss_kwargs.pl_weight = 0          # No path-length regularisation,
        args.loss_kwargs.style_mixing_prob = 0  # no style mixing,
        if cfg != 'tiny':
            args.D_kwargs.architecture = 'orig' # and no residual D at CIFAR scale (published).

    if gamma is not None:
        if not gamma >= 0:
            raise UserError('--gamma must be non-negative')
        desc += f'-gamma{gamma:g}'
        args.loss_kwargs.r1_gamma = gamma
    if kimg is not None:
        if not kimg > 0:
            raise UserError('--kimg must be positive')
        desc += f'-kimg{kimg:g}'
        args.total_kimg = kimg
    if batch is not None:
        if not (batch >= 1 and batch % num_procs == 0):
            raise UserError(f'--batch={batch} must be at least 1 and divisible by the number of GPUs/processes ({num_procs})')
        desc += f'-batch{batch}'
        args.batch_size = batch
        args.batch_gpu = batch // num_procs
        args.D_kwargs.epilogue_kwargs.mbstd_group_size = min(args.batch_gpu, 4)
    if batch_gpu is not None:
        if not 1 <= batch_gpu <= args.batch_size // num_procs:
            raise UserError(f'--batch-gpu must be between 1 and batch / processes = {args.batch_size // num_procs}')
        args.batch_gpu = batch_gpu
        args.D_kwargs.epilogue_kwargs.mbstd_group_size = min(args.D_kwargs.epilogue_kwargs.mbstd_group_size, batch_gpu)
    if args.batch_gpu < 1 or args.batch_size % (args.batch_gpu * num_procs) != 0:
        raise UserError(f'batch {args.batch_size} cannot be split into {num_procs} processes x rounds of {args.batch_gpu}; '
            f'give a --batch divisible by the processes (and by processes x --batch-gpu)')
    if args.batch_gpu % min(args.D_kwargs.epilogue_kwargs.mbstd_group_size, args.batch_gpu) != 0:
        args.D_kwargs.epilogue_kwargs.mbstd_group_size = 1
    if tick is not None:
        if not tick > 0:
            raise UserError('--tick must be positive (kimg per progress line)')
        args.kimg_per_tick = tick
    else:
        args.kimg_per_tick = 4

    # Discriminator augmentation.
    aug = aug or 'ada'
    if aug != 'ada':
        desc += f'-{aug}'
    if aug == 'ada':
        args.ada_target = 0.6
    elif aug == 'fixed' and p is None:
        raise UserError('--aug=fixed needs --p')
    for option, value, needed_aug, field in [('--p', p, 'fixed', 'augment_p'), ('--target', target, 'ada', 'ada_target')]:
        if value is None:
            continue
        if aug != needed_aug:
            raise UserError(f'{option} can only be given with --aug={needed_aug}')
        if not 0 <= value <= 1:
            raise UserError(f'{option} must be between 0 and 1')
        desc += f'-{option[2:]}{value:g}'
        args[field] = value
    if augpipe is None:
        augpipe = 'bgc'
    else:
        if aug == 'noaug':
            raise UserError('--augpipe cannot be given with --aug=noaug')
        desc += f'-{augpipe}'
    if aug != 'noaug':
        from training.augment import augpipe_specs
        args.augment_kwargs = dnnlib.EasyDict(class_name='training.augment.AugmentPipe', **augpipe_specs[augpipe])

    # Transfer learning / resume.
    if resume is not None and resume != 'noresume':
        if not re.match(r'^[a-z]+://', resume) and not os.path.isfile(resume):
            raise UserError(f'--resume: no such file {resume!r}')
        desc += '-resumecustom'
        args.resume_pkl = resume
        if not _has_training_state(resume): # Transfer learning (published): ADA reacts faster,
            args.ada_kimg = 100             # and the loaded G_ema keeps its half-life.
            args.ema_rampup = None
    if freezed is not None:
        if not freezed >= 0:
            raise UserError('--freezed must be non-negative')
        desc += f'-freezed{freezed:d}'
        args.D_kwargs.block_kwargs.freeze_layers = freezed

    # Performance.
    if fp32:
        synthesis.num_fp16_res = args.D_kwargs.num_fp16_res = 0
        synthesis.conv_clamp = args.D_kwargs.conv_clamp = None
    if nhwc:
        args.D_kwargs.block_kwargs.fp16_channels_last = True # The generator has no convolutions.
    if nobench:
        args.cudnn_benchmark = False
    if allow_tf32:
        args.allow_tf32 = True
    args.torch_compile = compile or 'auto'
    if workers is not None:
        if not workers >= 0:
            raise UserError('--workers must be at least 0')
        args.data_loader_kwargs.num_workers = workers

    # Recorded as published (the generator reads them from G_kwargs).
    args.num_layers = shape.num_layers
    args.G_dict = shape.g_dict
    args.depth = shape.depth
    args.minimum_head = shape.minimum_head
    args.linformer = shape.linformer
    return desc, args

#----------------------------------------------------------------------------
# Processes.

def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('localhost', 0))
        return s.getsockname()[1]

def run_training(rank, args, env):
    """Entry point of one rank (spawned, torchrun, or the only process)."""
    os.environ.update(env)
    if rank is not None:
        os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank))
    from torch_utils import distributed
    from training import training_loop
    distributed.init()
    rank = distributed.get_rank()
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
    finally:
        distributed.shutdown()
        logger.close()

def launch(args, num_procs):
    """Run the ranks: in this process, or spawned (one per GPU/CPU share)."""
    if 'WORLD_SIZE' in os.environ or num_procs == 1:
        run_training(None, args, {})
        return
    env = dict(WORLD_SIZE=str(num_procs), MASTER_ADDR='localhost', MASTER_PORT=str(_free_port()))
    torch.set_num_threads(max(torch.get_num_threads() // num_procs, 1))
    context = torch.multiprocessing.start_processes(run_training, args=(args, env), nprocs=num_procs, join=False, start_method='spawn')
    # Ctrl-C reaches the children from the terminal; SIGTERM is passed on. Each child writes
    # a final snapshot and exits on its own.
    def forward(signum, _frame):
        for process in context.processes:
            if process.is_alive():
                os.kill(process.pid, signum)
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN), signal.SIGTERM: signal.signal(signal.SIGTERM, forward)}
    try:
        while not context.join():
            pass
    except torch.multiprocessing.ProcessRaisedException as err:
        print(f'A training process failed:\n{err}', file=sys.stderr)
        sys.exit(1)
    except torch.multiprocessing.ProcessExitedException as err:
        sys.exit(err.exit_code if err.exit_code and err.exit_code > 0 else 1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

def next_run_dir(outdir, desc):
    prev_ids = [int(m.group()) for m in (re.match(r'^\d+', x) for x in (os.listdir(outdir) if os.path.isdir(outdir) else [])) if m]
    return os.path.join(outdir, f'{max(prev_ids, default=-1) + 1:05d}-{desc}')

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
# General options.
@click.option('--outdir', help='Where to save the results', required=True, metavar='DIR')
@click.option('--gpus', help='Number of GPUs (processes) to use [default: 1]', type=int, metavar='INT')
@click.option('--snap', help='Snapshot interval [default: 50 ticks]', type=int, metavar='INT')
@click.option('--metrics', help='Comma-separated list or "none" [default: fid50k_full; none with --cfg=tiny]', type=CommaSeparatedList())
@click.option('--seed', help='Random seed [default: 0]', type=int, metavar='INT')
@click.option('-n', '--dry-run', '--dry_run', 'dry_run', help='Print training options and exit', is_flag=True)
# Dataset.
@click.option('--data', help='Training data (directory or zip)', metavar='PATH', required=True)
@click.option('--cond', help='Train conditional model based on dataset labels [default: false]', type=bool, metavar='BOOL')
@click.option('--subset', help='Train with only N images [default: all]', type=int, metavar='INT')
@click.option('--mirror', help='Enable dataset x-flips [default: false]', type=bool, metavar='BOOL')
# Base config.
@click.option('--cfg', help='Base config or preset [default: auto]', type=click.Choice(presets.CFG_CHOICES))
@click.option('--gamma', help='Override R1 gamma', type=float)
@click.option('--kimg', help='Override training duration (may be fractional)', type=float, metavar='KIMG')
@click.option('--batch', help='Override batch size', type=int, metavar='INT')
@click.option('--batch-gpu', '--batch_gpu', 'batch_gpu', help='Samples per forward pass per GPU (gradient accumulation) [default: batch/gpus]', type=int, metavar='INT')
@click.option('--tick', help='Progress interval in kimg [default: 4]', type=float, metavar='KIMG')
# Discriminator augmentation.
@click.option('--aug', help='Augmentation mode [default: ada]', type=click.Choice(['noaug', 'ada', 'fixed']))
@click.option('--p', help='Augmentation probability for --aug=fixed', type=float)
@click.option('--target', help='ADA target value for --aug=ada', type=float)
@click.option('--augpipe', help='Augmentation pipeline [default: bgc]', type=click.Choice(['blit', 'geom', 'color', 'filter', 'noise', 'cutout', 'bg', 'bgc', 'bgcf', 'bgcfn', 'bgcfnc']))
# Transfer learning.
@click.option('--resume', help='Resume from a network pickle (exact when its training-state file is beside it)', metavar='PKL')
@click.option('--freezed', help='Freeze-D [default: 0 layers]', type=int, metavar='INT')
# Performance.
@click.option('--fp32', help='Disable mixed-precision training', type=bool, metavar='BOOL')
@click.option('--nhwc', help='Use NHWC memory format with FP16', type=bool, metavar='BOOL')
@click.option('--nobench', help='Disable cuDNN benchmarking', type=bool, metavar='BOOL')
@click.option('--allow-tf32', '--allow_tf32', 'allow_tf32', help='Allow PyTorch to use TF32 internally', type=bool, metavar='BOOL')
@click.option('--compile', help='torch.compile G and D [default: auto = on CUDA; on needs g++ on the CPU]', type=click.Choice(['auto', 'on', 'off']))
@click.option('--workers', help='Override number of DataLoader workers', type=int, metavar='INT')
# Styleformer.
@click.option('--g_dict', '--g-dict', 'g_dict', help='Hidden size of the transformer per resolution', type=CommaSeparatedList())
@click.option('--num_layers', '--num-layers', 'num_layers', help='Number of transformer encoder blocks per resolution', type=CommaSeparatedList())
@click.option('--depth', help='Target width per attention head (heads = hidden // depth)', type=int, metavar='INT')
@click.option('--minimum_head', '--minimum-head', 'minimum_head', help='Minimum number of attention heads', type=int, metavar='INT')
@click.option('--linformer', help='Use Linformer at 32x32 and above', type=bool, metavar='BOOL')
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
    """
    world_size = int(os.environ['WORLD_SIZE']) if 'WORLD_SIZE' in os.environ else None
    rank = int(os.environ.get('RANK', '0'))
    run_desc, args = setup_training_options(**config_kwargs, world_size=world_size)

    # Only the rank-0 process of a torchrun job picks and creates the run directory.
    args.run_dir = next_run_dir(outdir, run_desc)
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
    launch(args, args.num_gpus)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
