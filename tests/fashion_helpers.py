"""Real training data for the tests: a small zip of Fashion-MNIST (Debian's package) made by
dataset_tool.py, as a user would make it."""

import os

import pytest
from click.testing import CliRunner

FASHION_MNIST = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz'


def make_fashion_zip(tmp_path_factory, max_images):
    """The first `max_images` training images at 32x32 in a zip; skips without the data."""
    if not os.path.isfile(FASHION_MNIST):
        pytest.skip(f'needs Fashion-MNIST at {FASHION_MNIST} (apt-get install dataset-fashion-mnist)')
    import dataset_tool
    dest = str(tmp_path_factory.mktemp('data') / 'fashion32.zip')
    result = CliRunner().invoke(dataset_tool.main, ['--source', FASHION_MNIST, '--dest', dest, '--max-images', str(max_images)])
    assert result.exit_code == 0, result.output
    return dest
