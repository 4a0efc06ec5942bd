"""torch_utils.custom_ops: the one-line fallback, the env switches, the source-hash cache."""

import os

import pytest
import torch

from torch_utils import custom_ops
from torch_utils.ops import bias_act


@pytest.fixture
def fresh_state(monkeypatch):
    """Forget earlier plugin results and clear the env switches for one test."""
    monkeypatch.setattr(custom_ops, '_loaded_plugins', {})
    monkeypatch.setattr(custom_ops, '_failed_plugins', {})
    monkeypatch.delenv(custom_ops.REFERENCE_ENV, raising=False)
    monkeypatch.delenv(custom_ops.STRICT_ENV, raising=False)


def _no_cuda_build(monkeypatch, calls):
    """Simulate a machine where the plugin cannot be built (no CUDA toolkit)."""
    def fail(module_name, *args, **kwargs):
        calls.append(module_name)
        raise custom_ops.PluginBuildError('nvcc not found; install the CUDA toolkit and set CUDA_HOME')
    monkeypatch.setattr(custom_ops, 'get_plugin', fail)


def test_fallback_prints_one_line_once(fresh_state, monkeypatch, capsys):
    calls = []
    _no_cuda_build(monkeypatch, calls)
    for _ in range(3):
        assert custom_ops.get_plugin_or_none(**bias_act.PLUGIN) is None
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).strip().splitlines()
    assert len(lines) == 1, lines
    assert 'bias_act_plugin' in lines[0] and 'reference path' in lines[0]
    assert 'nvcc not found' in lines[0] and custom_ops.REFERENCE_ENV in lines[0]  # Why, and how to silence it.
    assert calls == ['bias_act_plugin']  # A failed build is not retried.


def test_reference_env_skips_the_build(fresh_state, monkeypatch, capsys):
    calls = []
    _no_cuda_build(monkeypatch, calls)
    monkeypatch.setenv(custom_ops.REFERENCE_ENV, '1')
    assert custom_ops.get_plugin_or_none(**bias_act.PLUGIN) is None
    assert calls == []
    captured = capsys.readouterr()
    assert captured.out == '' and captured.err == ''


def test_strict_mode_raises_with_the_reason(fresh_state, monkeypatch):
    _no_cuda_build(monkeypatch, [])
    monkeypatch.setenv(custom_ops.STRICT_ENV, '1')
    with pytest.raises(custom_ops.PluginBuildError, match=r'bias_act_plugin.*nvcc not found.*STYLEFORMER_STRICT_OPS'):
        custom_ops.get_plugin_or_none(**bias_act.PLUGIN)


def test_cpu_tensors_never_try_a_build(fresh_state, monkeypatch, capsys):
    calls = []
    _no_cuda_build(monkeypatch, calls)
    monkeypatch.setenv(custom_ops.STRICT_ENV, '1')  # Even strict mode: CPU tensors use the reference path.
    y = bias_act.bias_act(torch.randn(2, 3), torch.zeros(3), act='lrelu')
    assert y.shape == (2, 3) and calls == []
    captured = capsys.readouterr()
    assert captured.out == '' and captured.err == ''


@pytest.mark.skipif(torch.version.cuda is not None, reason='checks the message of a CPU-only torch build')
def test_cpu_only_torch_reports_why(fresh_state):
    with pytest.raises(custom_ops.PluginBuildError, match='CPU-only build'):
        custom_ops.get_plugin(**bias_act.PLUGIN)


def test_cache_dir_named_by_source_hash(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_EXTENSIONS_DIR', str(tmp_path / 'cache'))
    src, hdr = tmp_path / 'op.cu', tmp_path / 'op.h'
    src.write_text('__global__ void k() {}\n')
    hdr.write_text('#pragma once\n')
    first = custom_ops.plugin_cache_dir('op_plugin', [str(src)], [str(hdr)])
    assert os.path.dirname(first) == str(tmp_path / 'cache')
    assert os.path.basename(first).startswith('op_plugin-')
    assert custom_ops.plugin_cache_dir('op_plugin', [str(src)], [str(hdr)]) == first  # Stable.
    hdr.write_text('#pragma once\n#define X 1\n')
    second = custom_ops.plugin_cache_dir('op_plugin', [str(src)], [str(hdr)])
    assert second != first  # Any source or header edit gives a new build directory.
    assert custom_ops.plugin_cache_dir('op_plugin', [str(src)], [str(hdr)], extra_cuda_cflags=['-O3']) != second
    # Where the files live does not matter, only their names and contents.
    moved = tmp_path / 'elsewhere'
    moved.mkdir()
    (moved / 'op.cu').write_text(src.read_text())
    (moved / 'op.h').write_text(hdr.read_text())
    assert custom_ops.plugin_cache_dir('op_plugin', [str(moved / 'op.cu')], [str(moved / 'op.h')]) == second
