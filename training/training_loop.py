"""The GAN training loop (StyleGAN2-ADA schedule) for one process of a possibly distributed run.

Every rank runs `training_loop()` with the same options; torch_utils.distributed tells it
its rank and world size. Gradients are summed over all rounds of all ranks with one
all-reduce per phase and divided by the total round count, so the update equals that of
one process running the same global batch. Randomness inside a round (latents, labels,
noise, style mixing, augmentation) comes from a seed derived from (seed, iteration, phase,
global round index): a run does not depend on how the batch is split over processes, and a
resumed run continues exactly. Only rank 0 writes files.
"""

import copy
import json
import os
import signal
import time

import numpy as np
import PIL.Image
import psutil
import torch

import dnnlib
from torch_utils import distributed
from torch_utils import misc
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix
from training import compile as speed
from training import snapshot
from training.augment import AdaController

#----------------------------------------------------------------------------

class TrainingDivergedError(RuntimeError):
    """A loss or a weight became NaN/inf."""

#----------------------------------------------------------------------------
# Image grids.

def setup_snapshot_image_grid(training_set, random_seed=0):
    """Pick the reals shown in reals.png: a random subset, or rows of one class each."""
    rnd = np.random.RandomState(random_seed)
    gw = int(np.clip(480 // training_set.image_shape[2], 7, 32))
    gh = int(np.clip(270 // training_set.image_shape[1], 4, 32))
    if not training_set.has_labels:
        order = rnd.permutation(len(training_set))
        indices = [order[i % len(order)] for i in range(gw * gh)]
    else:
        groups = {}
        for idx in range(len(training_set)):
            groups.setdefault(tuple(training_set.get_label(idx).flat), []).append(idx)
        keys = sorted(groups)
        for key in keys:
            rnd.shuffle(groups[key])
        indices = []
        for y in range(gh):
            group = groups[keys[y % len(keys)]]
            indices += [group[(y // len(keys) * gw + x) % len(group)] for x in range(gw)]
    images, labels = zip(*[training_set[i] for i in indices])
    return (gw, gh), np.stack(images), np.stack(labels)

def save_image_grid(img, path, drange, grid_size):
    lo, hi = drange
    img = (np.asarray(img, dtype=np.float32) - lo) * (255 / (hi - lo))
    img = np.rint(img).clip(0, 255).astype(np.uint8)
    gw, gh = grid_size
    _n, channels, height, width = img.shape
    img = img.reshape(gh, gw, channels, height, width).transpose(0, 3, 1, 4, 2).reshape(gh * height, gw * width, channels)
    PIL.Image.fromarray(img[:, :, 0] if channels == 1 else img, 'L' if channels == 1 else 'RGB').save(path)

#----------------------------------------------------------------------------
# Helpers.

def round_seed(random_seed, batch_idx, phase_idx, global_round):
    """Seed of one round; independent of the process layout."""
    return int(np.random.SeedSequence([random_seed, batch_idx, phase_idx, global_round]).generate_state(1)[0])

class SkippingSampler(torch.utils.data.Sampler):
    """Yields the indices of `sampler` after the first `skip` ones (resume mid-stream)."""
    def __init__(self, sampler, skip):
        super().__init__()
        self.sampler = sampler
        self.skip = skip

    def __iter__(self):
        it = iter(self.sampler)
        for _ in range(self.skip):
            next(it)
        yield from it

class StopRequest:
    """SIGINT/SIGTERM ask for a final snapshot and a clean exit; a second signal exits now."""
    def __init__(self):
        self.requested = False
        self._previous = {}

    def install(self):
        for sig in [signal.SIGINT, signal.SIGTERM]:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError: # Not the main thread: leave signals alone.
                pass

    def uninstall(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, _frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(f'\nReceived {signal.Signals(signum).name}: saving a snapshot, then exiting (send again to exit now).', flush=True)

def _leave_stop_signals_to_main(_worker_id):
    """Ctrl-C and `kill -TERM -PGID` reach the whole process group: data workers ignore them,
    so that the main process can still write its final snapshot (and then stops them)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

def _any_rank(flag, device):
    """True on all ranks when `flag` is true on any."""
    if distributed.get_world_size() == 1:
        return bool(flag)
    t = torch.tensor(float(flag), device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item())

def _broadcast_module(module):
    """Make every rank hold rank 0's parameters and buffers."""
    if module is None or distributed.get_world_size() == 1:
        return
    for tensor in misc.params_and_buffers(module):
        torch.distributed.broadcast(tensor.data, src=0)

def _average_gradients(params, num_rounds):
    """Sum gradients over ranks and divide by the number of rounds of the global batch.
    Parameters without a gradient keep none (the optimizer then leaves them alone, as with
    a single process); which ones have one is the same on every rank."""
    params = [p for p in params if p.grad is not None]
    if not params or num_rounds * distributed.get_world_size() == 1:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    if distributed.get_world_size() > 1:
        torch.distributed.all_reduce(flat)
    flat /= num_rounds * distributed.get_world_size()
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad = g.view_as(p)

def _all_finite(modules):
    return all(torch.isfinite(t).all() for m in modules if m is not None for t in m.parameters())

#----------------------------------------------------------------------------

def training_loop(
    run_dir                 = '.',      # Output directory (written by rank 0 only).
    training_set_kwargs     = {},       # Options for the training set.
    data_loader_kwargs      = {},       # Options for torch.utils.data.DataLoader.
    G_kwargs                = {},       # Options for the generator.
    D_kwargs                = {},       # Options for the discriminator.
    G_opt_kwargs            = {},       # Options for the generator optimizer.
    D_opt_kwargs            = {},       # Options for the discriminator optimizer.
    augment_kwargs          = None,     # Options for the augmentation pipe; None = no augmentation.
    loss_kwargs             = {},       # Options for the loss.
    metrics                 = [],       # Metrics evaluated at each network snapshot.
    random_seed             = 0,        # Global random seed.
    num_gpus                = None,     # Expected world size (checked when given).
    batch_size              = 4,        # Total batch of one iteration, over all ranks.
    batch_gpu               = 4,        # Samples per forward pass on one rank.
    ema_kimg                = 10,       # Half-life of the G EMA.
    ema_rampup              = None,     # EMA ramp-up coefficient; None = none.
    G_reg_interval          = 4,        # Lazy G regularisation interval; None = not lazy.
    D_reg_interval          = 16,       # Lazy D regularisation interval; None = not lazy.
    augment_p               = 0,        # Initial augmentation probability.
    ada_target              = None,     # ADA target for sign(D(real)); None = fixed p.
    ada_interval            = 4,        # Iterations between p adjustments.
    ada_kimg                = 500,      # kimg for p to move by 1.
    total_kimg              = 25000,    # Training length.
    kimg_per_tick           = 4,        # Progress line interval.
    image_snapshot_ticks    = 50,       # Ticks between image grids; None = no grids at all.
    network_snapshot_ticks  = 50,       # Ticks between network snapshots; None = never.
    resume_pkl              = None,     # Network pickle to start from (exact resume when its state file is beside it).
    cudnn_benchmark         = True,     # torch.backends.cudnn.benchmark.
    allow_tf32              = False,    # TF32 matmul/convolutions on Ampere+.
    torch_compile           = 'off',    # 'on' | 'off' | 'auto': torch.compile G and D (see training/compile.py).
    abort_fn                = None,     # Called once per tick; True stops training (same on all ranks).
    progress_fn             = None,     # Called with (cur_kimg, total_kimg) once per tick.
    **_ignored,                         # Launcher-level options recorded in training_options.json.
):
    # Recorded in snapshots as `training_options` (the callbacks are not options).
    training_options = {k: v for k, v in locals().items() if k not in ('abort_fn', 'progress_fn', '_ignored')}
    training_options.update(_ignored)
    start_time = time.time()
    rank = distributed.get_rank()
    world = distributed.get_world_size()
    device = distributed.device()
    if num_gpus is not None and num_gpus != world:
        raise ValueError(f'training options say {num_gpus} processes, but {world} are running')
    assert batch_size % (batch_gpu * world) == 0, 'batch_size must be a multiple of batch_gpu * world size'
    num_rounds = batch_size // (batch_gpu * world)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
        torch.backends.cudnn.allow_tf32 = allow_tf32
    conv2d_gradfix.enabled = True       # Faster; supports R1's double backward.

    # Resume state, read first: it decides where the data stream starts.
    resume_data = resume_state = None
    if resume_pkl is not None:
        from training import safe_load # The one reader of .pkl files (no code from the file runs).
        if rank == 0:
            print(f'Resuming from "{resume_pkl}"')
        with dnnlib.util.open_url(resume_pkl) as f:
            resume_data = safe_load.load_network_pkl(f)
        if os.path.isfile(resume_pkl):
            resume_state = snapshot.load_training_state(resume_pkl)
        if rank == 0:
            print('Exact resume: training state found beside the snapshot.' if resume_state is not None
                else 'No training state beside the snapshot: fresh optimizers, counters from zero.')
    cur_nimg = resume_state['cur_nimg'] if resume_state else 0

    # Training data, sharded over ranks.
    if rank == 0:
        print('Loading training set...')
    training_set = dnnlib.util.construct_class_by_name(**training_set_kwargs)
    sampler = misc.InfiniteSampler(dataset=training_set, rank=rank, num_replicas=world, seed=random_seed)
    if cur_nimg > 0:
        sampler = SkippingSampler(sampler, skip=cur_nimg // world)
    loader_kwargs = dict(data_loader_kwargs)
    loader_kwargs['pin_memory'] = loader_kwargs.get('pin_memory', False) and device.type == 'cuda'
    if loader_kwargs.get('num_workers', 0) == 0:
        loader_kwargs.pop('prefetch_factor', None)
    else:
        loader_kwargs['worker_init_fn'] = _leave_stop_signals_to_main
    training_set_iterator = iter(torch.utils.data.DataLoader(dataset=training_set, sampler=sampler, batch_size=batch_size // world, **loader_kwargs))
    if rank == 0:
        print()
        print('Num images: ', len(training_set))
        print('Image shape:', training_set.image_shape)
        print('Label shape:', training_set.label_shape)
        print()

    # Networks: identical initialisation on every rank (same seed), then rank 0's copy wins.
    if rank == 0:
        print('Constructing networks...')
    torch.manual_seed(random_seed)
    common_kwargs = dict(c_dim=training_set.label_dim, img_resolution=training_set.resolution, img_channels=training_set.num_channels)
    G = dnnlib.util.construct_class_by_name(**G_kwargs, **common_kwargs).train().requires_grad_(False).to(device)
    D = dnnlib.util.construct_class_by_name(**D_kwargs, **common_kwargs).train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    if resume_data is not None:
        for name, module in [('G', G), ('D', D), ('G_ema', G_ema)]:
            if resume_data.get(name) is not None:
                misc.copy_params_and_buffers(resume_data[name], module, require_all=False)
    if rank == 0:
        z = torch.zeros([batch_gpu, G.z_dim], device=device)
        c = torch.zeros([batch_gpu, G.c_dim], device=device)
        img = misc.print_module_summary(G, [z, c])
        misc.print_module_summary(D, [img, c])

    # Augmentation.
    augment_pipe = ada = None
    if augment_kwargs is not None and (augment_p > 0 or ada_target is not None):
        if rank == 0:
            print('Setting up augmentation...')
        augment_pipe = dnnlib.util.construct_class_by_name(**augment_kwargs).train().requires_grad_(False).to(device)
        augment_pipe.p.copy_(torch.as_tensor(augment_p))
        ada = AdaController(augment_pipe, batch_size=batch_size, target=ada_target, interval=ada_interval, ada_kimg=ada_kimg)
        if resume_state is not None and resume_state.get('ada') is not None:
            ada.load_state_dict(resume_state['ada'])

    for module in [G, D, G_ema, augment_pipe]:
        _broadcast_module(module)

    # Loss and phases. Lazy regularisation: the optimizer steps interval+1 times per interval,
    # so its learning rate and betas are rescaled by c = interval / (interval + 1).
    if rank == 0:
        print('Setting up training phases...')
    compiled = None
    if speed.resolve_compile(torch_compile, device, verbose=rank == 0):
        cache_dir = speed.use_compile_cache()
        if rank == 0:
            print(f'Compiling G and D on first use (cache: {cache_dir})...')
        compiled = speed.CompiledNetworks(G, D, device)
    loss = dnnlib.util.construct_class_by_name(device=device, G=G, D=D, augment_pipe=augment_pipe, compiled=compiled, **loss_kwargs)
    phases = []
    for name, module, opt_kwargs, reg_interval in [('G', G, G_opt_kwargs, G_reg_interval), ('D', D, D_opt_kwargs, D_reg_interval)]:
        opt_kwargs = speed.fast_optimizer_kwargs(opt_kwargs, device)
        if reg_interval is None:
            opt = dnnlib.util.construct_class_by_name(params=module.parameters(), **opt_kwargs)
            phases += [dnnlib.EasyDict(name=name + 'both', module=module, opt=opt, interval=1)]
        else:
            mb_ratio = reg_interval / (reg_interval + 1)
            opt_kwargs = dnnlib.EasyDict(opt_kwargs)
            opt_kwargs.lr = opt_kwargs.lr * mb_ratio
            opt_kwargs.betas = [beta ** mb_ratio for beta in opt_kwargs.betas]
            opt = dnnlib.util.construct_class_by_name(module.parameters(), **opt_kwargs)
            phases += [dnnlib.EasyDict(name=name + 'main', module=module, opt=opt, interval=1)]
            phases += [dnnlib.EasyDict(name=name + 'reg', module=module, opt=opt, interval=reg_interval)]
    optimizers = {'G': phases[0].opt, 'D': phases[-1].opt}

    # Counters (exact continuation when the state file was found).
    cur_tick = 0
    tick_start_nimg = cur_nimg
    batch_idx = 0
    if resume_state is not None:
        for name, opt in optimizers.items():
            opt.load_state_dict(resume_state['optimizers'][name])
        loss.load_state_dict(resume_state['loss'])
        cur_tick = resume_state['cur_tick']
        tick_start_nimg = resume_state['tick_start_nimg']
        batch_idx = resume_state['batch_idx']

    # Image grids.
    grid_size = grid_z = grid_c = None
    if rank == 0 and image_snapshot_ticks is not None:
        print('Exporting sample images...')
        grid_size, images, labels = setup_snapshot_image_grid(training_set=training_set, random_seed=random_seed)
        save_image_grid(images, os.path.join(run_dir, 'reals.png'), drange=[0, 255], grid_size=grid_size)
        grid_z = torch.randn([labels.shape[0], G.z_dim], generator=torch.Generator().manual_seed(random_seed)).to(device).split(batch_gpu)
        grid_c = torch.from_numpy(labels).to(device).split(batch_gpu)
        save_image_grid(_grid_images(G_ema, grid_z, grid_c), os.path.join(run_dir, 'fakes_init.png'), drange=[-1, 1], grid_size=grid_size)

    # Logs.
    stats_collector = training_stats.Collector(regex='.*')
    stats_metrics = dict()
    stats_jsonl = stats_tfevents = None
    if rank == 0:
        stats_jsonl = open(os.path.join(run_dir, 'stats.jsonl'), 'at')
        try:
            import torch.utils.tensorboard as tensorboard
            stats_tfevents = tensorboard.SummaryWriter(run_dir)
        except ImportError as err:
            print('Skipping TensorBoard events:', err)

    if rank == 0:
        print(f'Training for {total_kimg} kimg...')
        print()
    stop = StopRequest()
    stop.install()
    tick_start_time = time.time()
    maintenance_time = tick_start_time - start_time
    last_snapshot_pkl = resume_pkl
    if progress_fn is not None:
        progress_fn(cur_nimg // 1000, total_kimg)
    try:
        while True:
            # Reals for this iteration (shared by all phases, as published).
            with torch.autograd.profiler.record_function('data_fetch'):
                phase_real_img, phase_real_c = next(training_set_iterator)
                # Round k takes rows k, k+R, ...: global round (rank + world * k) then holds the
                # same positions of the global batch whatever the process layout.
                phase_real_img = (phase_real_img.to(device).to(torch.float32) / 127.5 - 1)
                phase_real_img = [phase_real_img[k::num_rounds] for k in range(num_rounds)]
                phase_real_c = [phase_real_c.to(device)[k::num_rounds] for k in range(num_rounds)]

            for phase_idx, phase in enumerate(phases):
                if batch_idx % phase.interval != 0:
                    continue
                phase.opt.zero_grad(set_to_none=True)
                phase.module.requires_grad_(True)
                for round_idx, (real_img, real_c) in enumerate(zip(phase_real_img, phase_real_c)):
                    seed = round_seed(random_seed, batch_idx, phase_idx, rank + world * round_idx)
                    torch.manual_seed(seed)
                    gen_z, gen_c = _latents_and_labels(training_set, G.z_dim, batch_gpu, seed, device)
                    loss.accumulate_gradients(phase=phase.name, real_img=real_img, real_c=real_c, gen_z=gen_z, gen_c=gen_c,
                        gain=phase.interval, cur_nimg=cur_nimg)
                phase.module.requires_grad_(False)
                with torch.autograd.profiler.record_function(phase.name + '_opt'):
                    _average_gradients(phase.module.parameters(), num_rounds)
                    phase.opt.step()

            # G EMA, with ramp-up of its half-life early in training.
            with torch.autograd.profiler.record_function('Gema'):
                ema_nimg = ema_kimg * 1000
                if ema_rampup is not None:
                    ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
                ema_beta = 0.5 ** (batch_size / max(ema_nimg, 1e-8))
                speed.update_ema(G_ema, G, ema_beta)

            cur_nimg += batch_size
            batch_idx += 1

            # ADA: every ada_interval steps, p moves toward making E[sign(D(real))] = ada_target.
            real_signs = loss.drain_real_signs()
            if ada is not None:
                ada.accumulate_sums(*real_signs)
                ada.step()

            # Maintenance once per tick (and right after the first iteration).
            done = cur_nimg >= total_kimg * 1000
            interrupted = _any_rank(stop.requested, device)
            if not done and not interrupted and cur_tick != 0 and cur_nimg < tick_start_nimg + kimg_per_tick * 1000:
                continue

            tick_end_time = time.time()
            _print_status(rank, device, cur_tick, cur_nimg, tick_start_nimg, total_kimg, start_time, tick_start_time, tick_end_time,
                maintenance_time, augment_pipe)

            if not done and not interrupted and abort_fn is not None and abort_fn():
                done = True
                if rank == 0:
                    print('\nAborting...')

            # Nothing non-finite may reach a snapshot.
            if _any_rank(bool(loss.nonfinite) or not _all_finite([G, D]), device):
                where = f'; the last good snapshot is {last_snapshot_pkl}' if last_snapshot_pkl else '; no snapshot was written'
                raise TrainingDivergedError(f'a loss or weight became NaN/inf at kimg {cur_nimg / 1000:.3f}{where}. '
                    'Try a lower learning rate, a higher --gamma, or --fp32.')

            if interrupted:
                state = _training_state(optimizers, loss, ada, cur_nimg, cur_tick, tick_start_nimg, batch_idx)
                pkl = _write_snapshot(rank, run_dir, cur_nimg, G, D, G_ema, augment_pipe, training_set_kwargs, training_options, state)
                if rank == 0:
                    print(f'Saved {pkl}; exiting.')
                return dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, interrupted=True, snapshot_pkl=pkl)

            if rank == 0 and image_snapshot_ticks is not None and (done or cur_tick % image_snapshot_ticks == 0):
                save_image_grid(_grid_images(G_ema, grid_z, grid_c), os.path.join(run_dir, f'fakes{cur_nimg // 1000:06d}.png'), drange=[-1, 1], grid_size=grid_size)

            if network_snapshot_ticks is not None and (done or cur_tick % network_snapshot_ticks == 0):
                state = _training_state(optimizers, loss, ada, cur_nimg, cur_tick + 1, cur_nimg, batch_idx)
                last_snapshot_pkl = _write_snapshot(rank, run_dir, cur_nimg, G, D, G_ema, augment_pipe, training_set_kwargs, training_options, state)
                if metrics:
                    stats_metrics.update(_evaluate_metrics(metrics, G_ema, training_set_kwargs, rank, world, device, run_dir, last_snapshot_pkl))

            # Statistics (reduced over ranks by training_stats).
            stats_collector.update()
            stats_dict = stats_collector.as_dict()
            timestamp = time.time()
            if stats_jsonl is not None:
                stats_jsonl.write(json.dumps(dict(stats_dict, timestamp=timestamp)) + '\n')
                stats_jsonl.flush()
            if stats_tfevents is not None:
                global_step = int(cur_nimg / 1e3)
                for name, value in stats_dict.items():
                    stats_tfevents.add_scalar(name, value.mean, global_step=global_step, walltime=timestamp - start_time)
                for name, value in stats_metrics.items():
                    stats_tfevents.add_scalar(f'Metrics/{name}', value, global_step=global_step, walltime=timestamp - start_time)
                stats_tfevents.flush()
            if progress_fn is not None:
                progress_fn(cur_nimg // 1000, total_kimg)

            cur_tick += 1
            tick_start_nimg = cur_nimg
            tick_start_time = time.time()
            maintenance_time = tick_start_time - tick_end_time
            if done:
                break
    finally:
        stop.uninstall()
        if stats_jsonl is not None:
            stats_jsonl.close()
        if stats_tfevents is not None:
            stats_tfevents.close()

    if rank == 0:
        print('\nExiting...')
    return dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, interrupted=False, snapshot_pkl=last_snapshot_pkl)

#----------------------------------------------------------------------------

def _latents_and_labels(training_set, z_dim, n, seed, device):
    """Latents and conditioning labels of one round, drawn on the CPU from the round seed."""
    z = torch.randn([n, z_dim], generator=torch.Generator().manual_seed(seed))
    rnd = np.random.RandomState(seed % (1 << 32))
    c = np.stack([training_set.get_label(rnd.randint(len(training_set))) for _ in range(n)])
    return z.to(device), torch.from_numpy(c).to(device)

@torch.no_grad()
def _grid_images(G_ema, grid_z, grid_c):
    return torch.cat([G_ema(z=z, c=c, noise_mode='const').cpu() for z, c in zip(grid_z, grid_c)]).numpy()

def _training_state(optimizers, loss, ada, cur_nimg, cur_tick, tick_start_nimg, batch_idx):
    """What an exact resume needs beyond the network pickle."""
    return dict(
        optimizers={name: opt.state_dict() for name, opt in optimizers.items()},
        loss=loss.state_dict(),
        ada=ada.state_dict() if ada is not None else None,
        cur_nimg=cur_nimg, cur_tick=cur_tick, tick_start_nimg=tick_start_nimg, batch_idx=batch_idx,
    )

def _write_snapshot(rank, run_dir, cur_nimg, G, D, G_ema, augment_pipe, training_set_kwargs, training_options, state):
    """Rank 0 writes the snapshot files; every rank returns their path."""
    if distributed.get_world_size() > 1:
        misc.check_ddp_consistency(G, ignore_regex=r'.*\.w_avg')
        misc.check_ddp_consistency(D)
    pkl = snapshot.network_snapshot_path(run_dir, cur_nimg // 1000)
    if rank == 0:
        data = snapshot.network_snapshot_data(dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe), training_set_kwargs, training_options)
        snapshot.save_snapshot(run_dir, cur_nimg // 1000, data, state)
    return pkl

def _evaluate_metrics(metrics, G_ema, training_set_kwargs, rank, world, device, run_dir, snapshot_pkl):
    from metrics import metric_main
    if rank == 0:
        print('Evaluating metrics...')
    results = {}
    G_eval = copy.deepcopy(G_ema).eval().requires_grad_(False)
    for metric in metrics:
        result_dict = metric_main.calc_metric(metric=metric, G=G_eval, dataset_kwargs=training_set_kwargs,
            num_gpus=world, rank=rank, device=device, progress=rank == 0)
        if rank == 0:
            metric_main.report_metric(result_dict, run_dir=run_dir, snapshot_pkl=snapshot_pkl)
        results.update(result_dict.results)
    return results

def _print_status(rank, device, cur_tick, cur_nimg, tick_start_nimg, total_kimg, start_time, tick_start_time, tick_end_time, maintenance_time, augment_pipe):
    """One progress line per tick; the same figures go to the stats."""
    tick_nimg = max(cur_nimg - tick_start_nimg, 1)
    sec_per_kimg = (tick_end_time - tick_start_time) / tick_nimg * 1e3
    eta = max(total_kimg * 1000 - cur_nimg, 0) / 1e3 * sec_per_kimg
    report0 = training_stats.report0
    fields = []
    fields += [f"tick {report0('Progress/tick', cur_tick):<5d}"]
    fields += [f"kimg {report0('Progress/kimg', cur_nimg / 1e3):<8.3f}"]
    fields += [f"time {dnnlib.util.format_time(report0('Timing/total_sec', tick_end_time - start_time)):<12s}"]
    fields += [f"sec/tick {report0('Timing/sec_per_tick', tick_end_time - tick_start_time):<7.1f}"]
    fields += [f"sec/kimg {report0('Timing/sec_per_kimg', sec_per_kimg):<7.2f}"]
    fields += [f"eta {dnnlib.util.format_time(eta):<12s}"]
    fields += [f"maintenance {report0('Timing/maintenance_sec', maintenance_time):<6.1f}"]
    fields += [f"cpumem {report0('Resources/cpu_mem_gb', psutil.Process(os.getpid()).memory_info().rss / 2**30):<6.2f}"]
    if device.type == 'cuda':
        fields += [f"gpumem {report0('Resources/peak_gpu_mem_gb', torch.cuda.max_memory_allocated(device) / 2**30):<6.2f}"]
        torch.cuda.reset_peak_memory_stats(device)
    fields += [f"augment {report0('Progress/augment', float(augment_pipe.p) if augment_pipe is not None else 0):.3f}"]
    report0('Timing/total_hours', (tick_end_time - start_time) / (60 * 60))
    if rank == 0:
        print(' '.join(fields), flush=True)

#----------------------------------------------------------------------------
