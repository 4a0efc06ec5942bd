"""The package layout of docs/architecture.md: the import paths that snapshots already written
depend on stay where they are ("Frozen import paths"), a snapshot the training code writes
unpickles with its embedded sources, and the packages import each other in one direction only
("File map")."""

import importlib
import os
import re
import subprocess
import sys

import pytest
import torch

from test_docs import DOCS, REPO_ROOT, _embedded_modules, _imported_modules, _read
from test_styleformer_c import _small_G
from snapshot_helpers import build_case
from training import snapshot
from training.augment import AugmentPipe
from training.dataset import DATASET_CLASS
from training.networks_Discriminator import Discriminator

#----------------------------------------------------------------------------
# Frozen import paths.

def _frozen_paths():
    """The first-column names of the table under "## Frozen import paths"."""
    section = _read(os.path.join(DOCS, 'architecture.md')).split('## Frozen import paths', 1)[1].split('\n## ', 1)[0]
    return re.findall(r'^\| `([\w.]+)` \|', section, flags=re.M)


def _resolve(path):
    """The module or module attribute that a dotted path names (ImportError/AttributeError if none)."""
    parts = path.split('.')
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for name in parts[split:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(f'{path} names no module')


def test_frozen_paths_resolve_and_cover_every_import_of_an_embedded_source():
    frozen = _frozen_paths()
    assert len(frozen) == len(set(frozen)), 'a path is listed twice'
    for path in frozen:
        _resolve(path)  # A moved or renamed module or class fails here.
    embedded_imports = set().union(*map(_imported_modules, _embedded_modules()))
    missing = sorted(embedded_imports - set(frozen))
    assert not missing, f'docs/architecture.md ("Frozen import paths") should list {missing}: embedded sources import them'
    assert DATASET_CLASS in frozen and 'torch_utils.persistence._reconstruct_persistent_obj' in frozen


# Unpickles a snapshot in a process that has imported none of our modules, so that each network's
# class comes from its embedded source; runs G_ema and D on the saved inputs.
_UNPICKLE_AND_RUN = '''
import pickle, sys, torch
snapshot_path, inputs_path, out_path = sys.argv[1:4]
with open(snapshot_path, 'rb') as f:
    data = pickle.load(f)
inputs = torch.load(inputs_path)
with torch.no_grad():
    img = data['G_ema'](inputs['z'], None, noise_mode='const')
    logits = data['D'](inputs['img'], inputs['c'])
modules = {name: type(data[name]).__module__ for name in ['G_ema', 'D', 'augment_pipe']}
torch.save(dict(img=img, logits=logits, p=float(data['augment_pipe'].p), modules=modules), out_path)
'''


@pytest.mark.slow  # A fresh Python process that imports torch.
def test_a_snapshot_written_by_training_unpickles_with_its_embedded_sources(tmp_path):
    """The networks of every embedded module (Styleformer-C reaches the Styleformer and StyleGAN2
    modules, the augment pipe torch_utils.distributed), written as the training loop writes them,
    unpickled the ordinary way: their embedded sources import the frozen paths by name."""
    G = _small_G()
    D = build_case(Discriminator, 'd_orig')
    pipe = AugmentPipe(xflip=1, brightness=1)
    pipe.p.fill_(0.25)
    data = snapshot.network_snapshot_data(dict(G=G, D=D, G_ema=G, augment_pipe=pipe), dict(path='data.zip'), dict(total_kimg=1))
    pkl = snapshot.save_snapshot(str(tmp_path), 0, data, training_state={})

    torch.manual_seed(0)
    inputs = dict(z=torch.randn([2, G.z_dim]), img=torch.randn([2, D.img_channels, D.img_resolution, D.img_resolution]),
        c=torch.zeros([2, D.c_dim]))  # d_orig is unconditional.
    torch.save(inputs, tmp_path / 'inputs.pt')
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    subprocess.run([sys.executable, '-c', _UNPICKLE_AND_RUN, pkl, str(tmp_path / 'inputs.pt'), str(tmp_path / 'out.pt')],
        cwd=tmp_path, env=env, check=True, timeout=300)
    out = torch.load(tmp_path / 'out.pt')

    # Rebuilt from their embedded sources. (D's class may be the imported module's: its source is the
    # one of training.networks_Discriminator, which Styleformer-C's source imported by name.)
    assert all(out['modules'][name].startswith('_persistent_module_') for name in ['G_ema', 'augment_pipe']), out['modules']
    with torch.no_grad():
        torch.testing.assert_close(out['img'], G(inputs['z'], None, noise_mode='const'))
        torch.testing.assert_close(out['logits'], D(inputs['img'], inputs['c']))
    assert out['p'] == 0.25

#----------------------------------------------------------------------------
# Dependencies point one way.

# What each package may import: those above it, and `metrics` beside `training`.
BELOW = ['dnnlib', 'torch_utils', 'training', 'snapshot_io', 'tools', 'explorer_app']
ALLOWED = {package: set(BELOW[:BELOW.index(package) + 1]) for package in BELOW}
ALLOWED['training'].add('metrics')
ALLOWED['metrics'] = ALLOWED['training']
for package in ['snapshot_io', 'tools', 'explorer_app']:
    ALLOWED[package].add('metrics')


def _package_files(package):
    for folder, _dirs, files in os.walk(os.path.join(REPO_ROOT, package)):
        yield from (os.path.join(folder, name) for name in sorted(files) if name.endswith('.py'))


@pytest.mark.parametrize('package', list(ALLOWED))
def test_packages_import_only_the_packages_above_them(package):
    wrong = {os.path.relpath(path, REPO_ROOT): sorted(name for name in _imported_modules(path) if name.split('.')[0] not in ALLOWED[package])
             for path in _package_files(package)}
    wrong = {path: names for path, names in wrong.items() if names}
    assert not wrong, f'{package} may import only {sorted(ALLOWED[package])}: {wrong}'

#----------------------------------------------------------------------------
