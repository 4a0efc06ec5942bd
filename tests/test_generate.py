"""generate.py: seeds parsing, the published command, grid, batches, classes, noise modes, projected w."""

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import generate
from tools import arguments
from training.networks_Generator import Generator

from snapshot_helpers import build_case, write_generator_snapshot

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def g_small():
    return build_case(Generator, 'g_small')


@pytest.fixture(scope='module')
def snapshots(tmp_path_factory, g_small):
    """Published-format snapshots of the unconditional and the conditional reference generators."""
    folder = tmp_path_factory.mktemp('snapshots')
    cond = build_case(Generator, 'g_linformer_cond')
    return dict(uncond=write_generator_snapshot(folder / 'uncond.pkl', g_small),
                cond=write_generator_snapshot(folder / 'cond.pkl', cond), cond_G=cond)


def run(args):
    # On the CPU: a GPU would run the reduced-precision blocks, and the comparisons here are exact.
    return CliRunner().invoke(generate.generate_images_cmd, args + ['--device=cpu'])


def read_png(path):
    return np.asarray(PIL.Image.open(path))


def published_image(G, seed, noise_mode='const', class_idx=None, psi=1):
    """What the published generate.py computes for one seed (written out independently here)."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
    c = torch.zeros([1, G.c_dim])
    if class_idx is not None:
        c[:, class_idx] = 1
    with torch.no_grad():
        img = G(z, c, truncation_psi=psi, noise_mode=noise_mode)
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()

#----------------------------------------------------------------------------

def test_parse_range():
    assert arguments.parse_range('0-7,100', 100) == [0, 1, 2, 3, 4, 5, 6, 7, 100]
    assert arguments.parse_range('5', 100) == [5]
    assert arguments.parse_range(' 1 , 3-4', 100) == [1, 3, 4]
    for bad in ['7-3', 'a', '1-', '1,,2']:
        with pytest.raises(ValueError):
            arguments.parse_range(bad, 100)


def test_published_command_gives_the_published_images(tmp_path, snapshots, g_small):
    outdir = tmp_path / 'out'
    result = run([f'--outdir={outdir}', '--seeds=100-105', f'--network={snapshots["uncond"]}'])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in outdir.iterdir()) == [f'seed{s:04d}.png' for s in range(100, 106)]
    for seed in [100, 105]:
        image = read_png(outdir / f'seed{seed:04d}.png')
        assert image.shape == (32, 32, 3) and image.std() > 0
        assert np.array_equal(image, published_image(g_small, seed))

    # --reduced-precision only changes the blocks that run in bf16/fp16 on CUDA; the CPU stays in float32.
    result = run([f'--outdir={tmp_path / "rp"}', '--seeds=100', '--reduced-precision', f'--network={snapshots["uncond"]}'])
    assert result.exit_code == 0, result.output
    assert np.array_equal(read_png(tmp_path / 'rp' / 'seed0100.png'), read_png(outdir / 'seed0100.png'))


def test_grid_batches_and_truncation(tmp_path, snapshots, g_small):
    outdir = tmp_path / 'out'
    result = run([f'--outdir={outdir}', '--seeds=0-2,9', '--grid', '--batch=3', '--trunc=0.7', f'--network={snapshots["uncond"]}'])
    assert result.exit_code == 0, result.output
    grid = read_png(outdir / 'grid.png')
    assert grid.shape == (64, 64, 3)  # 4 images in a 2x2 grid.
    for idx, seed in enumerate([0, 1, 2, 9]):
        cell = grid[(idx // 2) * 32:(idx // 2 + 1) * 32, (idx % 2) * 32:(idx % 2 + 1) * 32]
        assert np.array_equal(cell, read_png(outdir / f'seed{seed:04d}.png'))
        # Batched and single-image passes agree up to rounding of the last bit.
        assert np.abs(cell.astype(int) - published_image(g_small, seed, psi=0.7).astype(int)).max() <= 1


def test_classes(tmp_path, snapshots):
    result = run([f'--outdir={tmp_path}', '--seeds=1', f'--network={snapshots["cond"]}'])
    assert result.exit_code != 0 and 'conditional' in result.output and '--class' in result.output
    result = run([f'--outdir={tmp_path}', '--seeds=1', '--class=10', f'--network={snapshots["cond"]}'])
    assert result.exit_code != 0 and 'out of range' in result.output
    result = run([f'--outdir={tmp_path}', '--seeds=1', '--class=2', f'--network={snapshots["uncond"]}'])
    assert result.exit_code != 0 and 'unconditional' in result.output

    outdir = tmp_path / 'cond'
    for class_idx in [2, 7]:
        result = run([f'--outdir={outdir / str(class_idx)}', '--seeds=1', f'--class={class_idx}', f'--network={snapshots["cond"]}'])
        assert result.exit_code == 0, result.output
        assert np.array_equal(read_png(outdir / str(class_idx) / 'seed0001.png'), published_image(snapshots['cond_G'], 1, class_idx=class_idx))
    assert not np.array_equal(read_png(outdir / '2' / 'seed0001.png'), read_png(outdir / '7' / 'seed0001.png'))


def test_noise_modes(tmp_path, snapshots, g_small):
    images = {}
    for mode, repeat in [('const', 0), ('random', 0), ('random', 1), ('none', 0)]:
        outdir = tmp_path / f'{mode}{repeat}'
        result = run([f'--outdir={outdir}', '--seeds=3', f'--noise-mode={mode}', f'--network={snapshots["uncond"]}'])
        assert result.exit_code == 0, result.output
        images[mode, repeat] = read_png(outdir / 'seed0003.png')
    assert np.array_equal(images['random', 0], images['random', 1])  # Seeded noise: reproducible.
    assert not np.array_equal(images['random', 0], images['const', 0])
    assert not np.array_equal(images['none', 0], images['const', 0])
    assert np.array_equal(images['none', 0], published_image(g_small, 3, noise_mode='none'))


def test_projected_w(tmp_path, snapshots, g_small):
    ws = g_small.mapping(torch.randn([2, g_small.z_dim]), None).numpy()
    np.savez(tmp_path / 'w.npz', w=ws)
    result = run([f'--outdir={tmp_path / "out"}', f'--projected-w={tmp_path / "w.npz"}', f'--network={snapshots["uncond"]}'])
    assert result.exit_code == 0, result.output
    with torch.no_grad():
        expected = (g_small.synthesis(torch.from_numpy(ws[1:]), noise_mode='const').permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    assert np.array_equal(read_png(tmp_path / 'out' / 'proj01.png'), expected[0].numpy())

    np.savez(tmp_path / 'bad.npz', w=ws[:, :3])
    result = run([f'--outdir={tmp_path / "out"}', f'--projected-w={tmp_path / "bad.npz"}', f'--network={snapshots["uncond"]}'])
    assert result.exit_code != 0 and 'shape' in result.output


def test_bad_network_and_missing_seeds(tmp_path, snapshots):
    result = run([f'--outdir={tmp_path}', '--seeds=1', f'--network={tmp_path / "missing.pkl"}'])
    assert result.exit_code != 0 and 'No such file' in result.output
    result = run([f'--outdir={tmp_path}', f'--network={snapshots["uncond"]}'])
    assert result.exit_code != 0 and '--seeds' in result.output
    result = run([f'--outdir={tmp_path}', '--seeds=3-1', f'--network={snapshots["uncond"]}'])
    assert result.exit_code != 0 and 'backwards' in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the message shown when CUDA is missing')
def test_cuda_requested_without_cuda(tmp_path, snapshots):
    result = CliRunner().invoke(generate.generate_images_cmd, [f'--outdir={tmp_path}', '--seeds=1', f'--network={snapshots["uncond"]}', '--device=cuda'])
    assert result.exit_code != 0 and 'no CUDA device' in result.output


def test_library_errors_become_one_line_click_errors(tmp_path, snapshots):
    # tools/arguments.py and tools/rendering.py raise ValueError/OSError; the CLI names the option and shows no traceback.
    result = CliRunner().invoke(generate.generate_images_cmd, [f'--outdir={tmp_path}', '--seeds=1', f'--network={snapshots["uncond"]}', '--device=tpu0'])
    assert result.exit_code == 2 and "Invalid value for --device: Unknown device 'tpu0'" in result.output
    (tmp_path / 'not.npz').write_text('not a zip')
    result = run([f'--outdir={tmp_path / "out"}', f'--projected-w={tmp_path / "not.npz"}', f'--network={snapshots["uncond"]}'])
    assert result.exit_code == 2 and 'Invalid value for --projected-w' in result.output
    assert 'Traceback' not in result.output and isinstance(result.exception, SystemExit)
