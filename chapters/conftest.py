"""pytest configuration for the chapters run under nbval (``make test``).

Chapters that read binarized MNIST (found by the loader's name, or a training command, in the
notebook) need the data before their first cell runs.  When it cannot be obtained (no internet and no ``CONCRETE_DATA_MIRROR``), each
such chapter fails once, on its first cell, with the loader's message (every source tried, and how to
set a mirror), and its other cells are skipped, instead of a cascade of unrelated ``NameError``s.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

DATA_MARKERS = ("load_binarized_mnist", "load_omniglot", "load_dataset(", "density.main(", "structured.main(")
_reported: set[str] = set()


@functools.cache
def needs_data(path: str) -> bool:
    return any(marker in Path(path).read_text(encoding="utf-8") for marker in DATA_MARKERS)


@functools.cache
def data_problem() -> str | None:
    """None when binarized MNIST loads (from the cache, the mirror or the public sources), else why not."""
    from concrete_ref import data

    try:
        data.load_binarized_mnist()
    except data.DataUnavailableError as exc:
        return str(exc)
    return None


def pytest_runtest_setup(item):
    path = str(item.fspath)
    if not path.endswith(".ipynb") or not needs_data(path):
        return
    problem = data_problem()
    if problem is None:
        return
    if path in _reported:
        pytest.skip(f"binarized MNIST is unavailable (reported on the first cell of {Path(path).name})")
    _reported.add(path)
    pytest.fail(f"{Path(path).name} needs binarized MNIST, which could not be obtained.\n{problem}", pytrace=False)
