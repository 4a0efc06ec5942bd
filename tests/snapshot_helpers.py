"""Tiny networks and snapshot files shared by test_legacy.py, test_generate.py and test_tools.py.

`published_pickle` writes snapshots the way the published Styleformer / StyleGAN2-ADA code
does (every persistent object reduced to `_reconstruct_persistent_obj(meta)`), but with a
stand-in module source in meta, so the tests control what that source would do if executed.
"""

import io
import json
import os
import pickle

import numpy as np
import torch

from torch_utils import persistence

CASES_PATH = os.path.join(os.path.dirname(__file__), 'data', 'styleformer_cases.npz')

# Stand-in sources with the published class names. `{marker}` is a file the source creates
# when it is executed, which the safe loader must never do.
STYLEFORMER_SRC = '''
import torch
open({marker!r}, 'w').write('the embedded source was executed')
class FullyConnectedLayer(torch.nn.Module): pass
class MappingNetwork(torch.nn.Module): pass
class Encoderlayer(torch.nn.Module): pass
class ToRGBLayer(torch.nn.Module): pass
class EncoderBlock(torch.nn.Module): pass
class SynthesisNetwork(torch.nn.Module): pass
class Generator(torch.nn.Module): pass
'''

STYLEGAN2_SRC = '''
import torch
open({marker!r}, 'w').write('the embedded source was executed')
class FullyConnectedLayer(torch.nn.Module): pass
class Conv2dLayer(torch.nn.Module): pass
class MappingNetwork(torch.nn.Module): pass
class SynthesisLayer(torch.nn.Module): pass
class ToRGBLayer(torch.nn.Module): pass
class SynthesisBlock(torch.nn.Module): pass
class SynthesisNetwork(torch.nn.Module): pass
class Generator(torch.nn.Module): pass
class DiscriminatorBlock(torch.nn.Module): pass
class MinibatchStdLayer(torch.nn.Module): pass
class DiscriminatorEpilogue(torch.nn.Module): pass
class Discriminator(torch.nn.Module): pass
'''

#----------------------------------------------------------------------------

def load_case(name):
    """(constructor kwargs, state dict, io dict) of one reference case."""
    data = np.load(CASES_PATH)
    kwargs = dict(json.loads(str(data['__meta__']))[name])
    kwargs.pop('class_name')
    state = {k[len(name) + 7:]: torch.from_numpy(data[k]) for k in data.files if k.startswith(f'{name}/state/')}
    io_dict = {k[len(name) + 4:]: torch.from_numpy(data[k]) for k in data.files if k.startswith(f'{name}/io/')}
    return kwargs, state, io_dict


def build_case(cls, name):
    """A network of ours built from a reference case and loaded with its state (eval, frozen)."""
    kwargs, state, _ = load_case(name)
    module = cls(**kwargs)
    module.load_state_dict(state)
    return module.eval().requires_grad_(False)


class _PublishedPickler(pickle.Pickler):
    """Reduces persistent modules with a chosen module source and (optionally renamed) class names."""

    def __init__(self, file, module_src, rename):
        super().__init__(file)
        self.module_src = module_src
        self.rename = rename

    def reducer_override(self, obj):
        if isinstance(obj, torch.nn.Module) and persistence.is_persistent(obj):
            name = type(obj).__name__
            meta = dict(type='class', version=6, module_src=self.module_src, class_name=self.rename.get(name, name),
                state=dict(obj.__dict__))
            return persistence._reconstruct_persistent_obj, (meta,)
        return NotImplemented


def published_pickle(data, module_src, rename=None):
    """Bytes of `data` pickled in the published persistent format with `module_src` embedded."""
    buffer = io.BytesIO()
    _PublishedPickler(buffer, module_src, rename or {}).dump(data)
    return buffer.getvalue()


def snapshot_dict(G, D=None, augment_pipe=None, training_set_kwargs=None):
    return dict(G=G, D=D, G_ema=G, augment_pipe=augment_pipe, training_set_kwargs=training_set_kwargs)


def write_file(path, data):
    with open(path, 'wb') as f:
        f.write(data)
    return str(path)


def write_generator_snapshot(path, G):
    """A published-format Styleformer snapshot of G at `path` (its embedded source, if run,
    writes `path`.executed); returns the path as a string."""
    return write_file(path, published_pickle(snapshot_dict(G), STYLEFORMER_SRC.format(marker=f'{path}.executed')))
