"""Record the golden training iterations and resolved options from the published Styleformer
code (run once; the output is committed, the published code never is).

    git --git-dir=/work/.mirror/Jeeseung-Park+Styleformer/repo archive HEAD | tar -x -C /tmp/published
    python tests/golden/make_training_golden.py --published=/tmp/published

The published loop runs on the CPU, patched at run time in this process only: the CPU patches
of benchmarks/bench_published.py, plus the inputs of tests/golden/scenario.py (initial weights
through its own resume, the order of the reals, the latents, a seed before every round).
Writes tests/data/training_golden.npz and tests/data/published_train_options.json.
"""

import copy
import importlib.util
import json
import os
import pickle
import sys
import tempfile

import numpy as np
import torch

OURS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def _load_by_path(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

scenario = _load_by_path('golden_scenario', os.path.join(OURS, 'tests', 'golden', 'scenario.py'))

#----------------------------------------------------------------------------

class FixedOrderSampler(torch.utils.data.Sampler):
    """Endless repetition of a given index order (stands in for the published InfiniteSampler)."""
    order = list(range(scenario.BATCH))

    def __init__(self, *_args, **_kwargs): # pylint: disable=super-init-not-called
        pass

    def __iter__(self):
        while True:
            yield from self.order

def record_options(published_train, data):
    resolved = {}
    for name, options in scenario.OPTION_CASES.items():
        desc, args = published_train.setup_training_loop_kwargs(data=data, **options)
        resolved[name] = dict(desc=desc, args=json.loads(json.dumps(args)))
    return resolved

def _build(kwargs, common, seed):
    """A published network built from its own seed: equal kwargs give equal networks, whatever
    else the case builds (cases share the initial states of equal networks)."""
    import dnnlib # The published package.
    torch.manual_seed(seed)
    return dnnlib.util.construct_class_by_name(**kwargs, **common).train().requires_grad_(False)

def _initial_networks(args):
    """Published G, D, G_ema of the case from the scenario's initial states; returns
    (networks, {network key: state})."""
    common = dict(c_dim=0, img_resolution=scenario.RESOLUTION, img_channels=3)
    G = _build(args.G_kwargs, common, seed=0)
    D = _build(args.D_kwargs, common, seed=1)
    G_ema = copy.deepcopy(G).eval()
    states = dict(G=scenario.initial_state(G, 1), D=scenario.initial_state(D, 2))
    states['G_ema'] = scenario.ema_initial_state(states['G'], G)
    for net, module in [('G', G), ('D', D), ('G_ema', G_ema)]:
        module.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in states[net].items()})
    keys = {net: scenario.network_key(net, args[f'{net}_kwargs']) for net in ['G', 'D']}
    return dict(G=G, D=D, G_ema=G_ema), {keys[net]: states[net] for net in ['G', 'D']}, keys

def run_case(case, published_loop, published_train, published_loss, workdir):
    import legacy # The published module.
    case_options, per_round = scenario.CASES[case]
    data = os.path.join(workdir, 'data')
    _desc, args = published_train.setup_training_loop_kwargs(data=data, metrics=[], seed=0, batch=scenario.BATCH, **case_options, **scenario.SHAPE_OPTIONS)
    args.G_kwargs.update(scenario.NETWORK_OVERRIDES['G'])
    args.D_kwargs.update(scenario.NETWORK_OVERRIDES['D'])
    args.G_opt_kwargs.eps = args.D_opt_kwargs.eps = scenario.ADAM_EPS
    args.batch_gpu = per_round
    args.total_kimg = scenario.ITERATIONS * scenario.BATCH / 1000
    args.kimg_per_tick = 1000
    args.image_snapshot_ticks, args.network_snapshot_ticks = None, 1000
    args.data_loader_kwargs = dict(num_workers=0)
    args.run_dir = os.path.join(workdir, f'run-{case}')
    os.makedirs(args.run_dir)
    nets, states, keys = _initial_networks(args)
    args.resume_pkl = os.path.join(workdir, f'init-{case}.pkl')
    with open(args.resume_pkl, 'wb') as f:
        pickle.dump(dict(nets, augment_pipe=None, training_set_kwargs=dict(args.training_set_kwargs)), f)

    # Inputs: reals in our round order, the scenario's latents, a seed before every round.
    num_rounds = scenario.rounds(case)
    FixedOrderSampler.order = scenario.round_order(num_rounds)
    z = scenario.latents(case, args.G_kwargs.z_dim)
    num_phases = len(scenario.PHASES)
    z_blocks = iter([torch.from_numpy(z[it].reshape(num_phases * scenario.BATCH, -1)) for it in range(scenario.ITERATIONS)])
    real_randn = torch.randn
    def randn(*size, **kwargs):
        shape = list(size[0]) if len(size) == 1 and isinstance(size[0], (list, tuple)) else list(size)
        if shape == [num_phases * scenario.BATCH, args.G_kwargs.z_dim]:
            return next(z_blocks)
        return real_randn(*size, **kwargs)
    published_loop.torch.randn = randn
    calls = iter([(it, ph, r) for it in range(scenario.ITERATIONS) for ph, phase in enumerate(scenario.PHASES)
        if it % (1 if phase.endswith('main') else {'G': 4, 'D': 16}[phase[0]]) == 0 for r in range(num_rounds)])
    original_accumulate = published_loss.StyleGAN2Loss.accumulate_gradients
    def accumulate_gradients(self, phase, **kwargs):
        it, ph, r = next(calls)
        assert scenario.PHASES[ph] == phase, (phase, scenario.PHASES[ph])
        torch.manual_seed(scenario.round_seed(it, ph, r))
        original_accumulate(self, phase=phase, **kwargs)
        if case == 'nonfinite':
            G_params = {f'mapping.{n}': p for n, p in self.G_mapping.named_parameters()}
            G_params.update({f'synthesis.{n}': p for n, p in self.G_synthesis.named_parameters()})
            scenario.inject_nonfinite(phase, dict(G=G_params, D=dict(self.D.named_parameters())))
    published_loss.StyleGAN2Loss.accumulate_gradients = accumulate_gradients

    names = {net: [n for n, _ in nets[net].named_parameters()] for net in ['G', 'D']}
    try:
        with scenario.OptimizerRecorder(names) as recorder:
            published_loop.training_loop(rank=0, **args)
    finally:
        published_loss.StyleGAN2Loss.accumulate_gradients = original_accumulate
        published_loop.torch.randn = real_randn
    assert next(calls, None) is None, 'the published loop ran fewer rounds than the scenario'

    with open(os.path.join(args.run_dir, 'network-snapshot-000000.pkl'), 'rb') as f:
        final = legacy.load_network_pkl(f)
    augment = final.get('augment_pipe')
    records = dict(recorder.records)
    records.update(scenario.final_records({net: final[net] for net in ['G', 'D', 'G_ema']}, None if augment is None else augment.p))
    out = {f'{case}/{key}': value for key, value in records.items()}
    out = {key: value.astype(np.float32) for key, value in out.items()} # Enough for a 1e-4 comparison.
    out.update({f'init/{key}/{name}': value for key, state in states.items() for name, value in state.items()})
    out.update({f'{case}/init_{net}': np.array(key) for net, key in keys.items()})
    out[f'{case}/kwargs'] = np.array(json.dumps(dict(G_kwargs=args.G_kwargs, D_kwargs=args.D_kwargs)))
    return out

def main():
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--published', required=True, help='Checkout of the published Styleformer code')
    parser.add_argument('--cases', default=','.join(scenario.CASES), help='Comma-separated cases to (re)record, or "none" (default: all)')
    opts = parser.parse_args()
    published = os.path.abspath(opts.published)
    sys.path.insert(0, published)
    os.chdir(published)
    bench = _load_by_path('bench_published', os.path.join(OURS, 'benchmarks', 'bench_published.py'))
    bench._patch_published('cpu') # pylint: disable=protected-access
    import train as published_train
    from training import training_loop as published_loop
    from training import loss as published_loss
    published_loop.misc.InfiniteSampler = FixedOrderSampler
    summary = published_loop.misc.print_module_summary
    # The published summary runs G in training mode on torch.empty() latents, which moves w_avg
    # by uninitialised memory; run it on a copy so that the scenario stays defined.
    published_loop.misc.print_module_summary = lambda module, inputs, **kw: summary(copy.deepcopy(module), inputs, **kw)

    cases = [] if opts.cases == 'none' else opts.cases.split(',')
    golden_path = os.path.join(OURS, 'tests', 'data', 'training_golden.npz')
    golden = dict(np.load(golden_path)) if os.path.isfile(golden_path) else {}
    golden = {key: value for key, value in golden.items() if key.split('/')[0] not in cases} # The others are kept.
    used = {str(golden[k]) for k in golden if k.endswith(('/init_G', '/init_D'))}
    golden = {k: v for k, v in golden.items() if not k.startswith('init/') or k.split('/')[1] in used} # Remade as needed.
    with tempfile.TemporaryDirectory() as workdir:
        scenario.write_dataset(os.path.join(workdir, 'data'), scenario.make_reals())
        options = record_options(published_train, os.path.join(workdir, 'data'))
        with open(os.path.join(os.path.dirname(golden_path), 'published_train_options.json'), 'wt') as f:
            json.dump(options, f, indent=1, sort_keys=True)
        for case in cases:
            print(f'{case}...', flush=True)
            golden.update(run_case(case, published_loop, published_train, published_loss, workdir))
            np.savez_compressed(golden_path, **golden) # After each case: a later failure keeps it.
    print(f'Wrote {len(options)} option sets and {len(golden)} arrays of {len(cases)} cases to {os.path.dirname(golden_path)}')

if __name__ == '__main__':
    main()
