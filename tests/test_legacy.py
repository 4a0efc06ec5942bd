"""legacy.py: safe loading of our, published Styleformer and StyleGAN2-ADA snapshots; refusals; conversion."""

import json
import os
import pickle

import pytest
import torch
from click.testing import CliRunner

import dnnlib
import legacy
from training import networks
from training.augment import AugmentPipe
from training.networks_Discriminator import Discriminator
from training.networks_Generator import Generator

from snapshot_helpers import (STYLEFORMER_SRC, STYLEGAN2_SRC, build_case, load_case, published_pickle, snapshot_dict,
    write_file)

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def g_small():
    return build_case(Generator, 'g_small')


@pytest.fixture(scope='module')
def d_orig():
    return build_case(Discriminator, 'd_orig')


def assert_generator_matches_reference(G, case):
    _, _, ref = load_case(case)
    c = ref['c'] if ref['c'].shape[1] > 0 else None
    with torch.no_grad():
        ws = G.mapping(ref['z'], c, truncation_psi=0.7)
        img = G.synthesis(ref['ws'], noise_mode='const')
    assert (ws - ref['ws']).abs().max() < 1e-4 * ref['ws'].abs().max()
    assert (img - ref['img']).abs().max() < 1e-4 * ref['img'].abs().max()


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb)
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name

#----------------------------------------------------------------------------

def test_published_styleformer_snapshot_loads_without_running_its_code(tmp_path, g_small, d_orig):
    marker = tmp_path / 'executed.txt'
    data = snapshot_dict(g_small, d_orig, training_set_kwargs=dnnlib.EasyDict(path='cifar10.zip', use_labels=False))
    path = write_file(tmp_path / 'published.pkl', published_pickle(data, STYLEFORMER_SRC.format(marker=str(marker))))

    result = legacy.load_network_pkl(path)
    assert not marker.exists(), 'the safe loader executed the source embedded in the pickle'
    assert type(result['G_ema']) is Generator and type(result['D']) is Discriminator
    assert result['augment_pipe'] is None
    assert result['training_set_kwargs'] == dict(path='cifar10.zip', use_labels=False)
    assert not result['G_ema'].training and not any(p.requires_grad for p in result['G_ema'].parameters())
    assert_generator_matches_reference(result['G_ema'], 'g_small')
    _, _, ref = load_case('d_orig')
    with torch.no_grad():
        logits = result['D'](ref['img'], ref['c'])
    assert (logits - ref['logits']).abs().max() < 1e-4 * ref['logits'].abs().max()


def test_trusted_load_does_run_the_embedded_code(tmp_path, g_small):
    # The counterpart of the test above: the same kind of pickle, loaded with trust=True, runs its source.
    marker = tmp_path / 'executed.txt'
    path = write_file(tmp_path / 'published.pkl', published_pickle(snapshot_dict(g_small), STYLEFORMER_SRC.format(marker=str(marker))))
    result = legacy.load_network_pkl(path, trust=True)
    assert marker.exists()
    assert type(result['G_ema']).__name__ == 'Generator' and type(result['G_ema']) is not Generator


def test_linformer_conditional_generator_loads(tmp_path):
    G = build_case(Generator, 'g_linformer_cond')
    path = write_file(tmp_path / 'published.pkl', published_pickle(snapshot_dict(G), STYLEFORMER_SRC.format(marker=str(tmp_path / 'm'))))
    loaded = legacy.load_network_pkl(path)['G_ema']
    assert loaded.c_dim == 10
    assert_generator_matches_reference(loaded, 'g_linformer_cond')


def test_own_snapshot_round_trip(tmp_path, g_small, d_orig):
    augment_pipe = AugmentPipe(xflip=1, rotate90=1, brightness=1)
    augment_pipe.p.copy_(torch.tensor(0.3))
    with open(tmp_path / 'ours.pkl', 'wb') as f:
        pickle.dump(snapshot_dict(g_small, d_orig, augment_pipe, dict(path='x.zip')), f)
    with open(tmp_path / 'ours.pkl', 'rb') as f:
        result = legacy.load_network_pkl(f)
    assert type(result['augment_pipe']) is AugmentPipe
    assert float(result['augment_pipe'].p) == pytest.approx(0.3)
    assert result['augment_pipe'].init_kwargs == augment_pipe.init_kwargs
    assert_same_state(result['G_ema'], g_small)
    assert_same_state(result['D'], d_orig)
    assert result['training_set_kwargs'] == dict(path='x.zip')


def test_stylegan2_ada_snapshot_loads_as_training_networks(tmp_path, d_orig):
    torch.manual_seed(0)
    G = networks.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
        mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=128, channel_max=16, conv_clamp=256)).eval()
    with torch.no_grad():  # Move every parameter and buffer off its initial value.
        for tensor in list(G.parameters()) + list(G.buffers()):
            tensor.add_(torch.randn_like(tensor) * 0.1)
    marker = tmp_path / 'executed.txt'
    path = write_file(tmp_path / 'sg2.pkl', published_pickle(snapshot_dict(G, d_orig), STYLEGAN2_SRC.format(marker=str(marker))))
    result = legacy.load_network_pkl(path)
    assert not marker.exists()
    assert type(result['G_ema']) is networks.Generator and type(result['D']) is networks.Discriminator
    z = torch.randn([3, 16])
    with torch.no_grad():
        assert torch.allclose(result['G_ema'](z, None, noise_mode='const'), G(z, None, noise_mode='const'), atol=1e-5)
        assert torch.allclose(result['G_ema'](z, None, truncation_psi=0.5, noise_mode='const'),
                              G(z, None, truncation_psi=0.5, noise_mode='const'), atol=1e-5)

#----------------------------------------------------------------------------

def test_unknown_architecture_is_refused_with_the_trust_flag(tmp_path, g_small):
    data = published_pickle(snapshot_dict(g_small), STYLEFORMER_SRC.format(marker=str(tmp_path / 'm')), rename={'Generator': 'MysteryGenerator'})
    with pytest.raises(legacy.LoadError, match='MysteryGenerator') as info:
        legacy.load_network_pkl(write_file(tmp_path / 'mystery.pkl', data))
    assert '--trust-pickle' in str(info.value) and 'trust=True' in str(info.value)


class _RunsCommand:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f'touch {self.path}',)


def test_pickle_that_calls_a_function_is_refused(tmp_path):
    target = tmp_path / 'pwned'
    path = write_file(tmp_path / 'evil.pkl', pickle.dumps(dict(G_ema=_RunsCommand(target))))
    with pytest.raises(legacy.LoadError, match='system'):
        legacy.load_network_pkl(path)
    assert not target.exists()


def test_broken_files_get_one_clear_error_each(tmp_path, g_small):
    good = published_pickle(snapshot_dict(g_small), STYLEFORMER_SRC.format(marker=str(tmp_path / 'm')))
    cases = {
        'truncated.pkl': (good[:len(good) // 2], 'truncated'),
        'empty.pkl': (b'', 'empty'),
        'image.png': (b'\x89PNG\r\n\x1a\n' + bytes(100), 'not a network snapshot'),
        'list.pkl': (pickle.dumps([1, 2, 3]), 'not a network snapshot'),
        'no_g_ema.pkl': (published_pickle(dict(G=g_small, D=None), STYLEFORMER_SRC.format(marker=str(tmp_path / 'm'))), 'no G_ema'),
    }
    cases['corrupt.pkl'] = (good[:2] + b'\xff' + good[3:], 'corrupt')  # 0xff is no pickle opcode.
    for name, (content, message) in cases.items():
        with pytest.raises(legacy.LoadError, match=message):
            legacy.load_network_pkl(write_file(tmp_path / name, content))

#----------------------------------------------------------------------------

def test_force_fp16_rebuilds_with_fp16_settings(tmp_path, g_small, d_orig):
    path = write_file(tmp_path / 'p.pkl', published_pickle(snapshot_dict(g_small, d_orig), STYLEFORMER_SRC.format(marker=str(tmp_path / 'm'))))
    result = legacy.load_network_pkl(path, force_fp16=True)
    assert result['G_ema'].init_kwargs['synthesis_kwargs']['num_fp16_res'] == 4
    assert result['D'].init_kwargs['num_fp16_res'] == 4
    assert_same_state(result['G_ema'], g_small)


def test_convert_cli_writes_pickle_and_safetensors(tmp_path, g_small, d_orig):
    marker = tmp_path / 'executed.txt'
    source = write_file(tmp_path / 'published.pkl', published_pickle(snapshot_dict(g_small, d_orig, None, dict(path='d.zip')),
        STYLEFORMER_SRC.format(marker=str(marker))))
    result = CliRunner().invoke(legacy.convert_network_pickle, [f'--source={source}', f'--dest={tmp_path / "ours.pkl"}', '--safetensors'])
    assert result.exit_code == 0, result.output
    assert not marker.exists()

    description = json.loads((tmp_path / 'ours.json').read_text())
    assert description['modules']['G_ema']['class_name'] == 'training.networks_Generator.Generator'
    assert description['training_set_kwargs'] == dict(path='d.zip')
    for name in ['ours.pkl', 'ours.safetensors']:
        loaded = legacy.load_network_pkl(str(tmp_path / name))
        assert_same_state(loaded['G_ema'], g_small)
        assert_same_state(loaded['D'], d_orig)
        assert_generator_matches_reference(loaded['G_ema'], 'g_small')

    # The converted pickle embeds this codebase's source, so it loads with trust=True as well.
    trusted = legacy.load_network_pkl(str(tmp_path / 'ours.pkl'), trust=True)
    assert_same_state(trusted['G_ema'], g_small)


def test_convert_cli_reports_load_errors(tmp_path):
    source = write_file(tmp_path / 'bad.pkl', b'not a pickle')
    result = CliRunner().invoke(legacy.convert_network_pickle, [f'--source={source}', f'--dest={tmp_path / "x.pkl"}'])
    assert result.exit_code != 0 and 'not a network snapshot' in result.output
    assert not (tmp_path / 'x.pkl').exists()


def test_safetensors_refuses_classes_outside_the_codebase(tmp_path, g_small):
    legacy.save_safetensors(snapshot_dict(g_small), str(tmp_path / 'w.safetensors'))
    import safetensors.torch
    tensors = safetensors.torch.load_file(str(tmp_path / 'w.safetensors'))
    description = json.loads((tmp_path / 'w.json').read_text())
    description['modules']['G_ema']['class_name'] = 'os.system'
    safetensors.torch.save_file(tensors, str(tmp_path / 'evil.safetensors'), metadata={'styleformer_snapshot': json.dumps(description)})
    with pytest.raises(legacy.LoadError, match='os.system'):
        legacy.load_network_pkl(str(tmp_path / 'evil.safetensors'))
    # Without the embedded description, the .json beside the file is used.
    safetensors.torch.save_file(tensors, str(tmp_path / 'w.safetensors'))
    assert_same_state(legacy.load_network_pkl(str(tmp_path / 'w.safetensors'))['G_ema'], g_small)

#----------------------------------------------------------------------------
# training/networks.py: the StyleGAN2-ADA generator that StyleGAN2-ADA snapshots are rebuilt into.

def test_stylegan2_generator_layout():
    G = networks.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=1024, img_channels=3,
        mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=1024, channel_max=8))
    assert G.num_ws == 18  # The published count for 1024x1024.
    names = set(G.state_dict())
    for name in ['synthesis.b4.const', 'synthesis.b4.conv1.affine.weight', 'synthesis.b4.torgb.weight',
                 'synthesis.b8.conv0.noise_const', 'synthesis.b8.conv0.noise_strength', 'synthesis.b1024.conv1.bias',
                 'synthesis.b1024.torgb.affine.bias', 'mapping.fc1.weight', 'mapping.w_avg']:
        assert name in names, name
    assert tuple(G.synthesis.b4.const.shape) == (8, 4, 4) and tuple(G.synthesis.b8.conv0.noise_const.shape) == (8, 8)


@pytest.mark.parametrize('architecture', ['orig', 'skip', 'resnet'])
def test_stylegan2_generator_fused_and_separate_modconv_agree(architecture):
    torch.manual_seed(1)
    G = networks.Generator(z_dim=8, c_dim=4, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=128, channel_max=16, conv_clamp=256, architecture=architecture)).eval()
    with torch.no_grad():
        for p in G.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        ws = G.mapping(torch.randn([3, 8]), torch.eye(4)[:3])
        fused = G.synthesis(ws, noise_mode='const', fused_modconv=True)
        separate = G.synthesis(ws, noise_mode='const', fused_modconv=False)
        no_noise = G.synthesis(ws, noise_mode='none')
    assert fused.shape == (3, 3, 16, 16) and fused.std() > 0
    assert torch.allclose(fused, separate, atol=1e-4)
    assert not torch.allclose(fused, no_noise, atol=1e-4)
    with pytest.raises(ValueError, match='noise_mode'):
        G.synthesis(ws, noise_mode='bogus')


@pytest.mark.parametrize('args, message', [
    (['--dest={tmp}/out.pkl', '--onnx-dynamic-batch'], '--onnx-dynamic-batch apply to an .onnx --dest only'),
    (['--dest={tmp}/out.safetensors', '--onnx-trunc=input'], '--onnx-trunc apply to an .onnx --dest only'),
    (['--dest={tmp}/g.onnx', '--safetensors'], '--safetensors adds a .safetensors beside a .pkl --dest'),
])
def test_options_that_do_not_apply_to_the_destination_are_refused(tmp_path, args, message):
    result = CliRunner().invoke(legacy.convert_network_pickle, ['--source=unused.pkl'] + [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not any(tmp_path.iterdir())  # Refused before anything is read or written.
