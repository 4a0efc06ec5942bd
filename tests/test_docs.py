"""The docs match the code: docs/*-help.txt equal the tools' current --help,
environment.yml pins what requirements.txt pins, and docs/architecture.md names the modules
our snapshots' embedded sources import that the published code does not have."""

import ast
import difflib
import importlib.util
import os
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO_ROOT, 'docs')
REGENERATE = 'run `python docs/gen_cli_help.py` and commit docs/*-help.txt'

#----------------------------------------------------------------------------
# CLI help files.

def _help_files(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith('-help.txt'))


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


@pytest.mark.slow
def test_cli_help_files_match_current_help(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(DOCS, 'gen_cli_help.py'), f'--dest={tmp_path}'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f'docs/gen_cli_help.py failed:\n{result.stdout}\n{result.stderr}'

    current, committed = _help_files(tmp_path), _help_files(DOCS)
    assert 'train-help.txt' in current and 'generate-help.txt' in current
    assert committed == current, f'docs/ has help files {committed}, the tools give {current}: {REGENERATE}'
    for name in current:
        expected, actual = _read(tmp_path / name), _read(os.path.join(DOCS, name))
        if actual != expected:
            diff = ''.join(list(difflib.unified_diff(actual.splitlines(True), expected.splitlines(True), f'docs/{name}', '--help now'))[:60])
            pytest.fail(f'docs/{name} differs from the tool\'s --help: {REGENERATE}\n{diff}')

#----------------------------------------------------------------------------
# environment.yml against requirements.txt.

def _environment_yml():
    """(python version, pip requirement lines) of environment.yml."""
    python_version, pip_lines, in_pip = None, [], False
    for line in _read(os.path.join(REPO_ROOT, 'environment.yml')).splitlines():
        match = re.match(r'^\s*-\s*python\s*=\s*([\d.]+)', line)
        if match:
            python_version = match.group(1)
        if re.match(r'^\s*-\s*pip:\s*$', line):
            in_pip = True
            continue
        if in_pip:
            item = re.match(r'^\s+-\s*(\S.*?)\s*$', line)
            if item:
                pip_lines.append(item.group(1))
            elif line.strip() and not line.lstrip().startswith('#'):
                in_pip = False
    assert python_version is not None, 'environment.yml has no `- python=X.Y` dependency'
    assert pip_lines, 'environment.yml has no `- pip:` list'
    return python_version, pip_lines


def _requirement_lines(name):
    lines = [line.split('#', 1)[0].strip() for line in _read(os.path.join(REPO_ROOT, name)).splitlines()]
    return [line for line in lines if line]


def _pins(lines, python_version):
    """{package: '==version'} of the lines that apply to this Python version."""
    pins = {}
    for line in lines:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({'python_version': python_version}):
            continue
        assert str(requirement.specifier).startswith('=='), f'{line!r} is not pinned to one version'
        pins[canonicalize_name(requirement.name)] = str(requirement.specifier)
    return pins


def test_environment_yml_pins_equal_requirements():
    python_version, pip_lines = _environment_yml()
    env_pins = _pins(pip_lines, python_version)
    req_pins = _pins(_requirement_lines('requirements.txt'), python_version)
    differences = {name: (req_pins.get(name), env_pins.get(name)) for name in sorted(set(env_pins) | set(req_pins)) if req_pins.get(name) != env_pins.get(name)}
    assert not differences, f'environment.yml (python {python_version}) and requirements.txt disagree, as {{package: (requirements.txt, environment.yml)}}: {differences}'


def test_environment_yml_mentions_no_deps_packages():
    _python_version, pip_lines = _environment_yml()
    text = _read(os.path.join(REPO_ROOT, 'environment.yml'))
    listed = {canonicalize_name(Requirement(line).name) for line in pip_lines}
    for line in _requirement_lines('requirements-nodeps.txt'):
        requirement = Requirement(line)
        pin = f'{requirement.name}{requirement.specifier}'
        assert pin in text, f'environment.yml should say how to install {pin} (pip install --no-deps {pin}), as requirements-nodeps.txt pins it'
        assert canonicalize_name(requirement.name) not in listed, f'{requirement.name} is in environment.yml\'s pip list, which would install its dependencies; it belongs in a --no-deps step'

#----------------------------------------------------------------------------
# docs/architecture.md on what published code needs to unpickle our snapshots.

OUR_PACKAGES = ('dnnlib', 'torch_utils', 'training', 'metrics', 'snapshot_io', 'tools', 'explorer_app')

# Modules of these packages in the published StyleGAN2-ADA PyTorch and Styleformer code.
PUBLISHED_MODULES = {'dnnlib', 'dnnlib.util', 'torch_utils', 'torch_utils.custom_ops', 'torch_utils.misc',
    'torch_utils.persistence', 'torch_utils.training_stats', 'torch_utils.ops', 'torch_utils.ops.bias_act',
    'torch_utils.ops.conv2d_gradfix', 'torch_utils.ops.conv2d_resample', 'torch_utils.ops.fma',
    'torch_utils.ops.grid_sample_gradfix', 'torch_utils.ops.upfirdn2d', 'training', 'training.augment',
    'training.dataset', 'training.loss', 'training.networks', 'training.networks_Discriminator',
    'training.networks_Generator', 'training.training_loop'}


def _embedded_modules():
    """Paths of the modules whose source a snapshot embeds: those defining persistent classes."""
    paths = []
    for package in ['torch_utils', 'training']:
        for folder, _dirs, files in os.walk(os.path.join(REPO_ROOT, package)):
            paths += [os.path.join(folder, name) for name in files if name.endswith('.py') and '@persistence.persistent_class' in _read(os.path.join(folder, name))]
    return sorted(paths)


def _imported_modules(path):
    """Absolute imports of our packages in a module's source, as module names."""
    imported = set()
    for node in ast.walk(ast.parse(_read(path))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:  # `from training import precision` imports a module, `from training.layers import X` a name.
                submodule = f'{node.module}.{alias.name}'
                imported.add(submodule if _is_module(submodule) else node.module)
    return {name for name in imported if name.split('.')[0] in OUR_PACKAGES}


def _is_module(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_architecture_doc_names_the_modules_published_code_lacks():
    paths = _embedded_modules()
    assert os.path.join(REPO_ROOT, 'training', 'networks_Generator.py') in paths and os.path.join(REPO_ROOT, 'training', 'augment.py') in paths
    lacking = sorted(set().union(*map(_imported_modules, paths)) - PUBLISHED_MODULES)
    match = re.search(r'does not have: ((?:`[\w.]+`(?:, )?)+)\.', _read(os.path.join(DOCS, 'architecture.md')))
    assert match, 'docs/architecture.md no longer lists the modules our embedded sources import that published code does not have'
    assert re.findall(r'`([\w.]+)`', match.group(1)) == lacking, f'docs/architecture.md should list {lacking}'
