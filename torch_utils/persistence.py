"""The published pickle layout of network snapshots (embedded source code).

An instance of a class decorated with `@persistent_class` pickles together with the full
source code of the module that defines the class and records its constructor arguments.
The layout is the published StyleGAN2-ADA/Styleformer one, so we read their snapshots (the
published code reads ours only where it can import the modules our embedded sources import,
listed in docs/architecture.md): the object is reduced to
`torch_utils.persistence._reconstruct_persistent_obj(meta)` with
`meta = dict(type='class', version=6, module_src=..., class_name=..., state=...)`.

This is not how snapshots are loaded here. The contract of a snapshot is its constructor
kwargs and state dict: snapshot_io/safe_load.py reads those without running the embedded
source and builds the classes of this codebase. Plain unpickling (`--trust-pickle`)
executes the embedded source in a private module (one per distinct source; what it
imports, e.g. `training.layers`, is imported the ordinary way), so it runs whatever the file contains: use it
only for pickles from sources you trust."""

import copy
import hashlib
import inspect
import linecache
import sys
import types

import dnnlib

#----------------------------------------------------------------------------

_version = 6                    # Format version written into meta; the published snapshots use 6.
_decorators = set()             # Every class produced by persistent_class().
_import_hooks = []              # Callables that may edit meta before reconstruction.
_module_to_src_dict = dict()    # Module object -> its source (private modules have no file to read).
_src_to_module_dict = dict()    # Source text -> private module, so equal sources share one module.

#----------------------------------------------------------------------------

def persistent_class(orig_class):
    """Class decorator: instances record their constructor arguments (`init_args`,
    `init_kwargs`) and pickle together with the source of the defining module.

    The defining module must be importable source code (not a compiled extension), and the
    class must be defined at module level so that it can be found again by name."""
    if not isinstance(orig_class, type):
        raise TypeError(f'persistent_class decorates classes, got {orig_class!r}')
    if is_persistent(orig_class):
        return orig_class
    module = sys.modules.get(orig_class.__module__)
    if module is None:
        raise RuntimeError(f'persistent_class: the module "{orig_class.__module__}" of {orig_class.__name__} '
            f'is not in sys.modules')
    module_src = _module_to_src(module)

    class Decorator(orig_class):
        _orig_module_src = module_src
        _orig_class_name = orig_class.__name__

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # Deep copies: the caller may mutate its kwargs dicts after construction.
            self._init_args = copy.deepcopy(args)
            self._init_kwargs = copy.deepcopy(kwargs)

        @property
        def init_args(self):
            return copy.deepcopy(self._init_args)

        @property
        def init_kwargs(self):
            return dnnlib.EasyDict(copy.deepcopy(self._init_kwargs))

        def __reduce__(self):
            fields = list(super().__reduce__())
            fields += [None] * max(3 - len(fields), 0)
            # A persistent base class may already have produced the persistent form; it used
            # this (most derived) class's source and name, so keep it as is.
            if fields[0] is not _reconstruct_persistent_obj:
                meta = dict(type='class', version=_version, module_src=self._orig_module_src,
                    class_name=self._orig_class_name, state=fields[2])
                fields[0] = _reconstruct_persistent_obj  # The callable that unpickling invokes...
                fields[1] = (meta,)                      # ...with these arguments.
                fields[2] = None                         # The state travels inside meta.
            return tuple(fields)

    Decorator.__name__ = orig_class.__name__
    Decorator.__qualname__ = orig_class.__qualname__
    Decorator.__module__ = orig_class.__module__
    Decorator.__doc__ = orig_class.__doc__
    _decorators.add(Decorator)
    return Decorator

#----------------------------------------------------------------------------

def is_persistent(obj):
    """True for persistent classes and for their instances."""
    try:
        if obj in _decorators:
            return True
    except TypeError:  # Unhashable objects are not classes.
        pass
    return type(obj) in _decorators


def import_hook(hook):
    """Register `hook(meta) -> meta`, called on every persistent object being unpickled
    before it is rebuilt. Hooks can patch old sources (`meta.module_src`), rename classes
    or convert states (`meta.state`); they run in registration order."""
    if not callable(hook):
        raise TypeError(f'import_hook expects a callable, got {hook!r}')
    _import_hooks.append(hook)

#----------------------------------------------------------------------------

def _reconstruct_persistent_obj(meta):
    """Unpickling entry point named in every persistent pickle; rebuilds the object from meta."""
    meta = dnnlib.EasyDict(meta)
    meta.state = dnnlib.EasyDict(meta.state) if meta.state is not None else None
    for hook in _import_hooks:
        meta = hook(meta)
        if meta is None:
            raise RuntimeError(f'persistence import hook {hook!r} returned None; hooks must return meta')

    if meta.get('version') != _version:
        raise ValueError(f'Unsupported persistent object version {meta.get("version")!r} (this code reads '
            f'version {_version}); the pickle was written by an incompatible codebase')
    if meta.get('type') != 'class':
        raise ValueError(f'Unsupported persistent object type {meta.get("type")!r}; expected "class"')

    module = _src_to_module(meta.module_src)
    orig_class = module.__dict__.get(meta.class_name)
    if not isinstance(orig_class, type):
        raise ValueError(f'Persistent pickle names class "{meta.class_name}", which its embedded source '
            f'does not define')
    decorator_class = persistent_class(orig_class)
    obj = decorator_class.__new__(decorator_class)
    if meta.state is not None:
        setstate = getattr(obj, '__setstate__', None)
        if callable(setstate):
            setstate(meta.state)  # torch.nn.Module defines __setstate__; it also fills newer attributes.
        else:
            obj.__dict__.update(meta.state)
    return obj

#----------------------------------------------------------------------------

def _module_to_src(module):
    """Source code of a module: the embedded one for private modules, else read from its file."""
    src = _module_to_src_dict.get(module)
    if src is None:
        try:
            src = inspect.getsource(module)
        except (OSError, TypeError) as err:
            raise RuntimeError(f'persistent_class needs the Python source of module "{module.__name__}", '
                f'which cannot be read ({err})') from err
        _module_to_src_dict[module] = src
        _src_to_module_dict[src] = module
    return src


def _src_to_module(src):
    """The private module that results from executing `src`, created once per distinct source."""
    module = _src_to_module_dict.get(src)
    if module is None:
        module_name = '_persistent_module_' + hashlib.sha256(src.encode('utf-8')).hexdigest()[:20]
        file_name = f'<persistent module {module_name}>'
        module = types.ModuleType(module_name)
        module.__file__ = file_name
        # In sys.modules before executing: decorators, dataclasses and pickle look the module up by name.
        sys.modules[module_name] = module
        _module_to_src_dict[module] = src
        _src_to_module_dict[src] = module
        linecache.cache[file_name] = (len(src), None, src.splitlines(keepends=True), file_name)  # Readable tracebacks.
        try:
            exec(compile(src, file_name, 'exec'), module.__dict__)  # pylint: disable=exec-used
        except Exception as err:
            del sys.modules[module_name]
            del _module_to_src_dict[module]
            del _src_to_module_dict[src]
            raise RuntimeError(f'Executing the source embedded in a persistent pickle failed: {err!r}. '
                f'It may need a module that this codebase no longer provides; an import hook '
                f'(torch_utils.persistence.import_hook) can patch meta.module_src.') from err
    return module

#----------------------------------------------------------------------------
