"""benchmarks/bench_quality.py: what it checks before training and how it reads a run (the
training itself is train.py's, tested elsewhere; the benchmark was run end to end by hand)."""

import json
import os
import sys

import numpy as np
from click.testing import CliRunner

from test_metrics import write_image_folder

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import bench_quality  # pylint: disable=wrong-import-position


def run(*args):
    result = CliRunner().invoke(bench_quality.main, list(args))
    return result.exit_code, result.output


def test_bad_input_is_explained_before_training(tmp_path):
    data = write_image_folder(tmp_path / 'data', np.zeros([4, 32, 32], dtype=np.uint8))
    code, out = run(f'--data={tmp_path / "missing.zip"}', '--', '--cfg=tiny')
    assert code == 2 and 'missing.zip does not exist' in out and 'dataset_tool.py' in out
    code, out = run(f'--data={data}', '--', '--cfg=tiny', '--kimg=5')
    assert code == 2 and '--kimg is set by bench_quality.py' in out
    code, out = run(f'--data={data}', '--seeds=0,x', '--', '--cfg=tiny')
    assert code == 2 and '--seeds takes comma-separated integers' in out
    code, out = run(f'--data={data}', '--', '--cfg=tiny', '--gamma=-1')  # train.py --dry-run refuses it.
    assert code == 2 and 'train.py rejects the arguments' in out and '--gamma' in out


def test_training_progress_reads_the_last_tick(tmp_path):
    lines = [{'Progress/kimg': {'mean': kimg}, 'Timing/total_sec': {'mean': sec}} for kimg, sec in [(0.016, 70.0), (4.5, 130.5)]]
    (tmp_path / 'stats.jsonl').write_text(''.join(json.dumps(line) + '\n' for line in lines))
    assert bench_quality.training_progress(str(tmp_path)) == (4.5, 130.5)
