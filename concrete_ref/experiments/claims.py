"""Table 1 with seeds: cells as mean ± s.d. over seeds, the paper's claims as paired margins with a
verdict, the linear-versus-non-linear contrast, and the part of each gap to the paper that the
evaluation's k explains (issue 21 §3).  Everything is computed from result dicts
(:func:`results.load_results`, :func:`results.load_ksweeps`, :func:`results.load_progress`); no number is
typed here but the paper's, which come from :mod:`.paper_numbers`.

**Statistics.**  A cell (model, m, estimator) of a preset is the set of its seeds' results.  Over its
:math:`n` seeds, :func:`seed_stats` gives the mean, the sample standard deviation
:math:`s = \\sqrt{\\sum_s (x_s - \\bar x)^2 / (n - 1)}` and the standard error of the mean
:math:`s / \\sqrt n`; with one seed there is no standard deviation and no standard error (``None``).

**Margins.**  The paper's claim for a (model, m) is about the *margin*
:math:`d = \\mathrm{NLL}_\\text{VIMCO/NVIL} - \\mathrm{NLL}_\\text{Concrete}` (positive: Concrete is
better).  It is paired by seed: :math:`d_s` is computed for each seed run with both estimators (the
two runs of a seed share their initialisation), and the margin is the mean of the :math:`d_s` with the
standard error of that mean.  The verdict (:func:`verdict`), against the direction the paper claims
(§5.2: VIMCO/NVIL better for linear models, :math:`d < 0`; Concrete better for non-linear ones,
:math:`d > 0`): **holds** when the mean margin is on the claimed side by more than twice its standard
error, **reversed** when it is on the other side by more than twice its standard error, and otherwise
**not resolved at this budget**, which is also the verdict for a single seed, which has no standard
error.  Two standard errors is the rule issue 21 sets; it is a loose rule for three seeds: a two-sided
t-test at the 5% level with :math:`n - 1 = 2` degrees of freedom needs 4.3 standard errors.

**Contrast.**  The paper's headline contrasts the two families: the margin should be larger for a
non-linear model than for the linear model of the same depth and m, :math:`C = d_\\text{non-linear} -
d_\\text{linear} > 0`.  The two margins come from independent runs, so the standard error of
:math:`C` is :math:`\\sqrt{\\mathrm{se}_\\text{nl}^2 + \\mathrm{se}_\\text{l}^2}`; the pooled contrast is
the mean of the per-(depth, m) contrasts with standard error :math:`\\sqrt{\\sum_i \\mathrm{se}_i^2} / N`.
The same verdict rule applies, with the claimed sign positive.

**The evaluation's k.**  A k-sweep (``ksweep_<run>.json``) holds :math:`\\bar{\\mathcal L}_k`, the mean
bound over its test images for several k from one stream of samples per image.  The part of the
run's gap to the paper that its evaluation with :math:`k` samples instead of 50,000 explains is
:math:`\\bar{\\mathcal L}_{50000} - \\bar{\\mathcal L}_k` (:func:`k_part`): in NLL, how much lower the
run's number would be at the paper's k.  When the table's k is not one of the sweep's, it is
interpolated linearly in :math:`\\log k` between the two neighbouring k of the sweep, and bracketed by
their values (:math:`\\mathcal L_k` increases with k).  The rest of the gap (:func:`gap_split`) is
everything else: the training budget above all.
"""

from __future__ import annotations

import math

from . import identity, paper_numbers
from . import results as R

__all__ = ["HOLDS", "REVERSED", "UNRESOLVED", "SINGLE_SEED", "seed_stats", "verdict", "seed_cells", "table1_runs", "claimed_sign",
           "seed_rows", "margins", "contrasts", "pooled_contrast", "k_part", "gap_split", "ksweep_margins",
           "preset_budget", "budget_text", "fmt_stats", "seed_markdown_table", "short_budget", "margin_markdown_table",
           "contrast_markdown_table", "progress_rows", "reference_run_name", "variant_rows", "interim_estimate", "posterior_gap"]

HOLDS, REVERSED, UNRESOLVED = "holds", "reversed", "not resolved at this budget"
#: why a single seed is never resolved
SINGLE_SEED = "one seed has no standard error"
ESTIMATORS = ("concrete", "vimco")  # the two columns of Table 1; "vimco" is NVIL for m = 1
PAPER_K = 50_000


def _vimco(m: int) -> str:
    return "nvil" if m == 1 else "vimco"


def seed_stats(values) -> dict:
    """``{"n", "mean", "sd", "se"}`` of a list of numbers: the mean, the sample standard deviation
    (divisor n - 1) and the standard error of the mean, s.d. / sqrt(n).  ``sd`` and ``se`` are ``None``
    for fewer than two values; everything but ``n`` is ``None`` for none."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "se": None}
    mean = sum(values) / n
    if n < 2:
        return {"n": 1, "mean": mean, "sd": None, "se": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return {"n": n, "mean": mean, "sd": sd, "se": sd / math.sqrt(n)}


def verdict(mean, se, claimed_sign: int, n: int | None = None, rule: float = 2.0) -> str:
    """:data:`HOLDS` when ``mean`` is on the side ``claimed_sign`` (+1 or -1) of zero by more than
    ``rule`` standard errors, :data:`REVERSED` when on the other side by more than that, else
    :data:`UNRESOLVED`; always :data:`UNRESOLVED` without a standard error (one seed, ``se is None``) or
    with ``n < 2``."""
    if claimed_sign not in (1, -1):
        raise ValueError(f"claimed_sign must be +1 or -1; got {claimed_sign!r}")
    if mean is None or se is None or (n is not None and n < 2):
        return UNRESOLVED
    z = claimed_sign * mean
    if z > rule * se:
        return HOLDS
    if z < -rule * se:
        return REVERSED
    return UNRESOLVED


def _is_table1_cell(r: dict, preset: str, dataset: str) -> bool:
    c = r["config"]
    return (c["task"] == "density" and c["dataset"] == dataset and c["arity"] == 2 and c["preset"] == preset
            and c["model"] in paper_numbers.TABLE1_MODELS and c["estimator"] in ("concrete", "nvil", "vimco")
            and R._default_temperatures(c) and R.is_cell(r))


def table1_runs(results: list[dict], preset: str, dataset: str = "mnist") -> list[dict]:
    """The results that are Table 1 cells of ``preset`` (any seed): density estimation, binary units,
    default temperatures, no budget override, Concrete, NVIL or VIMCO, one of the four Table 1 models."""
    return [r for r in results if _is_table1_cell(r, preset, dataset)]


def seed_cells(results: list[dict], preset: str, dataset: str = "mnist", split: str = "test") -> dict:
    """``(model, m, "concrete" | "vimco") -> {"values", "seeds", "files", "n", "mean", "sd", "se"}``: every
    seed of each Table 1 cell of ``preset`` (binary units, default temperatures, no budget override),
    the NLL of ``split`` per seed (sorted by seed) and :func:`seed_stats` of them.  ``"vimco"`` is NVIL
    for m = 1.  Two results for one cell and seed are a :class:`results.CellConflictError` naming both."""
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train'; got {split!r}")
    by_seed: dict = {}
    for r in results:
        if not _is_table1_cell(r, preset, dataset):
            continue
        c = r["config"]
        key = (c["model"], c["samples"], "concrete" if c["estimator"] == "concrete" else "vimco")
        cell = by_seed.setdefault(key, {})
        if c["seed"] in cell:
            raise R._conflict(f"the {preset} cell {dataset} {c['model']} m = {c['samples']} {c['estimator']} "
                              f"seed {c['seed']}", cell[c["seed"]], r)
        cell[c["seed"]] = r
    out = {}
    for key, cell in by_seed.items():
        seeds = sorted(cell)
        values = [cell[s]["metrics"][f"{split}_nll"] for s in seeds]
        out[key] = {"values": values, "seeds": seeds, "files": [cell[s].get("file") for s in seeds],
                    **seed_stats(values)}
    return out


def seed_rows(results: list[dict], preset: str, dataset: str = "mnist", split: str = "test",
              reference: list[dict] | None = None, reference_preset: str = "paper") -> list[dict]:
    """One row per (model, m) of Table 1: for ``est`` in concrete and vimco, ``est`` (the
    :func:`seed_cells` entry, ``None`` when not run), ``{est}_paper`` (the paper's number) and
    ``{est}_diff`` (mean over seeds minus the paper's).  With ``reference`` (other results, e.g. the
    ``paper`` preset's), also ``{est}_ref`` and ``{est}_ref_diff``: the seed-0 cell of
    ``reference_preset`` and its difference from the paper's number."""
    cells = seed_cells(results, preset, dataset, split)
    ref = seed_cells(reference, reference_preset, dataset, split) if reference is not None else {}
    rows = []
    for model in paper_numbers.TABLE1_MODELS:
        for m in (1, 5, 50):
            row = {"model": model, "m": m}
            for est in ESTIMATORS:
                paper = paper_numbers.table1(dataset, split, model, m, "concrete" if est == "concrete" else _vimco(m))
                cell = cells.get((model, m, est))
                row[est] = cell
                row[f"{est}_paper"] = paper
                row[f"{est}_diff"] = None if cell is None else cell["mean"] - paper
                if reference is not None:
                    rc = ref.get((model, m, est))
                    v = None if rc is None or 0 not in rc["seeds"] else rc["values"][rc["seeds"].index(0)]
                    row[f"{est}_ref"] = v
                    row[f"{est}_ref_diff"] = None if v is None else v - paper
            rows.append(row)
    return rows


def claimed_sign(model: str) -> int:
    """The sign of VIMCO/NVIL minus Concrete NLL that §5.2 claims: -1 (VIMCO/NVIL better) for a linear
    model, +1 (Concrete better) for a non-linear one (``~`` in its notation)."""
    return 1 if "~" in model else -1


def margins(results: list[dict], preset: str, dataset: str = "mnist", split: str = "test") -> list[dict]:
    """One row per (model, m) of Table 1: the paired margin VIMCO/NVIL minus Concrete NLL.

    ``per_seed`` maps each seed run with both estimators to its margin; ``n``, ``mean``, ``sd``, ``se``
    are :func:`seed_stats` of those; ``paper`` is the paper's margin (its two numbers' difference);
    ``claimed`` the sign §5.2 claims (:func:`claimed_sign`); ``verdict`` the 2-standard-error verdict
    against it (:func:`verdict`), with ``why`` saying so when one seed leaves it unresolved;
    ``paper_agrees`` whether the paper's own cell is on the claimed side; ``unpaired`` the seeds run
    with one estimator only.
    """
    cells = seed_cells(results, preset, dataset, split)
    out = []
    for model in paper_numbers.TABLE1_MODELS:
        for m in (1, 5, 50):
            c, v = cells.get((model, m, "concrete")), cells.get((model, m, "vimco"))
            cs = dict(zip(c["seeds"], c["values"])) if c else {}
            vs = dict(zip(v["seeds"], v["values"])) if v else {}
            per_seed = {s: vs[s] - cs[s] for s in sorted(set(cs) & set(vs))}
            stats = seed_stats(per_seed.values())
            sign = claimed_sign(model)
            paper = (paper_numbers.table1(dataset, split, model, m, _vimco(m))
                     - paper_numbers.table1(dataset, split, model, m, "concrete"))
            verdict_ = verdict(stats["mean"], stats["se"], sign, stats["n"])
            why = ("not run" if stats["n"] == 0 else SINGLE_SEED if stats["n"] == 1 else
                   f"|mean| {'>' if verdict_ != UNRESOLVED else '<='} 2 s.e.")
            out.append({"model": model, "m": m, "per_seed": per_seed, **stats, "paper": paper, "claimed": sign,
                        "verdict": verdict_, "why": why, "paper_agrees": sign * paper > 0,
                        "unpaired": sorted(set(cs) ^ set(vs))})
    return out


#: (non-linear, linear) models of the same depth: the pairs of the paper's headline contrast
CONTRAST_PAIRS = (("200H~784V", "200H-784V"), ("200H~200H~784V", "200H-200H-784V"))


def contrasts(margin_rows: list[dict]) -> list[dict]:
    """The linear-versus-non-linear contrast for each (depth, m): ``contrast`` is the non-linear model's
    mean margin minus the linear model's (``None`` unless both have one), ``se`` the root sum of their
    squared standard errors (``None`` unless both have one: independent runs), ``paper`` the same
    contrast of the paper's margins, and ``verdict`` against the claimed sign +1 (the non-linear model
    favours Concrete more)."""
    by = {(r["model"], r["m"]): r for r in margin_rows}
    out = []
    for nonlinear, linear in CONTRAST_PAIRS:
        for m in (1, 5, 50):
            a, b = by[(nonlinear, m)], by[(linear, m)]
            value = None if a["mean"] is None or b["mean"] is None else a["mean"] - b["mean"]
            se = None if a["se"] is None or b["se"] is None else math.hypot(a["se"], b["se"])
            n = min(a["n"], b["n"])
            out.append({"nonlinear": nonlinear, "linear": linear, "m": m, "contrast": value, "se": se, "n": n,
                        "paper": a["paper"] - b["paper"], "verdict": verdict(value, se, 1, n)})
    return out


def pooled_contrast(contrast_rows: list[dict]) -> dict:
    """The mean of the per-(depth, m) contrasts that have a standard error, with standard error
    sqrt(sum se_i^2) / N (independent contrasts), the paper's mean contrast over the same cells, and the
    verdict against +1.  ``cells`` is N; with none, ``contrast`` and ``se`` are ``None``."""
    use = [r for r in contrast_rows if r["se"] is not None]
    paper_all = sum(r["paper"] for r in contrast_rows) / len(contrast_rows) if contrast_rows else None
    if not use:
        return {"cells": 0, "contrast": None, "se": None, "paper": paper_all, "verdict": UNRESOLVED}
    n = len(use)
    value = sum(r["contrast"] for r in use) / n
    se = math.sqrt(sum(r["se"] ** 2 for r in use)) / n
    return {"cells": n, "contrast": value, "se": se, "paper": sum(r["paper"] for r in use) / n,
            "verdict": verdict(value, se, 1, min(r["n"] for r in use))}


def k_part(sweep: dict, k: int, reference_k: int = PAPER_K) -> dict:
    """How much higher an NLL evaluated with ``k`` importance samples is than one with ``reference_k``
    (default the paper's 50,000), on the sweep's images: ``mean_bound[reference_k] - mean_bound[k]``
    (nats; positive, since the bound increases with k).

    Returns ``{"k", "value", "low", "high", "interpolated", "examples"}``: for a k the sweep measured,
    ``low == high == value``; for a k between two of the sweep's, ``value`` is interpolated linearly in
    log k and ``low``/``high`` are the values at the neighbouring k (the larger k gives ``low``).  A k
    outside the sweep's range, or a ``reference_k`` it did not measure, is a ``ValueError``."""
    ks, bound = list(sweep["ks"]), list(sweep["mean_bound"])
    if reference_k not in ks:
        raise ValueError(f"the sweep of {sweep.get('run')} has no k = {reference_k} (ks: {ks})")
    top = bound[ks.index(reference_k)]
    if k in ks:
        v = top - bound[ks.index(k)]
        return {"k": k, "value": v, "low": v, "high": v, "interpolated": False, "examples": sweep.get("examples")}
    below = [kk for kk in ks if kk < k]
    above = [kk for kk in ks if kk > k]
    if not below or not above:
        raise ValueError(f"k = {k} is outside the sweep's ks {ks}")
    k0, k1 = max(below), min(above)
    b0, b1 = bound[ks.index(k0)], bound[ks.index(k1)]
    t = (math.log(k) - math.log(k0)) / (math.log(k1) - math.log(k0))
    interp = b0 + t * (b1 - b0)
    return {"k": k, "value": top - interp, "low": top - b1, "high": top - b0, "interpolated": True,
            "examples": sweep.get("examples")}


def gap_split(results: list[dict], ksweeps: list[dict], preset: str, dataset: str = "mnist") -> list[dict]:
    """For every Table 1 cell of ``preset`` whose seed-0 run has a k-sweep: its test NLL (``ours``), the
    paper's (``paper``), ``gap`` = ours - paper, ``k_used`` (the table's evaluation k), ``k_part``
    (:func:`k_part` at ``k_used``, with ``k_low``/``k_high``) and ``rest`` = gap - k_part, the part the
    evaluation's k does not explain; sorted in Table 1's order."""
    runs = {r["file"][:-len(".json")]: r for r in results if _is_table1_cell(r, preset, dataset)
            and r["config"]["seed"] == 0}
    out = []
    for sweep in ksweeps:
        r = runs.get(sweep["run"])
        if r is None:
            continue
        c = r["config"]
        est = "concrete" if c["estimator"] == "concrete" else "vimco"
        paper = paper_numbers.table1(dataset, "test", c["model"], c["samples"], c["estimator"])
        ours = r["metrics"]["test_nll"]
        kp = k_part(sweep, c["eval_samples_test"])
        out.append({"model": c["model"], "m": c["samples"], "estimator": est, "label": c["estimator"], "preset": preset,
                    "ours": ours, "paper": paper, "gap": ours - paper, "k_used": c["eval_samples_test"],
                    "k_part": kp["value"], "k_low": kp["low"], "k_high": kp["high"],
                    "interpolated": kp["interpolated"], "rest": ours - paper - kp["value"],
                    "examples": sweep["examples"], "run": sweep["run"]})
    order = lambda r: (paper_numbers.TABLE1_MODELS.index(r["model"]), r["m"], r["estimator"])
    return sorted(out, key=order)


def ksweep_margins(ksweeps: list[dict], preset: str, dataset: str = "mnist") -> list[dict]:
    """For each (model, m) whose seed-0 Concrete and VIMCO/NVIL runs of ``preset`` both have a k-sweep on
    the same images: the margin VIMCO/NVIL minus Concrete of the sweeps' mean NLL at each k
    (``ks``, ``margin``), one seed, so without a seed standard error."""
    by = {}
    for s in ksweeps:
        c = s["config"]
        if (c["task"], c["dataset"], c["arity"], c["preset"], c["seed"]) != ("density", dataset, 2, preset, 0):
            continue
        by[(c["model"], c["samples"], "concrete" if c["estimator"] == "concrete" else "vimco")] = s
    out = []
    for model in paper_numbers.TABLE1_MODELS:
        for m in (1, 5, 50):
            c, v = by.get((model, m, "concrete")), by.get((model, m, "vimco"))
            if c is None or v is None or c["ks"] != v["ks"] or c["examples"] != v["examples"]:
                continue
            out.append({"model": model, "m": m, "ks": list(c["ks"]), "examples": c["examples"],
                        "margin": [-bv + bc for bc, bv in zip(c["mean_bound"], v["mean_bound"])]})
    return out


def preset_budget(preset: str, task: str = "density") -> dict:
    """The budget a preset gives a cell (from ``cli.PRESETS``): steps, batch, evaluation k and examples
    (``None``: the full split) on test and train."""
    from .cli import PRESETS

    p = PRESETS[preset]
    return {"preset": preset, "steps": p["steps"], "batch_size": p["batch_size"],
            "k_test": p["eval_samples_test"], "k_train": p["eval_samples_train"],
            "test_examples": p["eval_examples"], "train_examples": p["eval_train_examples"]}


def _bound(k: int, tex: bool) -> str:
    return ("$\\mathcal{L}_{" + f"{k:,}".replace(",", "{,}") + "}$") if tex else f"L_{k:,}"


def budget_text(preset: str, seeds=None, split: str = "test", tex: bool = False) -> str:
    """One line stating what a number of ``preset`` is: steps, batch, L_k and images of ``split``, seeds
    (``seeds``: the seeds run; ``None`` leaves them out), e.g. ``20,000 steps of 64, L_5,000 on the full
    test set, seeds 0, 1, 2`` (``tex``: the bound as MyST math)."""
    b = preset_budget(preset)
    k = b["k_test"] if split == "test" else b["k_train"]
    ex = b["test_examples"] if split == "test" else b["train_examples"]
    name = "test" if split == "test" else "training"
    where = f"the full {name} set" if ex is None else f"{ex:,} evenly spaced {name} images"
    text = f"{b['steps']:,} steps of {b['batch_size']}, {_bound(k, tex)} on {where}"
    if seeds is not None:
        seeds = sorted(set(seeds))
        text += (", no seed run yet" if not seeds else
                 f", seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)}")
    return text


def fmt_stats(cell: dict | None, digits: int = 1) -> str:
    """``mean ± s.d. (n)`` of a :func:`seed_cells` entry; ``mean (1 seed)``; ``not run``."""
    if cell is None or cell["n"] == 0:
        return "not run"
    if cell["sd"] is None:
        return f"{cell['mean']:.{digits}f} (1 seed)"
    return f"{cell['mean']:.{digits}f} ± {cell['sd']:.{digits}f} ({cell['n']})"


def _signed(v, digits: int = 1) -> str:
    return "–" if v is None else f"{v:+.{digits}f}"


def short_budget(preset: str, tex: bool = False) -> str:
    """``20,000 steps, L_5,000``: a preset's training steps and test-set evaluation k, for a header
    (``tex``: the bound as MyST math)."""
    b = preset_budget(preset)
    return f"{b['steps']:,} steps, {_bound(b['k_test'], tex)}"


def seed_markdown_table(rows: list[dict], est: str, preset: str, reference_preset: str | None = "paper",
                        tex: bool = False, reference_ms=None, progress=()) -> str:
    """Markdown for one estimator column of :func:`seed_rows` (test set): the paper's number, the
    reference preset's seed-0 number (``reference_preset``; the rows need ``{est}_ref``) with its
    difference, and the seeds of ``preset`` as mean ± s.d. (seeds) with the difference of the mean; the
    budget of every column (steps, evaluation k, seeds) is in its header (``tex``: bounds as math).
    ``reference_ms``: the m that the reference grid runs (others show "–", not "not run yet").
    ``progress``: the progress files of unfinished runs (:func:`results.load_progress`); a reference
    cell with one of ``reference_preset`` shows "in progress" with its step instead of "not run yet"."""
    ref = reference_preset is not None and f"{est}_ref" in rows[0]
    running = {(p["config"]["model"], p["config"]["samples"], "vimco" if p["config"]["estimator"] == "nvil"
                else p["config"]["estimator"]): p["step"] for p in progress
               if p["config"].get("preset") == reference_preset and R.is_cell(p)}  # a variant is not the cell
    head = ["model", "m", f"paper ({'$10^7$' if tex else '10^7'} steps, {_bound(PAPER_K, tex)})"]
    if ref:
        head += [f"ours, {reference_preset} preset ({short_budget(reference_preset, tex)}, seed 0)", "diff"]
    head += [f"ours, {preset} preset ({short_budget(preset, tex)}; mean ± s.d. (seeds))", "diff"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], str(r["m"]), f"{r[f'{est}_paper']:.1f}"]
        if ref:
            v = r[f"{est}_ref"]
            outside = reference_ms is not None and r["m"] not in reference_ms
            step = running.get((r["model"], r["m"], est))
            todo = "not run yet" if step is None else f"in progress (step {step:,})"
            cells += ["–" if outside else todo if v is None else f"{v:.1f}", _signed(r[f"{est}_ref_diff"])]
        cells += [fmt_stats(r[est]), _signed(r[f"{est}_diff"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def margin_markdown_table(margin_rows: list[dict]) -> str:
    """Markdown for :func:`margins`: the paper's margin, ours (mean ± s.e., seeds), the claimed side and
    the verdict."""
    lines = ["| model | m | claimed | paper | ours: mean ± s.e. (seeds) | verdict |", "|---|---|---|---|---|---|"]
    for r in margin_rows:
        side = "< 0" if r["claimed"] < 0 else "> 0"
        if r["n"] == 0:
            ours = "not run"
        elif r["se"] is None:
            ours = f"{r['mean']:+.2f} (1 seed)"
        else:
            ours = f"{r['mean']:+.2f} ± {r['se']:.2f} ({r['n']})"
        why = "" if r["n"] == 0 or r["n"] > 1 else f" ({SINGLE_SEED})"
        lines.append(f"| {r['model']} | {r['m']} | {side} | {r['paper']:+.1f} | {ours} | "
                     f"{'–' if r['n'] == 0 else r['verdict'] + why} |")
    return "\n".join(lines) + "\n"


def contrast_markdown_table(contrast_rows: list[dict], pooled: dict | None = None) -> str:
    """Markdown for :func:`contrasts` (and :func:`pooled_contrast` as a last row)."""
    lines = ["| non-linear minus linear | m | paper | ours: contrast ± s.e. | verdict |", "|---|---|---|---|---|"]
    for r in contrast_rows:
        ours = ("not run" if r["contrast"] is None else f"{r['contrast']:+.2f}" if r["se"] is None
                else f"{r['contrast']:+.2f} ± {r['se']:.2f}")
        why = "" if r["contrast"] is None or r["se"] is not None else f" ({SINGLE_SEED})"
        lines.append(f"| {r['nonlinear']} − {r['linear']} | {r['m']} | {r['paper']:+.1f} | {ours} | "
                     f"{'–' if r['contrast'] is None else r['verdict'] + why} |")
    if pooled is not None:
        ours = ("no cell with seeds" if pooled["contrast"] is None
                else f"{pooled['contrast']:+.2f} ± {pooled['se']:.2f} ({pooled['cells']} cells)")
        paper = "–" if pooled["paper"] is None else f"{pooled['paper']:+.1f}"
        lines.append(f"| pooled | all | {paper} | {ours} | {pooled['verdict']} |")
    return "\n".join(lines) + "\n"


def _pace(progress: dict) -> tuple[float | None, int, str]:
    """Training seconds per step of a run in progress, the step they are counted from, and the clock
    (:mod:`.clocks`): CPU seconds since its last start where the run counts them and that start recorded
    them; else wall-clock seconds since its last start, if that start recorded them (an earlier machine or
    code may have been slower); else wall-clock seconds since step 0."""
    step = progress["step"]
    last = (progress.get("run_starts") or [{}])[-1]
    if step > last.get("step", step):
        for key, clock in (("train_cpu_seconds", "cpu"), ("train_seconds", "wall")):
            if progress.get(key) is not None and last.get(key) is not None:
                return (progress[key] - last[key]) / (step - last["step"]), last["step"], clock
    return (progress["train_seconds"] / step if step else None), 0, "wall"


def progress_rows(progress: list[dict], dataset: str = "mnist") -> list[dict]:
    """One row per progress file (an unfinished long run): model, estimator, m, steps done of the
    preset's, the last and the best validation NLL (minus the validation bound), training seconds so
    far, the run's own pace (``seconds_per_step``: training seconds over steps, its validations included,
    since its last start where that start recorded its training seconds (``pace_since``: that start's
    step), else over the whole run (``pace_since`` 0); CPU seconds where the run counts them, else
    wall-clock seconds (``pace_clock``: "cpu" or "wall", :mod:`.clocks`)) and the training hours that pace leaves
    (``hours_to_go``; the final evaluation not counted), and the paper's final test NLL of that cell (a different quantity: test
    L_50,000 after the full budget)."""
    out = []
    for p in progress:
        c, curves = p["config"], p["curves"]
        steps = c["steps"]
        pace, since, clock = _pace(p)
        last = -curves["valid_bound"][-1] if curves["valid_bound"] else None
        best = p["best"].get("valid_bound") if isinstance(p.get("best"), dict) else None
        paper = (paper_numbers.table1(dataset, "test", c["model"], c["samples"], c["estimator"])
                 if c["model"] in paper_numbers.TABLE1_MODELS and c["task"] == "density" else None)
        out.append({"run": p["run"], "model": c["model"], "estimator": c["estimator"], "m": c["samples"],
                    "step": p["step"], "steps": steps, "fraction": p["step"] / steps,
                    "valid_examples": c.get("valid_examples"), "valid_k": c.get("valid_samples"),
                    "last_valid_nll": last, "last_valid_step": curves["valid_step"][-1] if curves["valid_step"] else None,
                    "best_valid_nll": None if best is None else -best, "train_seconds": p["train_seconds"],
                    "seconds_per_step": pace, "pace_since": since, "pace_clock": clock, "hours_to_go": None if pace is None else (steps - p["step"]) * pace / 3600,
                    "paper_test": paper})
    return out


def reference_run_name(config: dict) -> str:
    """The run name of the preset cell that a run with budget overrides varies: the same coordinates
    with every overridden setting at the preset's value (:func:`identity.overrides`)."""
    base = identity.preset_config(config)
    return identity.run_name({**config, **{f: base[f] for f in identity.overrides(config)}})


def _best_until(curves: dict, step: int) -> tuple[float, int]:
    """The lowest validation NLL of a curve at steps <= ``step``, and its step."""
    pairs = [(-v, s) for s, v in zip(curves["valid_step"], curves["valid_bound"]) if s <= step]
    return min(pairs)


def variant_rows(progress: list[dict]) -> list[dict]:
    """Unfinished runs with budget overrides (e.g. ``--weight-decay``), each set beside the unfinished
    preset cell it varies, at equal steps.

    For every progress file that is not its preset's cell (:func:`results.is_cell`) and whose reference
    cell (:func:`reference_run_name`) is among ``progress``, with at least one validation step in common:
    ``overrides`` (setting -> value), the last common validation step ``common_step``, both validation
    NLLs there (``valid_nll``, ``reference_valid_nll``, and ``difference`` = variant - reference), and the
    best validation NLL of each up to that step (``best_nll`` at ``best_step``, ``reference_best_nll`` at
    ``reference_best_step``; ``best_difference`` = variant - reference): the number early stopping would
    choose by, compared over the same stretch of training; and the variant's own ``step`` (its whole curve's
    best is its progress file's ``best``).  Sorted by reference run, then by
    the overridden settings and their values (numbers in numeric order); a variant whose reference is not
    in ``progress`` is left out."""
    by_name = {p["run"]: p for p in progress}
    out = []
    for p in progress:
        if R.is_cell(p):
            continue
        ref = by_name.get(reference_run_name(p["config"]))
        if ref is None:
            continue
        mine = dict(zip(p["curves"]["valid_step"], p["curves"]["valid_bound"]))
        theirs = dict(zip(ref["curves"]["valid_step"], ref["curves"]["valid_bound"]))
        common = sorted(set(mine) & set(theirs))
        if not common:
            continue
        at = common[-1]
        best, best_step = _best_until(p["curves"], at)
        rbest, rbest_step = _best_until(ref["curves"], at)
        c = p["config"]
        out.append({"run": p["run"], "reference": ref["run"], "model": c["model"], "estimator": c["estimator"],
                    "m": c["samples"], "overrides": identity.overrides(c), "step": p["step"],
                    "common_step": at, "valid_nll": -mine[at], "reference_valid_nll": -theirs[at],
                    "difference": theirs[at] - mine[at], "best_nll": best, "best_step": best_step,
                    "reference_best_nll": rbest, "reference_best_step": rbest_step,
                    "best_difference": best - rbest, "valid_k": c.get("valid_samples")})
    return sorted(out, key=lambda r: (r["reference"], [_sort_key(k, v) for k, v in sorted(r["overrides"].items())]))


def _sort_key(field: str, value) -> tuple:
    """Orders override values: numbers numerically, before anything else (as text)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return (field, 0, float(value), "") if number else (field, 1, 0.0, str(value))


def interim_estimate(sweep: dict, dataset: str = "mnist") -> dict:
    """What an interim k-sweep (``evaluate ksweep --interim``) says of an unfinished run at its step: an
    estimate of the run's test NLL at the paper's evaluation, :math:`-\\mathcal{L}_{50000}` on the full
    test set, had it stopped there.

    The sweep measures, on its evenly spaced test images, the mean :math:`\\mathcal{L}_{50000} -
    \\mathcal{L}_{100}` (the k part, :func:`k_part`) with the paired standard error of the per-image
    differences (``stderr_minus_k100``), and :math:`\\bar{\\mathcal{L}}_{100}` on the full test set
    (``full_test``).  The estimate is :math:`-(\\bar{\\mathcal{L}}_{100}^{\\text{full}} + \\text{k part})`:
    it assumes the k part of the whole test set is the one of the sweep's images, and its standard error
    is the k part's (the full-test bound's own Monte Carlo error, over 10,000 images, is far smaller).
    Returns the run, model, estimator, m, ``step`` of ``steps``, ``full_test_nll``, ``k_part``,
    ``k_part_se`` (``None`` for a sweep without paired errors), ``estimate``, the paper's final test NLL
    of the cell (``paper``; ``None`` outside Table 1), ``difference`` = estimate - paper, and
    ``best_of``: for a sweep of the best validation model so far (``--model best``) the step of the
    checkpoint it was the best of, else ``None``."""
    full = sweep["full_test"]
    part = k_part(sweep, int(full["k"]))["value"]
    ks = list(sweep["ks"])
    paired = sweep.get("stderr_minus_k100")
    se = paired[ks.index(PAPER_K)] if paired and full["k"] == 100 else None
    c = sweep["config"]
    paper = (paper_numbers.table1(dataset, "test", c["model"], c["samples"], c["estimator"])
             if c.get("task") == "density" and c["model"] in paper_numbers.TABLE1_MODELS else None)
    estimate = -full["mean_bound"] - part
    return {"run": sweep["run"], "model": c["model"], "estimator": c["estimator"], "m": c["samples"],
            "step": sweep["step"], "steps": c["steps"], "examples": sweep["examples"],
            "full_k": int(full["k"]), "full_examples": int(full["examples"]), "full_test_nll": -full["mean_bound"],
            "k_part": part, "k_part_se": se, "estimate": estimate, "paper": paper,
            "difference": None if paper is None else estimate - paper,
            "best_of": (sweep.get("best_of") or {}).get("checkpoint_step")}


def posterior_gap(sweep: dict) -> dict:
    """How far a trained inference network is from its model's posterior, from a k-sweep.

    For one image :math:`\\mathcal{L}_1 = \\log p(x) - \\mathrm{KL}(q(z \\mid x) \\,\\|\\, p(z \\mid x))` and
    :math:`\\mathbb{E}\\,\\mathcal{L}_k \\le \\log p(x)` for every k (Burda et al.), so the sweep's mean
    :math:`\\bar{\\mathcal{L}}_{50000} - \\bar{\\mathcal{L}}_1` is, up to its Monte Carlo error, a lower bound
    on the mean KL divergence from :math:`q` to the true posterior over the sweep's images.  Returns
    ``elbo_nll`` (:math:`-\\bar{\\mathcal{L}}_1`), ``nll`` (:math:`-\\bar{\\mathcal{L}}_{50000}`), ``kl_bound``
    (their difference, nats), ``se`` and ``paired``.  Where the sweep records it (``stderr_minus_k1``),
    ``se`` is the paired standard error of the per-image differences :math:`\\mathcal{L}_{50000} -
    \\mathcal{L}_1` and ``paired`` is true; an older sweep has only the errors of the two means, and ``se``
    is then :math:`\\sqrt{\\mathrm{se}_1^2 + \\mathrm{se}_{50000}^2}` (``paired`` false), which overstates the
    error of the difference when the two are positively correlated across images, as an image's bounds
    are."""
    ks, bound, se = list(sweep["ks"]), list(sweep["mean_bound"]), list(sweep["stderr_bound"])
    if 1 not in ks or PAPER_K not in ks:
        raise ValueError(f"the sweep of {sweep.get('run')} needs k = 1 and k = {PAPER_K} (ks: {ks})")
    i, j = ks.index(1), ks.index(PAPER_K)
    paired = sweep.get("stderr_minus_k1")
    return {"elbo_nll": -bound[i], "nll": -bound[j], "kl_bound": bound[j] - bound[i],
            "se": paired[j] if paired else math.sqrt(se[i] ** 2 + se[j] ** 2), "paired": bool(paired)}
