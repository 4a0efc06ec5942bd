"""The GAN training loop (StyleGAN2-ADA schedule) for one process of a possibly distributed run.

Every rank runs `training_loop()` with the same options; torch_utils.distributed tells it
its rank and world size. As published, the gradients of a rank's rounds are summed and then
averaged over ranks with one all-reduce per phase (`round_gradients='sum'`), and non-finite
gradient elements are replaced (NaN by 0, +-inf by +-1e5) before each optimizer step.
`round_gradients='mean'` divides by the rounds too, so that the update no longer depends on
how the global batch is split into processes and rounds. Randomness inside a round (latents,
labels, noise, style mixing, augmentation) comes from a seed derived from (seed, iteration,
phase, global round index), and a resumed run continues exactly. Only rank 0 writes files.
"""

import copy
import json
import os
import signal
import time

import numpy as np
import psutil
import torch

import dnnlib
from torch_utils import distributed
from torch_utils import misc
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix
from training import compilation, ema, optimizer_options
from training import run_dirs, snapshot
from training.images import save_image_grid
from training.augment import AdaController

#----------------------------------------------------------------------------

class TrainingDivergedError(RuntimeError):
    """A weight became NaN/inf."""

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

class _ImageGrid:
    """reals.png once, then fakes*.png of G_ema for fixed latents and labels (rank 0 only)."""
    def __init__(self, training_set, G_ema, batch_gpu, random_seed, run_dir):
        print('Exporting sample images...')
        self.grid_size, images, labels = setup_snapshot_image_grid(training_set=training_set, random_seed=random_seed)
        save_image_grid(images, os.path.join(run_dir, 'reals.png'), drange=[0, 255], grid_size=self.grid_size)
        device = next(G_ema.parameters()).device
        self.z = torch.randn([labels.shape[0], G_ema.z_dim], generator=torch.Generator().manual_seed(random_seed)).to(device).split(batch_gpu)
        self.c = torch.from_numpy(labels).to(device).split(batch_gpu)
        self.save(G_ema, os.path.join(run_dir, 'fakes_init.png'))

    @torch.no_grad()
    def save(self, G_ema, path):
        images = torch.cat([G_ema(z=z, c=c, noise_mode='const').cpu() for z, c in zip(self.z, self.c)]).numpy()
        save_image_grid(images, path, drange=[-1, 1], grid_size=self.grid_size)

#----------------------------------------------------------------------------
# Helpers.

def round_seed(random_seed, batch_idx, phase_idx, global_round):
    """Seed of one round; independent of the process layout."""
    return int(np.random.SeedSequence([random_seed, batch_idx, phase_idx, global_round]).generate_state(1)[0])

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
    round_gradients         = 'sum',    # 'sum' (published) or 'mean' of the rounds of a rank; ranks are averaged.
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
    resume_pkl              = None,     # Network pickle to start from (recorded, never pruned; exact resume with its state file).
    resume_snapshot         = None,     # resume_pkl as read by snapshot_io.resume.read_resume_snapshot: the loop opens no file to resume.
    keep_snapshots          = None,     # Keep only the newest N network snapshots (and marked ones); None = all.
    resume_partial          = False,    # Load only the tensors of resume_pkl that fit (fine-tuning); else all must.
    cudnn_benchmark         = True,     # torch.backends.cudnn.benchmark.
    allow_tf32              = False,    # TF32 matmul/convolutions on Ampere+.
    torch_compile           = 'off',    # 'on' | 'off' | 'auto': torch.compile G and D (see training/compilation.py).
    abort_fn                = None,     # Called once per tick; True stops training (same on all ranks).
    progress_fn             = None,     # Called with (cur_kimg, total_kimg) once per tick.
):
    # Recorded in snapshots as `training_options` (the callbacks and the loaded snapshot are not options).
    training_options = {k: v for k, v in locals().items() if k not in ('abort_fn', 'progress_fn', 'resume_snapshot')}
    if resume_pkl != (resume_snapshot.path if resume_snapshot is not None else None):
        raise ValueError('resume_pkl and resume_snapshot go together: resume_snapshot=snapshot_io.resume.read_resume_snapshot(resume_pkl)')
    timer = _TickTimer()
    rank, world, device = distributed.get_rank(), distributed.get_world_size(), distributed.device()
    num_rounds = _rounds_per_iteration(num_gpus, batch_size, batch_gpu)
    rounds_divisor = {'sum': 1, 'mean': num_rounds}[round_gradients]
    _set_backends(device, cudnn_benchmark, allow_tf32)

    if resume_snapshot is not None:
        distributed.print0(f'Resuming from "{resume_pkl}"')
    training_set = _open_training_set(training_set_kwargs)
    G, D, G_ema = _construct_networks(training_set, G_kwargs, D_kwargs, random_seed, device)
    augment_pipe, ada = _setup_augmentation(augment_kwargs, augment_p, ada_target, ada_interval, ada_kimg, batch_size, device)
    distributed.print0('Setting up training phases...')
    compiled = _compile_networks(torch_compile, G, D, device)
    loss = dnnlib.util.construct_class_by_name(device=device, G=G, D=D, augment_pipe=augment_pipe, compiled=compiled, **loss_kwargs)
    phases, optimizers = _setup_phases(G, D, G_opt_kwargs, D_opt_kwargs, G_reg_interval, D_reg_interval, device)
    state = snapshot.TrainingState(optimizers=optimizers, loss=loss, ada=ada)
    checkpoint = snapshot.Checkpoint(run_dir, state, dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe), training_set_kwargs, training_options)
    if resume_snapshot is not None:
        _restore(checkpoint, resume_snapshot, resume_partial)
    for module in [G, D, G_ema, augment_pipe]:
        distributed.broadcast_module(module)
    if rank == 0:
        _print_summaries(G, D, batch_gpu, device)

    data = _data_iterator(training_set, data_loader_kwargs, batch_size // world, random_seed, start=state.cur_nimg)
    grid = _ImageGrid(training_set, G_ema, batch_gpu, random_seed, run_dir) if rank == 0 and image_snapshot_ticks is not None else None
    stats = _StatsLog(run_dir if rank == 0 else None, timer.start_time)
    distributed.print0(f'Training for {total_kimg} kimg...\n')
    stop = StopRequest()
    stop.install()
    stop_vote = distributed.AnyRankVote() # Several processes: a signal takes effect one step later.
    last_snapshot_pkl = resume_pkl
    nonfinite_grads = torch.zeros([], dtype=torch.int64, device=device) # Replaced gradient elements this tick.
    if progress_fn is not None:
        progress_fn(state.cur_nimg // 1000, total_kimg)
    try:
        while True:
            # One iteration: every due phase over all rounds of the global batch, then the EMA.
            reals = _split_into_rounds(*next(data), num_rounds, device)
            for phase_idx, phase in enumerate(phases):
                if state.batch_idx % phase.interval != 0:
                    continue
                phase.opt.zero_grad(set_to_none=True)
                phase.module.requires_grad_(True)
                for round_idx, (real_img, real_c) in enumerate(reals):
                    seed = round_seed(random_seed, state.batch_idx, phase_idx, rank + world * round_idx)
                    torch.manual_seed(seed)
                    gen_z, gen_c = _latents_and_labels(training_set, G.z_dim, batch_gpu, seed, device)
                    loss.accumulate_gradients(phase=phase.name, real_img=real_img, real_c=real_c, gen_z=gen_z, gen_c=gen_c,
                        gain=phase.interval, cur_nimg=state.cur_nimg)
                phase.module.requires_grad_(False)
                with torch.autograd.profiler.record_function(phase.name + '_opt'):
                    distributed.average_gradients(phase.module.parameters(), rounds_divisor)
                    nonfinite_grads += _replace_nonfinite_gradients(phase.module.parameters())
                    phase.opt.step()
            _update_ema(G_ema, G, ema_kimg, ema_rampup, state.cur_nimg, batch_size)
            state.cur_nimg += batch_size
            state.batch_idx += 1

            # ADA: every ada_interval steps, p moves toward making E[sign(D(real))] = ada_target.
            real_signs = loss.drain_real_signs()
            if ada is not None:
                ada.accumulate_sums(*real_signs)
                ada.step()

            # Maintenance once per tick (and right after the first iteration).
            done = state.cur_nimg >= total_kimg * 1000
            interrupted = stop_vote.poll(stop.requested)
            if not done and not interrupted and state.cur_tick != 0 and state.cur_nimg < state.tick_start_nimg + kimg_per_tick * 1000:
                continue
            timer.end_tick()
            _print_status(state, timer, total_kimg, device, augment_pipe, nonfinite_grads)
            if not done and not interrupted and abort_fn is not None and abort_fn():
                done = True
                distributed.print0('\nAborting...')
            _check_finite([G, D], state.cur_nimg, last_snapshot_pkl)  # Nothing non-finite may reach a snapshot.

            tick = state.cur_tick
            state.cur_tick, state.tick_start_nimg = tick + 1, state.cur_nimg  # Snapshots resume with the next tick.
            if grid is not None and not interrupted and (done or tick % image_snapshot_ticks == 0):
                grid.save(G_ema, os.path.join(run_dir, f'fakes{state.cur_nimg // 1000:06d}.png'))
            metric_results = {}
            if interrupted or (network_snapshot_ticks is not None and (done or tick % network_snapshot_ticks == 0)):
                last_snapshot_pkl = _write_snapshot(checkpoint, keep_snapshots, resume_pkl)
                if metrics and not interrupted:
                    metric_results = _evaluate_metrics(metrics, G_ema, training_set_kwargs, device, run_dir, last_snapshot_pkl)
            stats.write(state.cur_nimg, metric_results)
            if progress_fn is not None:
                progress_fn(state.cur_nimg // 1000, total_kimg)
            timer.start_tick()
            if done or interrupted:
                break
    finally:
        stop.uninstall()
        stats.close()

    distributed.print0(f'Saved {last_snapshot_pkl}; exiting.' if interrupted else '\nExiting...')
    return dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, interrupted=interrupted, snapshot_pkl=last_snapshot_pkl)

#----------------------------------------------------------------------------
# Setup.

def _rounds_per_iteration(num_gpus, batch_size, batch_gpu):
    """Forward passes per rank and iteration (gradient accumulation)."""
    world = distributed.get_world_size()
    if num_gpus is not None and num_gpus != world:
        raise ValueError(f'training options say {num_gpus} processes, but {world} are running')
    if batch_size % (batch_gpu * world) != 0:
        raise ValueError(f'batch_size={batch_size} must be a multiple of batch_gpu * processes = {batch_gpu * world}')
    return batch_size // (batch_gpu * world)

def _set_backends(device, cudnn_benchmark, allow_tf32):
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow_tf32
    conv2d_gradfix.enabled = True # Faster; supports R1's double backward.

def _open_training_set(training_set_kwargs):
    distributed.print0('Loading training set...')
    training_set = dnnlib.util.construct_class_by_name(**training_set_kwargs)
    distributed.print0(f'\nNum images:  {len(training_set)}\nImage shape: {training_set.image_shape}\nLabel shape: {training_set.label_shape}\n')
    return training_set

def _construct_networks(training_set, G_kwargs, D_kwargs, random_seed, device):
    """G, D and G_ema; identical on every rank (same seed; rank 0's copy is broadcast later)."""
    distributed.print0('Constructing networks...')
    torch.manual_seed(random_seed)
    common_kwargs = dict(c_dim=training_set.label_dim, img_resolution=training_set.resolution, img_channels=training_set.num_channels)
    G = dnnlib.util.construct_class_by_name(**G_kwargs, **common_kwargs).train().requires_grad_(False).to(device)
    D = dnnlib.util.construct_class_by_name(**D_kwargs, **common_kwargs).train().requires_grad_(False).to(device)
    return G, D, copy.deepcopy(G).eval()

def _setup_augmentation(augment_kwargs, augment_p, ada_target, ada_interval, ada_kimg, batch_size, device):
    """The augmentation pipe and its ADA controller, or (None, None) without augmentation."""
    if augment_kwargs is None or (augment_p == 0 and ada_target is None):
        return None, None
    distributed.print0('Setting up augmentation...')
    augment_pipe = dnnlib.util.construct_class_by_name(**augment_kwargs).train().requires_grad_(False).to(device)
    augment_pipe.p.copy_(torch.as_tensor(augment_p))
    return augment_pipe, AdaController(augment_pipe, batch_size=batch_size, target=ada_target, interval=ada_interval, ada_kimg=ada_kimg)

def _compile_networks(torch_compile, G, D, device):
    """Compiled G and D for the first-order phases, or None (see training/compilation.py)."""
    if not compilation.resolve_compile(torch_compile, device, verbose=distributed.get_rank() == 0):
        return None
    distributed.print0(f'Compiling G and D on first use (cache: {compilation.use_compile_cache()})...')
    return compilation.CompiledNetworks(G, D, device)

def _setup_phases(G, D, G_opt_kwargs, D_opt_kwargs, G_reg_interval, D_reg_interval, device):
    """One optimizer per network and the phases that step it. Lazy regularisation: the
    optimizer steps interval+1 times per interval, so its learning rate and betas are
    rescaled by c = interval / (interval + 1)."""
    phases, optimizers = [], {}
    for name, module, opt_kwargs, reg_interval in [('G', G, G_opt_kwargs, G_reg_interval), ('D', D, D_opt_kwargs, D_reg_interval)]:
        opt_kwargs = dnnlib.EasyDict(optimizer_options.fast_optimizer_kwargs(opt_kwargs, device))
        if reg_interval is not None:
            mb_ratio = reg_interval / (reg_interval + 1)
            opt_kwargs.lr = opt_kwargs.lr * mb_ratio
            opt_kwargs.betas = [beta ** mb_ratio for beta in opt_kwargs.betas]
        opt = optimizers[name] = dnnlib.util.construct_class_by_name(module.parameters(), **opt_kwargs)
        if reg_interval is None:
            phases += [dnnlib.EasyDict(name=name + 'both', module=module, opt=opt, interval=1)]
        else:
            phases += [dnnlib.EasyDict(name=name + 'main', module=module, opt=opt, interval=1)]
            phases += [dnnlib.EasyDict(name=name + 'reg', module=module, opt=opt, interval=reg_interval)]
    return phases, optimizers

def _print_summaries(G, D, batch_gpu, device):
    z, c = torch.zeros([batch_gpu, G.z_dim], device=device), torch.zeros([batch_gpu, G.c_dim], device=device)
    misc.print_module_summary(D, [misc.print_module_summary(G, [z, c]), c])

def _restore(checkpoint, resume_snapshot, partial):
    exact, skipped = checkpoint.restore(resume_snapshot, partial=partial)
    if distributed.get_rank() == 0:
        for problem in skipped:
            print(f'Not loaded: {problem}')
        if skipped:
            print(f'Partial load: {len(skipped)} tensors not loaded; fresh optimizers, counters from zero.')
        elif exact:
            print('Exact resume: training state found beside the snapshot.')
        else:
            print('No training state beside the snapshot: fresh optimizers, counters from zero.')

def _data_iterator(training_set, data_loader_kwargs, batch_per_rank, random_seed, start):
    """Endless batches of this rank's shard of the data stream, from global position `start`
    (the number of images already trained on, when resuming)."""
    sampler = misc.InfiniteSampler(dataset=training_set, rank=distributed.get_rank(), num_replicas=distributed.get_world_size(),
        seed=random_seed, start=start)
    loader_kwargs = dict(data_loader_kwargs)
    loader_kwargs['pin_memory'] = loader_kwargs.get('pin_memory', False) and distributed.device().type == 'cuda'
    if loader_kwargs.get('num_workers', 0) == 0:
        loader_kwargs.pop('prefetch_factor', None)
    else:
        loader_kwargs['worker_init_fn'] = _leave_stop_signals_to_main
    return iter(torch.utils.data.DataLoader(dataset=training_set, sampler=sampler, batch_size=batch_per_rank, **loader_kwargs))

#----------------------------------------------------------------------------
# One iteration.

def _split_into_rounds(images, labels, num_rounds, device):
    """[(real_img, real_c)] per round. Round k takes rows k, k+R, ...: global round
    (rank + world * k) then holds the same positions of the global batch whatever the
    process layout."""
    with torch.autograd.profiler.record_function('data_fetch'):
        images = images.to(device).to(torch.float32) / 127.5 - 1
        labels = labels.to(device)
        return [(images[k::num_rounds], labels[k::num_rounds]) for k in range(num_rounds)]

def _latents_and_labels(training_set, z_dim, n, seed, device):
    """Latents and conditioning labels of one round, drawn on the CPU from the round seed."""
    z = torch.randn([n, z_dim], generator=torch.Generator().manual_seed(seed))
    rnd = np.random.RandomState(seed % (1 << 32))
    c = np.stack([training_set.get_label(rnd.randint(len(training_set))) for _ in range(n)])
    return z.to(device), torch.from_numpy(c).to(device)

@torch.no_grad()
def _update_ema(G_ema, G, ema_kimg, ema_rampup, cur_nimg, batch_size):
    """G EMA, with ramp-up of its half-life early in training."""
    with torch.autograd.profiler.record_function('Gema'):
        ema_nimg = ema_kimg * 1000
        if ema_rampup is not None:
            ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
        ema.update_ema(G_ema, G, 0.5 ** (batch_size / max(ema_nimg, 1e-8)))

@torch.no_grad()
def _replace_nonfinite_gradients(params):
    """As published before every optimizer step: NaN -> 0, +-inf -> +-1e5, so that one
    overflow does not end the run. Returns the count of replaced elements (on the device)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0
    count = torch.stack([(~torch.isfinite(g)).sum() for g in grads]).sum()
    for g in grads:
        torch.nan_to_num(g, nan=0, posinf=1e5, neginf=-1e5, out=g)
    return count

#----------------------------------------------------------------------------
# Maintenance.

def _check_finite(modules, cur_nimg, last_snapshot_pkl):
    """Raise TrainingDivergedError (on every rank) when a weight became NaN/inf."""
    nonfinite = not all(torch.isfinite(p).all() for m in modules for p in m.parameters())
    if distributed.any_rank(nonfinite):
        where = f'; the last good snapshot is {last_snapshot_pkl}' if last_snapshot_pkl else '; no snapshot was written'
        raise TrainingDivergedError(f'a weight became NaN/inf at kimg {cur_nimg / 1000:.3f}{where}. '
            'Try a lower learning rate, a higher --gamma, or --fp32.')

def _write_snapshot(checkpoint, keep_snapshots, resume_pkl):
    """Rank 0 writes the snapshot files (then prunes old ones to keep_snapshots); every rank returns their path."""
    distributed.check_consistency(checkpoint.modules['G'], ignore_regex=r'.*\.w_avg')
    distributed.check_consistency(checkpoint.modules['D'])
    if distributed.get_rank() == 0:
        checkpoint.save()
        if keep_snapshots is not None:
            run_dirs.prune_snapshots(checkpoint.run_dir, keep_snapshots, protect=[checkpoint.path(), resume_pkl])
    return checkpoint.path()

def _evaluate_metrics(metrics, G_ema, training_set_kwargs, device, run_dir, snapshot_pkl):
    from metrics import metric_main
    rank = distributed.get_rank()
    distributed.print0('Evaluating metrics...')
    results = {}
    G_eval = copy.deepcopy(G_ema).eval().requires_grad_(False)
    for metric in metrics:
        result_dict = metric_main.calc_metric(metric=metric, G=G_eval, dataset_kwargs=training_set_kwargs,
            num_gpus=distributed.get_world_size(), rank=rank, device=device, progress=rank == 0)
        if rank == 0:
            metric_main.report_metric(result_dict, run_dir=run_dir, snapshot_pkl=snapshot_pkl)
        results.update(result_dict.results)
    return results

class _TickTimer:
    """Wall-clock times of the run and of the current tick, for the progress lines."""
    def __init__(self):
        self.start_time = time.time()
        self.tick_start_time = self.tick_end_time = self.start_time
        self.maintenance_time = 0.0     # Spent between the end of the last tick and the start of this one.

    def end_tick(self):
        self.tick_end_time = time.time()

    def start_tick(self):
        self.tick_start_time = time.time()
        self.maintenance_time = self.tick_start_time - self.tick_end_time

def _print_status(state, timer, total_kimg, device, augment_pipe, nonfinite_grads):
    """One progress line per tick; the same figures go to the stats. Resets the tick's count
    of replaced non-finite gradient elements."""
    tick_nimg = max(state.cur_nimg - state.tick_start_nimg, 1)
    tick_time = timer.tick_end_time - timer.tick_start_time
    total_time = timer.tick_end_time - timer.start_time
    sec_per_kimg = tick_time / tick_nimg * 1e3
    eta = max(total_kimg * 1000 - state.cur_nimg, 0) / 1e3 * sec_per_kimg
    report0 = training_stats.report0
    fields = []
    fields += [f"tick {report0('Progress/tick', state.cur_tick):<5d}"]
    fields += [f"kimg {report0('Progress/kimg', state.cur_nimg / 1e3):<8.3f}"]
    fields += [f"time {dnnlib.util.format_time(report0('Timing/total_sec', total_time)):<12s}"]
    fields += [f"sec/tick {report0('Timing/sec_per_tick', tick_time):<7.1f}"]
    fields += [f"sec/kimg {report0('Timing/sec_per_kimg', sec_per_kimg):<7.2f}"]
    fields += [f"eta {dnnlib.util.format_time(eta):<12s}"]
    fields += [f"maintenance {report0('Timing/maintenance_sec', timer.maintenance_time):<6.1f}"]
    fields += [f"cpumem {report0('Resources/cpu_mem_gb', psutil.Process(os.getpid()).memory_info().rss / 2**30):<6.2f}"]
    if device.type == 'cuda':
        fields += [f"gpumem {report0('Resources/peak_gpu_mem_gb', torch.cuda.max_memory_allocated(device) / 2**30):<6.2f}"]
        torch.cuda.reset_peak_memory_stats(device)
    fields += [f"augment {report0('Progress/augment', float(augment_pipe.p) if augment_pipe is not None else 0):.3f}"]
    replaced = report0('Progress/nonfinite_grads', int(nonfinite_grads))
    nonfinite_grads.zero_()
    if replaced:
        fields += [f"nonfinite-grads {replaced}"]
    report0('Timing/total_hours', total_time / (60 * 60))
    distributed.print0(' '.join(fields), flush=True)

class _StatsLog:
    """Per-tick statistics (reduced over ranks by training_stats) into stats.jsonl and
    TensorBoard events of `run_dir`; run_dir None (ranks > 0) only takes part in the reduction."""
    def __init__(self, run_dir, start_time):
        self.start_time = start_time
        self.collector = training_stats.Collector(regex='.*')
        self.jsonl = self.tfevents = None
        if run_dir is not None:
            self.jsonl = open(os.path.join(run_dir, 'stats.jsonl'), 'at')
            try:
                import torch.utils.tensorboard as tensorboard
                self.tfevents = tensorboard.SummaryWriter(run_dir)
            except ImportError as err:
                print('Skipping TensorBoard events:', err)

    def write(self, cur_nimg, metric_results):
        self.collector.update()
        stats_dict = self.collector.as_dict()
        timestamp = time.time()
        if self.jsonl is not None:
            self.jsonl.write(json.dumps(dict(stats_dict, timestamp=timestamp)) + '\n')
            self.jsonl.flush()
        if self.tfevents is not None:
            global_step, walltime = int(cur_nimg / 1e3), timestamp - self.start_time
            for name, value in stats_dict.items():
                self.tfevents.add_scalar(name, value.mean, global_step=global_step, walltime=walltime)
            for name, value in metric_results.items():
                self.tfevents.add_scalar(f'Metrics/{name}', value, global_step=global_step, walltime=walltime)
            self.tfevents.flush()

    def close(self):
        for f in [self.jsonl, self.tfevents]:
            if f is not None:
                f.close()

#----------------------------------------------------------------------------
