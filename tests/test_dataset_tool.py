"""dataset_tool.py: every source format, the transforms, and refusal of bad input without
leaving anything behind. Real data: Debian's Fashion-MNIST; the other formats are written
here byte by byte in their published layouts."""

import functools
import gzip
import hashlib
import http.server
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import threading
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

import dataset_tool
from training.dataset import ImageFolderDataset

FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------
# Helpers.

def run_tool(*args):
    return CliRunner().invoke(dataset_tool.main, [str(arg) for arg in args])

def convert(source, dest, *args):
    result = run_tool(f'--source={source}', f'--dest={dest}', *args)
    assert result.exit_code == 0, result.output
    leftovers = [name for name in os.listdir(os.path.dirname(os.path.normpath(dest))) if name.endswith('.partial')]
    assert leftovers == [], leftovers
    return result

def read_output(dest):
    """{name: uint8 HWC or HW array} and the parsed dataset.json of a zip or folder."""
    if str(dest).endswith('.zip'):
        with zipfile.ZipFile(dest) as archive:
            files = {name: archive.read(name) for name in archive.namelist()}
    else:
        files = {}
        for folder, _dirs, names in os.walk(dest):
            for name in names:
                path = os.path.join(folder, name)
                with open(path, 'rb') as f:
                    files[os.path.relpath(path, dest).replace(os.sep, '/')] = f.read()
    meta = json.loads(files.pop('dataset.json'))
    images = {name: np.asarray(PIL.Image.open(io.BytesIO(data))) for name, data in sorted(files.items())}
    return images, meta

def assert_refused(result, *fragments, out_dir, dest):
    """A one-line error with the given text, a failing exit code and nothing written."""
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # Not a crash.
    message = result.output.strip().splitlines()[-1]
    assert message.startswith('Error: '), result.output
    for fragment in fragments:
        assert fragment in message, message
    assert not os.path.exists(dest)
    assert os.listdir(out_dir) == [], os.listdir(out_dir)

def save_image(path, array, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    PIL.Image.fromarray(array).save(path, **kwargs)

def random_images(count, shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(count, *shape), dtype=np.uint8)

@pytest.fixture
def out_dir(tmp_path):
    path = tmp_path / 'out'
    path.mkdir()
    return path

#----------------------------------------------------------------------------
# Real data.

def parse_idx_gz(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(f'>{ndim}I', data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], dtype=np.uint8).reshape(shape)

@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason='Debian package dataset-fashion-mnist is not installed')
@pytest.mark.parametrize('source', ['fashion-mnist', f'{FASHION_MNIST_DIR}/t10k-images-idx3-ubyte.gz'])
def test_fashion_mnist_real_data(source, out_dir, monkeypatch):
    def no_download(*_args, **_kwargs):
        raise AssertionError('the local copy must be used')
    monkeypatch.setattr(dataset_tool.dnnlib, 'open_url', no_download)
    split = 'train' if source == 'fashion-mnist' else 't10k'
    expected_images = parse_idx_gz(f'{FASHION_MNIST_DIR}/{split}-images-idx3-ubyte.gz')[:200]
    expected_labels = parse_idx_gz(f'{FASHION_MNIST_DIR}/{split}-labels-idx1-ubyte.gz')[:200]

    dest = out_dir / 'fashion.zip'
    result = convert(source, dest, '--max-images=200')
    assert '200/200' in result.output  # Progress with counts.
    images, meta = read_output(dest)
    assert len(images) == 200
    assert [label for _name, label in meta['labels']] == expected_labels.tolist()
    assert [name for name, _label in meta['labels']] == sorted(images)
    for index in [0, 1, 57, 199]:
        image = images[f'00000/img{index:08d}.png']
        assert image.shape == (32, 32)
        np.testing.assert_array_equal(image[2:30, 2:30], expected_images[index])
        assert not image[:2].any() and not image[30:].any() and not image[:, :2].any() and not image[:, 30:].any()

    dataset = ImageFolderDataset(str(dest), use_labels=True)
    assert len(dataset) == 200 and dataset.image_shape == [1, 32, 32] and dataset.label_shape == [10]
    image, label = dataset[57]
    np.testing.assert_array_equal(image[0, 2:30, 2:30], expected_images[57])
    assert label.argmax() == expected_labels[57] and label.sum() == 1

#----------------------------------------------------------------------------
# Formats built here.

def python2_pickle_of_batch(rows, labels):
    """A CIFAR-10 batch pickled the way the published files are: Python 2, protocol 2, str
    keys and a numpy.core.multiarray array; written opcode by opcode."""
    def string(b):  # A Python 2 str.
        return b'U' + bytes([len(b)]) + b if len(b) < 256 else b'T' + struct.pack('<i', len(b)) + b
    def integer(i):
        return b'K' + bytes([i]) if 0 <= i < 256 else b'J' + struct.pack('<i', i)
    dtype = (b'cnumpy\ndtype\n' + string(b'u1') + integer(0) + integer(1) + b'\x87R'
             + b'(' + integer(3) + string(b'|') + b'NNN' + integer(-1) + integer(-1) + integer(0) + b'tb')
    array = (b'cnumpy.core.multiarray\n_reconstruct\n' + b'cnumpy\nndarray\n' + integer(0) + b'\x85' + string(b'b') + b'\x87R'
             + b'(' + integer(1) + integer(len(rows)) + integer(rows.shape[1]) + b'\x86' + dtype + b'\x89' + string(rows.tobytes()) + b'tb')
    label_list = b'](' + b''.join(integer(int(label)) for label in labels) + b'e'
    return (b'\x80\x02}(' + string(b'batch_label') + string(b'training batch') + string(b'labels') + label_list
            + string(b'data') + array + string(b'filenames') + b']u.')

def write_cifar_tarball(path, batches, extra_members=()):
    """CIFAR-10 python layout: cifar-10-batches-py/data_batch_N, rows of 3072 bytes (R, G, B planes)."""
    with tarfile.open(path, 'w:gz') as tar:
        def add(name, data):
            info = tarfile.TarInfo(f'cifar-10-batches-py/{name}')
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, obj in extra_members:
            add(name, pickle.dumps(obj, protocol=2))
        for index, (images, labels) in enumerate(batches):
            add(f'data_batch_{index + 1}', python2_pickle_of_batch(images.transpose(0, 3, 1, 2).reshape(len(images), -1), labels))

def test_cifar10_tarball(tmp_path, out_dir):
    images = random_images(7, (32, 32, 3))
    labels = [3, 1, 4, 1, 5, 9, 2]
    test_images = random_images(2, (32, 32, 3), seed=1)
    source = tmp_path / 'cifar-10-python.tar.gz'
    write_cifar_tarball(source, [(images[:4], labels[:4]), (images[4:], labels[4:])],
                        extra_members=[('test_batch', {b'labels': [0, 0], b'data': test_images.reshape(2, -1)})])
    dest = out_dir / 'cifar'
    convert(source, dest)
    written, meta = read_output(dest)
    assert len(written) == 7  # The test batch is left out.
    for index, (name, label) in enumerate(meta['labels']):
        np.testing.assert_array_equal(written[name], images[index])
        assert label == labels[index]
    dataset = ImageFolderDataset(str(dest), use_labels=True)
    assert dataset.image_shape == [3, 32, 32] and dataset.label_dim == 10
    np.testing.assert_array_equal(dataset[4][0], images[4].transpose(2, 0, 1))

def test_cifar10_pickle_cannot_run_code(tmp_path, out_dir):
    class Exploit:
        def __reduce__(self):
            return (os.system, ('touch hacked',))
    source = tmp_path / 'cifar-10-python.tar.gz'
    write_cifar_tarball(source, [], extra_members=[('data_batch_1', {b'data': Exploit(), b'labels': []})])
    result = run_tool(f'--source={source}', f'--dest={out_dir / "x.zip"}')
    assert_refused(result, str(source), 'not allowed', out_dir=out_dir, dest=out_dir / 'x.zip')

def write_stl10(folder, split, images, labels=None):
    # Each image: the red, green, blue planes, each stored column by column.
    (folder / f'{split}_X.bin').write_bytes(images.transpose(0, 3, 2, 1).tobytes())
    if labels is not None:
        (folder / f'{split}_y.bin').write_bytes(np.asarray(labels, dtype=np.uint8).tobytes())

def test_stl10_binary_labelled_and_unlabelled(tmp_path, out_dir):
    images = random_images(3, (96, 96, 3))
    images[0, 0, :, 0] = 255  # First row red in image 0: catches a row/column mix-up.
    images[0, 0, :, 1:] = 0
    write_stl10(tmp_path, 'train', images, labels=[1, 10, 4])
    write_stl10(tmp_path, 'unlabeled', images[::-1])

    convert(tmp_path / 'train_X.bin', out_dir / 'train.zip')
    written, meta = read_output(out_dir / 'train.zip')
    assert [label for _name, label in meta['labels']] == [0, 9, 3]
    for index, name in enumerate(sorted(written)):
        np.testing.assert_array_equal(written[name], images[index])

    convert(tmp_path / 'unlabeled_X.bin', out_dir / 'unlabeled.zip', '--width=48', '--height=48', '--resize-filter=box')
    written, meta = read_output(out_dir / 'unlabeled.zip')
    assert meta['labels'] is None
    first = written['00000/img00000000.png']
    assert first.shape == (48, 48, 3)
    block_means = images[2].reshape(48, 2, 48, 2, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(first - block_means).max() <= 1  # A 2x box filter averages 2x2 blocks.

@pytest.mark.parametrize('dest_name', ['images.zip', 'images'])
def test_folder_of_png_and_jpeg_with_labels(tmp_path, out_dir, dest_name):
    source = tmp_path / 'source'
    rgb = random_images(3, (16, 16, 3))
    save_image(str(source / 'b' / 'deep' / 'x.png'), rgb[0])
    save_image(str(source / 'a.jpg'), rgb[1], quality=90)
    save_image(str(source / 'c.png'), np.dstack([rgb[2], np.full((16, 16), 7, np.uint8)]))  # RGBA: alpha dropped.
    (source / 'notes.txt').write_text('not an image')
    labels = {'a.jpg': 2, 'b/deep/x.png': 0, 'c.png': 1}
    (source / 'dataset.json').write_text(json.dumps({'labels': [[name, label] for name, label in labels.items()]}))

    dest = out_dir / dest_name
    convert(source, f'{dest}/' if dest_name == 'images' else dest)  # A folder may be given with a slash.
    written, meta = read_output(dest)
    # Sorted by relative path: a.jpg, b/deep/x.png, c.png.
    assert [label for _name, label in meta['labels']] == [2, 0, 1]
    first, second, third = (written[name] for name, _label in meta['labels'])
    np.testing.assert_array_equal(first, np.asarray(PIL.Image.open(source / 'a.jpg')))
    np.testing.assert_array_equal(second, rgb[0])
    np.testing.assert_array_equal(third, rgb[2])

    dataset = ImageFolderDataset(str(dest), use_labels=True)
    assert len(dataset) == 3 and dataset.num_channels == 3 and dataset.has_onehot_labels
    np.testing.assert_array_equal(dataset.get_label(0), [0, 0, 1])

def test_zip_source_and_grayscale_stays_one_channel(tmp_path, out_dir):
    gray = random_images(4, (8, 8))
    source = tmp_path / 'gray.zip'
    with zipfile.ZipFile(source, 'w') as archive:
        for index, image in enumerate(gray):
            buffer = io.BytesIO()
            PIL.Image.fromarray(image).save(buffer, format='png')
            archive.writestr(f'imgs/{index}.png', buffer.getvalue())
    convert(source, out_dir / 'gray.zip', '--max-images=3')
    written, meta = read_output(out_dir / 'gray.zip')
    assert meta['labels'] is None and len(written) == 3
    for index, image in enumerate(written.values()):
        assert image.shape == (8, 8)
        np.testing.assert_array_equal(image, gray[index])
    assert ImageFolderDataset(str(out_dir / 'gray.zip')).image_shape == [1, 8, 8]

    # A dataset made by the tool is itself a source, keeping labels.
    convert(out_dir / 'gray.zip', out_dir / 'again', '--width=4', '--height=4', '--resize-filter=bilinear')
    again, _meta = read_output(out_dir / 'again')
    assert [image.shape for image in again.values()] == [(4, 4)] * 3

def write_lsun_lmdb(folder, images):
    """An LSUN database: one key per image, the value a webp file."""
    import lmdb
    env = lmdb.open(str(folder), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for index, image in enumerate(images):
            buffer = io.BytesIO()
            PIL.Image.fromarray(image).save(buffer, format='webp', lossless=True)
            txn.put(f'key{index}'.encode(), buffer.getvalue())
    env.close()

def test_lsun_lmdb(tmp_path, out_dir):
    pytest.importorskip('lmdb')
    images = random_images(3, (12, 20, 3))
    write_lsun_lmdb(tmp_path / 'church_outdoor_train_lmdb', images)
    convert(tmp_path / 'church_outdoor_train_lmdb', out_dir / 'lsun.zip', '--transform=center-crop')
    written, meta = read_output(out_dir / 'lsun.zip')
    assert meta['labels'] is None
    for index, image in enumerate(written.values()):
        np.testing.assert_array_equal(image, images[index][:, 4:16])

#----------------------------------------------------------------------------
# Transforms.

def test_center_crop_and_resize_filters(tmp_path, out_dir):
    image = random_images(1, (30, 40, 3))[0]
    save_image(str(tmp_path / 'src' / 'wide.png'), image)
    convert(tmp_path / 'src', out_dir / 'crop', '--transform=center-crop')
    np.testing.assert_array_equal(read_output(out_dir / 'crop')[0]['00000/img00000000.png'], image[:, 5:35])

    outputs = {}
    for name in ['box', 'lanczos', 'bilinear']:
        convert(tmp_path / 'src', out_dir / f'{name}.zip', '--transform=center-crop', '--width=12', '--height=12', f'--resize-filter={name}')
        outputs[name] = read_output(out_dir / f'{name}.zip')[0]['00000/img00000000.png']
        expected = PIL.Image.fromarray(image[:, 5:35]).resize((12, 12), dataset_tool.RESIZE_FILTERS[name])
        np.testing.assert_array_equal(outputs[name], np.asarray(expected))
    assert not np.array_equal(outputs['box'], outputs['lanczos'])

def test_center_crop_wide_letterboxes_and_skips_small_images(tmp_path, out_dir):
    source = tmp_path / 'cars'
    big = random_images(1, (60, 100, 3))[0]
    save_image(str(source / 'big.png'), big)
    save_image(str(source / 'small.png'), random_images(1, (10, 16, 3))[0])
    result = convert(source, out_dir / 'cars.zip', '--transform=center-crop-wide', '--width=40', '--height=30')
    assert 'skipped 1' in result.output
    written, _meta = read_output(out_dir / 'cars.zip')
    assert len(written) == 1
    canvas = written['00000/img00000000.png']
    assert canvas.shape == (40, 40, 3)
    assert not canvas[:5].any() and not canvas[35:].any()  # Black bars above and below.
    expected = PIL.Image.fromarray(big[:, 10:90]).resize((40, 30), PIL.Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(canvas[5:35], np.asarray(expected))

#----------------------------------------------------------------------------
# Built-in names: local copy or verified download into the dnnlib cache.

@pytest.fixture
def http_folder(tmp_path):
    """A folder served over HTTP on localhost: (folder, base URL)."""
    folder = tmp_path / 'server'
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *_args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f'http://127.0.0.1:{server.server_address[1]}/'
    server.shutdown()
    server.server_close()

def test_builtin_download_is_verified(tmp_path, out_dir, monkeypatch, http_folder):
    server_dir, base_url = http_folder
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    write_cifar_tarball(server_dir / 'cifar-10-python.tar.gz', [(random_images(2, (32, 32, 3)), [0, 1])])
    md5 = hashlib.md5((server_dir / 'cifar-10-python.tar.gz').read_bytes()).hexdigest()
    spec = dataset_tool.BUILTIN_DATASETS['cifar10']
    cache_dir = tmp_path / 'cache' / 'datasets' / 'cifar10'

    monkeypatch.setitem(dataset_tool.BUILTIN_DATASETS, 'cifar10', spec._replace(base_url=base_url, md5={'cifar-10-python.tar.gz': md5}))
    convert('cifar10', out_dir / 'c.zip')
    assert len(read_output(out_dir / 'c.zip')[0]) == 2
    assert len(os.listdir(cache_dir)) == 1  # Kept in the dnnlib cache for next time.
    os.remove(out_dir / 'c.zip')

    monkeypatch.setitem(dataset_tool.BUILTIN_DATASETS, 'cifar10', spec._replace(base_url=base_url, md5={'cifar-10-python.tar.gz': '0' * 32}))
    result = run_tool('--source=cifar10', f'--dest={out_dir / "d.zip"}')
    assert_refused(result, 'md5', base_url, out_dir=out_dir, dest=out_dir / 'd.zip')
    assert os.listdir(cache_dir) == []  # The bad copy is not used again.

    monkeypatch.setitem(dataset_tool.BUILTIN_DATASETS, 'cifar10', spec._replace(base_url=base_url + 'missing/'))
    result = run_tool('--source=cifar10', f'--dest={out_dir / "d.zip"}')
    assert_refused(result, 'cannot download', '--source', out_dir=out_dir, dest=out_dir / 'd.zip')

#----------------------------------------------------------------------------
# Bad input: refused with the file named, nothing left behind.

def test_bad_image_midway_leaves_nothing(tmp_path, out_dir):
    source = tmp_path / 'src'
    for index, image in enumerate(random_images(3, (8, 8, 3))):
        save_image(str(source / f'{index}.png'), image)
    (source / '1.png').write_bytes(b'this is not a png')
    for dest in [out_dir / 'ds.zip', out_dir / 'ds', out_dir / 'new' / 'sub' / 'ds.zip']:
        result = run_tool(f'--source={source}', f'--dest={dest}')
        assert_refused(result, f'{source}/1.png', 'replace or remove', out_dir=out_dir, dest=dest)

def test_truncated_image(tmp_path, out_dir):
    source = tmp_path / 'src'
    save_image(str(source / 'a.png'), random_images(1, (64, 64, 3))[0])
    data = (source / 'a.png').read_bytes()
    (source / 'a.png').write_bytes(data[:len(data) // 2])
    result = run_tool(f'--source={source}', f'--dest={out_dir / "x.zip"}')
    assert_refused(result, f'{source}/a.png', out_dir=out_dir, dest=out_dir / 'x.zip')

def test_mismatched_sizes_and_channels(tmp_path, out_dir):
    source = tmp_path / 'sizes'
    save_image(str(source / 'a.png'), random_images(1, (8, 8, 3))[0])
    save_image(str(source / 'b.png'), random_images(1, (8, 8, 3))[0])
    save_image(str(source / 'c.png'), random_images(1, (9, 9, 3))[0])
    save_image(str(source / 'd.png'), random_images(1, (7, 7, 3))[0])
    result = run_tool(f'--source={source}', f'--dest={out_dir / "x.zip"}')
    assert_refused(result, f'{source}/c.png', '9x9', '--transform=center-crop', out_dir=out_dir, dest=out_dir / 'x.zip')

    source = tmp_path / 'channels'
    save_image(str(source / 'a.png'), random_images(1, (8, 8, 3))[0])
    save_image(str(source / 'b.png'), random_images(1, (8, 8))[0])
    result = run_tool(f'--source={source}', f'--dest={out_dir / "x.zip"}')
    assert_refused(result, f'{source}/b.png', 'grayscale', out_dir=out_dir, dest=out_dir / 'x.zip')

def test_non_square_without_crop(tmp_path, out_dir):
    save_image(str(tmp_path / 'src' / 'a.png'), random_images(1, (8, 10, 3))[0])
    result = run_tool(f'--source={tmp_path / "src"}', f'--dest={out_dir / "x.zip"}')
    assert_refused(result, 'a.png', 'square', out_dir=out_dir, dest=out_dir / 'x.zip')

def test_empty_unknown_and_missing_sources(tmp_path, out_dir):
    (tmp_path / 'empty').mkdir()
    result = run_tool(f'--source={tmp_path / "empty"}', f'--dest={out_dir / "x.zip"}')
    assert_refused(result, str(tmp_path / 'empty'), 'no images', out_dir=out_dir, dest=out_dir / 'x.zip')

    (tmp_path / 'data.csv').write_text('1,2,3')
    result = run_tool(f'--source={tmp_path / "data.csv"}', f'--dest={out_dir / "x.zip"}')
    assert_refused(result, 'data.csv', 'cannot tell the format', out_dir=out_dir, dest=out_dir / 'x.zip')

    (tmp_path / 'broken.zip').write_bytes(b'PK but not really a zip')
    result = run_tool(f'--source={tmp_path / "broken.zip"}', f'--dest={out_dir / "x.zip"}')
    assert_refused(result, 'broken.zip', 'damaged', out_dir=out_dir, dest=out_dir / 'x.zip')

    result = run_tool(f'--source={tmp_path / "nothing"}', f'--dest={out_dir / "x.zip"}')
    assert_refused(result, 'nothing', 'does not exist', out_dir=out_dir, dest=out_dir / 'x.zip')

    write_stl10(tmp_path, 'train', random_images(0, (96, 96, 3)))
    result = run_tool(f'--source={tmp_path / "train_X.bin"}', f'--dest={out_dir / "x.zip"}')
    assert_refused(result, 'no images', out_dir=out_dir, dest=out_dir / 'x.zip')

def test_existing_destination_is_untouched(tmp_path, out_dir):
    save_image(str(tmp_path / 'src' / 'a.png'), random_images(1, (8, 8, 3))[0])
    dest = out_dir / 'x.zip'
    dest.write_bytes(b'precious')
    result = run_tool(f'--source={tmp_path / "src"}', f'--dest={dest}')
    assert result.exit_code != 0 and 'already exists' in result.output
    assert dest.read_bytes() == b'precious' and os.listdir(out_dir) == ['x.zip']

    result = run_tool(f'--source={tmp_path / "src"}', f'--dest={dest / "inside.zip"}')  # Parent is a file.
    assert result.exit_code != 0 and 'cannot write' in result.output and str(dest) in result.output
    assert dest.read_bytes() == b'precious' and os.listdir(out_dir) == ['x.zip']

def test_truncated_binary_sources(tmp_path, out_dir):
    dest = out_dir / 'x.zip'
    idx = tmp_path / 'train-images-idx3-ubyte.gz'
    with gzip.open(idx, 'wb') as f:
        f.write(struct.pack('>4B3I', 0, 0, 8, 3, 5, 28, 28) + bytes(4 * 28 * 28))  # Header says 5 images.
    assert_refused(run_tool(f'--source={idx}', f'--dest={dest}'), str(idx), 'truncated', out_dir=out_dir, dest=dest)

    idx.write_bytes(b'garbage that is not gzip')
    assert_refused(run_tool(f'--source={idx}', f'--dest={dest}'), str(idx), out_dir=out_dir, dest=dest)

    (tmp_path / 'train_X.bin').write_bytes(bytes(3 * 96 * 96 + 5))
    assert_refused(run_tool(f'--source={tmp_path / "train_X.bin"}', f'--dest={dest}'), 'train_X.bin', 'truncated', out_dir=out_dir, dest=dest)

    tarball = tmp_path / 'cifar-10-python.tar.gz'
    write_cifar_tarball(tarball, [(random_images(20, (32, 32, 3)), [0] * 20)])
    tarball.write_bytes(tarball.read_bytes()[:20000])
    assert_refused(run_tool(f'--source={tarball}', f'--dest={dest}'), str(tarball), out_dir=out_dir, dest=dest)

    other = tmp_path / 'other.tar.gz'
    with tarfile.open(other, 'w:gz') as tar:
        tar.add(idx, arcname='x')
    assert_refused(run_tool(f'--source={other}', f'--dest={dest}'), 'data_batch', out_dir=out_dir, dest=dest)

def test_labels_missing_for_some_images(tmp_path, out_dir):
    source = tmp_path / 'src'
    for name in ['a.png', 'b.png']:
        save_image(str(source / name), random_images(1, (8, 8, 3))[0])
    (source / 'dataset.json').write_text(json.dumps({'labels': [['a.png', 1]]}))
    result = run_tool(f'--source={source}', f'--dest={out_dir / "x.zip"}')
    assert_refused(result, "'b.png'", 'dataset.json', out_dir=out_dir, dest=out_dir / 'x.zip')

def test_bad_options(tmp_path, out_dir):
    save_image(str(tmp_path / 'src' / 'a.png'), random_images(1, (8, 8, 3))[0])
    result = run_tool(f'--source={tmp_path / "src"}', f'--dest={out_dir / "x.zip"}', '--width=4')
    assert_refused(result, '--height', out_dir=out_dir, dest=out_dir / 'x.zip')
    result = run_tool(f'--source={tmp_path / "src"}', f'--dest={out_dir / "x.zip"}', '--transform=center-crop-wide')
    assert_refused(result, '--width', out_dir=out_dir, dest=out_dir / 'x.zip')

@pytest.mark.slow  # A fresh interpreter importing torch: seconds, more on a busy machine.
def test_command_line_error_is_one_line(tmp_path):
    (tmp_path / 'src').mkdir()
    (tmp_path / 'src' / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 truncated')
    proc = subprocess.run([sys.executable, 'dataset_tool.py', f'--source={tmp_path / "src"}', f'--dest={tmp_path / "out.zip"}'],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith('Error')]
    assert len(error_lines) == 1 and 'broken.jpg' in error_lines[0], proc.stderr
    assert sorted(os.listdir(tmp_path)) == ['src']

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# Labels from class folders, channel conversion, padding to a square.

def test_labels_from_folders(tmp_path, out_dir):
    source = tmp_path / 'pets'
    images = random_images(5, (8, 8, 3))
    save_image(str(source / 'dog' / 'b.png'), images[0])
    save_image(str(source / 'cat' / 'x.png'), images[1])
    save_image(str(source / 'cat' / 'deep' / 'y.png'), images[2])
    save_image(str(source / 'Zebra' / 'z.png'), images[3])
    save_image(str(source / 'dog' / 'a.png'), images[4])
    result = convert(source, out_dir / 'pets.zip', '--labels-from-folders')
    assert '0=Zebra, 1=cat, 2=dog' in result.output  # Sorted as Python sorts names.
    written, meta = read_output(out_dir / 'pets.zip')
    assert meta['class_names'] == ['Zebra', 'cat', 'dog']
    # Images in sorted path order: Zebra/z, cat/deep/y, cat/x, dog/a, dog/b.
    assert [label for _name, label in meta['labels']] == [0, 1, 1, 2, 2]
    for (name, _label), index in zip(meta['labels'], [3, 2, 1, 4, 0]):
        np.testing.assert_array_equal(written[name], images[index])
    dataset = ImageFolderDataset(str(out_dir / 'pets.zip'), use_labels=True)
    assert dataset.label_dim == 3
    np.testing.assert_array_equal(dataset.get_label(3), [0, 0, 1])

    # A zip with the same layout gives the same labels.
    with zipfile.ZipFile(tmp_path / 'pets.zip', 'w') as archive:
        for folder, _dirs, names in os.walk(source):
            for name in names:
                archive.write(os.path.join(folder, name), os.path.relpath(os.path.join(folder, name), source))
    convert(tmp_path / 'pets.zip', out_dir / 'from-zip', '--labels-from-folders')
    assert read_output(out_dir / 'from-zip')[1] == meta

def test_labels_from_folders_refuses_bad_layouts(tmp_path, out_dir):
    dest = out_dir / 'x.zip'
    source = tmp_path / 'loose'
    save_image(str(source / 'cat' / 'a.png'), random_images(1, (8, 8, 3))[0])
    save_image(str(source / 'stray.png'), random_images(1, (8, 8, 3))[0])
    assert_refused(run_tool(f'--source={source}', f'--dest={dest}', '--labels-from-folders'),
                   'stray.png', 'class folder', out_dir=out_dir, dest=dest)

    source = tmp_path / 'empty-class'
    save_image(str(source / 'cat' / 'a.png'), random_images(1, (8, 8, 3))[0])
    (source / 'dog').mkdir()
    (source / 'dog' / 'notes.txt').write_text('no images here')
    assert_refused(run_tool(f'--source={source}', f'--dest={dest}', '--labels-from-folders'),
                   f'{source}/dog', 'no images', out_dir=out_dir, dest=dest)

    source = tmp_path / 'labelled'
    save_image(str(source / 'cat' / 'a.png'), random_images(1, (8, 8, 3))[0])
    (source / 'dataset.json').write_text(json.dumps({'labels': [['cat/a.png', 0]]}))
    assert_refused(run_tool(f'--source={source}', f'--dest={dest}', '--labels-from-folders'),
                   'dataset.json', out_dir=out_dir, dest=dest)

    write_stl10(tmp_path, 'train', random_images(1, (96, 96, 3)))
    assert_refused(run_tool(f'--source={tmp_path / "train_X.bin"}', f'--dest={dest}', '--labels-from-folders'),
                   '--labels-from-folders', 'train_X.bin', out_dir=out_dir, dest=dest)

@pytest.mark.parametrize('channels', [1, 3])
def test_channels_converts_mixed_sets(tmp_path, out_dir, channels):
    source = tmp_path / 'mixed'
    rgb, gray = random_images(1, (8, 8, 3))[0], random_images(1, (8, 8))[0]
    save_image(str(source / 'a.png'), rgb)
    save_image(str(source / 'b.png'), gray)
    convert(source, out_dir / 'x.zip', f'--channels={channels}')
    written, _meta = read_output(out_dir / 'x.zip')
    first, second = written.values()
    if channels == 1:
        np.testing.assert_array_equal(first, np.asarray(PIL.Image.fromarray(rgb).convert('L')))
        np.testing.assert_array_equal(second, gray)
    else:
        np.testing.assert_array_equal(first, rgb)
        np.testing.assert_array_equal(second, np.dstack([gray] * 3))
    assert ImageFolderDataset(str(out_dir / 'x.zip')).num_channels == channels
    assert run_tool(f'--source={source}', f'--dest={out_dir / "y.zip"}', '--channels=2').exit_code == 2

def test_center_pad(tmp_path, out_dir):
    wide, tall = random_images(1, (6, 10, 3))[0], random_images(1, (9, 4, 3), seed=1)[0]
    save_image(str(tmp_path / 'src' / 'a.png'), wide)
    save_image(str(tmp_path / 'src' / 'b.png'), tall)
    result = run_tool(f'--source={tmp_path / "src"}', f'--dest={out_dir / "x.zip"}')
    assert_refused(result, 'a.png', '--transform=center-pad', out_dir=out_dir, dest=out_dir / 'x.zip')

    convert(tmp_path / 'src', out_dir / 'padded', '--transform=center-pad', '--width=10', '--height=10')
    first, second = read_output(out_dir / 'padded')[0].values()
    assert first.shape == second.shape == (10, 10, 3)
    np.testing.assert_array_equal(first[2:8], wide)  # Already 10 wide: black rows above and below, no resize.
    assert not first[:2].any() and not first[8:].any()
    padded = np.zeros((9, 9, 3), np.uint8)
    padded[:, 2:6] = tall
    np.testing.assert_array_equal(second, np.asarray(PIL.Image.fromarray(padded).resize((10, 10), PIL.Image.Resampling.LANCZOS)))
