"""snapshot_io/onnx_export.py and legacy.py --dest=*.onnx: onnxruntime's images equal ours (fixed and dynamic batch,
psi fixed or an input, conditional and unconditional)."""

import numpy as np
import onnxruntime
import pytest
import torch
from click.testing import CliRunner
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

import legacy
from snapshot_io import onnx_export
from training import networks
from training.networks_Generator import Generator

from snapshot_helpers import STYLEFORMER_SRC, build_case, published_pickle, snapshot_dict, write_file

TOLERANCE = 1e-4  # Images are in [-1, 1]; float32 reorderings differ by ~1e-6.

#----------------------------------------------------------------------------

def our_images(G, z, c, psi):
    with torch.no_grad():
        return G(torch.from_numpy(z), None if c is None else torch.from_numpy(c), truncation_psi=psi, noise_mode='const').numpy()


def random_inputs(G, batch_size, seed):
    rnd = np.random.RandomState(seed)
    z = rnd.randn(batch_size, G.z_dim).astype(np.float32)
    c = np.eye(G.c_dim, dtype=np.float32)[rnd.randint(G.c_dim, size=batch_size)] if G.c_dim > 0 else None
    return z, c


@pytest.mark.slow
def test_fixed_batch_conditional_fixed_psi(tmp_path):
    G = build_case(Generator, 'g_linformer_cond')
    path = str(tmp_path / 'g.onnx')
    onnx_export.export_onnx(G, path, batch_size=4, truncation_psi=0.5, verbose=False)
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [('z', [4, G.z_dim]), ('c', [4, G.c_dim])]

    z, c = random_inputs(G, 4, seed=1)
    img = session.run(['img'], dict(z=z, c=c))[0]
    assert img.shape == (4, 3, 32, 32)
    np.testing.assert_allclose(img, our_images(G, z, c, psi=0.5), atol=TOLERANCE, rtol=0)
    assert np.abs(img - our_images(G, z, c, psi=1)).max() > 100 * TOLERANCE  # psi is really applied.
    with pytest.raises(InvalidArgument, match='(?i)dimension'):  # The batch size is fixed.
        session.run(['img'], dict(z=z[:2], c=c[:2]))


@pytest.mark.slow
def test_cli_dynamic_batch_psi_input(tmp_path):
    G = build_case(Generator, 'g_small')
    source = write_file(tmp_path / 'snap.pkl', published_pickle(snapshot_dict(G), STYLEFORMER_SRC.format(marker=str(tmp_path / 'x'))))
    path = str(tmp_path / 'out' / 'g.onnx')
    result = CliRunner().invoke(legacy.convert_network_pickle, [f'--source={source}', f'--dest={path}',
        '--onnx-dynamic-batch', '--onnx-trunc=input'])
    assert result.exit_code == 0, result.output
    assert f'Wrote {path}: opset {onnx_export.OPSET}, inputs z [N, 64], psi [], output img [N, 3, 32, 32], N dynamic' in result.output

    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == ['z', 'psi']
    for batch_size, psi in [(1, 1.0), (3, 0.7), (5, -0.2)]:
        z, _ = random_inputs(G, batch_size, seed=batch_size)
        img = session.run(['img'], dict(z=z, psi=np.array(psi, dtype=np.float32)))[0]
        assert img.shape == (batch_size, 3, 32, 32)
        np.testing.assert_allclose(img, our_images(G, z, None, psi), atol=TOLERANCE, rtol=0)


@pytest.mark.slow
def test_dynamic_batch_that_the_network_fixes_is_refused(tmp_path):
    G = networks.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=1),
        synthesis_kwargs=dict(channel_base=256, channel_max=16)).eval()  # StyleGAN2: batch-grouped convolutions.
    with pytest.raises(onnx_export.ExportError, match='cannot take a dynamic batch'):
        onnx_export.export_onnx(G, str(tmp_path / 'g.onnx'), dynamic_batch=True, verbose=False)
    assert not (tmp_path / 'g.onnx').exists()


def test_bad_options_are_reported(tmp_path):
    G = build_case(Generator, 'g_small')
    source = write_file(tmp_path / 'snap.pkl', published_pickle(snapshot_dict(G), STYLEFORMER_SRC.format(marker=str(tmp_path / 'x'))))
    result = CliRunner().invoke(legacy.convert_network_pickle, [f'--source={source}', f'--dest={tmp_path}/g.onnx', '--onnx-trunc=high'])
    assert result.exit_code == 1 and '--onnx-trunc must be a number (e.g. 0.7) or "input", got \'high\'' in result.output
    result = CliRunner().invoke(legacy.convert_network_pickle, [f'--source={source}', f'--dest={tmp_path}/g.onnx', '--onnx-batch=0'])
    assert result.exit_code == 2 and '--onnx-batch' in result.output
    assert not (tmp_path / 'g.onnx').exists()

#----------------------------------------------------------------------------
