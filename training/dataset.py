"""Training images read from a zip or a folder of images, in the StyleGAN2-ADA layout.

A dataset is a zip file or a folder holding image files (any depth) and optionally a
`dataset.json` at its root of the form {"labels": [["00000/img00000000.png", 6], ...]}: an
integer label is a class index (given to the networks as a one-hot vector), a list of
numbers is used as it is. `dataset_tool.py` writes such datasets.
"""

import json
import os
import zipfile

import numpy as np
import PIL.Image
import torch

import dnnlib

# The dataset class as training options and snapshots name it. Frozen: published snapshots
# and the safe loader compare this string, so the class keeps this import path.
DATASET_CLASS = 'training.dataset.ImageFolderDataset'
LABELS_FILE = 'dataset.json'
LABELS_BYTES_PER_IMAGE = 4096  # The most dataset.json may hold per image (plus 1 MiB): its size is checked before parsing.

#----------------------------------------------------------------------------

class DatasetError(IOError):
    """A dataset that cannot be used as it is. An IOError, so that code that handles
    unreadable data handles this too."""

#----------------------------------------------------------------------------

_image_extensions = None

def is_image_name(name):
    """Whether a file name has the extension of a format that Pillow can read."""
    global _image_extensions
    if _image_extensions is None:
        PIL.Image.init()
        _image_extensions = {ext for ext, fmt in PIL.Image.registered_extensions().items() if fmt in PIL.Image.OPEN}
    return os.path.splitext(name)[1].lower() in _image_extensions

# Pillow modes that hold one gray channel; every other mode is read as RGB.
_GRAY_MODES = {'1', 'L', 'LA', 'La'}

def decode_image(file, name):
    """Decodes an image file object into a Pillow image of mode 'L' (grayscale) or 'RGB';
    alpha is dropped and palettes are expanded. `name` is used in the error message."""
    try:
        with PIL.Image.open(file) as image:
            if image.mode in ('I', 'I;16', 'I;16B', 'I;16L', 'F'):
                raise DatasetError(f"image '{name}' has {image.mode} pixels; only 8-bit images are supported, convert it")
            return image.convert('L' if image.mode in _GRAY_MODES else 'RGB')
    except DatasetError:
        raise
    except PIL.UnidentifiedImageError:
        raise DatasetError(f"cannot read image '{name}': not an image in a format Pillow knows; replace or remove the file") from None
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as err:
        raise DatasetError(f"cannot read image '{name}': {err}; replace or remove the file") from None

#----------------------------------------------------------------------------

class ImageFiles:
    """The image files in a zip or in a folder (searched recursively), named by their path
    relative to the root with '/' separators, in sorted order. Picklable: the zip is
    opened again in each process that reads from it."""

    def __init__(self, path):
        path = self.path = os.fspath(path)
        if os.path.isdir(path):
            self._is_zip = False
            all_names = []
            for folder, _dirs, files in os.walk(path):
                rel_folder = os.path.relpath(folder, path)
                all_names += [f if rel_folder == '.' else f'{rel_folder}/{f}'.replace(os.sep, '/') for f in files]
        elif os.path.isfile(path) and path.lower().endswith('.zip'):
            self._is_zip = True
            all_names = [info.filename for info in self._zip().infolist() if not info.is_dir()]
        elif os.path.exists(path):
            raise DatasetError(f"'{path}' is neither a folder nor a .zip file; make a dataset with dataset_tool.py")
        else:
            raise DatasetError(f"dataset '{path}' does not exist; make one with dataset_tool.py")
        self._has_labels_file = LABELS_FILE in all_names
        self.names = sorted(name for name in all_names if is_image_name(name))

    def _zip(self):
        # A handle opened in another process (forked DataLoader worker) shares its file
        # offset with that process, so each process opens its own.
        if getattr(self, '_zipfile', None) is None or self._zip_pid != os.getpid():
            try:
                self._zipfile = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as err:
                raise DatasetError(f"cannot read zip '{self.path}': {err}; the file is damaged, make it again") from None
            self._zip_pid = os.getpid()
        return self._zipfile

    def open(self, name):
        """Opens the file `name` for binary reading."""
        if self._is_zip:
            return self._zip().open(name, 'r')
        return open(os.path.join(self.path, name), 'rb')

    def read_image(self, name):
        """The image `name` as a Pillow image of mode 'L' or 'RGB'."""
        with self.open(name) as file:
            return decode_image(file, f'{self.path}/{name}')

    def read_labels(self):
        """The labels of dataset.json as a dict {name: label}, or None without labels."""
        if not self._has_labels_file:
            return None
        where = f'{self.path}/{LABELS_FILE}'
        max_bytes = LABELS_BYTES_PER_IMAGE * len(self.names) + 2**20
        with self.open(LABELS_FILE) as file:
            text = file.read(max_bytes + 1)  # Read no further: a zip entry can inflate a thousandfold.
        if len(text) > max_bytes:
            raise DatasetError(f"'{where}' is larger than {max_bytes} bytes ({LABELS_BYTES_PER_IMAGE} per image); it is "
                'not a label file of this dataset, fix or delete it')
        try:
            labels = json.loads(text)['labels']
            if labels is None:
                return None
            if not isinstance(labels, list) or not all(isinstance(entry, list) and len(entry) == 2
                    and isinstance(entry[0], str) for entry in labels):
                raise ValueError('"labels" is not a list of [file name, label] pairs')
            return {name.replace('\\', '/'): label for name, label in labels}
        except (ValueError, KeyError, TypeError, RecursionError) as err:
            reason = repr(' '.join(str(err).split())[:100])
            raise DatasetError(f"'{where}' is not of the form {{\"labels\": [[file, label], ...]}} ({type(err).__name__}: "
                f'{reason}); fix or delete it') from None

    def close(self):
        if getattr(self, '_zipfile', None) is not None:
            self._zipfile.close()
        self._zipfile = None

    def __getstate__(self):
        return dict(self.__dict__, _zipfile=None)

#----------------------------------------------------------------------------

def _labels_as_array(labels, path):
    """Integer class labels -> int64 [N]; vectors of numbers -> float32 [N, D]."""
    try:
        array = np.array(labels)
    except ValueError:
        raise DatasetError(f"labels in '{path}/{LABELS_FILE}' mix kinds or lengths; give every image a class index or a vector of the same length") from None
    if array.ndim == 1 and np.issubdtype(array.dtype, np.integer):
        if array.min() < 0:
            raise DatasetError(f"'{path}/{LABELS_FILE}' has a negative class label; class labels are indices 0, 1, ...")
        return array.astype(np.int64)
    if array.ndim in (1, 2) and (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        return array.reshape(len(array), -1).astype(np.float32)
    raise DatasetError(f"labels in '{path}/{LABELS_FILE}' must be class indices or vectors of numbers")

#----------------------------------------------------------------------------

class ImageFolderDataset(torch.utils.data.Dataset):
    """Images (uint8, CHW) and labels (float32 vectors) from a zip or folder.

    max_size:    keep a random subset of this many images, the same for the same random_seed.
    xflip:       double the dataset with mirrored copies of the images.
    resolution:  expected image size; a dataset of another size is refused.
    use_labels:  read the labels in dataset.json; otherwise the label vectors are empty.
    """

    def __init__(self, path, resolution=None, use_labels=False, max_size=None, xflip=False, random_seed=0):
        path = self._path = os.fspath(path)
        self._name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
        self._files = ImageFiles(path)
        if len(self._files.names) == 0:
            raise DatasetError(f"dataset '{path}' holds no image files; make one with dataset_tool.py")

        first = self._load_raw_image(0)
        self._image_shape = list(first.shape)
        if self._image_shape[1] != self._image_shape[2]:
            raise DatasetError(f"images in '{path}' are {self._shape_str(first.shape)}, not square; "
                               f"recreate the dataset with dataset_tool.py --transform=center-crop")
        if resolution is not None and self._image_shape[1] != resolution:
            raise DatasetError(f"images in '{path}' are {self._image_shape[1]}x{self._image_shape[2]}, "
                               f"not {resolution}x{resolution}; recreate the dataset with dataset_tool.py --width={resolution} --height={resolution}")

        self._raw_labels = self._load_raw_labels() if use_labels else None
        if self._raw_labels is None:
            self._raw_labels = np.zeros([len(self._files.names), 0], dtype=np.float32)
        if self._raw_labels.dtype == np.int64:
            self._label_shape = [int(self._raw_labels.max()) + 1]
        else:
            self._label_shape = list(self._raw_labels.shape[1:])

        # Which raw images the dataset uses, then the mirrored copies.
        num_raw = len(self._files.names)
        self._raw_idx = np.arange(num_raw, dtype=np.int64)
        if max_size is not None and max_size < num_raw:
            np.random.RandomState(random_seed % (1 << 31)).shuffle(self._raw_idx)
            self._raw_idx = np.sort(self._raw_idx[:max_size])
        self._xflip = np.zeros(self._raw_idx.size, dtype=np.uint8)
        if xflip:
            self._raw_idx = np.tile(self._raw_idx, 2)
            self._xflip = np.concatenate([self._xflip, np.ones_like(self._xflip)])

    @staticmethod
    def _shape_str(shape):
        return f'{shape[2]}x{shape[1]} ({shape[0]} channels)'

    def _load_raw_image(self, raw_idx):
        image = np.asarray(self._files.read_image(self._files.names[raw_idx]))
        image = image[:, :, np.newaxis] if image.ndim == 2 else image
        return image.transpose(2, 0, 1)

    def _load_raw_labels(self):
        labels = self._files.read_labels()
        if labels is None:
            return None
        missing = [name for name in self._files.names if name not in labels]
        if missing:
            raise DatasetError(f"'{self._path}/{LABELS_FILE}' has no label for '{missing[0]}' "
                               f"({len(missing)} of {len(self._files.names)} images lack one); "
                               f"add the missing labels or delete {LABELS_FILE}")
        return _labels_as_array([labels[name] for name in self._files.names], self._path)

    def close(self):
        self._files.close()

    def __len__(self):
        return self._raw_idx.size

    def __getitem__(self, idx):
        raw_idx = self._raw_idx[idx]
        image = self._load_raw_image(raw_idx)
        if list(image.shape) != self._image_shape:
            # Name both files: either one may be the odd one (e.g. a grid.png among generated images).
            raise DatasetError(f"image '{self._path}/{self._files.names[raw_idx]}' is {self._shape_str(image.shape)}, "
                               f"unlike the first image '{self._path}/{self._files.names[0]}' ({self._shape_str(self._image_shape)}); "
                               f"all images must have one size: remove the odd ones or recreate the dataset with dataset_tool.py")
        if self._xflip[idx]:
            image = image[:, :, ::-1]
        return image.copy(), self.get_label(idx)

    def get_label(self, idx):
        label = self._raw_labels[self._raw_idx[idx]]
        if label.dtype == np.int64:
            onehot = np.zeros(self._label_shape, dtype=np.float32)
            onehot[label] = 1
            return onehot
        return label.copy()

    def get_details(self, idx):
        raw_idx = int(self._raw_idx[idx])
        return dnnlib.EasyDict(raw_idx=raw_idx, xflip=bool(self._xflip[idx]), raw_label=self._raw_labels[raw_idx].copy())

    @property
    def name(self):
        return self._name

    @property
    def image_shape(self):
        return list(self._image_shape)

    @property
    def num_channels(self):
        return self._image_shape[0]

    @property
    def resolution(self):
        return self._image_shape[1]

    @property
    def label_shape(self):
        return list(self._label_shape)

    @property
    def label_dim(self):
        return self.label_shape[0]

    @property
    def has_labels(self):
        return self.label_dim != 0

    @property
    def has_onehot_labels(self):
        return self._raw_labels.dtype == np.int64

#----------------------------------------------------------------------------
