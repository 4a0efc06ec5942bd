"""Shared pytest setup: the scripts and packages are imported from the repository root."""

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


@pytest.fixture
def one_thread():
    """One intra-op thread: small networks gain nothing from more, and on a busy 2-core machine
    (the test suite) extra threads thrash (measured 15x slower with 2). Modules that want it for
    every test say `pytestmark = pytest.mark.usefixtures('one_thread')`."""
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
