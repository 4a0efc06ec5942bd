"""train.py selects Styleformer-C: --switch-res, the CLEVR and Cityscapes presets, resume from a
Styleformer-C snapshot, a short run whose snapshot the safe loader reads; the other presets
keep the Styleformer generator."""

import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

import dataset_tool
import dnnlib
import legacy
import train
from tools import train_options
from training import presets, snapshot

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

@pytest.fixture(scope='module')
def scenes(tmp_path_factory):
    """Rendered scenes at 256x256 and 32x32, two images each (dry runs read only the shape)."""
    paths = {}
    for resolution, count in [(256, 2), (32, 8)]:
        paths[resolution] = str(tmp_path_factory.mktemp('data') / f'scenes{resolution}.zip')
        dataset_tool.convert_dataset('scenes', paths[resolution], max_images=count, width=resolution, height=resolution)
    return paths


def options(data, **kwargs):
    return train_options.setup_training_options(data=data, metrics=[], **kwargs)[1]

#----------------------------------------------------------------------------

@pytest.mark.parametrize('cfg, gamma', [('styleformer-c-clevr256', 40), ('styleformer-c-cityscapes256', 20)])
def test_presets_build_styleformer_c(scenes, cfg, gamma):
    args = options(scenes[256], cfg=cfg)
    assert args.G_kwargs.class_name == 'training.networks_StyleformerC.Generator'
    synthesis = args.G_kwargs.synthesis_kwargs
    assert synthesis.switch_resolution == 32 and synthesis.G_dict == [1024, 512, 512] and synthesis.num_layers == [1, 3, 3]
    assert synthesis.channel_base == args.D_kwargs.channel_base == 16384 and args.loss_kwargs.r1_gamma == gamma
    with torch.device('meta'):  # Shapes only.
        G = dnnlib.util.construct_class_by_name(**args.G_kwargs, c_dim=0, img_resolution=256, img_channels=3)
    assert G.synthesis.conv_resolutions == [64, 128, 256] and G.num_ws == 7 + 6 + 1


def test_switch_res_option_and_the_other_presets(scenes):
    args = options(scenes[32], cfg='tiny', switch_res=16, g_dict=['64', '32'], num_layers=['1', '1'])
    assert args.G_kwargs.class_name == 'training.networks_StyleformerC.Generator'
    assert args.G_kwargs.synthesis_kwargs.switch_resolution == 16
    assert 'fp16_channels_last' not in args.G_kwargs.synthesis_kwargs
    args = options(scenes[32], cfg='tiny', switch_res=16, g_dict=['64', '32'], num_layers=['1', '1'], nhwc=True)
    assert args.G_kwargs.synthesis_kwargs.fp16_channels_last and args.D_kwargs.block_kwargs.fp16_channels_last
    for cfg in ['tiny', 'cifar', 'auto']:  # Without --switch-res: the Styleformer generator, no Styleformer-C options.
        args = options(scenes[32], cfg=cfg)
        assert args.G_kwargs.class_name == 'training.networks_Generator.Generator'
        assert 'switch_resolution' not in args.G_kwargs.synthesis_kwargs
    assert 'switch_res' not in presets.STYLEFORMER_PRESETS['styleformer-church128']


@pytest.mark.parametrize('args, message', [
    (['--switch-res=32'], '--switch-res=32 must be the 32x32 dataset\'s resolution divided by 2, 4, 8'),
    (['--switch-res=12'], '--switch-res=12 must be the 32x32 dataset\'s resolution divided by 2, 4, 8'),
    (['--switch-res=16'], '--g_dict: --cfg=tiny uses 3 values (128,64,32), but a 32x32 dataset needs one per transformer stage (8,16)'),
    (['--switch-res=4', '--g_dict=8', '--num_layers=1'], '--switch-res=4 must be 8 times a power of two'),
])
def test_bad_switch_res_fails_cleanly(scenes, tmp_path, args, message):
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path}', f'--data={scenes[32]}', '--cfg=tiny', '--metrics=none', *args])
    assert result.exit_code == 2 and message in result.output and 'Traceback' not in result.output


def test_resume_keeps_the_styleformer_c_architecture(scenes, tmp_path):
    args = options(scenes[32], cfg='tiny', switch_res=16, g_dict=['32', '16'], num_layers=['1', '1'])
    common = dict(c_dim=0, img_resolution=32, img_channels=3)
    G = dnnlib.util.construct_class_by_name(**args.G_kwargs, **common)
    D = dnnlib.util.construct_class_by_name(**args.D_kwargs, **common)
    pkl = snapshot.save_snapshot(str(tmp_path), 0, snapshot.network_snapshot_data(dict(G=G, D=D, G_ema=G, augment_pipe=None),
        args.training_set_kwargs, args), dict())
    resumed = options(scenes[32], cfg='tiny', resume=pkl)
    assert resumed.G_kwargs.class_name == 'training.networks_StyleformerC.Generator'
    assert resumed.G_kwargs.synthesis_kwargs.G_dict == [32, 16] and resumed.G_kwargs.synthesis_kwargs.switch_resolution == 16


@pytest.mark.slow
def test_short_run_writes_a_snapshot_the_tools_read(scenes, tmp_path):
    outdir = tmp_path / 'runs'
    result = subprocess.run([sys.executable, 'train.py', f'--outdir={outdir}', f'--data={scenes[32]}', '--cfg=tiny', '--switch-res=16',
        '--g_dict=32,16', '--num_layers=1,1', '--batch=4', '--kimg=0.008', '--tick=0.004', '--snap=1', '--metrics=none', '--workers=0'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = outdir.iterdir()
    data = legacy.load_network_pkl(str(sorted(run_dir.glob('network-snapshot-*.pkl'))[-1]))
    assert type(data['G_ema']).__module__ == 'training.networks_StyleformerC' and data['D'] is not None
