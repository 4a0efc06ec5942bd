"""Crash-safe snapshot files of a run directory.

A snapshot is two files named by the kimg counter:
- `network-snapshot-{kimg:06d}.pkl`: pickle of {G, D, G_ema, augment_pipe,
  training_set_kwargs, training_options} (eval copies on the CPU) in the published layout;
  its embedded sources import modules the published code lacks (docs/architecture.md).
- `training-state-{kimg:06d}.pt`: what the published snapshot drops and an exact resume
  needs (optimizer states, counters, augment p, controller and loss state).

Both are written atomically: into a temporary file in the same directory, flushed and
fsynced, then renamed over the target, so a crash never leaves a partial file under the
final name. The state file is written first: a .pkl on disk implies its state is there too.

`TrainingState` is the progress of a run (counters, optimizers, loss, ADA controller) and
`Checkpoint` saves it with the networks and restores both on `--resume`.
"""

import copy
import json
import os
import pickle
from typing import NamedTuple

import torch

from dnnlib.util import atomic_write
from torch_utils import misc
from training.compilation import clear_compile_marks
from training.run_dirs import network_snapshot_path, training_state_path_for

#----------------------------------------------------------------------------

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

def has_training_state(pkl_path):
    """Whether a training-state file lies beside the network snapshot `pkl_path`."""
    state_path = training_state_path_for(pkl_path)
    return state_path is not None and os.path.isfile(state_path)

def load_training_state(pkl_path):
    """The training state saved beside `pkl_path`, or None (e.g. a published snapshot)."""
    if not has_training_state(pkl_path):
        return None
    return torch.load(training_state_path_for(pkl_path), map_location="cpu", weights_only=True)

class ResumeSnapshot(NamedTuple):
    """A snapshot to resume from, read once (train.py): where it came from, its loaded dict
    (snapshot_io.resume.read_resume_snapshot) and the training state beside it (None when there is none)."""
    path: str
    data: dict
    state: dict | None

#----------------------------------------------------------------------------

class ResumeError(ValueError):
    """A snapshot cannot be resumed from: its training state cannot be read, or it does not fit
    the networks being trained; the message says what is wrong."""


class TrainingState:
    """The progress of a run beyond the network weights. Its state_dict() is the format of the
    training-state files: {optimizers: {G, D}, loss, ada, cur_nimg, cur_tick, tick_start_nimg,
    batch_idx}."""
    COUNTERS = ('cur_nimg', 'cur_tick', 'tick_start_nimg', 'batch_idx')

    def __init__(self, optimizers, loss, ada=None):
        self.cur_nimg = 0           # Images shown to D so far (the position in the data stream).
        self.cur_tick = 0           # Progress ticks completed.
        self.tick_start_nimg = 0    # cur_nimg when the current tick began.
        self.batch_idx = 0          # Iterations so far (lazy regularisation, per-round seeds).
        self.optimizers = optimizers
        self.loss = loss
        self.ada = ada

    def state_dict(self):
        return dict(
            optimizers={name: opt.state_dict() for name, opt in self.optimizers.items()},
            loss=self.loss.state_dict(),
            ada=self.ada.state_dict() if self.ada is not None else None,
            **{name: getattr(self, name) for name in self.COUNTERS})

    def load_state_dict(self, state):
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state['optimizers'][name])
        self.loss.load_state_dict(state['loss'])
        if self.ada is not None and state.get('ada') is not None:
            self.ada.load_state_dict(state['ada'])
        for name in self.COUNTERS:
            setattr(self, name, int(state[name]))


class Checkpoint:
    """Writes the snapshot files of a run (the training state, then the networks with their
    options beside it: see save_snapshot) and restores a run from such files."""

    def __init__(self, run_dir, state, modules, training_set_kwargs, training_options):
        self.run_dir = run_dir
        self.state = state
        self.modules = modules  # {G, D, G_ema, augment_pipe}; augment_pipe may be None.
        self.training_set_kwargs = training_set_kwargs
        self.training_options = training_options

    def save(self):
        """Write the snapshot of the current state; returns the .pkl path."""
        data = network_snapshot_data(self.modules, self.training_set_kwargs, self.training_options)
        return save_snapshot(self.run_dir, self.state.cur_nimg // 1000, data, self.state.state_dict())

    def path(self):
        """Where save() writes the network pickle (the same on every rank)."""
        return network_snapshot_path(self.run_dir, self.state.cur_nimg // 1000)

    def restore(self, resume, partial=False):
        """Load the networks of `resume` (a ResumeSnapshot) and its training state, if any.
        Every tensor must match unless `partial`; then only the matching ones are copied (and the
        training state is not used). Returns (exact resume?, descriptions of what was not loaded)."""
        skipped = check_resume_fits(resume.data, self.modules, partial)
        for name in ['G', 'D', 'G_ema']:
            if resume.data.get(name) is not None:
                load_matching_tensors(resume.data[name], self.modules[name])
        # After a partial load the saved optimizer states belong to other networks: start afresh.
        state = resume.state if not skipped else None
        if state is not None:
            # A copy: ranks spawned by --gpus share the tensors of the snapshot read once, and the
            # optimizers update the tensors they load in place.
            self.state.load_state_dict(copy.deepcopy(state))
        return state is not None, skipped


def check_resume_fits(resume_data, modules, partial=False):
    """Descriptions of the tensors of G, D and G_ema in `resume_data` (a loaded snapshot) that do
    not fit `modules` (the networks being trained; meta-device ones suffice). Unless `partial`,
    any misfit raises ResumeError."""
    skipped = []
    for name in ['G', 'D', 'G_ema']:
        if resume_data.get(name) is not None:
            skipped += [f'{name}: {problem}' for problem in load_matching_tensors(resume_data[name], modules[name], dry_run=True)]
    if skipped and not partial:
        raise ResumeError(f'the snapshot does not fit the networks being trained ({len(skipped)} tensors differ, e.g. {skipped[0]}); '
            'leave out the generator/discriminator options to train the snapshot\'s own architecture, or give --resume-partial '
            'to load only the matching tensors (fine-tuning)')
    return skipped

#----------------------------------------------------------------------------

@torch.no_grad()
def load_matching_tensors(src, dst, dry_run=False):
    """Copy the parameters and buffers of `dst` that `src` holds under the same name and shape.
    Returns what did not match: tensors of dst missing from src or shaped differently, and
    tensors of src that dst lacks."""
    src_tensors = dict(misc.named_params_and_buffers(src))
    dst_tensors = dict(misc.named_params_and_buffers(dst))
    problems = [f'{name} is not in the snapshot' for name in dst_tensors if name not in src_tensors]
    problems += [f'{name} is only in the snapshot' for name in src_tensors if name not in dst_tensors]
    for name, tensor in dst_tensors.items():
        if name in src_tensors:
            if src_tensors[name].shape != tensor.shape:
                problems.append(f'{name} has shape {list(src_tensors[name].shape)} in the snapshot but {list(tensor.shape)} here')
            elif not dry_run:
                tensor.copy_(src_tensors[name].detach())
    return problems

#----------------------------------------------------------------------------
