"""Convert image collections into training datasets (a zip or folder of PNGs plus
dataset.json with the labels, the layout StyleGAN2-ADA uses). Run with --help for the
sources it reads."""

import collections
import contextlib
import gzip
import hashlib
import io
import itertools
import json
import os
import pickle
import re
import shutil
import tarfile
import typing
import zipfile
import zlib

import click
import numpy as np
import PIL.Image
from tqdm import tqdm

import dnnlib
from training import scenes
from training.dataset import LABELS_FILE, ImageFiles, decode_image

#----------------------------------------------------------------------------
# Sources: each opener returns the number of images and an iterator of records.

class Record(typing.NamedTuple):
    origin: str             # Where the image came from, for messages.
    image: PIL.Image.Image  # Mode 'L' or 'RGB'.
    label: object           # Class index, list of numbers, or None.

class Source(typing.NamedTuple):
    num_images: int
    records: typing.Iterator[Record]

def fail(message):
    raise click.ClickException(message)

def open_image_files(path, labels_from_folders=False):
    """A folder (recursively) or a zip of images, labelled by its dataset.json if any, or by
    class folders. Returns the source and the class names (None unless from folders)."""
    files = ImageFiles(path)
    labels = files.read_labels()
    class_names = None
    if labels_from_folders:
        if labels is not None:
            fail(f"'{path}' has its own {LABELS_FILE} with labels; drop --labels-from-folders to use them, "
                 f"or delete {LABELS_FILE} to label by folder")
        labels, class_names = folder_labels(path, files.names)
    elif labels is not None:
        unlabelled = [name for name in files.names if name not in labels]
        if unlabelled:
            fail(f"'{path}/{LABELS_FILE}' has no label for '{unlabelled[0]}' ({len(unlabelled)} images lack one); "
                 f"add the missing labels or delete {LABELS_FILE}")
    def records():
        for name in files.names:
            yield Record(f'{path}/{name}', files.read_image(name), None if labels is None else labels[name])
    return Source(len(files.names), records()), class_names

def top_level_folders(path):
    """Names of the folders directly under a folder or at the root of a zip; hidden ones left out."""
    if os.path.isdir(path):
        names = {entry.name for entry in os.scandir(path) if entry.is_dir()}
    else:
        with zipfile.ZipFile(path) as archive:
            names = {name.split('/')[0] for name in archive.namelist() if '/' in name}
    return {name for name in names if not name.startswith('.')}

def folder_labels(path, image_names):
    """{image name: class index} from each image's top-level folder, and the class names:
    the folder names, sorted, so that class i is the i-th name."""
    loose = [name for name in image_names if '/' not in name]
    if loose:
        fail(f"'{path}/{loose[0]}' is not in a class folder ({len(loose)} images at the top level); "
             f"with --labels-from-folders every image must be inside a folder named after its class")
    counts = collections.Counter(name.split('/')[0] for name in image_names)
    empty = sorted(top_level_folders(path) - set(counts))
    if empty:
        fail(f"class folder '{path}/{empty[0]}' holds no images ({len(empty)} empty class folders); "
             f"add images to it or remove it")
    class_names = sorted(counts)
    index = {name: i for i, name in enumerate(class_names)}
    return {name: index[name.split('/')[0]] for name in image_names}, class_names

def read_idx(path):
    """An IDX file (the MNIST format), gzipped or not, as a uint8 array."""
    try:
        with (gzip.open(path, 'rb') if path.endswith('.gz') else open(path, 'rb')) as file:
            data = file.read()
    except (OSError, EOFError, zlib.error) as err:
        fail(f"cannot read '{path}': {err}; download the file again")
    if len(data) < 4 or data[0:2] != b'\0\0':
        fail(f"'{path}' is not an IDX file (its first bytes are not 0x0000); pass an MNIST-format *-idx?-ubyte file")
    if data[2] != 0x08:
        fail(f"'{path}' holds IDX type 0x{data[2]:02x}; only unsigned bytes (0x08) are supported")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], 'big') for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) != offset + int(np.prod(shape)):
        fail(f"'{path}' is truncated or damaged: shape {shape} needs {offset + int(np.prod(shape))} bytes, "
             f"the file has {len(data)}; download it again")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)

def open_idx(images_path, labels_path=None):
    """MNIST-format images, padded to 32x32, with labels from the labels file beside them."""
    images = read_idx(images_path)
    if images.ndim != 3:
        fail(f"'{images_path}' holds an array of shape {images.shape}, not images [N, H, W]")
    if labels_path is None:
        candidate = images_path.replace('images-idx3', 'labels-idx1')
        labels_path = candidate if candidate != images_path and os.path.isfile(candidate) else None
    labels = None
    if labels_path is not None:
        labels = read_idx(labels_path)
        if labels.shape != images.shape[:1]:
            fail(f"'{labels_path}' has {labels.size} labels for the {len(images)} images of '{images_path}'; "
                 f"pass matching files")
    else:
        click.echo(f"No labels file beside '{images_path}'; the dataset will have no labels.")
    pad_y, pad_x = max(32 - images.shape[1], 0), max(32 - images.shape[2], 0)
    images = np.pad(images, [(0, 0), (pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2)])
    def records():
        for i, image in enumerate(images):
            yield Record(f'{images_path}[{i}]', PIL.Image.fromarray(image, 'L'), None if labels is None else int(labels[i]))
    return Source(len(images), records())

class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles; allow only what numpy arrays need, so that a tampered
    file cannot run code."""
    _allowed = {('numpy', 'ndarray'), ('numpy', 'dtype'), ('_codecs', 'encode')}
    def find_class(self, module, name):
        if (module, name) in self._allowed or (module in ('numpy.core.multiarray', 'numpy._core.multiarray') and name == '_reconstruct'):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f'{module}.{name} is not allowed in a CIFAR-10 batch')

def open_cifar10(path):
    """The training batches of the CIFAR-10 python tarball: 50,000 32x32 RGB images."""
    images, labels = [], []
    try:
        with tarfile.open(path, 'r:*') as tar:
            batches = {}
            for member in tar:  # One pass: seeking back in a .gz means decompressing again.
                if member.isfile() and re.fullmatch(r'(.*/)?data_batch_\d+', member.name):
                    batch = _NumpyOnlyUnpickler(tar.extractfile(member), encoding='bytes').load()
                    batches[member.name] = {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}
        if not batches:
            fail(f"'{path}' holds no cifar-10-batches-py/data_batch_* files; pass the CIFAR-10 python version (cifar-10-python.tar.gz)")
        for name in sorted(batches):
            images.append(np.asarray(batches[name]['data'], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(batches[name]['labels'], dtype=np.int64))
    except (OSError, EOFError, zlib.error, tarfile.TarError, pickle.UnpicklingError, KeyError, ValueError, AttributeError) as err:
        fail(f"cannot read CIFAR-10 tarball '{path}': {err!r}; download it again")
    images, labels = np.concatenate(images), np.concatenate(labels)
    if labels.shape != images.shape[:1]:
        fail(f"'{path}' has {labels.size} labels for {len(images)} images; download it again")
    def records():
        for i, image in enumerate(images):
            yield Record(f'{path}[{i}]', PIL.Image.fromarray(image, 'RGB'), int(labels[i]))
    return Source(len(images), records())

STL10_SIZE = 96

def open_stl10(images_path):
    """STL-10 binary images (each channel stored column by column) with labels from *_y.bin."""
    image_bytes = 3 * STL10_SIZE * STL10_SIZE
    num_bytes = os.path.getsize(images_path)
    if num_bytes % image_bytes != 0:
        fail(f"'{images_path}' is truncated: {num_bytes} bytes is not a whole number of 3x96x96 images; download it again")
    images = np.memmap(images_path, dtype=np.uint8, mode='r').reshape(-1, 3, STL10_SIZE, STL10_SIZE) if num_bytes else []
    labels_path = images_path[:-len('_X.bin')] + '_y.bin'
    labels = None
    if os.path.isfile(labels_path):
        labels = np.fromfile(labels_path, dtype=np.uint8).astype(np.int64)
        if labels.shape != (len(images),) or (labels.size and (labels.min() < 1 or labels.max() > 10)):
            fail(f"'{labels_path}' does not hold one label 1..10 for each of the {len(images)} images; download it again")
        labels -= 1  # Stored 1..10.
    def records():
        for i, image in enumerate(images):
            yield Record(f'{images_path}[{i}]', PIL.Image.fromarray(np.ascontiguousarray(image.transpose(2, 1, 0)), 'RGB'),
                         None if labels is None else int(labels[i]))
    return Source(len(images), records())

def open_lmdb(path):
    """An LMDB folder of encoded images, as LSUN distributes them; the keys are ignored."""
    try:
        import lmdb # pylint: disable=import-outside-toplevel
    except ImportError:
        fail(f"reading the LMDB database '{path}' needs the lmdb package: pip install lmdb")
    try:
        env = lmdb.open(path, readonly=True, lock=False, readahead=False, max_readers=1)
        with env.begin(write=False) as txn:
            num_images = txn.stat()['entries']
    except lmdb.Error as err:
        fail(f"cannot read LMDB database '{path}': {err}; download it again")
    def records():
        with env.begin(write=False) as txn:
            for key, value in txn.cursor():
                origin = f"{path}[{key.decode('utf-8', 'replace')}]"
                yield Record(origin, decode_image(io.BytesIO(value), origin), None)
    return Source(num_images, records())

#----------------------------------------------------------------------------
# Multi-object scenes (docs/styleformer-c.md): CLEVR and Cityscapes as GANformer prepared them,
# and rendered scenes that need no download.

class SceneLayout(typing.NamedTuple):
    image_name: str     # Regex that the dataset's image files match (other images in the tree are left out).
    aspect: tuple       # (width, height) of GANformer's centered crop, then padded to a black square.
    expected: str       # The layout, for messages.

SCENE_LAYOUTS = {
    'clevr': SceneLayout(r'(^|/)CLEVR_\w+_\d+\.png$', (4, 3), 'CLEVR_v1.0/images/{train,val,test}/CLEVR_*_NNNNNN.png'),
    'cityscapes': SceneLayout(r'(^|/)[^/]+_leftImg8bit\.png$', (2, 1),
        'leftImg8bit/{train,val,test,train_extra}/CITY/CITY_NNNNNN_NNNNNN_leftImg8bit.png'),
}

def open_scene_layout(path, layout):
    """The images of a CLEVR or Cityscapes tree (a folder or zip), found by their file names."""
    spec = SCENE_LAYOUTS[layout]
    files = ImageFiles(path)
    names = [name for name in files.names if re.search(spec.image_name, name)]
    if not names:
        fail(f"'{path}' holds no {layout} images; expected the layout {spec.expected} (give the folder that holds it)")
    return Source(len(names), (Record(f'{path}/{name}', files.read_image(name), None) for name in names))

def open_scenes(num_images, resolution, seed):
    """`num_images` rendered scenes (training/scenes.py) of the given seed."""
    records = (Record(f'scenes[seed={seed}][{i}]', PIL.Image.fromarray(scenes.render_scene(seed, i, resolution)), None)
               for i in range(num_images))
    return Source(num_images, records)

#----------------------------------------------------------------------------
# Built-in public datasets: a local copy when there is one, else a download.

class BuiltinDataset(typing.NamedTuple):
    base_url: str
    md5: dict           # File name -> md5 of the published file; the first file is the source.
    local_dirs: tuple   # Where system packages put the files.
    opener: typing.Callable

BUILTIN_DATASETS = {
    'fashion-mnist': BuiltinDataset(
        base_url='http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
        md5={'train-images-idx3-ubyte.gz': '8d4fb7e6c68d591d4c3dfef9ec88bf0d', 'train-labels-idx1-ubyte.gz': '25c81989df183df01b3e8a0aad5dffbe'},
        local_dirs=('/usr/share/datasets/fashion-mnist',),
        opener=open_idx),
    'mnist': BuiltinDataset(
        base_url='https://ossci-datasets.s3.amazonaws.com/mnist/',
        md5={'train-images-idx3-ubyte.gz': 'f68b3c2dcbeaaa9fbdd348bbdeb94873', 'train-labels-idx1-ubyte.gz': 'd53e105ee54ea40749a09fcbcd1e9432'},
        local_dirs=(),
        opener=open_idx),
    'cifar10': BuiltinDataset(
        base_url='https://www.cs.toronto.edu/~kriz/',
        md5={'cifar-10-python.tar.gz': 'c58f30108f718f92721af3b95e74349a'},
        local_dirs=(),
        opener=open_cifar10),
}

def _md5_of_file(path):
    digest = hashlib.md5()
    with open(path, 'rb') as file:
        for chunk in iter(lambda: file.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()

def fetch_builtin(name):
    """Local paths of the files of a built-in dataset, downloaded and verified when needed."""
    spec = BUILTIN_DATASETS[name]
    for folder in spec.local_dirs:
        paths = [os.path.join(folder, file_name) for file_name in spec.md5]
        if all(os.path.isfile(path) for path in paths):
            return paths
    paths = []
    cache_dir = dnnlib.make_cache_dir_path('datasets', name)
    for file_name, md5 in spec.md5.items():
        url = spec.base_url + file_name
        try:
            path = dnnlib.open_url(url, cache_dir=cache_dir, return_filename=True)
        except OSError as err:
            fail(f"cannot download {url} ({str(err).splitlines()[0]}); check the network, or download the file "
                 f"yourself and pass it with --source")
        if _md5_of_file(path) != md5:
            if os.path.dirname(os.path.abspath(path)) == os.path.abspath(cache_dir):
                os.remove(path)  # Else the bad copy would be used again next time.
            fail(f"'{path}' (from {url}) does not have the published md5 {md5}; it was not used, try again later")
        paths.append(path)
    return paths

#----------------------------------------------------------------------------

SUPPORTED_SOURCES = ('a folder or .zip of images, cifar-10-python.tar.gz, *-images-idx3-ubyte[.gz], '
                     'an STL-10 *_X.bin, an LSUN LMDB folder, or one of ' + ', '.join(BUILTIN_DATASETS))

def open_source(source, labels_from_folders=False):
    """Picks the reader for `source` by its name and kind; returns the source and its class
    names (None unless --labels-from-folders)."""
    is_image_files = os.path.isdir(source) and not os.path.isfile(os.path.join(source, 'data.mdb')) or (
        os.path.isfile(source) and source.lower().endswith('.zip'))
    if is_image_files:
        return open_image_files(source, labels_from_folders)
    if labels_from_folders:
        fail(f"--labels-from-folders needs a folder or .zip of images with one subfolder per class; '{source}' is neither")
    return open_other_source(source), None

def open_other_source(source):
    if source in BUILTIN_DATASETS and not os.path.exists(source):
        return BUILTIN_DATASETS[source].opener(*fetch_builtin(source))
    if not os.path.exists(source):
        fail(f"source '{source}' does not exist; give {SUPPORTED_SOURCES}")
    name = os.path.basename(os.path.normpath(source)).lower()
    if os.path.isdir(source):
        return open_lmdb(source)
    if name.endswith(('.tar', '.tar.gz', '.tgz')):
        return open_cifar10(source)
    if re.search(r'-idx3-ubyte(\.gz)?$', name):
        return open_idx(source)
    if name.endswith('_x.bin'):
        return open_stl10(source)
    fail(f"cannot tell the format of '{source}'; give {SUPPORTED_SOURCES}")

#----------------------------------------------------------------------------
# Transforms: PIL image -> PIL image, or None to skip the image.

RESIZE_FILTERS = {'box': PIL.Image.Resampling.BOX, 'lanczos': PIL.Image.Resampling.LANCZOS, 'bilinear': PIL.Image.Resampling.BILINEAR}

def make_transform(transform, width, height, resize_filter):
    resample = RESIZE_FILTERS[resize_filter]
    if (width is None) != (height is None):
        fail('give both --width and --height, or neither')

    def resize(image, size):
        return image if image.size == size else image.resize(size, resample)

    def paste_centered(image, side):
        canvas = PIL.Image.new(image.mode, (side, side))  # Black.
        canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        return canvas

    def center_crop(image):
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        return image if width is None else resize(image, (width, height))

    def center_pad(image):
        image = paste_centered(image, max(image.size))
        return image if width is None else resize(image, (width, height))

    def center_crop_wide(image):
        # The largest centered crop of aspect width:height, on a black square canvas.
        crop_w = min(image.width, round(image.height * width / height))
        crop_h = min(image.height, round(crop_w * height / width))
        if crop_w < width or crop_h < height:
            return None  # Would need enlarging.
        left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
        image = resize(image.crop((left, top, left + crop_w, top + crop_h)), (width, height))
        return paste_centered(image, max(width, height))

    if transform is None:
        return (lambda image: image) if width is None else (lambda image: resize(image, (width, height)))
    if transform == 'center-crop':
        return center_crop
    if transform == 'center-pad':
        return center_pad
    if width is None:
        fail('--transform=center-crop-wide needs --width and --height')
    return center_crop_wide

#----------------------------------------------------------------------------
# Output: written under a temporary name beside --dest and renamed when complete.

class DatasetWriter:
    """Writes the images and dataset.json to a zip or folder. Nothing is left at or beside
    `dest` unless `commit()` is reached: the context manager removes the partial output
    (and the parent folders it made) on any error or interrupt."""

    def __init__(self, dest):
        self.dest = dest
        self.is_zip = dest.lower().endswith('.zip')
        parent = os.path.dirname(os.path.abspath(dest))
        self._made_dirs = []
        while not os.path.isdir(parent):
            self._made_dirs.append(parent)
            parent = os.path.dirname(parent)
        self.tmp_path = os.path.join(os.path.dirname(os.path.abspath(dest)), f'.{os.path.basename(dest)}.{os.getpid()}.partial')
        self._zip = None

    def __enter__(self):
        try:
            for folder in reversed(self._made_dirs):
                os.mkdir(folder)
            if self.is_zip:
                self._zip = zipfile.ZipFile(self.tmp_path, 'x', compression=zipfile.ZIP_STORED)
            else:
                os.mkdir(self.tmp_path)
        except OSError as err:
            self._remove_partial()
            fail(f"cannot write '{self.dest}': {err}")
        return self

    def add(self, name, data):
        if self.is_zip:
            self._zip.writestr(name, data)
        else:
            os.makedirs(os.path.dirname(os.path.join(self.tmp_path, name)), exist_ok=True)
            with open(os.path.join(self.tmp_path, name), 'wb') as file:
                file.write(data)

    def commit(self, labels, class_names=None):
        meta = {'labels': labels} if class_names is None else {'labels': labels, 'class_names': class_names}
        self.add(LABELS_FILE, json.dumps(meta).encode('utf-8'))
        if self.is_zip:
            self._zip.close()
        if os.path.exists(self.dest):
            fail(f"destination '{self.dest}' appeared while converting; choose another --dest or remove it")
        os.rename(self.tmp_path, self.dest)
        self._made_dirs = []

    def _remove_partial(self):
        if self._zip is not None:
            with contextlib.suppress(OSError):  # Keep the original error, e.g. a full disk.
                self._zip.close()
        if os.path.isdir(self.tmp_path):
            shutil.rmtree(self.tmp_path)
        elif os.path.exists(self.tmp_path):
            os.remove(self.tmp_path)
        for folder in self._made_dirs:
            if os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)

    def __exit__(self, exc_type, _exc, _tb):
        if exc_type is not None:
            self._remove_partial()

#----------------------------------------------------------------------------

def describe(image):
    return f"{image.width}x{image.height} {'grayscale' if image.mode == 'L' else 'RGB'}"

def encode_png(image):
    buffer = io.BytesIO()
    image.save(buffer, format='png', compress_level=1)
    return buffer.getvalue()

def describe_classes(class_names, limit=10):
    shown = ', '.join(f'{index}={name}' for index, name in enumerate(class_names[:limit]))
    more = f', ... ({len(class_names)} classes; all in {LABELS_FILE} "class_names")' if len(class_names) > limit else ''
    return f'Classes from folders: {shown}{more}'

def convert_dataset(source, dest, max_images=None, transform=None, width=None, height=None, resize_filter='lanczos',
                    channels=None, labels_from_folders=False, layout=None, seed=0):
    """Converts `source` into a dataset at `dest`; see the module docstring."""
    dest = os.path.normpath(os.path.expanduser(dest))
    if os.path.exists(dest):
        fail(f"destination '{dest}' already exists; choose another --dest or remove it")
    class_names = None
    if source == 'scenes' and not os.path.exists(source):
        if max_images is None:
            fail('--source=scenes renders --max-images images; give their number, e.g. --max-images=10000')
        if transform is not None or width != height:
            fail('--source=scenes renders square images: give --width and --height equal (default 64), without --transform')
        num_images, records = open_scenes(max_images, width or 64, seed)
    elif layout is not None:
        if transform is not None or height is not None:
            fail(f'--layout={layout} crops and pads as GANformer did; give only --width (default 256), no --transform or --height')
        width = width or 256
        aspect_w, aspect_h = SCENE_LAYOUTS[layout].aspect
        transform, height = 'center-crop-wide', width * aspect_h // aspect_w
        num_images, records = open_scene_layout(os.path.expanduser(source), layout)
    else:
        (num_images, records), class_names = open_source(os.path.expanduser(source), labels_from_folders)
    transform_image = make_transform(transform, width, height, resize_filter)
    if max_images is not None:
        num_images, records = min(num_images, max_images), itertools.islice(records, max_images)
    if num_images == 0:
        fail(f"source '{source}' holds no images; give {SUPPORTED_SOURCES}")

    labels, first, num_skipped = [], None, 0
    with DatasetWriter(dest) as writer:
        for record in tqdm(records, total=num_images, unit='img', desc=f'Converting {os.path.basename(os.path.normpath(source))}'):
            image = record.image if channels is None else record.image.convert('L' if channels == 1 else 'RGB')
            image = transform_image(image)
            if image is None:
                num_skipped += 1
                continue
            if first is None:
                first = (record.origin, image)
                if image.width != image.height:
                    fail(f"'{record.origin}' is {describe(image)} after the transform, but training needs square images; "
                         f"use --transform=center-crop or --transform=center-pad (with --width and --height to resize)")
            elif image.size != first[1].size:
                fail(f"'{record.origin}' is {describe(image)} after the transform, unlike '{first[0]}' ({describe(first[1])}); "
                     f"use --transform=center-crop --width=N --height=N to give all images one size")
            elif image.mode != first[1].mode:
                fail(f"'{record.origin}' is {describe(image)}, unlike '{first[0]}' ({describe(first[1])}); "
                     f"pass --channels=1 (grayscale) or --channels=3 (RGB) to convert them all")
            index = len(labels)
            name = f'{index // 1000:05d}/img{index:08d}.png'
            writer.add(name, encode_png(image))
            labels.append([name, record.label])
        if not labels:
            fail(f"no image of '{source}' is large enough for --transform={transform} --width={width} --height={height}; "
                 f"choose a smaller size")
        writer.commit(labels if labels[0][1] is not None else None, class_names)

    channels = 'grayscale' if first[1].mode == 'L' else 'RGB'
    click.echo(f"Wrote {len(labels)} {first[1].width}x{first[1].height} {channels} images "
               f"({'with' if labels[0][1] is not None else 'without'} labels) to '{dest}'"
               + (f"; skipped {num_skipped} images smaller than {width}x{height}" if num_skipped else ''))
    if class_names is not None:
        click.echo(describe_classes(class_names))

#----------------------------------------------------------------------------

@click.command()
@click.option('--source', help='Input: folder, zip, archive, file or built-in name', metavar='PATH', required=True)
@click.option('--dest', help='Output: a .zip file or a folder; must not exist', metavar='PATH', required=True)
@click.option('--max-images', help='Convert at most this many images', type=click.IntRange(min=1), metavar='INT')
@click.option('--transform', help='Make images square (crop or pad) before resizing', type=click.Choice(['center-crop', 'center-pad', 'center-crop-wide']))
@click.option('--width', help='Output width in pixels', type=click.IntRange(min=1), metavar='INT')
@click.option('--height', help='Output height in pixels', type=click.IntRange(min=1), metavar='INT')
@click.option('--channels', help='Convert every image to 1 (grayscale) or 3 (RGB) channels', type=click.Choice(['1', '3']),
              callback=lambda _ctx, _param, value: None if value is None else int(value))
@click.option('--labels-from-folders', help='Label each image by its top-level folder (one folder per class)', is_flag=True)
@click.option('--resize-filter', help='Filter used when resizing', type=click.Choice(list(RESIZE_FILTERS)), default='lanczos', show_default=True)
@click.option('--layout', help='Read a CLEVR or Cityscapes tree; crop and pad as GANformer did', type=click.Choice(list(SCENE_LAYOUTS)))
@click.option('--seed', help='--source=scenes: which scenes to render', type=int, default=0, show_default=True, metavar='INT')
def main(**kwargs):
    """Convert images into a training dataset.

    The output is a zip file (when --dest ends in .zip) or a folder of PNG images,
    00000/img00000000.png, 00000/img00000001.png, ..., plus dataset.json with the labels,
    {"labels": [["00000/img00000000.png", 6], ...]} or {"labels": null}: the layout of
    StyleGAN2-ADA, so that datasets made by either tool work with both. All images must have
    one size and be all grayscale (one channel) or all RGB after the transform; --channels
    converts a mixed set. Non-square images need --transform: center-crop cuts the largest
    centered square, center-pad adds black bars to make a square.

    With --labels-from-folders, a folder or zip with one subfolder per class (images at any
    depth inside it) is labelled by folder: the folder names, sorted, are classes 0, 1, ...;
    dataset.json then also holds "class_names", the folder name of each class index.

    \b
    Sources (--source):
      folder of images                 searched recursively; labels from a dataset.json at its root
      zip of images                    labels from a dataset.json at its root
      cifar-10-python.tar.gz           the 50,000 CIFAR-10 training images, with labels
      *-images-idx3-ubyte[.gz]         MNIST, Fashion-MNIST, padded from 28x28 to 32x32;
                                       labels from *-labels-idx1-ubyte[.gz] beside it
      *_X.bin                          STL-10 96x96; labels from *_y.bin beside it if any
      folder holding data.mdb          LSUN LMDB database (needs the lmdb package)
      fashion-mnist, mnist, cifar10    the training set, from a local copy when there is one
                                       (/usr/share/datasets/...) or a verified download
      scenes                           --max-images rendered scenes of 2-5 shaded, overlapping
                                       objects (training/scenes.py), --width px (default 64), by --seed

    \b
    Multi-object scenes as GANformer (and so Styleformer-C) prepared them (--layout): the
    largest centered crop of 4:3 (CLEVR) or 2:1 (Cityscapes), resized to --width (default 256)
    and padded with black bars to a square. The tree may hold other files: only the dataset's
    images are read (Cityscapes: *_leftImg8bit.png, all splits; CLEVR: CLEVR_*.png).
      --layout=clevr       --source=CLEVR_v1.0 (images/{train,val,test}/CLEVR_*.png)
      --layout=cityscapes  --source=cityscapes (leftImg8bit/{train,val,test,train_extra}/*/*.png)

    \b
    Examples:
      python dataset_tool.py --source=fashion-mnist --dest=datasets/fashion-mnist-32x32.zip
      python dataset_tool.py --source=img_align_celeba --dest=datasets/celeba-64x64.zip \\
          --transform=center-crop --width=64 --height=64
      python dataset_tool.py --source=photos --dest=datasets/photos-64x64.zip \\
          --labels-from-folders --channels=3 --transform=center-pad --width=64 --height=64
      python dataset_tool.py --source=~/downloads/CLEVR_v1.0 --layout=clevr --dest=datasets/clevr-256.zip
      python dataset_tool.py --source=scenes --max-images=10000 --width=64 --height=64 --dest=datasets/scenes-64.zip
    """
    try:
        convert_dataset(**kwargs)
    except OSError as err:  # Unreadable input (DatasetError) or a failed write, e.g. a full disk.
        raise click.ClickException(str(err)) from None

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
