"""Throughput and peak memory of the generator's fast attention path against the
reference-math path (and of the discriminator), at the paper's CIFAR-10 shape and at a
64x64 Linformer shape.

    python benchmarks/bench_networks.py --device cpu --batch 4 --iters 2
    python benchmarks/bench_networks.py --device cuda            # batch 32, as in the paper

Each measurement runs in a fresh subprocess so that the CPU peak (max RSS above the
process's baseline after building the network) belongs to that measurement alone; on CUDA
the peak is torch.cuda.max_memory_allocated. Prints a table and the fast/math ratios.
"""

import argparse
import multiprocessing
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dnnlib  # noqa: E402

# G: Styleformer-Large for CIFAR-10 (paper) and the 64x64 Linformer shape of our celeba64 preset.
# D: StyleGAN2-ADA's cifar config (channel_base 32768, channel_max 512, 'orig' at CIFAR scale,
# mbstd group 32 capped at the batch); resnet D at 64x64. Both: num_fp16_res=4, conv_clamp=256.
CONFIGS = {
    'cifar10-32': dict(
        G=dict(z_dim=512, w_dim=512, c_dim=0, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=2),
               synthesis_kwargs=dict(depth=32, minimum_head=1, num_layers=[1, 3, 3], G_dict=[1024, 512, 512],
                                     linformer=False, num_fp16_res=4, conv_clamp=256)),
        D=dict(c_dim=0, img_resolution=32, img_channels=3, architecture='orig', channel_base=32768, channel_max=512,
               num_fp16_res=4, conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=32))),
    'linformer-64': dict(
        G=dict(z_dim=512, w_dim=512, c_dim=0, img_resolution=64, img_channels=3, mapping_kwargs=dict(num_layers=2),
               synthesis_kwargs=dict(depth=32, minimum_head=1, num_layers=[1, 2, 1, 1], G_dict=[1024, 256, 64, 64],
                                     linformer=True, num_fp16_res=4, conv_clamp=256)),
        D=dict(c_dim=0, img_resolution=64, img_channels=3, architecture='resnet', channel_base=32768, channel_max=512,
               num_fp16_res=4, conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=4))),
}

#----------------------------------------------------------------------------

def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _rss_bytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def _timed(fn, device, warmup, iters):
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / iters


def _measure(config_name, what, impl, device_name, batch, warmup, iters, queue):
    """Runs in a subprocess: one (network, pass, attention impl) measurement."""
    device = torch.device(device_name)
    torch.manual_seed(0)
    cfg = CONFIGS[config_name]
    if what.startswith('G'):
        G_kwargs = dict(cfg['G'], synthesis_kwargs=dict(cfg['G']['synthesis_kwargs'], attention_impl=impl))
        net = dnnlib.util.construct_class_by_name(class_name='training.networks_Generator.Generator', **G_kwargs)
    else:
        net = dnnlib.util.construct_class_by_name(class_name='training.networks_Discriminator.Discriminator', **cfg['D'])
    net = net.to(device).train()
    z = torch.randn(batch, 512, device=device)
    c = torch.zeros(batch, 0, device=device)
    img = torch.randn(batch, 3, cfg['D']['img_resolution'], cfg['D']['img_resolution'], device=device)

    def g_forward():
        with torch.no_grad():
            net(z, c)

    def g_forward_backward():
        out = net(z, c)
        out.square().mean().backward()

    def d_forward_backward():
        net(img.detach().requires_grad_(True), c).square().mean().backward()

    fn = {'G fwd': g_forward, 'G fwd+bwd': g_forward_backward, 'D fwd+bwd': d_forward_backward}[what]
    baseline = _rss_bytes()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
    seconds = _timed(fn, device, warmup, iters)
    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated(device) - baseline
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
    queue.put(dict(img_per_s=batch / seconds, peak_mib=max(peak, 0) / 2 ** 20))


def measure(*args):
    ctx = multiprocessing.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(*args, queue))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        return None # Out of memory or another failure; reported as n/a.
    return queue.get()

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=32, help='Images per pass (default: 32, the paper\'s CIFAR-10 batch)')
    parser.add_argument('--iters', type=int, default=5, help='Timed iterations per measurement')
    parser.add_argument('--warmup', type=int, default=1, help='Untimed iterations before timing')
    parser.add_argument('--configs', default=','.join(CONFIGS), help=f'Comma-separated subset of {list(CONFIGS)}')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s choice)')
    args = parser.parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda was asked for, but PyTorch sees no CUDA device; use --device cpu.')
    unknown = [name for name in args.configs.split(',') if name not in CONFIGS]
    if unknown:
        parser.error(f'unknown config(s) {unknown}; choose from {list(CONFIGS)}')
    if args.threads:
        os.environ['OMP_NUM_THREADS'] = str(args.threads)

    device_desc = torch.cuda.get_device_name() if args.device == 'cuda' else f'CPU ({os.cpu_count()} cores)'
    print(f'torch {torch.__version__}, {device_desc}, batch {args.batch}, {args.iters} timed iteration(s) after {args.warmup} warm-up')
    rows = []
    for config_name in args.configs.split(','):
        for what in ['G fwd', 'G fwd+bwd', 'D fwd+bwd']:
            impls = ['fast', 'math'] if what.startswith('G') else ['fast']
            res = {}
            for impl in impls:
                print(f'  measuring {config_name} {what} [{impl}] ...', flush=True)
                res[impl] = measure(config_name, what, impl, args.device, args.batch, args.warmup, args.iters)
            rows.append((config_name, what, res))

    def fmt(r, key, spec):
        return format(r[key], spec) if r else 'n/a'
    header = f'{"config":<14}{"pass":<11}{"fast img/s":>11}{"math img/s":>11}{"speedup":>9}{"fast MiB":>10}{"math MiB":>10}{"mem ratio":>10}'
    print()
    print(header)
    print('-' * len(header))
    for config_name, what, res in rows:
        fast, math = res.get('fast'), res.get('math')
        speed = f'{fast["img_per_s"] / math["img_per_s"]:.2f}x' if fast and math else '-'
        mem = f'{fast["peak_mib"] / math["peak_mib"]:.2f}' if fast and math and math['peak_mib'] > 0 else '-'
        print(f'{config_name:<14}{what:<11}{fmt(fast, "img_per_s", ".2f"):>11}{fmt(math, "img_per_s", ".2f") if math else "-":>11}'
              f'{speed:>9}{fmt(fast, "peak_mib", ".0f"):>10}{fmt(math, "peak_mib", ".0f") if math else "-":>10}{mem:>10}')
    print('\nspeedup = fast / math throughput; mem ratio = fast / math peak memory (D has no attention: one path).')


if __name__ == '__main__':
    main()
