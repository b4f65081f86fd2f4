"""Run a grid of experiments with a fixed number of single-threaded workers, resumably.

``python -m concrete_ref.experiments.grid table1 --preset book --workers 2`` runs the MNIST cells of
the paper's Table 1 (4 models x m in {1, 5, 50} x {Concrete, VIMCO/NVIL}), cheapest first.  A cell
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
#: measured single-thread ms per step on this machine kind (torch 2.13 CPU), used only for ordering
_COST = {"200H-784V": 1.0, "200H-200H-784V": 1.5, "200H~784V": 1.4, "200H~200H~784V": 2.6}


def table1_cells(dataset: str = "mnist"):
    for model in TABLE1_MODELS:
        for m in (1, 5, 50):
            for estimator in ("concrete", "nvil" if m == 1 else "vimco"):
                yield {"dataset": dataset, "model": model, "samples": m, "estimator": estimator,
                       "cost": _COST[model] * m}


def command(cell: dict, preset: str, seed: int, extra=()) -> list[str]:
    return [sys.executable, "-m", "concrete_ref.experiments.density", "--dataset", cell["dataset"],
            "--model", cell["model"], "--estimator", cell["estimator"], "--samples", str(cell["samples"]),
            "--preset", preset, "--seed", str(seed), "--threads", "1", "--no-progress", *extra]


def run_name(cell: dict, preset: str, seed: int) -> str:
    from . import density

    args = density.build_parser().parse_args(command(cell, preset, seed)[3:])
    cfg, _ = density.config_from_args(args)
    return cfg.run_name()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m concrete_ref.experiments.grid", description=__doc__)
    p.add_argument("grid", choices=["table1"])
    p.add_argument("--dataset", default="mnist", choices=["mnist", "omniglot"])
    p.add_argument("--preset", default="book")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    root = repo_root()
    cells = sorted(table1_cells(args.dataset), key=lambda c: c["cost"])
    todo = []
    for cell in cells:
        name = run_name(cell, args.preset, args.seed)
        if (root / "data" / "results" / f"{name}.json").exists():
            print(f"done     {name}")
            continue
        ckpt = root / "runs" / name / "checkpoint.pt"
        todo.append((name, command(cell, args.preset, args.seed, ["--resume"] if ckpt.exists() else [])))
        print(f"{'resume' if ckpt.exists() else 'todo':8} {name}")
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
