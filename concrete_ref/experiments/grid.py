"""Run a grid of experiments with a fixed number of single-threaded workers, resumably.

``python -m concrete_ref.experiments.grid table1 --preset book --workers 2`` runs the MNIST cells of
the paper's Table 1 (4 models x m in {1, 5, 50} x {Concrete, VIMCO/NVIL}), cheapest first.  Other
grids: ``figure4`` (structured prediction), ``nary-sp`` (its 4-/8-ary runs), ``temperature``
(Figure 4 right) and ``arity`` (App. E); several grids named together are pooled.  A cell
whose result file exists is skipped; a cell with a checkpoint is resumed; so the same command, run
again after an interruption, finishes the grid.  ``--dry-run`` prints the commands.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .provenance import repo_root

TABLE1_MODELS = ["200H-784V", "200H-200H-784V", "200H~784V", "200H~200H~784V"]
SP_MODELS = ["392V-240H-240H-392V", "392V-240H-240H-240H-392V"]
ARITY_MODELS = ["240H~784V", "240H~240H~784V"]
#: Figure 4 (right): training temperatures for the binary 392V-240H-240H-240H-392V model on L^SP_1
SWEEP_TEMPERATURES = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
#: relative single-thread cost per step (m = 1) on this machine kind, used only to order the work
_COST = {"200H-784V": 1.0, "200H-200H-784V": 1.5, "200H~784V": 1.4, "200H~200H~784V": 2.6,
         "392V-240H-240H-392V": 1.2, "392V-240H-240H-240H-392V": 1.5, "240H~784V": 1.5, "240H~240H~784V": 2.8}


def _cell(task, model, estimator, m, dataset="mnist", arity=2, extra=()):
    args = ["--dataset", dataset, "--model", model, "--estimator", estimator, "--samples", str(m)]
    if arity != 2:
        args += ["--arity", str(arity)]
    return {"task": task, "args": args + list(extra), "cost": _COST[model] * m * (1 + 0.3 * (arity > 2))}


def cells(grid: str, dataset: str = "mnist"):
    """The cells of a named grid, each ``{"task", "args", "cost"}``."""
    if grid == "table1":  # Table 1: 4 models x m x {Concrete, VIMCO/NVIL}
        return [_cell("density", mo, est, m, dataset) for mo in TABLE1_MODELS for m in (1, 5, 50)
                for est in ("concrete", "nvil" if m == 1 else "vimco")]
    if grid == "table1-m1":  # the m = 1 column of Table 1 (Concrete and NVIL): the paper-protocol runs
        return [_cell("density", mo, est, 1, dataset) for mo in TABLE1_MODELS for est in ("concrete", "nvil")]
    if grid == "figure4":  # the table in Figure 4: 2 models x m x {Concrete, VIMCO/NVIL}
        # the Concrete L^SP_1 cell of the deeper model is also the default-temperature (2/3) point of
        # Figure 4 right, so it is evaluated on the relaxed graph as well
        return [_cell("structured", mo, est, m,
                      extra=["--eval-relaxed"] if (mo, est, m) == (SP_MODELS[1], "concrete", 1) else ())
                for mo in SP_MODELS for m in (1, 5, 50) for est in ("concrete", "nvil" if m == 1 else "vimco")]
    if grid == "nary-sp":  # Section 5.3's n-ary runs: 4-ary and 8-ary, L^SP_1, Concrete
        return [_cell("structured", SP_MODELS[1], "concrete", 1, arity=a) for a in (4, 8)]
    if grid == "temperature":  # Figure 4 right: L^SP_1, binary, one temperature for the whole graph
        return [_cell("structured", SP_MODELS[1], "concrete", 1,
                      extra=["--posterior-temperature", repr(t), "--eval-relaxed"]) for t in SWEEP_TEMPERATURES]
    if grid == "arity":  # App. E: arity x 2 models x m, Concrete only
        return [_cell("density", mo, "concrete", m, dataset, arity=a) for a in (2, 4, 8) for mo in ARITY_MODELS
                for m in (1, 5, 50)]
    raise ValueError(f"grid must be one of {', '.join(GRIDS)}; got {grid!r}")


GRIDS = ["table1", "table1-m1", "figure4", "nary-sp", "temperature", "arity"]


def command(cell: dict, preset: str, seed: int, extra=()) -> list[str]:
    """One cell's command line: single-threaded, its result published into data/results/."""
    return [sys.executable, "-m", f"concrete_ref.experiments.{cell['task']}", *cell["args"],
            "--preset", preset, "--seed", str(seed), "--threads", "1", "--no-progress", "--publish", *extra]


def dirty_package() -> list[str]:
    """Files of the package that differ from the commit (a committed result must name the code it ran)."""
    from .provenance import code_state

    status = code_state()[1]
    return sorted(line[3:] for line in status.splitlines()) if status else []


def run_name(cell: dict, preset: str, seed: int) -> str:
    from . import cli

    args = cli.build_parser(cell["task"]).parse_args(command(cell, preset, seed)[3:])
    cfg, _ = cli.config_from_args(args, cell["task"])
    return cfg.run_name()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m concrete_ref.experiments.grid", description=__doc__)
    p.add_argument("grid", nargs="+", choices=GRIDS,
                   help="one or more grids; their cells are pooled and run cheapest first")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "omniglot"])
    p.add_argument("--preset", default="book")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--dry-run", action="store_true", help="print one command per cell (for any scheduler)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="publish results from a package that differs from its commit (recorded in provenance)")
    args = p.parse_args(argv)
    root = repo_root()
    dirty = dirty_package()
    if dirty and not args.allow_dirty and not args.dry_run:
        p.error("the package differs from its commit (" + ", ".join(dirty[:5]) + (" ..." if len(dirty) > 5 else "")
                + "): commit first, so that every published result names the code it ran, or pass --allow-dirty")
    todo = []
    pooled = [c for g in dict.fromkeys(args.grid) for c in cells(g, args.dataset)]
    for cell in sorted(pooled, key=lambda c: c["cost"]):
        name = run_name(cell, args.preset, args.seed)
        if (root / "data" / "results" / f"{name}.json").exists():
            print(f"done     {name}")
            continue
        from .snapshots import restore, snapshot_dir

        ckpt = root / "runs" / name / "checkpoint.pt"
        if args.dry_run:
            resumable = ckpt.exists() or (snapshot_dir(root) / name / "checkpoint.pt").exists()
        else:  # a long run's committed snapshot, when this machine has no checkpoint of it
            resumable = restore(name, root)
        todo.append((name, command(cell, args.preset, args.seed, ["--resume"] if resumable else [])))
        print(f"{'resume' if resumable else 'todo':8} {name}")
    if args.dry_run:
        for _, cmd in todo:
            print(" ".join(cmd[1:]))
        return
    logs = root / "runs" / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def work(item):
        name, cmd = item
        t0 = time.time()
        with open(logs / f"{name}.log", "a") as log:
            rc = subprocess.call(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT)
        print(f"{'finished' if rc == 0 else f'FAILED ({rc})'} {name} in {time.time() - t0:.0f} s", flush=True)
        return rc

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        codes = list(pool.map(work, todo))
    if any(codes):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
