"""The safe snapshot loader: read network snapshots without running code from the file.

A snapshot `.pkl` normally executes the Python source embedded in it (that is how
`torch_utils.persistence` rebuilds its objects), so a downloaded snapshot could run anything.
`load_network_pkl` therefore reads it with a restricted unpickler by default: it rebuilds
only tensors and plain containers, records each persistent object's class name, constructor
arguments and tensors WITHOUT executing its source, and then constructs the matching class
of this codebase and loads the tensors into it strictly. It reads:

- snapshots written by this codebase;
- the published Styleformer snapshots (generator `training.networks_Generator.Generator`);
- StyleGAN2-ADA PyTorch snapshots (generator `training.networks.Generator`);
- weights saved by `legacy.py` as safetensors (with their kwargs as JSON).

Architectures it does not know are refused; `trust=True` (`--trust-pickle` in the tools)
falls back to ordinary unpickling for files the user trusts. `legacy.py` is the command-line
converter built on this module.
"""

import builtins
import collections
import copy
import copyreg
import io
import json
import os
import pickle
import re

import numpy as np
import torch

import dnnlib
from training import model_zoo
from training.snapshot import atomic_write

#----------------------------------------------------------------------------

TRUST_HINT = ('If you trust the file, load it with its own embedded code by passing --trust-pickle '
              '(or trust=True to legacy.load_network_pkl).')

SNAPSHOT_KEYS = ('G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs')
MODULE_KEYS = ('G', 'D', 'G_ema', 'augment_pipe')


class LoadError(Exception):
    """A snapshot could not be loaded; the message says why and what to do."""

#----------------------------------------------------------------------------
# Architectures the safe loader rebuilds. Each entry: the class name stored in the file, the
# class of ours that takes the same constructor arguments and state dict, and a test on the
# state-dict names that tells apart architectures sharing a class name.

_STYLEFORMER_BLOCK = re.compile(r'^synthesis\.b\d+_\d+\.')   # b{res}_{j}: one transformer block.
_STYLEGAN2_BLOCK = re.compile(r'^synthesis\.b\d+\.')         # b{res}: one convolutional block.

_ARCHITECTURES = [
    ('Generator', 'training.networks_Generator', 'Generator', lambda names: any(map(_STYLEFORMER_BLOCK.match, names))),
    ('Generator', 'training.networks', 'Generator', lambda names: any(map(_STYLEGAN2_BLOCK.match, names))),
    ('Discriminator', 'training.networks_Discriminator', 'Discriminator', lambda names: True),
    ('AugmentPipe', 'training.augment', 'AugmentPipe', lambda names: True),
]


def _our_class(module_name, class_name):
    return getattr(dnnlib.util.get_module_from_obj_name(module_name)[0], class_name)


def _known_class_names():
    return sorted({f'{module}.{name}' for _, module, name, _ in _ARCHITECTURES})

#----------------------------------------------------------------------------
# Restricted unpickling.

class PersistentRecord:
    """A persistent object as the safe loader keeps it: class name, the (never executed)
    module source text, and the pickled state (its tensors, submodules and attributes)."""

    def __init__(self, meta):
        if not isinstance(meta, dict) or meta.get('type') != 'class' or not isinstance(meta.get('class_name'), str):
            raise LoadError('The file contains a malformed persistent object; it is corrupt or not a network snapshot.')
        if meta.get('version') != 6:
            raise LoadError(f'The file uses persistent object format version {meta.get("version")!r}; this codebase '
                f'reads version 6 (StyleGAN2-ADA / Styleformer). {TRUST_HINT}')
        self.class_name = meta['class_name']
        self.module_src = meta.get('module_src')
        self.state = meta.get('state') or {}

    @property
    def init_args(self):
        return tuple(self.state.get('_init_args', ()))

    @property
    def init_kwargs(self):
        return dict(self.state.get('_init_kwargs', {}))

    def tensors(self, prefix=''):
        """The state dict (name -> tensor) assembled from this object and its submodules."""
        result = {}
        non_persistent = self.state.get('_non_persistent_buffers_set', set())
        for name, value in self.state.get('_parameters', {}).items():
            if value is not None:
                result[prefix + name] = value
        for name, value in self.state.get('_buffers', {}).items():
            if value is not None and name not in non_persistent:
                result[prefix + name] = value
        for name, child in self.state.get('_modules', {}).items():
            if isinstance(child, PersistentRecord):
                result.update(child.tensors(prefix + name + '.'))
            elif child is not None:
                raise LoadError(f'Submodule "{prefix}{name}" of {self.class_name} is a {type(child).__name__}, '
                    f'which the safe loader cannot read. {TRUST_HINT}')
        return result


def _load_storage_from_bytes(data):
    # Tensors pickled outside torch.save carry their storage as torch.save bytes; read those
    # with torch's own weights-only unpickler instead of the unrestricted one.
    return torch.load(io.BytesIO(data), weights_only=True, map_location='cpu')


def _allowed_globals():
    allowed = {
        ('torch_utils.persistence', '_reconstruct_persistent_obj'): PersistentRecord,
        ('torch.storage', '_load_from_bytes'): _load_storage_from_bytes,
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('dnnlib.util', 'EasyDict'): dnnlib.EasyDict,
        ('dnnlib', 'EasyDict'): dnnlib.EasyDict,
        ('torch', 'Size'): torch.Size,
        ('torch', 'device'): torch.device,
        ('copyreg', '_reconstructor'): copyreg._reconstructor,
    }
    for name in ['_rebuild_tensor', '_rebuild_tensor_v2', '_rebuild_tensor_v3', '_rebuild_parameter',
                 '_rebuild_parameter_with_state']:
        if hasattr(torch._utils, name):
            allowed[('torch._utils', name)] = getattr(torch._utils, name)
    for name in ['set', 'frozenset', 'list', 'dict', 'tuple', 'int', 'float', 'complex', 'bool', 'str',
                 'bytes', 'bytearray', 'slice', 'object']:
        allowed[('builtins', name)] = getattr(builtins, name)
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    for module in ['numpy.core.multiarray', 'numpy._core.multiarray']:  # numpy 1 and numpy 2 names.
        allowed[(module, '_reconstruct')] = multiarray._reconstruct
        allowed[(module, 'scalar')] = multiarray.scalar
    allowed[('numpy', 'ndarray')] = np.ndarray
    allowed[('numpy', 'dtype')] = np.dtype
    return allowed


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals needed for tensors, containers and persistent records."""
    _allowed = None

    def find_class(self, module, name):
        if _SafeUnpickler._allowed is None:
            _SafeUnpickler._allowed = _allowed_globals()
        obj = _SafeUnpickler._allowed.get((module, name))
        if obj is not None:
            return obj
        if module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module.startswith('dnnlib.tflib'):
            raise LoadError('This is a TensorFlow snapshot (StyleGAN/StyleGAN2 TF); convert it with the '
                'StyleGAN2-ADA PyTorch tools first. This codebase reads PyTorch snapshots only.')
        raise LoadError(f'The file refers to "{module}.{name}", which the safe loader does not allow '
            f'(it could run code). {TRUST_HINT}')

#----------------------------------------------------------------------------
# Rebuilding our own modules from the records.

def _resolve_class(record, key, names):
    for stored_name, module_name, class_name, matches in _ARCHITECTURES:
        if record.class_name == stored_name and matches(names):
            return _our_class(module_name, class_name)
    raise LoadError(f'Snapshot entry "{key}" is a "{record.class_name}", an architecture this codebase does not '
        f'know (it rebuilds {", ".join(_known_class_names())}). {TRUST_HINT}')


def build_module(cls, init_args, init_kwargs, tensors, key, training=False):
    """Construct `cls(*init_args, **init_kwargs)` and load `tensors` into it strictly."""
    try:
        module = cls(*init_args, **init_kwargs)
    except Exception as err:
        raise LoadError(f'Snapshot entry "{key}": cannot construct {cls.__module__}.{cls.__name__} from the stored '
            f'arguments {init_kwargs!r}: {err}. {TRUST_HINT}') from err
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = sorted(name for name in set(expected) & set(tensors) if expected[name].shape != tensors[name].shape)
    if missing or unexpected or wrong_shape:
        raise LoadError(f'Snapshot entry "{key}" ({cls.__name__}) does not match this codebase\'s architecture: '
            f'missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shape {wrong_shape[:5]}. {TRUST_HINT}')
    with torch.no_grad():
        module.load_state_dict(tensors, strict=True)
        for name, param in module.named_parameters():
            param.requires_grad_(bool(getattr(tensors.get(name), 'requires_grad', False)))
    return module.train(training)


def _rebuild(record, key):
    tensors = record.tensors()
    cls = _resolve_class(record, key, list(tensors))
    return build_module(cls, record.init_args, record.init_kwargs, tensors, key, training=bool(record.state.get('training', False)))


def _contains_record(value):
    if isinstance(value, PersistentRecord):
        return True
    if isinstance(value, dict):
        return any(_contains_record(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_record(v) for v in value)
    return False

#----------------------------------------------------------------------------
# Safetensors: weights in a file that has no code path at all, kwargs as JSON beside (and inside) it.

_SAFETENSORS_META_KEY = 'styleformer_snapshot'


def _is_safetensors(data):
    if len(data) < 10:
        return False
    header_len = int.from_bytes(data[:8], 'little')
    return 0 < header_len <= len(data) - 8 and data[8:9] == b'{'


def _to_json_value(value):
    if isinstance(value, dict):
        return {str(k): _to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f'cannot write {type(value).__name__} {value!r} as JSON')


def snapshot_description(data):
    """JSON-ready description of a loaded snapshot: class and constructor kwargs of each module."""
    modules = {}
    for key in MODULE_KEYS:
        module = data.get(key)
        if module is not None:
            cls = type(module)
            modules[key] = dict(class_name=f'{cls.__module__}.{cls.__name__}', init_args=_to_json_value(list(module.init_args)),
                init_kwargs=_to_json_value(dict(module.init_kwargs)))
    return dict(format='styleformer-snapshot', version=1, modules=modules,
        training_set_kwargs=_to_json_value(data.get('training_set_kwargs')))


def save_safetensors(data, path):
    """Write the modules' tensors to `path` (.safetensors) and their kwargs to the .json beside it."""
    import safetensors.torch
    description = snapshot_description(data)
    tensors = {}
    for key in description['modules']:
        for name, value in data[key].state_dict().items():
            tensors[f'{key}.{name}'] = value.detach().cpu().clone().contiguous()  # Clones: shared tensors are not allowed.
    text = json.dumps(description, indent=2)
    # Not save_file: it leaves the file private (mode 0600) whatever the umask.
    contents = safetensors.torch.save(tensors, metadata={_SAFETENSORS_META_KEY: text})
    atomic_write(path, lambda f: f.write(contents))
    atomic_write(os.path.splitext(path)[0] + '.json', lambda f: f.write((text + '\n').encode()))


def _load_safetensors(data, file_name):
    import safetensors.torch
    header_len = int.from_bytes(data[:8], 'little')
    try:
        header = json.loads(data[8:8 + header_len])
        tensors = safetensors.torch.load(data)
    except Exception as err:
        raise LoadError(f'The safetensors file is truncated or corrupt ({err}).') from err
    text = (header.get('__metadata__') or {}).get(_SAFETENSORS_META_KEY)
    if text is None and file_name is not None and os.path.isfile(os.path.splitext(file_name)[0] + '.json'):
        with open(os.path.splitext(file_name)[0] + '.json') as f:
            text = f.read()
    if text is None:
        raise LoadError('This safetensors file has no network description; keep the .json written beside it by '
            'legacy.py in the same directory.')
    description = json.loads(text)
    known = {f'{module}.{name}': (module, name) for _, module, name, _ in _ARCHITECTURES}
    result = dict(training_set_kwargs=description.get('training_set_kwargs'))
    for key, entry in description.get('modules', {}).items():
        if entry['class_name'] not in known:
            raise LoadError(f'Safetensors entry "{key}" names class {entry["class_name"]}; this codebase rebuilds '
                f'only {", ".join(sorted(known))}.')
        prefix = key + '.'
        module_tensors = {name[len(prefix):]: value for name, value in tensors.items() if name.startswith(prefix)}
        result[key] = build_module(_our_class(*known[entry['class_name']]), entry.get('init_args', []),
            entry.get('init_kwargs', {}), module_tensors, key)
    return result

#----------------------------------------------------------------------------

def _unpickle(data, trust):
    if data[:1] != b'\x80':
        raise LoadError('The file is not a network snapshot (not a pickle or safetensors file).')
    try:
        if trust:
            return pickle.loads(data)  # Executes the embedded code: the caller trusts the file.
        return _SafeUnpickler(io.BytesIO(data)).load()
    except LoadError:
        raise
    except EOFError as err:
        raise LoadError('The snapshot file is truncated (it ends in the middle of the data); download or copy '
            'it again.') from err
    except Exception as err:
        if trust:
            raise LoadError(f'Unpickling the snapshot with its own embedded code failed ({type(err).__name__}: {err}); '
                f'the file is corrupt or needs code this codebase does not provide.') from err
        raise LoadError(f'The snapshot file is corrupt and cannot be unpickled ({type(err).__name__}: {err}).') from err


def _with_fp16(module, key):
    # Rebuild with the settings the published code used for fp16 inference and copy the weights.
    kwargs = copy.deepcopy(dict(module.init_kwargs))
    if key == 'D':
        kwargs['num_fp16_res'] = 4
        kwargs['conv_clamp'] = 256
    else:
        kwargs.setdefault('synthesis_kwargs', dnnlib.EasyDict())
        kwargs['synthesis_kwargs'] = dnnlib.EasyDict(kwargs['synthesis_kwargs'], num_fp16_res=4, conv_clamp=256)
    if kwargs == dict(module.init_kwargs):
        return module
    return build_module(type(module), module.init_args, kwargs, module.state_dict(), key, training=module.training)


def load_network_pkl(f, force_fp16=False, trust=False):
    """Read a snapshot from a binary file object (or path) -> dict with G, D, G_ema, augment_pipe,
    training_set_kwargs (None where the file has no such entry), plus any other entries.

    trust=False (default): nothing from the file is executed; known architectures are rebuilt
    as this codebase's classes. trust=True: ordinary unpickling, which runs the file's code.
    Raises LoadError with an explanation for anything that is not a loadable snapshot."""
    if isinstance(f, (str, os.PathLike)):
        with open(f, 'rb') as file:
            return load_network_pkl(file, force_fp16=force_fp16, trust=trust)
    data = f.read()
    if len(data) == 0:
        raise LoadError('The snapshot file is empty.')

    if _is_safetensors(data):
        result = _load_safetensors(data, getattr(f, 'name', None))
    else:
        result = _unpickle(data, trust)
        if not isinstance(result, dict) or not any(key in result for key in SNAPSHOT_KEYS):
            raise LoadError(f'The file is not a network snapshot: expected a dict with G, D, G_ema, found '
                f'{type(result).__name__}.')
        if not trust:
            result = {key: _rebuild(value, key) if isinstance(value, PersistentRecord) else value for key, value in result.items()}
            stray = [key for key, value in result.items() if _contains_record(value)]
            if stray:
                raise LoadError(f'Snapshot entries {stray} hold networks inside containers, which the safe loader '
                    f'does not rebuild. {TRUST_HINT}')

    if result.get('G_ema') is None:
        raise LoadError(f'The snapshot has no G_ema (entries: {sorted(k for k, v in result.items() if v is not None)}); '
            f'generation needs the generator\'s moving average G_ema.')
    for key in SNAPSHOT_KEYS:
        result.setdefault(key, None)
    if force_fp16:
        for key in ('G', 'D', 'G_ema'):
            if result[key] is not None:
                result[key] = _with_fp16(result[key], key)
    return result


def load_generator(network, device, trust=False):
    """G_ema of the snapshot at `network` (path, URL or model name) on `device`, in eval mode."""
    with model_zoo.open_network(network) as f:
        return load_network_pkl(f, trust=trust)['G_ema'].eval().requires_grad_(False).to(device)
