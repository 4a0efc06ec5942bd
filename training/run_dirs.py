"""The names of run directories and snapshot files, and what is done with them: numbering a
new run, finding the newest snapshot to resume from, pruning old ones so that long runs do
not fill the disk. Every other module asks this one for these names.

An output directory (train.py's --outdir) holds numbered runs, `00003-<desc>/`; only
directories count as runs. Each run holds snapshots `network-snapshot-{kimg:06d}.pkl` with
`training-state-{kimg:06d}.pt` beside it (their contents: training/snapshot.py). A snapshot
is marked to be kept forever by an empty file beside it named like it plus `.keep`:
`touch network-snapshot-000400.pkl.keep`.
"""

import os
import re

#----------------------------------------------------------------------------
# Names.

_RUN_DIR_RE = re.compile(r'^(\d+)-')
_SNAPSHOT_RE = re.compile(r'^network-snapshot-(\d+)\.pkl$')  # Not the hidden temporary files.
KEEP_SUFFIX = '.keep'

def network_snapshot_path(run_dir, kimg):
    return os.path.join(run_dir, f'network-snapshot-{kimg:06d}.pkl')

def snapshot_kimg(pkl_path):
    """The kimg in a network snapshot's file name, or None when it is not named like one."""
    match = _SNAPSHOT_RE.match(os.path.basename(pkl_path))
    return int(match.group(1)) if match else None

def training_state_path_for(pkl_path):
    """The training-state file that belongs beside a network snapshot, or None when the
    file is not named like a snapshot (e.g. a downloaded model)."""
    directory, name = os.path.split(pkl_path)
    match = _SNAPSHOT_RE.match(name)
    return os.path.join(directory, f'training-state-{match.group(1)}.pt') if match else None

#----------------------------------------------------------------------------
# Runs.

class NoSnapshotError(FileNotFoundError):
    """No finished snapshot to resume from."""

def _numbered_runs(outdir):
    """(number, path) of the run directories in `outdir`; plain files named like runs are not runs."""
    if not os.path.isdir(outdir):
        return []
    runs = []
    for name in os.listdir(outdir):
        match = _RUN_DIR_RE.match(name)
        if match and os.path.isdir(os.path.join(outdir, name)):
            runs.append((int(match.group(1)), os.path.join(outdir, name)))
    return runs

def list_runs(outdir):
    """Run directories in `outdir`, newest (highest number) first."""
    return [path for _number, path in sorted(_numbered_runs(outdir), reverse=True)]

def next_run_dir(outdir, desc):
    """The directory of a new run in `outdir`, numbered one above the highest run there.
    Under several processes only rank 0 calls this (see train.py): another machine may see
    another listing."""
    number = max((number for number, _path in _numbered_runs(outdir)), default=-1) + 1
    return os.path.join(outdir, f'{number:05d}-{desc}')

def list_snapshots(run_dir):
    """Network snapshot paths of a run directory, oldest (lowest kimg) first."""
    found = []
    for name in os.listdir(run_dir):
        kimg = snapshot_kimg(name)
        if kimg is not None:
            found.append((kimg, os.path.join(run_dir, name)))
    return [path for _kimg, path in sorted(found)]

def find_latest_snapshot(outdir):
    """The newest snapshot of the newest run in `outdir` that has one. A newer run without
    snapshots (stopped before its first one) is passed over, so that resuming twice after
    such a failure still finds the snapshot."""
    runs = list_runs(outdir)
    for run_dir in runs:
        snapshots = list_snapshots(run_dir)
        if snapshots:
            return snapshots[-1]
    if runs:
        where = f"no run directory in '{outdir}' holds a network-snapshot-*.pkl yet"
    else:
        where = f"'{outdir}' holds no run directories (NNNNN-<name>)"
    raise NoSnapshotError(f'{where}; give --resume=PATH of a snapshot, or train without --resume')

#----------------------------------------------------------------------------
# Pruning.

def is_marked_to_keep(pkl_path):
    return os.path.exists(pkl_path + KEEP_SUFFIX)

def prune_snapshots(run_dir, keep, protect=()):
    """Delete all but the newest `keep` snapshots of `run_dir` (each .pkl with its training
    state), sparing those marked with a .keep file and the paths in `protect`. The newest
    snapshot, the one a resume needs, always stays. Returns the deleted .pkl paths."""
    if keep < 1:
        raise ValueError(f'keep must be at least 1, got {keep}')
    protected = {os.path.abspath(path) for path in protect if path}
    candidates = [path for path in list_snapshots(run_dir) if not is_marked_to_keep(path)]
    deleted = []
    for pkl_path in candidates[:-keep]:
        if os.path.abspath(pkl_path) in protected:
            continue
        # The .pkl first: a .pkl on disk must always have its state beside it.
        os.remove(pkl_path)
        state_path = training_state_path_for(pkl_path)
        if os.path.exists(state_path):
            os.remove(state_path)
        deleted.append(pkl_path)
    return deleted

#----------------------------------------------------------------------------
