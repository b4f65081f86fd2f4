"""The command line shared by the experiments: presets, flags, checkpoints, results.

``density.py`` (Table 1) and ``structured.py`` (Figure 4's table) are thin wrappers around
:func:`main` with their task.  Presets (any field can be overridden by its flag):

* ``smoke``: seconds; used by the tests.
* ``book``: the budget of the results committed in ``data/results/`` (stated in the book beside every
  number; far below the paper's).
* ``paper``: the paper's protocol: Adam (0.9, 0.999), batch 64, 10^7 steps, the paper's learning
  rates and temperatures, and L_50,000 (density) or L^SP_100 (structured) on the full sets.

The learning rates and weight decays the paper selected for VIMCO/NVIL are not reported; the command
uses the Concrete values for them too (a stated choice).  Weight decay is an L2 coefficient added to
the gradient of the per-example average objective (Adam's ``weight_decay``); the paper does not say
how it scaled it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from .provenance import code_state, dirty_digest, repo_root
from .config import RESUMABLE_CHANGES, RunConfig

#: posterior (lambda1) and prior (lambda2) temperatures by arity (App. C.4 / D.5)
TEMPERATURES = {2: (2 / 3, 1 / 2), 4: (1.0, 2 / 3), 8: (2 / 3, 2 / 5)}

PRESETS = {
    "smoke": dict(steps=40, batch_size=64, eval_samples_test=10, eval_samples_train=10, eval_examples=256,
                  eval_train_examples=None,
                  valid_every=20, valid_samples=5, valid_examples=128, checkpoint_every=20),
    "book": dict(steps=20_000, batch_size=64, eval_samples_test=1000, eval_samples_train=100,
                 eval_examples=None, eval_train_examples=None, valid_every=2000, valid_samples=100, valid_examples=1000,
                 checkpoint_every=1000),
    # the book's budget with one evaluation k for every estimator (issue 21 §2, issue 24): L_5,000 on the full
    # test set and on an evenly spaced 10,000 of the training images (the test file is ordered by class;
    # the evenly spaced subset keeps every class)
    "book5k": dict(steps=20_000, batch_size=64, eval_samples_test=5000, eval_samples_train=5000,
                   eval_examples=None, eval_train_examples=10_000, valid_every=2000, valid_samples=100,
                   valid_examples=1000, checkpoint_every=1000),
    # the paper's protocol (structured: L^SP_100); the train-set bound on an evenly spaced 10,000 of the
    # 50,000 training images (L_50,000 on all of them would cost 5x the test evaluation); validation L_100 on
    # the full validation set every 100,000 steps (100 points, about 3% of the training time on the CPU)
    "paper": dict(steps=10_000_000, batch_size=64, eval_samples_test=50_000, eval_samples_train=50_000,
                  eval_examples=None, eval_train_examples=10_000, valid_every=100_000, valid_samples=100,
                  valid_examples=10_000, checkpoint_every=10_000),
}


def default_temperatures(task: str, arity: int) -> tuple:
    """(posterior lambda1, prior lambda2): App. C.4 for density estimation; lambda1 everywhere for
    structured prediction (App. D.5)."""
    post, prior = TEMPERATURES[arity]
    return (post, post) if task == "structured" else (post, prior)


def synthetic_binary_data(n_train=2000, n_valid=200, n_test=200, dim=784, seed=0) -> dict:
    """A small stand-in for binarized MNIST (noisy copies of 10 random binary prototypes), for tests."""
    rng = np.random.default_rng(seed)
    protos = rng.random((10, dim)) < 0.2

    def draw(n):
        flip = rng.random((n, dim)) < 0.05
        return (protos[rng.integers(10, size=n)] ^ flip).astype(np.uint8)

    return {"train": draw(n_train), "valid": draw(n_valid), "test": draw(n_test)}


def load_dataset(name: str) -> dict:
    if name == "synthetic":
        return synthetic_binary_data()
    from .. import data

    if name == "mnist":
        return data.load_binarized_mnist()
    if name == "omniglot":
        return data.load_omniglot()
    raise ValueError(f"dataset must be mnist, omniglot or synthetic; got {name!r}")


TASKS = {
    "density": dict(module="density", default_model="200H-784V", datasets=["mnist", "omniglot", "synthetic"]),
    "structured": dict(module="structured", default_model="392V-240H-240H-392V", datasets=["mnist", "synthetic"]),
}


def build_parser(task: str = "density", description: str | None = None) -> argparse.ArgumentParser:
    t = TASKS[task]
    p = argparse.ArgumentParser(prog=f"python -m concrete_ref.experiments.{t['module']}",
                                description=description or __doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist", choices=t["datasets"])
    p.add_argument("--model", default=t["default_model"], help="the paper's notation, e.g. '200H~200H~784V'")
    p.add_argument("--arity", type=int, default=2, choices=[2, 4, 8])
    from . import estimators

    p.add_argument("--estimator", default="concrete", choices=estimators.names(),
                   help="; ".join(f"{n}: {estimators.get(n).summary}" for n in estimators.names()))
    p.add_argument("--samples", "-m", type=int, default=1, help="m of the training bound L_m")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="smoke", choices=sorted(PRESETS))
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", "--lr", type=float, help="default: 3e-4 linear, 1e-4 non-linear")
    p.add_argument("--weight-decay", type=float, help="L2 coefficient; default 0 (density), 1e-3 (structured)")
    p.add_argument("--posterior-temperature", type=float, help="lambda1; default by arity (App. C.4)")
    p.add_argument("--prior-temperature", type=float, help="lambda2; default by arity (App. C.4)")
    p.add_argument("--eval-samples-test", type=int)
    p.add_argument("--eval-samples-train", type=int)
    p.add_argument("--eval-examples", type=int,
                   help="evaluate on N examples spread evenly over each split (every (size // N)-th one: "
                        "the MNIST test file is ordered by class, so its first N would be zeros)")
    p.add_argument("--eval-train-examples", type=int,
                   help="evaluate the train-set bound on N training examples spread evenly (paper preset: 10,000)")
    p.add_argument("--eval-chunk", type=int, default=64, help="importance samples per evaluation chunk")
    p.add_argument("--valid-every", type=int)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--train-examples", type=int, help="train on the first N training examples only")
    p.add_argument("--eval-relaxed", action="store_true", help="also evaluate the bounds on the relaxed graph")
    p.add_argument("--threads", type=int,
                   help="torch threads on the CPU (default 1: the batch-64 products are too small to split "
                        "across cores; run one process per core instead, as the grid does)")
    p.add_argument("--device", default="auto",
                   help="cpu, cuda, cuda:<i>, mps or auto (default: cuda if available, else mps, else cpu)")
    p.add_argument("--compile", default="auto", choices=["auto", "yes", "no"],
                   help="torch.compile the training step: auto measures both paths at the start and keeps the "
                        "faster (runs of at least 2,000 steps); the choice is recorded and kept on --resume. "
                        "The same flag compiles the evaluation (auto: when it has at least 4,000,000 "
                        "examples x samples; yes: always; no: never)")
    p.add_argument("--run-dir", type=Path, help="checkpoint folder (default runs/<run name>)")
    p.add_argument("--results-dir", type=Path,
                   help="where the result JSON goes (default runs/results, a scratch folder; see --publish)")
    p.add_argument("--publish", action="store_true",
                   help="write the result into data/results/ (the committed results the book reads); refused for "
                        "a run whose result file there holds another configuration")
    p.add_argument("--resume", action="store_true", help="continue the same run from its checkpoint")
    p.add_argument("--fresh", action="store_true", help="discard an existing checkpoint and start again")
    p.add_argument("--stop-at", type=int, metavar="STEP",
                   help="pause the run at step STEP (below its --steps): write its checkpoint and stop without "
                        "evaluating; --resume continues it bit-exactly (the grid's --slice trains long runs "
                        "in turns this way)")
    p.add_argument("--no-progress", action="store_true")
    return p


def config_from_args(args, task: str = "density") -> tuple[RunConfig, int | None]:
    preset = dict(PRESETS[args.preset])
    if task == "structured" and args.preset != "smoke":
        preset.update(eval_samples_test=100, eval_samples_train=100)  # the paper evaluates L^SP_100
    for key in list(preset):
        flag = getattr(args, key, None)
        if flag is not None:
            preset[key] = flag
    from .notation import parse_notation

    spec = parse_notation(args.model, args.arity)
    if spec.conditional != (task == "structured"):
        other = "structured" if spec.conditional else "density"
        raise ValueError(f"--model {args.model!r} is a {'conditional (structured prediction)' if spec.conditional else 'density'} "
                         f"model; use python -m concrete_ref.experiments.{other}")
    from . import estimators

    reason = estimators.get(args.estimator).check_samples(args.samples)
    if reason:
        raise ValueError(f"--estimator {reason}")
    if args.samples < 1:
        raise ValueError(f"--samples must be >= 1; got {args.samples}")
    if task == "structured":
        lr_default, wd_default = 3e-4, 1e-3  # the paper's Concrete values for structured prediction
    else:
        lr_default, wd_default = (1e-4 if spec.nonlinear else 3e-4), 0.0
    post, prior = default_temperatures(task, args.arity)
    if task == "structured" and args.posterior_temperature and not args.prior_temperature:
        prior = args.posterior_temperature  # one temperature for the whole graph
    lr = args.learning_rate if args.learning_rate is not None else lr_default
    wd = args.weight_decay if args.weight_decay is not None else wd_default
    cfg = RunConfig(
        task=task, dataset=args.dataset, model=args.model, arity=args.arity, estimator=args.estimator,
        samples=args.samples, seed=args.seed, learning_rate=lr, weight_decay=wd,
        posterior_temperature=args.posterior_temperature or post, prior_temperature=args.prior_temperature or prior,
        eval_chunk=args.eval_chunk, preset=args.preset, train_examples=args.train_examples,
        eval_relaxed=args.eval_relaxed, **preset,
    )
    return cfg, cfg.eval_examples


def evenly_spaced(x, n: int):
    """``n`` rows spread evenly over ``x`` (every ``len(x) // n``-th, from the first), or all of ``x`` if it
    has at most ``n`` rows. Used for evaluation subsets: the MNIST test file is sorted by class."""
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    return x[:: max(1, len(x) // n)][:n]


def split_top_bottom(x):
    """Structured prediction (Section 5.3): rows 0-13 of the 28x28 image are the context, 14-27 the target."""
    return x[..., :392], x[..., 392:]


@contextlib.contextmanager
def subnormals_flushed():
    """Flush subnormal floats (|x| < 1.2e-38 in float32) to zero inside the block, and restore the default after.

    Relaxed samples y = exp(log y) at low temperature underflow into the subnormal range once the logits
    grow, so do the gradients that flow back through them, and on x86 a matrix product that touches
    subnormals takes a slow path. Measured on the trained 8-ary ``240H~240H~784V`` m=50 run at step 7,000
    (one thread): a training step took 1.7-2.7 s without the flush and 0.32-0.34 s with it; the run itself,
    beside a second worker, went from 15.6 to 5.8 minutes per 1,000 steps. Numbers that small change no
    objective beyond float32 rounding. The setting is per thread and also governs NumPy in that thread,
    hence the restore (tests call ``main``).
    """
    import torch

    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextlib.contextmanager
def experiment_process():
    """What every experiment command line runs inside: the package's commit and ``git status`` are read
    now, before hours of work, for its provenance (:func:`provenance.code_state`), and subnormal floats are
    flushed to zero (:func:`subnormals_flushed`)."""
    code_state()
    dirty_digest()
    with subnormals_flushed():
        yield


def main(argv=None, task: str = "density", description: str | None = None) -> dict:
    parser = build_parser(task, description)
    args = parser.parse_args(argv)
    from .flags import validate_args

    validate_args(parser, args, task)
    if args.stop_at is not None:
        steps = config_from_args(args, task)[0].steps
        if not 1 <= args.stop_at < steps:
            parser.error(f"argument --stop-at: must be an integer from 1 to {steps - 1:,} (below the run's "
                         f"{steps:,} steps; without --stop-at the run trains to the end); got {args.stop_at}")
    from .train import NonFiniteError

    with experiment_process():
        try:
            return _train_and_evaluate(args, argv, task)
        except NonFiniteError as exc:  # the run stops with the step named, not a traceback; nothing written
            raise SystemExit(f"stopped: {exc}") from None


def results_folder(args) -> Path:
    """``data/results`` with ``--publish``, else ``--results-dir`` or the scratch folder ``runs/results``."""
    root = repo_root()
    if args.publish:
        return root / "data" / "results"
    return args.results_dir or root / "runs" / "results"


def check_result_slot(out: Path, cfg: RunConfig) -> None:
    """Refuse to write over a result file that holds another configuration (named in the error)."""
    if not out.exists():
        return
    try:
        saved = json.loads(out.read_text())["config"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"{out} exists and is not a readable result file ({exc}); move it away first") from None
    mine = dataclasses.asdict(cfg)
    differ = sorted(k for k in mine if k not in RESUMABLE_CHANGES and saved.get(k) != mine[k])
    if differ:
        raise SystemExit(f"{out} holds a result of another configuration ("
                         + ", ".join(f"{k}: {saved.get(k)!r} there, {mine[k]!r} here" for k in differ)
                         + "); refusing to write over it")


#: what places a run in its table: a checkpoint with these settings and another name is the same cell's run
#: with other settings
CELL_FIELDS = ("task", "dataset", "model", "arity", "estimator", "samples", "seed")


def other_settings_of_the_cell(runs: Path, cfg: RunConfig) -> list[str]:
    """For ``--resume`` without a checkpoint under the run's name: the checkpoints in ``runs`` of the same
    cell (model, estimator, m, seed) under another name, each as ``folder (setting: there, here; ...)``.
    A changed ``--steps`` (or any budget flag, temperature or preset) changes the run's name and so its
    default folder; this names the setting instead of only saying that the new folder is empty."""
    mine = dataclasses.asdict(cfg)
    model_part = "_" + cfg.model.replace("~", "n").replace("-", "_") + "_"
    found = []
    for path in sorted(runs.glob(f"{cfg.task}_{cfg.dataset}_*_s{cfg.seed}/checkpoint.pt")):
        name = path.parent.name
        if model_part not in name or f"_{cfg.estimator}_m{cfg.samples}_" not in name:
            continue
        try:
            saved = load_checkpoint(path)["config"]
        except SystemExit:  # unreadable: not this run's business here
            continue
        if any(saved.get(k) != mine[k] for k in CELL_FIELDS):
            continue
        differ = sorted(k for k in mine if k not in RESUMABLE_CHANGES and saved.get(k) != mine[k])
        if differ:
            found.append(f"{path.parent} ("
                         + "; ".join(f"{k}: {saved.get(k)!r} there, {mine[k]!r} now" for k in differ) + ")")
    return found


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold ``run_dir/lock`` for the whole run: a second process on the same run refuses, naming the first."""
    import fcntl
    import os

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "lock"
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise SystemExit(f"{run_dir} is in use by {holder}: two processes cannot train one run") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"process {os.getpid()}\n")
    fh.flush()
    try:
        yield
    finally:
        fh.close()


def load_checkpoint(checkpoint: Path) -> dict:
    """``torch.load`` of a checkpoint (onto the CPU; the trainer moves it to its device), with an error
    naming the file (and ``--fresh``) if it is unreadable."""
    import torch

    try:
        state = torch.load(checkpoint, weights_only=False, map_location="cpu")
        if not isinstance(state, dict) or "config" not in state or "step" not in state:
            raise ValueError("not a checkpoint of this package")
        return state
    except Exception as exc:  # torch raises several kinds for a truncated or corrupt file
        raise SystemExit(f"{checkpoint} is corrupt or truncated ({type(exc).__name__}: {exc}); "
                         "pass --fresh to discard it and start the run again") from None


def choose_engine(trainer, mode: str, block: int = 20, repeats: int = 5) -> dict:
    """Decide whether the run's step is compiled. ``auto`` (runs of at least 2,000 steps) compiles, then
    times eager and compiled blocks of ``block`` steps alternately, ``repeats`` times each (so that a busy
    machine slows both alike), and keeps the path with the smaller median; this happens on a saved copy of
    the run's state that is restored afterwards, so the probe leaves no trace in the run. A compile that
    fails falls back to eager. Returns the measurements, recorded in the result's ``engine``."""
    import copy
    import statistics
    import time

    if mode == "no" or (mode == "auto" and trainer.config.steps < 2000) or not trainer.estimator.compilable:
        return {"compile": mode, "compiled": False}
    saved = copy.deepcopy(trainer.state())
    info = {"compile": mode}
    try:
        def timed(fn, n):
            trainer._step_fn = fn
            t0 = time.perf_counter()
            for _ in range(n):
                trainer.train_step()
            return (time.perf_counter() - t0) / n

        t0 = time.perf_counter()
        trainer.compile_step()
        compiled = trainer._step_fn
        timed(compiled, 2)
        info["compile_seconds"] = round(time.perf_counter() - t0, 1)
        if mode == "auto":
            timed(trainer._loss, 5)
            eager_ms, compiled_ms = [], []
            for _ in range(repeats):
                eager_ms.append(1e3 * timed(trainer._loss, block))
                compiled_ms.append(1e3 * timed(compiled, block))
            info["eager_step_ms"] = round(statistics.median(eager_ms), 3)
            info["compiled_step_ms"] = round(statistics.median(compiled_ms), 3)
            info["probe"] = f"{repeats} alternating blocks of {block} steps each"
            if info["compiled_step_ms"] >= info["eager_step_ms"]:
                compiled = None
        trainer._step_fn = compiled or trainer._loss
        trainer.compiled = compiled is not None
    except Exception as exc:  # an inductor failure must not stop a run: the eager step is the reference
        info["compile_error"] = f"{type(exc).__name__}: {exc}"[:300]
        trainer._step_fn, trainer.compiled = trainer._loss, False
    trainer.load_state(saved)
    trainer.starts = saved["starts"]
    trainer.engine["compiled"] = trainer.compiled
    info["compiled"] = trainer.compiled
    trainer.engine.update(info)
    return info


def resolve_device(name: str) -> str:
    """The device a run uses: ``auto`` is cuda where available, then mps, then cpu; an unavailable device
    is an error naming it."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: this torch ({torch.__version__}) sees no CUDA device")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SystemExit(f"--device {name}: MPS is not available here")
    if kind not in ("cpu", "cuda", "mps"):
        raise SystemExit(f"--device must be cpu, cuda, cuda:<index>, mps or auto; got {name!r}")
    return name


def _train_and_evaluate(args, argv, task: str) -> dict:
    import torch

    torch.set_num_threads(args.threads or 1)
    args.device = resolve_device(args.device)
    cfg, eval_examples = config_from_args(args, task)
    root = repo_root()
    out = results_folder(args) / f"{cfg.run_name()}.json"
    check_result_slot(out, cfg)  # before hours of training, not after
    run_dir = args.run_dir or root / "runs" / cfg.run_name()
    checkpoint = run_dir / "checkpoint.pt"
    if args.resume and not checkpoint.exists():
        others = other_settings_of_the_cell(root / "runs", cfg) if args.run_dir is None else []
        if others:
            raise SystemExit(f"--resume: there is no checkpoint at {checkpoint}; this cell's run with other "
                             f"settings is at {'; '.join(others[:3])}; --resume continues the same run only "
                             "(give it that run's settings), or run without --resume to start a new run")
        raise SystemExit(f"--resume: there is no checkpoint at {checkpoint}; run without --resume to start the run")
    if checkpoint.exists() and not (args.resume or args.fresh):
        raise SystemExit(f"{checkpoint} exists: pass --resume to continue it or --fresh to start again")
    with run_lock(run_dir):
        return _run(args, argv, task, cfg, eval_examples, out, run_dir, checkpoint)


def _pause(trainer, checkpoint: Path, stop_at: int, progress: bool) -> dict:
    """``--stop-at``: train to step ``stop_at`` (at once if the checkpoint is there already), write the
    checkpoint and return ``{"paused": True, "step", "steps"}``; no evaluation, no result file."""
    cfg = trainer.config
    if trainer.step < stop_at:
        trainer.run(checkpoint, progress=progress, stop_after=stop_at)
        trainer.check_finite()
        trainer.save(checkpoint)  # at stop_at exactly, whether or not a checkpoint was due there
    print(f"paused {cfg.run_name()} at step {trainer.step:,} of {cfg.steps:,} (--stop-at {stop_at:,}); "
          "--resume continues it", file=sys.stderr)
    return {"paused": True, "step": trainer.step, "steps": cfg.steps}


def _run(args, argv, task, cfg, eval_examples, out, run_dir, checkpoint) -> dict:
    from .eval_ledger import LEDGER, EvaluationLedger
    from .train import NonFiniteError, Trainer, atomic_write_json

    data = load_dataset(args.dataset)
    train = np.asarray(data["train"][: cfg.train_examples], dtype=np.float64)
    split = split_top_bottom if task == "structured" else None
    base_rate = train.mean(0) if split is None else split_top_bottom(train.mean(0))[1]
    trainer = Trainer(cfg, data, base_rate, split=split, device=args.device)
    trainer.command = shlex.join(["python", "-m", f"concrete_ref.experiments.{TASKS[task]['module']}",
                                  *(sys.argv[1:] if argv is None else argv)])
    if args.publish:
        trainer.progress_path = out.parent / "progress" / out.name
    if checkpoint.exists() and args.resume:
        try:
            trainer.load_state(load_checkpoint(checkpoint))
        except ValueError as exc:  # a changed setting or device: a usage error, not a traceback
            raise SystemExit(f"--resume: {exc}") from None
        print(f"resumed {cfg.run_name()} at step {trainer.step} of {cfg.steps}"
              f"{' (compiled step)' if trainer.compiled else ''}", file=sys.stderr)
    elif checkpoint.exists():  # --fresh
        checkpoint.unlink()
        checkpoint.with_name("best.pt").unlink(missing_ok=True)
        checkpoint.with_name(LEDGER).unlink(missing_ok=True)
    trainer.eval_compile = args.compile  # the evaluations: compiled when large enough (fast_eval)
    if trainer.step == 0 and trainer.step < cfg.steps:
        info = choose_engine(trainer, args.compile)
        print(f"{cfg.run_name()}: {'compiled' if info['compiled'] else 'eager'} step {info}", file=sys.stderr)
    if args.stop_at is not None:
        return _pause(trainer, checkpoint, args.stop_at, progress=not args.no_progress)
    trainer.run(checkpoint, progress=not args.no_progress)
    if eval_examples:
        trainer.data = {k: evenly_spaced(v, eval_examples) for k, v in trainer.data.items()}
    if cfg.eval_train_examples:
        trainer.data["train"] = evenly_spaced(trainer.data["train"], cfg.eval_train_examples)
    # the final evaluation keeps its progress beside the checkpoint: a kill costs at most a minute of it
    trainer.ledger = EvaluationLedger(checkpoint.with_name(LEDGER), trainer.ledger_identity())
    if trainer.ledger.discarded:
        print(f"{cfg.run_name()}: the evaluation ledger {checkpoint.with_name(LEDGER)} is {trainer.ledger.discarded}; "
              "the evaluation starts again", file=sys.stderr)
    elif trainer.ledger.resumed:
        where = trainer.ledger.resumes[-1]
        print(f"{cfg.run_name()}: evaluation resumed at {where['key']}, example {where['example']:,} "
              f"(finished: {', '.join(where['finished']) or 'none'})", file=sys.stderr)
    result = trainer.results(checkpoint)
    bad = [f"{key}.{k} = {v}" for key in ("metrics", "metrics_best") for k, v in (result.get(key) or {}).items()
           if isinstance(v, float) and not np.isfinite(v)]
    if bad:  # finite parameters can still evaluate to an infinite bound: no NaN reaches a results file
        raise NonFiniteError(f"{cfg.run_name()}: the evaluation after step {trainer.step} gave {', '.join(bad)}; "
                             "no result is written")
    check_result_slot(out, cfg)
    atomic_write_json(out, result)
    trainer.ledger.remove()
    m = result["metrics"]
    print(f"{cfg.run_name()}: test NLL {m['test_nll']:.2f} (L_{cfg.eval_samples_test}), "
          f"train NLL {m['train_nll']:.2f} (L_{cfg.eval_samples_train}); "
          f"{result['train_seconds']:.0f} s training, {result['eval_seconds']:.0f} s evaluation -> {out}")
    return result
