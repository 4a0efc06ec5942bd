"""style_mixing.py, gen_video.py, attention_maps.py, projector.py: each writes its files with sane contents."""

import imageio
import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import attention_maps
import gen_video
import generate
import projector
import style_mixing
from tools import rendering
from training import images
from training.networks_Generator import Generator

from snapshot_helpers import build_case, write_generator_snapshot

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def g_small():
    return build_case(Generator, 'g_small')


@pytest.fixture(scope='module')
def snapshot(tmp_path_factory, g_small):
    return write_generator_snapshot(tmp_path_factory.mktemp('snapshot') / 'uncond.pkl', g_small)



def invoke(command, args):
    result = CliRunner().invoke(command, args + ['--device=cpu'])  # Exact comparisons: no reduced precision.
    assert result.exit_code == 0, result.output
    return result


def read_png(path):
    return np.asarray(PIL.Image.open(path))


def read_video(path):
    with imageio.get_reader(str(path)) as reader:  # iter_data: the reader's length is unknown (inf).
        return np.stack(list(reader.iter_data()))


def render(G, ws):
    with torch.no_grad():
        return images.to_uint8(G.synthesis(ws, noise_mode='const'))

#----------------------------------------------------------------------------

def test_quantize_rounds_half_up_and_clamps():
    img = torch.tensor([-2.0, -1.0, -1 + 0.5 / 127.5, 0.0, 1.0, 3.0]).reshape(1, 1, 1, 6)
    assert images.quantize(img).flatten().tolist() == [0, 0, 1, 128, 255, 255]
    reals = np.array([0, 7, 254, 255], dtype=np.uint8).reshape(1, 1, 2, 2)
    assert np.array_equal(images.quantize(reals, drange=(0, 255)).numpy(), reals)  # uint8 reals pass unchanged.
    assert images.to_uint8(torch.zeros([2, 3, 4, 5])).shape == (2, 4, 5, 3)


def test_save_image_grid_lays_out_columns_then_rows(tmp_path):
    # Image i is filled with the value 10 * i: the grid shows 0 10 20 / 30 40 50.
    stack = np.stack([np.full([1, 2, 3], 10.0 * i) for i in range(6)])
    images.save_image_grid(stack, tmp_path / 'grid.png', drange=(0, 255), grid_size=(3, 2))
    grid = read_png(tmp_path / 'grid.png')
    assert grid.shape == (2 * 2, 3 * 3)  # Grayscale: rows x height, columns x width.
    assert grid[::2, ::3].tolist() == [[0, 10, 20], [30, 40, 50]]
    with pytest.raises(ValueError, match='3x2 grid needs 6 images'):
        images.save_image_grid(stack[:5], tmp_path / 'bad.png', drange=(0, 255), grid_size=(3, 2))


def test_style_mixing_grid(tmp_path, snapshot, g_small):
    invoke(style_mixing.style_mixing_cmd, [f'--outdir={tmp_path}', '--rows=1,2', '--cols=3,4,5', '--styles=0-2', f'--network={snapshot}'])
    grid = read_png(tmp_path / 'grid.png')
    assert grid.shape == (3 * 32, 4 * 32, 3)
    assert not grid[:32, :32].any()  # Empty top-left corner.

    ws = g_small.mapping(rendering.seeds_to_z([1, 2, 3, 4, 5], g_small.z_dim, 'cpu'), None)
    own = render(g_small, ws)
    assert np.array_equal(grid[:32, 32:64], own[2])          # Column seed 3 on top.
    assert np.array_equal(grid[64:96, :32], own[1])          # Row seed 2 on the left.
    mixed = ws[1:2].clone()
    mixed[:, :3] = ws[3, :3]                                 # Row seed 2 with w's 0-2 of column seed 4.
    cell = grid[64:96, 64:96]
    assert np.abs(cell.astype(int) - render(g_small, mixed)[0].astype(int)).max() <= 1
    assert np.array_equal(cell, read_png(tmp_path / '2-4.png'))
    assert not np.array_equal(cell, own[1]) and not np.array_equal(cell, own[3])


def test_style_mixing_rejects_layers_beyond_num_ws(tmp_path, snapshot):
    result = CliRunner().invoke(style_mixing.style_mixing_cmd, [f'--outdir={tmp_path}', '--rows=1', '--cols=2', '--styles=8', f'--network={snapshot}', '--device=cpu'])
    assert result.exit_code != 0 and 'num_ws=8' in result.output


def test_interpolation_latents_pass_through_keys():
    keys = torch.randn([2, 3, 5])
    frames = gen_video.interpolation_latents(keys, 4, loop=True, space='w')
    assert frames.shape == (12, 2, 5)
    assert torch.allclose(frames[4], keys[:, 1]) and torch.allclose(frames[2], (keys[:, 0] + keys[:, 1]) / 2)
    frames = gen_video.interpolation_latents(keys, 4, loop=False, space='z')
    assert frames.shape == (9, 2, 5)
    assert torch.allclose(frames[-1], keys[:, 2], atol=1e-6)
    # slerp of equal-norm vectors keeps the norm.
    a, b = torch.nn.functional.normalize(torch.randn(2, 5), dim=1).unbind(0)
    assert torch.allclose(gen_video.slerp(a[None], b[None], 0.3).norm(), torch.tensor(1.0), atol=1e-5)


@pytest.mark.slow
def test_video(tmp_path, snapshot, g_small):
    output = tmp_path / 'lerp.mp4'
    invoke(gen_video.generate_video_cmd, [f'--output={output}', '--seeds=0-3', '--grid=2x1', '--w-frames=3', f'--network={snapshot}'])
    frames = read_video(output)
    assert frames.shape == (6, 32, 64, 3)  # 2 keyframes per cell, looping: 2 transitions x 3 frames.
    # First frame: seed 0 (left cell) and seed 1 (right cell), up to video compression.
    ws = g_small.mapping(rendering.seeds_to_z([0, 1], g_small.z_dim, 'cpu'), None)
    expected = np.concatenate(list(render(g_small, ws)), axis=1)
    assert np.abs(frames[0].astype(float) - expected).mean() < 20
    assert np.abs(frames[0].astype(float) - frames[3]).mean() > 1  # It moves.


def test_keyframes_from_seeds_and_projected_w(g_small):
    label = torch.zeros([1, 0])
    projected = torch.randn([2, g_small.num_ws, g_small.w_dim])
    keys = gen_video.keyframes(g_small, [0, 1], projected, label, cells=2, space='w', truncation_psi=0.5)
    seed_ws = g_small.mapping(rendering.seeds_to_z([0, 1], g_small.z_dim, 'cpu'), None, truncation_psi=0.5)
    assert keys.shape == (2, 2, g_small.num_ws, g_small.w_dim)  # [cells, keys per cell, ...]
    # Seeds first, then the projected w's (untruncated), dealt to the cells in turn.
    for cell, expected in enumerate([[seed_ws[0], projected[0]], [seed_ws[1], projected[1]]]):
        assert torch.allclose(keys[cell], torch.stack(expected))
    with pytest.raises(Exception, match='--space=w'):
        gen_video.keyframes(g_small, [0], projected, label, cells=1, space='z', truncation_psi=1)
    with pytest.raises(Exception, match='at least 2 keyframes'):
        gen_video.keyframes(g_small, [], projected[:1], label, cells=1, space='w', truncation_psi=1)


@pytest.mark.slow
def test_video_through_projected_w(tmp_path, snapshot, g_small, one_thread):
    projected = g_small.mapping(rendering.seeds_to_z([20, 21, 22], g_small.z_dim, 'cpu'), None, truncation_psi=0.7)  # Typical w's.
    np.savez(tmp_path / 'a.npz', w=projected[:2].numpy())  # Files with several w's and with one.
    np.savez(tmp_path / 'b.npz', w=projected[2:].numpy())
    output = tmp_path / 'proj.mp4'
    invoke(gen_video.generate_video_cmd, [f'--output={output}', f'--projected-w={tmp_path / "a.npz"}', f'--projected-w={tmp_path / "b.npz"}',
        '--w-frames=2', '--no-loop', f'--network={snapshot}'])
    frames = read_video(output)
    assert frames.shape == (5, 32, 32, 3)  # 3 keyframes, not looping: 2 transitions x 2 frames + the last.
    keys = render(g_small, projected).astype(float)
    for frame, key in [(0, 0), (2, 1), (4, 2)]:  # Each keyframe is on screen at its frame, up to video compression.
        errors = np.abs(frames[frame] - keys).mean(axis=(1, 2, 3))  # Measured: about 18 for the key, over 60 for the others.
        assert errors[key] < 0.5 * np.delete(errors, key).min(), errors
    result = CliRunner().invoke(gen_video.generate_video_cmd, [f'--output={output}', f'--network={snapshot}'])
    assert result.exit_code == 2 and '--projected-w' in result.output


def assert_rows_labelled(strip, num_rows):
    """Each row's part of the label strip is mostly white background with dark text on it,
    and no two rows carry the same label."""
    rows = np.split(strip, num_rows)
    for row in rows:
        assert (row.min(axis=2) == 255).mean() > 0.7
        assert (row.max(axis=2) < 100).sum() > 20
    assert all(not np.array_equal(a, b) for i, a in enumerate(rows) for b in rows[i + 1:])


def test_attention_maps(tmp_path, snapshot, g_small):
    invoke(attention_maps.attention_maps_cmd, [f'--outdir={tmp_path}', '--seed=5', '--layers=b8_0,b32_1', '--heads=0',
        '--query=4,30', '--zoom=2', f'--network={snapshot}'])
    figure = read_png(tmp_path / 'seed0005-attention.png')
    strip = figure.shape[1] - 2 * 64  # Two layers x (image, one head), 32x32 at zoom 2, right of the labels.
    assert figure.shape[0] == 2 * 64 and strip > 0
    assert_rows_labelled(figure[:, :strip], 2)

    # The overlay is hottest (red) where the query token attends most.
    ws = g_small.mapping(rendering.seeds_to_z([5], g_small.z_dim, 'cpu'), None)
    with torch.no_grad():
        _, maps = g_small.synthesis(ws, noise_mode='const', return_attention=True)
    block = g_small.synthesis.b8_0
    weights = attention_maps.query_token_weights(block, maps[0][0], (4, 30), 32)
    assert weights.shape == (block.enc.num_heads, 8, 8)
    assert torch.allclose(weights.sum(dim=(1, 2)), torch.ones(block.enc.num_heads), atol=1e-5)
    y, x = np.unravel_index(int(weights[0].argmax()), (8, 8))
    hottest = figure[y * 8 + 4, strip + 64 + x * 8 + 4].astype(int)   # Zoom 2: each 8x8 token covers 8x8 figure pixels.
    assert hottest[0] > 150 and hottest[2] < 100


def test_attention_maps_linformer_and_errors(tmp_path):
    G = build_case(Generator, 'g_linformer_cond')
    label = rendering.make_labels(G, 1, 1, torch.device('cpu'))
    figure = attention_maps.attention_figure(G, 0, label, layers=['b32_1'], heads='mean')
    strip = figure.shape[1] - 64
    assert figure.shape[0] == 32 and strip > 0
    assert_rows_labelled(figure[:, :strip], 1)
    with pytest.raises(Exception, match='Unknown layer'):
        attention_maps.attention_figure(G, 0, label, layers=['b64_0'])
    with pytest.raises(Exception, match='heads'):
        attention_maps.attention_figure(G, 0, label, layers=['b8_0'], heads=[99])


@pytest.mark.slow
def test_projection(tmp_path, snapshot, g_small):
    # Target: an image the network can make, so a few steps of the pixel loss must reduce the loss.
    ws = g_small.mapping(rendering.seeds_to_z([11], g_small.z_dim, 'cpu'), None)
    images.save_image(render(g_small, ws)[0], tmp_path / 'target.png')
    target, _ = projector.load_target(tmp_path / 'target.png', g_small, torch.device('cpu'))
    losses = []
    projector.project(g_small, target, projector.PixelLoss(target), torch.zeros([1, 0]), num_steps=6, w_avg_samples=500,
        on_step=lambda step, loss, synth: losses.append(loss))
    assert len(losses) == 6 and losses[-1] < losses[0]

    outdir = tmp_path / 'out'
    invoke(projector.run_projection, [f'--outdir={outdir}', f'--target={tmp_path / "target.png"}', '--num-steps=3',
        '--loss=pixel', f'--network={snapshot}'])
    w = np.load(outdir / 'projected_w.npz')['w']
    assert w.shape == (1, g_small.num_ws, g_small.w_dim) and np.isfinite(w).all()
    assert read_png(outdir / 'target.png').shape == (32, 32, 3)
    assert read_video(outdir / 'proj.mp4').shape == (3, 32, 64, 3)  # target | projection, one frame per step.
    # generate.py renders the projected w exactly as the projector saved it.
    invoke(generate.generate_images_cmd, [f'--outdir={tmp_path / "gen"}', f'--projected-w={outdir / "projected_w.npz"}', f'--network={snapshot}'])
    assert np.array_equal(read_png(tmp_path / 'gen' / 'proj00.png'), read_png(outdir / 'proj.png'))


def test_projection_loss_choice(tmp_path, g_small):
    target = torch.zeros([1, 3, 32, 32])
    with pytest.raises(Exception, match='--loss'):
        projector.make_loss('pixel,bogus', target, torch.device('cpu'))
    loss = projector.make_loss('pixel', target, torch.device('cpu'))
    assert float(loss(torch.ones([1, 3, 32, 32]))) == pytest.approx(1.0)


def test_projection_w_plus(g_small, one_thread):
    ws = g_small.mapping(rendering.seeds_to_z([11], g_small.z_dim, 'cpu'), None)
    target = render(g_small, ws)[0]
    target = torch.tensor(target.transpose(2, 0, 1)[None], dtype=torch.float32) / 127.5 - 1
    results = {}
    for w_plus in [False, True]:
        losses = []
        torch.manual_seed(0)
        results[w_plus] = projector.project(g_small, target, projector.PixelLoss(target), torch.zeros([1, 0]), num_steps=6,
            w_avg_samples=500, on_step=lambda step, loss, synth: losses.append(loss), w_plus=w_plus)
        assert results[w_plus].shape == (6, g_small.num_ws, g_small.w_dim) and losses[-1] < losses[0]
    assert (results[False] == results[False][:, :1]).all()  # W: one w for every layer.
    assert not (results[True][-1] == results[True][-1, :1]).all()  # W+: the layers' w's move apart.


def test_projection_of_a_folder(tmp_path, snapshot, g_small, one_thread):
    targets = tmp_path / 'targets'
    targets.mkdir()
    for seed, name in [(11, 'b.png'), (12, 'a.jpg')]:
        ws = g_small.mapping(rendering.seeds_to_z([seed], g_small.z_dim, 'cpu'), None)
        PIL.Image.fromarray(render(g_small, ws)[0]).save(targets / name)
    (targets / 'notes.txt').write_text('not an image')
    common = ['--num-steps=2', '--loss=pixel', '--no-save-video', '--w-plus', f'--network={snapshot}']
    result = invoke(projector.run_projection, [f'--outdir={tmp_path / "out"}', f'--target={targets}', *common])
    assert 'Target 1/2: a' in result.output and 'Target 2/2: b' in result.output
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['a', 'b']
    # Each result is what projecting that image alone gives.
    invoke(projector.run_projection, [f'--outdir={tmp_path / "alone"}', f'--target={targets / "b.png"}', *common])
    w_folder, w_alone = (np.load(path / 'projected_w.npz')['w'] for path in [tmp_path / 'out' / 'b', tmp_path / 'alone'])
    assert w_folder.shape == (1, g_small.num_ws, g_small.w_dim) and np.array_equal(w_folder, w_alone)
    assert np.array_equal(read_png(tmp_path / 'out' / 'b' / 'proj.png'), read_png(tmp_path / 'alone' / 'proj.png'))
    assert not np.array_equal(w_folder, np.load(tmp_path / 'out' / 'a' / 'projected_w.npz')['w'])


@pytest.mark.parametrize('files, message', [
    ({}, 'without images'),
    ({'x.png': 'image', 'x.jpg': 'image'}, "named 'x'"),
    ({'a.png': 'image', 'b.png': 'broken'}, 'b.png'),
])
def test_projection_folder_errors_come_before_any_output(tmp_path, snapshot, files, message):
    targets = tmp_path / 'targets'
    targets.mkdir()
    for name, kind in files.items():
        if kind == 'image':
            PIL.Image.fromarray(np.zeros([8, 8, 3], np.uint8)).save(targets / name)
        else:
            (targets / name).write_bytes(b'not an image')
    result = CliRunner().invoke(projector.run_projection, [f'--outdir={tmp_path / "out"}', f'--target={targets}', '--num-steps=1',
        '--loss=pixel', '--device=cpu', f'--network={snapshot}'])
    assert result.exit_code == 2 and message in result.output and 'Traceback' not in result.output, result.output
    assert not (tmp_path / 'out').exists()
