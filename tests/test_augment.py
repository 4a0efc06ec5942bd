"""training.augment: the ADA augmentation pipeline and the p controller."""

import io
import os
import pickle

import numpy as np
import pytest
import torch

from training.augment import AdaController, AugmentPipe, augpipe_specs

AUGPIPES = ['blit', 'geom', 'color', 'filter', 'noise', 'cutout', 'bg', 'bgc', 'bgcf', 'bgcfn', 'bgcfnc']


def random_images(batch, channels, height, width, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand([batch, channels, height, width], generator=gen) * 2 - 1


def smooth_images(size=32):
    """Three smooth patterns in [-1, 1] (low frequencies resample accurately)."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing='ij')
    return torch.stack([torch.sin(3 * x + y), torch.cos(2 * y - x), x * y])[None]


def make_pipe(p=1.0, **kwargs):
    pipe = AugmentPipe(**kwargs)
    pipe.p.fill_(p)
    return pipe


def normal_quantile(q):
    return float(torch.special.ndtri(torch.tensor(q, dtype=torch.float64)))


def normal_cdf(z):
    return float(torch.special.ndtr(torch.tensor(z, dtype=torch.float64)))

#----------------------------------------------------------------------------
# Named pipelines.

def test_augpipe_specs_cover_published_names():
    assert sorted(augpipe_specs) == sorted(AUGPIPES)
    assert augpipe_specs['blit'] == dict(xflip=1, rotate90=1, xint=1)
    assert augpipe_specs['geom'] == dict(scale=1, rotate=1, aniso=1, xfrac=1)
    assert augpipe_specs['color'] == dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
    # Each longer name adds one group to the previous one.
    assert augpipe_specs['bg'] == {**augpipe_specs['blit'], **augpipe_specs['geom']}
    assert augpipe_specs['bgc'] == {**augpipe_specs['bg'], **augpipe_specs['color']}
    assert augpipe_specs['bgcf'] == {**augpipe_specs['bgc'], 'imgfilter': 1}
    assert augpipe_specs['bgcfn'] == {**augpipe_specs['bgcf'], 'noise': 1}
    assert augpipe_specs['bgcfnc'] == {**augpipe_specs['bgcfn'], 'cutout': 1}


@pytest.mark.parametrize('channels', [1, 3])
@pytest.mark.parametrize('name', AUGPIPES)
def test_each_augpipe_keeps_shape_and_dtype_and_changes_images(name, channels):
    torch.manual_seed(1)
    x = random_images(4, channels, 12, 10)
    y = make_pipe(**augpipe_specs[name])(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all()
    assert not torch.equal(y, x)


@pytest.mark.parametrize('channels', [1, 3])
def test_p_zero_is_identity(channels):
    x = random_images(3, channels, 9, 11)
    pipe = make_pipe(p=0, **augpipe_specs['bgcfnc'])
    assert torch.equal(pipe(x), x)


def test_default_p_is_one_and_buffers_follow_the_module():
    pipe = AugmentPipe(xflip=1)
    assert pipe.p.shape == () and float(pipe.p) == 1
    assert {name for name, _ in pipe.named_buffers()} == {'p', 'Hz_geom', 'Hz_fbank'}
    assert pipe.to(torch.float64).p.dtype == torch.float64


def test_float64_images_keep_their_dtype():
    torch.manual_seed(0)
    x = random_images(2, 3, 10, 10).double()
    y = make_pipe(**augpipe_specs['bgcfnc'])(x)
    assert y.dtype == torch.float64 and torch.isfinite(y).all()

#----------------------------------------------------------------------------
# Pixel blitting: exact.

def test_xflip_is_an_exact_mirror():
    torch.manual_seed(2)
    x = random_images(32, 3, 7, 6)
    y = make_pipe(xflip=1)(x)
    same = (y == x).flatten(1).all(1)
    flipped = (y == x.flip(3)).flatten(1).all(1)
    assert (same | flipped).all()
    assert same.sum() >= 5 and flipped.sum() >= 5 # About half each.


@pytest.mark.parametrize('channels', [1, 3])
def test_rotate90_is_an_exact_quarter_turn(channels):
    torch.manual_seed(3)
    x = random_images(48, channels, 8, 8)
    y = make_pipe(rotate90=1)(x)
    matches = torch.stack([(y == torch.rot90(x, k, dims=(2, 3))).flatten(1).all(1) for k in range(4)], dim=1)
    assert (matches.sum(1) == 1).all()
    assert (matches.sum(0) >= 4).all() # Every turn occurs.


def mirror(i, n):
    i = np.abs(i) % (2 * (n - 1))
    return np.where(i < n, i, 2 * (n - 1) - i)


def test_xint_is_an_exact_mirrored_integer_shift():
    torch.manual_seed(4)
    h, w, max_frac = 8, 12, 0.25
    x = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w).repeat(16, 1, 1, 1)
    y = make_pipe(xint=1, xint_max=max_frac)(x).numpy()
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    shifts = set()
    for img in y[:, 0]:
        found = [(dx, dy) for dx in range(-3, 4) for dy in range(-2, 3)
                 if np.array_equal(img, x[0, 0].numpy()[mirror(rows - dy, h), mirror(cols - dx, w)])]
        assert len(found) == 1, 'every output must be the input shifted by whole pixels (mirrored at the edges)'
        shifts.add(found[0])
    assert len(shifts) > 3


def test_blit_on_odd_nonsquare_images_only_rearranges_pixels():
    torch.manual_seed(5)
    x = torch.randperm(5 * 7).float().reshape(1, 1, 5, 7).repeat(8, 1, 1, 1)
    y = make_pipe(**augpipe_specs['blit'])(x)
    assert set(y.unique().tolist()) <= set(x.unique().tolist())

#----------------------------------------------------------------------------
# Geometric transforms: one resampling.

def test_two_45_degree_rotations_make_a_quarter_turn():
    # rotate_max=0.5 half-turns and percentile 0.75 give 45 degrees, applied twice.
    x = smooth_images()
    y = make_pipe(rotate=1, rotate_max=0.5)(x, debug_percentile=0.75)
    error = (y - torch.rot90(x, -1, dims=(2, 3)))[..., 4:-4, 4:-4].abs().max()
    assert error < 0.03 # Wavelet resampling of a smooth image; a centre off by a pixel gives > 0.1.


def test_scale_by_two_matches_interpolation():
    x = smooth_images()
    q = normal_cdf(1.0) # One std of scale_std=1 octave: 2x magnification.
    y = make_pipe(scale=1, scale_std=1)(x, debug_percentile=q)
    reference = torch.nn.functional.interpolate(x, scale_factor=2, mode='bicubic', align_corners=False)[..., 16:48, 16:48]
    assert (y - reference)[..., 4:-4, 4:-4].abs().max() < 0.04


def test_geometric_outputs_are_sane():
    torch.manual_seed(6)
    x = random_images(16, 3, 16, 16)
    y = make_pipe(**augpipe_specs['geom'])(x)
    assert torch.isfinite(y).all()
    assert y.abs().max() < 1.6 # Resampling rings a little past the input range, no more.
    assert abs(float(y.mean() - x.mean())) < 0.05
    # A flat image stays flat: mirror padding and the unit-DC filters leave no seams.
    flat = torch.full([16, 1, 16, 16], 0.3)
    assert torch.allclose(make_pipe(**augpipe_specs['geom'])(flat), flat, atol=1e-4)


def test_fractional_translation_moves_content():
    x = smooth_images()
    q = normal_cdf(2 / (32 * 0.125)) # xfrac_std=0.125 of 32 px: 2 px right and down.
    y = make_pipe(xfrac=1)(x, debug_percentile=q)
    assert (y[..., 8:-4, 8:-4] - x[..., 6:-6, 6:-6]).abs().max() < 0.02

#----------------------------------------------------------------------------
# Color transforms.

@pytest.mark.parametrize('channels', [1, 3])
def test_brightness_adds_one_offset_per_image(channels):
    torch.manual_seed(7)
    x = random_images(256, channels, 4, 4)
    shift = make_pipe(brightness=1)(x) - x
    per_image = shift.flatten(1).mean(1)
    assert torch.allclose(shift, per_image[:, None, None, None].expand_as(shift), atol=1e-6)
    assert abs(float(per_image.std()) - 0.2) < 0.03 # brightness_std
    q = 0.9
    shift = make_pipe(p=0, brightness=1)(x, debug_percentile=q) - x
    assert torch.allclose(shift, torch.full_like(shift, 0.2 * normal_quantile(q)), atol=1e-5)


def test_contrast_scales_about_zero():
    x = random_images(2, 3, 5, 5)
    q = 0.8
    y = make_pipe(contrast=1)(x, debug_percentile=q)
    assert torch.allclose(y, x * 2 ** (0.5 * normal_quantile(q)), atol=1e-5)


def test_lumaflip_negates_grayscale_and_mirrors_rgb_luma():
    gray = random_images(2, 1, 5, 5)
    assert torch.allclose(make_pipe(lumaflip=1)(gray, debug_percentile=0.75), -gray, atol=1e-6)
    rgb = random_images(2, 3, 5, 5)
    y = make_pipe(lumaflip=1)(rgb, debug_percentile=0.75)
    luma, chroma = rgb.mean(1, keepdim=True), rgb - rgb.mean(1, keepdim=True)
    assert torch.allclose(y, chroma - luma, atol=1e-5)


def test_hue_and_saturation_keep_luma_and_leave_grayscale_alone():
    torch.manual_seed(8)
    rgb = random_images(8, 3, 6, 6)
    pipe = make_pipe(hue=1, saturation=1)
    y = pipe(rgb)
    assert torch.allclose(y.mean(1), rgb.mean(1), atol=1e-5)
    assert (y - rgb).abs().max() > 0.1
    gray = random_images(8, 1, 6, 6)
    assert torch.equal(pipe(gray), gray)


def test_gray_rgb_image_stays_gray_under_brightness_contrast_and_hue():
    torch.manual_seed(9)
    gray = random_images(4, 1, 5, 5)
    y = make_pipe(brightness=1, contrast=1, hue=1)(gray.expand(-1, 3, -1, -1))
    assert torch.allclose(y, y.mean(1, keepdim=True).expand_as(y), atol=1e-5)

#----------------------------------------------------------------------------
# Image-space filtering, noise, cutout.

@pytest.mark.parametrize('size', [6, 40])
def test_filter_with_unit_gains_is_identity(size):
    # Percentile 0.5 draws gain 2^0 = 1 for every band: the bank sums to an impulse.
    x = random_images(2, 3, size, size + 1)
    y = make_pipe(imgfilter=1)(x, debug_percentile=0.5)
    assert torch.allclose(y, x, atol=1e-5)


def test_filter_amplifies_the_chosen_band():
    x = random_images(2, 1, 32, 32)
    def high_freq_energy(img):
        return float((img[..., 1:, :] - img[..., :-1, :]).square().mean())
    boost_high = make_pipe(imgfilter=1, imgfilter_bands=[0, 0, 0, 1])(x, debug_percentile=0.95)
    boost_low = make_pipe(imgfilter=1, imgfilter_bands=[1, 0, 0, 0])(x, debug_percentile=0.95)
    assert high_freq_energy(boost_high) > 1.5 * high_freq_energy(x)
    assert high_freq_energy(boost_low) < high_freq_energy(x)


def test_noise_std_follows_the_drawn_sigma():
    torch.manual_seed(10)
    x = random_images(2, 3, 64, 64)
    q = 0.9
    noise = make_pipe(noise=1)(x, debug_percentile=q) - x
    assert abs(float(noise.std()) - 0.1 * abs(normal_quantile(q))) < 0.01


def test_cutout_zeroes_a_centered_square():
    x = random_images(2, 3, 8, 8)
    y = make_pipe(cutout=1)(x, debug_percentile=0.5) # Centre 0.5, size 0.5.
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[2:6, 2:6] = True
    assert (y[..., inside] == 0).all()
    assert torch.equal(y[..., ~inside], x[..., ~inside])

#----------------------------------------------------------------------------
# Randomness, pickling, errors.

def test_deterministic_given_torch_seed():
    x = random_images(4, 3, 12, 12)
    pipe = make_pipe(**augpipe_specs['bgcfnc'])
    torch.manual_seed(123)
    a = pipe(x)
    torch.manual_seed(123)
    b = pipe(x)
    c = pipe(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_pickle_round_trip_keeps_kwargs_p_and_behaviour():
    pipe = make_pipe(p=0.7, **augpipe_specs['bgc'])
    clone = pickle.loads(pickle.dumps(pipe))
    assert clone.init_kwargs == augpipe_specs['bgc']
    assert float(clone.p) == pytest.approx(0.7)
    x = random_images(2, 3, 10, 10)
    torch.manual_seed(0)
    a = pipe(x)
    torch.manual_seed(0)
    assert torch.equal(clone(x), a)


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match='C = 1 .* or 3'):
        AugmentPipe(xflip=1)(torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match='xflip must be'):
        AugmentPipe(xflip=-1)
    with pytest.raises(ValueError, match='imgfilter_bands'):
        AugmentPipe(imgfilter=1, imgfilter_bands=[1, 1])

#----------------------------------------------------------------------------
# R1: second derivatives through the pipe.

def tiny_discriminator(channels):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(channels, 4, 3, padding=1), torch.nn.Softplus(),
        torch.nn.Conv2d(4, 1, 3, padding=1), torch.nn.Flatten(), torch.nn.Softplus())


@pytest.mark.parametrize('name,channels', [(name, 3) for name in AUGPIPES] + [('bgcfnc', 1)])
def test_r1_penalty_backpropagates_through_each_augpipe(name, channels):
    D = tiny_discriminator(channels)
    pipe = make_pipe(**augpipe_specs[name])
    torch.manual_seed(11)
    x = random_images(2, channels, 10, 10).requires_grad_(True)
    logits = D(pipe(x)).sum(1)
    grad, = torch.autograd.grad(logits.sum(), x, create_graph=True)
    penalty = grad.square().sum([1, 2, 3]).mean()
    penalty.backward()
    for weight in (D[0].weight, D[2].weight):
        assert weight.grad is not None and torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0

#----------------------------------------------------------------------------
# AdaController.

def run_controller(ada, logits_per_step):
    history = []
    for logits in logits_per_step:
        ada.accumulate(logits)
        ada.step()
        history.append(ada.p)
    return history


def test_p_rises_when_d_overfits_and_falls_when_it_underfits():
    pipe = make_pipe(p=0, xflip=1)
    ada = AdaController(pipe, batch_size=64, target=0.6, interval=4, ada_kimg=1) # 0.256 per interval.
    history = run_controller(ada, [torch.ones(64, 1)] * 20)
    assert history[:3] == [0, 0, 0] and history[3] == pytest.approx(0.256)
    assert all(b >= a for a, b in zip(history, history[1:]))
    assert history[-1] == pytest.approx(5 * 0.256) # As published, p may pass 1.
    assert ada.rt == 1
    history = run_controller(ada, [-torch.ones(64, 1)] * 20)
    assert history[3] == pytest.approx(4 * 0.256)
    assert history[-1] == 0 and ada.rt == -1 # Never below 0.


def test_linformer_caps_the_probability_at_0_7():
    # Published: with aug_linformer the transforms use min(p, 0.7); p itself is kept.
    images = torch.rand([16, 3, 8, 8]) * 2 - 1
    outputs = {}
    for name, p, cap in [('capped', 1.0, True), ('at_0.7', 0.7, False), ('uncapped', 1.0, False)]:
        pipe = make_pipe(p=p, brightness=1, contrast=1, aug_linformer=cap)
        torch.manual_seed(3)
        outputs[name] = pipe(images)
        assert float(pipe.p) == pytest.approx(p)
    assert torch.equal(outputs['capped'], outputs['at_0.7'])
    assert not torch.equal(outputs['capped'], outputs['uncapped'])


def test_p_step_size_follows_batch_interval_and_ada_kimg():
    pipe = make_pipe(p=0.5)
    ada = AdaController(pipe, batch_size=32, target=0.6, interval=2, ada_kimg=500)
    run_controller(ada, [torch.ones(32)] * 2)
    assert ada.p == pytest.approx(0.5 + 32 * 2 / 500_000)


def test_rt_is_the_mean_sign_over_the_interval():
    ada = AdaController(make_pipe(p=0.3), batch_size=4, target=0.6, interval=2, ada_kimg=100)
    ada.accumulate(torch.tensor([1.0, 2.0, -3.0, 0.5]))
    ada.step()
    assert ada.rt is None
    ada.accumulate_sums(torch.tensor(-2.0), 4)
    ada.step()
    assert ada.rt == pytest.approx((2 - 2) / 8)
    assert ada.p == pytest.approx(0.3 - 4 * 2 / 100_000) # 0 < target: p goes down.


def test_fixed_mode_keeps_p_and_still_measures_rt():
    pipe = make_pipe(p=0.2)
    ada = AdaController(pipe, batch_size=8, target=None, interval=1)
    run_controller(ada, [torch.ones(8)] * 5)
    assert float(pipe.p) == pytest.approx(0.2) and ada.rt == 1 and not ada.adaptive


def test_controller_state_round_trip_continues_exactly():
    gen = torch.Generator().manual_seed(0)
    logits = [torch.randn(16, 1, generator=gen) + 0.5 for _ in range(23)]
    reference = AdaController(make_pipe(p=0.1), batch_size=16, target=0.6, interval=4, ada_kimg=2)
    expected = run_controller(reference, logits)

    first = AdaController(make_pipe(p=0.1), batch_size=16, target=0.6, interval=4, ada_kimg=2)
    run_controller(first, logits[:10]) # Stops mid-interval, with an open tally.
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = AdaController(make_pipe(p=0.0), batch_size=16, target=0.6, interval=4, ada_kimg=2)
    resumed.load_state_dict(torch.load(buffer))
    assert run_controller(resumed, logits[10:]) == expected[10:]
    assert resumed.rt == reference.rt


def test_controller_rejects_bad_settings():
    with pytest.raises(ValueError, match='interval'):
        AdaController(make_pipe(), batch_size=8, interval=0)
    with pytest.raises(ValueError, match='target'):
        AdaController(make_pipe(), batch_size=8, target=1.5)


def _two_rank_worker(rank, tmp_dir):
    torch.distributed.init_process_group('gloo', init_method=f'file://{tmp_dir}/init', rank=rank, world_size=2)
    try:
        pipe = make_pipe(p=0.5)
        ada = AdaController(pipe, batch_size=8, target=0.6, interval=1, ada_kimg=1)
        # Rank 0 sees 4 reals, all called real; rank 1 sees 4, one called real: r_t = (4 - 2) / 8.
        ada.accumulate(torch.ones(4) if rank == 0 else torch.tensor([1.0, -1.0, -1.0, -1.0]))
        ada.step()
        torch.save((ada.rt, ada.p), os.path.join(tmp_dir, f'rank{rank}.pt'))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow # Two spawned processes import torch: several seconds.
def test_controller_sums_signs_over_ranks(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip('torch.distributed is not available in this build')
    torch.multiprocessing.start_processes(_two_rank_worker, args=(str(tmp_path),), nprocs=2, start_method='spawn')
    results = [torch.load(tmp_path / f'rank{rank}.pt') for rank in range(2)]
    assert results[0] == results[1]
    rt, p = results[0]
    assert rt == pytest.approx(0.25)
    assert p == pytest.approx(0.5 - 8 / 1000)

#----------------------------------------------------------------------------
