"""Just-in-time build of the CUDA plugins in torch_utils/ops, with a reference fallback.

`get_plugin()` builds a plugin with ninja through torch.utils.cpp_extension.load. The
sources are copied into a cache directory named after a hash of their contents (plus the
torch/CUDA versions and build options), so an edited kernel is rebuilt and an unchanged one
is loaded straight from the cache. A file lock makes concurrent builds (several ranks) safe,
and lets a build clear the lock file that torch leaves behind when a build is interrupted.

`get_plugin_or_none()` is what the ops call for CUDA tensors: when the plugin cannot be
built it prints ONE line (per plugin and process) saying why and how to fix it, and returns
None so the op uses its pure-PyTorch reference path.
  STYLEFORMER_REFERENCE_OPS=1  always use the reference paths (no build attempt).
  STYLEFORMER_STRICT_OPS=1     raise instead of falling back.
"""

import hashlib
import os
import shutil
import sys
import uuid

import torch

verbosity = 'brief'  # 'none': silent; 'brief': one line per build; 'full': compiler output.

REFERENCE_ENV = 'STYLEFORMER_REFERENCE_OPS'
STRICT_ENV = 'STYLEFORMER_STRICT_OPS'


class PluginBuildError(RuntimeError):
    """A plugin could not be built or loaded."""


_loaded_plugins = {}   # module_name -> loaded module
_failed_plugins = {}   # module_name -> reason, so a failed build is tried (and reported) once


def _env_flag(name):
    return os.environ.get(name, '').strip().lower() not in ('', '0', 'false', 'no', 'off')


def reference_ops_forced():
    return _env_flag(REFERENCE_ENV)


def source_hash(sources, headers=(), **build_kwargs):
    """Hex digest over the file names and contents, torch/CUDA versions and build options."""
    digest = hashlib.sha256()
    for path in sorted(list(sources) + list(headers or ()), key=os.path.basename):
        digest.update(os.path.basename(path).encode())
        with open(path, 'rb') as f:
            digest.update(f.read())
    digest.update(repr((torch.__version__, torch.version.cuda, sorted(build_kwargs.items(), key=str))).encode())
    return digest.hexdigest()[:16]


def plugin_cache_dir(module_name, sources, headers=(), **build_kwargs):
    """Where the copied sources and the build of one plugin version live."""
    root = os.environ.get('TORCH_EXTENSIONS_DIR') or os.path.join(
        os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache'), 'styleformer', 'torch_extensions')
    return os.path.join(root, f'{module_name}-{source_hash(sources, headers, **build_kwargs)}')


def get_plugin(module_name, sources, headers=None, source_dir=None, **build_kwargs):
    """Build (or load from the cache) a plugin and return its module; raise PluginBuildError
    with the reason and a fix when that is impossible. File names in `sources`/`headers` are
    relative to `source_dir` when given. Extra kwargs go to torch.utils.cpp_extension.load."""
    if module_name in _loaded_plugins:
        return _loaded_plugins[module_name]
    if source_dir is not None:
        sources = [os.path.join(source_dir, s) for s in sources]
        headers = [os.path.join(source_dir, h) for h in headers or ()]
    sources, headers = list(sources), list(headers or ())

    from torch.utils import cpp_extension
    if torch.version.cuda is None:
        raise PluginBuildError(f'this PyTorch ({torch.__version__}) is a CPU-only build; install a CUDA build of torch')
    if cpp_extension.CUDA_HOME is None or shutil.which('nvcc', path=os.path.join(cpp_extension.CUDA_HOME, 'bin')) is None:
        raise PluginBuildError('nvcc not found; install the CUDA toolkit and set CUDA_HOME (e.g. CUDA_HOME=/usr/local/cuda)')

    build_dir = plugin_cache_dir(module_name, sources, headers, **build_kwargs)
    if verbosity != 'none':
        print(f'Setting up PyTorch plugin "{module_name}"... ', end='' if verbosity == 'brief' else '\n', flush=True)
    try:
        module = _build_locked(module_name, sources, headers, build_dir, build_kwargs)
    except Exception as error:
        if verbosity != 'none':
            print('Failed!')
        raise PluginBuildError(f'building in {build_dir} failed ({_first_line(error)}); '
                               'set torch_utils.custom_ops.verbosity = "full" to see the compiler output') from error
    if verbosity != 'none':
        print('Done.')
    _loaded_plugins[module_name] = module
    return module


def _build_locked(module_name, sources, headers, build_dir, build_kwargs):
    from filelock import FileLock
    from torch.utils import cpp_extension
    os.makedirs(os.path.dirname(build_dir), exist_ok=True)
    with FileLock(build_dir + '.lock'):
        _clear_stale_torch_lock(build_dir)
        if not os.path.isdir(build_dir):
            # Copy into a private directory first, then rename: the cache never holds a partial copy.
            staging = f'{build_dir}.tmp-{uuid.uuid4().hex}'
            os.makedirs(staging)
            for path in sources + headers:
                shutil.copyfile(path, os.path.join(staging, os.path.basename(path)))
            os.replace(staging, build_dir)
        copied = [os.path.join(build_dir, os.path.basename(s)) for s in sources]
        return cpp_extension.load(name=module_name, sources=copied, build_directory=build_dir,
                                  verbose=(verbosity == 'full'), **build_kwargs)


def _clear_stale_torch_lock(build_dir):
    # torch.utils.cpp_extension marks a build in progress with <build_dir>/lock and waits, forever,
    # while that file exists; a build killed midway leaves it behind. Every build in build_dir
    # holds our file lock (an OS lock, released when its process dies), so while we hold it
    # a torch lock file there belongs to no live build.
    stale = os.path.join(build_dir, 'lock')
    if os.path.exists(stale):
        if verbosity != 'none':
            print(f'(removing {stale}, left by an interrupted build) ', end='', flush=True)
        os.remove(stale)


def get_plugin_or_none(module_name, sources, headers=None, source_dir=None, **build_kwargs):
    """The plugin module, or None when the reference path must be used (forced by
    STYLEFORMER_REFERENCE_OPS, or the build failed: reported once, or raised when strict)."""
    if reference_ops_forced():
        return None
    if module_name in _failed_plugins:
        return None
    try:
        return get_plugin(module_name, sources, headers=headers, source_dir=source_dir, **build_kwargs)
    except PluginBuildError as error:
        report_fallback(module_name, str(error))
        return None


def report_fallback(module_name, reason):
    """Print the one fallback line for `module_name` (first time only), or raise in strict mode."""
    if _env_flag(STRICT_ENV):
        raise PluginBuildError(f'CUDA plugin "{module_name}" is unavailable: {reason}. '
                               f'Fix that, or unset {STRICT_ENV} to fall back to the slower reference path.')
    if module_name not in _failed_plugins:
        _failed_plugins[module_name] = reason
        print(f'WARNING: CUDA plugin "{module_name}" unavailable, using the slower PyTorch reference path: {reason}. '
              f'(Set {REFERENCE_ENV}=1 to skip the build and silence this.)', file=sys.stderr, flush=True)


def _first_line(error):
    text = str(error).strip().splitlines()
    return f'{type(error).__name__}: {text[0] if text else ""}'.strip()
