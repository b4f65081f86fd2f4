"""Fixtures shared by the test files."""

import pytest


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (Monte Carlo gradient tests: fast and the same on every machine),
    the process's thread count restored afterwards."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
