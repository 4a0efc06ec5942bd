"""Styleformer-C (training/networks_StyleformerC.py): layout and ws count, reuse of the two parent
networks, fast against math attention, mixed precision, save/load through the safe loader
(pickle and safetensors), the tools that show attention, and ONNX export."""

import json
import pickle

import numpy as np
import onnxruntime
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import attention_maps
import calc_metrics
import dataset_tool
import gen_video
import generate
import legacy
import projector
import style_mixing
from explorer_app.render import Renderer
from snapshot_io import model_zoo, onnx_export, safe_load
from tools import rendering
from training import images
from training import networks as conv_networks
from training import networks_Generator as former
from training.networks_StyleformerC import Generator

from network_helpers import move_off_init, rel_err as _rel_err

#----------------------------------------------------------------------------

def _small_G(seed=0, c_dim=0, img_resolution=32, **synthesis):
    torch.manual_seed(seed)
    kwargs = dict(switch_resolution=16, depth=8, minimum_head=1, num_layers=[1, 2], G_dict=[16, 8],
                  channel_base=256, channel_max=16, conv_clamp=256)
    kwargs.update(synthesis)
    G = Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=img_resolution, img_channels=3,
                  mapping_kwargs=dict(num_layers=2), synthesis_kwargs=kwargs).eval()
    return move_off_init(G)

#----------------------------------------------------------------------------
# Layout.

def test_layout_reuses_both_parents_and_counts_one_w_per_layer():
    G = _small_G(img_resolution=64)
    synthesis = G.synthesis
    assert type(synthesis.transformer) is former.SynthesisNetwork and synthesis.transformer.img_resolution == 16
    assert all(type(getattr(synthesis, f'b{res}')) is conv_networks.SynthesisBlock for res in [32, 64])
    assert synthesis.conv_resolutions == [32, 64]
    assert synthesis.block_names == ['transformer.b8_0', 'transformer.b16_0', 'transformer.b16_1']
    # 3 transformer blocks + 2 convolutions at 32 and at 64 + the final toRGB.
    assert G.num_ws == synthesis.num_ws == G.mapping.num_ws == 3 + 4 + 1
    # The parts keep their parents' state-dict names: transformer.* are a Styleformer synthesis network's.
    alone = former.SynthesisNetwork(w_dim=8, img_resolution=16, img_channels=3, depth=8, minimum_head=1, num_layers=[1, 2],
                                    G_dict=[16, 8], conv_clamp=256)
    prefix = 'synthesis.transformer.'
    assert {k[len(prefix):] for k in G.state_dict() if k.startswith(prefix)} == set(alone.state_dict())
    # The hand-over: the tokens of the 16x16 stage (8 wide) enter the first convolution.
    assert synthesis.b32.conv0.weight.shape[1] == 8

    img = G(torch.randn(2, G.z_dim), None, noise_mode='const')
    assert img.shape == (2, 3, 64, 64) and img.dtype == torch.float32 and torch.isfinite(img).all()


def test_every_w_is_read():
    G = _small_G()
    ws = G.mapping(torch.randn(1, G.z_dim), None)
    with torch.no_grad():
        ref = G.synthesis(ws, noise_mode='const')
        for idx in range(G.num_ws):
            changed = ws.clone()
            changed[:, idx] += 1
            assert (G.synthesis(changed, noise_mode='const') - ref).abs().max() > 1e-4, f'w {idx} is not read'


def test_bad_configurations_and_inputs_give_clear_errors():
    with pytest.raises(ValueError, match='switch_resolution=32 times 2, 4, 8'):
        _small_G(switch_resolution=32, num_layers=[1, 1, 1], G_dict=[8, 8, 8])
    G = _small_G()
    with pytest.raises(ValueError, match=r'ws has shape \[2, 5, 8\], expected \[\*, 6, 8\]'):
        G.synthesis(torch.zeros(2, 5, 8))
    with pytest.raises(ValueError, match='noise_mode'):
        G.synthesis(torch.zeros(2, 6, 8), noise_mode='off')
    with pytest.raises(ValueError, match='attention implementation'):
        G.synthesis(torch.zeros(2, 6, 8), attention_impl='flash')

#----------------------------------------------------------------------------
# Attention paths and precision.

@pytest.mark.parametrize('linformer', [False, True])
def test_fast_matches_math_forward_and_gradients(linformer):
    G = _small_G(linformer=linformer, linformer_length=32, linformer_min_resolution=16)
    assert (G.synthesis.transformer.b16_0.proj_weight is not None) == linformer
    z = torch.randn(2, G.z_dim)
    probe = torch.randn(2, 3, 32, 32)
    results = {}
    for impl in ['fast', 'math']:
        G.zero_grad(set_to_none=True)
        ws = G.mapping(z, None).detach().requires_grad_(True)
        img = G.synthesis(ws, noise_mode='const', attention_impl=impl)
        (img * probe).sum().backward()
        results[impl] = img.detach(), ws.grad.clone(), {n: p.grad.clone() for n, p in G.named_parameters() if p.grad is not None}
    (img_f, gws_f, grads_f), (img_m, gws_m, grads_m) = results['fast'], results['math']
    assert _rel_err(img_f, img_m) < 1e-5
    assert _rel_err(gws_f, gws_m) < 1e-4
    assert grads_f.keys() == grads_m.keys() and any('transformer' in n for n in grads_m) and any('b32.conv' in n for n in grads_m)
    for name in grads_m:
        assert _rel_err(grads_f[name], grads_m[name]) < 1e-4, name


def test_attention_maps_of_the_transformer_blocks():
    G = _small_G()
    with torch.no_grad():
        img, maps = G.synthesis(G.mapping(torch.randn(2, G.z_dim), None), noise_mode='const', return_attention=True)
    assert img.shape == (2, 3, 32, 32)
    assert [tuple(m.shape) for m in maps] == [(2, 2, 64, 64), (2, 1, 256, 256), (2, 1, 256, 256)]
    assert all(torch.allclose(m.sum(-1), torch.ones(())) for m in maps)


def test_double_backward_for_path_length_regularisation():
    G = _small_G()
    ws = G.mapping(torch.randn(2, G.z_dim), None).detach().requires_grad_(True)
    img = G.synthesis(ws, noise_mode='const')
    (grad,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), ws, create_graph=True)
    grad.square().sum().backward()
    grads = {name: p.grad for name, p in G.synthesis.named_parameters() if p.grad is not None}
    assert any(name.startswith('transformer.') for name in grads) and any(name.startswith('b32.') for name in grads)
    assert all(torch.isfinite(g).all() for g in grads.values())


def test_mixed_precision_counts_resolutions_from_the_image():
    G = _small_G(num_fp16_res=2)
    assert G.synthesis.b32.use_fp16                                      # The highest resolution: convolutional.
    assert G.synthesis.transformer.b16_1.use_fp16 and G.synthesis.transformer.b16_0.use_fp16   # The second: the switch stage.
    assert not G.synthesis.transformer.b8_0.use_fp16
    assert not _small_G(num_fp16_res=1).synthesis.transformer.b16_1.use_fp16


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason='bfloat16 CPU kernels need oneDNN')
def test_reduced_precision_runs_both_parts_in_bfloat16_on_the_cpu():
    G = _small_G(num_fp16_res=2)
    seen = {}
    G.synthesis.transformer.b16_1.register_forward_hook(lambda m, args, out: seen.update(transformer=out[0].dtype))
    G.synthesis.b32.register_forward_hook(lambda m, args, out: seen.update(conv=out[0].dtype))
    z = torch.randn(2, G.z_dim)
    ref = G(z, None, noise_mode='const')
    assert seen == dict(transformer=torch.float32, conv=torch.float32)  # 'auto': float32 on the CPU.
    low = G(z, None, noise_mode='const', precision='reduced')
    assert seen == dict(transformer=torch.bfloat16, conv=torch.bfloat16) and low.dtype == torch.float32
    assert _rel_err(low, ref) < 0.1
    low.square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in G.parameters() if p.grad is not None)

#----------------------------------------------------------------------------
# Snapshots.

def _assert_same_generator(loaded, G):
    assert type(loaded) is Generator and loaded.init_kwargs == G.init_kwargs
    z = torch.randn(3, G.z_dim)
    with torch.no_grad():
        torch.testing.assert_close(loaded(z, None, noise_mode='const'), G(z, None, noise_mode='const'))


def test_safe_loader_round_trip_pickle_and_safetensors(tmp_path):
    G = _small_G(linformer=True, linformer_length=32, linformer_min_resolution=16)
    with open(tmp_path / 'snap.pkl', 'wb') as f:
        pickle.dump(dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=None), f)
    data = safe_load.load_network_pkl(str(tmp_path / 'snap.pkl'))
    _assert_same_generator(data['G_ema'], G)
    assert data['G_ema'].synthesis.transformer.b16_0.proj_weight is data['G_ema'].synthesis.transformer.b16_0.enc.proj_weight

    safe_load.save_safetensors(data, str(tmp_path / 'snap.safetensors'))
    _assert_same_generator(safe_load.load_network_pkl(str(tmp_path / 'snap.safetensors'))['G_ema'], G)

    fp16 = safe_load.load_network_pkl(str(tmp_path / 'snap.pkl'), force_fp16=True)['G_ema']
    assert fp16.synthesis.b32.use_fp16 and fp16.synthesis.transformer.b16_0.use_fp16


@pytest.mark.parametrize('change, message', [
    (dict(switch_resolution=8), 'switch_resolution is 8 in the constructor arguments but 16 by the stored tensors'),
    (dict(num_layers=[1, 3]), r'synthesis num_layers is \[1, 3\] in the constructor arguments but \[1, 2\]'),
    (dict(channel_base=512), 'wrong shape'),
])
def test_safe_loader_checks_the_arguments_against_the_tensors(change, message):
    G = _small_G()
    kwargs = dict(G.init_kwargs)
    kwargs['synthesis_kwargs'] = dict(kwargs['synthesis_kwargs'], **change)
    with pytest.raises(safe_load.LoadError, match=message):
        safe_load.build_module(Generator, (), kwargs, G.state_dict(), 'G_ema')
    kwargs = dict(G.init_kwargs, img_resolution=64)
    with pytest.raises(safe_load.LoadError, match='img_resolution is 64 in the constructor arguments but 32'):
        safe_load.build_module(Generator, (), kwargs, G.state_dict(), 'G_ema')

#----------------------------------------------------------------------------
# Tools.

def test_attention_figure_and_explorer_offer_the_transformer_blocks_only():
    G = _small_G()
    label = rendering.make_labels(G, None, 1, torch.device('cpu'))
    figure = attention_maps.attention_figure(G, 0, label, layers=['transformer.b16_1'], heads='mean')
    assert figure.shape[0] == 32 and figure.shape[1] > 64
    info = Renderer(G, 'cpu').info()
    assert [(b['name'], b['resolution']) for b in info['blocks']] == [('transformer.b8_0', 8), ('transformer.b16_0', 16),
                                                                      ('transformer.b16_1', 16)]
    assert info['num_ws'] == G.num_ws
    with pytest.raises(ValueError, match='Unknown layer'):
        attention_maps.attention_figure(G, 0, label, layers=['b32'])


def _invoke(command, args):
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.slow
def test_every_tool_reads_a_styleformer_c_snapshot(tmp_path, monkeypatch):
    G = _small_G()
    snap = str(tmp_path / 'snap.pkl')
    with open(snap, 'wb') as f:
        pickle.dump(dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=None), f)
    # As a model-list entry too (docs/models.md): the tools take its name.
    (tmp_path / 'models.json').write_text(json.dumps(dict(models=[dict(name='sfc-tiny', url=f'file://{snap}', sha256=None,
        generator='Styleformer-C', resolution=32)])))
    monkeypatch.setenv(model_zoo.MODEL_LIST_ENV, str(tmp_path / 'models.json'))
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))  # The metric's dataset statistics.
    cpu = ['--device=cpu']

    _invoke(generate.generate_images_cmd, ['--network=sfc-tiny', '--seeds=1-2', f'--outdir={tmp_path / "gen"}', *cpu])
    with torch.no_grad():
        expected = images.to_uint8(G(rendering.seeds_to_z([2], G.z_dim, 'cpu'), None, noise_mode='const'))[0]
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(tmp_path / 'gen' / 'seed0002.png')), expected)

    # Style mixing over w's of both parts: 0..2 transformer, 3..5 convolutions.
    _invoke(style_mixing.style_mixing_cmd, [f'--network={snap}', '--rows=1,2', '--cols=3', '--styles=2-4', f'--outdir={tmp_path / "mix"}', *cpu])
    assert (tmp_path / 'mix' / 'grid.png').is_file()
    _invoke(gen_video.generate_video_cmd, [f'--network={snap}', '--seeds=0-1', '--grid=1x1', '--w-frames=2', f'--output={tmp_path / "v.mp4"}', *cpu])
    assert (tmp_path / 'v.mp4').stat().st_size > 0
    images.save_image(expected, tmp_path / 'target.png')
    _invoke(projector.run_projection, [f'--network={snap}', f'--target={tmp_path / "target.png"}', '--num-steps=2', '--loss=pixel',
        '--no-save-video', f'--outdir={tmp_path / "proj"}', *cpu])
    assert np.load(tmp_path / 'proj' / 'projected_w.npz')['w'].shape == (1, G.num_ws, G.w_dim)
    _invoke(attention_maps.attention_maps_cmd, [f'--network={snap}', '--seed=1', '--layers=transformer.b8_0,transformer.b16_1',
        f'--outdir={tmp_path / "att"}', *cpu])
    assert (tmp_path / 'att' / 'seed0001-attention.png').is_file()

    data = str(tmp_path / 'scenes.zip')
    dataset_tool.convert_dataset('scenes', data, max_images=8, width=32, height=32)
    result = _invoke(calc_metrics.calc_metrics, [f'--network={snap}', '--metrics=fid8', f'--data={data}'])
    assert 'fid8' in result.output and (tmp_path / 'metric-fid8.jsonl').is_file()

    _invoke(legacy.convert_network_pickle, [f'--source={snap}', f'--dest={tmp_path / "g.safetensors"}'])
    _assert_same_generator(legacy.load_network_pkl(str(tmp_path / 'g.safetensors'))['G_ema'], G)


@pytest.mark.slow
def test_onnx_export_matches_our_images(tmp_path):
    G = _small_G()
    path = str(tmp_path / 'g.onnx')
    onnx_export.export_onnx(G, path, batch_size=2, truncation_psi=0.7, verbose=False)
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    z = np.random.RandomState(1).randn(2, G.z_dim).astype(np.float32)
    img = session.run(['img'], dict(z=z))[0]
    with torch.no_grad():
        ours = G(torch.from_numpy(z), None, truncation_psi=0.7, noise_mode='const').numpy()
    assert img.shape == (2, 3, 32, 32)
    np.testing.assert_allclose(img, ours, atol=1e-4, rtol=0)

#----------------------------------------------------------------------------
