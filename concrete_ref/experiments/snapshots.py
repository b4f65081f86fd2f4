"""Checkpoints of long runs, committed so that a run outlives the machine it trains on.

A run of the ``paper`` preset takes many sessions of a 2-core machine, and a session's machine may be
fresh (the git-ignored ``runs/`` folder gone). ``python -m concrete_ref.experiments.snapshots save``
copies the checkpoint (and the best-validation model) of every unfinished run under ``runs/`` into
``data/checkpoints/<run name>/``, which is committed; the grid restores a run from there when ``runs/``
has no checkpoint of it (:func:`restore`), and the run resumes bit-exactly (``--resume``).  A finished
run's snapshot is deleted by ``save`` (its result file is what stays), unless the grid still owes it a
k-sweep (``--ksweep`` leaves ``ksweep.pending`` beside the checkpoint: the sweep re-evaluates the final
model, so its checkpoint is kept until ``ksweep_<run>.json`` exists).  A run whose final evaluation is
under way has its ledger (``evaluation.pt``, :mod:`.eval_ledger`) snapshotted too, so that the evaluation,
hours long at the paper's protocol, resumes on another machine where it stopped.  Each snapshot is a few MB
(parameters and Adam's two moments, float32).  ``python -m concrete_ref.experiments.snapshots restore
--run <run name>`` copies one snapshot into ``runs/`` by hand (an existing checkpoint there is left as it
is), e.g. to re-evaluate the committed state of a long run (``evaluate ksweep --interim``).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from .provenance import repo_root

__all__ = ["snapshot_dir", "save", "restore", "refresh_progress"]

#: what a snapshot holds: the checkpoint, the best validation model, the k-sweep marker and the progress
#: of a final evaluation under way (:mod:`.eval_ledger`)
FILES = ("checkpoint.pt", "best.pt", "ksweep.pending", "evaluation.pt")
#: the marker the grid writes beside a checkpoint whose k-sweep is still to be run
PENDING = "ksweep.pending"


def _finished(folder: Path, results: Path, name: str) -> bool:
    """The run's result exists and no k-sweep of it is still owed."""
    owed = (folder / PENDING).exists() and not (results / f"ksweep_{name}.json").exists()
    return (results / f"{name}.json").exists() and not owed


def snapshot_dir(root: Path | None = None) -> Path:
    return (root or repo_root()) / "data" / "checkpoints"


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def save(root: Path | None = None, names=None) -> list[str]:
    """Snapshot every unfinished run in ``runs/`` (or only ``names``); drop snapshots of finished runs.
    Returns the names snapshotted."""
    root = root or repo_root()
    results = root / "data" / "results"
    saved = []
    for run in sorted((root / "runs").glob("*/checkpoint.pt")):
        name = run.parent.name
        if names and name not in names:
            continue
        target = snapshot_dir(root) / name
        if _finished(run.parent, results, name):
            shutil.rmtree(target, ignore_errors=True)
            continue
        for f in FILES:
            if (run.parent / f).exists():
                _copy_atomic(run.parent / f, target / f)
            else:  # e.g. the ledger of an evaluation since started again: the snapshot mirrors the run
                (target / f).unlink(missing_ok=True)
        refresh_progress(target / "checkpoint.pt", results / "progress" / f"{name}.json")
        saved.append(name)
    for stale in sorted(snapshot_dir(root).glob("*/")) if snapshot_dir(root).exists() else []:
        if _finished(stale, results, stale.name):
            shutil.rmtree(stale)
    return saved


def refresh_progress(checkpoint: Path, progress: Path) -> bool:
    """Rewrite a published run's progress file from its checkpoint where the file is behind it (True if
    rewritten), so that the committed curve ends where the committed snapshot does.  A run writes the file
    at each validation; a copy of it replaced by an older one (a checkout of the tree between sessions,
    while the run was paused) would otherwise stay behind until the run's next validation.  A run without
    a progress file (not published) gets none."""
    if not progress.exists():
        return False
    import json

    import torch

    from .train import atomic_write_json, progress_record

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if state["step"] <= json.loads(progress.read_text()).get("step", -1):
        return False
    atomic_write_json(progress, progress_record(state))
    return True


def restore(name: str, root: Path | None = None) -> bool:
    """Copy a run's snapshot into ``runs/<name>/`` if it has no checkpoint there; True if one now exists."""
    root = root or repo_root()
    run_dir = root / "runs" / name
    if (run_dir / "checkpoint.pt").exists():
        return True
    src = snapshot_dir(root) / name
    if not (src / "checkpoint.pt").exists():
        return False
    for f in FILES:
        if (src / f).exists():
            _copy_atomic(src / f, run_dir / f)
    return True


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m concrete_ref.experiments.snapshots", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["save", "restore"])
    p.add_argument("--run", action="append", help="only this run (repeatable); save: default every unfinished "
                                                  "run; restore: at least one is needed")
    p.add_argument("--root", type=Path, help="repository root (default: this package's)")
    args = p.parse_args(argv)
    if args.action == "save":
        for name in save(args.root, args.run):
            print(f"snapshot {name}")
        return
    if not args.run:
        p.error("restore needs --run <run name> (the folders under data/checkpoints/)")
    root = args.root or repo_root()
    for name in args.run:
        if "/" in name or name in ("", ".", ".."):
            p.error(f"argument --run: a run's name (a folder under data/checkpoints/); got {name!r}")
        had = (root / "runs" / name / "checkpoint.pt").exists()
        if not restore(name, root):
            known = sorted(d.name for d in snapshot_dir(root).glob("*/")) if snapshot_dir(root).exists() else []
            raise SystemExit(f"--run {name}: no snapshot at {snapshot_dir(root) / name} (snapshots: "
                             f"{', '.join(known) or 'none'})")
        print(f"{'kept the checkpoint already in' if had else 'restored'} runs/{name}")


if __name__ == "__main__":
    main()
