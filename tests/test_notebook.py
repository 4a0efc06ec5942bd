"""docs/styleformer.ipynb runs from start to end: executed headless (nbclient) on the CPU with
tiny settings, as a user who opens it from docs/ would, with every output in a temp folder;
and its setup cell clones the repository when it runs on Colab."""

import json
import math
import os
import zipfile

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NOTEBOOK = os.path.join(REPO_ROOT, 'docs', 'styleformer.ipynb')

# Small enough for two CPU cores: one training step, a few images, FID on 10 images.
SMALL_SETTINGS = dict(KIMG='0.016', NUM_IMAGES='64', NUM_SEEDS='4', METRIC='fid10')


def _displayed_png_count(notebook):
    return sum('image/png' in output.get('data', {}) for cell in notebook.cells if cell.cell_type == 'code' for output in cell.outputs)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_notebook_runs_with_small_settings(tmp_path, monkeypatch):
    workdir = tmp_path / 'work'
    for name, value in SMALL_SETTINGS.items():
        monkeypatch.setenv(f'STYLEFORMER_NB_{name}', value)
    monkeypatch.setenv('STYLEFORMER_NB_WORKDIR', str(workdir))
    monkeypatch.setenv('STYLEFORMER_DETECTOR', 'fid-helper') # Offline: no download attempts.
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')           # The CPU path, also on a GPU machine.

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=540, startup_timeout=180, kernel_name='python3', resources={'metadata': {'path': os.path.join(REPO_ROOT, 'docs')}})
    client.execute() # Raises CellExecutionError (with the cell's output) when a cell fails.

    # The dataset: the requested number of images, 32x32 zip layout with labels.
    with zipfile.ZipFile(workdir / 'datasets' / 'fashion-mnist-32x32-64.zip') as archive:
        names = archive.namelist()
        assert sum(name.endswith('.png') for name in names) == 64
        assert len(json.loads(archive.read('dataset.json'))['labels']) == 64

    # The run: options of the tiny preset, a snapshot that loads, and the image grids.
    run_dirs = [path for path in (workdir / 'runs').iterdir() if path.is_dir()]
    assert len(run_dirs) == 1
    run_dir = run_dirs[0]
    assert json.loads((run_dir / 'training_options.json').read_text())['G_kwargs']['synthesis_kwargs']['G_dict'] == [128, 64, 32]
    snapshots = sorted(run_dir.glob('network-snapshot-*.pkl'))
    assert snapshots, f'no snapshot in {run_dir}: {sorted(p.name for p in run_dir.iterdir())}'
    import legacy
    with open(snapshots[-1], 'rb') as f:
        G_ema = legacy.load_network_pkl(f)['G_ema']
    assert (G_ema.img_resolution, G_ema.img_channels) == (32, 1)
    assert (run_dir / 'reals.png').is_file() and (run_dir / 'fakes_init.png').is_file()
    assert list(run_dir.glob('fakes[0-9]*.png'))

    # Generated images and the FID record.
    out_dir = workdir / 'out' / run_dir.name
    assert sorted(p.name for p in out_dir.glob('*.png')) == ['grid.png', 'seed0000.png', 'seed0001.png', 'seed0002.png', 'seed0003.png']
    records = [json.loads(line) for line in (run_dir / 'metric-fid10.jsonl').read_text().splitlines()]
    assert len(records) == 1 and records[0]['snapshot_pkl'] == snapshots[-1].name
    assert math.isfinite(records[0]['results']['fid10']) and records[0]['results']['fid10'] > 0

    # The grids and the generated images were shown in the notebook (3 grids + grid.png).
    assert _displayed_png_count(notebook) == 4


def _run_setup_as_on_colab(workdir):
    """The notebook's setup cell in a fresh kernel that looks like Colab: no checkout around."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    pretend_colab = nbformat.v4.new_code_cell("import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')")
    notebook.cells = [pretend_colab, notebook.cells[1]]
    client = NotebookClient(notebook, timeout=300, startup_timeout=180, kernel_name='python3', resources={'metadata': {'path': str(workdir)}})
    client.execute()
    return ''.join(output.get('text', '') for output in notebook.cells[1].outputs)


def test_colab_setup_clones_the_repository(tmp_path, monkeypatch):
    monkeypatch.setenv('STYLEFORMER_REPO_URL', REPO_ROOT) # A local path stands in for the git URL.
    output = _run_setup_as_on_colab(tmp_path)
    clone = tmp_path / 'styleformer'
    assert (clone / 'train.py').is_file() and (clone / '.git').is_dir()
    assert f'Repository: {clone}' in output, output


def test_colab_setup_without_url_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.setenv('STYLEFORMER_REPO_URL', '')
    with pytest.raises(CellExecutionError, match='Set REPO_URL above'):
        _run_setup_as_on_colab(tmp_path)
    assert list(tmp_path.iterdir()) == []
