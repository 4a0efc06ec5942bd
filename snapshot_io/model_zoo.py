"""Published snapshots by name: `--network=styleformer-cifar10` in every tool that reads one.

The names are listed in snapshot_io/models.json (docs/models.md shows the same list; a test keeps
the two equal). Every tool opens its snapshot through `open_network` (by way of
`safe_load.open_snapshot`): paths and URLs go straight to `dnnlib.util.open_url`, and a model
name becomes its URL there, so the download is cached (under $DNNLIB_CACHE_DIR, default
~/.cache/dnnlib), retried and checked against the listed sha256. Where the list has no sha256 (the published links could not be fetched when it was
written), the file must be a pickle, and the sha256 of the first download is recorded beside the
cached file so that later uses are checked against it.

$STYLEFORMER_MODEL_LIST names another list file of the same format (a mirror, a private zoo).
"""

import json
import os
import re
import sys

import dnnlib
from dnnlib.util import atomic_write

#----------------------------------------------------------------------------

MODEL_LIST_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'models.json')
MODEL_LIST_ENV = 'STYLEFORMER_MODEL_LIST'
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]*$')  # No dot, no slash: never mistaken for a file name like x.pkl.


class ModelListError(OSError):
    """The model list file is missing or malformed."""


class UnknownModelError(FileNotFoundError):
    """A --network value is neither a file, nor a URL, nor a listed model name."""


def model_list_path():
    return os.environ.get(MODEL_LIST_ENV) or MODEL_LIST_PATH


def load_models(path=None):
    """name -> entry (a dict with at least name and url) of the model list at `path`
    (default: the file named by $STYLEFORMER_MODEL_LIST, else snapshot_io/models.json)."""
    path = path or model_list_path()
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise ModelListError(f'Cannot read the model list {path}: {err}') from err
    entries = data.get('models') if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get('name'), str)
            and isinstance(e.get('url'), str) for e in entries):
        raise ModelListError(f'The model list {path} must be {{"models": [{{"name": ..., "url": ..., "sha256": ...}}, ...]}}; '
            f'see snapshot_io/models.json.')
    return {entry['name']: entry for entry in entries}


def is_model_name(network):
    """Whether a --network value is meant as a model name: name-like and not an existing file."""
    network = os.fspath(network)
    return bool(_NAME.match(network)) and not os.path.exists(network)


def resolve_network(network):
    """(url_or_path, sha256 or None, model entry or None) for a --network value."""
    if not is_model_name(network):
        _note_shadowed_model(os.fspath(network))
        return os.fspath(network), None, None
    models = load_models()
    if network not in models:
        raise UnknownModelError(f'No such file or model name: "{network}". Known models: {", ".join(sorted(models))} '
            f'(see docs/models.md); otherwise pass a snapshot path or URL.')
    entry = models[network]
    return entry['url'], entry.get('sha256'), entry


def _note_shadowed_model(network):
    # A file named like a listed model is used instead of the model: say so, it may be planted.
    if not _NAME.match(network):
        return
    try:
        listed = network in load_models()
    except ModelListError:
        return
    if listed:
        print(f'Note: "{network}" is the local file {os.path.abspath(network)}, not the listed model of that name '
            f'(pass ./{network} to use the file without this note, or move it to use the model).', file=sys.stderr)


def open_network(network, verbose=True, return_filename=False):
    """Open a --network value (path, URL or model name) as a binary file, like dnnlib.util.open_url;
    a model is downloaded once into the cache and verified."""
    url, sha256, entry = resolve_network(network)
    if entry is None:
        return dnnlib.util.open_url(url, verbose=verbose, return_filename=return_filename)
    was_cached = os.path.isfile(dnnlib.util.cache_file_path(url))
    try:
        path = dnnlib.util.open_url(url, verbose=verbose, return_filename=True, sha256=sha256)
    except dnnlib.util.DownloadError as err:
        reason = str(err).splitlines()[0].rstrip('.')
        raise dnnlib.util.DownloadError(f'Model {entry["name"]}: {reason}. Without network access, fetch {url} '
            f'elsewhere and save it as {dnnlib.util.cache_file_path(url)}, or pass the file\'s path instead.') from err
    if sha256 is None:
        _check_unlisted_download(path, entry['name'], verbose, was_cached)
    elif verbose:
        print(f'Model {entry["name"]}: {path} (sha256 verified).', file=sys.stderr)
    return path if return_filename else open(path, 'rb')


def _check_unlisted_download(path, name, verbose, was_cached):
    """For a model listed without sha256: the file must be a pickle (not, say, a web page), and it
    must not change after its first use, whose sha256 is recorded in PATH.sha256. `was_cached`:
    the file was in the cache before this use (put there by hand, or by someone else)."""
    with open(path, 'rb') as f:
        if f.read(1) != b'\x80':
            raise dnnlib.util.DownloadError(f'The cached file for model {name} is not a network snapshot (not a pickle): {path}. '
                f'Delete it and fetch the model again.')
    digest = dnnlib.util._sha256_of_file(path)  # pylint: disable=protected-access
    record_path = path + '.sha256'
    if not os.path.isfile(record_path):
        atomic_write(record_path, lambda f: f.write(f'{digest}  {name}\n'.encode()))
        origin = 'found in the cache, not downloaded by this codebase' if was_cached else 'downloaded now'
        # Printed even when not verbose: nothing vouches for a file that was already in the cache.
        if verbose or was_cached:
            print(f'Model {name}: {path} ({origin}); no sha256 is published; recorded sha256 {digest} in '
                f'{record_path}. Compare it with the one the model\'s authors give, if any.', file=sys.stderr)
        return
    with open(record_path, encoding='utf-8') as f:
        recorded = (f.read().split() or ['(nothing)'])[0]
    if digest != recorded:
        raise dnnlib.util.ChecksumError(f'The cached file for model {name} changed since it was first used: sha256 '
            f'{digest}, recorded {recorded} in {record_path}. Delete both files to download it again.')
    if verbose:
        print(f'Model {name}: {path} (sha256 as recorded at its first use).', file=sys.stderr)

#----------------------------------------------------------------------------
