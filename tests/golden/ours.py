"""Our training loop on the golden scenario (tests/golden/scenario.py): used by
tests/test_training_golden.py, and to check that the scenario's seeds are well conditioned:

    python tests/golden/ours.py --check-seeds    # our two attention paths, case by case
"""

import functools
import os
import sys
import tempfile

import numpy as np
import pytest
import torch

if __name__ == '__main__': # The repository root and tests/, as under pytest.
    _TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:0] = [os.path.dirname(_TESTS), _TESTS]

import dnnlib
from golden import scenario # pylint: disable=wrong-import-position

COMMON = dict(c_dim=0, img_resolution=scenario.RESOLUTION, img_channels=3)

def golden_init(golden, case):
    """{'G': state, 'D': state} (float16 numpy) of the case's initial networks, as recorded."""
    states = {}
    for net in ['G', 'D']:
        prefix = f'init/{golden[f"{case}/init_{net}"]}/'
        states[net] = {key[len(prefix):]: value for key, value in golden.items() if key.startswith(prefix)}
    return states

def loop_kwargs(case, impl, data):
    """Our train.py's options for the case, with the scenario's overrides."""
    from tools.train_options import setup_training_options
    options, per_round = scenario.CASES[case]
    _desc, args = setup_training_options(data=data, metrics=[], seed=0, workers=0, batch=scenario.BATCH, **options, **scenario.SHAPE_OPTIONS)
    args.G_kwargs.update(scenario.NETWORK_OVERRIDES['G'])
    args.G_kwargs.synthesis_kwargs.attention_impl = impl
    args.D_kwargs.update(scenario.NETWORK_OVERRIDES['D'])
    args.G_opt_kwargs.eps = args.D_opt_kwargs.eps = scenario.ADAM_EPS
    args.batch_gpu = per_round
    args.total_kimg, args.kimg_per_tick = scenario.ITERATIONS * scenario.BATCH / 1000, 1000
    args.image_snapshot_ticks = args.network_snapshot_ticks = None
    return args

def run(case, impl, data, run_dir, init):
    """Our loop on the scenario's inputs from the initial states `init` ({'G': state,
    'D': state}, float16 numpy); returns the records."""
    from torch_utils import distributed, misc
    from training import loss as loss_module
    from training import training_loop as loop
    args = loop_kwargs(case, impl, data)
    z, seeds = scenario.latents(case, args.G_kwargs.z_dim), scenario.seed_table(case)
    construct = loop._construct_networks # pylint: disable=protected-access
    def construct_from_init(*construct_args):
        G, D, G_ema = construct(*construct_args)
        states = dict(init, G_ema=scenario.ema_initial_state(init['G'], G))
        for net, module in [('G', G), ('D', D), ('G_ema', G_ema)]:
            module.load_state_dict({name: torch.from_numpy(np.asarray(value, dtype=np.float32)) for name, value in states[net].items()})
        return G, D, G_ema
    accumulate = loss_module.StyleGAN2Loss.accumulate_gradients
    def accumulate_and_inject(self, phase, **kwargs):
        accumulate(self, phase=phase, **kwargs)
        scenario.inject_nonfinite(phase, dict(G=dict(self.G.named_parameters()), D=dict(self.D.named_parameters())))

    with pytest.MonkeyPatch.context() as patch:
        # On the CPU, as recorded: from one seed CUDA's generator draws other noise than the CPU's.
        patch.setattr(distributed, 'device', lambda: torch.device('cpu'))
        # The inputs: reals in index order, the scenario's seeds, latents and initial weights.
        patch.setattr(misc, 'InfiniteSampler', functools.partial(misc.InfiniteSampler, shuffle=False))
        patch.setattr(loop, 'round_seed', lambda _seed, iteration, phase_idx, round_idx: scenario.round_seed(iteration, phase_idx, round_idx))
        patch.setattr(loop, '_latents_and_labels',
            lambda _set, _z_dim, n, seed, device: (torch.from_numpy(z[seeds[seed]]).to(device), torch.zeros([n, 0], device=device)))
        patch.setattr(loop, '_construct_networks', construct_from_init)
        if case == 'nonfinite':
            patch.setattr(loss_module.StyleGAN2Loss, 'accumulate_gradients', accumulate_and_inject)
        names = {net: [n for n, _ in dnnlib.util.construct_class_by_name(**args[f'{net}_kwargs'], **COMMON).named_parameters()] for net in ['G', 'D']}
        with scenario.OptimizerRecorder(names) as recorder:
            result = loop.training_loop(run_dir=str(run_dir), **args)
    records = dict(recorder.records)
    augment = result['augment_pipe']
    records.update(scenario.final_records({net: result[net] for net in ['G', 'D', 'G_ema']}, None if augment is None else augment.p))
    return records

#----------------------------------------------------------------------------

def own_init(case, data):
    """Initial states made like the recorded ones, from our own networks (for the seed check)."""
    args = loop_kwargs(case, 'fast', data)
    states = {}
    for seed, net in enumerate(['G', 'D']):
        torch.manual_seed(seed)
        states[net] = scenario.initial_state(dnnlib.util.construct_class_by_name(**args[f'{net}_kwargs'], **COMMON), seed + 1)
    return states

def check_seeds():
    """Largest relative difference between our fast and math attention paths, per case."""
    worst = {}
    with tempfile.TemporaryDirectory() as workdir:
        data = scenario.write_dataset(os.path.join(workdir, 'data'), scenario.make_reals())
        for case in scenario.CASES:
            init = own_init(case, data)
            records = {}
            for impl in ['fast', 'math']:
                run_dir = os.path.join(workdir, f'{case}-{impl}')
                os.makedirs(run_dir)
                records[impl] = run(case, impl, data, run_dir, init)
            tolerance, scenario.TOLERANCE = scenario.TOLERANCE, 0
            problems = scenario.compare(records['math'], {f'{case}/{k}': v for k, v in records['fast'].items()}, f'{case}/')
            scenario.TOLERANCE = tolerance
            worst[case] = max([float(p.rsplit(' ', 1)[1]) for p in problems if 'relative error' in p], default=0)
    for case, err in worst.items():
        print(f'{case:<20} fast against math: {err:.2e}')
    return max(worst.values())

if __name__ == '__main__':
    if sys.argv[1:] != ['--check-seeds']:
        sys.exit(__doc__)
    torch.set_num_threads(1)
    sys.exit(0 if check_seeds() < 2e-5 else 1)
