"""torch_utils.persistence: pickles carry their module's source and load where it is gone."""

import importlib
import json
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

from torch_utils import persistence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The defining module of the test networks; written to a temporary directory per test.
NET_SRC = textwrap.dedent('''
    import torch
    from torch_utils import persistence, misc

    def double_relu(x):
        return torch.relu(x) * 2  # A module-level helper: must travel with the class.

    @persistence.persistent_class
    class Block(torch.nn.Module):
        def __init__(self, channels, gain=1.0):
            super().__init__()
            self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
            self.gain = gain

        def forward(self, x):
            misc.assert_shape(x, [None, self.conv.in_channels, None, None])
            return double_relu(self.conv(x)) * self.gain

    @persistence.persistent_class
    class Net(torch.nn.Module):
        def __init__(self, channels, num_blocks, block_kwargs={}):
            super().__init__()
            self.blocks = torch.nn.ModuleList([Block(channels, **block_kwargs) for _ in range(num_blocks)])
            self.head = torch.nn.Linear(channels, 2)  # A plain torch module inside.
            self.register_buffer('offset', torch.randn(2))

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(x.mean(dim=[2, 3])) + self.offset

    @persistence.persistent_class
    class WideNet(Net):
        def __init__(self, channels):
            super().__init__(channels, num_blocks=1, block_kwargs=dict(gain=0.5))
            self.extra = torch.nn.Parameter(torch.randn([]))

        def forward(self, x):
            return super().forward(x) * self.extra
''')


def _write_module(directory, name, src):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f'{name}.py'), 'w') as f:
        f.write(src)


@pytest.fixture
def net_module(tmp_path, monkeypatch, request):
    """Import NET_SRC under a name unique to the test; forget it afterwards."""
    name = f'persist_test_net_{request.node.name}'.replace('[', '_').replace(']', '_')
    _write_module(tmp_path / 'src', name, NET_SRC)
    monkeypatch.syspath_prepend(str(tmp_path / 'src'))
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)


def _load_in_fresh_process(pickle_path, inputs_path, extra_path=None):
    """Start a subprocess that sees only the repository (plus `extra_path`), unpickles the
    network, runs it on the saved input, and saves the output."""
    script = textwrap.dedent('''
        import importlib.util, json, pickle, sys, torch
        pickle_path, inputs_path, out_path, module_name = sys.argv[1:5]
        with open(pickle_path, 'rb') as f:
            net = pickle.load(f)
        x = torch.load(inputs_path)
        with torch.no_grad():
            y = net(x)
        net2 = pickle.loads(pickle.dumps(net))  # Re-pickling a reconstructed object works too.
        with torch.no_grad():
            y2 = net2(x)
        torch.save(dict(y=y, y2=y2), out_path)
        print(json.dumps(dict(class_module=type(net).__module__, class_name=type(net).__name__,
            init_kwargs=dict(net.init_kwargs), block_module=type(net.blocks[0]).__module__,
            defining_module_found=importlib.util.find_spec(module_name) is not None)))
    ''')
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONSTARTUP')}
    env['PYTHONPATH'] = REPO_ROOT + (os.pathsep + extra_path if extra_path else '')
    out_path = pickle_path + (f'.{os.path.basename(extra_path)}' if extra_path else '') + '.out.pt'
    module_name = os.path.basename(pickle_path).split('.')[0]
    proc = subprocess.Popen([sys.executable, '-c', script, pickle_path, inputs_path, out_path, module_name],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, out_path


def _finish(proc):
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, f'subprocess failed:\n{stderr}'
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.slow  # Two fresh Python processes that import torch.
def test_unpickle_in_fresh_process_without_and_with_changed_module(net_module, tmp_path):
    torch.manual_seed(0)
    net = net_module.WideNet(channels=3).eval()
    with torch.no_grad():
        net.extra.fill_(1.5)
    x = torch.randn(2, 3, 5, 7)
    with torch.no_grad():
        expected = net(x)

    module_name = net_module.__name__
    pickle_path = str(tmp_path / f'{module_name}.pkl')
    inputs_path = str(tmp_path / 'inputs.pt')
    with open(pickle_path, 'wb') as f:
        pickle.dump(net, f)
    torch.save(x, inputs_path)

    # The same module name with different code: the pickle must keep its own code.
    changed_dir = str(tmp_path / 'changed')
    _write_module(changed_dir, module_name, NET_SRC.replace('* 2  #', '* 100  #'))

    absent, absent_out = _load_in_fresh_process(pickle_path, inputs_path)
    changed, changed_out = _load_in_fresh_process(pickle_path, inputs_path, extra_path=changed_dir)
    for proc, out_path, module_found in [(absent, absent_out, False), (changed, changed_out, True)]:
        info = _finish(proc)
        assert info['defining_module_found'] == module_found
        assert info['class_name'] == 'WideNet'
        assert info['class_module'].startswith('_persistent_module_')  # Built from the embedded source.
        assert info['block_module'] == info['class_module']
        assert info['init_kwargs'] == {'channels': 3}
        outputs = torch.load(out_path)
        assert torch.equal(outputs['y'], expected)
        assert torch.equal(outputs['y2'], expected)


def test_pickle_layout_is_the_published_one(net_module):
    net = net_module.Net(4, num_blocks=2)
    reconstruct, args = net.__reduce__()[:2]
    assert reconstruct is persistence._reconstruct_persistent_obj
    (meta,) = args
    assert set(meta.keys()) == {'type', 'version', 'module_src', 'class_name', 'state'}
    assert meta['type'] == 'class' and meta['version'] == 6 and meta['class_name'] == 'Net'
    assert meta['module_src'] == NET_SRC
    assert meta['state']['_init_args'] == (4,) and meta['state']['_init_kwargs'] == {'num_blocks': 2}
    assert 'blocks' in meta['state']['_modules']
    data = pickle.dumps(net)
    assert b'torch_utils.persistence' in data and b'_reconstruct_persistent_obj' in data


def test_reads_hand_built_published_meta():
    # Built without our writer: exactly the fields a published snapshot holds.
    src = textwrap.dedent('''
        from torch_utils import persistence
        @persistence.persistent_class
        class Scale:
            def __init__(self, factor):
                self.factor = factor
            def __call__(self, x):
                return x * self.factor
    ''')
    meta = dict(type='class', version=6, module_src=src, class_name='Scale',
        state=dict(factor=3.0, _init_args=(3.0,), _init_kwargs={}))

    class Published:
        def __reduce__(self):
            return (persistence._reconstruct_persistent_obj, (meta,))

    obj = pickle.loads(pickle.dumps(Published()))
    assert obj(2) == 6.0 and obj.init_args == (3.0,)
    assert persistence.is_persistent(obj) and type(obj).__name__ == 'Scale'

    with pytest.raises(ValueError, match='version'):
        persistence._reconstruct_persistent_obj(dict(meta, version=5))
    broken_src = 'import module_that_no_longer_exists_xyz\n' + src
    modules_before = set(sys.modules)
    with pytest.raises(RuntimeError, match='import_hook'):
        persistence._reconstruct_persistent_obj(dict(meta, module_src=broken_src))
    assert not any(name.startswith('_persistent_module_') for name in set(sys.modules) - modules_before)
    with pytest.raises(ValueError, match='Missing'):
        persistence._reconstruct_persistent_obj(dict(meta, class_name='Missing'))


def test_import_hook_can_edit_meta(net_module, monkeypatch):
    monkeypatch.setattr(persistence, '_import_hooks', [])
    torch.manual_seed(1)
    block = net_module.Block(2, gain=1.0)
    data = pickle.dumps(block)
    x = torch.randn(1, 2, 4, 4)

    seen = []
    def hook(meta):
        seen.append(meta.class_name)
        meta.module_src = meta.module_src.replace('* 2  #', '* 6  #')  # Patch the old code...
        meta.state.gain = 0.5                                         # ...and the stored state.
        return meta
    persistence.import_hook(hook)
    patched = pickle.loads(data)
    assert seen == ['Block']
    assert torch.allclose(patched(x), block(x) * 1.5)

    persistence.import_hook(lambda meta: None)
    with pytest.raises(RuntimeError, match='returned None'):
        pickle.loads(data)
    with pytest.raises(TypeError):
        persistence.import_hook('not callable')


def test_init_args_is_persistent_and_subclasses(net_module):
    block_kwargs = dict(gain=2.0)
    net = net_module.Net(3, 1, block_kwargs=block_kwargs)
    block_kwargs['gain'] = 7.0  # Mutating the caller's dict must not change the record.
    assert net.init_args == (3, 1) and net.init_kwargs == {'block_kwargs': {'gain': 2.0}}
    assert net.init_kwargs.block_kwargs == {'gain': 2.0}
    assert persistence.is_persistent(net) and persistence.is_persistent(net_module.Net)
    assert not persistence.is_persistent(torch.nn.Linear(1, 1)) and not persistence.is_persistent([])
    assert persistence.persistent_class(net_module.Net) is net_module.Net  # Decorating twice is a no-op.
    assert net_module.Net.__name__ == 'Net' and net_module.Net.__module__ == net_module.__name__

    wide = net_module.WideNet(channels=3)
    meta = wide.__reduce__()[1][0]
    # The most derived class records its own arguments, not those it passed to Net.__init__.
    assert meta['class_name'] == 'WideNet' and meta['state']['_init_kwargs'] == {'channels': 3}
    assert meta['state']['_init_args'] == ()
    restored = pickle.loads(pickle.dumps(wide))
    x = torch.randn(1, 3, 4, 4)
    assert torch.equal(restored(x), wide(x))

    with pytest.raises(TypeError):
        persistence.persistent_class(lambda: None)
