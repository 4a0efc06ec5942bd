"""Every CUDA plugin in torch_utils/ops builds and links with nvcc, and its kernel math
(run through the plugin's host loop on CPU tensors, the same code the kernels call) matches
the reference paths.

Needs a CUDA build of torch and nvcc, no GPU: `make test-cuda-build` runs it in .venv-cuda.
Skipped with the reason elsewhere; STYLEFORMER_REQUIRE_CUDA_BUILD=1 turns the skip into a
failure so CI cannot pass without building.
"""

import glob
import os
import shutil

import pytest
import torch

from torch_utils import custom_ops
from torch_utils.ops import bias_act, upfirdn2d

PLUGIN_MODULES = {'bias_act': bias_act, 'upfirdn2d': upfirdn2d}  # Python module -> op with a plugin.
OPS_DIR = os.path.dirname(os.path.abspath(bias_act.__file__))


def _missing_prerequisite():
    if torch.version.cuda is None:
        return f'torch {torch.__version__} is a CPU-only build (use `make test-cuda-build`, which installs a CUDA build in .venv-cuda)'
    from torch.utils import cpp_extension
    if cpp_extension.CUDA_HOME is None or shutil.which('nvcc', path=os.path.join(cpp_extension.CUDA_HOME, 'bin')) is None:
        return 'nvcc not found; install the CUDA toolkit and set CUDA_HOME'
    return None


def _build(name):
    reason = _missing_prerequisite()
    if reason is not None:
        if os.environ.get('STYLEFORMER_REQUIRE_CUDA_BUILD') == '1':
            pytest.fail(f'STYLEFORMER_REQUIRE_CUDA_BUILD=1 but the CUDA build cannot run: {reason}')
        pytest.skip(reason)
    with pytest.MonkeyPatch.context() as patch:
        if not torch.cuda.is_available() and not os.environ.get('TORCH_CUDA_ARCH_LIST'):
            patch.setenv('TORCH_CUDA_ARCH_LIST', '9.0')  # No GPU to ask: build for one architecture.
        patch.setattr(custom_ops, 'verbosity', 'full')
        return custom_ops.get_plugin(**PLUGIN_MODULES[name].PLUGIN)


def test_every_cuda_source_belongs_to_a_plugin():
    listed = {src for module in PLUGIN_MODULES.values() for src in module.PLUGIN['sources']}
    on_disk = {os.path.basename(p) for p in glob.glob(os.path.join(OPS_DIR, '*.cu'))}
    assert on_disk <= listed, f'CUDA sources not built by any plugin: {sorted(on_disk - listed)}'


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(PLUGIN_MODULES))
def test_plugin_builds(name):
    plugin = _build(name)
    assert callable(getattr(plugin, name)), f'plugin {name} does not export {name}()'


@pytest.mark.slow
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32, torch.bfloat16])
def test_bias_act_kernel_math(dtype):
    plugin = _build('bias_act')
    g = torch.Generator().manual_seed(0)
    x64, b64 = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64) * 3, torch.randn(5, generator=g, dtype=torch.float64)
    dy64 = torch.randn(x64.shape, generator=g, dtype=torch.float64)
    x, b, dy = x64.to(dtype), b64.to(dtype), dy64.to(dtype)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)
    for act, info in bias_act.activation_funcs.items():
        for clamp in [None, 0.7]:
            spec = bias_act._parse_args(x, b, 1, act, None, None, clamp, 'cuda')
            run = lambda mode: plugin.bias_act(x, b, dy if mode else x.new_empty([0]), mode, 1, info.cuda_idx, spec.alpha,
                                               spec.gain, -1.0 if clamp is None else clamp).double()
            # The derivative modes against autograd of the reference path (in float64, from the same inputs).
            xr = x.double().requires_grad_(True)
            y = bias_act._bias_act_ref(xr, b.double(), spec)
            (d1,) = torch.autograd.grad(y.sum(), [xr], create_graph=True)
            d2 = torch.autograd.grad(d1.sum(), [xr], allow_unused=True)[0] if d1.requires_grad else None
            d2 = torch.zeros_like(d1) if d2 is None else d2
            torch.testing.assert_close(run(0), y.detach(), **tol, msg=f'{act} clamp={clamp} forward')
            torch.testing.assert_close(run(1), dy.double() * d1.detach(), **tol, msg=f'{act} clamp={clamp} first derivative')
            torch.testing.assert_close(run(2), dy.double() * d2, **tol, msg=f'{act} clamp={clamp} second derivative')


@pytest.mark.slow
def test_bias_act_kernel_without_bias_ignores_dim():
    plugin = _build('bias_act')
    x = torch.randn(7, dtype=torch.float64)  # 1-D: the default dim=1 does not exist, and needs not without a bias.
    y = plugin.bias_act(x, x.new_empty([0]), x.new_empty([0]), 0, 1, bias_act.activation_funcs['lrelu'].cuda_idx, 0.2, 2 ** 0.5, -1.0)
    torch.testing.assert_close(y, bias_act.bias_act(x, act='lrelu', impl='ref'), rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_bias_act_kernel_keeps_dense_layouts():
    plugin = _build('bias_act')
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64).to(memory_format=torch.channels_last)
    b, dy = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64)
    idx = bias_act.activation_funcs['swish'].cuda_idx
    y = plugin.bias_act(x, b, x.new_empty([0]), 0, 1, idx, 0.0, 1.0, -1.0)
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, bias_act.bias_act(x, b, act='swish', impl='ref'), rtol=1e-12, atol=1e-12)
    # A gradient in another layout than x (here NCHW) is matched to x's layout first.
    xr = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(bias_act.bias_act(xr, b, act='swish', impl='ref'), [xr], dy)
    dx = plugin.bias_act(x, b, dy, 1, 1, idx, 0.0, 1.0, -1.0)
    torch.testing.assert_close(dx, expected, rtol=1e-12, atol=1e-12)


UPFIRDN_CASES = [  # shape, taps, up, down, padding [x0, x1, y0, y1], flip_filter, gain
    ([2, 3, 5, 7], [[1, 3, 3, 1], [2, 0, 1, 1]], [2, 2], [1, 1], [2, 1, 2, 1], False, 4),
    ([1, 2, 7, 5], [[1, 2, 0], [0.5, 1, 3]], [2, 3], [3, 2], [0, 2, 1, 3], True, 0.5),
    ([2, 1, 9, 6], [[1, 2, 3, 1], [0, 1, 2, 2]], [1, 1], [2, 2], [-1, 3, 2, -2], False, 1),
    ([1, 2, 4, 9], [[1]], [3, 1], [1, 1], [-2, 0, 0, -1], False, 2),
    ([1, 1, 6, 6], [[1, 2, 3, 4, 5]], [2, 1], [1, 3], [4, -3, 0, 0], True, 1),
]


@pytest.mark.slow
@pytest.mark.parametrize('case', range(len(UPFIRDN_CASES)))
def test_upfirdn2d_kernel_math(case):
    plugin = _build('upfirdn2d')
    shape, taps, up, down, padding, flip_filter, gain = UPFIRDN_CASES[case]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(case), dtype=torch.float64)
    f = torch.tensor(taps, dtype=torch.float32)
    y = plugin.upfirdn2d(x, f, *up, *down, *padding, flip_filter, gain)
    spec = upfirdn2d._parse_args(x, f, up, down, padding, flip_filter, gain, 'ref')
    torch.testing.assert_close(y, upfirdn2d._upfirdn2d_ref(x, f, spec), rtol=1e-12, atol=1e-12)
    y16 = plugin.upfirdn2d(x.to(torch.float16), f, *up, *down, *padding, flip_filter, gain)
    torch.testing.assert_close(y16.double(), upfirdn2d._upfirdn2d_ref(x.to(torch.float16).double(), f, spec), rtol=1e-2, atol=1e-2)
