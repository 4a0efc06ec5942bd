"""snapshot_io/model_zoo.py: model names in --network, download + verify + cache, offline and unknown-name messages,
and docs/models.md kept equal to snapshot_io/models.json."""

import hashlib
import http.server
import json
import os
import re
import socket
import threading

import numpy as np
import pytest
from click.testing import CliRunner

import generate
import legacy
import train
from dnnlib import util
from snapshot_io import model_zoo, safe_load
from training.networks_Generator import Generator

from fashion_helpers import make_fashion_zip
from snapshot_helpers import STYLEFORMER_SRC, build_case, published_pickle, snapshot_dict

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------
# The published list and its page.

def test_published_list_is_well_formed():
    models = model_zoo.load_models(model_zoo.MODEL_LIST_PATH)
    assert {'styleformer-cifar10', 'styleformer-stl10', 'styleformer-celeba', 'styleformer-lsun-church'} <= set(models)
    for name, entry in models.items():
        assert model_zoo.is_model_name(name)
        assert re.match(r'^https://drive\.google\.com/file/d/[\w-]+/view', entry['url'])
        assert util._direct_download_url(entry['url']) != entry['url']  # open_url turns it into the file's link.
        assert entry['sha256'] is None or re.fullmatch(r'[0-9a-f]{64}', entry['sha256'])
        assert entry['resolution'] in (32, 48, 64, 128) and isinstance(entry['conditional'], bool)
        assert entry['fid'] > 0


def _table_rows(text):
    """The cells of each row of the first markdown table in `text` (header and rule skipped)."""
    lines = [line for line in text.splitlines() if line.startswith('|')]
    return [[cell.strip() for cell in line.strip('|').split('|')] for line in lines[2:]]


def test_models_page_matches_the_list():
    with open(os.path.join(REPO_ROOT, 'docs', 'models.md'), encoding='utf-8') as f:
        page = f.read()
    rows = {row[0].strip('`'): row for row in _table_rows(page)}
    models = model_zoo.load_models(model_zoo.MODEL_LIST_PATH)
    assert set(rows) == set(models)
    for name, entry in models.items():
        row = ' | '.join(rows[name])
        assert entry['url'] in row, name
        assert f'{entry["fid"]}' in row and f'{entry["resolution"]}x{entry["resolution"]}' in row, name
        assert (entry['sha256'] or 'unknown') in row, name
    with open(os.path.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        assert 'docs/models.md' in f.read()

#----------------------------------------------------------------------------
# Name resolution.

def test_paths_and_urls_pass_through(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert model_zoo.resolve_network('snap.pkl') == ('snap.pkl', None, None)
    assert model_zoo.resolve_network('runs/00000/network-snapshot-000000.pkl')[2] is None
    assert model_zoo.resolve_network('https://example.com/styleformer-cifar10')[2] is None
    (tmp_path / 'styleformer-cifar10').write_bytes(b'x')  # An existing file wins over a model name.
    assert model_zoo.resolve_network('styleformer-cifar10') == ('styleformer-cifar10', None, None)


def test_names_resolve_to_the_listed_download():
    url, sha256, entry = model_zoo.resolve_network('styleformer-cifar10')
    assert url == 'https://drive.google.com/file/d/1z7sNrq_iGXgt3Tzl3NxRTEXHKdw_AzSZ/view?usp=sharing'
    assert sha256 is None and entry['dataset'] == 'CIFAR-10'


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(model_zoo.UnknownModelError) as err:
        model_zoo.open_network('styleformer-imagenet')
    message = str(err.value)
    assert '"styleformer-imagenet"' in message and 'docs/models.md' in message
    names = sorted(model_zoo.load_models(model_zoo.MODEL_LIST_PATH))
    assert f'Known models: {", ".join(names)} ' in message
    assert isinstance(err.value, OSError)  # Every tool already reports OSErrors as a one-line message.


def test_bad_model_list_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv(model_zoo.MODEL_LIST_ENV, str(tmp_path / 'missing.json'))
    with pytest.raises(model_zoo.ModelListError, match='missing.json'):
        model_zoo.resolve_network('styleformer-cifar10')
    (tmp_path / 'bad.json').write_text('{"models": [{"name": "x"}]}')
    monkeypatch.setenv(model_zoo.MODEL_LIST_ENV, str(tmp_path / 'bad.json'))
    with pytest.raises(model_zoo.ModelListError, match='must be'):
        model_zoo.resolve_network('x')

#----------------------------------------------------------------------------
# Download, verify, cache: a local server stands in for Google Drive.

class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.files (path -> bytes); counts requests per path."""

    def do_GET(self):  # pylint: disable=invalid-name
        path = self.path.split('?')[0]  # A query string gives another cache entry, the same file.
        self.server.request_counts[path] = self.server.request_counts.get(path, 0) + 1
        data = self.server.files.get(path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def g_small():
    return build_case(Generator, 'g_small')


@pytest.fixture(scope='module')
def server(g_small, tmp_path_factory):
    src = STYLEFORMER_SRC.format(marker=str(tmp_path_factory.mktemp('marker') / 'executed'))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    httpd.files = {'/snap.pkl': published_pickle(snapshot_dict(g_small), src), '/page.pkl': b'<html>not a snapshot</html>'}
    httpd.request_counts = {}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def zoo(server, tmp_path, monkeypatch):
    """A model list with a verified, an unverified and a wrong-checksum entry, and an empty cache."""
    httpd, base = server
    snap_sha256 = hashlib.sha256(httpd.files['/snap.pkl']).hexdigest()
    models = [
        dict(name='tiny-verified', url=f'{base}/snap.pkl', sha256=snap_sha256),
        dict(name='tiny-unlisted', url=f'{base}/snap.pkl?unlisted', sha256=None),
        dict(name='tiny-wrong', url=f'{base}/snap.pkl?wrong', sha256='0' * 64),
        dict(name='tiny-page', url=f'{base}/page.pkl', sha256=None),
    ]
    list_path = tmp_path / 'models.json'
    list_path.write_text(json.dumps(dict(models=models)))
    monkeypatch.setenv(model_zoo.MODEL_LIST_ENV, str(list_path))
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setattr(util, 'RETRY_BACKOFF_BASE', 0.01)
    httpd.request_counts.clear()
    return httpd, base


def test_download_verify_and_cache(zoo):
    httpd, base = zoo
    path = model_zoo.open_network('tiny-verified', verbose=False, return_filename=True)
    assert path == util.cache_file_path(f'{base}/snap.pkl')
    with open(path, 'rb') as f:
        assert f.read() == httpd.files['/snap.pkl']
    with model_zoo.open_network('tiny-verified', verbose=False) as f:  # From the cache: no second request.
        assert f.read() == httpd.files['/snap.pkl']
    assert httpd.request_counts == {'/snap.pkl': 1}


def test_wrong_checksum_caches_nothing(zoo):
    _, base = zoo
    with pytest.raises(util.ChecksumError, match='0' * 64):
        model_zoo.open_network('tiny-wrong', verbose=False)
    assert not os.path.exists(util.cache_file_path(f'{base}/snap.pkl?wrong'))


def test_unlisted_checksum_is_recorded_then_enforced(zoo, capsys):
    httpd, _ = zoo
    path = model_zoo.open_network('tiny-unlisted', return_filename=True)
    digest = hashlib.sha256(httpd.files['/snap.pkl']).hexdigest()
    assert f'recorded sha256 {digest}' in capsys.readouterr().err
    with open(path + '.sha256') as f:
        assert f.read().split() == [digest, 'tiny-unlisted']
    assert model_zoo.open_network('tiny-unlisted', verbose=False, return_filename=True) == path  # Unchanged: accepted.

    with open(path, 'ab') as f:  # The cached file changes afterwards.
        f.write(b'tampered')
    with pytest.raises(util.ChecksumError, match='changed since it was first used'):
        model_zoo.open_network('tiny-unlisted', verbose=False)


def test_download_that_is_no_snapshot_is_refused(zoo):
    with pytest.raises(util.DownloadError, match='not a network snapshot'):
        model_zoo.open_network('tiny-page', verbose=False)


def test_offline_message_names_url_and_cache_path(tmp_path, monkeypatch):
    with socket.socket() as sock:  # A port on which nothing listens.
        sock.bind(('127.0.0.1', 0))
        url = f'http://127.0.0.1:{sock.getsockname()[1]}/file/d/x/view'
    (tmp_path / 'models.json').write_text(json.dumps(dict(models=[dict(name='offline-model', url=url, sha256=None)])))
    monkeypatch.setenv(model_zoo.MODEL_LIST_ENV, str(tmp_path / 'models.json'))
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setattr(util, 'RETRY_BACKOFF_BASE', 0.01)
    with pytest.raises(util.DownloadError) as err:
        model_zoo.open_network('offline-model', verbose=False)
    message = str(err.value)
    assert '\n' not in message
    assert 'offline-model' in message and url in message
    assert util.cache_file_path(url) in message and str(tmp_path / 'cache') in message


def test_tools_take_model_names(zoo, g_small, tmp_path):
    """generate.py and legacy.py with --network / --source given as a model name (the others share
    cli.load_network, calc_metrics.py, train.py and training_loop.py open snapshots with safe_load.open_snapshot too)."""
    result = CliRunner().invoke(generate.generate_images_cmd, ['--network=tiny-verified', '--seeds=3',
        f'--outdir={tmp_path}/out', '--device=cpu'])
    assert result.exit_code == 0, result.output
    assert os.path.isfile(tmp_path / 'out' / 'seed0003.png')

    result = CliRunner().invoke(legacy.convert_network_pickle, ['--source=tiny-verified', f'--dest={tmp_path}/g.safetensors'])
    assert result.exit_code == 0, result.output
    G = legacy.load_network_pkl(str(tmp_path / 'g.safetensors'))['G_ema']
    for name, value in g_small.state_dict().items():
        np.testing.assert_array_equal(G.state_dict()[name].numpy(), value.numpy())

    result = CliRunner().invoke(generate.generate_images_cmd, ['--network=no-such-model', '--seeds=3', f'--outdir={tmp_path}/out'])
    assert result.exit_code != 0 and 'Known models: tiny-page, tiny-unlisted, tiny-verified, tiny-wrong' in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # A message, not a traceback.


def test_open_snapshot_reports_every_failure_as_one_load_error(zoo, tmp_path, monkeypatch):
    """A missing file, an unknown name, a web page or a wrong checksum in place of the download, a
    rejected file, a broken model list: each is one LoadError of one line that names the snapshot."""
    (tmp_path / 'text.pkl').write_bytes(b'not a pickle')
    for network in [str(tmp_path / 'missing.pkl'), 'no-such-model', 'tiny-page', 'tiny-wrong', str(tmp_path / 'text.pkl')]:
        with pytest.raises(safe_load.LoadError) as err:
            safe_load.open_snapshot(network, verbose=False)
        assert str(err.value).startswith(f"Cannot load '{network}': ") and '\n' not in str(err.value)
    (tmp_path / 'broken.json').write_text('{')
    monkeypatch.setenv(model_zoo.MODEL_LIST_ENV, str(tmp_path / 'broken.json'))
    with pytest.raises(safe_load.LoadError, match='Cannot read the model list'):
        safe_load.open_snapshot('tiny-verified', verbose=False)


def test_train_resume_takes_model_names(zoo, tmp_path, tmp_path_factory):
    """train.py --resume accepts a listed name and opens it with model_zoo.open_network."""
    data = make_fashion_zip(tmp_path_factory, 16)
    args = [f'--outdir={tmp_path}/runs', f'--data={data}', '--metrics=none', '--dry-run']
    # With shape options the download is checked against the new networks (here: another shape).
    result = CliRunner().invoke(train.main, args + ['--resume=tiny-verified', '--depth=32'])
    assert result.exit_code == 2 and 'does not fit the networks being trained' in result.output, result.output
    result = CliRunner().invoke(train.main, args + ['--resume=tiny-verified', '--depth=32', '--resume-partial'])
    assert result.exit_code == 0, result.output
    assert '"resume_pkl": "tiny-verified"' in result.output
    # Without shape options the architecture is read from the download (this one holds no D).
    result = CliRunner().invoke(train.main, args + ['--resume=tiny-verified'])
    assert result.exit_code == 2 and 'holds no G and D' in result.output, result.output
    assert zoo[0].request_counts
    result = CliRunner().invoke(train.main, args + ['--resume=styleformer-imagenet'])
    assert result.exit_code == 2 and '--resume: Cannot load \'styleformer-imagenet\': No such file or model name' in result.output


#----------------------------------------------------------------------------
