"""The benchmark (issue 20): how fast the project trains and evaluates, against the GEMM limit and against a
straightforward ``torch.distributions`` step, for every model of the paper's experiments.

    python benchmarks/speed.py --json data/benchmarks/speed_$(hostname).json --markdown book/benchmark.md
    python benchmarks/speed.py --from-json data/benchmarks/speed_vm.json --markdown book/benchmark.md  # page only

One run measures, one thread, subnormals flushed (as the training command runs), batch 64, on synthetic
binary data of MNIST's shape (``cli.synthetic_binary_data``: no dataset needed), for the four Table 1
models (Concrete; NVIL at m = 1, VIMCO at m = 5, 50), the two structured-prediction models (likewise) and
the 4- and 8-ary models of App. E (Concrete), each at m = 1, 5, 50:

(a) the training step of the project's ``Trainer`` (``train_step``: batch, noise, forward, backward, fused
    Adam), eager and compiled (``Trainer.compile_step``); "project" is the faster of the two;
(b) the GEMM limit: every matrix product of one eager step (forward and backward) is recorded with its
    shapes and strides as it is dispatched (``aten.mm``/``addmm``/``bmm``), its FLOPs counted as
    2 M K N, and ``torch.mm`` is timed on exactly those operands; the limit is the step's FLOPs divided
    by the fastest throughput ``torch.mm`` reaches on any of them, and step/limit is the ratio;
(c) the straightforward step (``naive_relaxed.py``, Concrete only: ``torch.distributions`` relaxed
    distributions, ``rsample``/``log_prob``, plain ``torch.optim.Adam``) on the same model and data, and
    the project's speed-up over it;
(d) evaluation: ``Trainer.bound`` with k = 1000 on 500 test-like images (timed in blocks of 100),
    seconds per 1000 images, and its GEMM limit likewise.

Every figure is a median over repeats; within a cell the paths are timed interleaved (eager, compiled,
straightforward, GEMMs, then again), so that a busy machine slows them alike.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import socket
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from concrete_ref.experiments import cli  # noqa: E402
from concrete_ref.experiments.provenance import provenance  # noqa: E402
from concrete_ref.experiments.train import EVAL_ROWS, NonFiniteError, Trainer  # noqa: E402
from naive_relaxed import naive_concrete_objective  # noqa: E402

TABLE1_MODELS = ("200H-784V", "200H-200H-784V", "200H~784V", "200H~200H~784V")
SP_MODELS = ("392V-240H-240H-392V", "392V-240H-240H-240H-392V")
ARITY_MODELS = ("240H~784V", "240H~240H~784V")
SAMPLES = (1, 5, 50)
BATCH = 64
#: (repeats, steps per repeat) by m: about a second or two per path and repeat on the development machine
SCHEDULE = {1: (7, 60), 5: (5, 20), 50: (5, 6)}
EVAL_K = 1000
EVAL_IMAGES = 500
EVAL_REPEATS = 5
GEMM_TARGET_SECONDS = 0.025  # each recorded product shape is timed over calls lasting about this long (longer
# than a scheduler time slice, so that on a shared core it is slowed like the steps are), in GEMM_ROUNDS passes
GEMM_ROUNDS = 5

_ATEN = torch.ops.aten
_PRODUCTS = {_ATEN.mm.default: "mm", _ATEN.addmm.default: "addmm", _ATEN.bmm.default: "bmm",
             _ATEN.baddbmm.default: "baddbmm"}

GROUPS = {
    "table1": "Density estimation (Table 1)",
    "structured": "Structured prediction (Figure 4's table)",
    "arity": "4- and 8-ary density models (App. E)",
}


# --------------------------------------------------------------------------- the cells
def standard_cells() -> list[dict]:
    """Every cell the benchmark measures, in the order of the page's tables."""
    def cell(group, task, model, estimator, m, arity=2):
        return {"group": group, "task": task, "model": model, "arity": arity, "estimator": estimator, "m": m}

    out = []
    for group, task, models in (("table1", "density", TABLE1_MODELS), ("structured", "structured", SP_MODELS)):
        for model in models:
            for m in SAMPLES:
                out.append(cell(group, task, model, "concrete", m))
                out.append(cell(group, task, model, "nvil" if m == 1 else "vimco", m))
    for arity in (4, 8):
        for model in ARITY_MODELS:
            for m in SAMPLES:
                out.append(cell("arity", "density", model, "concrete", m, arity))
    return out


def eval_models(cells) -> list[dict]:
    """The distinct (task, model, arity) of ``cells``: evaluation depends on nothing else."""
    seen, out = set(), []
    for c in cells:
        key = (c["task"], c["model"], c["arity"])
        if key not in seen:
            seen.add(key)
            out.append({"group": c["group"], "task": c["task"], "model": c["model"], "arity": c["arity"]})
    return out


def benchmark_data(seed: int = 0) -> dict:
    """Synthetic binary images of MNIST's shape: 2,000 to train on, 500 test-like images to evaluate."""
    return cli.synthetic_binary_data(n_train=2000, n_valid=16, n_test=EVAL_IMAGES, seed=seed)


def make_trainer(cell: dict, data: dict) -> Trainer:
    """The project's Trainer for a cell, configured by the command line's own code (``--preset book``:
    batch 64, the project's learning rates and temperatures), as ``python -m concrete_ref.experiments.<task>``
    would build it."""
    task = cell["task"]
    argv = ["--dataset", "synthetic", "--model", cell["model"], "--arity", str(cell["arity"]),
            "--estimator", cell["estimator"], "--samples", str(cell["m"]), "--preset", "book",
            "--batch-size", str(cell.get("batch", BATCH))]
    args = cli.build_parser(task).parse_args(argv)
    cfg, _ = cli.config_from_args(args, task)
    train = np.asarray(data["train"], dtype=np.float64)
    split = cli.split_top_bottom if task == "structured" else None
    base_rate = train.mean(0) if split is None else cli.split_top_bottom(train.mean(0))[1]
    return Trainer(cfg, data, base_rate, split=split)


# --------------------------------------------------------------------------- the matrix products
class ProductRecorder(TorchDispatchMode):
    """Records every matrix product dispatched inside it (forward and backward): ``(op, a_shape, a_stride,
    b_shape, b_stride)``, the operands of ``torch.mm`` (or ``bmm``) that the product multiplies."""

    def __init__(self):
        super().__init__()
        self.products = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = _PRODUCTS.get(func)
        if name is not None:
            a, b = (args[1], args[2]) if name in ("addmm", "baddbmm") else (args[0], args[1])
            self.products.append((name, tuple(a.shape), tuple(a.stride()), tuple(b.shape), tuple(b.stride())))
        return func(*args, **(kwargs or {}))


def product_flops(product) -> int:
    """2 M K N for ``(M, K) @ (K, N)`` (times the batch for ``bmm``)."""
    _, a, _, b, _ = product
    batch = a[0] if len(a) == 3 else 1
    return 2 * batch * a[-2] * a[-1] * b[-1]


def step_products(trainer: Trainer) -> list:
    """The matrix products of one eager training step of ``trainer`` (the step is taken)."""
    saved = trainer._step_fn
    trainer._step_fn = trainer._loss
    try:
        with ProductRecorder() as rec:
            trainer.train_step()
    finally:
        trainer._step_fn = saved
    return rec.products


def bound_products(trainer: Trainer, split: str, k: int) -> list:
    """The matrix products of ``trainer.bound(split, k)``."""
    with ProductRecorder() as rec:
        trainer.bound(split, k)
    return rec.products


def _operand(shape, stride, gen):
    """A float32 tensor of this shape and layout (the same strides: transposed views stay transposed)."""
    size = 1 + sum((n - 1) * s for n, s in zip(shape, stride))
    return torch.randn(size, generator=gen).as_strided(shape, stride)


class GemmTimer:
    """Times ``torch.mm`` (``torch.bmm``) on the distinct operand layouts of a list of products."""

    def __init__(self, products):
        gen = torch.Generator().manual_seed(0)
        self.keys = sorted({p[1:] for p in products})
        self.operands = {k: (_operand(k[0], k[1], gen), _operand(k[2], k[3], gen)) for k in self.keys}
        self.flops = {k: product_flops((None, *k)) for k in self.keys}
        self.calls = {}
        for k in self.keys:  # calibrate: enough calls to last about GEMM_TARGET_SECONDS
            self._run(k, 1)
            t = max(self._run(k, 1), 1e-7)
            self.calls[k] = max(1, min(5000, round(GEMM_TARGET_SECONDS / t)))
        self.samples = {k: [] for k in self.keys}

    def _run(self, key, n) -> float:
        a, b = self.operands[key]
        mm = torch.bmm if a.dim() == 3 else torch.mm
        t0 = time.perf_counter()
        for _ in range(n):
            mm(a, b)
        return (time.perf_counter() - t0) / n

    def time_once(self, rounds: int = GEMM_ROUNDS) -> None:
        """One repeat: every distinct layout for its calibrated number of calls, spread round-robin over
        ``rounds`` passes through the layouts, so that each layout's time covers the whole block and every
        layout sees the same load (one short window per layout would let a lucky time slice decide the
        fastest)."""
        total = {k: 0.0 for k in self.keys}
        calls = {k: max(1, round(self.calls[k] / rounds)) for k in self.keys}
        for _ in range(rounds):
            for k in self.keys:
                total[k] += self._run(k, calls[k]) * calls[k]
        for k in self.keys:
            self.samples[k].append(total[k] / (rounds * calls[k]))

    def summary(self, products) -> dict:
        """Per repeat, the fastest throughput among the layouts (``peaks``, FLOP/s); their median
        (``peak_flops_per_s``); each layout's median throughput; and the products' time one after another
        at their layouts' median speeds."""
        repeats = len(next(iter(self.samples.values())))
        peaks = [max(self.flops[k] / self.samples[k][r] for k in self.keys) for r in range(repeats)]
        med = {k: statistics.median(v) for k, v in self.samples.items()}
        rate = {k: self.flops[k] / med[k] for k in self.keys}
        best = max(self.keys, key=rate.get)
        return {"peaks": peaks, "peak_flops_per_s": statistics.median(peaks), "peak_shape": _shape_text(best),
                "sum_seconds": sum(med[p[1:]] for p in products),
                "shapes": [{"shape": _shape_text(k), "mflop": self.flops[k] / 1e6, "gflops": rate[k] / 1e9,
                            "count": sum(1 for p in products if p[1:] == k)} for k in self.keys]}


def paired_median(numerators, denominators) -> float:
    """The median over repeats of the ratio of two figures measured in the same repeat (robust to a load
    that changes between repeats, which the quotient of two medians is not)."""
    return statistics.median(a / b for a, b in zip(numerators, denominators))


def _layout(stride) -> str:
    """N: rows contiguous (row-major), T: columns contiguous (a transposed view), S: neither."""
    return "N" if stride[-1] == 1 else "T" if stride[-2] == 1 else "S"


def _shape_text(key) -> str:
    """``MxKxN`` (``BxMxKxN`` for bmm) and the two operands' layouts, e.g. ``64x784x200 NT``."""
    a, sa, b, sb = key
    lead = f"{a[0]}x" if len(a) == 3 else ""
    return f"{lead}{a[-2]}x{a[-1]}x{b[-1]} {_layout(sa)}{_layout(sb)}"


# --------------------------------------------------------------------------- one training cell
def naive_step(trainer: Trainer):
    """The straightforward step on a copy of the trainer's model: torch.distributions objective, plain
    ``torch.optim.Adam``, the same batches (its own copy of the data order generator)."""
    model = copy.deepcopy(trainer.model)
    opt = torch.optim.Adam(model.parameters(), lr=trainer.config.learning_rate, betas=(0.9, 0.999),
                           weight_decay=trainer.config.weight_decay)
    train = trainer.data["train"]
    gen = torch.Generator().manual_seed(trainer.config.seed)
    m, split, bs = trainer.config.samples, trainer.split, trainer.config.batch_size
    state = {"nonfinite": 0}

    def step():
        model.train()
        x = train[torch.randint(train.shape[0], (bs,), generator=gen)]
        inp, target = (x, None) if split is None else split(x)
        loss = -naive_concrete_objective(model, inp, m, target=target).mean()
        if not math.isfinite(float(loss.detach())):
            state["nonfinite"] += 1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, model, state


def objective_agreement(trainer: Trainer, naive_model) -> dict:
    """The project's and the straightforward objective on one batch, same weights, same seed (same noise)."""
    model = copy.deepcopy(naive_model).eval()
    x = trainer.data["train"][:trainer.config.batch_size]
    inp, target = trainer._inputs(x)
    from concrete_ref.experiments import objectives as O

    state = torch.random.get_rng_state()
    with torch.no_grad():
        torch.manual_seed(5)
        ours = O.concrete_objective(model, inp, trainer.config.samples, target=target).mean().item()
        torch.manual_seed(5)
        naive = naive_concrete_objective(model, inp, trainer.config.samples, target=target).mean().item()
    torch.random.set_rng_state(state)
    return {"objective_project": ours, "objective_torch_distributions": naive}


def _timed(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def bench_step(cell: dict, data: dict, repeats: int, steps: int, compile: bool = True, naive: bool = True) -> dict:
    """Figures (a)-(c) of one cell."""
    trainer = make_trainer(cell, data)
    trainer.train_step()  # first step (allocations, lazy initialisation) outside everything
    products = step_products(trainer)
    flops = sum(product_flops(p) for p in products)
    gemm = GemmTimer(products)
    out = dict(cell)
    out.update(batch=trainer.config.batch_size, repeats=repeats, steps_per_repeat=steps, flops=flops,
               products=len(products))

    def path(fn):
        def run():
            trainer._step_fn = fn
            trainer.train_step()
        return run

    paths = {"eager": path(trainer._loss)}
    if compile:
        try:
            t0 = time.perf_counter()
            trainer.compile_step()
            compiled = trainer._step_fn
            paths["compiled"] = path(compiled)
            for _ in range(2):
                paths["compiled"]()
            out["compile_seconds"] = round(time.perf_counter() - t0, 1)
        except Exception as exc:  # report, keep the eager figures
            out["compile_error"] = f"{type(exc).__name__}: {exc}"[:300]
            paths.pop("compiled", None)
    naive_state = None
    if naive and cell["estimator"] == "concrete":
        step, naive_model, naive_state = naive_step(trainer)
        paths["torch_distributions"] = step
        out.update(objective_agreement(trainer, naive_model))
    warm = max(2, min(10, steps // 10))
    for fn in paths.values():
        for _ in range(warm):
            fn()
    samples = {name: [] for name in paths}
    try:
        for _ in range(repeats):
            for name, fn in paths.items():
                samples[name].append(_timed(fn, steps))
            gemm.time_once()
    except NonFiniteError as exc:
        out["error"] = str(exc)
        return out
    finally:
        trainer._step_fn = trainer._loss
    ms = {name: 1e3 * statistics.median(v) for name, v in samples.items()}
    out["eager_ms"] = ms["eager"]
    out["compiled_ms"] = ms.get("compiled")
    out["project"] = "compiled" if ms.get("compiled", math.inf) < ms["eager"] else "eager"
    out["project_ms"] = ms[out["project"]]
    g = gemm.summary(products)
    out["gemm_peak_gflops"] = g["peak_flops_per_s"] / 1e9
    out["gemm_peak_shape"] = g["peak_shape"]
    out["limit_ms"] = 1e3 * flops / g["peak_flops_per_s"]
    # step / limit: per repeat, the project's step over that repeat's limit; the median of those
    out["step_over_limit"] = paired_median(samples[out["project"]], [flops / p for p in g["peaks"]])
    out["gemm_peak_gflops_repeats"] = [round(p / 1e9, 2) for p in g["peaks"]]
    out["gemm_sum_ms"] = 1e3 * g["sum_seconds"]
    out["gemm_shapes"] = g["shapes"]
    if "torch_distributions" in ms:
        out["torch_distributions_ms"] = ms["torch_distributions"]
        out["speedup"] = paired_median(samples["torch_distributions"], samples[out["project"]])
        out["speedup_eager"] = paired_median(samples["torch_distributions"], samples["eager"])
        out["torch_distributions_nonfinite_steps"] = naive_state["nonfinite"]
    out["samples_ms"] = {name: [round(1e3 * t, 4) for t in v] for name, v in samples.items()}
    torch._dynamo.reset()  # free the compiled graphs of this cell
    return out


# --------------------------------------------------------------------------- evaluation
def bench_eval(model: dict, data: dict, k: int, images: int, repeats: int, compile: bool = True) -> dict:
    """Figure (d): ``Trainer.bound`` at ``k`` on ``images`` test-like images in ``repeats`` blocks, on the
    eager path and (``compile``) on the compiled one (:mod:`concrete_ref.experiments.fast_eval`), timed
    interleaved; "project" is the path ``--compile auto`` takes for an evaluation of the test set."""
    from concrete_ref.experiments.fast_eval import worth_compiling

    cell = {**model, "estimator": "concrete", "m": 1}
    trainer = make_trainer(cell, data)
    test = trainer.data["test"][:images]
    if test.shape[0] < images:
        raise ValueError(f"the data holds {test.shape[0]} test images; {images} were asked for")
    c = trainer.config
    per_call = max(1, EVAL_ROWS // max(1, min(k, c.eval_chunk)))  # Trainer.bound's examples per call
    trainer.data["probe"] = probe = trainer.data["test"][:per_call]  # one call's worth of examples
    trainer.eval_compile = "no"
    trainer.bound("probe", min(k, c.eval_chunk))  # warm up
    products = bound_products(trainer, "probe", k)
    flops_per_image = sum(product_flops(p) for p in products) / probe.shape[0]
    gemm = GemmTimer(products)
    paths = ["no", "yes"] if compile else ["no"]
    compile_seconds = None
    if compile:
        trainer.eval_compile = "yes"
        t0 = time.perf_counter()
        trainer.bound("probe", min(k, c.eval_chunk))  # compiles
        compile_seconds = round(time.perf_counter() - t0, 1)
    block = images // repeats
    seconds = {mode: [] for mode in paths}
    for r in range(repeats):
        trainer.data["block"] = test[r * block:(r + 1) * block]
        for mode in paths:
            trainer.eval_compile = mode
            t0 = time.perf_counter()
            trainer.bound("block", k)
            seconds[mode].append(time.perf_counter() - t0)
        gemm.time_once()
    g = gemm.summary(products)
    # the path an evaluation of the 10,000 test images takes under --compile auto
    project = "yes" if compile and worth_compiling("auto", 10_000 * k) else "no"
    limits = [flops_per_image * block / p for p in g["peaks"]]
    per_1000 = {mode: statistics.median(v) * 1000 / block for mode, v in seconds.items()}
    limit = flops_per_image * 1000 / g["peak_flops_per_s"]
    return {**model, "k": k, "images": block * repeats, "block": block, "repeats": repeats,
            "examples_per_call": per_call, "eval_chunk": c.eval_chunk,
            "project": "compiled" if project == "yes" else "eager",
            "seconds_per_1000": per_1000[project],
            "eager_seconds_per_1000": per_1000["no"],
            "compiled_seconds_per_1000": per_1000.get("yes"),
            "compile_seconds": compile_seconds,
            "gflop_per_1000": flops_per_image * 1000 / 1e9,
            "gemm_peak_gflops": g["peak_flops_per_s"] / 1e9, "gemm_peak_shape": g["peak_shape"],
            "limit_seconds_per_1000": limit,
            "eval_over_limit": paired_median(seconds[project], limits),
            "eager_eval_over_limit": paired_median(seconds["no"], limits),
            "gemm_peak_gflops_repeats": [round(p / 1e9, 2) for p in g["peaks"]],
            "gemm_sum_seconds_per_1000": g["sum_seconds"] * 1000 / probe.shape[0],
            "samples_seconds": [round(t, 6) for t in seconds[project]],
            "eager_samples_seconds": [round(t, 6) for t in seconds["no"]]}


# --------------------------------------------------------------------------- the run
def machine() -> dict:
    prov = provenance()
    keep = ("cpu", "cpu_count", "torch", "python", "numpy", "platform", "git_commit", "git_dirty",
            "git_dirty_files", "date", "command")
    out = {k: prov[k] for k in keep}
    out.update(host=socket.gethostname(), torch_threads=torch.get_num_threads(), flush_denormal=True,
               inductor_compile_threads=_compile_threads())
    return out


def _compile_threads():
    try:
        import torch._inductor.config as ic

        return ic.compile_threads
    except Exception:  # pragma: no cover
        return None


def run(cells=None, schedule=None, eval_k: int = EVAL_K, eval_images: int = EVAL_IMAGES,
        eval_repeats: int = EVAL_REPEATS, compile: bool = True, evaluate: bool = True, note: str | None = None,
        log=print) -> dict:
    """Measure ``cells`` (default: every standard cell) and their models' evaluation; returns the JSON."""
    cells = standard_cells() if cells is None else cells
    schedule = {**SCHEDULE, **(schedule or {})}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # as the training command runs (cli.subnormals_flushed)
    try:
        return _run(cells, schedule, eval_k, eval_images, eval_repeats, compile, evaluate, note, log)
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)


def _run(cells, schedule, eval_k, eval_images, eval_repeats, compile, evaluate, note, log) -> dict:
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    data = benchmark_data()
    result = {"benchmark": "speed (issue 20)", "machine": {**machine(), "note": note},
              "settings": {"batch": BATCH, "schedule": {str(m): list(v) for m, v in sorted(schedule.items())},
                           "eval_k": eval_k, "eval_images": eval_images, "eval_repeats": eval_repeats,
                           "compile": compile, "data": "cli.synthetic_binary_data(n_train=2000, n_test=500)",
                           "preset": "book"},
              "steps": [], "evaluation": []}
    for i, cell in enumerate(cells):
        repeats, steps = schedule[cell["m"]] if cell["m"] in schedule else schedule[min(schedule)]
        t0 = time.perf_counter()
        row = bench_step(cell, data, repeats, steps, compile=compile)
        result["steps"].append(row)
        log(f"[{i + 1}/{len(cells)} {time.perf_counter() - t_start:6.0f} s] {_label(cell)}: " + _step_line(row)
            + f" ({time.perf_counter() - t0:.0f} s)")
    if evaluate:
        for model in eval_models(cells):
            t0 = time.perf_counter()
            row = bench_eval(model, data, eval_k, eval_images, eval_repeats, compile=compile)
            result["evaluation"].append(row)
            log(f"[eval {time.perf_counter() - t_start:6.0f} s] {model['model']} n={model['arity']}: "
                f"{row['seconds_per_1000']:.2f} s per 1000 images at k={eval_k}, limit "
                f"{row['limit_seconds_per_1000']:.2f} s, ratio {row['eval_over_limit']:.1f}"
                f" ({time.perf_counter() - t0:.0f} s)")
    result["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    result["machine"]["load_average"] = {"start": [round(x, 2) for x in load_start],
                                         "end": [round(x, 2) for x in os.getloadavg()]}
    return result


def _label(cell) -> str:
    arity = f" n={cell['arity']}" if cell["arity"] != 2 else ""
    return f"{cell['model']}{arity} {cell['estimator']} m={cell['m']}"


def _step_line(row) -> str:
    if "error" in row:
        return "error: " + row["error"]
    text = f"eager {row['eager_ms']:.2f} ms"
    if row.get("compiled_ms") is not None:
        text += f", compiled {row['compiled_ms']:.2f} ms (compile {row['compile_seconds']} s)"
    text += f", limit {row['limit_ms']:.2f} ms ({row['gemm_peak_gflops']:.0f} GFLOP/s), ratio {row['step_over_limit']:.1f}"
    if "speedup" in row:
        text += f", torch.distributions {row['torch_distributions_ms']:.2f} ms, speed-up {row['speedup']:.2f}x"
    return text


# --------------------------------------------------------------------------- the paper preset's cost
#: the grids whose paper-preset cost the page states: those whose every cell is in the benchmark (not
#: nary-sp and arity: the 4- and 8-ary structured-prediction models and the binary 240H models are not
#: benchmarked; not estimators: the newer estimators are not either)
BUDGET_GRIDS = ("table1-m1", "table1", "figure4", "temperature")
#: binarized MNIST's test and validation sets (the paper preset evaluates both in full)
MNIST_TEST = MNIST_VALID = 10_000


def _arg(args: list, flag: str, default=None):
    return args[args.index(flag) + 1] if flag in args else default


def paper_cpu_hours(result: dict) -> list[dict]:
    """One core's hours for each grid of :data:`BUDGET_GRIDS` at the ``paper`` preset, at the speeds the
    benchmark measured: per cell, 10^7 steps at the project's step time, plus validation (L_100 on the
    10,000 validation images every 100,000 steps, at the eager evaluation speed: each one is below the
    compile threshold), plus the final evaluation (L_50,000 on the 10,000 test images and on 10,000 training
    images; structured prediction L^SP_100; at the project's evaluation speed), twice for the estimators on
    the discrete graph (the best validation checkpoint is evaluated too) and for cells also evaluated on the
    relaxed graph. Evaluation time scales with examples x samples, from the benchmark's seconds per 1000
    images at its k. A grid with a cell the benchmark did not measure is left out."""
    from concrete_ref.experiments import cli, estimators, grid

    paper = cli.PRESETS["paper"]
    steps = {(r["model"], r["arity"], r["estimator"], r["m"]): r for r in result["steps"] if "error" not in r}
    evals = {(e["model"], e["arity"]): e for e in result["evaluation"]}
    out = []
    for g in BUDGET_GRIDS:
        train_s = eval_s = 0.0
        cells = grid.cells(g)
        keys = [(_arg(c["args"], "--model"), int(_arg(c["args"], "--arity", 2)), _arg(c["args"], "--estimator"),
                 int(_arg(c["args"], "--samples"))) for c in cells]
        if any(k not in steps or k[:2] not in evals for k in keys):
            continue
        for cell in cells:
            a = cell["args"]
            model, est, m = _arg(a, "--model"), _arg(a, "--estimator"), int(_arg(a, "--samples"))
            arity = int(_arg(a, "--arity", 2))
            step, ev = steps[(model, arity, est, m)], evals[(model, arity)]
            per_row = ev["seconds_per_1000"] / (1000 * ev["k"])  # seconds per example x sample
            per_row_eager = ev.get("eager_seconds_per_1000", ev["seconds_per_1000"]) / (1000 * ev["k"])
            k_test = k_train = 100 if cell["task"] == "structured" else paper["eval_samples_test"]
            final = MNIST_TEST * k_test + paper["eval_train_examples"] * k_train
            final *= (2 if estimators.get(est).graph == "discrete" else 1) * (2 if "--eval-relaxed" in a else 1)
            valid = paper["steps"] // paper["valid_every"] * paper["valid_examples"] * paper["valid_samples"]
            train_s += paper["steps"] * step["project_ms"] / 1e3
            eval_s += final * per_row + valid * per_row_eager
        out.append({"grid": g, "cells": len(cells), "train_hours": train_s / 3600, "eval_hours": eval_s / 3600,
                    "cpu_hours": (train_s + eval_s) / 3600})
    return out


def budget_sentence(result: dict) -> str:
    """The README's sentence on the paper preset's cost (a test holds it to the committed benchmark)."""
    parts = [f"`{r['grid']}` {r['cpu_hours']:,.0f}" for r in paper_cpu_hours(result)]
    return "At the benchmark's speeds the `paper` preset costs, in CPU hours of one core: " + ", ".join(parts) + "."


def _budget_table(rows) -> list[str]:
    lines = ["| grid | cells | training (CPU h) | evaluation (CPU h) | total (CPU h) | per cell (CPU h) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['grid']}` | {r['cells']} | {r['train_hours']:,.0f} | {r['eval_hours']:,.0f} "
                     f"| {r['cpu_hours']:,.0f} | {r['cpu_hours'] / r['cells']:,.0f} |")
    return lines


# --------------------------------------------------------------------------- the book page
ESTIMATOR_NAMES = {"concrete": "Concrete", "nvil": "NVIL", "vimco": "VIMCO"}


def _f(x, digits=2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _ms(x) -> str:
    if x is None:
        return "–"
    return f"{x:.1f}" if x >= 100 else f"{x:.2f}"


def _step_table(rows) -> list[str]:
    lines = ["| model | n | estimator | m | eager (ms) | compiled (ms) | project (ms) | MFLOP | GEMM GFLOP/s "
             "| limit (ms) | step / limit | `torch.distributions` (ms) | speed-up |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| `{r['model']}` | {r['arity']} | {ESTIMATOR_NAMES[r['estimator']]} | {r['m']} "
                         "| failed | | | | | | | | |")
            continue
        eager, comp = _ms(r["eager_ms"]), _ms(r.get("compiled_ms"))
        if r["project"] == "compiled":
            comp = f"**{comp}**"
        else:
            eager = f"**{eager}**"
        lines.append(
            f"| `{r['model']}` | {r['arity']} | {ESTIMATOR_NAMES[r['estimator']]} | {r['m']} | {eager} | {comp} "
            f"| {_ms(r['project_ms'])} | {r['flops'] / 1e6:,.0f} | {r['gemm_peak_gflops']:.0f} | {_ms(r['limit_ms'])} "
            f"| {r['step_over_limit']:.1f} | {_ms(r.get('torch_distributions_ms'))} "
            f"| {_f(r.get('speedup'))}{'×' if r.get('speedup') is not None else ''} |")
    return lines


def _eval_table(rows) -> list[str]:
    lines = ["| model | n | k | eager (s per 1000 images) | compiled (s per 1000 images) | GFLOP per 1000 images "
             "| GEMM GFLOP/s | limit (s) | eager / limit | project / limit |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        eager = r.get("eager_seconds_per_1000", r["seconds_per_1000"])  # files before the compiled evaluation
        comp = r.get("compiled_seconds_per_1000")
        eager_s, comp_s = f"{eager:.1f}", "–" if comp is None else f"{comp:.1f}"
        if r.get("project") == "compiled":
            comp_s = f"**{comp_s}**"
        else:
            eager_s = f"**{eager_s}**"
        lines.append(f"| `{r['model']}` | {r['arity']} | {r['k']} | {eager_s} | {comp_s} "
                     f"| {r['gflop_per_1000']:,.0f} | {r['gemm_peak_gflops']:.0f} | {r['limit_seconds_per_1000']:.2f} "
                     f"| {r.get('eager_eval_over_limit', r['eval_over_limit']):.1f} | {r['eval_over_limit']:.1f} |")
    return lines


def _span(values, digits=1, suffix="") -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    return f"{min(values):.{digits}f}{suffix} to {max(values):.{digits}f}{suffix}"


def page_text(result: dict, json_name: str = "data/benchmarks/speed_vm.json") -> str:
    """The book page (book/benchmark.md), every number read from the benchmark's JSON."""
    mach, sett = result["machine"], result["settings"]
    steps = [r for r in result["steps"] if "error" not in r]
    date = mach["date"][:10]
    commit = (mach["git_commit"] or "unknown")[:10] + ("+dirty" if mach.get("git_dirty") else "")
    sched = ", ".join(f"m = {m}: {r} repeats of {s} steps" for m, (r, s) in
                      sorted(((int(k), v) for k, v in sett["schedule"].items())))
    compile_seconds = sum(r.get("compile_seconds", 0.0) for r in result["steps"])
    compiled_wins = sum(1 for r in steps if r["project"] == "compiled")
    with_comp = sum(1 for r in steps if r.get("compiled_ms") is not None)
    speedups = [r["speedup"] for r in steps if r.get("speedup") is not None]
    peaks = [r["gemm_peak_gflops"] for r in steps]
    eager_speedups = [r["speedup_eager"] for r in steps if r.get("speedup_eager") is not None]
    load = mach.get("load_average", {})
    out = [
        "# The benchmark",
        "",
        f"This page is generated by `python benchmarks/speed.py` from `{json_name}`; nothing on it is typed by "
        "hand, and a test (`tests/test_benchmark.py`) fails when it falls behind the file. It answers three "
        "questions for every model of the paper's experiments: how long one training step of this project "
        "takes, how far that is from what the machine's matrix multiplication alone would allow, and how much "
        "faster it is than the same objective written straightforwardly with `torch.distributions`; and the "
        "same for the evaluation bound.",
        "",
        "## The machine",
        "",
        f"{mach['cpu']} ({mach['cpu_count']} cores), {mach['platform']}; Python {mach['python']}, PyTorch "
        f"{mach['torch']}, **{mach['torch_threads']} thread**, subnormal floats flushed to zero (as the training "
        f"command runs); commit `{commit}`, {date}. The whole run took {result['wall_seconds'] / 60:.0f} minutes, "
        f"{compile_seconds:.0f} s of them compiling (`torch.compile` reuses the kernels of earlier runs from "
        f"its on-disk cache; a cold cache adds several seconds to each of the {len(result['steps'])} compilations)"
        + (f"; the load average was {load['start'][0]:.1f} at its start and {load['end'][0]:.1f} at its end"
           if load else "")
        + (f" ({mach['note']})" if mach.get("note") else "")
        + ". Every figure is a median over repeats, and figures that are compared were measured interleaved, "
        "so that the machine's load slows them alike.",
        "",
        "## What is measured, and how",
        "",
        "Every cell trains the project's `Trainer` (`concrete_ref/experiments/train.py`), built by the command "
        "line's own code (`cli.config_from_args`, `--preset book`: batch "
        f"{sett['batch']}, the project's learning rates and temperatures), on synthetic binary images of MNIST's "
        "shape (`cli.synthetic_binary_data`: timing does not depend on which binary images they are).",
        "",
        "* **Training step** (eager and compiled): `Trainer.train_step`, the whole step as a run takes it: the "
        "minibatch, the noise, forward and backward of the objective, the fused Adam update. *Compiled* is the "
        "same step with `Trainer.compile_step` (`torch.compile` of the forward and backward); *project* is the "
        "faster of the two (in bold), the one `--compile auto` would keep. Each figure is the median over "
        f"repeats of the mean time of a block of steps ({sched}).",
        "* **GEMM limit**: every matrix product of one eager step, forward and backward, is recorded with its "
        "shapes and strides as it is dispatched (`aten.mm`, `addmm`, `bmm`), and its FLOPs counted as "
        "2·M·K·N. That is one product per linear layer in the forward pass and, in the "
        "backward pass, 2 per linear layer whose input carries a gradient and 1 (the weight gradient) for a "
        "layer whose input is data or a discrete sample (NVIL and VIMCO differentiate only log-probabilities); "
        "n-ary layers add the tiny products with their corner matrix. Then `torch.mm` is timed on operands of "
        "exactly those shapes and strides, in every repeat, round-robin over the shapes in "
        f"{GEMM_ROUNDS} passes (so that every shape sees the same load). The *limit* is the step's FLOPs "
        "divided by the fastest throughput `torch.mm` reached on any of them (GEMM GFLOP/s: the fastest shape "
        "of each repeat, median over repeats): no step doing those multiplications can be faster. *Step / "
        "limit* is the median over repeats of the step's time over the limit of the same repeat, so that a "
        "load changing between repeats cancels (it is therefore close to, not exactly, the quotient of the "
        "two columns); the speed-up over `torch.distributions` is paired the same way. "
        "For example `200H-784V`, Concrete, m = 1 has two linear layers, 784→200 on the data and 200→784 on "
        "the sample, on 64 rows: 5 products of 2·64·784·200 = 20.07 MFLOP, 100.35 MFLOP per step.",
        "* **`torch.distributions`** (Concrete only): the same model, parameters and batches, written as a "
        "reader following PyTorch's documentation would (`benchmarks/naive_relaxed.py`: `RelaxedBernoulli` or "
        "`RelaxedOneHotCategorical` per layer, `rsample`, `log_prob` for prior and posterior, plain "
        "`torch.optim.Adam`), timed in the same repeats as the project's step; the speed-up is its time over "
        "the project's. The two objectives agree on identical noise (recorded in the JSON per cell).",
        "* **Evaluation**: `Trainer.bound` on the discrete graph with k = "
        f"{result['evaluation'][0]['k'] if result['evaluation'] else sett['eval_k']} importance samples on "
        f"{sett['eval_images']} test-like images, timed in {sett['eval_repeats']} blocks of "
        f"{sett['eval_images'] // sett['eval_repeats']} images (median block, scaled to 1000 images), with the "
        "evaluation's own GEMM limit computed as above (forward products only), eager and compiled "
        "(`concrete_ref/experiments/fast_eval.py`: the noise drawn outside, the rest compiled; the same bound "
        "to float32 rounding), timed interleaved; *project* (in bold) is the path `--compile auto` takes for "
        "an evaluation of the 10,000 test images. "
        "It depends on the model only, not on how it was trained.",
        "",
        "The GEMM timings are taken in every repeat too, interleaved with the steps, so the ratio compares "
        "figures measured under the same load.",
        "",
    ]
    for group, title in GROUPS.items():
        rows = [r for r in result["steps"] if r["group"] == group]
        if not rows:
            continue
        out += [f"## {title}", "", *_step_table(rows), ""]
    out += ["## Evaluation", "", *_eval_table(result["evaluation"]), ""]
    budget = paper_cpu_hours(result)
    out += [] if not budget else ["## What the paper's protocol costs here", "",
            "One core's hours for each grid at the `paper` preset (10^7 steps per cell), computed from the "
            "figures above by `paper_cpu_hours` in `benchmarks/speed.py`: the project's step time times 10^7; "
            "validation (L_100 on the 10,000 validation images every 100,000 steps, eager); the final "
            "evaluation (L_50,000 on the 10,000 test images and on 10,000 training images; structured "
            "prediction L^SP_100), twice for NVIL and VIMCO (their best validation checkpoint is evaluated "
            "too) and for cells also evaluated on the relaxed graph. On a machine of this kind, a grid run "
            "with `--workers w` takes about its total over w hours; the figures carry the load of the machine "
            "during the benchmark (above).", "",
            *_budget_table(budget), ""]
    ratios = [r["step_over_limit"] for r in steps]
    big = [r["step_over_limit"] for r in steps if r["m"] == max(SAMPLES)]
    small = [r["step_over_limit"] for r in steps if r["m"] == min(SAMPLES)]
    out += [
        "## What the ratios mean",
        "",
        f"*Step / limit* is how many times longer the step takes than its matrix products alone would at the "
        f"best speed `torch.mm` reaches on them. Across the cells it runs from {_span(ratios)}"
        + (f" (m = {min(SAMPLES)}: {_span(small)}; m = {max(SAMPLES)}: {_span(big)})" if small and big else "")
        + ". A ratio near 1 means the step is bound by matrix multiplication and only a faster GEMM (more "
        "threads, another machine) would make it faster; a larger ratio is the time spent elsewhere: the "
        "elementwise work of sampling and scoring the stochastic layers (which grows with m like the products "
        "do, but runs far below the GEMM's FLOP rate), the optimiser, and the fixed per-operation overhead "
        "of the framework, which dominates at m = 1, where each product is small. The limit is optimistic "
        "by construction: small products (64 rows) do not reach the throughput of the largest, and "
        "the JSON also records `gemm_sum_ms`, the products' time one after another at their own measured speed.",
        "",
        f"The fastest GEMM rate measured in a cell ranged from {_span(peaks, 0, ' GFLOP/s')} over the run: "
        "the products are of similar shapes everywhere, so most of that spread is the machine's load, which "
        "changed during the run. It moves milliseconds between cells (compare cells by their ratios, not "
        "their times); within a cell the step, the limit and the straightforward step were measured under "
        "the same load.",
        "",
        f"The compiled step was the faster in {compiled_wins} of {with_comp} cells; compiling fuses the "
        "elementwise work but leaves the products as they are, so it helps most where the elementwise work is "
        "large. "
        + (f"Over `torch.distributions` the project's step is {_span(speedups, 2, '×')} faster "
           f"(the eager step alone: {_span(eager_speedups, 2, '×')}). " if speedups else "")
        + "The straightforward version samples on the unit interval or simplex, evaluates the logit or log "
        "of the sample and the log-Jacobian inside every `log_prob`, and computes the first inference layer "
        "once per sample instead of once per example; structured prediction needs no densities at all, so "
        "there the two differ little.",
        "",
        "*Evaluation / limit* reads the same way for `Trainer.bound`: no gradients, discrete samples, "
        f"{EVAL_ROWS} rows (examples × importance samples) per call.",
        "",
        *_profile_section(PROFILE_JSON),
        "Timings depend on the machine and its load: rerun the command on yours and compare ratios, not "
        "milliseconds.",
        "",
        "```bash",
        "python benchmarks/speed.py --json data/benchmarks/speed_$(hostname).json --markdown book/benchmark.md",
        "```",
        "",
    ]
    return "\n".join(out)


#: the profile of ``benchmarks/profile_step.py``, shown on the page when it exists
PROFILE_JSON = ROOT / "data" / "benchmarks" / "profile_vm.json"
_PROFILE_HEADS = (("gemm", "GEMM"), ("fused_elementwise", "compiled element-wise"), ("optimizer", "optimizer"),
                  ("noise", "noise"), ("batch", "batch"), ("compiled_wrappers", "compiled wrappers"),
                  ("autograd", "autograd"), ("other", "other"))


def _profile_section(path: Path) -> list[str]:
    """"Where the time goes": the shares of ``benchmarks/profile_step.py``'s JSON, if it exists."""
    if not path.exists():
        return []
    prof = json.loads(path.read_text())
    mach = prof["machine"]

    def pct(row, key):
        return 100 * row["ms"][key] / sum(row["ms"].values())

    lines = ["## Where the time goes", "",
             f"From `{_relative(path)}`, written by `python benchmarks/profile_step.py` ({mach['cpu']}, "
             f"{mach['torch_threads']} thread, PyTorch {mach['torch']}, commit `{(mach['git_commit'] or '?')[:10]}`, "
             f"{mach['date'][:10]}; load average {mach['load_start']} at its start and {mach['load_end']} at its end"
             + (f"; {mach['note']}" if mach.get("note") else "") + "). `torch.profiler`'s self time of every "
             "operator, sorted into categories (the script's docstring lists them): the step as training runs "
             "it at m = 1, and the compiled evaluation $\\mathcal{L}_{1000}$. The profiler adds a little to every "
             "operator, so small categories are overstated; read the shares for what dominates.", "",
             "| model | estimator | what | timed | profiled | " + " | ".join(h for _, h in _PROFILE_HEADS) + " |",
             "|---|---|---|---|---|" + "---|" * len(_PROFILE_HEADS)]
    for row in prof["rows"]:
        if row["what"] == "step":
            what, timed, profiled = "step, m = 1", f"{row['step_ms']:.2f} ms", f"{row['profiled_ms']:.2f} ms"
        else:
            what = f"L_{row['k']}, {row['images']} images"
            timed = f"{row['seconds_per_1000']:.1f} s / 1000"
            profiled = f"{row['profiled_seconds_per_1000']:.1f} s / 1000"
        est = {"concrete": "Concrete", "nvil": "NVIL"}.get(row["estimator"], row["estimator"])
        lines.append(f"| `{row['model']}` | {est} | {what} | {timed} | {profiled} | "
                     + " | ".join(f"{pct(row, k):.0f}%" for k, _ in _PROFILE_HEADS) + " |")
    steps = [r for r in prof["rows"] if r["what"] == "step"]
    evals = [r for r in prof["rows"] if r["what"] == "evaluation"]
    gemm_s = [pct(r, "gemm") for r in steps]
    fixed = [100 - pct(r, "gemm") - pct(r, "fused_elementwise") for r in steps]
    lines += ["",
              f"At m = 1 the products take {min(gemm_s):.0f}-{max(gemm_s):.0f}% of the profiled step, which is so "
              f"{100 / max(gemm_s):.1f}-{100 / min(gemm_s):.1f}x the time of its own products (the limit above, "
              "at the products' best rate, is lower still); the fixed work of a step (optimizer, noise, batch, the "
              f"compiled region's wrappers, autograd, small operators) is {min(fixed):.0f}-{max(fixed):.0f}%, "
              "more than the element-wise kernels that sample and score the model."]
    if evals:
        ge = [pct(r, "gemm") for r in evals]
        fe = [pct(r, "fused_elementwise") for r in evals]
        ne = [pct(r, "noise") for r in evals]
        over = [(pct(r, "fused_elementwise") + pct(r, "noise")) / pct(r, "gemm") for r in evals]
        alone = [pct(r, "fused_elementwise") / pct(r, "gemm") for r in evals]
        lik_over = [r["likelihood_ms"] / r["ms"]["gemm"] for r in evals if r["ms"]["gemm"]]
        verdict = (f"the element-wise kernel alone {min(alone):.2f}-{max(alone):.2f}x. Within 1.5x of its GEMM time "
                   "an evaluation would have to bring all of that under 0.5x, while the exact float32 likelihood "
                   f"by itself costs {min(lik_over):.2f}-{max(lik_over):.2f}x and the generator's stream is fixed "
                   "by the committed runs")
        lik = [100 * r["likelihood_ms"] / r["ms"]["fused_elementwise"] for r in evals if r["ms"]["fused_elementwise"]]
        lines += ["",
                  f"In the evaluation the products take {min(ge):.0f}-{max(ge):.0f}%, the compiled element-wise "
                  f"kernel {min(fe):.0f}-{max(fe):.0f}% (the Bernoulli likelihood, an `exp` and a `log1p` per "
                  f"pixel and sample, timed alone on the same number of rows, is {min(lik):.0f}-{max(lik):.0f}% "
                  f"of that kernel's time) and drawing the uniforms {min(ne):.0f}-{max(ne):.0f}% (the CPU "
                  f"generator, mt19937): those two come to {min(over):.2f}-{max(over):.2f}x of the GEMM time, "
                  + verdict + "."]
    return lines + [""]


# --------------------------------------------------------------------------- command line
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, help="write the results here (e.g. data/benchmarks/speed_<host>.json)")
    p.add_argument("--markdown", type=Path, help="write the book page here (book/benchmark.md)")
    p.add_argument("--from-json", type=Path, help="measure nothing: read this JSON (for --markdown)")
    p.add_argument("--models", nargs="+", help="only the standard cells of these models")
    p.add_argument("--samples", type=int, nargs="+", help="only the standard cells with these m")
    p.add_argument("--no-compile", action="store_true", help="eager step only")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation figures")
    p.add_argument("--note", help="a sentence on the machine's conditions, kept in the JSON and shown on the page")
    args = p.parse_args(argv)
    if args.from_json:
        result = json.loads(args.from_json.read_text())
        json_path = args.from_json
    else:
        cells = standard_cells()
        if args.models:
            cells = [c for c in cells if c["model"] in args.models]
        if args.samples:
            cells = [c for c in cells if c["m"] in args.samples]
        if not cells:
            p.error("no cell matches --models/--samples")
        result = run(cells, compile=not args.no_compile, evaluate=not args.no_eval, note=args.note)
        json_path = args.json
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1) + "\n")
            print(f"wrote {args.json}")
    if args.markdown:
        name = _relative(json_path) if json_path else "the benchmark's JSON"
        args.markdown.write_text(page_text(result, name))
        print(f"wrote {args.markdown}")
    return result


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    main()
