"""Run a grid of experiments with a fixed number of single-threaded workers, resumably.

``python -m concrete_ref.experiments.grid table1 --preset book --workers 2`` runs the MNIST cells of
the paper's Table 1 (4 models x m in {1, 5, 50} x {Concrete, VIMCO/NVIL}), cheapest first.  Other
grids: ``figure4`` (structured prediction), ``nary-sp`` (its 4-/8-ary runs), ``temperature``
(Figure 4 right) and ``arity`` (App. E); several grids named together are pooled.  A cell
whose result file exists is skipped; a cell with a checkpoint is resumed; so the same command, run
again after an interruption, finishes the grid (on a fresh machine, from the committed snapshots of
unfinished long runs, :mod:`.snapshots`).  Every cell publishes its result into ``data/results/``; the grid
refuses to start from a package that differs from its commit (``--allow-dirty`` to override).

Where the cells run: ``--executor local`` (default) keeps ``--workers`` single-threaded processes busy
on this machine, or with ``--device cuda`` one process per GPU; ``--executor slurm`` submits one Slurm job
array through submitit (``--slurm-partition``, ``--slurm-time``, ``--slurm-gpus``, ...), and
``submitit-local``/``submitit-debug`` run the same jobs locally or in this process.  For any other
scheduler, ``--dry-run`` prints one command per cell.

``--slice STEPS`` trains the long runs in turns: each round takes every unfinished cell whose budget is
longer than ``STEPS`` to its next multiple of ``STEPS`` (``--stop-at``: the run pauses with its checkpoint
and resumes bit-exactly next round), the round's stop being the lowest of those multiples (a run already
further waits for the others), so that on a few cores every cell of a ``paper`` grid reaches
10^6 steps before any reaches 2 x 10^6, and the book can show all of them part-way (interim k-sweeps)
long before the first finishes.  The total work is the same; a cell is evaluated (and k-swept) in the
round in which it reaches its last step.  With ``--ksweep``, a seed-0 density cell is also swept where
each round pauses it (``evaluate ksweep --interim``: ``data/results/interim/ksweep_<run>_step<N>.json``, a
few minutes per sweep), so that its estimated test NLL at the paper's evaluation follows it round by round.
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


#: the estimators of issue 24 (binary layers), beside Concrete and NVIL, on three Table 1 models at m = 1
NEW_ESTIMATORS = ["st-gumbel", "gumbel-rao", "rebar", "relax", "arm", "disarm"]
ESTIMATOR_MODELS = ["200H-784V", "200H-200H-784V", "200H~784V"]
#: estimators that run the model several times per step: only orders the work
_ESTIMATOR_COST = {"rebar": 3.0, "relax": 3.5, "gumbel-rao": 1.5, "arm": 2.0, "disarm": 2.0}
#: k-sweeps (``--ksweep``): evaluate.py's examples, spread evenly over the test file
KSWEEP_EXAMPLES = 500


def _cell(task, model, estimator, m, dataset="mnist", arity=2, extra=()):
    args = ["--dataset", dataset, "--model", model, "--estimator", estimator, "--samples", str(m)]
    if arity != 2:
        args += ["--arity", str(arity)]
    return {"task": task, "args": args + list(extra),
            "cost": _COST[model] * m * (1 + 0.3 * (arity > 2)) * _ESTIMATOR_COST.get(estimator, 1.0)}


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
    if grid == "estimators":  # issue 24: the six newer estimators, m = 1 (Concrete and NVIL: table1-m1)
        return [_cell("density", mo, est, 1, dataset) for mo in ESTIMATOR_MODELS for est in NEW_ESTIMATORS]
    raise ValueError(f"grid must be one of {', '.join(GRIDS)}; got {grid!r}")


GRIDS = ["table1", "table1-m1", "figure4", "nary-sp", "temperature", "arity", "estimators"]


def parse_seeds(text: str) -> list[int]:
    """``--seed``: one seed or a comma-separated list (``0,1,2``), each a non-negative integer."""
    try:
        seeds = [int(s) for s in str(text).split(",")]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 or s >= 2 ** 31 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seed must be distinct integers in [0, 2^31) separated by commas; "
                                         f"got {text!r}")
    return seeds


def ksweep_command(name: str) -> list[str]:
    """The k-sweep of a finished run (:mod:`.evaluate`), on :data:`KSWEEP_EXAMPLES` test images."""
    return [sys.executable, "-m", "concrete_ref.experiments.evaluate", "ksweep", "--run", name,
            "--examples", str(KSWEEP_EXAMPLES), "--threads", "1", "--publish"]


def early_stopped(cell: dict) -> bool:
    """Whether the cell's estimator is early-stopped (:meth:`.estimators.Estimator.early_stopped`)."""
    from . import estimators

    args = cell["args"]
    return estimators.get(args[args.index("--estimator") + 1]).early_stopped()


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


def checkpoint_step(path: Path) -> int:
    """The step a run's checkpoint holds (0 when there is none)."""
    if not path.exists():
        return 0
    import torch

    return int(torch.load(path, weights_only=False, map_location="cpu")["step"])


def next_stop(step: int, steps: int, slice_steps: int | None) -> int | None:
    """With ``--slice``: the step this round trains a run to, the next multiple of ``slice_steps`` above
    ``step``, or None when that is the run's end (or beyond it, or there is no slicing)."""
    if not slice_steps:
        return None
    stop = (step // slice_steps + 1) * slice_steps
    return stop if stop < steps else None


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m concrete_ref.experiments.grid", description=__doc__)
    p.add_argument("grid", nargs="+", choices=GRIDS,
                   help="one or more grids; their cells are pooled and run cheapest first")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "omniglot"])
    from .cli import PRESETS

    p.add_argument("--preset", default="book", choices=sorted(PRESETS))
    p.add_argument("--seed", type=parse_seeds, default=[0],
                   help="seed, or seeds separated by commas (0,1,2): every cell once per seed")
    p.add_argument("--ksweep", action="store_true",
                   help="after each density cell of seed 0, its k-sweep (python -m concrete_ref.experiments."
                        f"evaluate ksweep, k = 1 to 50,000 on {KSWEEP_EXAMPLES} evenly spaced test images); "
                        "a cell counts as done when its k-sweep is written too")
    p.add_argument("--workers", type=int, default=2, help="local processes at a time (CPU)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps"],
                   help="cuda: one process per GPU (local), or one GPU per Slurm task")
    p.add_argument("--executor", default="local", choices=sorted(EXECUTORS),
                   help="local processes (default), or submitit: slurm job arrays, submitit-local, "
                        "submitit-debug (in this process)")
    p.add_argument("--slurm-partition")
    p.add_argument("--slurm-time", type=int, default=24 * 60, help="minutes per task (a killed task resumes "
                   "from its checkpoint when the grid is submitted again)")
    p.add_argument("--slurm-cpus", type=int, default=1)
    p.add_argument("--slurm-gpus", type=int, default=0)
    p.add_argument("--slurm-parallel", type=int, default=64, help="tasks of the array running at once")
    p.add_argument("--dry-run", action="store_true", help="print one command per cell (for any scheduler)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="publish results from a package that differs from its commit (recorded in provenance)")
    p.add_argument("--slice", type=int, metavar="STEPS",
                   help="train runs longer than STEPS in turns of STEPS steps, every cell once per round "
                        "(--stop-at), so that all cells progress together; the total work is the same")
    args = p.parse_args(argv)
    if args.slice is not None and args.slice < 1:
        p.error(f"argument --slice: must be an integer >= 1; got {args.slice}")
    for flag, low in (("workers", 1), ("slurm_time", 1), ("slurm_cpus", 1), ("slurm_gpus", 0), ("slurm_parallel", 1)):
        if getattr(args, flag) < low:  # before any work (a snapshot restored, a job submitted)
            p.error(f"argument --{flag.replace('_', '-')}: must be an integer >= {low}; got {getattr(args, flag)}")
    root = repo_root()
    dirty = dirty_package()
    if dirty and not args.allow_dirty and not args.dry_run:
        p.error("the package differs from its commit (" + ", ".join(dirty[:5]) + (" ..." if len(dirty) > 5 else "")
                + "): commit first, so that every published result names the code it ran, or pass --allow-dirty")
    while True:  # one round (all of the grid without --slice)
        todo, sliced = plan(args, root)
        if args.dry_run:
            for _, cmds in todo:
                print(" && ".join(" ".join(cmd[1:]) for cmd in cmds))
            if sliced:
                print("# this round of --slice; run the grid again after it for the next round")
            return
        logs = root / "runs" / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        jobs = [(name, cmds, str(root), str(logs / f"{name}.log")) for name, cmds in todo]
        codes = EXECUTORS[args.executor](jobs, args)
        if any(codes):
            raise SystemExit(1)
        if not sliced:
            return


def plan(args, root: Path) -> tuple[list, bool]:
    """This round's jobs, ``[(run name, [commands])]``, printing each cell's state, and whether any job
    pauses a run part-way (``--slice``), so that another round follows."""
    from .cli import PRESETS
    from .snapshots import PENDING, restore, snapshot_dir

    todo, sliced, trained, owed = [], False, [], set()
    pooled = [(c, seed) for g in dict.fromkeys(args.grid) for c in cells(g, args.dataset) for seed in args.seed]
    for cell, seed in sorted(pooled, key=lambda cs: (cs[0]["cost"], cs[1])):
        name = run_name(cell, args.preset, seed)
        results = root / "data" / "results"
        sweep = args.ksweep and seed == 0 and cell["task"] == "density"
        sweep_done = (results / f"ksweep_{name}.json").exists()
        ckpt = root / "runs" / name / "checkpoint.pt"
        if args.dry_run:
            resumable = ckpt.exists() or (snapshot_dir(root) / name / "checkpoint.pt").exists()
        else:  # a long run's committed snapshot, when this machine has no checkpoint of it
            resumable = restore(name, root)
        if (results / f"{name}.json").exists():
            if not sweep or sweep_done:
                print(f"done     {name}")
            elif resumable:  # trained, its k-sweep still to do (the final checkpoint is kept for it)
                todo.append((name, [ksweep_command(name)]))
                print(f"ksweep   {name}")
            else:
                print(f"done     {name} (no k-sweep: its checkpoint is gone; retrain it with --fresh to sweep)")
            continue
        stop = None
        if args.slice:  # the step this round trains to (a dry run reads the snapshot: it restores nothing)
            held = ckpt if ckpt.exists() else snapshot_dir(root) / name / "checkpoint.pt"
            at = checkpoint_step(held) if resumable else 0
            stop = next_stop(at, PRESETS[args.preset]["steps"], args.slice)
        extra = (["--resume"] if resumable else []) + ([] if stop is None else ["--stop-at", str(stop)])
        cmds = [command(cell, args.preset, seed, extra)]
        if stop is not None:  # paused this round: no evaluation, and with --ksweep an interim sweep at the pause
            sliced = True
            if sweep:
                cmds.append(ksweep_command(name) + ["--interim"])
                if early_stopped(cell):  # and the model early stopping would report, where it lies behind
                    cmds.append(ksweep_command(name) + ["--interim", "--model", "best"])
            trained.append((len(todo), f"{'resume' if resumable else 'todo':8} {name} (to step {stop:,} this round)",
                            name, at, stop))
            todo.append((name, cmds))
            continue
        if sweep:
            cmds.append(ksweep_command(name))
            owed.add(name)
        line = f"{'resume' if resumable else 'todo':8} {name}"
        if args.slice:
            trained.append((len(todo), line, name, at, PRESETS[args.preset]["steps"]))
        else:
            print(line)
        todo.append((name, cmds))
    todo, sliced = balance_round(todo, trained, sliced)
    if not args.dry_run:  # a run that finishes this round: the snapshots keep its final checkpoint for the sweep
        for name in owed & {name for name, _ in todo}:
            (root / "runs" / name).mkdir(parents=True, exist_ok=True)
            (root / "runs" / name / PENDING).write_text("k-sweep owed by the grid (--ksweep)\n")
    return todo, sliced


def balance_round(todo: list, trained: list, sliced: bool) -> tuple[list, bool]:
    """With ``--slice``: keep this round's training jobs to the lowest of their next stops, so that no run
    goes a slice further while another is behind it (a run restarted part-way, or resumed after a kill in
    the middle of a round, would otherwise run ahead). ``trained``: ``(index in todo,
    its state line, run name, step held, this run's next stop)`` for each training job; a run whose next stop
    is above the round's waits."""
    if not trained:
        return todo, sliced
    round_to = min(stop for *_, stop in trained)
    waiting = {i for i, _, _, _, stop in trained if stop > round_to}
    for i, line, name, at, stop in trained:
        print(f"waits    {name} (at step {at:,}; this round takes the others to {round_to:,})" if i in waiting else line)
    return [job for i, job in enumerate(todo) if i not in waiting], sliced or bool(waiting)


def run_job(name: str, cmds: list, cwd: str, log: str) -> int:
    """One cell: its command lines (training, then its k-sweep if any) as subprocesses one after another,
    output appended to its log; returns the first non-zero exit code, else 0."""
    t0 = time.time()
    rc = 0
    with open(log, "a") as fh:
        for cmd in cmds:
            rc = subprocess.call(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
            if rc:
                break
    print(f"{'finished' if rc == 0 else f'FAILED ({rc})'} {name} in {time.time() - t0:.0f} s", flush=True)
    return rc


def _with_device(cmds: list, device: str) -> list:
    return [[*cmd, "--device", device] for cmd in cmds]


def run_local(jobs, args) -> list:
    """``--workers`` subprocesses at a time on this machine; with ``--device cuda``, one per GPU, each
    pinned to its own (``--device cuda:<i>``)."""
    import queue

    devices = queue.Queue()
    if args.device == "cuda":
        import torch

        count = torch.cuda.device_count()
        if count == 0:
            raise SystemExit("--device cuda: this torch sees no CUDA device")
        for i in range(count):
            devices.put(f"cuda:{i}")
        workers = count
    else:
        for _ in range(args.workers):
            devices.put(args.device)
        workers = args.workers

    def work(job):
        device = devices.get()
        try:
            name, cmd, cwd, log = job
            return run_job(name, _with_device(cmd, device), cwd, log)
        finally:
            devices.put(device)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(work, jobs))


def run_submitit(jobs, args) -> list:
    """The cells through submitit (https://github.com/facebookincubator/submitit): ``slurm`` submits one
    Slurm job array (one task per cell, each with ``--slurm-cpus`` CPUs and ``--slurm-gpus`` GPUs);
    ``submitit-local`` runs them as local processes; ``submitit-debug`` in this process (for tests).
    Waits for every task and returns their exit codes; submitit's logs go to ``runs/submitit/``."""
    try:
        import submitit
    except ImportError:
        raise SystemExit("--executor " + args.executor + " needs submitit: pip install 'concrete-ref[cluster]'") from None
    folder = Path(jobs[0][2]) / "runs" / "submitit" if jobs else Path("runs/submitit")
    if args.executor == "submitit-debug":
        executor = submitit.DebugExecutor(folder=folder)
    elif args.executor == "submitit-local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=args.slurm_time)
    else:
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        params = dict(timeout_min=args.slurm_time, cpus_per_task=args.slurm_cpus, tasks_per_node=1, nodes=1,
                      slurm_array_parallelism=args.slurm_parallel)
        if args.slurm_partition:
            params["slurm_partition"] = args.slurm_partition
        if args.slurm_gpus:
            params["gpus_per_node"] = args.slurm_gpus
        executor.update_parameters(**params)
    device = "cuda" if args.executor == "slurm" and args.slurm_gpus else args.device
    names, cmds, cwds, logs = zip(*[(n, _with_device(c, device), w, lg) for n, c, w, lg in jobs]) if jobs else ([],) * 4
    if not jobs:
        return []
    submitted = executor.map_array(run_job, names, cmds, cwds, logs)
    return [job.result() for job in submitted]


EXECUTORS = {"local": run_local, "submitit-debug": run_submitit, "submitit-local": run_submitit,
             "slurm": run_submitit}


if __name__ == "__main__":
    main()
