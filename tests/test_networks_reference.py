"""Published-network cases: our networks, built with the published kwargs and loaded with the
published state dicts, must compute the published outputs (on both attention paths)."""

import json
import os

import numpy as np
import pytest
import torch

import dnnlib

CASES_PATH = os.path.join(os.path.dirname(__file__), 'data', 'styleformer_cases.npz')
TOLERANCE = 1e-4 # Of the output's scale; a semantic difference is far larger than float32 rounding.


def _load_cases():
    with np.load(CASES_PATH) as data:
        meta = json.loads(str(data['__meta__']))
        arrays = {key: data[key] for key in data.files if key != '__meta__'}
    cases = {}
    for name, kwargs in meta.items():
        state = {k[len(f'{name}/state/'):]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith(f'{name}/state/')}
        io = {k[len(f'{name}/io/'):]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith(f'{name}/io/')}
        cases[name] = (kwargs, state, io)
    return cases


CASES = _load_cases()
G_CASES = sorted(name for name in CASES if name.startswith('g_'))
D_CASES = sorted(name for name in CASES if name.startswith('d_'))


def _build(name):
    kwargs, state, io = CASES[name]
    net = dnnlib.util.construct_class_by_name(**kwargs).eval()
    net.load_state_dict(state, strict=True)
    return net, io


def _assert_close(ours, ref, what):
    assert ours.shape == ref.shape, f'{what}: shape {list(ours.shape)} != {list(ref.shape)}'
    err = (ours - ref).abs().max().item() / ref.abs().max().item()
    assert err < TOLERANCE, f'{what}: relative max error {err:.3g}'


def test_cases_present():
    assert len(G_CASES) >= 2 and len(D_CASES) >= 2
    assert any(CASES[name][0]['synthesis_kwargs']['linformer'] for name in G_CASES)


@pytest.mark.parametrize('impl', ['fast', 'math'])
@pytest.mark.parametrize('name', G_CASES)
def test_generator_case(name, impl):
    G, io = _build(name)
    with torch.no_grad():
        _assert_close(G.mapping(io['z'], io['c'], truncation_psi=0.7), io['ws'], f'{name} ws')
        _assert_close(G.mapping(io['z'], io['c'], truncation_psi=0.5, truncation_cutoff=3), io['ws_cut'], f'{name} ws_cut')
        _assert_close(G.synthesis(io['ws'], noise_mode='const', attention_impl=impl), io['img'], f'{name} img ({impl})')
        _assert_close(G(io['z'], io['c'], noise_mode='const', attention_impl=impl), io['img_psi1'], f'{name} img_psi1 ({impl})')


@pytest.mark.parametrize('name', D_CASES)
def test_discriminator_case(name):
    D, io = _build(name)
    with torch.no_grad():
        _assert_close(D(io['img'], io['c']), io['logits'], f'{name} logits')


def test_state_dict_keys_round_trip():
    # Our own state dict has exactly the published keys (including proj_weight registered twice).
    for name in G_CASES + D_CASES:
        net, _ = _build(name)
        assert set(net.state_dict().keys()) == set(CASES[name][1].keys()), name
