"""A CUDA plugin build clears the lock file an interrupted build left (torch would wait on it forever)."""

import os

from torch.utils import cpp_extension
from torch.utils.file_baton import FileBaton

from torch_utils import custom_ops


def test_stale_torch_lock_is_cleared_under_our_lock(tmp_path, monkeypatch, capsys):
    source = tmp_path / 'plugin.cpp'
    source.write_text('// no code needed: the build itself is replaced below\n')
    build_dir = tmp_path / 'cache' / 'plugin-0123'
    build_dir.mkdir(parents=True)
    (build_dir / 'plugin.cpp').write_text(source.read_text())
    (build_dir / 'lock').write_text('')  # What a build killed midway leaves behind.

    def fake_load(name, sources, build_directory, verbose, **kwargs):
        # torch's own build waits while it cannot take this baton; here it must get it at once.
        baton = FileBaton(os.path.join(build_directory, 'lock'))
        assert baton.try_acquire(), 'the stale lock file was left in place'
        baton.release()
        return f'module {name} from {sources}'

    monkeypatch.setattr(cpp_extension, 'load', fake_load)
    module = custom_ops._build_locked('plugin', [str(source)], [], str(build_dir), {})
    assert module == f'module plugin from {[str(build_dir / "plugin.cpp")]}'
    assert not (build_dir / 'lock').exists()
    assert 'interrupted build' in capsys.readouterr().out


def test_build_without_a_stale_lock_says_nothing_about_it(tmp_path, monkeypatch, capsys):
    source = tmp_path / 'plugin.cpp'
    source.write_text('// source\n')
    monkeypatch.setattr(cpp_extension, 'load', lambda name, sources, build_directory, verbose, **kwargs: sources)
    build_dir = tmp_path / 'cache' / 'plugin-4567'
    assert custom_ops._build_locked('plugin', [str(source)], [], str(build_dir), {}) == [str(build_dir / 'plugin.cpp')]
    assert (build_dir / 'plugin.cpp').read_text() == '// source\n'
    assert 'interrupted' not in capsys.readouterr().out
