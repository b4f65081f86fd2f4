"""pytest configuration for the chapters run under nbval (``make test``).

Chapters that read binarized MNIST (found by the loader's name, or a training command, in the
notebook) need the data before their first cell runs.  When it cannot be obtained (no internet and no ``CONCRETE_DATA_MIRROR``), each
such chapter fails once, on its first cell, with the loader's message (every source tried, and how to
set a mirror), and its other cells are skipped, instead of a cascade of unrelated ``NameError``s.

The run ends with a line naming the numeric setting the chapters ran under (threads, and which SIMD kernels
numpy and PyTorch used): ``make test`` and ``make nbval-alt`` differ there, and the checked outputs must not.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

DATA_MARKERS = ("load_binarized_mnist", "load_omniglot", "load_dataset(", "density.main(", "structured.main(")
_reported: set[str] = set()
NUMERIC_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES",
               "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "GLIBC_TUNABLES")


def numeric_setting() -> str:
    """The numeric settings from the environment, numpy's SIMD targets in use and PyTorch's CPU capability."""
    settings = " ".join(f"{name}={os.environ[name]!r}" for name in NUMERIC_ENV if name in os.environ) or "defaults"
    try:
        from numpy._core._multiarray_umath import __cpu_baseline__, __cpu_dispatch__, __cpu_features__

        simd = ",".join([*__cpu_baseline__, *(t for t in __cpu_dispatch__ if __cpu_features__.get(t))])
    except ImportError:  # pragma: no cover - another numpy layout
        simd = "unknown"
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    except ImportError:  # pragma: no cover - torch is optional for the core package
        capability = "no torch"
    return f"{settings}; numpy SIMD {simd}; torch CPU capability {capability}"


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"chapters ran under: {numeric_setting()}")


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
