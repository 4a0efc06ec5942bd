"""The golden training iterations: one scenario, run by the published training loop once
(tests/golden/make_training_golden.py, which records tests/data/training_golden.npz) and by
ours in every test run (tests/test_training_golden.py).

Both loops get identical inputs: the same initial weights, real images in the same rounds,
the same latents, and torch's RNG seeded identically before each round of each phase (noise,
style mixing, path-length noise and augmentation draws then agree). Each optimizer step is
recorded (gradients as the optimizer sees them, Adam's moments, the weights after the step,
the learning rate and betas), and so are the networks after the last iteration (G, D, G_ema
with w_avg, augment p).

This module is loaded by file path from both codebases, so it imports neither: only numpy,
torch and the standard library.
"""

import json
import zlib

import numpy as np
import torch

RESOLUTION = 32
NUM_REALS = 8
BATCH = 8
ITERATIONS = 1          # The first iteration runs every phase (lazy regularisation included).
PHASES = ['Gmain', 'Greg', 'Dmain', 'Dreg']
SAMPLES_PER_TENSOR = 48 # Elements recorded per tensor, besides its sum, sum of magnitudes, sum of squares and largest magnitude.
TOLERANCE = 1e-4        # Relative to a tensor's scale: its largest magnitude, and at least
SCALE_FLOOR = 0.1       # this times the largest magnitude of its kind (same step, same record) in the network.
# The floor is for sums that cancel almost exactly: the gradient of a noise strength, say, is
# known in float32 only to about 1e-3 of itself (our two attention paths, equal in float64 to
# 1e-15, differ by that much), which says nothing about the network.

# Small networks, so that the iteration runs in seconds and the reference stays small: the
# published classes with the published kwargs, narrower (G: z/w 64, hidden 64,32,16; D: at
# most 64 channels). The training options come from each side's own train.py.
NETWORK_OVERRIDES = dict(G=dict(z_dim=64, w_dim=64), D=dict(channel_base=1024, channel_max=64))
SHAPE_OPTIONS = dict(g_dict=['64', '32', '16'], num_layers=['1', '1', '1'], depth=32)
# Adam's epsilon, raised from the published 1e-8: Adam's first step is lr * g / (|g| + eps),
# at 1e-8 the sign of g, so a gradient element within float32 rounding of zero would move its
# weight by +-lr depending on the order of a sum. The Adam maths is the same at any eps.
ADAM_EPS = 1e-3

# name: (train.py options, samples per round). Rounds = BATCH / samples per round.
CASES = {
    'cifar':            (dict(cfg='cifar', aug='noaug'), 8),                    # R1, EMA with ramp-up, no path length.
    'cifar-2rounds':    (dict(cfg='cifar', aug='noaug'), 4),
    'stylegan2':        (dict(cfg='stylegan2', aug='noaug'), 8),                # Path length, style mixing, EMA without ramp-up.
    'stylegan2-2rounds': (dict(cfg='stylegan2', aug='noaug'), 4),
    'linformer-augcap': (dict(cfg='cifar', linformer=True, aug='fixed', p=1.0, augpipe='color'), 8), # p capped at 0.7.
    'nonfinite':        (dict(cfg='cifar', aug='noaug'), 8),                    # NaN and +-inf gradients (INJECT).
}

# The `nonfinite` case overwrites these gradient elements after every round of these phases.
INJECT = {'Gmain': ('G', 'mapping.fc0.weight'), 'Dmain': ('D', 'b32.conv0.weight')}
INJECTED_VALUES = [float('nan'), float('inf'), float('-inf')]

# Command lines whose resolved training options must equal the published train.py's.
OPTION_CASES = {
    'auto': dict(),
    'auto-linformer': dict(linformer=True),
    'auto-batch-gamma': dict(batch=16, gamma=0.5),
    'cifar': dict(cfg='cifar'),
    'cifar-linformer': dict(cfg='cifar', linformer=True),
    'cifar-mirror-fixed': dict(cfg='cifar', mirror=True, aug='fixed', p=0.3),
    'stylegan2': dict(cfg='stylegan2'),
    'stylegan2-noaug-batch': dict(cfg='stylegan2', aug='noaug', batch=8),
    'paper256': dict(cfg='paper256'),
    'paper256-linformer-gamma': dict(cfg='paper256', linformer=True, gamma=2.0, mirror=True),
    'paper512-target': dict(cfg='paper512', target=0.7, augpipe='bg'),
}

#----------------------------------------------------------------------------
# Inputs.

def make_reals():
    """NUM_REALS smooth RGB images (uint8 [N, 3, R, R]), different from one another."""
    rnd = np.random.RandomState(1)
    coarse = rnd.uniform(0, 255, size=[NUM_REALS, 3, 4, 4])
    images = coarse.repeat(RESOLUTION // 4, axis=2).repeat(RESOLUTION // 4, axis=3)
    images += rnd.normal(0, 20, size=images.shape)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)

def write_dataset(folder, reals):
    """The reals as PNG files that both codebases' ImageFolderDataset read in this order."""
    import os
    import PIL.Image
    os.makedirs(folder, exist_ok=True)
    for i, image in enumerate(reals):
        PIL.Image.fromarray(image.transpose(1, 2, 0), 'RGB').save(os.path.join(folder, f'img{i:05d}.png'))
    return folder

def rounds(case):
    return BATCH // CASES[case][1]

def round_order(num_rounds):
    """Dataset indices of one batch in the order that puts the same images into each round
    on both sides: ours gives round k the batch rows k, k+R, ...; the published loop gives
    round k the k-th contiguous chunk."""
    return [i for k in range(num_rounds) for i in range(k, BATCH, num_rounds)]

# Float32 results of some draws are ill-conditioned: a style-mixing cutoff of 1, say, made
# our two attention paths (equal to 1e-15 in float64) differ by 2e-3 in one gradient. The
# offset picks seeds where they agree to 2e-5 (tests/golden/make_training_golden.py --check-seeds).
SEED_OFFSET = 100

def round_seed(iteration, phase_idx, round_idx):
    return SEED_OFFSET + 1000 * iteration + 10 * phase_idx + round_idx + 1

def latents(case, z_dim):
    """float32 [ITERATIONS, len(PHASES), rounds, samples per round, z_dim]."""
    rnd = np.random.RandomState(zlib.crc32(case.encode()))
    return rnd.standard_normal([ITERATIONS, len(PHASES), rounds(case), CASES[case][1], z_dim]).astype(np.float32)

def seed_table(case):
    """round seed -> (iteration, phase index, round index)."""
    return {round_seed(it, ph, r): (it, ph, r) for it in range(ITERATIONS) for ph in range(len(PHASES)) for r in range(rounds(case))}

def _tensors(module):
    """[(first name, all names, learned?)] of the module's state-dict tensors, names in
    alphabetical order. Linformer's proj_weight is one tensor under two names; learned means
    a parameter or w_avg (what training changes)."""
    params = {id(p) for p in module.parameters()}
    groups = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        groups.setdefault(id(tensor), (tensor, []))[1].append(name)
    return [(min(names), sorted(names), id(tensor) in params or names[0].endswith('w_avg')) for tensor, names in groups.values()]

def initial_state(module, seed):
    """The module's state dict with its learned entries moved off their initial values, as
    float16 numpy arrays (the values are float16 numbers, so the stored inputs are small and
    exact). Other buffers (filters, constant noise) stay as built."""
    gen = torch.Generator().manual_seed(seed)
    values = module.state_dict()
    state = {}
    for first, names, learned in _tensors(module):
        value = values[first].detach().float()
        if learned:
            value = value + 0.05 * torch.randn(value.shape, generator=gen)
        state.update({name: value.half().numpy() for name in names})
    return state

def ema_initial_state(G_state, G):
    """G_ema's initial state: G's (`G_state` of the network `G`), with its learned entries
    moved a little further."""
    state = dict(G_state)
    for first, names, learned in _tensors(G):
        if learned:
            noise = torch.randn(G_state[first].shape, generator=torch.Generator().manual_seed(zlib.crc32(first.encode()))).numpy()
            state.update({name: np.asarray(G_state[first].astype(np.float32) + 0.01 * noise, dtype=np.float16) for name in names})
    return state

def network_key(net, kwargs):
    """Name of a network's initial state in the golden file: cases that build the same
    network share it."""
    return f'{net}-{zlib.crc32(json.dumps(kwargs, sort_keys=True).encode()):08x}'

def inject_nonfinite(phase, params):
    """Overwrite the INJECT gradient elements of `phase` (params: {'G': {name: parameter}, 'D': ...})."""
    if phase not in INJECT:
        return
    net, name = INJECT[phase]
    grad = params[net][name].grad
    grad.view(-1)[:len(INJECTED_VALUES)] = torch.tensor(INJECTED_VALUES, dtype=grad.dtype)

#----------------------------------------------------------------------------
# Records.

def summary(name, tensor):
    """float64 [SAMPLES_PER_TENSOR or fewer samples, sum, sum of magnitudes, sum of squares, largest magnitude]."""
    flat = tensor.detach().to(torch.float64).flatten().cpu().numpy()
    count = min(SAMPLES_PER_TENSOR, flat.size)
    picks = np.random.RandomState(zlib.crc32(name.encode())).choice(flat.size, count, replace=False)
    return np.concatenate([flat[np.sort(picks)], [flat.sum(), np.abs(flat).sum(), np.square(flat).sum(), np.abs(flat).max(initial=0)]])

class OptimizerRecorder:
    """Records every optimizer step through torch's global optimizer hooks. The network is
    told by its parameter count (`names`: {'G': [...], 'D': [...]} in parameters() order)."""

    def __init__(self, names):
        assert len(names['G']) != len(names['D'])
        self.names = names
        self.records = {}
        self.steps = {'G': 0, 'D': 0}
        self._handles = []

    def __enter__(self):
        from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
        self._handles = [register_optimizer_step_pre_hook(self._before), register_optimizer_step_post_hook(self._after)]
        return self

    def __exit__(self, *_exc):
        for handle in self._handles:
            handle.remove()

    def _params(self, opt):
        params = [p for group in opt.param_groups for p in group['params']]
        net = 'G' if len(params) == len(self.names['G']) else 'D'
        return net, list(zip(self.names[net], params))

    def _before(self, opt, _args, _kwargs):
        net, params = self._params(opt)
        prefix = f'{net}{self.steps[net]}'
        self.records[f'{prefix}/has_grad'] = np.array([p.grad is not None for _, p in params])
        for name, p in params:
            if p.grad is not None:
                self.records[f'{prefix}/grad/{name}'] = summary(name, p.grad)

    def _after(self, opt, _args, _kwargs):
        net, params = self._params(opt)
        prefix = f'{net}{self.steps[net]}'
        group = opt.param_groups[0]
        self.records[f'{prefix}/hparams'] = np.array([group['lr'], *group['betas'], group['eps']], dtype=np.float64)
        for name, p in params:
            self.records[f'{prefix}/param/{name}'] = summary(name, p)
            state = opt.state.get(p, {})
            for key in ['exp_avg', 'exp_avg_sq']:
                if key in state:
                    self.records[f'{prefix}/{key}/{name}'] = summary(name, state[key])
        self.steps[net] += 1

def final_records(modules, augment_p):
    """The networks after the last iteration: {'G': G, 'D': D, 'G_ema': G_ema}."""
    records = {}
    for net, module in modules.items():
        for name, value in module.state_dict().items():
            records[f'final/{net}/{name}'] = summary(name, value)
    records['final/augment_p'] = np.array([np.nan if augment_p is None else float(augment_p)])
    return records

#----------------------------------------------------------------------------
# Comparison.

def _kind(key):
    """The record kind of a key, e.g. 'D0/grad' or 'final/G'."""
    return '/'.join(key.split('/')[:2])

def compare(ours, golden, prefix):
    """Differences beyond TOLERANCE between our records and the golden ones (of one case),
    as readable lines; [] when they agree."""
    problems = []
    keys = {k[len(prefix):] for k in golden if k.startswith(prefix)} - {'kwargs', 'init_G', 'init_D'} # Inputs, not records.
    missing = sorted(keys - set(ours))
    extra = sorted(set(ours) - keys)
    if missing or extra:
        problems.append(f'records differ: only in the published loop {missing[:5]}, only in ours {extra[:5]}')
    exact = {k for k in keys if golden[prefix + k].dtype == bool or k.endswith('hparams') or k == 'final/augment_p'}
    kind_max = {}
    for key in keys - exact:
        kind_max[_kind(key)] = max(kind_max.get(_kind(key), 0), golden[prefix + key][-1])
    for key in sorted(keys & set(ours)):
        ref, got = golden[prefix + key], ours[key]
        if key in exact:
            if ref.shape != got.shape or not np.allclose(got, ref, rtol=1e-6, atol=0, equal_nan=True):
                problems.append(f'{key}: {got} != {ref}')
            continue
        scale = max(ref[-1], SCALE_FLOOR * kind_max[_kind(key)], 1e-12)
        diff = np.abs(got - ref)
        err = max(diff[:-4].max(initial=0) / scale,               # The samples,
            diff[-4:-2].max() / max(ref[-3], scale),              # the sum and the sum of magnitudes,
            diff[-2] / max(ref[-2], scale ** 2),                  # the sum of squares,
            diff[-1] / scale)                                     # the largest magnitude.
        if not err <= TOLERANCE:
            problems.append(f'{key}: relative error {err:.3g}')
    return problems
