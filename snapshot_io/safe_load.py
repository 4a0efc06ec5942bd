"""The safe snapshot loader: read network snapshots without running code from the file.

A snapshot `.pkl` normally executes the Python source embedded in it (that is how
`torch_utils.persistence` rebuilds its objects), so a downloaded snapshot could run anything.
`load_network_pkl` therefore reads it with the loader's own pickle reader by default
(`snapshot_io.safe_pickle`: tensors, plain data and records of each persistent object's class
name, constructor arguments and tensors, WITHOUT executing its source). This module checks
those records as plain data, checks the constructor arguments against the stored tensors
(loop counts first, then every shape on the meta device), and only then constructs the
matching class of this codebase and loads the tensors into it strictly. Every bound on the
work is a field of `Limits`. Threat model and guarantees: docs/security.md. It reads:

- snapshots written by this codebase;
- the published Styleformer snapshots (generator `training.networks_Generator.Generator`);
- StyleGAN2-ADA PyTorch snapshots (generator `training.networks.Generator`);
- Styleformer-C snapshots of this codebase (generator `training.networks_StyleformerC.Generator`);
- weights saved by `legacy.py` as safetensors (with their kwargs as JSON).

Architectures it does not know are refused; `trust=True` (`--trust-pickle` in the tools)
falls back to ordinary unpickling for files the user trusts. `legacy.py` is the command-line
converter built on this module.
"""

import copy
import dataclasses
import json
import os
import pickle
import re
import reprlib
import sys

import numpy as np
import torch

import dnnlib
from dnnlib.util import atomic_write
from snapshot_io import model_zoo
from training import precision
from training.dataset import DATASET_CLASS
from snapshot_io.safe_pickle import NETWORK_DTYPES, TRUST_HINT, LoadError, Record, Unread, quoted, unpickle

#----------------------------------------------------------------------------
# Limits: every bound on the work a file can cause, with its default. Raise one for a single
# load with a keyword argument of load_network_pkl, or for every load with the environment
# variable STYLEFORMER_LOAD_<NAME> (e.g. STYLEFORMER_LOAD_MAX_FILE_BYTES=64000000000).
# A 1024x1024 Styleformer snapshot (G, G_ema, D) needs about a tenth of each; docs/security.md has the figures.

@dataclasses.dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 32 * 2**30            # Size of the snapshot file.
    max_opcodes: int = 2_000_000                # Pickle instructions, plus the work of the calls they make.
    max_tensor_elements: int = 16_000_000_000   # Tensor elements over the whole file (and per network).
    max_records: int = 100_000                  # Persistent objects (networks and their submodules), counted per use.
    max_tensors: int = 100_000                  # Tensors (state-dict entries) over the whole file, counted per use.
    max_layers: int = 256                       # Blocks plus mapping layers of one network (each one is constructed).
    max_depth: int = 32                         # Nesting of submodules, and of containers in plain data.
    max_plain_values: int = 1_000_000           # Values in the plain data (constructor kwargs, options), counted per use.

LIMITS_ENV_PREFIX = 'STYLEFORMER_LOAD_'


def resolve_limits(**overrides):
    """The limits of one load: defaults, then STYLEFORMER_LOAD_* environment variables, then `overrides`."""
    values = {}
    for field in dataclasses.fields(Limits):
        text = os.environ.get(LIMITS_ENV_PREFIX + field.name.upper())
        if text is not None:
            try:
                values[field.name] = int(float(text))
            except (ValueError, OverflowError):
                raise LoadError(f'{LIMITS_ENV_PREFIX}{field.name.upper()}={text!r} is not a number; set it to e.g. '
                    f'{field.default}.') from None
    unknown = sorted(set(overrides) - {field.name for field in dataclasses.fields(Limits)})
    if unknown:
        raise TypeError(f'unknown load limit(s) {unknown}; known: {[field.name for field in dataclasses.fields(Limits)]}')
    values.update(overrides)
    return Limits(**values)

#----------------------------------------------------------------------------

SNAPSHOT_KEYS = ('G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs')
MODULE_KEYS = ('G', 'D', 'G_ema', 'augment_pipe')
ROLES = dict(G='Generator', G_ema='Generator', D='Discriminator', augment_pipe='AugmentPipe')  # The class each entry holds.

_short_repr = reprlib.Repr()
_short_repr.maxlevel, _short_repr.maxdict, _short_repr.maxlist, _short_repr.maxstring, _short_repr.maxother = 3, 8, 8, 40, 40


def _brief(value):
    """A short one-line repr of plain data, for error messages."""
    return ' '.join(_short_repr.repr(value).split())

#----------------------------------------------------------------------------
# Plain data: what the file holds besides networks, checked and copied into fresh containers.

class _Budget:
    """The plain values and records one load may still visit (counted per use, so shared
    subtrees cost what they would cost written out: no exponential work)."""

    def __init__(self, limits):
        self.limits = limits
        self.values_left = limits.max_plain_values
        self.records_left = limits.max_records
        self.tensors_left = limits.max_tensors

    def value(self):
        self.values_left -= 1
        if self.values_left < 0:
            raise LoadError(f'The file holds more than max_plain_values={self.limits.max_plain_values} values besides '
                'its tensors; raise that limit (see docs/security.md) if the file is genuine.')

    def records(self, count):
        self.records_left -= count
        if self.records_left < 0:
            raise LoadError(f'The file holds more than max_records={self.limits.max_records} network modules; '
                'raise that limit (see docs/security.md) if the file is genuine.')

    def tensors(self, count):
        self.tensors_left -= count
        if self.tensors_left < 0:
            raise LoadError(f'The file holds more than max_tensors={self.limits.max_tensors} tensors; raise that limit '
                '(see docs/security.md) if the file is genuine.')


def _plain(value, budget, where, depth=0):
    """A fresh copy of `value` if it is plain data (None, bool, int, float, str, and lists,
    tuples, dicts with string keys of them); LoadError naming `where` otherwise."""
    budget.value()
    if depth > budget.limits.max_depth:
        raise LoadError(f'{where} is nested deeper than max_depth={budget.limits.max_depth}; the file is corrupt or hostile.')
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        raise LoadError(f'{where} holds an integer beyond 64 bits; the file is corrupt or hostile.')
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, budget, where, depth + 1) for v in value)
    if isinstance(value, dict):  # dict, OrderedDict, EasyDict: keys are strings (the reader allows no others).
        result = dnnlib.EasyDict() if isinstance(value, dnnlib.EasyDict) else {}
        for k, v in value.items():
            result[k] = _plain(v, budget, where, depth + 1)
        return result
    if isinstance(value, Unread):
        raise LoadError(f'{where} holds a numpy array, which the safe loader does not read. {TRUST_HINT}')
    if isinstance(value, Record):
        raise LoadError(f'{where} holds a network inside other data, which the safe loader does not rebuild. {TRUST_HINT}')
    raise LoadError(f'{where} holds a {type(value).__name__} where plain data (numbers, strings, lists, dicts) belongs; '
        'the file is corrupt or not a snapshot of a known kind.')


_DATASET_KEYS = dict(path=(str,), resolution=(int, type(None)), use_labels=(bool,), max_size=(int, type(None)),
    xflip=(bool,), random_seed=(int,))  # The arguments kept, with the types the dataset takes.


def _warn(reason):
    print(f'WARNING: ignoring the snapshot\'s training_set_kwargs ({reason}); give the dataset with --data '
        'where a tool needs it.', file=sys.stderr, flush=True)


def dataset_kwargs_from_file(value):
    """`training_set_kwargs` as a file stores them, reduced to our dataset class with plain
    scalar arguments, or None (with a one-line warning on stderr) when the file names anything else."""
    if value is None:
        return None
    if not isinstance(value, dict) or value.get('class_name', DATASET_CLASS) != DATASET_CLASS:
        shown = value.get('class_name') if isinstance(value, dict) else value
        _warn(f'dataset class {_brief(shown)} is not {DATASET_CLASS}')
        return None
    result = dnnlib.EasyDict(class_name=DATASET_CLASS) if 'class_name' in value else dnnlib.EasyDict()
    for key in _DATASET_KEYS:
        if key in value:
            if not isinstance(value[key], _DATASET_KEYS[key]):
                _warn(f'{key} is a {type(value[key]).__name__}, not a {" or ".join(t.__name__ for t in _DATASET_KEYS[key])}')
                return None
            result[key] = value[key]
    return result

#----------------------------------------------------------------------------
# Records -> (class name, constructor arguments, state dict), with every type checked.

@dataclasses.dataclass
class ModuleSpec:
    class_name: str
    init_args: tuple
    init_kwargs: dict
    tensors: dict       # State-dict name -> tensor, as the file stores them.
    training: bool


def _record_spec(record, key, budget):
    state = record.state
    where = f'Snapshot entry "{key}" ({quoted(record.class_name)})'
    init_args = _plain(state.get('_init_args', ()), budget, where + ' constructor arguments')
    init_kwargs = _plain(state.get('_init_kwargs', {}), budget, where + ' constructor arguments')
    if not isinstance(init_args, (list, tuple)) or not isinstance(init_kwargs, dict):
        raise LoadError(f'{where}: the constructor arguments are a {type(init_args).__name__} and a '
            f'{type(init_kwargs).__name__}, not a list and a dict; the file is corrupt.')
    training = state.get('training', False)
    if not isinstance(training, bool):
        raise LoadError(f'{where}: "training" is a {type(training).__name__}, not a bool; the file is corrupt.')
    tensors = {}
    budget.records(1)
    _collect_tensors(record, '', tensors, budget, set(), key)
    return ModuleSpec(record.class_name, tuple(init_args), init_kwargs, tensors, training)


_MAX_NAME_LENGTH = 100  # Of one attribute name; the longest in our networks has 15 characters.


def _named_entries(record, field, key, prefix, budget):
    """The entries of a module's `field` dict, counted (per use) and with short names, before
    any name is joined to a prefix."""
    entries = record.state.get(field, {})
    if entries is None:
        return {}
    if not isinstance(entries, dict):
        raise LoadError(f'Snapshot entry "{key}": {field} of module {quoted(prefix) if prefix else key} is a {type(entries).__name__}, '
            'not a dict; the file is corrupt.')
    if field == '_modules':
        budget.records(len(entries))
    else:
        budget.tensors(len(entries))
    longest = max(map(len, entries), default=0)
    if longest > _MAX_NAME_LENGTH:
        raise LoadError(f'Snapshot entry "{key}": module {quoted(prefix) if prefix else key} has a {field[1:]} name of {longest} '
            f'characters (network attribute names have at most {_MAX_NAME_LENGTH}); the file is corrupt or hostile.')
    return entries


def _collect_tensors(record, prefix, tensors, budget, path, key):
    """Add the state dict of `record` and its submodules to `tensors`; `path` holds the records
    being visited, to refuse cycles."""
    if id(record) in path:
        raise LoadError(f'Snapshot entry "{key}": module {quoted(prefix)} contains itself; the file is corrupt or hostile.')
    if len(path) >= budget.limits.max_depth:
        raise LoadError(f'Snapshot entry "{key}": modules are nested deeper than max_depth={budget.limits.max_depth}.')
    path.add(id(record))
    non_persistent = record.state.get('_non_persistent_buffers_set', set())
    if not isinstance(non_persistent, (set, frozenset)):
        raise LoadError(f'Snapshot entry "{key}": _non_persistent_buffers_set is a {type(non_persistent).__name__}, '
            'not a set; the file is corrupt.')
    for field in ('_parameters', '_buffers'):
        for name, value in _named_entries(record, field, key, prefix, budget).items():
            if value is None or (field == '_buffers' and name in non_persistent):
                continue
            if not isinstance(value, torch.Tensor):
                raise LoadError(f'Snapshot entry "{key}": {field[1:-1]} {quoted(prefix + name)} is a {type(value).__name__}, '
                    'not a tensor; the file is corrupt.')
            tensors[prefix + name] = value
    for name, child in _named_entries(record, '_modules', key, prefix, budget).items():
        if isinstance(child, Record):
            _collect_tensors(child, f'{prefix}{name}.', tensors, budget, path, key)
        elif child is not None:
            raise LoadError(f'Submodule {quoted(prefix + name)} of {quoted(record.class_name)} is a {type(child).__name__}, '
                f'which the safe loader cannot read. {TRUST_HINT}')
    path.remove(id(record))

#----------------------------------------------------------------------------
# Architectures the safe loader rebuilds. Each entry: the class name stored in the file, the
# class of ours that takes the same constructor arguments and state dict, and a test on the
# state-dict names that tells apart architectures sharing a class name.

# Numbers of at most 7 digits: a name cannot make a constructor loop over a huge resolution.
_STYLEFORMER_BLOCK = re.compile(r'^synthesis\.b(\d{1,7})_(\d{1,7})\.')  # b{res}_{j}: one transformer block.
_STYLEGAN2_BLOCK = re.compile(r'^synthesis\.b(\d{1,7})\.')              # b{res}: one convolutional block.
_STYLEFORMER_C_BLOCK = re.compile(r'^synthesis\.transformer\.b(\d{1,7})_(\d{1,7})\.')  # Styleformer-C's transformer part.
_D_BLOCK = re.compile(r'^b(\d{1,7})\.')
_MAPPING_LAYER = re.compile(r'^mapping\.fc(\d{1,7})\.')
_LAYER = re.compile(r'^(synthesis\.b\d+(?:_\d+)?|b\d+|mapping\.fc\d+)\.')  # Each one is a step of the constructor.

_ARCHITECTURES = [
    # Before StyleGAN2: Styleformer-C also has b{res} convolutional blocks.
    ('Generator', 'training.networks_StyleformerC', 'Generator', lambda names: any(map(_STYLEFORMER_C_BLOCK.match, names))),
    ('Generator', 'training.networks_Generator', 'Generator', lambda names: any(map(_STYLEFORMER_BLOCK.match, names))),
    ('Generator', 'training.networks', 'Generator', lambda names: any(map(_STYLEGAN2_BLOCK.match, names))),
    ('Discriminator', 'training.networks_Discriminator', 'Discriminator', lambda names: True),
    ('AugmentPipe', 'training.augment', 'AugmentPipe', lambda names: True),
]


def _our_class(module_name, class_name):
    return getattr(dnnlib.util.get_module_from_obj_name(module_name)[0], class_name)


def _known_class_names():
    return sorted({f'{module}.{name}' for _, module, name, _ in _ARCHITECTURES})


def _check_role(key, class_name):
    # Names of no known network are refused later, with the hint to trust the file.
    if class_name in ROLES.values() and class_name != ROLES[key]:
        raise LoadError(f'Snapshot entry "{key}" holds a {quoted(class_name)}, where snapshots hold a {ROLES[key]}; the '
            'file is corrupt or hostile.')


def _resolve_class(spec, key):
    for stored_name, module_name, class_name, matches in _ARCHITECTURES:
        if spec.class_name == stored_name and matches(list(spec.tensors)):
            return _our_class(module_name, class_name)
    raise LoadError(f'Snapshot entry "{key}" is a {quoted(spec.class_name)}, an architecture this codebase does not '
        f'know (it rebuilds {", ".join(_known_class_names())}). {TRUST_HINT}')

#----------------------------------------------------------------------------
# Sizes that decide how much a constructor loops and allocates, checked against the tensors first.

def _expect(key, what, stored, derived):
    if stored != derived:
        raise LoadError(f'Snapshot entry "{key}": {what} is {_brief(stored)} in the constructor arguments but '
            f'{_brief(derived)} by the stored tensors; the file is corrupt or hostile.')


def _matches(pattern, names):
    return [tuple(int(g) for g in m.groups()) for m in map(pattern.match, names) if m]


def _check_mapping(kwargs, names, key, built=True):
    # `built`: whether the constructor makes a mapping network (always in G, only with labels in D).
    mapping_kwargs = kwargs.get('mapping_kwargs', {})
    num_layers = mapping_kwargs.get('num_layers', 8) if isinstance(mapping_kwargs, dict) else mapping_kwargs
    _expect(key, 'the number of mapping layers', num_layers if built else 0,
        len({m[0] for m in _matches(_MAPPING_LAYER, names)}))


def _synthesis_kwargs(kwargs):
    synthesis_kwargs = kwargs.get('synthesis_kwargs', {})
    return synthesis_kwargs if isinstance(synthesis_kwargs, dict) else {}


def _check_transformer_layers(kwargs, names, key, pattern, what, stored_resolution):
    """The transformer blocks b{res}_{j} matched by `pattern`: their top resolution must be
    `stored_resolution` (the kwarg named `what`) and their count per resolution num_layers."""
    blocks = _matches(pattern, names)
    _expect(key, what, stored_resolution, max(res for res, _ in blocks))
    per_resolution = {}
    for res, j in set(blocks):
        per_resolution[res] = per_resolution.get(res, 0) + 1
    num_layers = _synthesis_kwargs(kwargs).get('num_layers')
    _expect(key, 'synthesis num_layers', list(num_layers) if isinstance(num_layers, (list, tuple)) else num_layers,
        [per_resolution[res] for res in sorted(per_resolution)])


def _check_styleformer_generator(kwargs, names, key):
    _check_transformer_layers(kwargs, names, key, _STYLEFORMER_BLOCK, 'img_resolution', kwargs.get('img_resolution'))
    _check_mapping(kwargs, names, key)


def _check_styleformer_c_generator(kwargs, names, key):
    _check_transformer_layers(kwargs, names, key, _STYLEFORMER_C_BLOCK, 'switch_resolution',
        _synthesis_kwargs(kwargs).get('switch_resolution'))
    _check_stylegan2_generator(kwargs, names, key)


def _check_stylegan2_generator(kwargs, names, key):
    _expect(key, 'img_resolution', kwargs.get('img_resolution'), max(res for res, in _matches(_STYLEGAN2_BLOCK, names)))
    _check_mapping(kwargs, names, key)


def _check_discriminator(kwargs, names, key):
    resolutions = [res for res, in _matches(_D_BLOCK, names)]
    _expect(key, 'img_resolution', kwargs.get('img_resolution'), max(resolutions) if resolutions else None)
    _check_mapping(kwargs, names, key, built=kwargs.get('c_dim') != 0)


_STRUCTURE_CHECKS = [
    ('training.networks_Generator', 'Generator', _check_styleformer_generator),
    ('training.networks_StyleformerC', 'Generator', _check_styleformer_c_generator),
    ('training.networks', 'Generator', _check_stylegan2_generator),
    ('training.networks_Discriminator', 'Discriminator', _check_discriminator),
]


def _check_before_construction(cls, init_args, init_kwargs, tensors, key, limits):
    if init_args:
        raise LoadError(f'Snapshot entry "{key}" has positional constructor arguments; the safe loader reads keyword '
            f'arguments only. {TRUST_HINT}')
    layers = len({m.group(1) for m in map(_LAYER.match, tensors) if m})
    if layers > limits.max_layers:
        raise LoadError(f'Snapshot entry "{key}" has {layers} blocks and mapping layers, more than max_layers='
            f'{limits.max_layers}; raise that limit (see docs/security.md) if the file is genuine.')
    elements = sum(t.numel() for t in tensors.values())
    if elements > limits.max_tensor_elements:
        raise LoadError(f'Snapshot entry "{key}" holds {elements} tensor elements, more than max_tensor_elements='
            f'{limits.max_tensor_elements}; raise that limit (see docs/security.md) if the file is genuine.')
    for module_name, class_name, check in _STRUCTURE_CHECKS:
        if cls is _our_class(module_name, class_name):
            check(init_kwargs, list(tensors), key)
    # With the loop counts checked, a construction on the meta device allocates nothing and
    # tells the full set of shapes the real construction would allocate.
    with torch.device('meta'):
        probe = _construct(cls, init_kwargs, key)
    expected = {name: tuple(t.shape) for name, t in probe.state_dict().items()}
    stored = {name: tuple(t.shape) for name, t in tensors.items()}
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    wrong_shape = sorted(name for name in set(expected) & set(stored) if expected[name] != stored[name])
    if missing or unexpected or wrong_shape:
        raise LoadError(f'Snapshot entry "{key}" ({cls.__name__}) does not match this codebase\'s architecture: '
            f'missing {_names(missing)}, unexpected {_names(unexpected)}, wrong shape {_names(wrong_shape)}. {TRUST_HINT}')


def _names(names):
    return '[' + ', '.join(quoted(name, 80) for name in names[:5]) + (', ...]' if len(names) > 5 else ']')


def _construct(cls, init_kwargs, key):
    try:
        return cls(**init_kwargs)
    except Exception as err:
        reason = quoted(' '.join(str(err).split()), 200)  # It can name a keyword argument of the file.
        raise LoadError(f'Snapshot entry "{key}": cannot construct {cls.__module__}.{cls.__name__} from the stored '
            f'arguments {_brief(init_kwargs)}: {type(err).__name__}: {reason}. {TRUST_HINT}') from None


def build_module(cls, init_args, init_kwargs, tensors, key, training=False, limits=None):
    """`cls(**init_kwargs)` loaded strictly with `tensors`, after checking that the arguments
    agree with the tensors (so that nothing is allocated that the tensors do not justify)."""
    _check_before_construction(cls, init_args, init_kwargs, tensors, key, limits or resolve_limits())
    module = _construct(cls, init_kwargs, key)
    with torch.no_grad():
        module.load_state_dict(tensors, strict=True)
        for name, param in module.named_parameters():
            param.requires_grad_(bool(getattr(tensors.get(name), 'requires_grad', False)))
    return module.train(training)

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
    # Checked again: with trust=True the loader returns the file's own training_set_kwargs.
    return dict(format='styleformer-snapshot', version=1, modules=modules,
        training_set_kwargs=_to_json_value(dataset_kwargs_from_file(data.get('training_set_kwargs'))))


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


def _load_safetensors(data, file_name, limits):
    import safetensors.torch
    header_len = int.from_bytes(data[:8], 'little')
    try:
        header = json.loads(data[8:8 + header_len])
        tensors = safetensors.torch.load(data)
    except Exception as err:
        raise LoadError(f'The safetensors file is truncated or corrupt ({type(err).__name__}).') from None
    unusable = sorted(str(dtype) for dtype in {t.dtype for t in tensors.values()} - NETWORK_DTYPES)
    if unusable:
        raise LoadError(f'The safetensors file holds tensors of type {", ".join(unusable[:3])}; network tensors are plain '
            'numbers (float, integer or bool), the file is corrupt or hostile.')
    metadata = header.get('__metadata__') if isinstance(header, dict) else None
    text = metadata.get(_SAFETENSORS_META_KEY) if isinstance(metadata, dict) else None
    if text is None and file_name is not None and os.path.isfile(os.path.splitext(file_name)[0] + '.json'):
        with open(os.path.splitext(file_name)[0] + '.json', 'rb') as f:
            text = _read_limited(f, limits)
    if text is None:
        raise LoadError('This safetensors file has no network description; keep the .json written beside it by '
            'legacy.py in the same directory.')
    try:
        description = json.loads(text)
    except (ValueError, RecursionError, TypeError) as err:
        raise LoadError(f'The network description of this safetensors file is not valid JSON ({type(err).__name__}).') from None
    budget = _Budget(limits)
    description = _plain(description, budget, 'The safetensors network description')
    modules = description.get('modules', {}) if isinstance(description, dict) else None
    if not isinstance(modules, dict):
        raise LoadError('The safetensors network description has no "modules" dict; write it again with legacy.py.')
    known = {f'{module}.{name}': (module, name) for _, module, name, _ in _ARCHITECTURES}
    result = dict(training_set_kwargs=dataset_kwargs_from_file(description.get('training_set_kwargs')))
    for key, entry in modules.items():
        if (key not in MODULE_KEYS or not isinstance(entry, dict) or not isinstance(entry.get('init_kwargs', {}), dict)
                or not isinstance(entry.get('init_args', []), list)):
            raise LoadError(f'Safetensors description entry {quoted(key)} is not a network entry of {", ".join(MODULE_KEYS)} '
                'with class_name, init_args and init_kwargs; write it again with legacy.py.')
        if entry.get('class_name') not in known:
            raise LoadError(f'Safetensors entry "{key}" names class {_brief(entry.get("class_name"))}; this codebase '
                f'rebuilds only {", ".join(sorted(known))}.')
        _check_role(key, known[entry['class_name']][1])
        prefix = key + '.'
        module_tensors = {name[len(prefix):]: value for name, value in tensors.items() if name.startswith(prefix)}
        result[key] = build_module(_our_class(*known[entry['class_name']]), tuple(entry.get('init_args', [])),
            entry.get('init_kwargs', {}), module_tensors, key, limits=limits)
    return result

#----------------------------------------------------------------------------

def _read_pickle(data, trust, limits):
    if data[:1] != b'\x80':
        raise LoadError('The file is not a network snapshot (not a pickle or safetensors file).')
    if not trust:
        return unpickle(data, limits.max_opcodes, limits.max_tensor_elements)
    try:
        return pickle.loads(data)  # Executes the embedded code: the caller trusts the file.
    except EOFError:
        raise LoadError('The snapshot file is truncated (it ends in the middle of the data); download or copy '
            'it again.') from None
    except Exception as err:
        raise LoadError(f'Unpickling the snapshot with its own embedded code failed ({type(err).__name__}: '
            f'{quoted(" ".join(str(err).split()), 200)}); the file is corrupt or needs code this codebase does not provide.') from None


def _rebuild_safely(result, limits):
    """The snapshot dict of networks rebuilt as our classes and plain data; anything else refused."""
    budget = _Budget(limits)
    rebuilt = {}
    for key, value in result.items():
        if isinstance(value, Record):
            if key not in MODULE_KEYS:
                raise LoadError(f'Snapshot entry {quoted(key)} is a network, but snapshots hold networks only in '
                    f'{", ".join(MODULE_KEYS)}. {TRUST_HINT}')
            _check_role(key, value.class_name)
            spec = _record_spec(value, key, budget)
            rebuilt[key] = build_module(_resolve_class(spec, key), spec.init_args, spec.init_kwargs, spec.tensors, key,
                training=spec.training, limits=limits)
        elif key in MODULE_KEYS and value is not None:
            raise LoadError(f'Snapshot entry "{key}" is a {type(value).__name__}, not a network; the file is not a '
                'snapshot this codebase reads.')
        else:
            rebuilt[key] = _plain(value, budget, f'Snapshot entry {quoted(key)}')
    rebuilt['training_set_kwargs'] = dataset_kwargs_from_file(rebuilt.get('training_set_kwargs'))
    return rebuilt


def _with_fp16(module, key):
    # Rebuild with the settings the published code used for fp16 inference and copy the weights.
    kwargs = copy.deepcopy(dict(module.init_kwargs))
    if key == 'D':
        kwargs.update(precision.REDUCED_PRECISION)
    else:
        kwargs.setdefault('synthesis_kwargs', dnnlib.EasyDict())
        kwargs['synthesis_kwargs'] = dnnlib.EasyDict(kwargs['synthesis_kwargs'], **precision.REDUCED_PRECISION)
    if kwargs == dict(module.init_kwargs):
        return module
    return build_module(type(module), module.init_args, kwargs, module.state_dict(), key, training=module.training)


def _read_limited(f, limits):
    chunks, size = [], 0
    while size <= limits.max_file_bytes:  # In pieces: read(n) may reserve n bytes up front.
        chunk = f.read(min(64 * 2**20, limits.max_file_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b''.join(chunks)
    if len(data) > limits.max_file_bytes:
        raise LoadError(f'The file is larger than max_file_bytes={limits.max_file_bytes}; raise that limit (see '
            'docs/security.md) if it is a genuine, very large snapshot.')
    if len(data) == 0:
        raise LoadError('The snapshot file is empty.')
    return data


def load_network_pkl(f, force_fp16=False, trust=False, **limits):
    """Read a snapshot from a binary file object (or path) -> dict with G, D, G_ema, augment_pipe,
    training_set_kwargs (None where the file has no such entry), plus the file's other entries
    as plain data.

    trust=False (default): nothing from the file is executed; known architectures are rebuilt
    as this codebase's classes, other entries must be plain data, and training_set_kwargs is
    reduced to our dataset class (see docs/security.md). trust=True: ordinary unpickling, which
    runs the file's code. `limits`: any field of `Limits` (e.g. max_file_bytes=...), to raise a bound.
    Raises LoadError with an explanation for anything that is not a loadable snapshot."""
    limits = resolve_limits(**limits)
    if isinstance(f, (str, os.PathLike)):
        with open(f, 'rb') as file:
            return load_network_pkl(file, force_fp16=force_fp16, trust=trust, **dataclasses.asdict(limits))
    data = _read_limited(f, limits)

    if _is_safetensors(data):
        result = _load_safetensors(data, getattr(f, 'name', None), limits)
    else:
        result = _read_pickle(data, trust, limits)
        if not isinstance(result, dict) or not any(key in result for key in SNAPSHOT_KEYS):
            raise LoadError(f'The file is not a network snapshot: expected a dict with G, D, G_ema, found '
                f'{type(result).__name__}.')
        if not trust:
            result = _rebuild_safely(result, limits)

    if result.get('G_ema') is None:
        raise LoadError(f'The snapshot has no G_ema (entries: {_names(sorted(str(k) for k, v in result.items() if v is not None))}); '
            f'generation needs the generator\'s moving average G_ema.')
    for key in SNAPSHOT_KEYS:
        result.setdefault(key, None)
    if force_fp16:
        for key in ('G', 'D', 'G_ema'):
            if result[key] is not None:
                result[key] = _with_fp16(result[key], key)
    return result


def open_snapshot(network, trust=False, force_fp16=False, verbose=True):
    """The snapshot at `network` (path, URL or model name of snapshot_io/model_zoo.py), read by
    load_network_pkl: how every tool opens one. Anything that keeps it from loading (no such
    file or model, a broken model list, a failed download, a rejected file) raises LoadError
    with a one-line message that names `network`."""
    try:
        with model_zoo.open_network(network, verbose=verbose) as f:
            return load_network_pkl(f, force_fp16=force_fp16, trust=trust)
    except (LoadError, OSError, ValueError) as err:
        raise LoadError(f'Cannot load {quoted(os.fspath(network), 200)}: {" ".join(str(err).split())}') from err
