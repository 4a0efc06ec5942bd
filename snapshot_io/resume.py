"""Reading a snapshot to resume training from: the networks through the safe loader and the
training state beside them, once, before train.py creates anything on disk."""

import os

from snapshot_io import safe_load
from training.run_dirs import training_state_path_for
from training.snapshot import ResumeError, ResumeSnapshot, load_training_state


def read_resume_snapshot(path):
    """The snapshot at `path` (path, URL or model name) with its training state. Raises
    safe_load.LoadError for the snapshot, ResumeError for a training state that cannot be read."""
    data = safe_load.open_snapshot(path)
    try:
        state = load_training_state(path) if os.path.isfile(path) else None
    except Exception as err:  # torch.load fails in many ways on a damaged file. pylint: disable=broad-exception-caught
        raise ResumeError(f'cannot read {training_state_path_for(path)} ({err}); '
            'move it away to resume with fresh optimizers and counters') from err
    return ResumeSnapshot(path, data, state)
