"""Files the tools write (atomically or not) get the mode of any new file, 0666 less the
umask, not tempfile's private 0600: snapshots and caches are often shared with others."""

import os
import pickle
import stat

import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import dataset_tool
import dnnlib
import legacy
from training import run_dirs, snapshot
from training.networks_Generator import Generator

from snapshot_helpers import build_case, snapshot_dict
from test_dnnlib import http_server  # pylint: disable=unused-import

#----------------------------------------------------------------------------

@pytest.fixture(params=[0o022, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def assert_modes(paths, umask):
    expected = 0o666 & ~umask  # 0o644 for umask 0o022.
    for path in paths:
        assert stat.S_IMODE(os.stat(path).st_mode) == expected, f'{path}: {oct(os.stat(path).st_mode)}'

#----------------------------------------------------------------------------

def test_training_snapshot(tmp_path, umask):
    pkl_path = snapshot.save_snapshot(str(tmp_path), 4, dict(G=None), dict(cur_nimg=4000, step=torch.zeros([1])))
    assert_modes([pkl_path, run_dirs.training_state_path_for(pkl_path)], umask)


def test_legacy_convert_pickle_and_safetensors(tmp_path, umask):
    source = tmp_path / 'source.pkl'
    with open(source, 'wb') as f:
        pickle.dump(snapshot_dict(build_case(Generator, 'g_small')), f)
    result = CliRunner().invoke(legacy.convert_network_pickle, [f'--source={source}', f'--dest={tmp_path / "out" / "ours.pkl"}', '--safetensors'])
    assert result.exit_code == 0, result.output
    assert_modes([tmp_path / 'out' / name for name in ['ours.pkl', 'ours.safetensors', 'ours.json']], umask)


def test_download_cache(http_server, tmp_path, umask):
    _server, base = http_server
    path = dnnlib.open_url(f'{base}/ok/model.pkl', cache_dir=str(tmp_path / 'cache'), verbose=False, return_filename=True)
    assert_modes([path], umask)


def test_dataset_tool_zip(tmp_path, umask):
    os.makedirs(tmp_path / 'images')
    for i in range(2):
        PIL.Image.new('RGB', (8, 8)).save(tmp_path / 'images' / f'{i}.png')
    result = CliRunner().invoke(dataset_tool.main, [f'--source={tmp_path / "images"}', f'--dest={tmp_path / "ds.zip"}'])
    assert result.exit_code == 0, result.output
    assert_modes([tmp_path / 'ds.zip'], umask)

#----------------------------------------------------------------------------
