"""Read committed result files and set them beside the paper's numbers (no number typed by hand).

``python -m concrete_ref.experiments.results table1 --preset book`` prints the comparison table as
Markdown and writes it to ``data/results/<table>_<dataset>_<preset>.md`` (tables: ``table1``, Table 1
of the paper; ``figure4``, the table in Figure 4 with the n-ary and temperature runs of Section 5.3,
MNIST only; ``arity``, App. E's arity table).

What counts as a cell.  A result stands as its preset's cell only when every setting that changes
what it measures is the preset's (:func:`identity.is_preset_cell`): a run with a budget override such
as ``--steps 5`` is another run and is never counted in a table.  Every file in the folder is checked
as it is read: a file that is not valid JSON, lacks the keys of a result, or whose name is not the one
its config gives (:func:`identity.run_name` + ``.json``; ``ksweep_<run name>.json`` for a k-sweep) is
an error naming the file, and two results claiming one cell are an error naming both, never a silent
replacement.  An unknown ``--preset`` or ``--dataset`` is a usage error, and nothing is written.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import numbers
import sys
from pathlib import Path

from . import identity, paper_numbers
from .provenance import repo_root

__all__ = ["load_results", "load_ksweeps", "read_result_file", "is_cell", "ResultFileError", "CellConflictError",
           "table1_results", "table1_rows", "figure4_rows", "nary_sp_rows", "arity_rows", "temperature_sweep",
           "interior_region", "markdown_table", "arity_markdown_table", "budget_summary", "family_differences",
           "claims", "load_progress", "PROGRESS_DIR", "load_interim_sweeps", "INTERIM_DIR"]


class ResultFileError(ValueError):
    """A file in the results folder that is not the result its name says; the message starts with its path."""


class CellConflictError(ValueError):
    """Two results claim the same cell of a table; the message names both files."""


#: top-level keys of a training result and of a k-sweep re-evaluation (``ksweep_<run name>.json``)
RUN_KEYS = ("config", "metrics", "steps_done", "train_seconds", "eval_seconds", "provenance")
KSWEEP_KEYS = ("run", "config", "examples", "ks", "mean_bound", "stderr_bound", "seconds", "provenance")
#: the config keys that make a run's name (its cell's coordinates)
CONFIG_KEYS = ("task", "dataset", "model", "arity", "estimator", "samples", "seed", "preset",
               "posterior_temperature", "prior_temperature")
KSWEEP_PREFIX = "ksweep_"


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _expected_run_name(path: Path, cfg: dict) -> str:
    """``identity.run_name(cfg)``, or a :class:`ResultFileError` saying which coordinate is invalid."""
    from . import cli

    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if missing:
        raise ResultFileError(f"{path}: config lacks {', '.join(missing)}")
    from . import estimators

    # every registered estimator (the grid's 'estimators' runs publish here too; the tables read only
    # Concrete, NVIL and VIMCO cells)
    choices = {"task": sorted(cli.TASKS), "preset": sorted(cli.PRESETS), "arity": [2, 4, 8],
               "estimator": estimators.names()}
    for key, allowed in choices.items():
        if cfg[key] not in allowed or isinstance(cfg[key], bool):
            raise ResultFileError(f"{path}: config {key} = {cfg[key]!r} is not one of {allowed}")
    if cfg["dataset"] not in cli.TASKS[cfg["task"]]["datasets"]:
        raise ResultFileError(f"{path}: config dataset = {cfg['dataset']!r} is not one of "
                              f"{cli.TASKS[cfg['task']]['datasets']} (task {cfg['task']})")
    for key in ("samples", "seed"):
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool):
            raise ResultFileError(f"{path}: config {key} = {cfg[key]!r} is not an integer")
    for key in ("posterior_temperature", "prior_temperature"):
        if not _is_number(cfg[key]):
            raise ResultFileError(f"{path}: config {key} = {cfg[key]!r} is not a number")
    try:
        return identity.run_name(cfg)
    except (Exception, SystemExit) as e:  # argparse reports a bad value by exiting
        raise ResultFileError(f"{path}: config is not a run's config ({type(e).__name__}: {e})") from None


def read_result_file(path: Path, interim: bool = False) -> dict:
    """One result file, checked: a training result, or a k-sweep when its name starts with ``ksweep_``.

    Returns the parsed dict with ``"file"`` (the file name) added.  Raises :class:`ResultFileError`,
    naming the file and what is wrong, when it is not valid JSON, lacks a result's keys, or is not named
    after its config (``identity.run_name(config) + ".json"``, ``ksweep_<run>.json`` with ``run`` the
    run's name for a k-sweep).  ``interim``: a k-sweep of an unfinished run (``evaluate ksweep
    --interim``), named ``ksweep_<run>_step<step>.json``, which also needs ``step`` (an integer below the
    config's ``steps``) and ``full_test`` (``k``, ``examples``, ``mean_bound``).
    """
    path = Path(path)
    try:
        res = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultFileError(f"{path}: not valid JSON ({e})") from None
    ksweep = interim or path.name.startswith(KSWEEP_PREFIX)
    kind = "interim k-sweep" if interim else "k-sweep" if ksweep else "training result"
    if not isinstance(res, dict):
        raise ResultFileError(f"{path}: a {kind} is a JSON object; got {type(res).__name__}")
    missing = [k for k in (KSWEEP_KEYS + INTERIM_KEYS if interim else KSWEEP_KEYS if ksweep else RUN_KEYS)
               if k not in res]
    if missing:
        raise ResultFileError(f"{path}: a {kind} needs {', '.join(missing)}"
                              + ("" if ksweep else " (a k-sweep's name starts with 'ksweep_')"))
    for key in ("config", "provenance") + (() if ksweep else ("metrics",)):
        if not isinstance(res[key], dict):
            raise ResultFileError(f"{path}: {key} is not a JSON object")
    cfg = res["config"]
    if ksweep:
        lists = [res[k] for k in ("ks", "mean_bound", "stderr_bound")]
        if not all(isinstance(v, list) and all(_is_number(x) for x in v) for v in lists) \
                or len({len(v) for v in lists}) != 1:
            raise ResultFileError(f"{path}: ks, mean_bound and stderr_bound are not lists of numbers of one length")
        if not all(math.isfinite(x) for v in lists for x in v):
            raise ResultFileError(f"{path}: ks, mean_bound or stderr_bound holds a NaN or infinite number")
        if not _is_number(res["seconds"]):
            raise ResultFileError(f"{path}: seconds = {res['seconds']!r} is not a number")
    else:
        needed = ["test_nll", "train_nll"] + (["test_nll_relaxed", "train_nll_relaxed"] if cfg.get("eval_relaxed") else [])
        bad = [k for k in needed if not _is_number(res["metrics"].get(k))]
        if bad:
            raise ResultFileError(f"{path}: metrics lack a number for {', '.join(bad)}")
        for key in ("metrics", "metrics_best"):  # a NaN never reaches a table (issue 19 §2)
            bad = [f"{k} = {v!r}" for k, v in (res.get(key) or {}).items() if _is_number(v) and not math.isfinite(v)]
            if bad:
                raise ResultFileError(f"{path}: {key} not finite: {', '.join(bad)}")
        bad = [k for k in ("steps_done", "train_seconds", "eval_seconds") if not _is_number(res[k])]
        if bad:
            raise ResultFileError(f"{path}: {', '.join(bad)} not a number")
    if interim:
        step, full = res["step"], res["full_test"]
        if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < cfg.get("steps", 0):
            raise ResultFileError(f"{path}: step = {step!r} is not a step of an unfinished run of "
                                  f"{cfg.get('steps')!r} steps")
        if not isinstance(full, dict) or not all(_is_number(full.get(k)) for k in ("k", "examples", "mean_bound")) \
                or not math.isfinite(full["mean_bound"]):
            raise ResultFileError(f"{path}: full_test needs the numbers k, examples and a finite mean_bound")
    name = _expected_run_name(path, cfg)
    if ksweep and res["run"] != name:
        raise ResultFileError(f"{path}: a k-sweep of run {res['run']!r}, but its config is run {name!r}")
    expected = (KSWEEP_PREFIX if ksweep else "") + name + (f"_step{res['step']}" if interim else "") + ".json"
    if path.name != expected:
        raise ResultFileError(f"{path}: its config names it {expected!r} (a result's file name is "
                              f"identity.run_name(config) + '.json'); rename the file or fix its config")
    res["file"] = path.name
    return res


def committed_results_dir() -> Path:
    """The committed results: ``data/results/`` of the repository this package runs from (a clone, an
    editable install) or, for a package installed from a wheel (Colab, ``pip install``), the copy of that
    folder that the build puts inside the package (``concrete_ref/_results``, see ``setup.py``)."""
    here = repo_root() / "data" / "results"
    if here.is_dir():
        return here
    packaged = Path(__file__).resolve().parents[1] / "_results"
    if packaged.is_dir():
        return packaged
    raise FileNotFoundError(f"no committed results: neither {here} nor {packaged} exists (install the package "
                            "from the repository, whose build copies data/results into it)")


def _result_paths(results_dir: Path | None) -> list[Path]:
    results_dir = Path(results_dir or committed_results_dir())
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: no such results folder")
    return sorted(results_dir.glob("*.json"))


def load_results(results_dir: Path | None = None, **match) -> list[dict]:
    """All training results whose config matches every ``key=value`` given (e.g. ``preset="book"``),
    each with ``"file"`` (its name) added, sorted by file name.

    Every JSON file in the folder is read and checked (:func:`read_result_file`), k-sweeps too (they are
    checked, not returned: :func:`load_ksweeps`), so one bad file is an error naming it wherever it is.
    Results with budget overrides are returned (their configs say so); the table builders leave them out.
    """
    out = []
    for path in _result_paths(results_dir):
        res = read_result_file(path)
        if path.name.startswith(KSWEEP_PREFIX):
            continue
        if all(res["config"].get(k) == v for k, v in match.items()):
            out.append(res)
    return out


def load_ksweeps(results_dir: Path | None = None, **match) -> list[dict]:
    """The k-sweep re-evaluations (``ksweep_<run name>.json``) whose config matches every ``key=value``,
    checked like :func:`load_results` (which checks them too), with ``"file"`` added, sorted by name."""
    out = []
    for path in _result_paths(results_dir):
        if path.name.startswith(KSWEEP_PREFIX):
            res = read_result_file(path)
            if all(res["config"].get(k) == v for k, v in match.items()):
                out.append(res)
    return out


#: k-sweeps of unfinished long runs at a step (``evaluate ksweep --interim --publish``), in this subfolder
INTERIM_DIR = "interim"
INTERIM_KEYS = ("step", "full_test")


def load_interim_sweeps(results_dir: Path | None = None, **match) -> list[dict]:
    """The interim k-sweeps (``<results>/interim/ksweep_<run name>_step<N>.json``) whose config matches
    every ``key=value``, each checked (:func:`read_result_file` with ``interim``) and with ``"file"``
    added, sorted by run and step; ``[]`` when there are none."""
    folder = Path(results_dir or committed_results_dir()) / INTERIM_DIR
    out = [read_result_file(path, interim=True) for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    out = [r for r in out if all(r["config"].get(k) == v for k, v in match.items())]
    return sorted(out, key=lambda r: (r["run"], r["step"]))


#: the growing validation curves of unfinished long runs (``paper`` preset), one file per run, in this
#: subfolder of the results folder (not read by :func:`load_results`: they are not results)
PROGRESS_DIR = "progress"
PROGRESS_KEYS = ("run", "config", "step", "curves", "best", "train_seconds")
PROGRESS_CURVES = ("step", "train_objective", "valid_step", "valid_bound")


def load_progress(results_dir: Path | None = None, **match) -> list[dict]:
    """The progress files of unfinished runs (``<results>/progress/<run name>.json``) whose config matches
    every ``key=value``, each checked and with ``"file"`` added, sorted by name; ``[]`` when the folder
    has none.

    A progress file holds what a run has done so far: ``step`` (Adam steps done), ``curves`` (the training
    objective and the validation bound, ``valid_bound`` at the steps ``valid_step``), ``best`` (the best
    validation bound and its step), ``train_seconds``.  A file that is not valid JSON, lacks these keys,
    has curves of unequal lengths, or is not named after its config (``run`` and the file name must be
    ``identity.run_name(config)``) is a :class:`ResultFileError` naming it.
    """
    folder = Path(results_dir or committed_results_dir()) / PROGRESS_DIR
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            res = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ResultFileError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(res, dict):
            raise ResultFileError(f"{path}: a progress file is a JSON object; got {type(res).__name__}")
        missing = [k for k in PROGRESS_KEYS if k not in res]
        if missing:
            raise ResultFileError(f"{path}: a progress file needs {', '.join(missing)}")
        curves = res["curves"]
        if not isinstance(curves, dict) or any(not isinstance(curves.get(k), list) for k in PROGRESS_CURVES):
            raise ResultFileError(f"{path}: curves needs the lists {', '.join(PROGRESS_CURVES)}")
        if len(curves["valid_step"]) != len(curves["valid_bound"]) or len(curves["step"]) != len(curves["train_objective"]):
            raise ResultFileError(f"{path}: curves of unequal lengths (valid_step/valid_bound or step/train_objective)")
        if not all(_is_number(v) for k in PROGRESS_CURVES for v in curves[k]) or not _is_number(res["step"]):
            raise ResultFileError(f"{path}: step and curves must be numbers")
        if not isinstance(res["config"], dict):
            raise ResultFileError(f"{path}: config is not a JSON object")
        name = _expected_run_name(path, res["config"])
        if res["run"] != name or path.name != name + ".json":
            raise ResultFileError(f"{path}: its config names the run {name!r} (file {name + '.json'!r}); "
                                  f"the file says run {res['run']!r}")
        res["file"] = path.name
        if all(res["config"].get(k) == v for k, v in match.items()):
            out.append(res)
    return out


@functools.lru_cache(maxsize=4096)
def _is_cell_cached(config_json: str) -> bool:
    return identity.is_preset_cell(json.loads(config_json))


def is_cell(result: dict) -> bool:
    """Whether ``result`` may stand as its preset's cell (no budget override: :func:`identity.is_preset_cell`)."""
    return _is_cell_cached(json.dumps(result["config"], sort_keys=True))


def _conflict(what: str, a: dict, b: dict):
    return CellConflictError(f"two results claim {what}: {a.get('file', '<no file>')} and "
                             f"{b.get('file', '<no file>')} (keep one; a run with other settings needs another "
                             "name: identity.run_name)")


def _default_temperatures(cfg: dict) -> bool:
    from .cli import default_temperatures

    expected = default_temperatures(cfg["task"], cfg["arity"])
    return all(abs(a - b) < 1e-9 for a, b in zip((cfg["posterior_temperature"], cfg["prior_temperature"]), expected))


#: the seed of the runs that fill the tables; runs with other seeds are repeats, never table cells
TABLE_SEED = 0


def _index(results: list[dict], task: str, dataset: str = "mnist", arity: int = 2) -> dict:
    """(model, m, estimator) -> result, over the seed-0 preset cells of one task/dataset/arity at default
    temperatures; two results for one key are a :class:`CellConflictError` naming both files."""
    out = {}
    for r in results:
        c = r["config"]
        if c["task"] != task or c["dataset"] != dataset or c["arity"] != arity or c.get("seed", 0) != TABLE_SEED:
            continue
        if "posterior_temperature" in c and not _default_temperatures(c):
            continue  # a temperature-sweep run is not a table cell
        if not is_cell(r):
            continue  # a run with budget overrides is another run, never the preset's cell
        key = (c["model"], c["samples"], c["estimator"])
        if key in out:
            raise _conflict(f"the {task} cell {c['dataset']} {c['model']} {arity}-ary m = {c['samples']} "
                            f"{c['estimator']} seed {TABLE_SEED}", out[key], r)
        out[key] = r
    return out


def _comparison_rows(index: dict, models, paper) -> list[dict]:
    """Rows of (model, m) with ours, the paper's and ours - paper for Concrete and VIMCO/NVIL, test and
    train; ``paper(split, model, m, estimator)`` gives the paper's number."""
    rows = []
    for model in models:
        for m in (1, 5, 50):
            row = {"model": model, "m": m}
            for est_label, est in (("concrete", "concrete"), ("vimco", "nvil" if m == 1 else "vimco")):
                res = index.get((model, m, est))
                for split in ("test", "train"):
                    ref = paper(split, model, m, est)
                    ours = res["metrics"][f"{split}_nll"] if res else None
                    row[f"{split}_{est_label}_ours"] = ours
                    row[f"{split}_{est_label}_paper"] = ref
                    row[f"{split}_{est_label}_diff"] = None if ours is None else ours - ref
                row[f"{est_label}_steps"] = res["steps_done"] if res else None
                row[f"{est_label}_file"] = res["file"] if res else None
            rows.append(row)
    return rows


def table1_results(results: list[dict], dataset: str = "mnist") -> list[dict]:
    """The result files that are cells of Table 1 (seed 0, binary units, the four Table 1 models,
    default temperatures), sorted by file name; other density runs (App. E's arity models, repeats with
    other seeds) are left out."""
    index = _index(results, "density", dataset)
    return sorted((r for (model, _, _), r in index.items() if model in paper_numbers.TABLE1_MODELS),
                  key=lambda r: r["file"])


def table1_rows(results: list[dict], dataset: str = "mnist") -> list[dict]:
    """One row per (model, m): ours and the paper's NLL for Concrete and VIMCO/NVIL, test and train."""
    return _comparison_rows(_index(results, "density", dataset), paper_numbers.TABLE1_MODELS,
                            lambda split, model, m, est: paper_numbers.table1(dataset, split, model, m, est))


def figure4_rows(results: list[dict]) -> list[dict]:
    """The table inside Figure 4 (structured prediction, MNIST): same layout as :func:`table1_rows`."""
    return _comparison_rows(_index(results, "structured"), paper_numbers.FIGURE4_MODELS,
                            paper_numbers.figure4)


def nary_sp_rows(results: list[dict]) -> list[dict]:
    """Section 5.3's n-ary structured-prediction runs (392V-240H-240H-240H-392V, L^SP_1, Concrete):
    binary (from the Figure 4 grid), 4-ary and 8-ary, ours beside the paper."""
    rows = []
    for arity in (2, 4, 8):
        res = _index(results, "structured", arity=arity).get((paper_numbers.FIGURE4_MODELS[1], 1, "concrete"))
        row = {"arity": arity}
        for split in ("test", "train"):
            ref = paper_numbers.nary_sp(arity, split)
            ours = res["metrics"][f"{split}_nll"] if res else None
            row.update({f"{split}_ours": ours, f"{split}_paper": ref,
                        f"{split}_diff": None if ours is None else ours - ref})
        row["file"] = res["file"] if res else None
        rows.append(row)
    return rows


def arity_rows(results: list[dict], dataset: str = "mnist") -> list[dict]:
    """App. E's arity table (Concrete only): one row per (model, m), a column group per arity (and
    ``"<arity>_file"``, the result file of each cell)."""
    rows = []
    for model in paper_numbers.ARITY_MODELS:
        for m in (1, 5, 50):
            row = {"model": model, "m": m}
            for arity in (2, 4, 8):
                res = _index(results, "density", dataset, arity).get((model, m, "concrete"))
                for split in ("test", "train"):
                    ref = paper_numbers.arity_table(arity, model, m, dataset, split)
                    ours = res["metrics"][f"{split}_nll"] if res else None
                    row.update({f"{split}_{arity}_ours": ours, f"{split}_{arity}_paper": ref,
                                f"{split}_{arity}_diff": None if ours is None else ours - ref})
                row[f"{arity}_file"] = res.get("file") if res else None
            rows.append(row)
    return rows


def arity_ranking(rows: list[dict], split: str = "test") -> list[dict]:
    """For each complete row of :func:`arity_rows` (all three arities run), the arities ordered from best
    (lowest NLL) to worst, ours and the paper's, with how far the best of ours is ahead of the next.

    Answers App. E's questions row by row: does a 4- or 8-ary layer beat the binary one of the same width
    (240 units), and is 8-ary weaker than 4-ary ("a more difficult objective without much added
    capacity")?
    """
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train'; got {split!r}")
    out = []
    for r in rows:
        if any(r[f"{split}_{a}_ours"] is None for a in (2, 4, 8)):
            continue
        ours = sorted((2, 4, 8), key=lambda a: r[f"{split}_{a}_ours"])
        paper = sorted((2, 4, 8), key=lambda a: r[f"{split}_{a}_paper"])
        out.append({"model": r["model"], "m": r["m"], "ours": ours, "paper": paper,
                    "margin": r[f"{split}_{ours[1]}_ours"] - r[f"{split}_{ours[0]}_ours"],
                    "eight_worse_than_four_ours": r[f"{split}_8_ours"] > r[f"{split}_4_ours"],
                    "eight_worse_than_four_paper": r[f"{split}_8_paper"] > r[f"{split}_4_paper"]})
    return out


def temperature_sweep(results: list[dict]) -> list[dict]:
    """Figure 4 (right): the binary 392V-240H-240H-240H-392V model trained on L^SP_1 at one temperature
    for the whole graph, evaluated on the discrete and on the relaxed graph; one row per temperature,
    sorted.  ``gap`` is discrete minus relaxed NLL (test): positive where the relaxed model is better than
    its discretisation, i.e. where it uses the interior of the hypercube.  Only seed-0 preset cells whose
    prior temperature is their posterior one count; two results at one temperature are a
    :class:`CellConflictError` naming both files."""
    rows, by_temp = [], []
    for r in results:
        c = r["config"]
        if (c["task"], c["model"], c["arity"], c["estimator"], c["samples"], c.get("seed", 0)) != \
                ("structured", paper_numbers.FIGURE4_MODELS[1], 2, "concrete", 1, TABLE_SEED) or not c.get("eval_relaxed"):
            continue
        if not math.isclose(c["posterior_temperature"], c["prior_temperature"], rel_tol=1e-9) or not is_cell(r):
            continue  # not one temperature for the whole graph, or a run with budget overrides
        other = next((o for o in by_temp if math.isclose(o["config"]["posterior_temperature"],
                                                         c["posterior_temperature"], rel_tol=1e-9)), None)
        if other is not None:
            raise _conflict(f"the temperature-sweep cell at temperature {c['posterior_temperature']:.4g} "
                            f"({c['dataset']}, preset {c['preset']})", other, r)
        by_temp.append(r)
        mt = r["metrics"]
        rows.append({"temperature": c["posterior_temperature"], "test_discrete": mt["test_nll"],
                     "test_relaxed": mt["test_nll_relaxed"], "train_discrete": mt["train_nll"],
                     "train_relaxed": mt["train_nll_relaxed"], "gap": mt["test_nll"] - mt["test_nll_relaxed"],
                     "file": r.get("file")})
    return sorted(rows, key=lambda row: row["temperature"])


def markdown_table(rows: list[dict], split: str = "test") -> str:
    """Markdown: ours | paper | difference for Concrete and VIMCO/NVIL (one split)."""
    head = (f"| model | m | Concrete ours | Concrete paper | diff | VIMCO/NVIL ours | VIMCO/NVIL paper | diff |\n"
            f"|---|---|---|---|---|---|---|---|\n")
    fmt = _fmt
    lines = []
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['m']} | {fmt(r[f'{split}_concrete_ours'])} | {fmt(r[f'{split}_concrete_paper'])} | "
            f"{fmt(r[f'{split}_concrete_diff'], True)} | {fmt(r[f'{split}_vimco_ours'])} | "
            f"{fmt(r[f'{split}_vimco_paper'])} | {fmt(r[f'{split}_vimco_diff'], True)} |"
        )
    return head + "\n".join(lines) + "\n"


def interior_region(sweep: list[dict], threshold: float = 1.0):
    """Where the relaxed model "prefers the interior" (Figure 4 right), read from the data: the range of
    training temperatures whose integrality gap (test NLL on the discrete graph minus on the relaxed
    graph, :func:`temperature_sweep`) exceeds ``threshold`` nats.

    Returns ``(low, high)`` for shading on a log axis: ``low`` is the geometric midpoint between the last
    temperature at or below the threshold and the first above it (the first swept temperature if every
    one is above), ``high`` the geometric midpoint after the last temperature above it, or ``inf`` when
    the gap stays above the threshold up to the largest temperature swept.  ``None`` when no swept
    temperature has a gap above the threshold.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0 nats; got {threshold}")
    rows = sorted(sweep, key=lambda r: r["temperature"])
    above = [i for i, r in enumerate(rows) if r["gap"] > threshold]
    if not above:
        return None
    t = [r["temperature"] for r in rows]
    first, last = above[0], above[-1]
    low = t[0] if first == 0 else math.sqrt(t[first - 1] * t[first])
    high = math.inf if last == len(t) - 1 else math.sqrt(t[last] * t[last + 1])
    return low, high


def _fmt(v, signed=False) -> str:
    return "not run" if v is None else (f"{v:+.1f}" if signed else f"{v:.1f}")


def arity_markdown_table(rows: list[dict], split: str = "test") -> str:
    """Markdown for :func:`arity_rows`: ours | paper | difference for binary, 4-ary and 8-ary units."""
    head = ("| model | m | " + " | ".join(f"{a} ours | {a} paper | diff" for a in ("binary", "4-ary", "8-ary"))
            + " |\n|---|---|" + "---|---|---|" * 3 + "\n")
    lines = [f"| {r['model']} | {r['m']} | " + " | ".join(
        f"{_fmt(r[f'{split}_{a}_ours'])} | {_fmt(r[f'{split}_{a}_paper'])} | {_fmt(r[f'{split}_{a}_diff'], True)}"
        for a in (2, 4, 8)) + " |" for r in rows]
    return head + "\n".join(lines) + "\n"


def nary_markdown_table(rows: list[dict]) -> str:
    """Markdown for :func:`nary_sp_rows`."""
    head = "| units | test ours | test paper | diff | train ours | train paper | diff |\n|---|---|---|---|---|---|---|\n"
    names = {2: "binary", 4: "4-ary", 8: "8-ary"}
    lines = [f"| {names[r['arity']]} | " + " | ".join(
        f"{_fmt(r[f'{s}_ours'])} | {_fmt(r[f'{s}_paper'])} | {_fmt(r[f'{s}_diff'], True)}" for s in ("test", "train"))
        + " |" for r in rows]
    return head + "\n".join(lines) + "\n"


def temperature_markdown_table(rows: list[dict]) -> str:
    """Markdown for :func:`temperature_sweep` (test set)."""
    head = "| temperature | discrete NLL | relaxed NLL | discrete - relaxed |\n|---|---|---|---|\n"
    lines = [f"| {r['temperature']:.3g} | {r['test_discrete']:.1f} | {r['test_relaxed']:.1f} | {r['gap']:+.1f} |"
             for r in rows]
    return head + "\n".join(lines) + "\n"


def budget_summary(results: list[dict]) -> dict:
    """What the committed runs cost and used: steps, batch, evaluation samples, CPU hours.

    CPU hours count one core per run (every grid run is single-threaded: ``provenance.torch_threads``)
    and add training and evaluation wall time.
    """
    if not results:
        return {"runs": 0, "steps": [], "batch_size": [], "eval_samples_test": [], "eval_samples_train": [],
                "train_hours": 0.0, "eval_hours": 0.0, "cpu_hours": 0.0, "hardware": []}
    pick = lambda key: sorted({r["config"][key] for r in results})
    threads = lambda r: r.get("provenance", {}).get("torch_threads") or 1
    train_h = sum(r["train_seconds"] * threads(r) for r in results) / 3600
    eval_h = sum(r["eval_seconds"] * threads(r) for r in results) / 3600
    hardware = sorted({f"{r['provenance'].get('cpu', '?')}, {r['provenance'].get('cpu_count', '?')} cores, "
                       f"torch {r['provenance'].get('torch', '?')}" for r in results})
    return {"runs": len(results), "steps": pick("steps"), "batch_size": pick("batch_size"),
            "eval_samples_test": pick("eval_samples_test"), "eval_samples_train": pick("eval_samples_train"),
            "train_hours": train_h, "eval_hours": eval_h, "cpu_hours": train_h + eval_h, "hardware": hardware}


def family_differences(rows: list[dict], split: str = "test") -> list[dict]:
    """Mean and worst (largest) difference ours - paper per model and estimator, over the cells run."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for est in ("concrete", "vimco"):
            diffs = [r[f"{split}_{est}_diff"] for r in rows if r["model"] == model and r[f"{split}_{est}_diff"] is not None]
            out.append({"model": model, "estimator": "Concrete" if est == "concrete" else "VIMCO/NVIL",
                        "cells": len(diffs), "mean_diff": sum(diffs) / len(diffs) if diffs else None,
                        "worst_diff": max(diffs) if diffs else None})
    return out


def table1_claim(model: str) -> str:
    """Section 5.2: "VIMCO outperformed Concrete relaxations for linear models and Concrete relaxations
    outperformed VIMCO for non-linear models"."""
    return "Concrete" if "~" in model else "VIMCO/NVIL"


def figure4_claim(model: str) -> str:
    """Section 5.3: "Concrete relaxations more uniformly outperformed VIMCO in this instance"."""
    return "Concrete"


def claims(rows: list[dict], split: str = "test", claimed_winner=table1_claim) -> list[dict]:
    """The paper's headline, cell by cell (``claimed_winner(model)``: the estimator its sentence favours;
    Table 1's by default, :func:`figure4_claim` for structured prediction).

    For every (model, m) where both estimators were run, which one has the lower NLL, here and in the
    paper, and whether the paper's claim for that model family holds in our cell.
    """
    out = []
    for r in rows:
        ours_c, ours_v = r[f"{split}_concrete_ours"], r[f"{split}_vimco_ours"]
        paper_c, paper_v = r[f"{split}_concrete_paper"], r[f"{split}_vimco_paper"]
        claimed = claimed_winner(r["model"])
        winner = None if ours_c is None or ours_v is None else ("Concrete" if ours_c < ours_v else "VIMCO/NVIL")
        out.append({"model": r["model"], "m": r["m"], "claimed_winner": claimed,
                    "paper_winner": "Concrete" if paper_c < paper_v else "VIMCO/NVIL",
                    "our_winner": winner, "our_margin": None if winner is None else abs(ours_c - ours_v),
                    "claim_holds": None if winner is None else winner == claimed})
    return out


OMNIGLOT_NOTE = (
    "Omniglot cells are not run here: the 28x28 Omniglot file (Burda et al.'s chardata.mat) could not be "
    "obtained on the machine that ran the grid (no internet, no local mirror; see data/README.md). With the "
    "file reachable (public URL or CONCRETE_DATA_MIRROR), the same grid runs with\n\n"
    "    python -m concrete_ref.experiments.grid table1 --dataset omniglot --preset book --workers 2\n")


def table_file_text(results: list[dict], dataset: str, preset: str, table: str = "table1") -> str:
    """The Markdown written to ``data/results/<table>_<dataset>_<preset>.md``."""
    j = lambda v: ", ".join(f"{x:,}" for x in v) or "-"
    generated = (f"Generated by `python -m concrete_ref.experiments.results {table} --dataset {dataset} "
                 f"--preset {preset}` from the JSON files in this folder; no number is typed by hand.\n\n")

    def budget_line(runs, cells_done, cells_total, paper_eval):
        if not runs:
            return (f"No cell has been run yet (0 of {cells_total}); the paper evaluates with {paper_eval}. "
                    f"Paper: {paper_numbers.SOURCE}.\n\n")
        b = budget_summary(runs)
        return (f"Budget per run: {j(b['steps'])} Adam steps of batch {j(b['batch_size'])} (the paper: 10^7 steps "
                f"of 64). Evaluation on the discrete graph over the full split with k = {j(b['eval_samples_test'])} "
                f"(test) and {j(b['eval_samples_train'])} (train) importance samples (the paper: {paper_eval}). "
                f"Cells run: {cells_done} of {cells_total}; CPU hours so far: {b['cpu_hours']:.2f} "
                f"({b['train_hours']:.2f} training, {b['eval_hours']:.2f} evaluation) for the {len(runs)} "
                f"run{'s' if len(runs) != 1 else ''} on this page, on "
                f"{'; '.join(b['hardware']) or '-'}. Paper: {paper_numbers.SOURCE}.\n\n")

    if table == "table1":
        rows = table1_rows(results, dataset)
        files = {row[f"{e}_file"] for row in rows for e in ("concrete", "vimco")} - {None}
        runs = [r for r in results if r["file"] in files]
        done = sum(1 for r in rows for e in ("concrete", "vimco") if r[f"{e}_file"])
        text = (f"# Table 1 ({dataset}), preset '{preset}', beside the paper\n\n{generated}"
                f"NLL in nats (lower is better), diff = ours - paper. "
                + budget_line(runs, done, 24, "L_50,000")
                + f"## Test\n\n{markdown_table(rows, 'test')}\n## Train\n\n{markdown_table(rows, 'train')}")
        if dataset == "mnist":
            text += f"\n## Omniglot\n\n{OMNIGLOT_NOTE}"
        return text
    if table == "figure4":
        rows, nary, sweep = figure4_rows(results), nary_sp_rows(results), temperature_sweep(results)
        files = ({row[f"{e}_file"] for row in rows for e in ("concrete", "vimco")} | {r["file"] for r in nary}
                 | {r["file"] for r in sweep}) - {None}
        runs = [r for r in results if r["file"] in files]
        done = sum(1 for r in rows for e in ("concrete", "vimco") if r[f"{e}_file"])
        return (f"# Structured prediction (the table in Figure 4, MNIST), preset '{preset}', beside the paper\n\n"
                f"{generated}NLL of the bottom half given the top half in nats (lower is better), diff = ours - paper. "
                + budget_line(runs, done, 12, "L^SP_100")
                + f"## Test\n\n{markdown_table(rows, 'test')}\n## Train\n\n{markdown_table(rows, 'train')}\n"
                f"## n-ary units (392V-240H-240H-240H-392V, L^SP_1, Concrete)\n\n{nary_markdown_table(nary)}\n"
                f"## Training temperature (Figure 4 right; binary 392V-240H-240H-240H-392V, L^SP_1, test set)\n\n"
                + (temperature_markdown_table(sweep) if sweep else "not run\n"))
    if table == "arity":
        rows = arity_rows(results, dataset)
        files = {row[f"{a}_file"] for row in rows for a in (2, 4, 8)} - {None}
        runs = [r for r in results if r["file"] in files]
        done = sum(1 for r in rows for a in (2, 4, 8) if r[f"test_{a}_ours"] is not None)
        odd = "".join(f"- {a}-ary {mo} m = {m}, {ds} {sp}: {why}\n"
                      for (a, mo, m, ds, sp), why in paper_numbers.ARITY_SUSPICIOUS.items())
        return (f"# Arity (App. E, {dataset}, Concrete only), preset '{preset}', beside the paper\n\n{generated}"
                f"NLL in nats (lower is better), diff = ours - paper. "
                + budget_line(runs, done, 18, "L_50,000")
                + f"## Test\n\n{arity_markdown_table(rows, 'test')}\n## Train\n\n{arity_markdown_table(rows, 'train')}\n"
                f"## Suspicious cells in the paper's table (Omniglot columns)\n\n{odd}")
    raise ValueError(f"table must be table1, figure4 or arity; got {table!r}")


#: the datasets each table has paper numbers for
TABLE_DATASETS = {"table1": ("mnist", "omniglot"), "figure4": ("mnist",), "arity": ("mnist", "omniglot")}


def build_parser() -> argparse.ArgumentParser:
    from .cli import PRESETS

    p = argparse.ArgumentParser(prog="python -m concrete_ref.experiments.results", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("table", choices=list(TABLE_DATASETS), help="which of the paper's tables")
    p.add_argument("--dataset", default="mnist", choices=sorted({d for ds in TABLE_DATASETS.values() for d in ds}),
                   help="default mnist (figure4: mnist only)")
    p.add_argument("--preset", default="book", choices=sorted(PRESETS),
                   help="the preset whose cells fill the table (default book)")
    return p


def main(argv=None) -> None:
    p = build_parser()
    args = p.parse_args(argv)
    if args.dataset not in TABLE_DATASETS[args.table]:
        p.error(f"{args.table} has paper numbers for {', '.join(TABLE_DATASETS[args.table])} only; "
                f"got --dataset {args.dataset}")
    try:
        text = table_file_text(load_results(preset=args.preset), args.dataset, args.preset, args.table)
    except (ResultFileError, CellConflictError) as e:  # a bad or conflicting result file: nothing is written
        sys.exit(f"{p.prog}: error: {e}")
    out = repo_root() / "data" / "results" / f"{args.table}_{args.dataset}_{args.preset}.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
