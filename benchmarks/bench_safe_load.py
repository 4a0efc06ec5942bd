"""What a large snapshot needs of the safe loader's limits, and how fast the loader reads one.

    python benchmarks/bench_safe_load.py                 # figures of 1024x1024 snapshots, no allocation
    python benchmarks/bench_safe_load.py --load=256      # also write and safely load a real 256x256 snapshot
    python benchmarks/bench_safe_load.py --hostile       # also the costliest hostile files we know, per input byte

The figures come from networks built on the meta device (no memory) and pickled as training
writes them (G, G_ema, D, augment pipe, options): file bytes, pickle instructions, records,
tensors, tensor elements, layers of a network, each with its ratio to the default limit (snapshot_io/safe_load.py `Limits`).
--load writes a real snapshot of that resolution (non-Linformer shape) and times the safe load.
--hostile writes files that make the loader do the most work or hold the most memory per byte
the default limits allow, and loads each in a fresh process (time, peak memory, the refusal).
"""

import copy
import io
import os
import pickle
import pickletools
import subprocess
import sys
import tempfile
import time

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from snapshot_io import safe_load, safe_pickle  # pylint: disable=wrong-import-position
from torch_utils import persistence  # pylint: disable=wrong-import-position
from training import dataset  # pylint: disable=wrong-import-position
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
        training_set_kwargs=dict(class_name=dataset.DATASET_CLASS, path='data.zip', resolution=resolution))


def figures(data):
    """File bytes, pickle instructions, records, tensors, tensor elements and the most layers of a
    network, of a snapshot dict."""
    pickled = pickle.dumps(data)
    opcodes = sum(1 for _ in pickletools.genops(pickled))
    records = sum(1 for key in safe_load.MODULE_KEYS for m in data[key].modules() if persistence.is_persistent(m))
    tensors = {id(t): t for key in safe_load.MODULE_KEYS for t in data[key].state_dict(keep_vars=True).values()}
    elements = sum(t.numel() for t in tensors.values())
    # What the loader counts against max_opcodes: each tensor also reads its own storage.
    work = opcodes + (safe_pickle.STORAGE_WORK + safe_pickle.TENSOR_WORK) * len(tensors)
    names = sum(len(data[key].state_dict()) for key in safe_load.MODULE_KEYS)
    layers = max(len({m.group(1) for m in map(safe_load._LAYER.match, data[key].state_dict()) if m})  # pylint: disable=protected-access
        for key in safe_load.MODULE_KEYS)
    file_bytes = len(pickled) + (4 * elements if next(iter(tensors.values())).is_meta else 0)  # Meta tensors pickle no data.
    return dict(max_file_bytes=file_bytes, max_opcodes=work, max_records=records, max_tensors=names,
        max_tensor_elements=elements, max_layers=layers)


# Loads one file in a fresh process: (seconds, peak resident memory in bytes, the error if any).
_LOAD_IN_CHILD = '''
import resource, sys, time
from snapshot_io import safe_load
start, error = time.perf_counter(), ''
try:
    safe_load.load_network_pkl(sys.argv[1])
except safe_load.LoadError as err:
    error = str(err)[:80]
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, error, sep='\\t')
'''


def load_in_child(path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    output = subprocess.run([sys.executable, '-c', _LOAD_IN_CHILD, path], cwd=root, capture_output=True, text=True,
        check=True).stdout
    seconds, peak, error = output.rstrip('\n').split('\t')
    return float(seconds), int(peak), error


def report(name, values):
    limits = safe_load.resolve_limits()
    print(f'{name}:')
    for key, value in values.items():
        print(f'  {key:20s} {value:>15,d}   limit {getattr(limits, key):>17,d}   ratio {value / getattr(limits, key):.4f}')


def _get(i):
    return pickle.LONG_BINGET + i.to_bytes(4, 'little')


def _put(i):
    return pickle.LONG_BINPUT + i.to_bytes(4, 'little')


def hostile_files():
    """name -> bytes of the costliest files per byte we know under the default limits."""
    limit = safe_load.Limits.max_opcodes
    typed = torch.TypedStorage(wrap_storage=torch.zeros(0).untyped_storage(), dtype=torch.float32, _internal=True)
    storage_bytes = typed.__reduce__()[1][0]
    tensor_setup = (pickle.GLOBAL + b'torch._utils\n_rebuild_tensor_v2\n' + _put(0) + pickle.POP
        + pickle.MARK + pickle.GLOBAL + b'torch.storage\n_load_from_bytes\n' + pickle.BINBYTES
        + len(storage_bytes).to_bytes(4, 'little') + storage_bytes + pickle.TUPLE1 + pickle.REDUCE
        + pickle.BININT1 + b'\x00' + pickle.MARK + pickle.BININT1 + b'\x00' + pickle.TUPLE + pickle.DUP
        + pickle.NEWFALSE + pickle.EMPTY_DICT + pickle.TUPLE + _put(1) + pickle.POP)
    per_tensor = _get(0) + _get(1) + pickle.REDUCE  # 3 instructions, 11 bytes: one empty tensor.
    tensors = (limit - 40) // (3 + safe_pickle.TENSOR_WORK)
    return {
        'baseline (no snapshot)': pickle.PROTO + b'\x04' + pickle.NONE + pickle.STOP,  # The process itself: torch and the code.
        # Every instruction leaves a new empty dict on the stack.
        'empty dicts': pickle.PROTO + b'\x04' + pickle.EMPTY_DICT * (limit - 2) + pickle.STOP,
        # Every three instructions call _rebuild_tensor_v2 on shared arguments: one more tensor object.
        'empty tensors': (pickle.PROTO + b'\x04' + tensor_setup + pickle.EMPTY_LIST + pickle.MARK
            + per_tensor * tensors + pickle.APPENDS + pickle.STOP),
        # A generator whose names imply max_layers blocks, all holding one empty tensor: the meta construction.
        'max_layers blocks': _layers_file(safe_load.Limits.max_layers),
    }


def _layers_file(blocks):
    def record(name, **state):
        meta = dict(type='class', version=6, module_src='', class_name=name, state=state)
        return _Call(persistence._reconstruct_persistent_obj, meta)
    empty = torch.zeros(0)
    synthesis = record('SynthesisNetwork', _modules={f'b8_{j}': record('EncoderBlock', _parameters={'w': empty})
        for j in range(blocks - 1)})
    mapping = record('MappingNetwork', _modules={'fc0': record('FullyConnectedLayer', _parameters={'weight': empty})})
    G = record('Generator', _init_kwargs=dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
        mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(G_dict=[8], num_layers=[blocks - 1], depth=8,
        minimum_head=1, conv_clamp=None)), _modules={'synthesis': synthesis, 'mapping': mapping})
    buffer = io.BytesIO()
    _CallPickler(buffer, protocol=4).dump(dict(G_ema=G))
    return buffer.getvalue()


class _Call:
    def __init__(self, func, *args):
        self.func, self.args = func, args


class _CallPickler(pickle.Pickler):
    def reducer_override(self, obj):
        return (obj.func, obj.args) if isinstance(obj, _Call) else NotImplemented


@click.command()
@click.option('--load', 'load_resolution', type=int, help='Also write and safely load a real snapshot of this resolution')
@click.option('--hostile', is_flag=True, help='Also load the costliest hostile files per byte')
def main(load_resolution, hostile):
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
            _, peak, _ = load_in_child(path)
            file_bytes = os.path.getsize(path)
        same = all(torch.equal(a, b) for a, b in zip(safe['G_ema'].state_dict().values(), data['G_ema'].state_dict().values()))
        print(f'safe load {safe_time:.2f} s, plain pickle.load {plain_time:.2f} s, ratio {safe_time / plain_time:.2f}; '
              f'G_ema identical: {same}; peak memory of a process that only loads it {peak / 2**20:.0f} MiB '
              f'({peak / file_bytes:.1f} x the file)')


    if hostile:
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in hostile_files().items():
                path = os.path.join(tmp, 'hostile.pkl')
                with open(path, 'wb') as f:
                    f.write(data)
                seconds, peak, error = load_in_child(path)
                print(f'{name}: {len(data) / 1e6:.2f} MB file, {seconds:.2f} s ({seconds / len(data) * 1e9:.0f} ns per byte), '
                      f'peak memory {peak / 2**20:.0f} MiB; refused: {error}')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
