"""General helpers shared by every script: attribute dicts, objects looked up by dotted name,
human-readable durations, a stdout/stderr tee for run logs, and `open_url`, which opens
local files and downloads http(s) URLs into a cache directory."""

import contextlib
import hashlib
import html.parser
import importlib
import io
import os
import re
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

import requests
import urllib3

#----------------------------------------------------------------------------
# Attribute dictionary.

class EasyDict(dict):
    """A dict whose keys can also be read and written as attributes (`d.lr` == `d['lr']`)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None  # getattr(d, 'x', default) and hasattr() rely on this

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

#----------------------------------------------------------------------------
# Objects by dotted name ("training.loss.StyleGAN2Loss"), used by option dicts and snapshots.

def get_module_from_obj_name(obj_name):
    """Split `obj_name` into (module, name inside the module), importing the longest module
    prefix that exists. Errors raised while importing an existing module are not hidden."""
    if not isinstance(obj_name, str) or not obj_name:
        raise ValueError(f'Expected a dotted object name such as "torch.nn.Linear", got {obj_name!r}')
    parts = obj_name.split('.')
    for num_module_parts in range(len(parts), 0, -1):
        module_name = '.'.join(parts[:num_module_parts])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            # Only "this prefix is not a module" means: try a shorter prefix.
            if err.name is not None and (module_name == err.name or module_name.startswith(err.name + '.')):
                continue
            raise
        local_name = '.'.join(parts[num_module_parts:])
        try:
            get_obj_from_module(module, local_name)
        except AttributeError:
            raise ImportError(f'Cannot find "{local_name}" in module "{module_name}" '
                f'(looking up "{obj_name}"); check the spelling of the name.') from None
        return module, local_name
    raise ImportError(f'Cannot find the module of "{obj_name}": no prefix of it can be imported. '
        f'Run from the repository root or check the spelling.')


def get_obj_from_module(module, obj_name):
    """Follow the dotted `obj_name` inside `module`; '' returns the module itself."""
    obj = module
    for part in obj_name.split('.') if obj_name else []:
        obj = getattr(obj, part)
    return obj


def get_obj_by_name(name):
    """Return the Python object with the fully qualified dotted name."""
    module, local_name = get_module_from_obj_name(name)
    return get_obj_from_module(module, local_name)


def call_func_by_name(*args, func_name=None, **kwargs):
    """Look up the function `func_name` and call it with the given arguments."""
    if func_name is None:
        raise ValueError('call_func_by_name() needs func_name="package.module.function"')
    func = get_obj_by_name(func_name)
    if not callable(func):
        raise TypeError(f'"{func_name}" is not callable')
    return func(*args, **kwargs)


def construct_class_by_name(*args, class_name=None, **kwargs):
    """Look up the class `class_name` and instantiate it with the given arguments."""
    if class_name is None:
        raise ValueError('construct_class_by_name() needs class_name="package.module.Class"')
    return call_func_by_name(*args, func_name=class_name, **kwargs)

#----------------------------------------------------------------------------
# Durations.

def format_time(seconds):
    """Format a duration the way the training log prints it: '45s', '3m 07s', '1h 02m 03s', '2d 05h 10m'."""
    s = int(round(seconds))
    if s < 60:
        return f'{s}s'
    if s < 60 * 60:
        return f'{s // 60}m {s % 60:02d}s'
    if s < 24 * 60 * 60:
        return f'{s // 3600}h {(s // 60) % 60:02d}m {s % 60:02d}s'
    return f'{s // 86400}d {(s // 3600) % 24:02d}h {(s // 60) % 60:02d}m'

#----------------------------------------------------------------------------
# Tee of stdout/stderr into a log file.

class _TeeStream:
    """Writes to the original stream and to the log file; everything else (isatty, fileno,
    encoding, ...) comes from the original stream so that tqdm and friends behave as before."""

    def __init__(self, stream, log_file, should_flush):
        self._stream = stream
        self._log_file = log_file
        self._should_flush = should_flush

    def write(self, text):
        if not text:
            return 0
        self._log_file.write(text)
        if self._stream is not None:
            self._stream.write(text)
        if self._should_flush:
            self.flush()
        return len(text)

    def flush(self):
        self._log_file.flush()
        if self._stream is not None:
            self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


class Logger:
    """Copies everything printed to stdout and stderr into `file_name` (if given) until
    `close()`. Usable as a context manager."""

    def __init__(self, file_name=None, file_mode='a', should_flush=True):
        self.file = open(file_name, file_mode, encoding='utf-8') if file_name is not None else None
        self.should_flush = should_flush
        self._orig_stdout = sys.stdout
        self._orig_stderr = sys.stderr
        if self.file is not None:
            sys.stdout = _TeeStream(self._orig_stdout, self.file, should_flush)
            sys.stderr = _TeeStream(self._orig_stderr, self.file, should_flush)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def write(self, text):
        """Write to the tee'd stdout (and so to the log file)."""
        sys.stdout.write(text)

    def flush(self):
        sys.stdout.flush()
        sys.stderr.flush()

    def close(self):
        """Restore the original streams and close the log file. Safe to call twice."""
        if self.file is None:
            return
        self.flush()
        # Only undo our own redirection; another tee installed later stays in place.
        if isinstance(sys.stdout, _TeeStream) and sys.stdout._log_file is self.file:
            sys.stdout = self._orig_stdout
        if isinstance(sys.stderr, _TeeStream) and sys.stderr._log_file is self.file:
            sys.stderr = self._orig_stderr
        self.file.close()
        self.file = None

#----------------------------------------------------------------------------
# Temporary files that are renamed into place (crash-safe writes).

def make_temp_file(directory, prefix, suffix):
    """Create a new, empty file in `directory` for writing; returns (fd, path).

    Unlike tempfile.mkstemp (mode 0600), the file gets the mode open() gives any new file
    (0666 less the umask): it becomes a snapshot or a cached download once renamed, and
    must be as readable to others as the user's other files."""
    path = os.path.join(directory, f'{prefix}{uuid.uuid4().hex}{suffix}')
    # O_EXCL: never reuse an existing file (or follow a link); O_BINARY: no newline translation on Windows.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0), 0o666)
    return fd, path


def atomic_write(path, write_fn):
    """Call write_fn(file) on a temporary file beside `path`, then move it into place: readers
    see the old file or the whole new one, and a failed or killed writer leaves no partial file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = make_temp_file(directory, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

#----------------------------------------------------------------------------
# Cache directory.

def make_cache_dir_path(*paths):
    """Path under the dnnlib cache: $DNNLIB_CACHE_DIR if set, else ~/.cache/dnnlib."""
    root = os.environ.get('DNNLIB_CACHE_DIR')
    if not root:
        root = os.path.join(os.path.expanduser('~'), '.cache', 'dnnlib')
    return os.path.join(root, *paths)

#----------------------------------------------------------------------------
# open_url: local paths, file:// and http(s):// with a download cache.

class DownloadError(OSError):
    """A URL could not be downloaded (offline, server error, broken transfer)."""


class ChecksumError(OSError):
    """Downloaded or local data does not have the expected sha256."""


RETRY_BACKOFF_BASE = 1.0   # Seconds before the 2nd attempt; doubles each time. Tests set it small.
RETRY_BACKOFF_MAX = 30.0   # Cap per wait so that num_attempts=10 does not wait for hours.
CONNECT_TIMEOUT = 10.0     # Seconds to connect; a dead host must fail fast.
READ_TIMEOUT = 60.0        # Seconds without any received byte before an attempt is given up.
_CHUNK_SIZE = 1 << 20


def is_url(obj, allow_file_urls=False):
    """True for http(s):// URLs (and file:// when allowed)."""
    if not isinstance(obj, str) or '://' not in obj:
        return False
    scheme = urllib.parse.urlparse(obj).scheme
    return scheme in ('http', 'https') or (allow_file_urls and scheme == 'file')


def _file_url_to_path(url):
    parsed = urllib.parse.urlparse(url)
    if parsed.netloc not in ('', 'localhost'):
        raise ValueError(f'file:// URL with a remote host is not supported: {url}')
    return urllib.request.url2pathname(parsed.path)


def _sha256_of_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK_SIZE), b''):
            digest.update(chunk)
    return digest.hexdigest()


def cache_file_path(url, cache_dir=None):
    """Where `open_url` keeps the download of `url`: a hash of the full URL (so two URLs
    with the same file name do not collide) followed by the readable file name."""
    cache_dir = cache_dir if cache_dir is not None else make_cache_dir_path('downloads')
    url_hash = hashlib.sha256(url.encode('utf-8')).hexdigest()[:16]
    base_name = os.path.basename(urllib.parse.urlparse(url).path) or 'download'
    base_name = re.sub(r'[^0-9A-Za-z_.-]', '_', base_name)[:128]
    return os.path.join(cache_dir, f'{url_hash}_{base_name}')


class UnexpectedHtmlError(DownloadError):
    """The server sent a web page where a file was expected (sign-in page, expired share link)."""


_GOOGLE_DRIVE_LINK = re.compile(r'https?://drive\.google\.com/(?:file/d/([\w-]+)|(?:open|uc)\?(?:[^#]*&)?id=([\w-]+))')


def _direct_download_url(url):
    """The URL that yields the file itself. The published Styleformer snapshots are Google Drive
    share links ('.../file/d/ID/view'), which lead to a web page, not to the file."""
    match = _GOOGLE_DRIVE_LINK.match(url)
    if match is None:
        return url
    file_id = match.group(1) or match.group(2)
    return f'https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t'


class _ConfirmFormParser(html.parser.HTMLParser):
    """Finds a form with a hidden 'confirm' field: the page that large Google Drive files put
    before the file ("cannot scan this file for viruses"), submitted with GET."""

    def __init__(self):
        super().__init__()
        self.forms = []  # (action, {name: value}) per form

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'form':
            self.forms.append((attrs.get('action') or '', dict()))
        elif tag == 'input' and self.forms and attrs.get('type') == 'hidden' and attrs.get('name'):
            self.forms[-1][1][attrs['name']] = attrs.get('value') or ''


def _confirm_form_url(page_url, page_html):
    parser = _ConfirmFormParser()
    parser.feed(page_html)
    for action, fields in parser.forms:
        if 'confirm' in fields:
            return urllib.parse.urljoin(page_url, action) + '?' + urllib.parse.urlencode(fields)
    return None


def _is_html(response, url):
    content_type = response.headers.get('Content-Type', '').split(';')[0].strip().lower()
    return content_type == 'text/html' and not urllib.parse.urlparse(url).path.lower().endswith(('.html', '.htm'))


def _get_file_response(session, url):
    """GET `url` as a stream, passing a download-confirmation page if there is one. Raises
    UnexpectedHtmlError for any other web page, which would otherwise be cached as the file."""
    response = session.get(_direct_download_url(url), stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
    response.raise_for_status()
    if _is_html(response, url):
        page_url, page_html = response.url, response.text
        response.close()
        confirm_url = _confirm_form_url(page_url, page_html)
        if confirm_url is not None:
            response = session.get(confirm_url, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            response.raise_for_status()
        if confirm_url is None or _is_html(response, url):
            response.close()
            raise UnexpectedHtmlError(f'{url} returned a web page instead of the file: the link may need a '
                f'sign-in, be expired, or point to a page about the file rather than the file itself. '
                f'Open it in a browser, download the file, and pass its local path.')
    return response


def _download_once(url, dst_dir, expected_sha256, verbose):
    """One download attempt into a temporary file in `dst_dir`; returns its path. The
    temporary file is removed when the attempt fails in any way."""
    fd, tmp_path = make_temp_file(dst_dir, prefix='.tmp-', suffix='.part')
    try:
        with os.fdopen(fd, 'wb') as f, requests.Session() as session, _get_file_response(session, url) as res:
            expected_size = res.headers.get('Content-Length')
            expected_size = int(expected_size) if expected_size and expected_size.isdigit() else None
            if res.headers.get('Content-Encoding', 'identity') != 'identity':
                expected_size = None  # The length then counts compressed bytes, not the ones we receive.
            digest = hashlib.sha256()
            num_bytes = 0
            with _progress_bar(url, expected_size, verbose) as progress:
                for chunk in res.iter_content(_CHUNK_SIZE):
                    f.write(chunk)
                    digest.update(chunk)
                    num_bytes += len(chunk)
                    if progress is not None:
                        progress.update(len(chunk))
            if expected_size is not None and num_bytes != expected_size:
                raise DownloadError(f'Transfer of {url} broke off after {num_bytes} of {expected_size} bytes')
        sha256 = digest.hexdigest()
        if expected_sha256 is not None and sha256 != expected_sha256.lower():
            raise ChecksumError(f'Checksum mismatch for {url}: expected sha256 {expected_sha256.lower()}, '
                f'got {sha256}. The file on the server differs from the one expected; nothing was cached. '
                f'Check the URL and the checksum.')
        return tmp_path
    except BaseException:
        os.remove(tmp_path)
        raise


def _progress_bar(url, total, verbose):
    if not verbose:
        return contextlib.nullcontext()
    from tqdm import tqdm  # Imported lazily: dnnlib is imported by every script.
    return tqdm(total=total, unit='B', unit_scale=True, unit_divisor=1024, leave=False,
        desc=f'Downloading {os.path.basename(urllib.parse.urlparse(url).path) or url}', file=sys.stderr)


def _is_name_resolution_error(err):
    # requests wraps it: ConnectionError(MaxRetryError(reason=NameResolutionError)).
    reason = getattr(err.args[0], 'reason', None) if isinstance(err, requests.ConnectionError) and err.args else None
    return isinstance(reason, getattr(urllib3.exceptions, 'NameResolutionError', ()))  # urllib3 2.x names it.


def _is_retryable(err):
    """Connection problems, timeouts, broken transfers and server-side (5xx, 429) errors may
    go away; a 404, a wrong checksum or a host name that does not resolve (offline) will not."""
    if isinstance(err, (ChecksumError, UnexpectedHtmlError)) or _is_name_resolution_error(err):
        return False
    if isinstance(err, requests.HTTPError) and err.response is not None:
        status = err.response.status_code
        return status >= 500 or status in (408, 429)
    return isinstance(err, (requests.RequestException, DownloadError, ConnectionError, TimeoutError))


def _download_to_cache(url, cache_path, num_attempts, expected_sha256, verbose, cached=True):
    """Download `url` to `cache_path` with retries; `cached=False` marks a throwaway path."""
    cache_dir = os.path.dirname(cache_path)
    os.makedirs(cache_dir, exist_ok=True)
    if verbose:
        print(f'Downloading {url} ...', file=sys.stderr, flush=True)
    last_err = None
    attempts_made = 0
    for attempt in range(num_attempts):
        attempts_made = attempt + 1
        if attempt > 0:
            time.sleep(min(RETRY_BACKOFF_BASE * 2 ** (attempt - 1), RETRY_BACKOFF_MAX))
        try:
            tmp_path = _download_once(url, cache_dir, expected_sha256, verbose)
        except Exception as err:  # pylint: disable=broad-except
            last_err = err
            if not _is_retryable(err):
                break
            if verbose and attempt + 1 < num_attempts:
                print(f'Download attempt {attempt + 1}/{num_attempts} failed ({err}); retrying', file=sys.stderr, flush=True)
            continue
        # Atomic on POSIX and Windows: readers (other ranks too) see no file or the whole file.
        os.replace(tmp_path, cache_path)
        return

    if isinstance(last_err, (ChecksumError, UnexpectedHtmlError)):
        raise last_err
    if isinstance(last_err, requests.HTTPError):
        raise DownloadError(f'Cannot download {url}: {last_err}. Check the URL.') from last_err
    if not cached:
        raise DownloadError(f'Cannot download {url} after {attempts_made} attempt(s): {last_err}') from last_err
    raise DownloadError(
        f'Cannot download {url} after {attempts_made} attempt(s): {last_err}\n'
        f'Nothing is cached for it in the cache directory {cache_dir}.\n'
        f'If this machine is offline, fetch the file elsewhere and either copy it to\n'
        f'  {cache_path}\n'
        f'or pass the local file path instead of the URL '
        f'(the cache directory can be changed with $DNNLIB_CACHE_DIR).') from last_err


def open_url(url, cache_dir=None, num_attempts=10, verbose=True, return_filename=False, cache=True, sha256=None):
    """Open a local path, a file:// URL or an http(s):// URL as a binary file object.

    Downloads are kept in `cache_dir` (default: make_cache_dir_path('downloads')) and reused
    without network access; a download is written to a temporary file and renamed into place
    only when complete and, if `sha256` is given, verified. With `return_filename=True` the
    local file name is returned instead of an open file. With `cache=False` the data is
    downloaded into memory and nothing stays on disk."""
    if num_attempts < 1:
        raise ValueError(f'num_attempts must be at least 1, got {num_attempts}')
    if return_filename and not cache:
        raise ValueError('open_url(return_filename=True) needs cache=True: without the cache there is no file')

    # Local files.
    url = os.fspath(url)
    if not is_url(url):
        if '://' in url and not is_url(url, allow_file_urls=True):
            raise ValueError(f'Unsupported URL scheme in {url!r}: use http://, https://, file:// or a local path')
        path = _file_url_to_path(url) if '://' in url else url
        if not os.path.isfile(path):
            raise FileNotFoundError(f'No such file: {path}' + (f' (from {url})' if path != url else ''))
        actual_sha256 = _sha256_of_file(path) if sha256 is not None else None
        if actual_sha256 is not None and actual_sha256 != sha256.lower():
            raise ChecksumError(f'Checksum mismatch for {path}: expected sha256 {sha256.lower()}, '
                f'got {actual_sha256}. The file is not the one expected.')
        return path if return_filename else open(path, 'rb')

    # Downloads without the cache: into memory, through a temporary file that is removed at once.
    if not cache:
        with tempfile.TemporaryDirectory() as tmp_dir:
            tmp_file = os.path.join(tmp_dir, 'download')
            _download_to_cache(url, tmp_file, num_attempts, sha256, verbose, cached=False)
            with open(tmp_file, 'rb') as f:
                return io.BytesIO(f.read())

    # Downloads through the cache.
    cache_path = cache_file_path(url, cache_dir)
    if os.path.isfile(cache_path) and (sha256 is None or _sha256_of_file(cache_path) == sha256.lower()):
        return cache_path if return_filename else open(cache_path, 'rb')
    _download_to_cache(url, cache_path, num_attempts, sha256, verbose)
    return cache_path if return_filename else open(cache_path, 'rb')

#----------------------------------------------------------------------------
