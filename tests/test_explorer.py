"""explorer.py: the server's images equal what generate.py, style_mixing.py and attention_maps.py
compute for the same settings; bad settings get clear answers; and in a real headless Chromium
the controls change the image, which matches generate.py pixel for pixel.

The browser test saves its screenshot in the test's tmp folder; with
STYLEFORMER_UPDATE_SCREENSHOT=1 it also writes docs/explorer.png (shown in README.md).
"""

import contextlib
import io
import os
import shutil
import socket
import threading
import time

import numpy as np
import PIL.Image
import pytest
import requests
import torch
from click.testing import CliRunner

import attention_maps
import explorer
import generate
import style_mixing
from explorer_app.render import Renderer, View
from explorer_app.server import create_app
from tools import rendering
from tools.attention_overlay import query_token_weights
from training import images
from training import networks as networks_stylegan2
from training.networks_Generator import Generator

from snapshot_helpers import STYLEFORMER_SRC, build_case, published_pickle, snapshot_dict, write_file

uvicorn = pytest.importorskip('uvicorn')

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run']

#----------------------------------------------------------------------------
# Networks, snapshots and a running server.

@pytest.fixture(scope='module')
def networks(tmp_path_factory):
    """{name: (G, snapshot path)}: the small unconditional and the conditional Linformer reference generators."""
    folder = tmp_path_factory.mktemp('snapshots')
    src = STYLEFORMER_SRC.format(marker=str(folder / 'executed'))
    result = {}
    for name, case in [('uncond', 'g_small'), ('cond', 'g_linformer_cond')]:
        G = build_case(Generator, case)
        result[name] = (G, write_file(folder / f'{name}.pkl', published_pickle(snapshot_dict(G), src)))
    return result


@contextlib.contextmanager
def serving(G):
    """The explorer app of G, served by uvicorn in a thread on a free port; yields its base URL."""
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    server = uvicorn.Server(uvicorn.Config(create_app(Renderer(G, 'cpu')), log_level='warning'))
    thread = threading.Thread(target=server.run, kwargs=dict(sockets=[sock]), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, 'the explorer server did not start'
        time.sleep(0.01)
    try:
        yield f'http://127.0.0.1:{sock.getsockname()[1]}'
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope='module')
def servers(networks):
    """{name: base URL} of a server for each network."""
    with serving(networks['uncond'][0]) as uncond, serving(networks['cond'][0]) as cond:
        yield dict(uncond=uncond, cond=cond)


def get_png(url, **params):
    response = requests.get(url, params=params, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers['content-type'] == 'image/png' and float(response.headers['x-render-seconds']) >= 0
    return np.asarray(PIL.Image.open(io.BytesIO(response.content)))


def read_png(path):
    return np.asarray(PIL.Image.open(path))


def tool_output(command, args, path):
    """Run a CLI tool on the CPU (exact float32) and read the PNG it wrote."""
    result = CliRunner().invoke(command, args + ['--device=cpu'])
    assert result.exit_code == 0, result.output
    return read_png(path)


def generate_py(snapshot, outdir, seed, psi=1.0, class_idx=None, noise='const'):
    """The image `python generate.py --seeds=SEED --trunc=PSI [--class=C] --noise-mode=NOISE` writes."""
    args = [f'--network={snapshot}', f'--outdir={outdir}', f'--seeds={seed}', f'--trunc={psi}', f'--noise-mode={noise}']
    args += [] if class_idx is None else [f'--class={class_idx}']
    return tool_output(generate.generate_images_cmd, args, os.path.join(outdir, f'seed{seed:04d}.png'))

#----------------------------------------------------------------------------
# The server, without a browser.

def test_page_and_info(servers):
    page = requests.get(servers['uncond'] + '/', timeout=30)
    assert page.status_code == 200 and '/static/explorer.js' in page.text
    assert requests.get(servers['uncond'] + '/static/explorer.js', timeout=30).status_code == 200
    info = requests.get(servers['cond'] + '/api/info', timeout=30).json()
    assert (info['resolution'], info['channels'], info['num_classes'], info['num_ws']) == (32, 3, 10, 7)
    assert [b['name'] for b in info['blocks']] == ['b8_0', 'b16_0', 'b32_0', 'b32_1']
    assert [b['linformer'] for b in info['blocks']] == [False, False, True, True]


@pytest.mark.parametrize('name, settings', [
    ('uncond', dict(seed=100)),
    ('uncond', dict(seed=7, psi=0.5, noise='random')),
    ('uncond', dict(seed=3, noise='none')),
    ('cond', dict(seed=42, psi=0.7, class_idx=3)),
])
def test_image_equals_generate_py(tmp_path, networks, servers, name, settings):
    params = dict(seed=settings['seed'], psi=settings.get('psi', 1.0), noise=settings.get('noise', 'const'))
    if 'class_idx' in settings:
        params['class'] = settings['class_idx']
    image = get_png(servers[name] + '/api/image.png', **params)
    expected = generate_py(networks[name][1], tmp_path, **settings)
    assert image.shape == (32, 32, 3) and image.std() > 0
    assert np.array_equal(image, expected)


@pytest.mark.parametrize('noise', ['const', 'random'])
def test_style_mixing_equals_style_mixing_py(tmp_path, networks, servers, noise):
    image = get_png(servers['uncond'] + '/api/image.png', seed=5, psi=0.8, noise=noise, mix_seed=9, mix_styles='2-5')
    expected = tool_output(style_mixing.style_mixing_cmd, [f'--network={networks["uncond"][1]}', f'--outdir={tmp_path}',
        '--rows=5', '--cols=9', '--styles=2-5', '--trunc=0.8', f'--noise-mode={noise}'], tmp_path / '5-9.png')
    assert np.array_equal(image, expected)
    assert not np.array_equal(image, get_png(servers['uncond'] + '/api/image.png', seed=5, psi=0.8, noise=noise))


def test_interpolation_strip(networks, servers):
    strip = get_png(servers['uncond'] + '/api/interpolation.png', seed=1, seed_to=2, steps=5)
    assert strip.shape == (32, 5 * 32, 3)
    frames = np.split(strip.astype(int), 5, axis=1)
    ends = [get_png(servers['uncond'] + '/api/image.png', seed=s).astype(int) for s in (1, 2)]
    # The ends are the two seeds' images (rendered in one batch here, so within a rounding step).
    assert np.abs(frames[0] - ends[0]).max() <= 1 and np.abs(frames[-1] - ends[1]).max() <= 1
    steps = [np.abs(a - b).mean() for a, b in zip(frames, frames[1:])]
    assert all(0 < step < np.abs(ends[0] - ends[1]).mean() for step in steps)


def test_attention_overlay(tmp_path, networks, servers):
    G = networks['uncond'][0]
    image = get_png(servers['uncond'] + '/api/image.png', seed=5)
    shown = get_png(servers['uncond'] + '/api/attention.png', seed=5, block='b8_0', head=0, x=4, y=30)
    assert shown.shape == image.shape and not np.array_equal(shown, image)
    # Hottest (red) where the query pixel's token attends most, as attention_maps.py draws it.
    with torch.no_grad():
        _, maps = G.synthesis(G.mapping(rendering.seeds_to_z([5], G.z_dim, 'cpu'), None), noise_mode='const', return_attention=True)
    weights = query_token_weights(G.synthesis.b8_0, maps[0][0], (4, 30), 32)[0]
    y, x = np.unravel_index(int(weights.argmax()), (8, 8))
    hottest = shown[y * 4 + 2, x * 4 + 2].astype(int)
    assert hottest[0] > 150 and hottest[2] < 100

    # The same panel as attention_maps.py draws at zoom 1 (its last column: the overlay of the one head).
    figure = tool_output(attention_maps.attention_maps_cmd, [f'--network={networks["uncond"][1]}', f'--outdir={tmp_path}',
        '--seed=5', '--layers=b8_0', '--heads=0', '--query=4,30', '--zoom=1'], tmp_path / 'seed0005-attention.png')
    assert np.array_equal(shown, figure[:, -32:])

    # Linformer blocks (projected keys) and the mean over heads work too.
    linformer = get_png(servers['cond'] + '/api/attention.png', seed=0, **{'class': 1}, block='b32_1', head='mean', x=10, y=20)
    assert linformer.shape == (32, 32, 3) and linformer.std() > 0


@pytest.mark.parametrize('name, path, params, message', [
    ('uncond', 'image', {'class': 2}, 'unconditional'),
    ('cond', 'image', {}, 'choose a class in 0..9'),
    ('cond', 'image', {'class': 10}, 'choose a class in 0..9'),
    ('uncond', 'image', dict(seed=-1), 'Seeds must be in'),
    ('uncond', 'image', dict(noise='loud'), 'Noise mode must be one of'),
    ('uncond', 'image', dict(mix_seed=3, mix_styles='2-9'), 'w indices) in 0..7'),
    ('uncond', 'image', dict(mix_seed=3, mix_styles='5-2'), 'runs backwards'),
    ('uncond', 'image', dict(psi='nan'), 'finite number'),
    ('uncond', 'interpolation', dict(steps=40), '2..16 steps'),
    ('uncond', 'interpolation', dict(seed=-5), 'Seeds must be in'),
    ('uncond', 'interpolation', dict(seed_to=-5), 'Seeds must be in'),
    ('uncond', 'attention', dict(block='b64_0'), 'Unknown block'),
    ('uncond', 'attention', dict(block='b8_0', head=2), 'heads 0..1'),
    ('uncond', 'attention', dict(block='b8_0', head='all'), 'head must be'),
    ('uncond', 'attention', dict(block='b8_0', x=32), 'outside the 32x32 image'),
    ('uncond', 'image', dict(seed='abc'), 'seed: Input should be a valid integer'),
])
def test_bad_settings_get_a_clear_answer(servers, name, path, params, message):
    response = requests.get(f'{servers[name]}/api/{path}.png', params=params, timeout=30)
    assert response.status_code == 400 and message in response.json()['detail'], response.text


def test_stylegan2_network_without_attention():
    # StyleGAN2-ADA generators load too; they have no attention blocks, so the page hides that part.
    G = networks_stylegan2.Generator(z_dim=16, w_dim=16, c_dim=0, img_resolution=16, img_channels=3,
        synthesis_kwargs=dict(channel_base=256, channel_max=32)).eval().requires_grad_(False)
    renderer = Renderer(G, 'cpu')
    assert renderer.info()['blocks'] == []
    image = renderer.image(View(seed=3, psi=0.5))
    with torch.no_grad():
        expected = images.to_uint8(G(rendering.seeds_to_z([3], 16, 'cpu'), None, truncation_psi=0.5, noise_mode='const'))[0]
    assert np.array_equal(image, expected)
    with pytest.raises(ValueError, match='no attention blocks'):
        renderer.attention(View(), 'b8', 0, (0, 0))


def test_cli_errors(tmp_path):
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        free_port = probe.getsockname()[1]
    result = CliRunner().invoke(explorer.explorer_cmd, [f'--network={tmp_path / "missing.pkl"}', f'--port={free_port}', '--device=cpu'])
    assert result.exit_code != 0 and 'Error: Cannot load ' in result.output and 'Traceback' not in result.output
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(explorer.explorer_cmd, [f'--network={tmp_path / "missing.pkl"}', f'--port={port}', '--device=cpu'])
    assert result.exit_code != 0 and f'Cannot listen on 127.0.0.1:{port}' in result.output and '--port' in result.output

#----------------------------------------------------------------------------
# The page in a real browser: headless Debian Chromium driven by Playwright.

PIXELS_JS = '''(id) => {
    const img = document.getElementById(id);
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(img, 0, 0);
    return [canvas.height, canvas.width, Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data)];
}'''

IDLE_JS = "document.body.dataset.busy === '0'"


def shown_pixels(page, element_id='image'):
    """The RGB pixels of an <img> as the browser decoded them."""
    height, width, rgba = page.evaluate(PIXELS_JS, element_id)
    return np.array(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]


def settle(page):
    page.wait_for_function(IDLE_JS, timeout=30000)


@pytest.fixture(scope='module')
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f'needs Debian\'s chromium at {CHROMIUM} (apt-get install chromium)')
    sync_api = pytest.importorskip('playwright.sync_api')
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.mark.slow
def test_explorer_in_browser(tmp_path, networks, servers, browser):
    G, snapshot = networks['cond']
    page = browser.new_page(viewport={'width': 1100, 'height': 720}, accept_downloads=True)
    errors = []
    page.on('pageerror', lambda err: errors.append(str(err)))
    page.goto(servers['cond'] + '/')
    settle(page)
    assert page.is_visible('#class') and page.is_hidden('#attention')
    first = shown_pixels(page)
    assert np.array_equal(first, generate_py(snapshot, tmp_path / 'a', 0, class_idx=0))

    # Drag the seed slider: the image follows and is generate.py's for the seed it stops at.
    box = page.locator('#seed').bounding_box()
    page.mouse.move(box['x'] + 6, box['y'] + box['height'] / 2)
    page.mouse.down()
    page.mouse.move(box['x'] + box['width'] * 0.3, box['y'] + box['height'] / 2, steps=8)
    page.mouse.up()
    settle(page)
    seed = int(page.input_value('#seed'))
    assert seed > 0 and page.input_value('#seed-number') == str(seed)
    dragged = shown_pixels(page)
    assert not np.array_equal(dragged, first)
    assert np.array_equal(dragged, generate_py(snapshot, tmp_path / 'b', seed, class_idx=0))

    # Truncation by keyboard on its slider, another class, random noise.
    page.focus('#psi')
    for _ in range(6):
        page.keyboard.press('ArrowLeft')
    page.select_option('#class', '3')
    page.select_option('#noise', 'random')
    settle(page)
    assert page.input_value('#psi') == '0.7'
    assert np.array_equal(shown_pixels(page), generate_py(snapshot, tmp_path / 'c', seed, psi=0.7, class_idx=3, noise='random'))

    # Download: the file is the image on the page.
    with page.expect_download() as download:
        page.click('#download')
    assert download.value.suggested_filename == f'seed{seed:04d}.png'
    download.value.save_as(tmp_path / 'download.png')
    assert np.array_equal(read_png(tmp_path / 'download.png'), shown_pixels(page))

    # Style mixing: w's 0..2 from seed 11, as style_mixing.py --rows=SEED --cols=11 --styles=0-2 writes it.
    page.select_option('#noise', 'const')
    page.check('#mix')
    page.fill('#mix-seed', '11')
    page.fill('#mix-to', '2')
    settle(page)
    expected = tool_output(style_mixing.style_mixing_cmd, [f'--network={snapshot}', f'--outdir={tmp_path / "mix"}', f'--rows={seed}',
        '--cols=11', '--styles=0-2', '--trunc=0.7', '--class=3'], tmp_path / 'mix' / f'{seed}-11.png')
    assert np.array_equal(shown_pixels(page), expected)

    # Click a pixel: the attention of block b32_1 (Linformer), head 0, is drawn over the image.
    page.select_option('#block', 'b32_1')
    page.select_option('#head', '0')
    settle(page)
    stage = page.locator('#stage').bounding_box()
    cell = stage['width'] / 32  # The centre of image pixel (8, 24).
    page.mouse.click(stage['x'] + 8.5 * cell, stage['y'] + 24.5 * cell)
    settle(page)
    page.wait_for_selector('#attention:not([hidden])')
    assert page.is_visible('#marker') and 'attention of pixel (8, 24) in b32_1, head 0' in page.inner_text('#status')
    view = View(seed=seed, psi=0.7, class_idx=3, mix_seed=11, mix_styles=(0, 1, 2))
    assert np.array_equal(shown_pixels(page, 'attention'), Renderer(G, 'cpu').attention(view, 'b32_1', 0, (8, 24)))

    # The interpolation strip.
    page.fill('#steps', '6')
    page.click('#interpolate')
    page.wait_for_selector('#strip:not([hidden])')
    assert shown_pixels(page, 'strip').shape == (32, 6 * 32, 3)
    assert page.inner_text('#strip-status').startswith(f'From seed {seed} to 1 in 6 steps')
    page.screenshot(path=str(tmp_path / 'explorer.png'))
    if os.environ.get('STYLEFORMER_UPDATE_SCREENSHOT') == '1':
        shutil.copy(tmp_path / 'explorer.png', os.path.join(REPO_ROOT, 'docs', 'explorer.png'))

    # A bad setting is answered on the page, not with a broken image.
    page.fill('#steps', '99')
    page.click('#interpolate')
    page.wait_for_selector('#strip-status.error')
    assert '2..16 steps' in page.inner_text('#strip-status')
    assert not errors, errors

    page.close()
