"""Behaviour of the generator and the discriminator beyond the published cases: fast vs
math attention, noise modes, truncation, start resolution, attention maps, reduced
precision, second derivatives, discriminator architectures and Freeze-D."""

import pickle

import pytest
import torch

from training.networks_Discriminator import Discriminator
from training.networks_Generator import Generator

from network_helpers import move_off_init, rel_err as _rel_err


def _small_G(c_dim=0, img_resolution=16, dtype=torch.float32, seed=0, **synthesis):
    torch.manual_seed(seed)
    kwargs = dict(depth=8, minimum_head=1, num_layers=[1, 2], G_dict=[16, 8], conv_clamp=256)
    kwargs.update(synthesis)
    G = Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=img_resolution, img_channels=3,
                  mapping_kwargs=dict(num_layers=2), synthesis_kwargs=kwargs).to(dtype).eval()
    return move_off_init(G)

#----------------------------------------------------------------------------
# Fast path vs reference-math path.

FAST_VS_MATH_CONFIGS = [
    dict(batch=2),                                                          # One head per layer (depth 8 -> 2 / 1 heads).
    dict(batch=3, depth=4, minimum_head=2),                                 # Several heads.
    dict(batch=1, depth=2, minimum_head=1, num_layers=[2, 1]),              # Batch 1, many heads, deeper first stage.
    dict(batch=2, linformer=True, linformer_length=32, linformer_min_resolution=16), # Linformer (projects 256 -> 32 tokens).
    dict(batch=2, c_dim=4, img_resolution=32, num_layers=[1, 1, 1], G_dict=[16, 16, 8], linformer=True, linformer_length=64),
]

@pytest.mark.parametrize('cfg', FAST_VS_MATH_CONFIGS, ids=lambda cfg: ','.join(f'{k}={v}' for k, v in cfg.items()))
def test_fast_matches_math_forward_and_gradients(cfg):
    cfg = dict(cfg)
    batch, c_dim, img_resolution = cfg.pop('batch'), cfg.pop('c_dim', 0), cfg.pop('img_resolution', 16)
    G = _small_G(c_dim=c_dim, img_resolution=img_resolution, **cfg)
    z = torch.randn(batch, G.z_dim)
    c = torch.nn.functional.one_hot(torch.arange(batch) % max(c_dim, 1), max(c_dim, 1)).float()[:, :c_dim]
    probe = torch.randn(batch, 3, img_resolution, img_resolution)

    results = {}
    for impl in ['fast', 'math']:
        G.zero_grad(set_to_none=True)
        ws = G.mapping(z, c).detach().requires_grad_(True)
        img = G.synthesis(ws, noise_mode='const', attention_impl=impl)
        (img * probe).sum().backward()
        grads = {name: p.grad.clone() for name, p in G.named_parameters() if p.grad is not None}
        results[impl] = (img.detach(), ws.grad.clone(), grads)

    img_f, gws_f, grads_f = results['fast']
    img_m, gws_m, grads_m = results['math']
    assert _rel_err(img_f, img_m) < 1e-5
    assert _rel_err(gws_f, gws_m) < 1e-4
    assert grads_f.keys() == grads_m.keys() and len(grads_f) > 10
    for name in grads_m:
        assert _rel_err(grads_f[name], grads_m[name]) < 1e-4, name


def test_attention_impl_per_network_and_per_call():
    G_fast, G_math = _small_G(), _small_G(attention_impl='math')
    assert G_math.state_dict().keys() == G_fast.state_dict().keys()  # A choice, not a weight: snapshots load either way.
    G_math.load_state_dict(G_fast.state_dict())
    ws = G_fast.mapping(torch.randn(2, G_fast.z_dim), None)
    paths = []
    def record(module, args, output):  # The published form returns the attention map, the fast path None.
        paths.append('math' if output[1] is not None else 'fast')
    for G in (G_fast, G_math):
        G.synthesis.b8_0.enc.register_forward_hook(record)
    with torch.no_grad():
        G_fast.synthesis(ws, noise_mode='const')
        G_math.synthesis(ws, noise_mode='const')
        G_math.synthesis(ws, noise_mode='const', attention_impl='fast')
        G_fast(torch.randn(2, G_fast.z_dim), None, attention_impl='math')
    assert paths == ['fast', 'math', 'fast', 'math']
    with pytest.raises(ValueError, match='Unknown attention implementation'):
        _small_G(attention_impl='flash')

#----------------------------------------------------------------------------
# Noise, truncation, shapes.

def test_noise_modes_reach_every_layer():
    G = _small_G()
    ws = G.mapping(torch.randn(2, G.z_dim), None)
    with torch.no_grad():
        const_a = G.synthesis(ws, noise_mode='const')
        const_b = G.synthesis(ws, noise_mode='const')
        rand_a = G.synthesis(ws, noise_mode='random')
        rand_b = G.synthesis(ws, noise_mode='random')
        none = G.synthesis(ws, noise_mode='none')
    assert torch.equal(const_a, const_b)
    assert not torch.allclose(rand_a, rand_b)
    assert not torch.allclose(none, const_a)

    # Each layer's noise matters: zeroing one layer's const noise changes the image.
    for name, layer in G.synthesis.named_modules():
        if hasattr(layer, 'noise_const'):
            saved = layer.noise_const.clone()
            with torch.no_grad():
                layer.noise_const.zero_()
                changed = G.synthesis(ws, noise_mode='const')
                layer.noise_const.copy_(saved)
            assert not torch.allclose(changed, const_a), name

    with pytest.raises(ValueError, match='noise_mode'):
        G.synthesis(ws, noise_mode='fixed')


def test_truncation_with_and_without_cutoff():
    G = _small_G()
    z = torch.randn(3, G.z_dim)
    ws = G.mapping(z, None)
    w_avg = G.mapping.w_avg
    assert ws.shape == (3, G.num_ws, G.w_dim)
    torch.testing.assert_close(G.mapping(z, None, truncation_psi=0.6), w_avg + 0.6 * (ws - w_avg))
    cut = G.mapping(z, None, truncation_psi=0.6, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], w_avg + 0.6 * (ws[:, :2] - w_avg))
    torch.testing.assert_close(cut[:, 2:], ws[:, 2:])
    torch.testing.assert_close(G.mapping(z, None, truncation_psi=0), w_avg.expand_as(ws))


def test_w_avg_updates_only_when_asked():
    G = _small_G().train()
    before = G.mapping.w_avg.clone()
    G.mapping(torch.randn(4, G.z_dim), None)
    assert torch.equal(G.mapping.w_avg, before)
    G.mapping(torch.randn(4, G.z_dim), None, update_emas=True)
    assert not torch.equal(G.mapping.w_avg, before)


@pytest.mark.parametrize('img_resolution', [48, 96])
def test_start_resolution_12(img_resolution):
    stages = [12, 24, 48, 96][:{48: 3, 96: 4}[img_resolution]]
    G = _small_G(img_resolution=img_resolution, start_resolution=12, num_layers=[1] * len(stages), G_dict=[16, 8, 8, 8],
                 linformer=True)
    assert G.synthesis.block_resolutions == stages
    assert G.num_ws == 2 * len(stages)
    assert G.synthesis.b12_0.const.shape == (144, 16)
    assert G.synthesis.b48_0.proj_weight.shape == (256, 48 * 48) # Linformer from 32x32 up.
    assert getattr(G.synthesis.b24_0, 'proj_weight') is None
    with torch.no_grad():
        img = G(torch.randn(1, G.z_dim), None, noise_mode='const')
    assert img.shape == (1, 3, img_resolution, img_resolution) and torch.isfinite(img).all()


def test_bad_shapes_give_clear_errors():
    with pytest.raises(ValueError, match='start_resolution'):
        _small_G(img_resolution=48)
    with pytest.raises(ValueError, match='num_layers'):
        _small_G(num_layers=[1, 1, 1])
    G = _small_G()
    with pytest.raises(ValueError, match='ws has shape'):
        G.synthesis(torch.zeros(2, G.num_ws + 1, G.w_dim))
    with pytest.raises(ValueError, match='conditional'):
        _small_G(c_dim=3)(torch.randn(1, 8), None)


def test_attention_maps_shape_and_values():
    G = _small_G(depth=4, minimum_head=1, linformer=True, linformer_length=32, linformer_min_resolution=16)
    ws = G.mapping(torch.randn(2, G.z_dim), None)
    with torch.no_grad():
        img, maps = G.synthesis(ws, noise_mode='const', return_attention=True)
        plain = G.synthesis(ws, noise_mode='const')
    torch.testing.assert_close(img, plain, rtol=1e-5, atol=1e-5)
    # b8_0: 16 wide -> 4 heads over 64 tokens; b16_*: 8 wide -> 2 heads, keys projected to 32 tokens.
    assert [tuple(m.shape) for m in maps] == [(2, 4, 64, 64), (2, 2, 256, 32), (2, 2, 256, 32)]
    for m in maps:
        torch.testing.assert_close(m.sum(dim=-1), torch.ones(m.shape[:-1]))


def test_pickle_round_trip():
    G = _small_G(linformer=True, linformer_length=32, linformer_min_resolution=16)
    G2 = pickle.loads(pickle.dumps(G))
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        torch.testing.assert_close(G2(z, None, noise_mode='const'), G(z, None, noise_mode='const'))
    # The Linformer projection stays one tensor shared by the block and its layer.
    assert G2.synthesis.b16_0.proj_weight is G2.synthesis.b16_0.enc.proj_weight

#----------------------------------------------------------------------------
# Precision and second derivatives.

@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason='bfloat16 CPU kernels need oneDNN')
def test_reduced_precision_path_on_cpu():
    G = _small_G(num_fp16_res=1, G_dict=[16, 16])
    seen = {}
    def record(module, args, output):
        seen[module.resolution] = args[0].dtype if args[0] is not None else None
    hooks = [getattr(G.synthesis, name).register_forward_hook(record) for name in G.synthesis.block_names]
    z = torch.randn(2, G.z_dim)
    ref = G(z, None, noise_mode='const')
    assert G.synthesis.b16_1.use_fp16 and not G.synthesis.b8_0.use_fp16
    assert seen[16] == torch.float32 # Automatic precision: float32 on the CPU, as published.
    low = G(z, None, noise_mode='const', precision='reduced')
    for h in hooks:
        h.remove()
    assert seen[16] == torch.bfloat16 and low.dtype == torch.float32 # The image path stays float32.
    assert _rel_err(low, ref) < 0.1
    low.square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in G.parameters() if p.grad is not None)


def test_precision_modes_and_the_published_keyword():
    # D's reduced blocks on the CPU: 'auto' stays float32, 'reduced' runs bfloat16 (the CPU's fast reduced dtype)
    # in channels-last (oneDNN's faster layout); force_fp32 maps onto both.
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=32, num_fp16_res=1, conv_clamp=256)
    seen = []
    def record(_module, _args, output):
        x = output[0]
        seen.append((x.dtype, x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()))
    D.b16.register_forward_hook(record)
    img = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        for kwargs in [{}, dict(precision='full'), dict(force_fp32=True), dict(precision='reduced'), dict(force_fp32=False)]:
            D(img, None, **kwargs)
    assert seen == [(torch.float32, False)] * 3 + [(torch.bfloat16, True)] * 2
    with pytest.raises(ValueError, match='precision must be one of'):
        D(img, None, precision='half')


def test_float16_with_clamp_stays_finite():
    G = _small_G(num_fp16_res=2, G_dict=[16, 16], reduced_dtype='float16', conv_clamp=4)
    img = G(torch.randn(2, G.z_dim), None, noise_mode='const', force_fp32=False)
    assert img.dtype == torch.float32 and torch.isfinite(img).all()


def test_double_backward_through_fast_path():
    # Tiny float64 G; the default 'fast' path must switch to differentiable attention by itself.
    G = _small_G(dtype=torch.float64, img_resolution=8, depth=4, num_layers=[2], G_dict=[8], linformer=True,
                 linformer_length=16, linformer_min_resolution=8)
    ws = torch.randn(1, G.num_ws, G.w_dim, dtype=torch.float64, requires_grad=True)
    synth = lambda ws: G.synthesis(ws, noise_mode='const')
    assert torch.autograd.gradgradcheck(synth, (ws,), fast_mode=True)

    # Path-length style use: gradient with create_graph, then backward to the weights.
    img = synth(ws)
    (grad,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), ws, create_graph=True)
    grad.square().sum().backward()
    assert G.synthesis.b8_1.enc.q_weight.grad.abs().sum() > 0

#----------------------------------------------------------------------------
# Discriminator.

@pytest.mark.parametrize('architecture', ['orig', 'skip', 'resnet'])
@pytest.mark.parametrize('c_dim', [0, 5])
def test_discriminator_architectures(architecture, c_dim):
    torch.manual_seed(0)
    D = Discriminator(c_dim=c_dim, img_resolution=16, img_channels=3, architecture=architecture, channel_base=256,
                      channel_max=32, conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=2))
    img = torch.randn(4, 3, 16, 16, requires_grad=True)
    c = torch.nn.functional.one_hot(torch.arange(4) % 5, 5).float()[:, :c_dim]
    logits = D(img, c)
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert img.grad.abs().sum() > 0
    assert all(p.grad is not None for p in D.parameters())
    assert hasattr(D.b8, 'fromrgb') == (architecture == 'skip')
    assert hasattr(D.b16, 'skip') == (architecture == 'resnet')
    assert hasattr(D, 'mapping') == (c_dim > 0)
    if c_dim > 0: # The label changes the logits.
        assert not torch.allclose(D(img, c.roll(1, dims=0)), logits)


def test_discriminator_freeze_layers():
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, architecture='resnet', channel_base=256,
                      channel_max=32, block_kwargs=dict(freeze_layers=3))
    # Layer order: b16.fromrgb, b16.conv0, b16.conv1, b16.skip, b8.conv0, ...
    params = dict(D.named_parameters())
    buffers = dict(D.named_buffers())
    for frozen in ['b16.fromrgb.weight', 'b16.conv0.weight', 'b16.conv1.weight', 'b16.conv1.bias']:
        assert frozen in buffers and frozen not in params
    for trainable in ['b16.skip.weight', 'b8.conv0.weight', 'b4.fc.weight']:
        assert trainable in params
    # Same state-dict keys as an unfrozen D, so snapshots load either way.
    unfrozen = Discriminator(c_dim=0, img_resolution=16, img_channels=3, architecture='resnet', channel_base=256, channel_max=32)
    assert D.state_dict().keys() == unfrozen.state_dict().keys()


def test_discriminator_mbstd_and_fp16_cpu():
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, architecture='resnet', channel_base=256,
                      channel_max=32, num_fp16_res=1, conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=4))
    img = torch.randn(8, 3, 16, 16)
    with torch.no_grad():
        ref = D(img, None)
        # The minibatch-stddev feature makes each logit depend on the other samples of its group.
        changed = D(torch.cat([img[:1], img[1:] * 2]), None)
    assert not torch.allclose(changed[:1], ref[:1])
    with pytest.raises(ValueError, match='multiple of the minibatch-stddev group size'):
        D(img[:6], None)
    with pytest.raises(ValueError, match='img has shape'):
        D(torch.randn(2, 3, 8, 8), None)


@pytest.mark.parametrize('resolution, blocks, epilogue', [(48, ['b48', 'b24', 'b12'], 'b6'), (96, ['b96', 'b48', 'b24', 'b12'], 'b6'), (32, ['b32', 'b16', 'b8'], 'b4')])
def test_discriminator_non_power_of_two_resolutions(resolution, blocks, epilogue):
    # STL-10 trains at 48x48: halve while even and >= 4, then the epilogue; powers of two keep b4.
    D = Discriminator(c_dim=0, img_resolution=resolution, img_channels=3, channel_base=256, channel_max=16, num_fp16_res=2)
    assert [f'b{res}' for res in D.block_resolutions] == blocks and D.epilogue_name == epilogue
    assert [name for name, block in D.named_children() if getattr(block, 'use_fp16', False)] == blocks[:2]
    img = torch.randn(2, 3, resolution, resolution, requires_grad=True)
    logits = D(img, torch.zeros(2, 0))
    assert logits.shape == (2, 1) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert torch.isfinite(img.grad).all() and img.grad.abs().sum() > 0
