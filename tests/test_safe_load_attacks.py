"""Hostile snapshots against the safe loader, one group per class of attack:
code execution through the tools, process-wide poisoning, resource exhaustion from tiny
files, errors that escape as other exceptions, and non-networks taken for networks.

The hostile files are written here, either with a pickler whose `reducer_override` emits the
calls we choose (`Call`, `record`) or as raw pickle instructions (`ops`)."""

import collections
import copy
import io
import json
import os
import pickle
import struct
import subprocess
import sys

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import calc_metrics
import dnnlib
import legacy
from torch_utils import persistence
from snapshot_io import safe_load, safe_pickle
from training.networks_Generator import Generator

from snapshot_helpers import build_case, write_file

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------
# Writing hostile files.

class Call:
    """Pickles as a call of `func(*args)` (then BUILD with `state`, if given)."""

    def __init__(self, func, *args, state=None):
        self.func, self.args, self.state = func, args, state


def record(class_name, **state):
    """A persistent object in the published format, with whatever state we like."""
    meta = dict(type='class', version=6, module_src='raise SystemExit("executed")', class_name=class_name, state=state)
    return Call(persistence._reconstruct_persistent_obj, meta)


class _HostilePickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, Call):
            return (obj.func, obj.args) if obj.state is None else (obj.func, obj.args, obj.state)
        if isinstance(obj, torch.nn.Module) and persistence.is_persistent(obj):
            return persistence._reconstruct_persistent_obj, (dict(type='class', version=6, module_src='',
                class_name=type(obj).__name__, state=dict(obj.__dict__)),)
        return NotImplemented


def dumps(obj):
    buffer = io.BytesIO()
    _HostilePickler(buffer, protocol=4).dump(obj)
    return buffer.getvalue()


def text(s):
    data = s.encode()
    return pickle.BINUNICODE + struct.pack('<I', len(data)) + data


def long1(n):
    data = n.to_bytes(n.bit_length() // 8 + 1, 'little', signed=True)
    return pickle.LONG1 + bytes([len(data)]) + data


def storage(n):
    """A storage of n zeros that pickles as tensors' storages do (without the deprecation warning)."""
    return torch.TypedStorage(wrap_storage=torch.zeros(n).untyped_storage(), dtype=torch.float32, _internal=True)


def ops(*pieces):
    """Raw pickle instructions (protocol 4 header, STOP appended)."""
    return pickle.PROTO + b'\x04' + b''.join(pieces) + pickle.STOP


def glob(module, name):
    return pickle.GLOBAL + f'{module}\n{name}\n'.encode()


@pytest.fixture(scope='module')
def g_small():
    return build_case(Generator, 'g_small')


def load(data, tmp_path, name='hostile.pkl', **limits):
    return safe_load.load_network_pkl(write_file(tmp_path / name, data), **limits)

#----------------------------------------------------------------------------
# 1. Code execution through the tools.

def test_training_set_class_from_the_file_is_never_called(tmp_path, g_small, capsys):
    marker = tmp_path / 'pwned'
    hostile = dict(class_name='subprocess.call', args=['touch', str(marker)])
    path = write_file(tmp_path / 'snap.pkl', pickle.dumps(dict(G_ema=g_small, training_set_kwargs=hostile)))
    assert safe_load.load_network_pkl(path)['training_set_kwargs'] is None
    assert 'subprocess.call' in capsys.readouterr().err
    opts = dnnlib.EasyDict(gen_data=None, network_pkl=path, data=None, mirror=None, verbose=False, trust_pickle=False)
    with pytest.raises(click.ClickException, match='--data'):
        calc_metrics.load_inputs(opts)
    assert not marker.exists()


def test_training_set_kwargs_keep_only_our_dataset_and_plain_values(tmp_path, g_small, capsys):
    kwargs = dict(class_name='training.dataset.ImageFolderDataset', path='d.zip', use_labels=True, max_size=None,
        xflip=False, resolution=32, unknown_option='dropped')
    path = write_file(tmp_path / 'snap.pkl', pickle.dumps(dict(G_ema=g_small, training_set_kwargs=kwargs)))
    loaded = safe_load.load_network_pkl(path)['training_set_kwargs']
    assert loaded == dict(class_name='training.dataset.ImageFolderDataset', path='d.zip', use_labels=True,
        max_size=None, xflip=False, resolution=32)
    opts = dnnlib.EasyDict(gen_data=None, network_pkl=path, data=None, mirror=None, verbose=False, trust_pickle=False)
    _, dataset_kwargs, _ = calc_metrics.load_inputs(opts)
    assert dataset_kwargs.class_name == 'training.dataset.ImageFolderDataset' and dataset_kwargs.path == 'd.zip'
    # A nested value (e.g. a callable smuggled in a dict) is not a plain dataset argument.
    nested = dict(kwargs, path=dict(class_name='os.system'))
    path = write_file(tmp_path / 'nested.pkl', pickle.dumps(dict(G_ema=g_small, training_set_kwargs=nested)))
    assert safe_load.load_network_pkl(path)['training_set_kwargs'] is None
    assert 'path is a dict' in capsys.readouterr().err


def test_safetensors_route_carries_no_class_name(tmp_path, g_small, capsys):
    hostile = dict(class_name='shutil.rmtree', path=str(tmp_path))
    source = write_file(tmp_path / 'snap.pkl', pickle.dumps(dict(G_ema=g_small, training_set_kwargs=hostile)))
    result = CliRunner().invoke(legacy.convert_network_pickle, [f'--source={source}', f'--dest={tmp_path / "w.safetensors"}'])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / 'w.json').read_text())['training_set_kwargs'] is None
    # Also when the user trusts the pickle: the JSON is written from checked data only.
    result = CliRunner().invoke(legacy.convert_network_pickle, [f'--source={source}', f'--dest={tmp_path / "t.safetensors"}',
        '--trust-pickle'])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / 't.json').read_text())['training_set_kwargs'] is None
    # A hand-edited description is reduced the same way when it is read back.
    description = json.loads((tmp_path / 'w.json').read_text())
    description['training_set_kwargs'] = hostile
    (tmp_path / 'w.json').write_text(json.dumps(description))
    import safetensors.torch
    tensors = safetensors.torch.load_file(str(tmp_path / 'w.safetensors'))
    safetensors.torch.save_file(tensors, str(tmp_path / 'w.safetensors'))  # Description only in the .json now.
    capsys.readouterr()
    assert safe_load.load_network_pkl(str(tmp_path / 'w.safetensors'))['training_set_kwargs'] is None
    assert 'shutil.rmtree' in capsys.readouterr().err


@pytest.mark.parametrize('data', [
    ops(glob('os', 'system'), text('true'), pickle.TUPLE1, pickle.REDUCE),
    ops(text('builtins'), text('eval'), pickle.STACK_GLOBAL, text('1'), pickle.TUPLE1, pickle.REDUCE),
    ops(pickle.MARK, text('true'), pickle.INST + b'os\nsystem\n'),
    ops(glob('os', 'system'), pickle.MARK, text('true'), pickle.OBJ),
    ops(glob('builtins', 'print'), pickle.EMPTY_TUPLE, pickle.EMPTY_DICT, pickle.NEWOBJ_EX),
    ops(pickle.EXT1 + b'\x01'),
    ops(text('x'), pickle.BINPERSID),
    # Allowed names used the wrong way: a set as a callable, EasyDict called instead of created.
    ops(glob('dnnlib.util', 'EasyDict'), text('a'), pickle.TUPLE1, pickle.REDUCE),
    ops(glob('builtins', 'set'), glob('os', 'system'), pickle.TUPLE1, pickle.REDUCE),
], ids=['global', 'stack_global', 'inst', 'obj', 'newobj_ex', 'ext', 'persid', 'easydict_call', 'set_of_callable'])
def test_calls_outside_the_allowed_functions_are_refused(tmp_path, data):
    with pytest.raises(safe_load.LoadError):
        load(data, tmp_path)

#----------------------------------------------------------------------------
# 2. Process-wide poisoning: nothing outside the load can be changed by a file.

def _allowed_objects():
    import torch._utils
    objects = [dnnlib.EasyDict, dnnlib.util.EasyDict, collections.OrderedDict, torch.Size, torch.device, set, frozenset,
        np.dtype, np.ndarray, persistence._reconstruct_persistent_obj, torch.storage._load_from_bytes, torch.float32,
        safe_pickle.Record, safe_pickle._Global, safe_pickle._DtypeSpec, safe_pickle._Machine]
    objects += [getattr(torch._utils, name) for name in ('_rebuild_tensor', '_rebuild_tensor_v2', '_rebuild_parameter')]
    objects += [value for value in vars(safe_pickle).values() if callable(value)]
    return objects


def _fingerprint():
    """Attributes, defaults and (for numpy) dtype properties of everything a file could name."""
    result = []
    for obj in _allowed_objects():
        attrs = dict(vars(obj)) if hasattr(obj, '__dict__') else {}
        result.append((obj, attrs, getattr(obj, '__defaults__', None), copy.copy(getattr(obj, '__kwdefaults__', None))))
    result.append(('float64', np.dtype('f8').byteorder, np.dtype('f8').str, np.dtype('f8').isnative))
    return result


POISONERS = {
    'easydict_class_attr': ops(glob('dnnlib.util', 'EasyDict'), pickle.NONE, pickle.EMPTY_DICT, text('data'), pickle.NONE,
        pickle.SETITEM, pickle.TUPLE2, pickle.BUILD),
    'easydict_instance_dict': ops(glob('dnnlib.util', 'EasyDict'), pickle.EMPTY_DICT, text('__class__'), text('x'),
        pickle.SETITEM, pickle.BUILD),
    'rebuild_defaults': ops(glob('torch._utils', '_rebuild_tensor_v2'), pickle.NONE, pickle.EMPTY_DICT, text('__defaults__'),
        pickle.MARK, pickle.NEWTRUE, pickle.TUPLE, pickle.SETITEM, pickle.TUPLE2, pickle.BUILD),
    'persistence_dict': ops(glob('torch_utils.persistence', '_reconstruct_persistent_obj'), pickle.EMPTY_DICT,
        text('x'), pickle.NONE, pickle.SETITEM, pickle.BUILD),
    'setitems_on_class': ops(glob('collections', 'OrderedDict'), text('x'), pickle.NONE, pickle.SETITEM),
    'append_to_global': ops(glob('builtins', 'set'), text('x'), pickle.APPEND),
    'dtype_singleton': ops(glob('numpy', 'dtype'), text('f8'), pickle.NEWFALSE, pickle.NEWFALSE, pickle.TUPLE3, pickle.REDUCE,
        pickle.MARK, pickle.BININT1 + b'\x03', text('>'), pickle.NONE, pickle.NONE, pickle.NONE, pickle.BININT + struct.pack('<i', -1),
        pickle.BININT + struct.pack('<i', -1), pickle.BININT1 + b'\x00', pickle.TUPLE, pickle.BUILD,
        glob('numpy._core.multiarray', 'scalar'), pickle.POP, pickle.POP),
    'torch_dtype': ops(glob('torch', 'float32'), pickle.EMPTY_DICT, text('is_floating_point'), pickle.NONE, pickle.SETITEM,
        pickle.BUILD),
    'tensor_build': dumps(dict(G_ema=Call(torch._utils._rebuild_tensor_v2, storage(2), 0, (2,), (1,), False,
        collections.OrderedDict(), state={'__class__': 'x'}))),
}


def test_no_file_changes_the_allowed_classes_and_functions(tmp_path):
    before = _fingerprint()
    reference = io.BytesIO()
    torch.save(torch.arange(4.0), reference)
    for name, data in POISONERS.items():
        with pytest.raises(safe_load.LoadError):
            load(data, tmp_path, f'{name}.pkl')
    after = _fingerprint()
    for (obj, *state_before), (_, *state_after) in zip(before, after):
        assert state_before == state_after, f'{obj} was changed by a hostile file'
    assert not hasattr(dnnlib.EasyDict, 'data') and dnnlib.EasyDict(a=1).get('data') is None
    assert torch.equal(torch.load(io.BytesIO(reference.getvalue()), weights_only=True), torch.arange(4.0))


def test_the_dtype_a_file_builds_is_its_own(tmp_path, g_small):
    # A numpy scalar is read through a dtype the loader made itself, in the byte order the file says.
    data = dumps(dict(G_ema=g_small, options=dict(gain=np.float64(0.5), count=np.int64(3))))
    loaded = load(data, tmp_path)
    assert loaded['options'] == dict(gain=0.5, count=3) and type(loaded['options']['gain']) is float
    assert np.dtype('f8').isnative

#----------------------------------------------------------------------------
# 3. Resource exhaustion from tiny files.

def _generator_record(tensors=None, **kwargs):
    defaults = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(G_dict=[8], num_layers=[1], depth=8, minimum_head=1, conv_clamp=None))
    defaults.update(kwargs)
    params = tensors or {'weight': torch.zeros(1)}
    block = record('EncoderBlock', _parameters=params, _buffers={}, _modules={})
    synthesis = record('SynthesisNetwork', _parameters={}, _buffers={}, _modules={'b8_0': block})
    mapping = record('MappingNetwork', _parameters={}, _buffers={},
        _modules={'fc0': record('FullyConnectedLayer', _parameters={'weight': torch.zeros(1)}, _buffers={}, _modules={}),
                  'fc1': record('FullyConnectedLayer', _parameters={'weight': torch.zeros(1)}, _buffers={}, _modules={})})
    return record('Generator', _init_args=(), _init_kwargs=defaults, _parameters={}, _buffers={},
        _modules={'synthesis': synthesis, 'mapping': mapping})


@pytest.mark.parametrize('kwargs, message', [
    (dict(z_dim=10**9), 'does not match'),
    (dict(w_dim=10**9), 'does not match'),
    (dict(img_resolution=2**20), 'img_resolution'),
    (dict(mapping_kwargs=dict(num_layers=10**8)), 'mapping layers'),
    (dict(synthesis_kwargs=dict(G_dict=[8], num_layers=[10**8], depth=8, minimum_head=1, conv_clamp=None)), 'num_layers'),
])
def test_constructor_sizes_must_agree_with_the_tensors_first(tmp_path, kwargs, message):
    data = dumps(dict(G_ema=_generator_record(**kwargs)))
    assert len(data) < 4000
    with pytest.raises(safe_load.LoadError, match=message):
        load(data, tmp_path)


def test_shared_subtrees_cost_what_they_would_written_out(tmp_path):
    # 2**25 paths through 25 shared records, and 2**25 values through 25 shared lists: both refused at the budget.
    module = record('Leaf', _parameters={}, _buffers={}, _modules={})
    for _ in range(25):
        module = record('Node', _parameters={}, _buffers={}, _modules={'a': module, 'b': module})
    with pytest.raises(safe_load.LoadError, match='max_records'):
        load(dumps(dict(G_ema=record('Generator', _init_kwargs={}, _modules={'x': module}))), tmp_path, 'records.pkl')
    value = []
    for _ in range(25):
        value = [value, value]
    with pytest.raises(safe_load.LoadError, match='max_plain_values'):
        load(dumps(dict(G_ema=record('Generator', _init_kwargs=dict(x=value)), options=value)), tmp_path, 'values.pkl')


@pytest.mark.parametrize('data, message', [
    # Tuple trees as dict keys (hashing them is exponential) and colliding integer keys.
    (ops(pickle.EMPTY_DICT, pickle.EMPTY_TUPLE, pickle.DUP, pickle.TUPLE2, pickle.NONE, pickle.SETITEM), 'not a string'),
    (ops(pickle.EMPTY_DICT, pickle.MARK, *[long1(i * (2**61 - 1)) + pickle.NONE for i in range(1, 4)],
        pickle.SETITEMS), 'not a string'),
    (ops(pickle.EMPTY_SET, pickle.MARK, pickle.EMPTY_TUPLE, pickle.ADDITEMS), 'names'),
    # A huge bytearray / string declared by an 8-byte length, in a file of a few bytes.
    (ops(pickle.BYTEARRAY8 + struct.pack('<Q', 2**50)), 'truncated or corrupt'),
    (ops(pickle.BINUNICODE8 + struct.pack('<Q', 2**62)), 'truncated or corrupt'),
    (ops(pickle.LONG4 + struct.pack('<i', 2**30)), 'truncated or corrupt'),
    (ops(pickle.BINGET + b'\x07'), 'memo'),
    (ops(pickle.MARK * 100000 + pickle.EMPTY_LIST), 'not a network snapshot'),
])
def test_generic_pickle_bombs_are_refused(tmp_path, data, message):
    with pytest.raises(safe_load.LoadError, match=message):
        load(data, tmp_path)


def test_deep_nesting_is_refused_without_recursion_errors(tmp_path, g_small):
    nested = ops(pickle.EMPTY_DICT, text('G_ema'), pickle.EMPTY_LIST * 200000, pickle.APPEND * 199999, pickle.SETITEM)
    with pytest.raises(safe_load.LoadError, match='not a network'):
        load(nested, tmp_path, 'deep.pkl')
    value = []
    for _ in range(100):
        value = [value]
    with pytest.raises(safe_load.LoadError, match='max_depth'):
        load(dumps(dict(G_ema=g_small, options=value)), tmp_path, 'deep_options.pkl')


def test_tensor_views_cannot_claim_more_than_their_data(tmp_path):
    data = storage(4)
    hooks = collections.OrderedDict()
    for size, stride, message in [((10**12,), (0,), 'more elements'), ((10,), (1,), 'beyond'), ((8, 4), (0, 1), 'more elements')]:
        view = Call(torch._utils._rebuild_tensor_v2, data, 0, size, stride, False, hooks)
        with pytest.raises(safe_load.LoadError, match=message):
            load(dumps(dict(G_ema=_generator_record({'weight': view}))), tmp_path)
    # Many views of one storage: each element may be claimed once.
    views = {f'w{i}': Call(torch._utils._rebuild_tensor_v2, data, 0, (4,), (1,), False, hooks) for i in range(3)}
    with pytest.raises(safe_load.LoadError, match='more elements'):
        load(dumps(dict(G_ema=_generator_record(views))), tmp_path)


def test_limits_bound_the_work_and_can_be_raised(tmp_path, g_small, monkeypatch):
    data = pickle.dumps(dict(G_ema=g_small))
    path = write_file(tmp_path / 'snap.pkl', data)
    for limit, message in [(dict(max_file_bytes=1000), 'max_file_bytes'), (dict(max_opcodes=1000), 'max_opcodes'),
                           (dict(max_tensor_elements=1000), 'max_tensor_elements'), (dict(max_records=3), 'max_records'),
                           (dict(max_plain_values=10), 'max_plain_values'), (dict(max_tensors=10), 'max_tensors'),
                           (dict(max_layers=2), 'max_layers')]:
        with pytest.raises(safe_load.LoadError, match=message):
            safe_load.load_network_pkl(path, **limit)
    monkeypatch.setenv('STYLEFORMER_LOAD_MAX_OPCODES', '1000')
    with pytest.raises(safe_load.LoadError, match='max_opcodes'):
        safe_load.load_network_pkl(path)
    assert type(safe_load.load_network_pkl(path, max_opcodes=10**7)['G_ema']) is Generator  # The keyword wins.
    with pytest.raises(TypeError, match='max_opcode'):
        safe_load.load_network_pkl(path, max_opcode=5)
    monkeypatch.setenv('STYLEFORMER_LOAD_MAX_OPCODES', 'lots')
    with pytest.raises(safe_load.LoadError, match='not a number'):
        safe_load.load_network_pkl(path)

#----------------------------------------------------------------------------
# 4. Malformed files end in LoadError (one line), and the CLIs print it without a traceback.

def _malformed_records():
    t = torch.zeros(1)
    return {
        'state_list': record('Generator', ),
        'params_list': record('Generator', _init_kwargs={}, _parameters=[t]),
        'kwargs_list': record('Generator', _init_kwargs=[1, 2]),
        'args_dict': record('Generator', _init_args={'a': 1}, _init_kwargs={}),
        'param_not_tensor': record('Generator', _init_kwargs={}, _parameters={'w': 'not a tensor'}),
        'modules_list': record('Generator', _init_kwargs={}, _modules=[1]),
        'module_not_record': record('Generator', _init_kwargs={}, _modules={'m': 5}),
        'training_str': record('Generator', _init_kwargs={}, training='yes'),
        'buffers_set': record('Generator', _init_kwargs={}, _buffers={'b': t}, _non_persistent_buffers_set=['b']),
        'bad_version': Call(persistence._reconstruct_persistent_obj, dict(type='class', version=[], class_name='G', state={})),
        'state_not_dict': Call(persistence._reconstruct_persistent_obj, dict(type='class', version=6, class_name='G', state=[1])),
    }


def _cyclic_record():
    # state = {}; r = record(state); state['_modules'] = {'self': r}
    meta_state = (pickle.EMPTY_DICT + pickle.BINPUT + b'\x01')
    meta = (pickle.EMPTY_DICT + pickle.MARK + text('type') + text('class') + text('version') + pickle.BININT1 + b'\x06'
        + text('class_name') + text('Generator') + text('state') + meta_state + pickle.SETITEMS)
    rec = glob('torch_utils.persistence', '_reconstruct_persistent_obj') + meta + pickle.TUPLE1 + pickle.REDUCE + pickle.BINPUT + b'\x02'
    fill = (pickle.BINGET + b'\x01' + text('_modules') + pickle.EMPTY_DICT + text('self') + pickle.BINGET + b'\x02'
        + pickle.SETITEM + pickle.SETITEM + pickle.POP)
    return ops(pickle.EMPTY_DICT, text('G_ema'), rec, fill, pickle.BINGET + b'\x02', pickle.SETITEM)


def test_malformed_records_raise_load_error(tmp_path):
    files = {name: dumps(dict(G_ema=value)) for name, value in _malformed_records().items()}
    files['cyclic'] = _cyclic_record()
    for name, data in files.items():
        with pytest.raises(safe_load.LoadError) as info:
            load(data, tmp_path, f'{name}.pkl')
        assert '\n' not in str(info.value), name


def test_malformed_safetensors_descriptions_raise_load_error(tmp_path, g_small):
    import safetensors.torch
    tensors = {f'G_ema.{k}': v.contiguous() for k, v in g_small.state_dict().items()}
    good = dict(format='styleformer-snapshot', version=1, modules=dict(G_ema=dict(class_name='training.networks_Generator.Generator',
        init_args=[], init_kwargs=dict(g_small.init_kwargs))), training_set_kwargs=None)
    cases = {
        'not_json': '{not json',
        'deep': '[' * 100000 + ']' * 100000,
        'list': '[1, 2]',
        'modules_list': json.dumps(dict(good, modules=[1])),
        'entry_str': json.dumps(dict(good, modules=dict(G_ema='x'))),
        'kwargs_list': json.dumps(dict(good, modules=dict(G_ema=dict(class_name='training.networks_Generator.Generator', init_kwargs=[1])))),
        'other_key': json.dumps(dict(good, modules=dict(evil=good['modules']['G_ema']))),
    }
    for name, description in cases.items():
        data = safetensors.torch.save(tensors, metadata={'styleformer_snapshot': description})
        with pytest.raises(safe_load.LoadError) as info:
            load(data, tmp_path, f'{name}.safetensors')
        assert '\n' not in str(info.value), name


@pytest.mark.parametrize('tool, args', [
    ('legacy.py', ['--dest={tmp}/out.pkl', '--source={file}']),
    ('generate.py', ['--outdir={tmp}/out', '--seeds=0', '--network={file}']),
    ('calc_metrics.py', ['--metrics=fid50k_full', '--network={file}']),
])
def test_clis_print_one_line_and_exit_non_zero(tmp_path, tool, args):
    file = write_file(tmp_path / 'bad.pkl', dumps(dict(G_ema=record('Generator', _init_kwargs=[1]))))
    result = subprocess.run([sys.executable, tool] + [a.format(tmp=tmp_path, file=file) for a in args], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr and 'constructor arguments' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr

#----------------------------------------------------------------------------
# 5. Non-networks are not taken for networks.

@pytest.mark.parametrize('value', [0, dnnlib.EasyDict(a=1), [1, 2], 'G', torch.zeros(2)])
def test_entries_that_are_no_networks_are_refused(tmp_path, value):
    with pytest.raises(safe_load.LoadError, match='not a network'):
        load(dumps(dict(G_ema=value)), tmp_path)


def test_networks_outside_the_module_entries_are_refused(tmp_path, g_small):
    with pytest.raises(safe_load.LoadError, match='network'):
        load(dumps(dict(G_ema=g_small, extra=g_small)), tmp_path)
    with pytest.raises(safe_load.LoadError, match='network inside'):
        load(dumps(dict(G_ema=g_small, extra=[g_small])), tmp_path, 'nested.pkl')


def test_refused_torch_names_are_not_imported(tmp_path):
    path = write_file(tmp_path / 'sub.pkl', ops(glob('torch', 'onnx'), pickle.POP, pickle.EMPTY_DICT))
    code = ('import sys; from snapshot_io import safe_load\n'
            f'try: safe_load.load_network_pkl({str(path)!r})\n'
            'except safe_load.LoadError as e: print("refused")\n'
            'print("torch.onnx" in sys.modules)')
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ['refused', 'False'], result.stdout + result.stderr

#----------------------------------------------------------------------------
# Genuine files still load.

@pytest.mark.parametrize('protocol', [3, 4, 5])
def test_snapshots_of_every_python3_pickle_protocol_load(tmp_path, g_small, protocol):
    options = dict(G_kwargs=dnnlib.EasyDict(z_dim=8, mapping_kwargs=dict(num_layers=2)), batch=4, betas=(0, 0.99))
    data = pickle.dumps(dict(G=g_small, G_ema=g_small, training_set_kwargs=dict(path='d.zip'), training_options=options),
        protocol=protocol)
    loaded = load(data, tmp_path)
    assert type(loaded['G_ema']) is Generator and loaded['training_options'] == options
    assert type(loaded['training_options']['G_kwargs']) is dnnlib.EasyDict
    for a, b in zip(loaded['G_ema'].state_dict().values(), g_small.state_dict().values()):
        assert torch.equal(a, b)


def test_a_discriminator_cannot_loop_on_sizes_its_tensors_do_not_have(tmp_path):
    leaf = lambda: record('Layer', _parameters={'weight': torch.zeros(1)}, _buffers={}, _modules={})
    for kwargs, modules, message in [
            (dict(c_dim=0, img_resolution=2**40, img_channels=3), {f'b{2**40}': leaf()}, 'img_resolution'),
            (dict(c_dim=5, img_resolution=8, img_channels=3, mapping_kwargs=dict(num_layers=10**8)), {'b8': leaf()}, 'mapping')]:
        hostile = record('Discriminator', _init_kwargs=kwargs, _parameters={}, _buffers={}, _modules=modules)
        with pytest.raises(safe_load.LoadError, match=message):
            load(dumps(dict(D=hostile, G_ema=_generator_record())), tmp_path)


def test_numpy_arrays_are_skipped_as_attributes_and_refused_as_data(tmp_path, g_small):
    G = copy.deepcopy(g_small)
    G.lookup_table = np.arange(6.0).reshape(2, 3)  # An attribute that is neither a tensor nor an argument.
    loaded = load(dumps(dict(G_ema=G)), tmp_path)
    assert not hasattr(loaded['G_ema'], 'lookup_table')
    with pytest.raises(safe_load.LoadError, match='numpy array'):
        load(dumps(dict(G_ema=g_small, options=dict(table=np.zeros(3)))), tmp_path, 'options.pkl')

#----------------------------------------------------------------------------
# Round 2: a second review of the reader and the loader, one group per class of hole.
# 1. Every byte of every tensor comes from the file.

def legacy_storage(payload, numel=None, storage_type='FloatStorage', keys=('k',), count=None, little_endian=True):
    """The bytes torch pickles a storage as (its legacy torch.save format), with every part chosen:
    the element count the header declares, the keys whose data follows, and the count before the data."""
    numel = len(payload) // 4 if numel is None else numel
    sys_info = dict(protocol_version=1001, little_endian=little_endian, type_sizes=dict(short=2, int=4, long=4))
    pid = (pickle.PROTO + b'\x02' + pickle.MARK + text('storage') + glob('torch', storage_type) + text('k') + text('cpu')
        + long1(numel) + pickle.NONE + pickle.TUPLE + pickle.BINPERSID + pickle.STOP)
    header = b''.join(pickle.dumps(value, protocol=2) for value in [0x1950a86a20f9469cfc6c, 1001, sys_info])
    return header + pid + pickle.dumps(list(keys), protocol=2) + struct.pack('<q', numel if count is None else count) + payload


def storage_call(data):
    return Call(torch.storage._load_from_bytes, data)


def test_the_storage_reader_reads_what_torch_writes():
    for dtype in [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16,
                  torch.int8, torch.uint8, torch.bool]:
        for values in [torch.arange(7).to(dtype), torch.zeros(0, dtype=dtype)]:
            typed = torch.TypedStorage(wrap_storage=values.untyped_storage(), dtype=dtype, _internal=True)
            data = typed.__reduce__()[1][0]
            read_dtype, untyped = safe_pickle._read_storage(data)
            assert read_dtype == dtype and torch.equal(torch.empty(0, dtype=dtype).set_(untyped), values)
    assert safe_pickle._read_storage(legacy_storage(struct.pack('<2f', 1.5, -2)))[1].nbytes() == 8


def with_buffer(G, name, value):
    """A copy of G whose buffer `name` pickles as `value`."""
    G = copy.deepcopy(G)
    module_name, _, buffer_name = name.rpartition('.')
    G.get_submodule(module_name)._buffers[buffer_name] = value
    return G


@pytest.mark.parametrize('storage_bytes', [
    lambda n: legacy_storage(b'', numel=n, keys=()),                 # Declared, never filled: torch leaves it uninitialised.
    lambda n: legacy_storage(b'', numel=n, keys=('other',)),         # Filled under another key.
    lambda n: legacy_storage(bytes(4), numel=n),                     # Declares more than its data.
    lambda n: legacy_storage(bytes(4 * n), count=n + 1),             # The count before the data disagrees with the header.
    lambda n: legacy_storage(bytes(4 * n + 4), numel=n),             # Bytes beyond what it declares.
    lambda n: legacy_storage(bytes(4 * n))[:-1],                     # Truncated data.
    lambda n: legacy_storage(bytes(4 * n), keys=('k', 'k')),         # The same data named twice.
    lambda n: legacy_storage(bytes(4 * n), little_endian=False),
], ids=['unfilled', 'other_key', 'short', 'count', 'long', 'truncated', 'two_keys', 'big_endian'])
def test_storages_hold_exactly_the_bytes_they_declare(tmp_path, g_small, storage_bytes):
    # A genuine network but for one buffer, whose storage is the one under test.
    n = g_small.mapping.w_avg.numel()
    w_avg = Call(torch._utils._rebuild_tensor_v2, storage_call(storage_bytes(n)), 0, (n,), (1,), False,
        collections.OrderedDict())
    hostile = dumps(dict(G_ema=with_buffer(g_small, 'mapping.w_avg', w_avg)))
    with pytest.raises(safe_load.LoadError, match='storage'):
        load(hostile, tmp_path)
    # The same network with the storage written as it should be loads.
    w_avg = Call(torch._utils._rebuild_tensor_v2, storage_call(legacy_storage(struct.pack(f'<{n}f', *range(n)))), 0, (n,),
        (1,), False, collections.OrderedDict())
    loaded = load(dumps(dict(G_ema=with_buffer(g_small, 'mapping.w_avg', w_avg))), tmp_path)
    assert torch.equal(loaded['G_ema'].mapping.w_avg, torch.arange(n, dtype=torch.float32))


def test_a_tiny_file_cannot_declare_a_large_network(tmp_path):
    weight = Call(torch._utils._rebuild_tensor_v2, storage_call(legacy_storage(b'', numel=3 * 10**8, keys=())), 0,
        (3 * 10**8,), (1,), False, collections.OrderedDict())
    hostile = dumps(dict(G_ema=_generator_record({'weight': weight})))
    assert len(hostile) < 4000
    with pytest.raises(safe_load.LoadError, match='exactly the data'):
        load(hostile, tmp_path)


def test_tensor_values_are_the_bytes_of_the_file(tmp_path, g_small):
    # Through legacy.py into every output: each value equals the one pickled, not process memory.
    source = write_file(tmp_path / 'snap.pkl', dumps(dict(G_ema=g_small)))
    result = CliRunner().invoke(legacy.convert_network_pickle, [f'--source={source}', f'--dest={tmp_path / "out.safetensors"}'])
    assert result.exit_code == 0, result.output
    import safetensors.torch
    written = safetensors.torch.load_file(str(tmp_path / 'out.safetensors'))
    for name, value in g_small.state_dict().items():
        assert torch.equal(written[f'G_ema.{name}'], value), name

#----------------------------------------------------------------------------
# 2. One reader for storages: zip archives (which torch never pickles) are not read at all.

def zip_storage(extra_entry_bytes=0):
    """torch.save's zip format of a storage of 4 floats, with the data entry deflated and padded."""
    import zipfile
    buffer = io.BytesIO()
    torch.save(storage(4), buffer)
    inflated = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(inflated, 'w', zipfile.ZIP_DEFLATED) as dest:
        for info in source.infolist():
            content = source.read(info)
            dest.writestr(info.filename, content + bytes(extra_entry_bytes) if info.filename.endswith('/data/0') else content)
    return inflated.getvalue()


@pytest.mark.parametrize('data', [
    zip_storage(),
    zip_storage(10**6),                                        # Inflates a thousandfold.
    legacy_storage(bytes(16)) + zip_storage(),                 # A second archive behind genuine data.
    zip_storage() + legacy_storage(bytes(16)),
], ids=['zip', 'deflated', 'zip_after', 'zip_before'])
def test_storages_are_read_by_one_reader(tmp_path, data):
    weight = Call(torch._utils._rebuild_tensor_v2, storage_call(data), 0, (4,), (1,), False, collections.OrderedDict())
    with pytest.raises(safe_load.LoadError, match='zip archive|exactly the data'):
        load(dumps(dict(G_ema=_generator_record({'weight': weight}))), tmp_path)

#----------------------------------------------------------------------------
# 3. Work per instruction: calls on one shared (memoized) argument count what they walk.

def put(i):
    return pickle.LONG_BINPUT + struct.pack('<I', i)


def get(i):
    return pickle.LONG_BINGET + struct.pack('<I', i)


def repeated_calls(module, name, argument, calls):
    """A list of `calls` results of module.name(argument), the argument stored once and memoized."""
    return (glob(module, name) + put(1) + pickle.POP + argument + put(2) + pickle.POP + pickle.EMPTY_LIST + pickle.MARK
        + (get(1) + get(2) + pickle.TUPLE1 + pickle.REDUCE) * calls + pickle.APPENDS)


def test_one_stored_storage_cannot_be_read_many_times(tmp_path):
    data = legacy_storage(bytes(4 * 250_000))
    hostile = ops(repeated_calls('torch.storage', '_load_from_bytes', pickle.BINBYTES + struct.pack('<I', len(data)) + data, 50))
    with pytest.raises(safe_load.LoadError, match='more bytes than the file'):
        load(hostile, tmp_path)


def test_sets_of_one_shared_list_count_its_items(tmp_path):
    names = pickle.EMPTY_LIST + pickle.MARK + text('a') + put(3) + get(3) * 99_999 + pickle.APPENDS
    hostile = ops(repeated_calls('builtins', 'set', names, 10))
    with pytest.raises(safe_load.LoadError, match='max_opcodes'):
        load(hostile, tmp_path, max_opcodes=300_000)  # 100,000 instructions, 1,000,000 items walked.
    with pytest.raises(safe_load.LoadError, match='not a network snapshot'):
        load(ops(repeated_calls('builtins', 'set', names, 1)), tmp_path, max_opcodes=300_000)


def test_sizes_are_bounded_before_arithmetic(tmp_path):
    huge = pickle.LONG4 + struct.pack('<i', 200_000) + b'\xff' * 199_999 + b'\x7f'  # Multiplying sixteen of them takes seconds.
    sizes = huge + put(4) + pickle.POP + pickle.MARK + get(4) * 15 + pickle.TUPLE + put(5)
    tensor = (glob('torch._utils', '_rebuild_tensor_v2') + pickle.MARK + storage_bytes_call(legacy_storage(bytes(4)))
        + pickle.BININT1 + b'\x00' + sizes + get(5) + pickle.NEWFALSE + pickle.EMPTY_DICT + pickle.TUPLE + pickle.REDUCE)
    with pytest.raises(safe_load.LoadError, match='malformed size'):
        load(ops(tensor), tmp_path)


def storage_bytes_call(data):
    return (glob('torch.storage', '_load_from_bytes') + pickle.BINBYTES + struct.pack('<I', len(data)) + data
        + pickle.TUPLE1 + pickle.REDUCE)

#----------------------------------------------------------------------------
# 4. Names and counts are bounded before any name is joined or any network constructed.

def test_long_names_are_refused_before_they_are_joined(tmp_path):
    long_name = 'x' * 10**6
    child = record('Layer', _parameters={long_name: torch.zeros(1)}, _buffers={}, _modules={})
    hostile = record('Generator', _init_kwargs={}, _parameters={}, _buffers={}, _modules={'a': child, 'b': child})
    with pytest.raises(safe_load.LoadError, match='parameters name of 1000000 characters'):
        load(dumps(dict(G_ema=hostile)), tmp_path)
    hostile = record('Generator', _init_kwargs={}, _parameters={}, _buffers={}, _modules={long_name: child})
    with pytest.raises(safe_load.LoadError, match='modules name of 1000000 characters'):
        load(dumps(dict(G_ema=hostile)), tmp_path, 'module.pkl')


def test_shared_name_tables_count_every_use(tmp_path):
    # 1,000 names in one shared dict, used by one shared submodule under 200 names: 200,000 tensor names.
    empty = torch.zeros(0)
    params = {f'w{i}': empty for i in range(1000)}
    child = record('Layer', _parameters=params, _buffers={}, _modules={})
    hostile = record('Generator', _init_kwargs={}, _parameters={}, _buffers={}, _modules={f'm{i}': child for i in range(200)})
    data = dumps(dict(G_ema=hostile))
    assert len(data) < 100_000
    with pytest.raises(safe_load.LoadError, match='max_tensors'):
        load(data, tmp_path)
    # None entries count as well: they are entries the loader walks.
    hostile = record('Generator', _init_kwargs={}, _parameters={}, _buffers={}, _modules={f'm{i}': record('Layer',
        _parameters={}, _buffers={}, _modules={f'n{j}': None for j in range(1000)}) for i in range(200)})
    with pytest.raises(safe_load.LoadError, match='max_records'):
        load(dumps(dict(G_ema=hostile)), tmp_path, 'none.pkl')


def test_layer_counts_from_names_are_bounded_before_construction(tmp_path):
    # One empty tensor under the names of 1,000 blocks, and constructor arguments that agree.
    empty = torch.zeros(0)
    blocks = {f'b8_{j}': record('EncoderBlock', _parameters={'w': empty}, _buffers={}, _modules={}) for j in range(1000)}
    synthesis = record('SynthesisNetwork', _parameters={}, _buffers={}, _modules=blocks)
    mapping = record('MappingNetwork', _parameters={}, _buffers={}, _modules={'fc0': record('FullyConnectedLayer',
        _parameters={'weight': empty}, _buffers={}, _modules={})})
    hostile = record('Generator', _init_kwargs=dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
        mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(G_dict=[8], num_layers=[1000], depth=8, minimum_head=1,
        conv_clamp=None)), _parameters={}, _buffers={}, _modules={'synthesis': synthesis, 'mapping': mapping})
    with pytest.raises(safe_load.LoadError, match='1001 blocks and mapping layers, more than max_layers'):
        load(dumps(dict(G_ema=hostile)), tmp_path)

#----------------------------------------------------------------------------
# 5. Each entry holds a network of its role.

@pytest.fixture(scope='module')
def d_small():
    from training.networks_Discriminator import Discriminator
    return build_case(Discriminator, 'd_orig')


def test_entries_hold_networks_of_their_role(tmp_path, g_small, d_small):
    from training.augment import AugmentPipe
    augment_pipe = AugmentPipe(xflip=1)
    for name, snapshot in [('d_as_g', dict(G_ema=d_small)), ('augment_as_g', dict(G_ema=augment_pipe)),
                           ('g_as_d', dict(G_ema=g_small, D=g_small)), ('d_as_augment', dict(G_ema=g_small, augment_pipe=d_small))]:
        with pytest.raises(safe_load.LoadError, match='where snapshots hold a'):
            load(dumps(snapshot), tmp_path, f'{name}.pkl')
    loaded = load(dumps(dict(G_ema=g_small, D=d_small, augment_pipe=augment_pipe)), tmp_path)
    assert [type(loaded[key]).__name__ for key in ['G_ema', 'D', 'augment_pipe']] == ['Generator', 'Discriminator', 'AugmentPipe']


def test_safetensors_entries_hold_networks_of_their_role(tmp_path, g_small, d_small):
    import safetensors.torch
    tensors = {f'G_ema.{k}': v.contiguous() for k, v in d_small.state_dict().items()}
    description = dict(format='styleformer-snapshot', version=1, modules=dict(G_ema=dict(
        class_name='training.networks_Discriminator.Discriminator', init_args=[], init_kwargs=dict(d_small.init_kwargs))))
    data = safetensors.torch.save(tensors, metadata={'styleformer_snapshot': json.dumps(description)})
    with pytest.raises(safe_load.LoadError, match='where snapshots hold a Generator'):
        load(data, tmp_path, 'd_as_g.safetensors')

#----------------------------------------------------------------------------
# 6. Storages the networks cannot hold (quantized, complex) are refused by the reader.

@pytest.mark.parametrize('storage_type', ['QUInt8Storage', 'QInt8Storage', 'QInt32Storage', 'ComplexFloatStorage'])
def test_storages_networks_cannot_hold_are_refused(tmp_path, g_small, storage_type):
    n = g_small.mapping.w_avg.numel()
    w_avg = Call(torch._utils._rebuild_tensor_v2, storage_call(legacy_storage(bytes(4 * n), storage_type=storage_type)),
        0, (n,), (1,), False, collections.OrderedDict())
    with pytest.raises(safe_load.LoadError, match='plain numbers') as info:
        load(dumps(dict(G_ema=with_buffer(g_small, 'mapping.w_avg', w_avg))), tmp_path)
    assert '\n' not in str(info.value)


def test_safetensors_tensors_networks_cannot_hold_are_refused(tmp_path, g_small):
    import safetensors.torch
    tensors = {f'G_ema.{k}': v.contiguous() for k, v in g_small.state_dict().items()}
    tensors['G_ema.mapping.w_avg'] = tensors['G_ema.mapping.w_avg'].to(torch.complex64)
    description = dict(format='styleformer-snapshot', version=1, modules=dict(G_ema=dict(
        class_name='training.networks_Generator.Generator', init_args=[], init_kwargs=dict(g_small.init_kwargs))))
    data = safetensors.torch.save(tensors, metadata={'styleformer_snapshot': json.dumps(description)})
    with pytest.raises(safe_load.LoadError, match='complex64'):
        load(data, tmp_path, 'complex.safetensors')

#----------------------------------------------------------------------------
# 7. Messages quote the file escaped and shortened: one line, no terminal control sequences.

EVIL = '\n' + 'Traceback (most recent call last):\nSaved out.pkl\x1b[2J\x1b]0;title\x07\r\u202e' + 'x' * 5000


def _evil_files(g_small):
    t = torch.zeros(1)
    G = copy.deepcopy(g_small)
    G.mapping._buffers[EVIL[:90]] = torch.zeros(1)  # An unexpected tensor (names are at most 100 characters).
    G_kwarg = copy.deepcopy(g_small)
    G_kwarg._init_kwargs = dict(g_small.init_kwargs, **{EVIL[:90]: 1})  # Read back as a keyword of the constructor.
    return {
        'class_name': dict(G_ema=record(EVIL[:150], _init_kwargs={})),  # Class names have at most 200 characters.
        'entry_key': {'G_ema': g_small, EVIL: g_small},
        'plain_entry': {'G_ema': g_small, EVIL: [torch.zeros(1)]},
        'submodule': dict(G_ema=record('Generator', _init_kwargs={}, _modules={EVIL[:90]: 5})),
        'parameter': dict(G_ema=record('Generator', _init_kwargs={}, _parameters={EVIL[:90]: 'x'})),
        'long_name': dict(G_ema=record('Generator', _init_kwargs={}, _parameters={EVIL: t})),
        'unexpected_tensor': dict(G_ema=G),
        'kwarg': dict(G_ema=G_kwarg),
        'no_g_ema': {'G': None, EVIL: 1},
    }


def assert_clean_line(message):
    assert message.isprintable() and len(message) < 1200, message


def test_messages_quote_the_file_escaped_and_short(tmp_path, g_small):
    files = {name: dumps(value) for name, value in _evil_files(g_small).items()}
    files['global'] = ops(glob('os' + EVIL, 'system' + EVIL))
    files['stack_global'] = ops(text('os'), text(EVIL), pickle.STACK_GLOBAL)
    files['storage_type'] = dumps(dict(G_ema=_generator_record({'weight': Call(torch._utils._rebuild_tensor_v2,
        storage_call(legacy_storage(bytes(4), storage_type='Float' + EVIL[:50])), 0, (1,), (1,), False, {})})))
    for name, data in files.items():
        with pytest.raises(safe_load.LoadError) as info:
            load(data, tmp_path, f'{name}.pkl')
        assert_clean_line(str(info.value))


def test_the_tools_print_the_file_escaped(tmp_path):
    source = write_file(tmp_path / 'evil.pkl', dumps(dict(G_ema=record(EVIL[:150], _init_kwargs={}))))
    result = CliRunner().invoke(legacy.convert_network_pickle, [f'--source={source}', f'--dest={tmp_path / "out.pkl"}'])
    assert result.exit_code == 1
    assert_clean_line(result.output.strip())

#----------------------------------------------------------------------------
# 8. The explorer and the other readers: ranges, Host headers, projected w's, dataset files.

def asgi_get(app, url, host='127.0.0.1:8000'):
    """(status, body) of a GET of `url` from the ASGI `app`, with the Host header given."""
    import asyncio
    path, _, query = url.partition('?')
    scope = dict(type='http', asgi=dict(version='3.0'), http_version='1.1', method='GET', scheme='http', path=path,
        raw_path=path.encode(), query_string=query.encode(), headers=[(b'host', host.encode())], root_path='',
        server=('127.0.0.1', 8000), client=('127.0.0.1', 5000))
    messages = []

    async def receive():
        return dict(type='http.request', body=b'', more_body=False)

    async def send(message):
        messages.append(message)
    asyncio.run(app(scope, receive, send))
    return messages[0]['status'], b''.join(m.get('body', b'') for m in messages[1:])


class _InfoOnly:
    """A renderer that answers /api/info only."""

    def info(self):
        return dict(resolution=8)


def test_ranges_are_counted_before_they_are_expanded():
    from tools import arguments
    with pytest.raises(ValueError, match='holds 100000001 values; at most 256'):
        arguments.parse_range('0-100000000', 256)
    with pytest.raises(ValueError, match='holds'):
        arguments.parse_range('0-' + '9' * 18, 10**6)
    with pytest.raises(ValueError, match='not a number'):
        arguments.parse_range('1' * 5000, 10)  # More digits than any seed: refused before int() parses them.
    from explorer_app.server import create_app
    status, body = asgi_get(create_app(_InfoOnly()), '/api/image.png?mix_seed=1&mix_styles=0-100000000')
    assert status == 400 and b'at most 256' in body
    import generate
    result = CliRunner().invoke(generate.generate_images_cmd, ['--network=x.pkl', '--outdir=out', '--seeds=0-100000000000'])
    assert result.exit_code == 2 and 'at most 1000000' in result.output


@pytest.mark.parametrize('host, allowed', [('127.0.0.1:8000', True), ('localhost:8000', True), ('[::1]:8000', True),
    ('192.168.1.5:8000', True), ('myserver:8000', True), ('evil.example:8000', False), ('localhost.evil.example', False),
    ('', False)])
def test_the_explorer_answers_requests_for_itself_only(host, allowed):
    from explorer_app.server import create_app
    status, body = asgi_get(create_app(_InfoOnly(), host='myserver'), '/api/info', host=host)
    assert (status == 200) == allowed, body
    if not allowed:
        assert status == 400 and b'Host header' in body


def test_projected_w_files_are_bounded_and_checked(tmp_path, g_small):
    from tools import rendering
    def npz(name, **arrays):
        np.savez_compressed(tmp_path / name, **arrays)
        return str(tmp_path / name)
    good = npz('good.npz', w=np.ones([1, g_small.num_ws, g_small.w_dim], np.float32))
    assert rendering.load_projected_w(good, g_small, 'cpu').shape == (1, g_small.num_ws, g_small.w_dim)
    bomb = npz('bomb.npz', w=np.zeros([rendering.MAX_PROJECTED_WS + 1, g_small.num_ws, g_small.w_dim], np.float64))
    assert os.path.getsize(bomb) < 100_000
    np.save(tmp_path / 'single.npy', np.ones([1, g_small.num_ws, g_small.w_dim], np.float32))
    for path, message in [(bomb, 'larger than 1000'), (str(tmp_path / 'single.npy'), 'single array'),
                          (npz('names.npz', w=np.array([[['a'] * g_small.w_dim] * g_small.num_ws])), 'floats'),
                          (npz('other.npz', z=np.ones(3)), 'w.npy'), (write_file(tmp_path / 'text.npz', b'PK junk'), 'not an .npz')]:
        with pytest.raises(ValueError, match=message):
            rendering.load_projected_w(path, g_small, 'cpu')


def _dataset_zip(path, labels_json, images=1):
    import zipfile
    import PIL.Image
    image = io.BytesIO()
    PIL.Image.new('RGB', (4, 4)).save(image, format='PNG')
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
        for i in range(images):
            archive.writestr(f'img{i}.png', image.getvalue())
        archive.writestr('dataset.json', labels_json)
    return str(path)


@pytest.mark.parametrize('labels_json, message', [
    ('{"labels": [["img0.png", 0]]' + ' ' * 30_000_000 + '}', 'larger than'),     # Deflates a thousandfold.
    ('[' * 100_000 + ']' * 100_000, 'RecursionError'),
    ('{"labels": [1, 2]}', 'pairs'),
    ('{"labels": [[5, 0]]}', 'pairs'),
    ('{"labels": {"img0.png": 0}}', 'pairs'),
    ('[1]', 'TypeError'),
    ('{"labels": [["img0.png\\u001b[2J", 0]]}', 'no label'),
], ids=['bomb', 'deep', 'ints', 'name_not_str', 'dict', 'list', 'escape'])
def test_dataset_label_files_are_bounded_and_checked(tmp_path, labels_json, message):
    from training.dataset import DatasetError, ImageFolderDataset
    path = _dataset_zip(tmp_path / 'd.zip', labels_json)
    assert os.path.getsize(path) < 100_000
    with pytest.raises(DatasetError, match=message) as info:
        ImageFolderDataset(path, use_labels=True)
    assert '\n' not in str(info.value)


def test_dataset_arguments_from_a_snapshot_have_the_dataset_types(tmp_path, g_small, capsys):
    for name, value in [('path', 5), ('path', None), ('resolution', '64'), ('use_labels', 'yes'), ('random_seed', 1.5)]:
        kwargs = dict(dict(class_name='training.dataset.ImageFolderDataset', path='d.zip'), **{name: value})
        assert load(dumps(dict(G_ema=g_small, training_set_kwargs=kwargs)), tmp_path)['training_set_kwargs'] is None
        assert f'{name} is a {type(value).__name__}' in capsys.readouterr().err

#----------------------------------------------------------------------------
# 9. Trusted caches: the file a model name resolves to is named, and a planted one is pointed out.

def test_a_planted_cached_model_is_pointed_out(tmp_path, monkeypatch, capsys):
    from snapshot_io import model_zoo
    url = 'http://127.0.0.1:9/never-downloaded.pkl'  # Nothing is fetched: the cached file is used.
    (tmp_path / 'models.json').write_text(json.dumps(dict(models=[dict(name='some-model', url=url, sha256=None)])))
    monkeypatch.setenv(model_zoo.MODEL_LIST_ENV, str(tmp_path / 'models.json'))
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    planted = dnnlib.util.cache_file_path(url)
    os.makedirs(os.path.dirname(planted))
    write_file(planted, pickle.dumps(dict(G_ema=None)))
    assert model_zoo.open_network('some-model', verbose=False, return_filename=True) == planted
    assert f'{planted} (found in the cache, not downloaded by this codebase)' in capsys.readouterr().err
    model_zoo.open_network('some-model', return_filename=True)
    assert f'Model some-model: {planted} (sha256 as recorded' in capsys.readouterr().err


def test_a_local_file_named_like_a_model_is_pointed_out(tmp_path, monkeypatch, capsys):
    from snapshot_io import model_zoo
    name = sorted(model_zoo.load_models())[0]
    monkeypatch.chdir(tmp_path)
    write_file(tmp_path / name, b'local')
    assert model_zoo.resolve_network(name)[0] == name
    assert f'"{name}" is the local file {tmp_path / name}, not the listed model' in capsys.readouterr().err
    assert model_zoo.resolve_network(f'./{name}')[0] == f'./{name}' and capsys.readouterr().err == ''
