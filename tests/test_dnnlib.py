"""dnnlib: EasyDict, objects by name, format_time, Logger, and open_url against a local HTTP server."""

import collections
import hashlib
import http.server
import io
import os
import pickle
import socket
import sys
import threading

import pytest

import dnnlib
from dnnlib import util

#----------------------------------------------------------------------------
# EasyDict and objects by name.

def test_easydict_attribute_access_and_pickle():
    d = dnnlib.EasyDict(a=1)
    d.b = 2
    assert d['b'] == 2 and d.a == 1
    assert getattr(d, 'missing', 'default') == 'default'
    with pytest.raises(AttributeError):
        _ = d.missing
    del d.a
    assert 'a' not in d
    restored = pickle.loads(pickle.dumps(d))
    assert isinstance(restored, dnnlib.EasyDict) and restored == {'b': 2} and restored.b == 2


def test_construct_and_call_by_name():
    layer = util.construct_class_by_name(3, class_name='torch.nn.Linear', out_features=5, bias=False)
    assert type(layer).__name__ == 'Linear' and layer.weight.shape == (5, 3) and layer.bias is None
    assert util.call_func_by_name(-2.5, func_name='builtins.abs') == 2.5
    assert util.get_obj_by_name('os.path.join') is os.path.join
    module, name = util.get_module_from_obj_name('os.path.join')
    assert module is os.path and name == 'join'


def test_bad_names_give_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ImportError, match='Linearx'):
        util.get_obj_by_name('torch.nn.Linearx')
    with pytest.raises(ImportError, match='no_such_package_xyz'):
        util.get_obj_by_name('no_such_package_xyz.module.Class')
    # A module that exists but fails to import must show its own error, not "not found".
    (tmp_path / 'broken_module_for_test.py').write_text('import missing_dependency_for_test\nX = 1\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match='missing_dependency_for_test'):
        util.get_obj_by_name('broken_module_for_test.X')


def test_format_time():
    assert util.format_time(0) == '0s'
    assert util.format_time(59.4) == '59s'
    assert util.format_time(187) == '3m 07s'
    assert util.format_time(3723) == '1h 02m 03s'
    assert util.format_time(2 * 86400 + 5 * 3600 + 10 * 60 + 7) == '2d 05h 10m'

#----------------------------------------------------------------------------
# Logger.

def test_logger_tees_stdout_and_stderr(tmp_path, capsys):
    log_path = tmp_path / 'log.txt'
    orig_stdout, orig_stderr = sys.stdout, sys.stderr
    logger = dnnlib.Logger(file_name=str(log_path), file_mode='w')
    print('to stdout')
    print('to stderr', file=sys.stderr)
    logger.close()
    print('after close')
    assert sys.stdout is orig_stdout and sys.stderr is orig_stderr
    assert log_path.read_text() == 'to stdout\nto stderr\n'
    captured = capsys.readouterr()
    assert 'to stdout' in captured.out and 'after close' in captured.out  # Still printed to the console.
    assert 'to stderr' in captured.err

    with dnnlib.Logger(file_name=str(log_path), file_mode='a'):
        print('appended')
    assert log_path.read_text().endswith('appended\n')

#----------------------------------------------------------------------------
# Local files.

def test_open_url_local_path_and_file_url(tmp_path):
    path = tmp_path / 'data file.bin'
    path.write_bytes(b'local bytes')
    with dnnlib.open_url(str(path)) as f:
        assert f.read() == b'local bytes'
    with dnnlib.open_url(path.as_uri()) as f:  # file:// with a quoted space
        assert f.read() == b'local bytes'
    assert dnnlib.open_url(path.as_uri(), return_filename=True) == str(path)
    good = hashlib.sha256(b'local bytes').hexdigest()
    with dnnlib.open_url(str(path), sha256=good) as f:
        assert f.read() == b'local bytes'
    with pytest.raises(util.ChecksumError):
        dnnlib.open_url(str(path), sha256='0' * 64)
    with pytest.raises(FileNotFoundError, match='missing.bin'):
        dnnlib.open_url(str(tmp_path / 'missing.bin'))
    with pytest.raises(ValueError, match='ftp://'):
        dnnlib.open_url('ftp://example.com/x.bin')

#----------------------------------------------------------------------------
# HTTP downloads.

PAYLOAD = bytes(range(256)) * 64  # 16 KiB


class _Handler(http.server.BaseHTTPRequestHandler):
    """/ok/NAME serves PAYLOAD; /broken/NAME promises more bytes than it sends and hangs up;
    /flaky/N/NAME answers 503 to the first N requests; /confirm/NAME is a page with a
    download-confirmation form (as large Google Drive files have); /login/NAME is some other
    web page; anything else is 404."""

    def do_GET(self):  # pylint: disable=invalid-name
        counts = self.server.request_counts
        counts[self.path] += 1
        parts = self.path.strip('/').split('/')
        if parts[0] == 'ok':
            self._send(PAYLOAD)
        elif parts[0] == 'broken':
            self.send_response(200)
            self.send_header('Content-Length', str(len(PAYLOAD) + 1000))
            self.end_headers()
            self.wfile.write(PAYLOAD[:len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif parts[0] == 'flaky' and counts[self.path] <= int(parts[1]):
            self.send_error(503)
        elif parts[0] == 'flaky':
            self._send(PAYLOAD)
        elif parts[0] == 'confirm':
            self._send(b'<html><body>Cannot scan for viruses.<form id="download-form" action="/ok/confirmed.bin" '
                b'method="get"><input type="submit" value="Download anyway"><input type="hidden" name="id" value="x1">'
                b'<input type="hidden" name="confirm" value="t"></form></body></html>', 'text/html; charset=utf-8')
        elif parts[0] == 'login':
            self._send(b'<html><body><form action="/signin"><input name="user"></form></body></html>', 'text/html')
        else:
            self.send_error(404)

    def _send(self, data, content_type='application/octet-stream'):
        self.send_response(200)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # Keep the test output clean.
        pass


@pytest.fixture(scope='module')
def http_server():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    server.request_counts = collections.Counter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(util, 'RETRY_BACKOFF_BASE', 0.01)


def _cache_files(cache_dir):
    return sorted(os.listdir(cache_dir)) if os.path.isdir(cache_dir) else []


def test_download_then_cache_hit(http_server, tmp_path):
    server, base = http_server
    url = f'{base}/ok/model.pkl'
    cache_dir = str(tmp_path / 'cache')
    with dnnlib.open_url(url, cache_dir=cache_dir, verbose=False) as f:
        assert f.read() == PAYLOAD
    assert server.request_counts['/ok/model.pkl'] == 1
    files = _cache_files(cache_dir)
    assert len(files) == 1 and files[0].endswith('model.pkl')

    # Second open: from the cache, no request.
    path = dnnlib.open_url(url, cache_dir=cache_dir, verbose=False, return_filename=True)
    assert server.request_counts['/ok/model.pkl'] == 1
    assert os.path.dirname(path) == cache_dir and open(path, 'rb').read() == PAYLOAD


def test_default_cache_dir_follows_env(http_server, tmp_path, monkeypatch):
    server, base = http_server
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'envcache'))
    assert dnnlib.make_cache_dir_path('downloads') == str(tmp_path / 'envcache' / 'downloads')
    path = dnnlib.open_url(f'{base}/ok/env.bin', verbose=False, return_filename=True)
    assert path.startswith(str(tmp_path / 'envcache' / 'downloads'))
    assert server.request_counts['/ok/env.bin'] == 1


def test_download_without_cache_writes_nothing(http_server, tmp_path):
    _server, base = http_server
    cache_dir = str(tmp_path / 'cache')
    f = dnnlib.open_url(f'{base}/ok/nocache.bin', cache_dir=cache_dir, cache=False, verbose=False)
    assert isinstance(f, io.BytesIO) and f.read() == PAYLOAD
    assert _cache_files(cache_dir) == []


def test_broken_transfer_leaves_nothing(http_server, tmp_path):
    server, base = http_server
    cache_dir = str(tmp_path / 'cache')
    with pytest.raises(util.DownloadError, match='broken/big.bin'):
        dnnlib.open_url(f'{base}/broken/big.bin', cache_dir=cache_dir, num_attempts=2, verbose=False)
    assert server.request_counts['/broken/big.bin'] == 2  # Retried once.
    assert _cache_files(cache_dir) == []  # Neither a truncated file nor a temporary one.


def test_checksum_mismatch(http_server, tmp_path):
    server, base = http_server
    cache_dir = str(tmp_path / 'cache')
    with pytest.raises(util.ChecksumError, match='sha256') as err:
        dnnlib.open_url(f'{base}/ok/sum.bin', cache_dir=cache_dir, sha256='ab' * 32, verbose=False)
    assert hashlib.sha256(PAYLOAD).hexdigest() in str(err.value)
    assert server.request_counts['/ok/sum.bin'] == 1  # A wrong file is not retried.
    assert _cache_files(cache_dir) == []

    good = hashlib.sha256(PAYLOAD).hexdigest()
    with dnnlib.open_url(f'{base}/ok/sum.bin', cache_dir=cache_dir, sha256=good.upper(), verbose=False) as f:
        assert f.read() == PAYLOAD
    assert len(_cache_files(cache_dir)) == 1


def test_retries_until_success(http_server, tmp_path):
    server, base = http_server
    cache_dir = str(tmp_path / 'cache')
    with dnnlib.open_url(f'{base}/flaky/3/a.bin', cache_dir=cache_dir, num_attempts=5, verbose=False) as f:
        assert f.read() == PAYLOAD
    assert server.request_counts['/flaky/3/a.bin'] == 4

    with pytest.raises(util.DownloadError):
        dnnlib.open_url(f'{base}/flaky/3/b.bin', cache_dir=cache_dir, num_attempts=2, verbose=False)
    assert server.request_counts['/flaky/3/b.bin'] == 2


def test_not_found_is_not_retried(http_server, tmp_path):
    server, base = http_server
    with pytest.raises(util.DownloadError, match='404'):
        dnnlib.open_url(f'{base}/missing/x.bin', cache_dir=str(tmp_path), num_attempts=5, verbose=False)
    assert server.request_counts['/missing/x.bin'] == 1


def test_confirmation_page_is_followed_and_other_pages_rejected(http_server, tmp_path):
    server, base = http_server
    cache_dir = str(tmp_path / 'cache')
    with dnnlib.open_url(f'{base}/confirm/big.pkl', cache_dir=cache_dir, verbose=False) as f:
        assert f.read() == PAYLOAD
    assert server.request_counts['/ok/confirmed.bin?id=x1&confirm=t'] == 1

    with pytest.raises(util.UnexpectedHtmlError, match='web page instead of the file'):
        dnnlib.open_url(f'{base}/login/net.pkl', cache_dir=cache_dir, num_attempts=3, verbose=False)
    assert server.request_counts['/login/net.pkl'] == 1  # Not retried.
    assert _cache_files(cache_dir) == [os.path.basename(util.cache_file_path(f'{base}/confirm/big.pkl', cache_dir))]


def test_google_drive_share_links_become_download_links():
    direct = 'https://drive.usercontent.google.com/download?id=1z7sN-q_iG&export=download&confirm=t'
    assert util._direct_download_url('https://drive.google.com/file/d/1z7sN-q_iG/view?usp=sharing') == direct
    assert util._direct_download_url('https://drive.google.com/open?id=1z7sN-q_iG') == direct
    assert util._direct_download_url('https://drive.google.com/uc?export=download&id=1z7sN-q_iG') == direct
    assert util._direct_download_url('https://example.com/file/d/1z7sN-q_iG/view') == 'https://example.com/file/d/1z7sN-q_iG/view'


def test_offline_error_names_url_and_cache(tmp_path):
    with socket.socket() as sock:  # A port on which nothing listens.
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    url = f'http://127.0.0.1:{port}/weights/net.pkl'
    cache_dir = str(tmp_path / 'cache')
    with pytest.raises(OSError) as err:
        dnnlib.open_url(url, cache_dir=cache_dir, num_attempts=2, verbose=False)
    message = str(err.value)
    assert url in message
    assert cache_dir in message
    assert util.cache_file_path(url, cache_dir) in message  # Where to put a manually fetched copy.
    assert 'local file path' in message
    assert _cache_files(cache_dir) == []

    # A manually placed copy is then used without any network access.
    os.makedirs(cache_dir, exist_ok=True)
    with open(util.cache_file_path(url, cache_dir), 'wb') as f:
        f.write(b'manual copy')
    with dnnlib.open_url(url, cache_dir=cache_dir, verbose=False) as f:
        assert f.read() == b'manual copy'

#----------------------------------------------------------------------------


def test_host_that_does_not_resolve_is_not_retried(tmp_path):
    # '.invalid' never resolves (RFC 2606): the offline case, which retries cannot mend.
    url = 'http://styleformer-test.invalid/net.pkl'
    with pytest.raises(util.DownloadError, match=r'after 1 attempt\(s\)') as err:
        dnnlib.open_url(url, cache_dir=str(tmp_path), num_attempts=10, verbose=False)
    assert util.cache_file_path(url, str(tmp_path)) in str(err.value)
