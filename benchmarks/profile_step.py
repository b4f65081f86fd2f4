"""Where the time of a training step and of an evaluation goes (issue 20), by ``torch.profiler``.

``benchmarks/speed.py`` measures how far the step is from its GEMM limit; this script says what the rest
is. For the four Table 1 models it profiles the project's step at m = 1 as training runs it (compiled
where the command line would compile it, fused Adam, one thread, subnormals flushed), Concrete and NVIL,
and the evaluation :math:`\\mathcal{L}_{1000}` (``Trainer.bound``, compiled as ``--compile auto`` does for
the test set), and sorts the profiler's *self* CPU time of every operator into:

- ``gemm``: the matrix products (``aten::mm``, ``addmm``, ``bmm``, ``baddbmm``);
- ``fused_elementwise``: the kernels ``torch.compile`` generated (sampling, scoring, the likelihood);
- ``optimizer``: Adam's fused kernel, its Python and ``zero_grad``;
- ``noise``: the uniforms drawn from the run's generator (``aten::uniform_``);
- ``batch``: the minibatch gather and the epoch's permutation;
- ``compiled_wrappers``: Dynamo's guard check and the compiled region's and AOTAutograd's wrappers;
- ``autograd``: the autograd engine's own work (``AccumulateGrad``, node dispatch);
- ``other``: everything else (small eager operators, copies, reductions).

The profiler adds a little time to every operator, so its step is slower than the timed one (both are
recorded) and the small categories are overstated; the shares are for reading what dominates, the step
time for comparing. Run::

    python benchmarks/profile_step.py --json data/benchmarks/profile_vm.json

``book/benchmark.md`` (``benchmarks/speed.py``) shows the table when that file exists.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import speed  # noqa: E402  (the benchmark's own trainer construction and machine record)

CATEGORIES = ("gemm", "fused_elementwise", "optimizer", "noise", "batch", "compiled_wrappers", "autograd", "other")
MODELS = ("200H-784V", "200H-200H-784V", "200H~784V", "200H~200H~784V")
GEMM = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}
OPTIMIZER_PREFIXES = ("aten::_fused_adam", "Optimizer.", "aten::_foreach_")
NOISE = {"aten::uniform_"}
BATCH = {"aten::index", "aten::index_select", "aten::randperm"}
WRAPPER_PREFIXES = ("TorchDynamo Cache Lookup", "Pregraph bytecode", "Torch-Compiled Region", "AOTDispatcher",
                    "CompiledFunction")
AUTOGRAD_PREFIXES = ("autograd::engine", "torch::autograd::")


def category(name: str) -> str:
    """The category of one profiler event name (see the module docstring)."""
    if name in GEMM:
        return "gemm"
    if name.startswith("## Call CompiledFxGraph"):
        return "fused_elementwise"
    if name.startswith(OPTIMIZER_PREFIXES):
        return "optimizer"
    if name in NOISE:
        return "noise"
    if name in BATCH:
        return "batch"
    if name.startswith(WRAPPER_PREFIXES):
        return "compiled_wrappers"
    if name.startswith(AUTOGRAD_PREFIXES):
        return "autograd"
    return "other"


def shares(events) -> dict:
    """``{category: self CPU milliseconds}`` summed over ``events`` (``profile.key_averages()``), every
    event counted once by its self time, so the categories add up to the profiled total."""
    out = dict.fromkeys(CATEGORIES, 0.0)
    for e in events:
        out[category(e.key)] += e.self_cpu_time_total / 1e3
    return out


def _timed_ms(fn, n: int, repeats: int = 5) -> float:
    """The median over ``repeats`` of the benchmark's own timing of ``n`` calls, in ms per call."""
    return 1e3 * statistics.median(speed._timed(fn, n) for _ in range(repeats))


def profile_step(model: str, estimator: str, data: dict, steps: int = 100) -> dict:
    """One cell at m = 1: the timed step (no profiler), then ``steps`` profiled steps sorted by category."""
    from concrete_ref.experiments import cli

    trainer = speed.make_trainer({"task": "density", "model": model, "arity": 2, "estimator": estimator,
                                  "m": 1}, data)
    trainer.train_step()
    info = cli.choose_engine(trainer, "auto") if trainer.estimator.compilable else {"compiled": False}
    for _ in range(20):
        trainer.train_step()
    step_ms = _timed_ms(trainer.train_step, steps)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.train_step()
    ms = {k: v / steps for k, v in shares(prof.key_averages()).items()}
    torch._dynamo.reset()
    return {"what": "step", "model": model, "estimator": estimator, "m": 1, "batch": trainer.config.batch_size,
            "compiled": bool(info.get("compiled")), "steps": steps, "step_ms": step_ms,
            "profiled_ms": sum(ms.values()), "ms": ms}


def profile_eval(model: str, data: dict, images: int = 32, k: int = 1000) -> dict:
    """``Trainer.bound`` at ``k`` on ``images`` test-like images, compiled (as the test set's evaluation is)."""
    trainer = speed.make_trainer({"task": "density", "model": model, "arity": 2, "estimator": "concrete",
                                  "m": 1}, data)
    trainer.data["block"] = trainer.data["test"][:images]
    trainer.eval_compile = "yes"
    trainer.bound("block", k)  # compiles
    seconds = _timed_ms(lambda: trainer.bound("block", k), 1, repeats=3) / 1e3
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.bound("block", k)
    ms = shares(prof.key_averages())
    likelihood = _likelihood_ms(images * k, data["test"].shape[1])
    torch._dynamo.reset()
    return {"what": "evaluation", "model": model, "estimator": "concrete", "k": k, "images": images,
            "likelihood_ms": likelihood,
            "compiled": bool(trainer._compiled_eval is not None and trainer._compiled_eval.info.get("compiled")),
            "seconds_per_1000": seconds * 1000 / images, "profiled_seconds_per_1000": sum(ms.values()) / images,
            "ms": ms}


def _likelihood_ms(rows: int, pixels: int, block: int = 1024) -> float:
    """The Bernoulli log-likelihood alone (``models.bernoulli_log_likelihood``, compiled, as inside the
    evaluation's kernel) over ``rows`` samples of ``pixels`` pixels, timed on blocks of ``block`` rows: how
    much of the element-wise kernel's time the likelihood is."""
    from concrete_ref.experiments.models import bernoulli_log_likelihood

    gen = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(block, pixels, generator=gen)
    x = (torch.rand(1, pixels, generator=gen) < 0.3).float()
    fn = torch.compile(bernoulli_log_likelihood, dynamic=False)
    with torch.no_grad():
        fn(logits, x)
        per_block = _timed_ms(lambda: fn(logits, x), 20)
    return per_block * rows / block


def run(models=MODELS, estimators=("concrete", "nvil"), steps: int = 100, images: int = 32, note=None) -> dict:
    from concrete_ref.experiments.cli import subnormals_flushed

    torch.set_num_threads(1)
    data = speed.benchmark_data()
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    rows = []
    with subnormals_flushed():
        for model in models:
            for est in estimators:
                rows.append(profile_step(model, est, data, steps))
                print(_line(rows[-1]), flush=True)
            rows.append(profile_eval(model, data, images))
            print(_line(rows[-1]), flush=True)
    mach = speed.machine()
    mach.update(load_start=round(load0, 2), load_end=round(os.getloadavg()[0], 2), note=note)
    return {"benchmark": "profile_step", "machine": mach, "rows": rows,
            "wall_seconds": round(time.perf_counter() - t0, 1)}


def _line(row: dict) -> str:
    total = sum(row["ms"].values())
    parts = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in row["ms"].items() if v > 0)
    head = f"{row['model']} {row['estimator']} {row['what']}"
    return f"{head}: {parts}"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, help="write the profile here (data/benchmarks/profile_vm.json)")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--estimators", nargs="+", default=["concrete", "nvil"])
    p.add_argument("--steps", type=int, default=100, help="profiled steps per cell (>= 1)")
    p.add_argument("--images", type=int, default=32, help="evaluation images (>= 1)")
    p.add_argument("--note", help="a sentence on the machine's conditions, kept in the JSON")
    args = p.parse_args(argv)
    if args.steps < 1 or args.images < 1:
        p.error(f"--steps and --images must be >= 1; got {args.steps} and {args.images}")
    result = run(args.models, args.estimators, args.steps, args.images, args.note)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
