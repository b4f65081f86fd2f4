"""Where a result came from: git commit, versions, hardware, command line, time."""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

__all__ = ["code_state", "device_name", "dirty_digest", "provenance", "repo_root"]


def repo_root() -> Path:
    """The repository root (the folder holding ``_config.yml``), or the working directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "_config.yml").exists() and (parent / "concrete_ref").is_dir():
            return parent
    return Path.cwd()


def _git(*args, keep_indent: bool = False) -> str | None:
    """git's output without surrounding whitespace; ``keep_indent``: only trailing newlines removed (a
    ``status --porcelain`` line starts with a space when the index is clean: ``" M path"``)."""
    try:
        out = subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        return out.stdout.rstrip("\n") if keep_indent else out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def code_state() -> tuple[str | None, str | None]:
    """The commit and ``git status`` of the package, read once per process, at the first call.

    Python does not reread a module it has imported, so the code that trains and evaluates in a process is
    the code of its start: a result evaluated hours later must not name the commit that HEAD has moved to
    in the meantime. The experiment command lines call it as they start (``cli.experiment_process``).
    """
    return _git("rev-parse", "HEAD"), _git("status", "--porcelain", "--", "concrete_ref", keep_indent=True)


@functools.lru_cache(maxsize=1)
def dirty_digest() -> str | None:
    """sha256 of what differs from the commit in the package, read with :func:`code_state`: the diff of the
    tracked files and the content of the untracked ones (``None`` for a clean package)."""
    import hashlib

    status = code_state()[1]
    if not status:
        return None
    h = hashlib.sha256((_git("diff", "HEAD", "--", "concrete_ref") or "").encode())
    for line in sorted(status.splitlines()):
        if line.startswith("??"):
            path = repo_root() / line[3:]
            for f in sorted(path.rglob("*") if path.is_dir() else [path]):
                if f.is_file():
                    h.update(str(f.relative_to(repo_root())).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def device_name(device=None) -> str:
    """``cpu``, or the accelerator's type, index and name (``cuda:0: NVIDIA H200``)."""
    import torch

    device = torch.device(device or "cpu")
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index}: {torch.cuda.get_device_name(index)}"
    return device.type


def provenance(command: str | None = None, device=None) -> dict:
    """A JSON-ready record of the code, software and machine (and the device the work ran on) that
    produced a result."""
    import numpy
    import torch

    commit, status = code_state()
    device = device_name(device)
    return {
        "git_commit": commit,
        "git_dirty": bool(status) if status is not None else None,
        # which files of the package differed from the commit (modified or untracked) when the run started
        "git_dirty_files": sorted(line[3:] for line in status.splitlines()) if status else [],
        "git_dirty_sha256": dirty_digest(),  # of the diff and the untracked files' contents
        "command": command or shlex.join(["python", *sys.argv]),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
