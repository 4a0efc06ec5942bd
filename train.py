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
import sys

import click
from click.core import ParameterSource

import dnnlib
from torch_utils import distributed
from training import run_dirs
from tools.train_options import UserError, command_options, read_resume, setup_training_options

#----------------------------------------------------------------------------
# Processes.

def run_training(args, resume_snapshot):
    """The work of one rank, inside its process group (see distributed.launch); resume_snapshot:
    the --resume snapshot as main() read it, or None."""
    from training import training_loop
    rank = distributed.get_rank()
    args.run_dir = distributed.broadcast_object(args.run_dir)  # Rank 0's pick (see main()).
    logger = dnnlib.util.Logger(file_name=os.path.join(args.run_dir, 'log.txt') if rank == 0 else None, file_mode='a', should_flush=True)
    if rank != 0:
        sys.stdout = open(os.devnull, 'w') # Only rank 0 talks (errors still reach stderr).
        from torch_utils import custom_ops
        custom_ops.verbosity = 'none'
    try:
        training_loop.training_loop(**args, resume_snapshot=resume_snapshot)
    except training_loop.TrainingDivergedError as err:
        print(f'Error: training diverged: {err}', file=sys.stderr)
        sys.exit(1)
    finally:
        logger.close()

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@command_options  # tools/train_options.py: the options and their defaults.
def main(outdir, dry_run, **options):
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
    ctx = click.get_current_context()
    given = {name: value for name, value in options.items() if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}
    if given.get('resume') == 'latest':  # --resume=latest: see training/run_dirs.py.
        try:
            given['resume'] = run_dirs.find_latest_snapshot(outdir)
        except run_dirs.NoSnapshotError as err:
            raise UserError(f'--resume=latest: {err}') from None
    # Read once, here: checked against the networks to train before anything is written, then handed to every rank.
    resume_snapshot = read_resume(given['resume']) if given.get('resume') is not None else None
    run_desc, args = setup_training_options(world_size=world_size, resume_snapshot=resume_snapshot, **given)

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
        distributed.launch(run_training, (args, resume_snapshot), args.num_gpus)
    except distributed.LaunchError as err:
        print(err, file=sys.stderr)
        sys.exit(err.exit_code)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
