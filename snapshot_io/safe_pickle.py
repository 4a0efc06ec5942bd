"""A pickle reader that builds plain data, tensors and persistent-object records, and nothing else.

Python's unpickler calls whatever callables the file names and applies BUILD (`setattr`) to
whatever object is on its stack, so restricting `find_class` still hands the file the allowed
classes and functions themselves to modify. This reader interprets the pickle instructions
itself instead: a file can only

- push plain values (None, bool, int, float, str, bytes) and build lists, tuples, dicts and
  sets of them, with `str` dict keys and set items (so no hashing of file-built objects);
- call the few functions of this module that `_GLOBALS` lists, which check their arguments
  and return fresh objects (a tensor, a record, a dict) or immutable ones (a torch dtype);
- BUILD only the numpy placeholders this reader created itself (dtypes, and arrays, which
  are not read: `Unread`).

Nothing the file does can reach an object that exists outside this load. Work is bounded by
`max_opcodes`, which counts the instructions, the items that calls walk (one memoized list can
be handed to any number of calls) and the work of each call; the storages together hold at
most the file's bytes, and tensors may not claim more elements than the data they were read
from holds (`max_tensor_elements` bounds the total).
"""

import collections
import io
import pickletools
import re

import numpy as np
import torch

import dnnlib


class LoadError(Exception):
    """A snapshot could not be loaded; the message says why and what to do."""


def quoted(text, limit=60):
    """A string from the file as an error message quotes it: escaped (no newlines or terminal
    control sequences reach the terminal) and shortened to `limit` characters."""
    return repr(text[:limit]) + ('...' if len(text) > limit else '')


class Record:
    """A persistent object as the file stores it: its class name and pickled state. The module
    source stored beside them is dropped unread: it is never executed."""
    __slots__ = ('class_name', 'state')

    def __init__(self, class_name, state):
        self.class_name = class_name
        self.state = state

#----------------------------------------------------------------------------
# The functions a file may call. Each checks its arguments and returns a fresh or immutable object.

def _persistent_record(meta):
    if not isinstance(meta, dict) or meta.get('type') != 'class' or not isinstance(meta.get('class_name'), str):
        raise LoadError('The file contains a malformed persistent object; it is corrupt or not a network snapshot.')
    if meta.get('version') != 6:
        version = meta.get('version')
        shown = version if isinstance(version, int) and not isinstance(version, bool) else type(version).__name__
        raise LoadError(f'The file uses persistent object format version {shown}; this codebase reads version 6 '
            '(StyleGAN2-ADA / Styleformer).')
    if len(meta['class_name']) > 200:
        raise LoadError('The file names a persistent class of more than 200 characters; it is not a network snapshot.')
    state = meta.get('state')
    if state is not None and not isinstance(state, dict):
        raise LoadError(f'Persistent object {quoted(meta["class_name"])} has a {type(state).__name__} as its state, '
            'not a dict; the file is corrupt or not a network snapshot.')
    return Record(meta['class_name'], state or {})


class _Storage:
    """A tensor storage read from the file, with the elements its tensors have not claimed yet."""
    __slots__ = ('dtype', 'untyped', 'size', 'unclaimed')

    def __init__(self, dtype, untyped):
        self.dtype = dtype
        self.untyped = untyped
        self.size = self.unclaimed = untyped.nbytes() // torch.empty((), dtype=dtype).element_size()


def _int64(value):
    return type(value) is int and 0 <= value < 2**63  # Checked before any arithmetic: no huge-integer work.


def _int_tuple(value, what):
    if not isinstance(value, tuple) or len(value) > 16 or not all(map(_int64, value)):
        raise LoadError(f'A tensor in the file has a malformed {what}; the file is corrupt.')
    return value


class _TensorMaker:
    """The tensor functions of one load; they share the budget of tensor elements."""

    def __init__(self, max_elements, max_storage_bytes, work):
        self.elements_left = max_elements
        self.storage_bytes_left = max_storage_bytes
        self.work = work

    def storage_from_bytes(self, data):
        if not isinstance(data, bytes):
            raise LoadError('A tensor storage in the file is not stored as bytes; the file is corrupt.')
        # A file can hand the same bytes to any number of calls: each read counts, so all storages
        # together hold no more than the file does.
        self.work.spend(STORAGE_WORK)
        self.storage_bytes_left -= len(data)
        if self.storage_bytes_left < 0:
            raise LoadError('The tensor storages of the file hold more bytes than the file (stored data read more than '
                'once); the file is corrupt or hostile.')
        return _Storage(*_read_storage(data))

    def tensor(self, storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
        self.work.spend(TENSOR_WORK)
        if not isinstance(storage, _Storage) or not _int64(offset):
            raise LoadError('A tensor in the file has no valid storage or offset; the file is corrupt.')
        size, stride = _int_tuple(size, 'size'), _int_tuple(stride, 'stride')
        if len(size) != len(stride) or not isinstance(requires_grad, bool) or backward_hooks or metadata:
            raise LoadError('A tensor in the file has malformed arguments (size/stride/hooks); the file is corrupt.')
        numel = 1
        for s in size:
            numel *= s
        end = offset + sum((s - 1) * st for s, st in zip(size, stride)) + 1 if numel else 0
        if end > storage.size:
            raise LoadError('A tensor in the file reaches beyond its stored data; the file is corrupt.')
        # Views may not declare more elements than their data holds: no large tensors from small files.
        storage.unclaimed -= numel
        self.elements_left -= numel
        if storage.unclaimed < 0:
            raise LoadError('Tensors in the file claim more elements than their stored data holds (overlapping views); '
                'the file is corrupt or hostile.')
        if self.elements_left < 0:
            raise LoadError('The file declares more tensor elements than max_tensor_elements allows; raise that limit '
                '(see docs/security.md) if the file is a genuine, very large snapshot.')
        tensor = torch.empty((0,), dtype=storage.dtype).set_(storage.untyped, offset, size, stride)
        tensor.requires_grad_(requires_grad)
        return tensor

    def tensor_v1(self, storage, offset, size, stride):
        return self.tensor(storage, offset, size, stride)

    @staticmethod
    def parameter(data, requires_grad, backward_hooks=None, state=None):
        if type(data) is not torch.Tensor or not isinstance(requires_grad, bool) or backward_hooks or state:
            raise LoadError('A parameter in the file has malformed arguments; the file is corrupt.')
        return torch.nn.Parameter(data.detach(), requires_grad=requires_grad)


def _ordered_dict(*args):
    if args:
        raise LoadError('An OrderedDict in the file has constructor arguments; the file is corrupt.')
    return collections.OrderedDict()


def _string_set(items, work):
    if not isinstance(items, list):
        raise LoadError('A set in the file holds something other than names; the file is corrupt.')
    work.spend(len(items))
    if not all(isinstance(item, str) for item in items):
        raise LoadError('A set in the file holds something other than names; the file is corrupt.')
    return set(items)


def _torch_size(dims):
    return _int_tuple(dims, 'size')


def _torch_device(name):
    if not isinstance(name, str) or len(name) > 32:
        raise LoadError('A device in the file is malformed; the file is corrupt.')
    try:
        return torch.device(name)
    except RuntimeError:
        raise LoadError('A device in the file is malformed; the file is corrupt.') from None


class _DtypeSpec:
    """A numpy dtype as the file describes it (numbers only), to read one scalar with."""
    __slots__ = ('code', 'byteorder')
    _CODE = re.compile(r'^([biuf][1248]|f2)$')

    def __init__(self, code, align=False, copy=True):
        if not isinstance(code, str) or not self._CODE.match(code) or not isinstance(align, bool) or not isinstance(copy, bool):
            raise LoadError('The file uses a numpy dtype other than a plain number; the safe loader reads numbers only.')
        self.code = code
        self.byteorder = '='

    def build(self, state):
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ('<', '>', '|', '='):
            raise LoadError('A numpy dtype in the file has a malformed state; the file is corrupt.')
        self.byteorder = state[1]


def _numpy_scalar(spec, data):
    if not isinstance(spec, _DtypeSpec) or not isinstance(data, bytes):
        raise LoadError('A numpy scalar in the file is malformed; the file is corrupt.')
    dtype = np.dtype(spec.code).newbyteorder(spec.byteorder)
    if len(data) != dtype.itemsize:
        raise LoadError('A numpy scalar in the file has the wrong number of bytes; the file is corrupt.')
    return np.frombuffer(data, dtype=dtype)[0].item()  # A Python number: plain data from here on.


class Unread:
    """A numpy array, which the loader does not rebuild: it may stand only where the loader
    ignores values (attributes of a network other than its tensors and arguments)."""
    __slots__ = ()

    def build(self, state):
        pass  # The array's contents: not needed.


def _numpy_array(subtype, shape, code):
    if not isinstance(subtype, _Global) or subtype.name != 'numpy.ndarray':
        raise LoadError('A numpy array in the file is malformed; the file is corrupt.')
    return Unread()


class _Global:
    """What GLOBAL pushes: one of the functions above (`call` for REDUCE, `new` for NEWOBJ)."""
    __slots__ = ('name', 'call', 'new')

    def __init__(self, name, call=None, new=None):
        self.name, self.call, self.new = name, call, new


def _globals(tensors, work):
    table = {
        ('torch_utils.persistence', '_reconstruct_persistent_obj'): dict(call=_persistent_record),
        ('torch.storage', '_load_from_bytes'): dict(call=tensors.storage_from_bytes),
        ('torch._utils', '_rebuild_tensor'): dict(call=tensors.tensor_v1),
        ('torch._utils', '_rebuild_tensor_v2'): dict(call=tensors.tensor),
        ('torch._utils', '_rebuild_parameter'): dict(call=tensors.parameter),
        ('torch._utils', '_rebuild_parameter_with_state'): dict(call=tensors.parameter),
        ('torch', 'Size'): dict(call=_torch_size),
        ('torch', 'device'): dict(call=_torch_device),
        ('collections', 'OrderedDict'): dict(call=_ordered_dict, new=_ordered_dict),
        ('dnnlib.util', 'EasyDict'): dict(new=dnnlib.EasyDict),
        ('dnnlib', 'EasyDict'): dict(new=dnnlib.EasyDict),
        ('builtins', 'set'): dict(call=lambda items: _string_set(items, work)),
        ('builtins', 'frozenset'): dict(call=lambda items: frozenset(_string_set(items, work))),
        ('numpy', 'dtype'): dict(call=_DtypeSpec),
    }
    for module in ['numpy.core.multiarray', 'numpy._core.multiarray']:  # numpy 1 and numpy 2 names.
        table[(module, 'scalar')] = dict(call=_numpy_scalar)
        table[(module, '_reconstruct')] = dict(call=_numpy_array)
    table[('numpy', 'ndarray')] = dict()  # Only as the first argument of _reconstruct.
    return table


# torch dtypes by name, read from the module's namespace (getattr could import a submodule).
_TORCH_DTYPES = {name: value for name, value in vars(torch).items() if isinstance(value, torch.dtype)}

TRUST_HINT = ('If you trust the file, load it with its own embedded code by passing --trust-pickle '
              '(or trust=True to legacy.load_network_pkl).')

#----------------------------------------------------------------------------

# The work of a call in instructions (about a microsecond each), as measured: reading a storage's
# bytes takes about 200, making a tensor about 10.
STORAGE_WORK = 200
TENSOR_WORK = 10


class _Work:
    """The work one load may still do: pickle instructions, plus the items each call walks and
    the work of each call, in instructions."""

    def __init__(self, max_opcodes):
        self.max_opcodes = self.left = max_opcodes

    def spend(self, steps):
        self.left -= steps
        if self.left < 0:
            raise LoadError(f'The file needs more than max_opcodes={self.max_opcodes} pickle instructions (counting the '
                'work of the calls they make); raise that limit (see docs/security.md) if it is a genuine, very large '
                'snapshot.')


class _Machine:
    """The pickle instructions a snapshot needs, each applied to the stack as pickle defines it."""

    def __init__(self, table, work):
        self.table, self.work = table, work
        self.stack, self.marks, self.memo = [], [], {}

    def run(self, data):
        """The object pickled in `data` (bytes, or a file positioned at a pickle, left after its STOP)."""
        for opcode, arg, _pos in pickletools.genops(data):
            self.work.spend(1)
            if opcode.name == 'STOP':
                return self.pop()
            handler = getattr(self, 'op_' + opcode.name, None)
            if handler is None:
                raise LoadError(f'The file uses the pickle instruction {opcode.name}, which network snapshots do not '
                    f'need and the safe loader refuses. {TRUST_HINT}')
            handler(arg)
        raise LoadError('The snapshot file is truncated (it ends in the middle of the data); download or copy it again.')

    # Stack and memo.
    def pop(self):
        if not self.stack:
            raise LoadError('The snapshot file is corrupt (its pickle stack underflows).')
        return self.stack.pop()

    def pop_mark(self):
        if not self.marks:
            raise LoadError('The snapshot file is corrupt (a pickle MARK is missing).')
        items, self.stack = self.stack, self.marks.pop()
        return items

    def push(self, value):
        self.stack.append(value)

    def op_PROTO(self, arg): pass
    def op_FRAME(self, arg): pass
    def op_MARK(self, arg):
        self.marks.append(self.stack)
        self.stack = []
    def op_POP(self, arg): self.pop()
    def op_POP_MARK(self, arg): self.pop_mark()
    def op_DUP(self, arg): self.push(self.top())

    def top(self):
        if not self.stack:
            raise LoadError('The snapshot file is corrupt (its pickle stack underflows).')
        return self.stack[-1]

    def op_PUT(self, arg): self.memo[arg] = self.top()
    op_BINPUT = op_LONG_BINPUT = op_PUT
    def op_MEMOIZE(self, arg): self.op_PUT(len(self.memo))

    def op_GET(self, arg):
        if arg not in self.memo:
            raise LoadError('The snapshot file is corrupt (it refers to a pickle memo entry that does not exist).')
        self.push(self.memo[arg])
    op_BINGET = op_LONG_BINGET = op_GET

    # Plain values.
    def op_NONE(self, arg): self.push(None)
    def op_NEWTRUE(self, arg): self.push(True)
    def op_NEWFALSE(self, arg): self.push(False)
    def op_INT(self, arg): self.push(arg)
    op_BININT = op_BININT1 = op_BININT2 = op_LONG = op_LONG1 = op_LONG4 = op_FLOAT = op_BINFLOAT = op_INT
    op_UNICODE = op_BINUNICODE = op_SHORT_BINUNICODE = op_BINUNICODE8 = op_INT
    op_BINBYTES = op_SHORT_BINBYTES = op_BINBYTES8 = op_INT
    def op_BYTEARRAY8(self, arg): self.push(bytes(arg))

    # Containers the file builds; only containers on the stack (all built by this load) are filled.
    def op_EMPTY_LIST(self, arg): self.push([])
    def op_LIST(self, arg): self.push(self.pop_mark())
    def op_EMPTY_TUPLE(self, arg): self.push(())
    def op_TUPLE(self, arg): self.push(tuple(self.pop_mark()))
    def op_TUPLE1(self, arg): self.push((self.pop(),))
    def op_TUPLE2(self, arg):
        b, a = self.pop(), self.pop()
        self.push((a, b))
    def op_TUPLE3(self, arg):
        c, b, a = self.pop(), self.pop(), self.pop()
        self.push((a, b, c))
    def op_EMPTY_DICT(self, arg): self.push({})
    def op_EMPTY_SET(self, arg): self.push(set())

    def op_APPEND(self, arg): self.extend([self.pop()])
    def op_APPENDS(self, arg): self.extend(self.pop_mark())

    def extend(self, items):
        target = self.stack[-1] if self.stack else None
        if type(target) is not list:
            raise LoadError(f'The file appends to a {type(target).__name__}; the safe loader fills only lists it built.')
        target.extend(items)

    def op_SETITEM(self, arg):
        value, key = self.pop(), self.pop()
        self.set_items([key, value])
    def op_SETITEMS(self, arg): self.set_items(self.pop_mark())
    def op_DICT(self, arg):
        items = self.pop_mark()
        self.push({})
        self.set_items(items)

    def set_items(self, items):
        target = self.stack[-1] if self.stack else None
        if type(target) not in (dict, dnnlib.EasyDict, collections.OrderedDict):
            raise LoadError(f'The file sets items of a {type(target).__name__}; the safe loader fills only dicts it built.')
        if len(items) % 2 or not all(isinstance(key, str) for key in items[::2]):
            raise LoadError('The file has a dict key that is not a string; network snapshots use names only.')
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def op_ADDITEMS(self, arg):
        items = self.pop_mark()
        target = self.stack[-1] if self.stack else None
        if type(target) is not set or not all(isinstance(item, str) for item in items):
            raise LoadError('The file adds something other than names to a set, or adds to something not a set.')
        target.update(items)
    def op_FROZENSET(self, arg): self.push(frozenset(_string_set(self.pop_mark(), self.work)))

    # Globals and calls: only the functions of `_globals`.
    def op_GLOBAL(self, arg):
        module, _, name = arg.partition(' ')
        self.push(self.find(module, name))

    def op_STACK_GLOBAL(self, arg):
        name, module = self.pop(), self.pop()
        if not isinstance(module, str) or not isinstance(name, str):
            raise LoadError('The snapshot file is corrupt (a global name is not a string).')
        self.push(self.find(module, name))

    def find(self, module, name):
        if module == 'torch' and name in _TORCH_DTYPES:
            return _TORCH_DTYPES[name]
        entry = self.table.get((module, name))
        if entry is not None:
            return _Global(f'{module}.{name}', **entry)
        if module.startswith('dnnlib.tflib'):
            raise LoadError('This is a TensorFlow snapshot (StyleGAN/StyleGAN2 TF); convert it with the '
                'StyleGAN2-ADA PyTorch tools first. This codebase reads PyTorch snapshots only.')
        raise LoadError(f'The file refers to {quoted(module)}.{quoted(name)}, which the safe loader does not allow (it '
            f'could run code). {TRUST_HINT}')

    def op_REDUCE(self, arg):
        args, func = self.pop(), self.pop()
        if not isinstance(func, _Global) or func.call is None:
            raise LoadError(f'The file calls a {_what(func)}, which the safe loader does not allow. {TRUST_HINT}')
        if not isinstance(args, tuple):
            raise LoadError('The snapshot file is corrupt (call arguments are not a tuple).')
        self.push(_checked_call(func, func.call, args))

    def op_NEWOBJ(self, arg):
        args, cls = self.pop(), self.pop()
        if not isinstance(cls, _Global) or cls.new is None or args != ():
            raise LoadError(f'The file creates a {_what(cls)} with arguments, which the safe loader does not allow. {TRUST_HINT}')
        self.push(cls.new())

    def op_BUILD(self, arg):
        state = self.pop()
        target = self.stack[-1] if self.stack else None
        if isinstance(target, (_DtypeSpec, Unread)):
            target.build(state)
        elif type(target) is dnnlib.EasyDict and not state:
            pass  # An EasyDict keeps its entries as items; an empty attribute state changes nothing.
        else:
            raise LoadError(f'The file sets the attributes of a {_what(target)}, which the safe loader does not allow. '
                f'{TRUST_HINT}')


#----------------------------------------------------------------------------
# Storages. Pickling a storage stores `torch.save(storage, _use_new_zipfile_serialization=False)`
# (torch's storage __reduce__ since 1.6, and torch.save's only format before): five pickles
# (magic number, format version, system info, the storage's persistent id with its type, key
# and element count, the list of keys), then per key its element count (8 bytes) and raw data.
# torch.load would allocate what the persistent id declares and fill only the storages the key
# list names; read here, every byte of a storage is copied from the file.

_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_VERSION = 1001

# The storage types network tensors are made of (torch's legacy names): plain numbers, which
# load_state_dict copies into any parameter. Quantized and complex storages are refused.
_STORAGE_DTYPES = {
    'FloatStorage': torch.float32, 'DoubleStorage': torch.float64, 'HalfStorage': torch.float16,
    'BFloat16Storage': torch.bfloat16, 'LongStorage': torch.int64, 'IntStorage': torch.int32,
    'ShortStorage': torch.int16, 'CharStorage': torch.int8, 'ByteStorage': torch.uint8, 'BoolStorage': torch.bool,
}
NETWORK_DTYPES = frozenset(_STORAGE_DTYPES.values())


class _StorageMachine(_Machine):
    """Reads the small pickles of one storage's bytes: plain values, the storage types above,
    and one persistent id."""

    def __init__(self):
        super().__init__({('torch', name): {} for name in _STORAGE_DTYPES}, _Work(100))

    def op_BINPERSID(self, arg):
        self.push(_DeclaredStorage(self.pop()))

    def find(self, module, name):
        if (module, name) not in self.table:
            raise LoadError(f'A tensor storage in the file is a {quoted(module)}.{quoted(name)}; network tensors are plain '
                'numbers (float, integer or bool storages), the file is corrupt or hostile.')
        return super().find(module, name)


class _DeclaredStorage:
    """A storage's persistent id: ('storage', storage type, key, location, element count, view)."""
    __slots__ = ('dtype', 'key', 'numel')

    def __init__(self, pid):
        if (not isinstance(pid, tuple) or len(pid) != 6 or pid[0] != 'storage' or not isinstance(pid[1], _Global)
                or not isinstance(pid[2], str) or not isinstance(pid[3], str) or not _int64(pid[4]) or pid[5] is not None):
            raise LoadError('A tensor storage in the file has a malformed header; the file is corrupt.')
        self.dtype = _STORAGE_DTYPES[pid[1].name.partition('.')[2]]  # The location (pid[3]) is ignored: we load on the CPU.
        self.key, self.numel = pid[2], pid[4]


def _read_storage(data):
    """(dtype, untyped storage) of the legacy `torch.save` bytes of one storage."""
    if data.startswith(b'PK'):
        # Not read: torch pickles storages in the legacy format only, and a zip can show two readers two contents.
        raise LoadError('A tensor storage in the file is a zip archive (torch.save\'s newer format), which torch never '
            'writes into a pickle; the file is corrupt or hostile.')
    f = io.BytesIO(data)
    magic, version, sys_info, declared, keys = (_StorageMachine().run(f) for _ in range(5))
    if magic != _LEGACY_MAGIC or version != _LEGACY_VERSION or not isinstance(declared, _DeclaredStorage):
        raise LoadError('A tensor storage in the file is not in the format torch pickles storages in; the file is '
            'corrupt or was not written by torch.')
    if not isinstance(sys_info, dict) or sys_info.get('little_endian') is not True:
        raise LoadError('A tensor storage in the file is stored big-endian; the safe loader reads little-endian '
            'storages (what every torch build on x86 and ARM writes).')
    nbytes = declared.numel * torch.empty((), dtype=declared.dtype).element_size()
    start = f.tell() + 8
    if (keys != [declared.key] or int.from_bytes(data[start - 8:start], 'little') != declared.numel
            or len(data) - start != nbytes):
        raise LoadError('A tensor storage in the file does not hold exactly the data it declares; the file is '
            'corrupt or hostile.')
    return declared.dtype, torch.UntypedStorage.from_buffer(data, dtype=torch.uint8, offset=start, count=nbytes)


def _what(value):
    return value.name if isinstance(value, _Global) else type(value).__name__


def _checked_call(func, call, args):
    try:
        return call(*args)
    except (TypeError, ValueError, RuntimeError, OverflowError) as err:  # E.g. the wrong number of arguments.
        raise LoadError(f'The file calls {func.name} with arguments that do not fit ({type(err).__name__}); '
            'the file is corrupt.') from None


def unpickle(data, max_opcodes, max_tensor_elements):
    """The object pickled in `data`, read as described in the module docstring."""
    try:
        work = _Work(max_opcodes)
        return _Machine(_globals(_TensorMaker(max_tensor_elements, len(data), work), work), work).run(data)
    except LoadError:
        raise
    except (ValueError, EOFError, IndexError, OverflowError, UnicodeDecodeError, MemoryError) as err:
        # pickletools reports malformed instruction arguments (and a truncated file) as ValueError.
        raise LoadError(f'The snapshot file is truncated or corrupt ({type(err).__name__}); download or copy it again.') from None
