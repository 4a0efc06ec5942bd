"""Crash-safe snapshot files of a run directory.

A snapshot is two files named by the kimg counter:
- `network-snapshot-{kimg:06d}.pkl`: pickle of {G, D, G_ema, augment_pipe,
  training_set_kwargs, training_options} (eval copies on the CPU), the published layout so
  published tools read it.
- `training-state-{kimg:06d}.pt`: what the published snapshot drops and an exact resume
  needs (optimizer states, counters, augment p, controller and loss state).

Both are written atomically: into a temporary file in the same directory, flushed and
fsynced, then renamed over the target, so a crash never leaves a partial file under the
final name. The state file is written first: a .pkl on disk implies its state is there too.
"""

import copy
import json
import os
import pickle

import torch

import dnnlib
from training.compile import clear_compile_marks

#----------------------------------------------------------------------------

def atomic_write(path, write_fn):
    """Call write_fn(file) on a temporary file beside `path`, then move it into place."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = dnnlib.util.make_temp_file(directory, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    _fsync_directory(directory)

def _fsync_directory(directory):
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

#----------------------------------------------------------------------------

def network_snapshot_path(run_dir, kimg):
    return os.path.join(run_dir, f'network-snapshot-{kimg:06d}.pkl')

def training_state_path_for(pkl_path):
    """The training-state file that belongs beside a network snapshot."""
    directory, name = os.path.split(pkl_path)
    if name.startswith('network-snapshot-') and name.endswith('.pkl'):
        kimg = name[len('network-snapshot-'):-len('.pkl')]
        return os.path.join(directory, f'training-state-{kimg}.pt')
    return None

def network_snapshot_data(modules, training_set_kwargs, training_options):
    """The published snapshot dict: CPU eval copies of the modules, plus the options."""
    # Plain JSON-like values only, so that safe loaders need no classes for the options.
    plain = lambda value: json.loads(json.dumps(value, default=str))
    data = dict(training_set_kwargs=plain(training_set_kwargs), training_options=plain(training_options))
    for name, module in modules.items():
        if module is not None:
            module = copy.deepcopy(module).eval().requires_grad_(False).cpu()
            clear_compile_marks(module)
        data[name] = module
    return data

def save_snapshot(run_dir, kimg, snapshot_data, training_state):
    """Write the training state, then the network pickle; returns the .pkl path."""
    pkl_path = network_snapshot_path(run_dir, kimg)
    atomic_write(training_state_path_for(pkl_path), lambda f: torch.save(training_state, f))
    atomic_write(pkl_path, lambda f: pickle.dump(snapshot_data, f))
    return pkl_path

def load_training_state(pkl_path):
    """The training state saved beside `pkl_path`, or None (e.g. a published snapshot)."""
    state_path = training_state_path_for(pkl_path)
    if state_path is None or not os.path.isfile(state_path):
        return None
    return torch.load(state_path, map_location="cpu", weights_only=True)

#----------------------------------------------------------------------------
