"""Re-evaluate a trained run: how the importance-sampled estimate L_k moves as k grows (to 50,000).

    python -m concrete_ref.experiments.evaluate ksweep --run <run name> --examples 200

loads ``runs/<run name>/checkpoint.pt``, evaluates :math:`\\mathcal{L}_k` on the discrete graph for
k = 1, 10, 100, 1000, 5000, 10000, 50000 on ``--examples`` test images spread evenly over the test file
(which is ordered by class), by block averages of one stream of 50,000 samples per image (see
:func:`objectives.importance_bound_curve`), and writes ``ksweep_<run name>.json`` with provenance into the
scratch folder ``runs/results/`` (or ``--results-dir``); only ``--publish``, which the grid passes, writes
into ``data/results/``.  A sweep file of other settings (another run's config, ``--examples`` or
``--seed``) is never written over: refused before the evaluation, naming them.  The paper reports L_50,000.

A sweep needs a finished run: the final sweep of a run is ``ksweep_<run name>.json``, and a checkpoint
part-way through a long run is not that run's final model.  ``--interim`` sweeps an unfinished run (a
``paper``-protocol run, restored from its committed snapshot with ``python -m
concrete_ref.experiments.snapshots restore --run <run name>``) at the step its checkpoint holds: the file
is ``ksweep_<run name>_step<N>.json``, in ``data/results/interim/`` with ``--publish``, and it adds
:math:`\\mathcal{L}_{100}` on the full test set, so that the run's :math:`\\mathcal{L}_{50{,}000}` on the
full test set so far can be estimated as that plus the sweep's :math:`\\mathcal{L}_{50{,}000} -
\\mathcal{L}_{100}` (:func:`.claims.interim_estimate`).  ``--interim --model best`` sweeps instead the best
validation model so far (``best.pt`` beside the checkpoint): the model early stopping would report, which
for the score-function estimators (which the paper early-stopped) can lie far behind the checkpoint.
Its parameters are the run's at the step it was kept, so its file is that step's,
``ksweep_<run name>_step<best step>.json``, and a sweep already filed there is kept (``best.pt`` at a step
never changes).  Every sweep also records the paired standard error
of :math:`\\mathcal{L}_k - \\mathcal{L}_{100}` over its images (``stderr_minus_k100``), and that of
:math:`\\mathcal{L}_k - \\mathcal{L}_1` (``stderr_minus_k1``, the error of :func:`.claims.posterior_gap`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from .cli import evenly_spaced, experiment_process, load_dataset, split_top_bottom
from .clocks import Stopwatch
from .config import RunConfig
from .provenance import provenance, repo_root
from .results import INTERIM_DIR  # where --interim --publish writes, read by results.load_interim_sweeps

#: the k of the sweep: every one divides the largest (block averages of one stream); 5,000 is the k of the
#: book5k preset, so its evaluation-k part of the gap is measured, not interpolated
KS = (1, 10, 100, 1000, 5000, 10_000, 50_000)
#: the k of the in-loop validation curves of the long runs, and of an interim sweep's full-test bound
INTERIM_FULL_K = 100
#: ``--model``: the model an interim sweep evaluates (``best``: the best validation model so far, ``best.pt``)
MODELS = ("last", "best")


def load_trainer(run: str, device: str = "cpu"):
    from .cli import load_checkpoint
    from .train import Trainer

    path = repo_root() / "runs" / run / "checkpoint.pt"
    if not path.exists():
        raise SystemExit(f"--run {run}: there is no checkpoint at {path} (a k-sweep re-evaluates a trained run's "
                         "final checkpoint)")
    state = load_checkpoint(path)  # a corrupt file: an error naming it
    cfg = RunConfig(**state["config"])
    data = load_dataset(cfg.dataset)
    train = np.asarray(data["train"][: cfg.train_examples], dtype=np.float64)
    split = split_top_bottom if cfg.task == "structured" else None
    trainer = Trainer(cfg, data, train.mean(0) if split is None else split(train.mean(0))[1], split=split,
                      device=device)
    trainer.load_state(state, evaluation_only=True)  # any device: the sweep draws from its own generator
    return trainer


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m concrete_ref.experiments.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["ksweep"])
    p.add_argument("--run", required=True, help="run name (folder under runs/)")
    p.add_argument("--examples", type=int, default=200)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch threads on the CPU (default 1)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:<i>, mps or auto")
    p.add_argument("--compile", default="auto", choices=["auto", "yes", "no"],
                   help="torch.compile the log weights (auto: when examples x 50,000 is at least 4,000,000)")
    p.add_argument("--results-dir", type=Path, help="where ksweep_<run>.json goes (default runs/results, scratch)")
    p.add_argument("--publish", action="store_true", help="write into data/results/ (the committed results)")
    p.add_argument("--interim", action="store_true",
                   help="sweep an unfinished run at its checkpoint's step (ksweep_<run>_step<N>.json, in "
                        "data/results/interim/ with --publish), adding L_100 on the full test set")
    p.add_argument("--model", default="last", choices=MODELS,
                   help="with --interim: the checkpoint's model (last) or the best validation model so far "
                        "(best.pt, the model early stopping reports), swept at the step it was kept")
    args = p.parse_args(argv)
    validate(p, args)
    with experiment_process():
        return _ksweep(args, argv)


def validate(parser, args) -> None:
    """Usage errors (exit 2) before any work, as for the training command lines (:mod:`.flags`)."""
    import os

    from .flags import INT_MAX

    run = args.run
    if not run or run in (".", "..") or "/" in run or os.sep in run or not run.isprintable() or not run.isascii():
        parser.error(f"argument --run: a run's name (a folder under runs/, e.g. "
                     f"density_mnist_200H_784V_concrete_m1_book_s0); got {run!r}")
    for flag, value, low in (("--examples", args.examples, 1), ("--batch", args.batch, 1), ("--seed", args.seed, 0)):
        if not low <= value <= INT_MAX:
            parser.error(f"argument {flag}: must be an integer from {low} to {INT_MAX}; got {value}")
    cpus = os.cpu_count() or 1
    if args.threads is not None and not 1 <= args.threads <= cpus:
        parser.error(f"argument --threads: must be an integer from 1 to {cpus} (the CPUs of this machine); "
                     f"got {args.threads}")
    if args.model != "last" and not args.interim:
        parser.error("argument --model: only with --interim (a final sweep is of the run's final model; the "
                     "finished run's result file holds the best validation model's bounds)")
    if args.publish and args.results_dir is not None:
        parser.error("argument --results-dir: not allowed with --publish (--publish writes into data/results)")
    if args.results_dir is not None and args.results_dir.exists() and not args.results_dir.is_dir():
        parser.error(f"argument --results-dir: {str(args.results_dir)!r} exists and is not a folder")


def sweep_file(args, step: int | None = None) -> Path:
    """``ksweep_<run>.json`` in data/results (``--publish``), ``--results-dir`` or the scratch runs/results;
    with ``--interim``, ``ksweep_<run>_step<step>.json`` (in data/results/interim with ``--publish``)."""
    folder = repo_root() / "data" / "results" if args.publish else args.results_dir or repo_root() / "runs" / "results"
    if not args.interim:
        return folder / f"ksweep_{args.run}.json"
    return (folder / INTERIM_DIR if args.publish else folder) / f"ksweep_{args.run}_step{step}.json"


def check_finished(args, step: int, steps: int) -> None:
    """A final sweep needs a finished run, an interim one an unfinished run: otherwise a message naming the
    steps (so that a part-way model is never filed under the run's final name, nor a final one as interim)."""
    if not args.interim and step < steps:
        raise SystemExit(f"--run {args.run}: its checkpoint is at step {step:,} of {steps:,}; a k-sweep of the "
                         "run's final model needs the finished run (pass --interim to sweep it at this step, "
                         "under a name that says the step)")
    if args.interim and step >= steps:
        raise SystemExit(f"--run {args.run}: the run has finished ({steps:,} steps); sweep its final model "
                         "without --interim")


def check_sweep_slot(out: Path, config: dict, examples: int, seed: int) -> None:
    """Refuse to write over a k-sweep of other settings (the run's config, the examples, the seed; a sweep
    file without a recorded seed used the default, 0)."""
    if not out.exists():
        return
    try:
        saved = json.loads(out.read_text())
        theirs_config, theirs = saved["config"], {"examples": saved["examples"], "seed": saved.get("seed", 0)}
        differ = sorted(k for k in set(config) | set(theirs_config) if config.get(k) != theirs_config.get(k))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SystemExit(f"{out} exists and is not a readable k-sweep ({exc}); move it away first") from None
    parts = [f"{k}: {theirs_config.get(k)!r} there, {config.get(k)!r} here" for k in differ]
    parts += [f"--{k}: {theirs[k]!r} there, {v!r} here" for k, v in (("examples", examples), ("seed", seed))
              if theirs[k] != v]
    if parts:
        raise SystemExit(f"{out} holds a k-sweep of other settings ({'; '.join(parts)}); refusing to write over "
                         "it (write this one elsewhere with --results-dir)")


def _ksweep(args, argv) -> dict:
    import torch

    from . import objectives as O
    from .cli import resolve_device
    from .train import atomic_write_json

    torch.set_num_threads(args.threads or 1)
    device = resolve_device(args.device)
    trainer = load_trainer(args.run, device)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    check_finished(args, trainer.step, trainer.config.steps)
    step, best_of = trainer.step, None
    if args.model == "best":
        step, best_of = load_best_model(trainer, args.run, device)
    x_all = evenly_spaced(trainer.data["test"], args.examples)  # the test file is ordered by class
    out = sweep_file(args, step)
    check_sweep_slot(out, dict(trainer.config.__dict__), int(x_all.shape[0]), args.seed)  # before the hours
    if best_of is not None and out.exists():  # the model of a step never changes: its sweep stands
        print(f"{out.name}: the best validation model (step {step:,}) is swept already")
        return json.loads(out.read_text())
    trainer.eval_compile = args.compile
    log_weights = trainer._eval_log_weights(x_all.shape[0] * max(KS))
    clock = Stopwatch()
    rows = []
    for start in range(0, x_all.shape[0], args.batch):
        inp, target = trainer._inputs(x_all[start : start + args.batch])
        rows.append(O.importance_bound_curve(trainer.model, inp, KS, chunk=1000, generator=gen, target=target,
                                             log_weights=log_weights))
    curve = torch.cat(rows, 1)  # (len(KS), N)
    paired = curve - curve[KS.index(INTERIM_FULL_K)]  # per image: L_k - L_100, the same samples' blocks
    from_elbo = curve - curve[KS.index(1)]  # per image: L_k - L_1 (L_50,000 - L_1: the posterior gap's bound)
    result = {
        "run": args.run,
        "config": trainer.config.__dict__,
        "examples": int(x_all.shape[0]),
        "seed": args.seed,
        "example_indices": f"every {max(1, trainer.data['test'].shape[0] // args.examples)}-th test image from the first",
        "ks": list(KS),
        "mean_bound": [float(v) for v in curve.mean(1)],
        "stderr_bound": [float(v) for v in curve.std(1) / np.sqrt(curve.shape[1])],
        "stderr_minus_k100": [float(v) for v in paired.std(1) / np.sqrt(curve.shape[1])],
        "stderr_minus_k1": [float(v) for v in from_elbo.std(1) / np.sqrt(curve.shape[1])],
        **_seconds(clock),
        "evaluation_engine": trainer.evaluation_engine(),
        "provenance": provenance(shlex.join(["python", "-m", "concrete_ref.experiments.evaluate",
                                             *(sys.argv[1:] if argv is None else argv)]), device),
    }
    if args.interim:
        result["step"] = int(step)
        result["full_test"] = full_test_bound(trainer, gen)
    if best_of is not None:
        result["best_of"] = best_of
    check_sweep_slot(out, result["config"], result["examples"], args.seed)
    atomic_write_json(out, result)
    for k, v in zip(KS, result["mean_bound"]):
        print(f"k = {k:6d}: mean L_k = {v:.3f}")
    if args.interim:
        print(f"step {result['step']:,}: mean L_{INTERIM_FULL_K} on the {result['full_test']['examples']:,} test "
              f"images = {result['full_test']['mean_bound']:.3f}")
    return result


def load_best_model(trainer, run: str, device: str = "cpu") -> tuple[int, dict]:
    """Put the run's best validation model (``runs/<run>/best.pt``) into ``trainer``'s model; returns its step
    and what it was the best of (the checkpoint's step and the validation bound that chose it)."""
    import torch

    path = repo_root() / "runs" / run / "best.pt"
    if not path.exists():
        raise SystemExit(f"--run {run}: there is no best validation model at {path} (a run keeps one from its "
                         "first validation on)")
    best = torch.load(path, weights_only=False, map_location=device)
    if not isinstance(best, dict) or not {"step", "model"} <= set(best):
        raise SystemExit(f"{path} is not a best validation model (it needs 'step' and 'model')")
    if trainer.best is None or trainer.best["step"] != best["step"] or best["step"] > trainer.step:
        raise SystemExit(f"{path} holds step {best['step']:,}, but the checkpoint's best validation is "
                         f"{trainer.best}: they are not of one run")
    trainer.model.load_state_dict(best["model"])
    return int(best["step"]), {"checkpoint_step": int(trainer.step), "valid_bound": float(trainer.best["valid_bound"])}


def _seconds(clock: Stopwatch) -> dict:
    """The wall and CPU seconds (:mod:`.clocks`) of a piece of work, as recorded in a sweep file."""
    wall, cpu = clock.peek()
    return {"seconds": round(wall, 1), "cpu_seconds": round(cpu, 1)}


def full_test_bound(trainer, generator) -> dict:
    """Mean :math:`\\mathcal{L}_{100}` on the whole test set, drawn from the sweep's generator (after the
    sweep), with the seconds it took."""
    clock = Stopwatch()
    value = trainer.bound("test", INTERIM_FULL_K, generator=generator)
    return {"k": INTERIM_FULL_K, "examples": int(trainer.data["test"].shape[0]), "mean_bound": float(value),
            **_seconds(clock)}


if __name__ == "__main__":
    main()
