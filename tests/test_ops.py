"""torch_utils.ops on the CPU: each op against a naive float64 NumPy implementation written
independently (explicit loops over output pixels and filter taps), plus gradcheck and
gradgradcheck in float64."""

import math

import numpy as np
import pytest
import torch

from torch_utils.ops import bias_act, conv2d_gradfix, conv2d_resample, fma, grid_sample_gradfix, upfirdn2d


def _rand(*shape, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(requires_grad)


# ----------------------------------------------------------------------------
# bias_act

def _naive_act(v, act, alpha):
    selu_scale, selu_alpha = 1.0507009873554805, 1.6732632423543772
    return {
        'linear': lambda: v,
        'relu': lambda: np.maximum(v, 0),
        'lrelu': lambda: np.where(v > 0, v, alpha * v),
        'tanh': lambda: np.tanh(v),
        'sigmoid': lambda: 1 / (1 + np.exp(-v)),
        'elu': lambda: np.where(v > 0, v, np.exp(v) - 1),
        'selu': lambda: selu_scale * np.where(v > 0, v, selu_alpha * (np.exp(v) - 1)),
        'softplus': lambda: np.log1p(np.exp(v)),
        'swish': lambda: v / (1 + np.exp(-v)),
    }[act]()


EXPECTED_DEFAULTS = {  # act: (alpha, gain)
    'linear': (0, 1), 'relu': (0, math.sqrt(2)), 'lrelu': (0.2, math.sqrt(2)), 'tanh': (0, 1), 'sigmoid': (0, 1),
    'elu': (0, 1), 'selu': (0, 1), 'softplus': (0, 1), 'swish': (0, 1),
}


def test_bias_act_defaults():
    assert sorted(bias_act.activation_funcs) == sorted(EXPECTED_DEFAULTS)
    for act, (alpha, gain) in EXPECTED_DEFAULTS.items():
        assert bias_act.activation_funcs[act].def_alpha == pytest.approx(alpha)
        assert bias_act.activation_funcs[act].def_gain == pytest.approx(gain)


@pytest.mark.parametrize('act', sorted(EXPECTED_DEFAULTS))
def test_bias_act_matches_naive(act):
    x, b = _rand(2, 5, 3, 4, seed=1) * 2, _rand(3, seed=2)
    for alpha, gain, clamp in [(None, None, None), (0.3, 0.7, 0.4)]:
        y = bias_act.bias_act(x, b, dim=2, act=act, alpha=alpha, gain=gain, clamp=clamp, impl='ref')
        def_alpha, def_gain = EXPECTED_DEFAULTS[act]
        v = x.numpy() + b.numpy()[None, None, :, None]
        expected = _naive_act(v, act, def_alpha if alpha is None else alpha) * (def_gain if gain is None else gain)
        if clamp is not None:
            expected = np.clip(expected, -clamp, clamp)
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('act', sorted(EXPECTED_DEFAULTS))
def test_bias_act_gradients(act):
    x, b = _rand(2, 3, 4, seed=3, requires_grad=True), _rand(3, seed=4, requires_grad=True)
    for clamp in [None, 0.9]:
        fn = lambda x, b: bias_act.bias_act(x, b, act=act, clamp=clamp, impl='ref')
        assert torch.autograd.gradcheck(fn, [x, b])
        assert torch.autograd.gradgradcheck(fn, [x, b])


def test_bias_act_no_bias_and_bad_input():
    x = _rand(1, 1, 3, 2, seed=5)
    np.testing.assert_allclose(bias_act.bias_act(x, act='relu', impl='ref').numpy(), np.maximum(x.numpy(), 0) * math.sqrt(2))
    with pytest.raises(ValueError, match='unknown activation'):
        bias_act.bias_act(x, act='gelu')
    with pytest.raises(ValueError, match='does not match dimension'):
        bias_act.bias_act(x, torch.zeros(4, dtype=x.dtype))


# ----------------------------------------------------------------------------
# upfirdn2d

def _naive_upfirdn2d(x, f, up, down, padding, flip_filter, gain):
    """Loops over output pixels and taps; a tap reads the zero-inserted, padded input."""
    x = np.asarray(x, dtype=np.float64)
    f = np.ones([1, 1]) if f is None else np.asarray(f, dtype=np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)  # A separable filter is the outer product of its taps.
    if not flip_filter:
        f = f[::-1, ::-1]  # Convolution = correlation with the flipped kernel.
    f = f * gain
    (upx, upy), (downx, downy) = up, down
    px0, px1, py0, py1 = padding
    n, c, h, w = x.shape
    fh, fw = f.shape
    out_h = (h * upy + py0 + py1 - fh) // downy + 1
    out_w = (w * upx + px0 + px1 - fw) // downx + 1
    out = np.zeros([n, c, out_h, out_w])
    for oy in range(out_h):
        for ox in range(out_w):
            for ky in range(fh):
                for kx in range(fw):
                    uy, ux = oy * downy + ky - py0, ox * downx + kx - px0  # Position in the upsampled frame.
                    if uy % upy or ux % upx or not (0 <= uy // upy < h and 0 <= ux // upx < w):
                        continue
                    out[:, :, oy, ox] += x[:, :, uy // upy, ux // upx] * f[ky, kx]
    return out


UPFIRDN_CASES = [  # shape, filter, up, down, padding, flip_filter, gain
    ([2, 3, 5, 7], [1, 3, 3, 1], 2, 1, [2, 1, 2, 1], False, 4),
    ([1, 1, 6, 4], [1, 3, 3, 1], 1, 2, [1, 1, 1, 1], False, 1),
    ([1, 2, 7, 5], [[1, 2, 0], [0.5, 1, 3]], [2, 3], [3, 2], [0, 2, 1, 3], True, 0.5),
    ([2, 1, 6, 6], [1, 2, 3, 1, 2, 3, 1, 2], 2, 2, [-1, 3, 2, -2], False, 1),  # separable, cropping
    ([1, 2, 4, 9], None, 3, 1, [-2, 0, 0, -1], False, 2),
    ([1, 3, 5, 5], [1, 3, 3, 1], 1, 1, 1, True, 1),
]


@pytest.mark.parametrize('case', range(len(UPFIRDN_CASES)))
def test_upfirdn2d_matches_naive(case):
    shape, taps, up, down, padding, flip_filter, gain = UPFIRDN_CASES[case]
    x = _rand(*shape, seed=case)
    f = None if taps is None else upfirdn2d.setup_filter(taps, normalize=False).double()
    y = upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain, impl='ref')
    upxy = up if isinstance(up, list) else [up, up]
    downxy = down if isinstance(down, list) else [down, down]
    pad = upfirdn2d._parse_padding(padding)
    expected = _naive_upfirdn2d(x, None if f is None else f.numpy(), upxy, downxy, pad, flip_filter, gain)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_upfirdn2d_gradients():
    x = _rand(1, 2, 4, 3, seed=7, requires_grad=True)
    for f, up, down, padding in [(upfirdn2d.setup_filter([1, 3, 3, 1]), 2, 1, [2, 1, 1, 2]),
                                 (upfirdn2d.setup_filter([1, 2, 3, 4, 4, 3, 2, 1]), 1, 2, [3, 3, 4, 3])]:
        fn = lambda x: upfirdn2d.upfirdn2d(x, f.double(), up=up, down=down, padding=padding, gain=1.5, impl='ref')
        assert torch.autograd.gradcheck(fn, [x], fast_mode=True)
        assert torch.autograd.gradgradcheck(fn, [x], fast_mode=True)


def test_setup_filter():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    np.testing.assert_allclose(f.numpy(), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64, rtol=1e-6)
    assert upfirdn2d.setup_filter([1] * 8).shape == (8,)  # 8+ taps stay separable.
    np.testing.assert_allclose(upfirdn2d.setup_filter([1, 2], gain=4, separable=True).numpy(), [2 / 3, 4 / 3], rtol=1e-6)  # sqrt(gain) per axis.
    np.testing.assert_allclose(upfirdn2d.setup_filter([[1, 2], [3, 4]], flip_filter=True, normalize=False).numpy(), [[4, 3], [2, 1]])
    with pytest.raises(ValueError, match='non-empty'):
        upfirdn2d.setup_filter(np.zeros([2, 2, 2]))


def test_resampling_wrappers():
    """upsample2d / downsample2d / filter2d keep the expected sizes and the DC gain."""
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.ones(1, 2, 6, 10)
    up = upfirdn2d.upsample2d(x, f, impl='ref')
    down = upfirdn2d.downsample2d(x, f, impl='ref')
    same = upfirdn2d.filter2d(x, f, padding=[1, 2], impl='ref')
    assert up.shape == (1, 2, 12, 20) and down.shape == (1, 2, 3, 5) and same.shape == (1, 2, 10, 12)
    np.testing.assert_allclose(up[:, :, 2:-2, 2:-2].numpy(), 1, rtol=1e-6)  # Interior away from the zero border.
    np.testing.assert_allclose(down[:, :, 1:-1, 1:-1].numpy(), 1, rtol=1e-6)
    np.testing.assert_allclose(same[:, :, 4:7, 3:10].numpy(), 1, rtol=1e-6)
    # Explicit padding of the wrappers as in StyleGAN2-ADA (filter taps centred on the samples).
    xr = _rand(2, 1, 5, 3, seed=8)
    f64 = f.double()
    expected = _naive_upfirdn2d(xr, f64.numpy(), [2, 2], [1, 1], [2, 1, 2, 1], False, 4)
    np.testing.assert_allclose(upfirdn2d.upsample2d(xr, f64, impl='ref').numpy(), expected, rtol=1e-10, atol=1e-12)
    expected = _naive_upfirdn2d(xr, f64.numpy(), [1, 1], [2, 2], [1, 1, 1, 1], False, 1)
    np.testing.assert_allclose(upfirdn2d.downsample2d(xr, f64, impl='ref').numpy(), expected, rtol=1e-10, atol=1e-12)


def test_upfirdn2d_bad_input():
    with pytest.raises(ValueError, match='4-D'):
        upfirdn2d.upfirdn2d(torch.zeros(3, 4), None)
    with pytest.raises(ValueError, match='empty output'):
        upfirdn2d.upfirdn2d(torch.zeros(1, 1, 2, 2), None, padding=-2)
    with pytest.raises(ValueError, match='padding'):
        upfirdn2d.upfirdn2d(torch.zeros(1, 1, 2, 2), None, padding=[1, 2, 3])


# ----------------------------------------------------------------------------
# conv2d_resample

def _naive_conv(x, w, groups, flip_weight):
    """Valid correlation (convolution when not flip_weight) by loops over kernel taps."""
    n, c, h, wd = x.shape
    oc, icg, kh, kw = w.shape
    if not flip_weight:
        w = w[:, :, ::-1, ::-1]
    out = np.zeros([n, oc, h - kh + 1, wd - kw + 1])
    ocg = oc // groups
    for o in range(oc):
        g = o // ocg
        for i in range(icg):
            for ky in range(kh):
                for kx in range(kw):
                    out[:, o] += w[o, i, ky, kx] * x[:, g * icg + i, ky: ky + out.shape[2], kx: kx + out.shape[3]]
    return out


def _naive_conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    fh, fw = (1, 1) if f is None else (f.shape[0], f.shape[-1])
    px0, px1, py0, py1 = upfirdn2d._parse_padding(padding)
    if up > 1:
        px0, px1, py0, py1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1, py0, py1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2, py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    x = _naive_upfirdn2d(x, f if up > 1 else None, [up, up], [1, 1], [px0, px1, py0, py1], flip_filter, up * up)
    x = _naive_conv(x, w, groups, flip_weight)
    if down > 1:
        x = _naive_upfirdn2d(x, f, [1, 1], [down, down], [0, 0, 0, 0], flip_filter, 1)
    return x


CONV_CASES = [  # x shape, w shape, up, down, padding, groups, flip_weight, flip_filter
    ([2, 4, 5, 7], [6, 4, 3, 3], 1, 1, 1, 1, True, False),
    ([1, 2, 6, 5], [3, 2, 3, 3], 2, 1, 1, 1, False, False),
    ([2, 3, 8, 6], [2, 3, 3, 3], 1, 2, 1, 1, True, True),
    ([1, 4, 5, 4], [4, 2, 3, 3], 2, 2, [1, 0, 2, 1], 2, True, False),
    ([1, 1, 6, 7], [2, 1, 1, 1], 1, 2, 0, 1, True, False),
    ([2, 2, 3, 5], [3, 2, 1, 1], 2, 1, 0, 1, True, False),
    ([1, 2, 5, 6], [2, 2, 2, 3], 1, 1, [-1, 2, 0, 1], 1, False, False),
]


@pytest.mark.parametrize('case', range(len(CONV_CASES)))
def test_conv2d_resample_matches_naive(case):
    xs, ws, up, down, padding, groups, flip_weight, flip_filter = CONV_CASES[case]
    x, w = _rand(*xs, seed=10 + case), _rand(*ws, seed=20 + case)
    f = upfirdn2d.setup_filter([1, 2, 3, 1]).double() if case != 3 else upfirdn2d.setup_filter([[1, 2, 1], [3, 0, 1], [1, 1, 2]]).double()
    y = conv2d_resample.conv2d_resample(x, w, f, up=up, down=down, padding=padding, groups=groups,
                                        flip_weight=flip_weight, flip_filter=flip_filter)
    expected = _naive_conv2d_resample(x.numpy(), w.numpy(), f.numpy(), up, down, padding, groups, flip_weight, flip_filter)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_conv2d_resample_gradients():
    f = upfirdn2d.setup_filter([1, 3, 3, 1]).double()
    x, w = _rand(1, 2, 3, 2, seed=30, requires_grad=True), _rand(1, 2, 3, 3, seed=31, requires_grad=True)
    for up, down in [(2, 1), (1, 2)]:
        fn = lambda x, w: conv2d_resample.conv2d_resample(x, w, f, up=up, down=down, padding=1)
        assert torch.autograd.gradcheck(fn, [x, w], fast_mode=True)
        assert torch.autograd.gradgradcheck(fn, [x, w], fast_mode=True)


# ----------------------------------------------------------------------------
# conv2d_gradfix

def test_conv2d_gradfix_values_and_gradients():
    x, b = _rand(2, 4, 5, 6, seed=40, requires_grad=True), _rand(6, seed=41, requires_grad=True)
    w = _rand(6, 2, 3, 2, seed=42, requires_grad=True)
    wt = _rand(4, 3, 2, 3, seed=43, requires_grad=True)
    x_small, b_small = x[:1, :, :3, :4].detach().requires_grad_(True), b[:2].detach().requires_grad_(True)
    conv = lambda x, w, b: conv2d_gradfix.conv2d(x, w, b, stride=[2, 1], padding=1, groups=2)
    convt = lambda x, w, b: conv2d_gradfix.conv_transpose2d(x, w, b, stride=2, padding=[0, 1], output_padding=1, groups=2)
    np.testing.assert_allclose(conv(x, w, b).detach().numpy(),
                               torch.nn.functional.conv2d(x, w, b, stride=[2, 1], padding=1, groups=2).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(convt(x, wt, b).detach().numpy(),
                               torch.nn.functional.conv_transpose2d(x, wt, b, 2, [0, 1], 1, 2).detach().numpy(), rtol=1e-12)
    # Small sizes keep the numerical Jacobians cheap.
    for fn, weight in [(conv, w[:2, :, :2]), (convt, wt[:, :1])]:
        inputs = [x_small, weight.detach().requires_grad_(True), b_small]
        assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)
        assert torch.autograd.gradgradcheck(fn, inputs, fast_mode=True)


def test_conv2d_gradfix_weight_gradient_switch():
    x, w = _rand(1, 3, 5, 5, seed=44, requires_grad=True), _rand(2, 3, 3, 3, seed=45, requires_grad=True)
    with conv2d_gradfix.no_weight_gradients():
        conv2d_gradfix.conv2d(x, w, padding=1).square().sum().backward()
    assert w.grad is None
    input_grad = x.grad.clone()
    x.grad = None
    conv2d_gradfix.conv2d(x, w, padding=1).square().sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    np.testing.assert_allclose(x.grad.numpy(), input_grad.numpy(), rtol=1e-12)

    # Second order through the input gradient still reaches the weights (path length reg).
    w.grad = None
    with conv2d_gradfix.no_weight_gradients():
        (gx,) = torch.autograd.grad(conv2d_gradfix.conv2d(x, w, padding=1).square().sum(), [x], create_graph=True)
    gx.square().sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    # The flag is restored after the context; disable=False leaves weight gradients on.
    assert not conv2d_gradfix.weight_gradients_disabled
    w.grad = None
    with conv2d_gradfix.no_weight_gradients(disable=False):
        conv2d_gradfix.conv2d(x, w).sum().backward()
    assert w.grad is not None


# ----------------------------------------------------------------------------
# grid_sample_gradfix

def _naive_grid_sample(x, grid):
    """Bilinear, zeros padding, align_corners=False: pixel centres at (i + 0.5) / size * 2 - 1."""
    n, c, h, w = x.shape
    out = np.zeros([n, c, grid.shape[1], grid.shape[2]])
    for b in range(n):
        for i in range(grid.shape[1]):
            for j in range(grid.shape[2]):
                sx = ((grid[b, i, j, 0] + 1) * w - 1) / 2
                sy = ((grid[b, i, j, 1] + 1) * h - 1) / 2
                x0, y0 = math.floor(sx), math.floor(sy)
                for yy, wy in [(y0, 1 - (sy - y0)), (y0 + 1, sy - y0)]:
                    for xx, wx in [(x0, 1 - (sx - x0)), (x0 + 1, sx - x0)]:
                        if 0 <= yy < h and 0 <= xx < w:
                            out[b, :, i, j] += wy * wx * x[b, :, yy, xx]
    return out


def test_grid_sample_matches_naive_and_double_backward():
    x = _rand(2, 3, 4, 5, seed=50, requires_grad=True)
    grid = (torch.rand(2, 3, 2, 2, generator=torch.Generator().manual_seed(51), dtype=torch.float64) * 2.4 - 1.2).requires_grad_(True)
    y = grid_sample_gradfix.grid_sample(x, grid)
    np.testing.assert_allclose(y.detach().numpy(), _naive_grid_sample(x.detach().numpy(), grid.detach().numpy()), rtol=1e-10, atol=1e-12)
    native = torch.nn.functional.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    for ours, theirs in zip(torch.autograd.grad(y.sin().sum(), [x, grid], retain_graph=True), torch.autograd.grad(native.sin().sum(), [x, grid])):
        torch.testing.assert_close(ours, theirs)
    assert torch.autograd.gradcheck(grid_sample_gradfix.grid_sample, [x, grid])
    assert torch.autograd.gradgradcheck(grid_sample_gradfix.grid_sample, [x, grid])
    # The R1-style pattern: gradient w.r.t. the input image, then backward through it.
    (gx,) = torch.autograd.grad(y.square().sum(), [x], create_graph=True)
    gx.square().sum().backward()
    assert grid.grad is not None and torch.isfinite(grid.grad).all()


# ----------------------------------------------------------------------------
# fma

def test_fma():
    a, b, c = _rand(3, 1, 4, seed=60, requires_grad=True), _rand(1, 5, 4, seed=61, requires_grad=True), _rand(4, seed=62, requires_grad=True)
    y = fma.fma(a, b, c)
    np.testing.assert_allclose(y.detach().numpy(), a.detach().numpy() * b.detach().numpy() + c.detach().numpy(), rtol=1e-12)
    assert torch.autograd.gradcheck(fma.fma, [a, b, c])
    assert torch.autograd.gradgradcheck(fma.fma, [a, b, c])


# ----------------------------------------------------------------------------
# The CUDA paths' autograd structure, checked on the CPU: a stand-in plugin computes what
# the kernels compute (bias_act.h / upfirdn2d.h), so gradcheck exercises the backward
# formulas (derivative modes, adjoint padding, separable passes) without a GPU.

class _StandInBiasActPlugin:
    @staticmethod
    def bias_act(x, b, dy, mode, dim, act_idx, alpha, gain, clamp):
        info = next(info for info in bias_act.activation_funcs.values() if info.cuda_idx == act_idx)
        v = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)]) if b.numel() else x
        f = lambda s: info.func(s, alpha)
        derivative = {0: f, 1: torch.func.grad(f), 2: torch.func.grad(torch.func.grad(f))}[mode]
        values = torch.func.vmap(derivative)(v.flatten()).reshape(v.shape)
        y = info.func(v, alpha) * gain
        if mode == 0:
            return y.clamp(-clamp, clamp) if clamp >= 0 else y
        passes = (y.abs() <= clamp) if clamp >= 0 else torch.ones_like(y, dtype=torch.bool)
        return dy * gain * values * passes


class _StandInUpfirdn2dPlugin:
    @staticmethod
    def upfirdn2d(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain):
        assert f.ndim == 2 and f.dtype == torch.float32
        spec = dict(up=(upx, upy), down=(downx, downy), padding=(px0, px1, py0, py1), flip_filter=flip_filter, gain=gain)
        return upfirdn2d._upfirdn2d_ref(x, f, spec)


@pytest.mark.parametrize('act', sorted(EXPECTED_DEFAULTS))
def test_bias_act_cuda_autograd_structure(act, monkeypatch):
    monkeypatch.setattr(bias_act, '_plugin', lambda: _StandInBiasActPlugin)
    x, b = _rand(2, 3, seed=70, requires_grad=True), _rand(3, seed=71, requires_grad=True)
    for clamp in [None, 0.8]:
        spec = bias_act._parse_args(x, b, 1, act, None, None, clamp, 'cuda')
        fn = lambda x, b: bias_act._BiasActCuda.apply(x, b, spec)
        np.testing.assert_allclose(fn(x, b).detach().numpy(), bias_act._bias_act_ref(x, b, spec).detach().numpy(), rtol=1e-12)
        assert torch.autograd.gradcheck(fn, [x, b], fast_mode=True)
        assert torch.autograd.gradgradcheck(fn, [x, b], fast_mode=True)


def test_bias_act_cuda_third_order_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(bias_act, '_plugin', lambda: _StandInBiasActPlugin)
    x = _rand(5, seed=72, requires_grad=True)
    spec = bias_act._parse_args(x, None, 0, 'tanh', None, None, None, 'cuda')
    (g1,) = torch.autograd.grad(bias_act._BiasActCuda.apply(x, None, spec).sum(), [x], create_graph=True)
    (g2,) = torch.autograd.grad(g1.sum(), [x], create_graph=True)
    with pytest.raises(NotImplementedError, match="impl='ref'"):
        torch.autograd.grad(g2.sum(), [x])


@pytest.mark.parametrize('case', [0, 2, 3, 4])
def test_upfirdn2d_cuda_autograd_structure(case, monkeypatch):
    monkeypatch.setattr(upfirdn2d, '_plugin', lambda: _StandInUpfirdn2dPlugin)
    shape, taps, up, down, padding, flip_filter, gain = UPFIRDN_CASES[case]
    x = _rand(1, 1, *shape[2:], seed=80 + case, requires_grad=True)
    f = None if taps is None else upfirdn2d.setup_filter(taps, normalize=False)
    spec = upfirdn2d._parse_args(x, f, up, down, padding, flip_filter, gain, 'cuda')
    fn = lambda x: upfirdn2d._upfirdn2d_cuda(x, f, spec)
    np.testing.assert_allclose(fn(x).detach().numpy(), upfirdn2d._upfirdn2d_ref(x, f, spec).detach().numpy(), rtol=1e-6, atol=1e-6)
    assert torch.autograd.gradcheck(fn, [x], fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, [x], fast_mode=True)


# ----------------------------------------------------------------------------
# The real plugins against the reference paths (GPU machines only).

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')


@requires_cuda
@pytest.mark.parametrize('act', sorted(EXPECTED_DEFAULTS))
def test_bias_act_plugin_matches_ref(act, monkeypatch):
    monkeypatch.setenv('STYLEFORMER_STRICT_OPS', '1')  # A build failure must fail, not compare ref with ref.
    x = _rand(3, 6, 5, 7, seed=90).cuda().requires_grad_(True)
    b = _rand(6, seed=91).cuda().requires_grad_(True)
    for clamp in [None, 0.6]:
        outs = {}
        for impl in ['ref', 'cuda']:
            y = bias_act.bias_act(x, b, act=act, clamp=clamp, impl=impl)
            gx, gb = torch.autograd.grad((y * y.detach().cos()).sum(), [x, b], create_graph=True)
            second = gx.square().sum() + gb.sum()
            if second.requires_grad:  # Not for 'linear' on the reference path: its gradient is constant.
                ggx, ggb = torch.autograd.grad(second, [x, b], allow_unused=True, materialize_grads=True)
            else:
                ggx, ggb = torch.zeros_like(x), torch.zeros_like(b)
            outs[impl] = [y, gx, gb, ggx, ggb]
        for ref, cuda in zip(outs['ref'], outs['cuda']):
            torch.testing.assert_close(cuda, ref, rtol=1e-10, atol=1e-10)
    for dtype in [torch.float32, torch.float16, torch.bfloat16]:
        xl, bl = x.detach().to(dtype), b.detach().to(dtype)
        torch.testing.assert_close(bias_act.bias_act(xl, bl, act=act, impl='cuda').double(),
                                   bias_act.bias_act(xl.double(), bl.double(), act=act, impl='ref'),
                                   rtol=1e-2 if dtype != torch.float32 else 1e-5, atol=1e-2 if dtype != torch.float32 else 1e-5)


@requires_cuda
@pytest.mark.parametrize('case', range(len(UPFIRDN_CASES)))
def test_upfirdn2d_plugin_matches_ref(case, monkeypatch):
    monkeypatch.setenv('STYLEFORMER_STRICT_OPS', '1')
    shape, taps, up, down, padding, flip_filter, gain = UPFIRDN_CASES[case]
    x = _rand(*shape, seed=case).cuda().requires_grad_(True)
    f = None if taps is None else upfirdn2d.setup_filter(taps, device=x.device, normalize=False)
    outs = {}
    for impl in ['ref', 'cuda']:
        y = upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain, impl=impl)
        (gx,) = torch.autograd.grad((y * y.detach().sin()).sum(), [x])
        outs[impl] = [y, gx]
    for ref, cuda in zip(outs['ref'], outs['cuda']):
        torch.testing.assert_close(cuda, ref, rtol=1e-6, atol=1e-6)  # Filter taps are float32 in the kernel.
    for dtype in [torch.float32, torch.float16, torch.bfloat16]:
        xl = x.detach().to(dtype)
        torch.testing.assert_close(upfirdn2d.upfirdn2d(xl, f, up=up, down=down, padding=padding, impl='cuda').float(),
                                   upfirdn2d.upfirdn2d(xl.float(), f, up=up, down=down, padding=padding, impl='ref'),
                                   rtol=2e-2 if dtype != torch.float32 else 1e-5, atol=2e-2 if dtype != torch.float32 else 1e-5)


@requires_cuda
def test_grid_sample_double_backward_cuda():
    x = _rand(1, 2, 4, 5, seed=52).cuda().requires_grad_(True)
    grid = (torch.rand(1, 3, 2, 2, generator=torch.Generator().manual_seed(53), dtype=torch.float64) * 2 - 1).cuda().requires_grad_(True)
    assert torch.autograd.gradgradcheck(grid_sample_gradfix.grid_sample, [x, grid])


def test_upfirdn2d_trainable_filter_gets_gradients():
    x = _rand(1, 1, 4, 4, seed=54)
    f = upfirdn2d.setup_filter([1, 2, 1]).double().requires_grad_(True)
    upfirdn2d.upsample2d(x, f).square().sum().backward()
    assert f.grad is not None and f.grad.abs().sum() > 0
