"""Build the CUDA plugins, check them against the reference paths and time both.

    python benchmarks/bench_ops.py            # GPU: StyleGAN sizes; CPU: small sizes, reference only

For each case it prints the reference and plugin times (forward, and forward + backward),
the speedup and the max abs difference of the outputs and input gradients.
"""

import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from torch_utils.ops import bias_act, upfirdn2d  # noqa: E402


def time_ms(fn, device, warmup=3, iters=10):
    """Mean wall time of fn() in milliseconds (CUDA events on the GPU)."""
    for _ in range(warmup):
        fn()
    if device.type == 'cuda':
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / iters
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) * 1000 / iters


def make_cases(device):
    gpu = device.type == 'cuda'
    n, big_c, small_c = (32, 512, 256) if gpu else (2, 32, 16)
    res = 64 if gpu else 32
    f = upfirdn2d.setup_filter([1, 3, 3, 1], device=device)
    cases = []
    for dtype in ([torch.float32, torch.float16] if gpu else [torch.float32]):
        b = torch.randn(big_c, device=device, dtype=dtype)
        cases.append(('bias_act lrelu clamp=256', [n, big_c, res, res], dtype,
                      lambda x, impl, b=b: bias_act.bias_act(x, b, act='lrelu', clamp=256, impl=impl)))
        cases.append(('upsample2d [1,3,3,1]', [n, small_c, 2 * res, 2 * res], dtype,
                      lambda x, impl: upfirdn2d.upsample2d(x, f, impl=impl)))
        cases.append(('downsample2d [1,3,3,1]', [n, small_c, 2 * res, 2 * res], dtype,
                      lambda x, impl: upfirdn2d.downsample2d(x, f, impl=impl)))
    return cases


def measure(fn, x, dy, impl, device):
    """Output, input gradient and timings of one implementation."""
    y = fn(x, impl)
    (dx,) = torch.autograd.grad(y, [x], dy)
    forward = time_ms(lambda: fn(x.detach(), impl), device)
    both = time_ms(lambda: torch.autograd.grad(fn(x, impl), [x], dy), device)
    return dict(y=y.detach(), dx=dx, forward=forward, both=both)


def main():
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    torch.manual_seed(0)
    print(f'torch {torch.__version__}, device: {torch.cuda.get_device_name() if device.type == "cuda" else "CPU"}')
    plugins = False
    if device.type == 'cuda':
        start = time.time()
        plugins = bias_act._plugin() is not None and upfirdn2d._plugin() is not None
        print(f'plugins {"built/loaded" if plugins else "UNAVAILABLE (see the line above)"} in {time.time() - start:.1f} s')
    else:
        print('no GPU: timing the reference paths only')

    header = f'{"op":26} {"shape":18} {"dtype":8} {"ref fwd":>9} {"cuda fwd":>9} {"x":>6} {"ref f+b":>9} {"cuda f+b":>9} {"x":>6} {"|y-ref|":>9} {"|dx-ref|":>9}'
    print(header)
    print('-' * len(header))
    for name, shape, dtype, fn in make_cases(device):
        x = torch.randn(shape, device=device, dtype=dtype, requires_grad=True)
        dy = torch.randn_like(fn(x.detach(), 'ref'))
        ref = measure(fn, x, dy, 'ref', device)
        row = f'{name:26} {"x".join(map(str, shape)):18} {str(dtype).split(".")[1]:8} {ref["forward"]:9.3f} '
        if plugins:
            cuda = measure(fn, x, dy, 'cuda', device)
            y_diff = (cuda['y'].float() - ref['y'].float()).abs().max().item()
            dx_diff = (cuda['dx'].float() - ref['dx'].float()).abs().max().item()
            row += (f'{cuda["forward"]:9.3f} {ref["forward"] / cuda["forward"]:5.1f}x {ref["both"]:9.3f} {cuda["both"]:9.3f} '
                    f'{ref["both"] / cuda["both"]:5.1f}x {y_diff:9.2e} {dx_diff:9.2e}')
        else:
            row += f'{"-":>9} {"-":>6} {ref["both"]:9.3f} {"-":>9} {"-":>6} {"-":>9} {"-":>9}'
        print(row, flush=True)
        del x, dy, ref
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    print('times in ms (mean of 10 after 3 warm-up calls); f+b = forward + backward; x = speedup of the plugin; |y-ref|, |dx-ref| = max abs difference from the reference')


if __name__ == '__main__':
    main()
