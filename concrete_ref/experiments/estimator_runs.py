r"""The MNIST runs of Chapter 10's comparison (issue 24, parts b and c), read from the committed results.

The grid ``python -m concrete_ref.experiments.grid table1 estimators --preset book5k --seed 0,1,2 --ksweep``
trains every estimator of :data:`ESTIMATORS` on the models of :data:`MODELS` at ``m = 1`` with the ``book5k``
budget (20,000 Adam steps of 64 images; :math:`\mathcal L_{5000}` on the full test set and on 10,000 evenly
spaced training images), once per seed in :data:`SEEDS`: 54 runs of the six newer estimators (grid
``estimators``) and 18 of Concrete and NVIL (the ``m = 1`` cells of grid ``table1`` on these models).
:func:`estimator_runs` reads whichever of them are finished (each file checked by
:func:`.results.read_result_file`); :func:`nll_rows` and :func:`curves` summarise them. Nothing here is a
number typed by hand except :data:`PUBLISHED`, the published figures that part (c) sets beside them, each
with its source and settings.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from . import grid
from .cli import default_temperatures
from . import results as R

__all__ = ["MODELS", "ESTIMATORS", "SEEDS", "EXPECTED", "PUBLISHED", "estimator_runs", "nll_rows", "curves",
           "training_seconds",
           "count_sentence", "published_rows"]

MODELS = tuple(grid.ESTIMATOR_MODELS)
#: the paper's two m = 1 estimators, then the six of issue 24
ESTIMATORS = ("concrete", "nvil", *grid.NEW_ESTIMATORS)
SEEDS = (0, 1, 2)
#: how many runs the comparison has: 3 models x 8 estimators x 3 seeds (54 newer-estimator runs + 18)
EXPECTED = len(MODELS) * len(ESTIMATORS) * len(SEEDS)
PATTERN = "density_mnist_*_m1_book5k*_s*.json"  # with any override tag (_x<hash>): listed as "other"

#: published numbers part (c) sets beside ours, with what they are and the settings that differ
PUBLISHED = [
    {"source": "REBAR authors' TensorFlow code (tensorflow/models research/rebar), as quoted in issue 24",
     "model": "200H~784V", "estimator": "rebar", "steps": 100_000, "batch_size": 24, "value": -121.5,
     "what": "training ELBO logged by rebar_train.py", "verified": False},
    {"source": "REBAR authors' TensorFlow code (tensorflow/models research/rebar), as quoted in issue 24",
     "model": "200H~784V", "estimator": "rebar", "steps": 1_000_000, "batch_size": 24, "value": -103.3,
     "what": "training ELBO logged by rebar_train.py", "verified": False},
]


def estimator_runs(results_dir: Path | None = None) -> dict:
    """The finished runs of the comparison: ``{"runs": [...], "other": [...], "unreadable": [...]}``.

    ``runs``: results (as :func:`.results.read_result_file` returns them) of the ``book5k`` preset cells
    with a model of :data:`MODELS`, an estimator of :data:`ESTIMATORS`, ``m = 1``, a seed of :data:`SEEDS`
    and the default temperatures; ``other``: file names that match the pattern but are not such a cell (a
    budget override, another temperature); ``unreadable``: ``(file name, reason)`` for files the checked
    reader refuses. An empty or missing folder gives empty lists."""
    out = {"runs": [], "other": [], "unreadable": []}
    try:
        folder = Path(results_dir or R.committed_results_dir())
    except FileNotFoundError:
        return out
    for path in sorted(folder.glob(PATTERN)):
        try:
            res = R.read_result_file(path)
        except R.ResultFileError as e:
            out["unreadable"].append((path.name, str(e).removeprefix(f"{path}: ")))
            continue
        cfg = res["config"]
        wanted = (cfg["task"] == "density" and cfg["dataset"] == "mnist" and cfg["model"] in MODELS
                  and cfg["estimator"] in ESTIMATORS and cfg["samples"] == 1 and cfg["seed"] in SEEDS
                  and cfg["preset"] == "book5k" and cfg["arity"] == 2
                  and (cfg["posterior_temperature"], cfg["prior_temperature"]) == default_temperatures("density", 2)
                  and R.is_cell(res))
        (out["runs"] if wanted else out["other"]).append(res if wanted else path.name)
    return out


def count_sentence(found: dict) -> str:
    """How many of the :data:`EXPECTED` runs are finished, in words."""
    runs = found["runs"]
    new = sum(r["config"]["estimator"] in grid.NEW_ESTIMATORS for r in runs)
    text = (f"{len(runs)} of the {EXPECTED} runs are finished: {new} of the "
            f"{len(MODELS) * len(grid.NEW_ESTIMATORS) * len(SEEDS)} runs of the six newer estimators and "
            f"{len(runs) - new} of the {len(MODELS) * 2 * len(SEEDS)} Concrete and NVIL runs.")
    if found["unreadable"]:
        text += (f" {len(found['unreadable'])} result file(s) matching the pattern could not be read by the "
                 "checked reader (listed below).")
    if found["other"]:
        text += f" {len(found['other'])} other file(s) match the pattern but are not cells of the comparison."
    return text


def nll_rows(runs: list) -> list:
    """One row per (model, estimator) with at least one finished seed: test and train NLL (L_5000), mean and
    sample standard deviation over the seeds (``None`` for one seed), the seeds, and the mean training
    seconds (``train_seconds``, on the clock ``clock``: "cpu" where every seed counted CPU seconds, else
    "wall", :func:`training_seconds`)."""
    rows = []
    for model in MODELS:
        for est in ESTIMATORS:
            mine = sorted((r for r in runs if r["config"]["model"] == model and r["config"]["estimator"] == est),
                          key=lambda r: r["config"]["seed"])
            if not mine:
                continue
            timed = [training_seconds(r) for r in mine]
            clock = "cpu" if all(k == "cpu" for _, k in timed) else "wall"
            seconds = [s for s, _ in timed] if clock == "cpu" else [r["train_seconds"] for r in mine]
            row = {"model": model, "estimator": est, "n": len(mine), "seeds": [r["config"]["seed"] for r in mine],
                   "train_seconds": statistics.mean(seconds), "clock": clock}
            for split in ("test", "train"):
                v = [r["metrics"][f"{split}_nll"] for r in mine]
                row[f"{split}_nll"] = statistics.mean(v)
                row[f"{split}_nll_sd"] = statistics.stdev(v) if len(v) > 1 else None
            rows.append(row)
    return rows


def training_seconds(result: dict) -> tuple[float, str]:
    """A result's training seconds and their clock (:mod:`.clocks`): ``(train_cpu_seconds, "cpu")`` where the
    run counted CPU seconds from its first step, else ``(train_seconds, "wall")``: wall-clock seconds, which
    on a shared machine also count the time the run waited for a core or was paused."""
    if result.get("train_cpu_seconds") is not None and result.get("cpu_seconds_from_step") == 0:
        return result["train_cpu_seconds"], "cpu"
    return result["train_seconds"], "wall"


def curves(result: dict) -> dict:
    """A run's validation curve: steps, bound (L_100 on 1,000 validation images), and the training seconds at
    each point (``valid_seconds``, on the clock ``clock`` of :func:`training_seconds`), read as ``step /
    steps_done * seconds`` (the result records the total training time only; its steps take about equally
    long), plus the final training objective."""
    c = result["curves"]
    seconds, clock = training_seconds(result)
    scale = seconds / result["steps_done"]
    return {"valid_step": list(c["valid_step"]), "valid_bound": list(c["valid_bound"]),
            "valid_seconds": [s * scale for s in c["valid_step"]], "clock": clock,
            "final_train_objective": c["train_objective"][-1] if c.get("train_objective") else None}


def published_rows(runs: list) -> list:
    """:data:`PUBLISHED` with ours beside each: the mean final training objective (the single-sample ELBO of
    the exact sample on training minibatches, an exponential moving average, for the estimators on the
    discrete graph) over the finished seeds of the same model and estimator, and the images each has seen."""
    out = []
    for pub in PUBLISHED:
        mine = [r for r in runs if r["config"]["model"] == pub["model"] and r["config"]["estimator"] == pub["estimator"]]
        ours = [curves(r)["final_train_objective"] for r in mine]
        ours = [v for v in ours if v is not None]
        out.append({**pub, "images_seen": pub["steps"] * pub["batch_size"], "ours_n": len(ours),
                    "ours_train_objective": statistics.mean(ours) if ours else None,
                    "ours_steps": mine[0]["steps_done"] if mine else None,
                    "ours_images_seen": mine[0]["steps_done"] * mine[0]["config"]["batch_size"] if mine else None})
    return out
