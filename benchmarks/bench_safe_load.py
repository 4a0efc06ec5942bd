"""What a large snapshot needs of the safe loader's limits, and how fast the loader reads one.

    python benchmarks/bench_safe_load.py                 # figures of 1024x1024 snapshots, no allocation
    python benchmarks/bench_safe_load.py --load=256      # also write and safely load a real 256x256 snapshot

The figures come from networks built on the meta device (no memory) and pickled as training
writes them (G, G_ema, D, augment pipe, options): file bytes, pickle instructions, records,
tensors, tensor elements, layers of a network, each with its ratio to the default limit (training/safe_load.py `Limits`).
--load writes a real snapshot of that resolution (non-Linformer shape) and times the safe load.
"""

import copy
import io
import os
import pickle
import pickletools
import sys
import tempfile
import time

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from torch_utils import persistence  # pylint: disable=wrong-import-position
from training import safe_load  # pylint: disable=wrong-import-position
from training.augment import AugmentPipe  # pylint: disable=wrong-import-position
from training.networks_Discriminator import Discriminator  # pylint: disable=wrong-import-position
from training.networks_Generator import Generator  # pylint: disable=wrong-import-position

# A 1024x1024 shape in the spirit of the presets: stages 8..1024, widths halving from 1024.
SHAPES = {
    'linformer': dict(G_dict=[1024, 512, 512, 256, 256, 128, 64, 32], num_layers=[1, 2, 2, 2, 2, 2, 2, 2], linformer=True),
    'full-attention': dict(G_dict=[1024, 512, 512, 256, 256, 128, 64, 32], num_layers=[1, 2, 2, 2, 2, 2, 2, 2], linformer=False),
}


def networks(resolution, shape):
    G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3, mapping_kwargs=dict(num_layers=8),
        synthesis_kwargs=dict(shape, depth=32, minimum_head=1, conv_clamp=256, num_fp16_res=4))
    D = Discriminator(c_dim=0, img_resolution=resolution, img_channels=3, channel_base=32768, channel_max=512,
        num_fp16_res=4, conv_clamp=256)
    augment = AugmentPipe(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1,
        lumaflip=1, hue=1, saturation=1)
    return dict(G=G, G_ema=copy.deepcopy(G), D=D, augment_pipe=augment,
        training_set_kwargs=dict(class_name=safe_load.DATASET_CLASS, path='data.zip', resolution=resolution))


def figures(data):
    """File bytes, pickle instructions, records, tensors, tensor elements and the most layers of a
    network, of a snapshot dict."""
    pickled = pickle.dumps(data)
    opcodes = sum(1 for _ in pickletools.genops(pickled))
    records = sum(1 for key in safe_load.MODULE_KEYS for m in data[key].modules() if persistence.is_persistent(m))
    tensors = {id(t): t for key in safe_load.MODULE_KEYS for t in data[key].state_dict(keep_vars=True).values()}
    elements = sum(t.numel() for t in tensors.values())
    names = [name for key in safe_load.MODULE_KEYS for name in data[key].state_dict()]
    layers = max(len({m.group(1) for m in map(safe_load._LAYER.match, data[key].state_dict()) if m})  # pylint: disable=protected-access
        for key in safe_load.MODULE_KEYS)
    file_bytes = len(pickled) + (4 * elements if next(iter(tensors.values())).is_meta else 0)  # Meta tensors pickle no data.
    return dict(max_file_bytes=file_bytes, max_opcodes=opcodes, max_records=records, max_tensors=len(names),
        max_tensor_elements=elements, max_layers=layers)


def report(name, values):
    limits = safe_load.resolve_limits()
    print(f'{name}:')
    for key, value in values.items():
        print(f'  {key:20s} {value:>15,d}   limit {getattr(limits, key):>17,d}   ratio {value / getattr(limits, key):.4f}')


@click.command()
@click.option('--load', 'load_resolution', type=int, help='Also write and safely load a real snapshot of this resolution')
def main(load_resolution):
    for name, shape in SHAPES.items():
        with torch.device('meta'):
            data = networks(1024, shape)
        report(f'1024x1024 Styleformer snapshot ({name}, G + G_ema + D + augment pipe)', figures(data))
    if load_resolution:
        stages = (load_resolution // 8).bit_length()
        shape = dict(G_dict=SHAPES['full-attention']['G_dict'][:stages], num_layers=SHAPES['full-attention']['num_layers'][:stages],
            linformer=False)
        data = networks(load_resolution, shape)
        report(f'{load_resolution}x{load_resolution} snapshot (real tensors)', figures(data))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'snapshot.pkl')
            with open(path, 'wb') as f:
                pickle.dump(data, f)
            start = time.perf_counter()
            safe = safe_load.load_network_pkl(path)
            safe_time = time.perf_counter() - start
            start = time.perf_counter()
            with open(path, 'rb') as f:
                pickle.load(io.BytesIO(f.read()))
            plain_time = time.perf_counter() - start
        same = all(torch.equal(a, b) for a, b in zip(safe['G_ema'].state_dict().values(), data['G_ema'].state_dict().values()))
        print(f'safe load {safe_time:.2f} s, plain pickle.load {plain_time:.2f} s, ratio {safe_time / plain_time:.2f}; '
              f'G_ema identical: {same}')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
