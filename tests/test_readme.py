"""Every command in README.md, run as a new user would, in an empty folder, on a 2-core CPU.

The commands are read from the README's ```bash blocks, so a command added there runs here
too, and a program this file does not know fails the test. They run as written, except:
- downloads (CIFAR-10, STL-10, CelebA, LSUN, published snapshots) are stand-in files in the
  published formats at the paths the README names (no network here; dataset_tool.py's
  --source=cifar10 reads the stand-in tarball instead, the alternative the README gives);
- training runs a few images of a narrower generator (--kimg, --batch, --g_dict ... set),
  8 GPUs become 2 CPU processes, and the torchrun command runs as its two nodes on this
  machine with one process each;
- counts that take hours on a CPU shrink (fid50k -> fid64, --num-steps, --w-frames), and
  FID uses a tiny stand-in feature network ($STYLEFORMER_DETECTOR), except in `make demo`,
  which uses the real offline Inception-v3;
- SNAPSHOT.pkl, RUN/ and the resumed snapshot are the snapshots the training commands wrote;
- the explorer server listens on a free port, answers a page and an image, and is stopped.
`make test` is the command running this file and is not run again.
"""

import glob
import json
import os
import pathlib
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile

import PIL.Image
import pytest
import requests

from fashion_helpers import FASHION_MNIST
from snapshot_helpers import STYLEFORMER_SRC, build_case, published_pickle, snapshot_dict, write_file
from test_dataset_tool import random_images, write_cifar_tarball, write_lsun_lmdb, write_stl10
from test_metrics import write_tiny_detector
from training.dataset import ImageFolderDataset
from training.networks_Generator import Generator
from training.run_dirs import list_snapshots, training_state_path_for

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = ['make', 'dataset_tool.py', 'train.py', 'torchrun', 'generate.py', 'style_mixing.py', 'gen_video.py',
    'attention_maps.py', 'projector.py', 'calc_metrics.py', 'legacy.py', 'explorer.py']
SMALL_TRAINING = {'--kimg': '0.004', '--batch': '4', '--tick': '0.004', '--snap': '1', '--metrics': 'none',
    '--workers': '0', '--g_dict': '32,32,32', '--depth': '16'}

#----------------------------------------------------------------------------
# The README's commands.

def readme_commands():
    """Each command of README.md's bash blocks as a token list: continuations joined, comments dropped."""
    with open(os.path.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    commands = []
    for block in re.findall(r'^```bash\n(.*?)^```', text, re.S | re.M):
        for line in block.replace('\\\n', ' ').splitlines():
            tokens = shlex.split(line, comments=True)
            if tokens:
                commands.append(tokens)
    return commands


def program(tokens):
    return tokens[1] if tokens[0] == 'python' else tokens[0]


def commands_of(*programs):
    return [tokens for tokens in readme_commands() if program(tokens) in programs]


def with_options(tokens, options):
    """`tokens` with each --name=value of `options` replacing the command's own, or appended."""
    tokens = list(tokens)
    for name, value in options.items():
        spellings = {name, name.replace('_', '-'), name.replace('-', '_')}
        found = [i for i, token in enumerate(tokens) if token.split('=', 1)[0] in spellings]
        for i in found:
            tokens[i] = f'{tokens[i].split("=", 1)[0]}={value}'
        if not found:
            tokens.append(f'{name}={value}')
    return tokens


def option(tokens, name):
    values = [token.split('=', 1)[1] for token in tokens if token.startswith(name + '=')]
    return values[-1] if values else None


def test_every_readme_command_is_run_here():
    commands = readme_commands()
    assert len(commands) >= 20, f'found only {len(commands)} commands in README.md: is the ```bash parsing broken?'
    unknown = [shlex.join(tokens) for tokens in commands if program(tokens) not in PROGRAMS]
    assert not unknown, f'README.md has commands that tests/test_readme.py does not run: {unknown}'
    assert {program(tokens) for tokens in commands} == set(PROGRAMS), 'tests/test_readme.py knows programs README.md no longer has'

#----------------------------------------------------------------------------
# Running them in one workspace, as a user in a fresh folder.

class Workspace:
    def __init__(self, root):
        self.root = str(root)
        self.env = dict(os.environ, OMP_NUM_THREADS='2', PYTHONPATH=REPO_ROOT, DNNLIB_CACHE_DIR=os.path.join(self.root, 'cache'),
            STYLEFORMER_DETECTOR=write_tiny_detector(os.path.join(self.root, 'tiny-detector.pt')))
        for name in ['RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT']:
            self.env.pop(name, None)

    def path(self, *names):
        return os.path.join(self.root, *names)

    def argv(self, tokens):
        if tokens[0] == 'python':
            return [sys.executable, os.path.join(REPO_ROOT, tokens[1]), *tokens[2:]]
        if tokens[0] == 'torchrun':
            script = next(i for i, token in enumerate(tokens) if token.endswith('.py'))
            return [sys.executable, '-m', 'torch.distributed.run', *tokens[1:script], os.path.join(REPO_ROOT, tokens[script]), *tokens[script + 1:]]
        return list(tokens)

    def start(self, tokens, cwd=None, env=None):
        return subprocess.Popen(self.argv(tokens), cwd=cwd or self.root, env=env or self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)

    def run(self, tokens, cwd=None, env=None, timeout=600):
        """Run one command; fail the test with its output unless it succeeds."""
        process = self.start(tokens, cwd, env)
        output, _ = process.communicate(timeout=timeout)
        assert process.returncode == 0, f'$ {shlex.join(tokens)}\nexit code {process.returncode}\n{output[-6000:]}'
        return output


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp('new-user'))


def write_stand_in_downloads(ws):
    """The downloaded files the README's dataset commands read, in their published formats."""
    os.makedirs(ws.path('downloads', 'stl10_binary'))
    os.makedirs(ws.path('downloads', 'lsun'))
    write_cifar_tarball(ws.path('cifar-10-python.tar.gz'), [(random_images(32, (32, 32, 3)), [i % 10 for i in range(32)])])
    write_stl10(pathlib.Path(ws.path('downloads', 'stl10_binary')), 'unlabeled', random_images(8, (96, 96, 3), seed=1))
    with zipfile.ZipFile(ws.path('downloads', 'img_align_celeba.zip'), 'w') as archive:
        for index, image in enumerate(random_images(8, (218, 178, 3), seed=2)):
            path = ws.path('downloads', f'{index + 1:06d}.jpg')
            PIL.Image.fromarray(image).save(path, quality=95)
            archive.write(path, f'img_align_celeba/{index + 1:06d}.jpg')
            os.remove(path)
    write_lsun_lmdb(ws.path('downloads', 'lsun', 'church_outdoor_train_lmdb'), random_images(8, (150, 200, 3), seed=3))


@pytest.fixture(scope='module')
def datasets(workspace):
    """Runs the README's dataset commands; {dest: (resolution, count)} expected of each."""
    if not os.path.isfile(FASHION_MNIST):
        pytest.skip(f'needs Fashion-MNIST at {FASHION_MNIST} (apt-get install dataset-fashion-mnist)')
    pytest.importorskip('lmdb')
    write_stand_in_downloads(workspace)
    expected, counts = {}, {'fashion': 64, 'cifar10': 32} # Images in the stand-ins; the others have 8.
    for tokens in commands_of('dataset_tool.py'):
        if option(tokens, '--source') == 'fashion-mnist':
            tokens = with_options(tokens, {'--max-images': '64'})
        if option(tokens, '--source') == 'cifar10':
            tokens = with_options(tokens, {'--source': 'cifar-10-python.tar.gz'})
        workspace.run(tokens)
        count = next((n for name, n in counts.items() if name in option(tokens, '--dest')), 8)
        expected[option(tokens, '--dest')] = (int(option(tokens, '--width') or 32), count)
    return expected


@pytest.mark.slow
def test_readme_dataset_commands(workspace, datasets):
    assert len(datasets) == 5
    for dest, (resolution, count) in datasets.items():
        dataset = ImageFolderDataset(workspace.path(dest))
        assert (dataset.resolution, len(dataset)) == (resolution, count), dest


def run_dirs(ws):
    return sorted(glob.glob(ws.path('training-runs', '*')))


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_torchrun_nodes(ws, tokens):
    """The multi-machine command as its two nodes on this machine, one process each."""
    assert option(tokens, '--nnodes') == '2', shlex.join(tokens)
    tokens = with_options(tokens, {'--nproc-per-node': '1', '--master-addr': '127.0.0.1', '--master-port': str(free_port())})
    nodes = [ws.start([token.replace('$NODE_RANK', str(rank)) for token in tokens]) for rank in range(2)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    for rank, (node, output) in enumerate(zip(nodes, outputs)):
        assert node.returncode == 0, f'torchrun node {rank} failed:\n{output[-6000:]}'


@pytest.fixture(scope='module')
def trained(workspace, datasets):
    """Runs the README's training commands; {run folder name: its last snapshot}."""
    del datasets
    snapshots = {}
    for tokens in commands_of('train.py', 'torchrun'):
        before = run_dirs(workspace)
        if '--dry-run' in tokens:
            output = workspace.run(tokens)
            assert 'Training options:' in output and run_dirs(workspace) == before, output
            continue
        small = dict(SMALL_TRAINING)
        if option(tokens, '--gpus') not in (None, '1'):
            small['--gpus'] = '2'
        resume = option(tokens, '--resume')
        if resume is not None: # The README's example: the preset's run, at its last snapshot.
            small['--resume'] = first_run(snapshots, os.path.basename(os.path.dirname(resume)).split('-', 1)[1])
            small['--kimg'] = '0.008'
        if program(tokens) == 'torchrun':
            run_torchrun_nodes(workspace, with_options(tokens, small))
        else:
            output = workspace.run(with_options(tokens, small))
        (run_dir,) = sorted(set(run_dirs(workspace)) - set(before))
        with open(os.path.join(run_dir, 'training_options.json')) as f:
            options = json.load(f)
        assert options['num_gpus'] == (2 if '--gpus' in small or program(tokens) == 'torchrun' else 1), run_dir
        last = list_snapshots(run_dir)[-1]
        assert os.path.isfile(training_state_path_for(last)), run_dir
        if resume is not None:
            assert options['resume_pkl'] == small['--resume'] and 'Exact resume' in output, output[-3000:]
        snapshots[os.path.basename(run_dir)] = last
    return snapshots


def first_run(snapshots, desc):
    """The snapshot of the first run NNNNN-`desc` (the name may go on with -kimg..., -batch...)."""
    return next(path for name, path in snapshots.items() if re.fullmatch(rf'\d+-{re.escape(desc)}(-.*)?', name))


@pytest.mark.slow
def test_readme_training_commands(trained):
    # The published command (conditional), the preset, 2 processes, torchrun, and the resumed run.
    names = [name.split('-', 1)[1].split('-kimg')[0] for name in trained]
    assert names == ['cifar10-32x32-cond-mirror-cifar'] + ['cifar10-32x32-styleformer-cifar10'] * 4, names


@pytest.fixture(scope='module')
def snapshot(workspace, trained):
    """SNAPSHOT.pkl of the README: the unconditional preset run's snapshot."""
    shutil.copy(first_run(trained, 'cifar10-32x32-styleformer-cifar10'), workspace.path('SNAPSHOT.pkl'))
    return workspace.path('SNAPSHOT.pkl')


@pytest.mark.slow
def test_readme_generating_commands(workspace, snapshot):
    del snapshot
    PIL.Image.fromarray(random_images(1, (32, 32, 3), seed=4)[0]).save(workspace.path('target.png'))
    shrink = {'gen_video.py': {'--w-frames': '2'}, 'projector.py': {'--num-steps': '3'}}
    for tokens in commands_of('generate.py', 'style_mixing.py', 'gen_video.py', 'attention_maps.py', 'projector.py'):
        if option(tokens, '--network') == 'SNAPSHOT.pkl':
            workspace.run(with_options(tokens, shrink.get(program(tokens), {})))
    out = os.listdir(workspace.path('out'))
    expected = [f'seed{seed:04d}.png' for seed in range(100, 106)] + ['grid.png', 'seed0042-attention.png', 'projected_w.npz', 'proj00.png']
    assert set(expected) <= set(out), sorted(out)
    assert os.path.isfile(workspace.path('out', 'mixing', 'grid.png'))
    assert os.path.getsize(workspace.path('lerp.mp4')) > 0


@pytest.mark.slow
def test_readme_explorer_command(workspace, snapshot):
    del snapshot
    for tokens in commands_of('explorer.py'):
        process = workspace.start(with_options(tokens, {'--port': str(free_port())}))
        watchdog = threading.Timer(300, process.kill)  # A server that never starts must not hang the suite.
        watchdog.start()
        try:
            output, url = '', None
            for line in process.stdout:
                output += line
                url = re.search(r'open (http://\S+/)', line)
                if url:
                    break
            assert url, f'$ {shlex.join(tokens)}\nexit code {process.wait()}\n{output[-6000:]}'
            page, image = wait_for_server(url.group(1), process)
            assert 'explorer.js' in page.text and image.content.startswith(b'\x89PNG'), image.text[:1000]
        finally:
            process.terminate()
            process.communicate(timeout=60)
            watchdog.cancel()


def wait_for_server(url, process, timeout=120):
    """(page, image of seed 0) from a starting server, once it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(url, timeout=30), requests.get(url + 'api/image.png', params=dict(seed=0), timeout=60)
        except requests.ConnectionError:
            assert process.poll() is None and time.monotonic() < deadline, f'the explorer at {url} did not answer'
            time.sleep(0.2)


@pytest.mark.slow
def test_readme_metrics_commands(workspace, trained):
    run = workspace.path('RUN')
    os.makedirs(run)
    for tokens in commands_of('calc_metrics.py'):
        network = option(tokens, '--network')
        if network is not None:
            shutil.copy(first_run(trained, 'cifar10-32x32-styleformer-cifar10'), workspace.path(network))
        metrics = re.sub(r'\d+k', '64', option(tokens, '--metrics'))
        if option(tokens, '--gen-data') is not None: # Two image sets: real PNGs and a zip of "generated" ones.
            images = random_images(24, (32, 32, 3), seed=5)
            os.makedirs(workspace.path(option(tokens, '--data')))
            with zipfile.ZipFile(workspace.path(option(tokens, '--gen-data')), 'w') as archive:
                for index, image in enumerate(images):
                    PIL.Image.fromarray(image).save(workspace.path(option(tokens, '--data'), f'{index}.png'))
                    PIL.Image.fromarray(image // 2).save(workspace.path(f'{index}.png'))
                    archive.write(workspace.path(f'{index}.png'), f'{index}.png')
        output = workspace.run(with_options(tokens, {'--metrics': metrics}))
        for name in metrics.split(','):
            assert re.search(rf'^{name} -?[0-9.]+(e[-+]?[0-9]+)?  \(time', output, re.M), output[-2000:]
    assert sorted(os.listdir(run)) == ['metric-fid64.jsonl', 'metric-fid64_full.jsonl', 'metric-kid64_full.jsonl',
        'network-snapshot-000010.pkl', 'network-snapshot-000400.pkl']


@pytest.mark.slow
def test_readme_published_snapshot_commands(workspace):
    G = build_case(Generator, 'g_small')
    data = published_pickle(snapshot_dict(G), STYLEFORMER_SRC.format(marker=workspace.path('executed.txt')))
    for name in ['published.pkl', 'published-styleformer-cifar10.pkl']:
        write_file(workspace.path(name), data)
    for tokens in commands_of('generate.py', 'legacy.py'):
        if option(tokens, '--network') not in (None, 'SNAPSHOT.pkl') or program(tokens) == 'legacy.py':
            workspace.run(tokens)
    assert not os.path.exists(workspace.path('executed.txt'))
    for name in ['out/seed0000.png', 'ours.pkl', 'weights.safetensors', 'weights.json']:
        assert os.path.isfile(workspace.path(name)), name


@pytest.mark.slow
def test_readme_two_commands(workspace, datasets):
    if subprocess.run(['make', '-q', 'venv'], cwd=REPO_ROOT, capture_output=True).returncode != 0:
        pytest.skip('`make demo` needs the project .venv up to date: run the tests with `make test`')
    (demo,) = [tokens for tokens in commands_of('make') if tokens[1] == 'demo']
    data = workspace.path(next(dest for dest in datasets if 'fashion' in dest))
    env = {name: value for name, value in workspace.env.items() if name != 'STYLEFORMER_DETECTOR'}
    output = workspace.run([*demo, f'DEMO_DATA={data}', 'DEMO_KIMG=0.008', 'DEMO_METRIC=fid16',
        f'DEMO_OUTDIR={workspace.path("demo-runs")}'], cwd=REPO_ROOT, env=env)
    assert re.search(r'^fid16 [0-9.]+ .*detector: fid-helper', output, re.M), output[-3000:]
