"""Seeds, paired margins, verdicts, the contrast and the k-part of the gap (concrete_ref.experiments.claims),
and the progress reader (results.load_progress), on synthetic results whose statistics are worked out by
hand here, so a wrong divisor, sign, pairing or interpolation makes a test fail."""

import json
import math

import pytest

from concrete_ref.experiments import claims as C, identity, paper_numbers, results as R


def _config(model, m, estimator, seed=0, preset="book5k"):
    from concrete_ref.experiments.cli import default_temperatures

    post, prior = default_temperatures("density", 2)
    return identity.preset_config(dict(task="density", dataset="mnist", model=model, arity=2, estimator=estimator,
                                       samples=m, seed=seed, preset=preset, posterior_temperature=post,
                                       prior_temperature=prior))


def _result(model, m, estimator, test_nll, seed=0, preset="book5k", train_nll=None):
    cfg = _config(model, m, estimator, seed, preset)
    train = test_nll + 1.0 if train_nll is None else train_nll
    return {"config": cfg, "metrics": {"test_nll": test_nll, "train_nll": train},
            "steps_done": cfg["steps"], "train_seconds": 10.0, "eval_seconds": 5.0,
            "provenance": {"cpu": "Test CPU", "torch_threads": 1}, "file": identity.run_name(cfg) + ".json"}


def _sweep(result, bounds, ks=(1, 10, 100, 1000, 10_000, 50_000), examples=500):
    name = result["file"][:-5]
    return {"run": name, "config": result["config"], "examples": examples, "ks": list(ks),
            "mean_bound": list(bounds), "stderr_bound": [1.0] * len(ks), "seconds": 1.0, "provenance": {}}


# ------------------------------------------------------------------ statistics and the verdict rule
def test_seed_stats_of_known_numbers():
    s = C.seed_stats([1.0, 2.0, 3.0, 4.0])
    assert s["n"] == 4 and s["mean"] == pytest.approx(2.5)
    assert s["sd"] == pytest.approx(math.sqrt(5 / 3))  # sum of squares 5, divisor n - 1 = 3
    assert s["se"] == pytest.approx(math.sqrt(5 / 3) / 2)
    assert C.seed_stats([7.0]) == {"n": 1, "mean": 7.0, "sd": None, "se": None}
    assert C.seed_stats([]) == {"n": 0, "mean": None, "sd": None, "se": None}


@pytest.mark.parametrize("mean, se, sign, expected", [
    (3.0, 1.0, 1, C.HOLDS),         # 3 s.e. on the claimed side
    (1.0, 1.0, 1, C.UNRESOLVED),    # 1 s.e.
    (2.0, 1.0, 1, C.UNRESOLVED),    # exactly 2 s.e. is not beyond twice its standard error
    (2.01, 1.0, 1, C.HOLDS),
    (-3.0, 1.0, 1, C.REVERSED),     # 3 s.e. on the other side
    (-3.0, 1.0, -1, C.HOLDS),       # a linear model's claim is a negative margin
    (3.0, 1.0, -1, C.REVERSED),
    (50.0, None, 1, C.UNRESOLVED),  # one seed: no standard error, never resolved
])
def test_verdict_two_standard_errors(mean, se, sign, expected):
    assert C.verdict(mean, se, sign) == expected


def test_verdict_single_seed_and_bad_sign():
    assert C.verdict(10.0, 0.1, 1, n=1) == C.UNRESOLVED
    with pytest.raises(ValueError):
        C.verdict(1.0, 1.0, 0)


# ------------------------------------------------------------------ cells and paired margins
@pytest.fixture
def seeded():
    """Three seeds of two cells, margins worked out by hand:
    200H~784V m=5: Concrete 100, 101, 102; VIMCO 103, 104.5, 105 -> d = 3, 3.5, 3
    200H-784V m=1: Concrete 110, 111, 112; NVIL 110.5, 110.5, 112.5 -> d = 0.5, -0.5, 0.5
    plus a fourth Concrete seed of 200H~784V m=5 without its VIMCO partner (unpaired)."""
    out = []
    for s, (c, v) in enumerate([(100.0, 103.0), (101.0, 104.5), (102.0, 105.0)]):
        out += [_result("200H~784V", 5, "concrete", c, s), _result("200H~784V", 5, "vimco", v, s)]
    for s, (c, v) in enumerate([(110.0, 110.5), (111.0, 110.5), (112.0, 112.5)]):
        out += [_result("200H-784V", 1, "concrete", c, s), _result("200H-784V", 1, "nvil", v, s)]
    out.append(_result("200H~784V", 5, "concrete", 99.0, 3))
    out.append(_result("200H~784V", 5, "concrete", 50.0, 0, preset="book"))  # another preset: not counted
    return out


def test_seed_cells_mean_sd_and_seeds(seeded):
    cells = C.seed_cells(seeded, "book5k")
    c = cells[("200H~784V", 5, "concrete")]
    assert c["seeds"] == [0, 1, 2, 3] and c["values"] == [100.0, 101.0, 102.0, 99.0]
    assert c["mean"] == pytest.approx(100.5) and c["sd"] == pytest.approx(math.sqrt(5 / 3))
    assert cells[("200H-784V", 1, "vimco")]["values"] == [110.5, 110.5, 112.5]  # NVIL is the m = 1 "VIMCO"
    assert ("200H~784V", 5, "concrete") in C.seed_cells(seeded, "book")
    assert C.seed_cells(seeded, "book")[("200H~784V", 5, "concrete")]["values"] == [50.0]


def test_paired_margin_verdicts(seeded):
    rows = {(r["model"], r["m"]): r for r in C.margins(seeded, "book5k")}
    nl = rows[("200H~784V", 5)]
    assert nl["per_seed"] == {0: 3.0, 1: 3.5, 2: 3.0} and nl["unpaired"] == [3]
    assert nl["mean"] == pytest.approx(19 / 6)
    sd = math.sqrt(((3 - 19 / 6) ** 2 * 2 + (3.5 - 19 / 6) ** 2) / 2)
    assert nl["sd"] == pytest.approx(sd) and nl["se"] == pytest.approx(sd / math.sqrt(3))
    assert nl["claimed"] == 1 and nl["verdict"] == C.HOLDS  # Concrete better by ~19 s.e.
    lin = rows[("200H-784V", 1)]
    assert lin["mean"] == pytest.approx(1 / 6) and lin["claimed"] == -1
    assert lin["verdict"] == C.UNRESOLVED  # +0.17 against a s.e. of 0.33
    assert lin["paper"] == pytest.approx(paper_numbers.table1("mnist", "test", "200H-784V", 1, "nvil")
                                         - paper_numbers.table1("mnist", "test", "200H-784V", 1, "concrete"))
    assert lin["paper_agrees"]  # the paper's own cell: NVIL better for the linear model
    assert rows[("200H-784V", 5)]["n"] == 0 and rows[("200H-784V", 5)]["why"] == "not run"


def test_a_linear_margin_beyond_two_se_against_the_claim_is_reversed():
    res = []
    for s, (c, v) in enumerate([(100.0, 104.0), (100.0, 105.0), (100.0, 106.0)]):  # d = 4, 5, 6: se = 0.577
        res += [_result("200H-200H-784V", 50, "concrete", c, s), _result("200H-200H-784V", 50, "vimco", v, s)]
    row = next(r for r in C.margins(res, "book5k") if (r["model"], r["m"]) == ("200H-200H-784V", 50))
    assert row["se"] == pytest.approx(1 / math.sqrt(3)) and row["verdict"] == C.REVERSED


def test_one_seed_is_never_resolved():
    res = [_result("200H~784V", 1, "concrete", 100.0), _result("200H~784V", 1, "nvil", 130.0)]
    row = next(r for r in C.margins(res, "book5k") if (r["model"], r["m"]) == ("200H~784V", 1))
    assert row["mean"] == pytest.approx(30.0) and row["se"] is None
    assert row["verdict"] == C.UNRESOLVED and row["why"] == C.SINGLE_SEED
    assert C.SINGLE_SEED in C.margin_markdown_table(C.margins(res, "book5k"))


def test_two_results_for_one_cell_and_seed_name_both():
    a, b = _result("200H~784V", 1, "concrete", 100.0), _result("200H~784V", 1, "concrete", 101.0)
    b["file"] = "copy.json"
    with pytest.raises(R.CellConflictError) as err:
        C.seed_cells([a, b], "book5k")
    assert a["file"] in str(err.value) and "copy.json" in str(err.value)


def test_contrast_and_its_standard_error(seeded):
    extra = []
    # 200H-784V m=5: d = -1, -2, -3 (mean -2, se 1/sqrt(3)); with 200H~784V m=5 (mean 19/6): contrast 31/6
    for s, (c, v) in enumerate([(100.0, 99.0), (100.0, 98.0), (100.0, 97.0)]):
        extra += [_result("200H-784V", 5, "concrete", c, s), _result("200H-784V", 5, "vimco", v, s)]
    rows = C.margins(seeded + extra, "book5k")
    con = {(r["nonlinear"], r["m"]): r for r in C.contrasts(rows)}
    r = con[("200H~784V", 5)]
    by = {(x["model"], x["m"]): x for x in rows}
    assert r["contrast"] == pytest.approx(19 / 6 + 2)
    assert r["se"] == pytest.approx(math.hypot(by[("200H~784V", 5)]["se"], 1 / math.sqrt(3)))
    assert r["verdict"] == C.HOLDS  # 5.2 nats against a s.e. of 0.6
    assert r["paper"] == pytest.approx(by[("200H~784V", 5)]["paper"] - by[("200H-784V", 5)]["paper"])
    assert con[("200H~784V", 1)]["contrast"] is None  # 200H~784V m=1 not run
    pooled = C.pooled_contrast(C.contrasts(rows))
    assert pooled["cells"] == 1 and pooled["contrast"] == pytest.approx(r["contrast"])
    assert pooled["se"] == pytest.approx(r["se"])
    assert C.pooled_contrast(C.contrasts(C.margins([], "book5k")))["verdict"] == C.UNRESOLVED


# ------------------------------------------------------------------ the evaluation's k
def test_k_part_exact_and_interpolated():
    res = _result("200H~784V", 1, "concrete", 116.0, preset="book")
    bounds = [-137.0, -122.0, -117.0, -115.0, -114.0, -113.5]
    sweep = _sweep(res, bounds)
    exact = C.k_part(sweep, 1000)
    assert exact["value"] == pytest.approx(1.5) and not exact["interpolated"]  # -113.5 - (-115)
    mid = C.k_part(sweep, 5000)
    t = math.log(5) / math.log(10)  # 5000 between 1000 and 10000 on a log axis
    assert mid["value"] == pytest.approx(-113.5 - (-115.0 + t * 1.0)) and mid["interpolated"]
    assert mid["low"] == pytest.approx(0.5) and mid["high"] == pytest.approx(1.5)
    assert mid["low"] <= mid["value"] <= mid["high"]
    with pytest.raises(ValueError):
        C.k_part(sweep, 100_000)
    with pytest.raises(ValueError):
        C.k_part(_sweep(res, bounds[:5], ks=(1, 10, 100, 1000, 10_000)), 1000)  # no k = 50,000


def test_gap_split_adds_up():
    res = _result("200H~784V", 1, "concrete", 116.0, preset="book")
    other_seed = _result("200H~784V", 1, "concrete", 117.0, seed=1, preset="book")
    sweep = _sweep(res, [-137.0, -122.0, -117.0, -115.0, -114.0, -113.5])
    rows = C.gap_split([res, other_seed], [sweep], "book")
    assert len(rows) == 1
    r = rows[0]
    paper = paper_numbers.table1("mnist", "test", "200H~784V", 1, "concrete")
    assert r["k_used"] == 1000 and r["gap"] == pytest.approx(116.0 - paper)
    assert r["k_part"] == pytest.approx(1.5) and r["rest"] == pytest.approx(116.0 - paper - 1.5)
    r5 = C.gap_split([_result("200H~784V", 1, "concrete", 116.0)],
                     [_sweep(_result("200H~784V", 1, "concrete", 116.0), sweep["mean_bound"])], "book5k")[0]
    assert r5["k_used"] == 5000 and r5["interpolated"] and r5["k_low"] < r5["k_part"] < r5["k_high"]


def test_ksweep_margins_pair_the_two_estimators():
    c, v = _result("200H-784V", 1, "concrete", 110.0), _result("200H-784V", 1, "nvil", 108.0)
    rows = C.ksweep_margins([_sweep(c, [-130, -120, -115, -112, -111, -110.5]),
                             _sweep(v, [-125, -118, -112, -110, -109, -108.0])], "book5k")
    assert len(rows) == 1 and rows[0]["ks"][-1] == 50_000
    assert rows[0]["margin"] == pytest.approx([-5, -2, -3, -2, -2, -2.5])  # NLL_NVIL - NLL_Concrete per k
    assert C.ksweep_margins([_sweep(c, [-130] * 6)], "book5k") == []  # one estimator only: no margin


# ------------------------------------------------------------------ rows, tables, budgets
def test_seed_rows_and_markdown(seeded):
    paper_run = _result("200H~784V", 5, "concrete", 90.0, preset="paper")
    rows = C.seed_rows(seeded, "book5k", reference=[paper_run])
    r = next(x for x in rows if (x["model"], x["m"]) == ("200H~784V", 5))
    paper = paper_numbers.table1("mnist", "test", "200H~784V", 5, "concrete")
    assert r["concrete_diff"] == pytest.approx(100.5 - paper)
    assert r["concrete_ref"] == 90.0 and r["concrete_ref_diff"] == pytest.approx(90.0 - paper)
    md = C.seed_markdown_table(rows, "concrete", "book5k")
    line = next(l for l in md.splitlines() if l.startswith("| 200H~784V | 5 |"))
    assert f"100.5 ± {math.sqrt(5 / 3):.1f} (4)" in line and f"{100.5 - paper:+.1f}" in line
    assert "20,000 steps, L_5,000" in md.splitlines()[0] and "10,000,000 steps, L_50,000, seed 0" in md.splitlines()[0]
    # book5k Concrete runs in 2 of the 12 rows (10 "not run"), the paper preset in 1 (11 "not run yet")
    assert md.count("not run yet") == 11 and md.count("not run") == 10 + 11
    # an unfinished paper run of a cell (its progress file) is "in progress", not "not run yet"
    running = {"config": _config("200H-784V", 1, "nvil", preset="paper"), "step": 940000}
    nvil = C.seed_markdown_table(rows, "vimco", "book5k", progress=[running])
    line = next(l for l in nvil.splitlines() if l.startswith("| 200H-784V | 1 |"))
    assert "in progress (step 940,000)" in line and nvil.count("not run yet") == 11
    assert "in progress" not in C.seed_markdown_table(rows, "concrete", "book5k", progress=[running])
    assert "(1 seed)" in C.seed_markdown_table(C.seed_rows([_result("200H-784V", 1, "concrete", 1.0)], "book5k"),
                                               "concrete", "book5k", None)


def test_budget_text_from_the_presets():
    assert C.budget_text("book5k", [2, 0, 1]) == "20,000 steps of 64, L_5,000 on the full test set, seeds 0, 1, 2"
    assert C.budget_text("book5k", [], "train") == \
        "20,000 steps of 64, L_5,000 on 10,000 evenly spaced training images, no seed run yet"
    assert C.budget_text("book", [0]) == "20,000 steps of 64, L_1,000 on the full test set, seed 0"
    assert C.budget_text("paper") == "10,000,000 steps of 64, L_50,000 on the full test set"
    assert C.budget_text("book", [0], tex=True) == \
        "20,000 steps of 64, $\\mathcal{L}_{1{,}000}$ on the full test set, seed 0"


# ------------------------------------------------------------------ files: results and progress
def _progress(cfg, steps=(100_000, 200_000), bounds=(-116.0, -115.0)):
    name = identity.run_name(cfg)
    return {"run": name, "config": cfg, "step": steps[-1],
            "curves": {"step": [1, 2], "train_objective": [-200.0, -150.0], "valid_step": list(steps),
                       "valid_bound": list(bounds)},
            "best": {"step": steps[-1], "valid_bound": max(bounds)}, "train_seconds": 100.0, "engine": {},
            "run_starts": []}


def test_load_progress_reads_and_checks(tmp_path):
    assert R.load_progress(tmp_path) == []  # no progress folder
    cfg = _config("200H-784V", 1, "concrete", preset="paper")
    (tmp_path / "progress").mkdir()
    good = _progress(cfg)
    (tmp_path / "progress" / f"{good['run']}.json").write_text(json.dumps(good))
    got = R.load_progress(tmp_path)
    assert [p["file"] for p in got] == [f"{good['run']}.json"]
    row = C.progress_rows(got)[0]
    assert row["step"] == 200_000 and row["fraction"] == pytest.approx(0.02)
    assert row["last_valid_nll"] == pytest.approx(115.0) and row["best_valid_nll"] == pytest.approx(115.0)
    assert row["paper_test"] == paper_numbers.table1("mnist", "test", "200H-784V", 1, "concrete")
    # its pace: 100 s over 200,000 steps, so the 9,800,000 steps to go take 4,900 s
    assert row["seconds_per_step"] == pytest.approx(5e-4) and row["hours_to_go"] == pytest.approx(4900 / 3600)
    assert row["pace_since"] == 0  # its starts recorded no training seconds: the pace of the whole run
    # resumed at step 100,000 after 80 s: since then 20 s for 100,000 steps
    resumed = {**good, "run_starts": [{"step": 0, "train_seconds": 0.0}, {"step": 100_000, "train_seconds": 80.0}]}
    row = C.progress_rows([resumed])[0]
    assert row["seconds_per_step"] == pytest.approx(2e-4) and row["pace_since"] == 100_000
    assert row["hours_to_go"] == pytest.approx(9_800_000 * 2e-4 / 3600)
    just = {**good, "run_starts": [{"step": 200_000, "train_seconds": 100.0}]}  # resumed, not a step since
    assert C.progress_rows([just])[0]["pace_since"] == 0
    assert row["pace_clock"] == "wall"
    # a run that counts CPU seconds (counted here from step 100,000, where it resumed on a checkpoint that had
    # none): 15 CPU seconds since that start, against 20 wall seconds; the CPU pace is the one used
    cpu = {**resumed, "train_cpu_seconds": 15.0, "cpu_seconds_from_step": 100_000,
           "run_starts": [{"step": 0, "train_seconds": 0.0},
                          {"step": 100_000, "train_seconds": 80.0, "train_cpu_seconds": 0.0}]}
    row = C.progress_rows([cpu])[0]
    assert row["pace_clock"] == "cpu" and row["seconds_per_step"] == pytest.approx(1.5e-4)
    assert row["pace_since"] == 100_000 and row["hours_to_go"] == pytest.approx(9_800_000 * 1.5e-4 / 3600)
    # its last start recorded no CPU seconds (code from before they were counted): wall clock
    row = C.progress_rows([{**cpu, "run_starts": resumed["run_starts"]}])[0]
    assert row["pace_clock"] == "wall" and row["seconds_per_step"] == pytest.approx(2e-4)
    assert R.load_progress(tmp_path, estimator="nvil") == []
    assert R.load_results(tmp_path) == []  # progress files are not results


@pytest.mark.parametrize("break_it, what", [
    (lambda p: p.pop("curves"), "needs curves"),
    (lambda p: p["curves"]["valid_bound"].append(-1.0), "unequal lengths"),
    (lambda p: p.update(run="another_run"), "names the run"),
])
def test_a_bad_progress_file_names_itself(tmp_path, break_it, what):
    p = _progress(_config("200H-784V", 1, "nvil", preset="paper"))
    name = f"{p['run']}.json"
    break_it(p)
    (tmp_path / "progress").mkdir()
    (tmp_path / "progress" / name).write_text(json.dumps(p))
    with pytest.raises(R.ResultFileError) as err:
        R.load_progress(tmp_path)
    assert name in str(err.value) and what in str(err.value)


def test_a_variant_run_is_set_beside_its_preset_cell_at_equal_steps_and_is_never_the_cell(tmp_path):
    cell = _config("200H~784V", 1, "nvil", preset="paper")
    variant = {**cell, "weight_decay": 0.01}
    assert identity.run_name(variant) != identity.run_name(cell)
    assert C.reference_run_name(variant) == identity.run_name(cell)
    # the cell: best 101.6 at 600k, then overfits; the variant: behind it at first, better later
    ref = _progress(cell, steps=(200_000, 400_000, 600_000, 800_000), bounds=(-105.0, -102.4, -101.6, -101.7))
    var = _progress(variant, steps=(200_000, 400_000, 600_000), bounds=(-106.0, -102.0, -100.9))
    (tmp_path / "progress").mkdir()
    for p in (ref, var):
        (tmp_path / "progress" / f"{p['run']}.json").write_text(json.dumps(p))
    got = R.load_progress(tmp_path)
    assert len(got) == 2
    (row,) = C.variant_rows(got)
    assert row["run"] == var["run"] and row["reference"] == ref["run"]
    assert row["overrides"] == {"weight_decay": 0.01} and row["common_step"] == 600_000
    assert row["valid_nll"] == pytest.approx(100.9) and row["reference_valid_nll"] == pytest.approx(101.6)
    assert row["difference"] == pytest.approx(-0.7)
    # best up to the common step (the reference's later 101.7 does not count)
    assert (row["best_nll"], row["best_step"]) == (pytest.approx(100.9), 600_000)
    assert (row["reference_best_nll"], row["reference_best_step"]) == (pytest.approx(101.6), 600_000)
    assert row["best_difference"] == pytest.approx(-0.7)
    # compared where both have a validation: the variant's curve cut at 400k compares at 400k
    short = {**var, "step": 400_000, "curves": {**var["curves"], "valid_step": [200_000, 400_000],
                                                "valid_bound": [-106.0, -102.0]}}
    (short_row,) = C.variant_rows([ref, short])
    assert short_row["common_step"] == 400_000 and short_row["best_difference"] == pytest.approx(-0.4)
    # several variants: in numeric order of the overridden value (not by their hashed names)
    others = [_progress({**cell, "weight_decay": wd}, steps=(200_000,), bounds=(-106.0,)) for wd in (0.1, 1e-4, 0.01)]
    assert [r["overrides"]["weight_decay"] for r in C.variant_rows([ref, *others])] == [1e-4, 0.01, 0.1]
    # no reference, or a cell on its own: no row; the tables never take a variant for the cell
    assert C.variant_rows([var]) == [] and C.variant_rows([ref]) == []
    rows = C.seed_rows([], "book5k", reference=[], reference_preset="paper")
    table = C.seed_markdown_table(rows, "vimco", "book5k", reference_ms=(1,), progress=[var])
    assert "in progress" not in table
    assert "in progress (step 800,000)" in C.seed_markdown_table(rows, "vimco", "book5k", reference_ms=(1,),
                                                                 progress=[ref, var])


def test_seeded_results_read_back_from_a_folder(tmp_path, seeded):
    for r in seeded:
        (tmp_path / r["file"]).write_text(json.dumps({k: v for k, v in r.items() if k != "file"}))
    res = R.load_results(tmp_path)
    assert len(res) == len(seeded)
    assert C.margins(res, "book5k") == C.margins(seeded, "book5k")


def test_a_newer_estimators_result_is_readable_but_never_a_table1_cell(tmp_path):
    r = _result("200H-784V", 1, "st-gumbel", 100.0)
    (tmp_path / r["file"]).write_text(json.dumps({k: v for k, v in r.items() if k != "file"}))
    res = R.load_results(tmp_path)
    assert [x["config"]["estimator"] for x in res] == ["st-gumbel"]
    assert C.seed_cells(res, "book5k") == {}


def test_the_committed_results_give_every_table():
    res, sweeps = R.load_results(), R.load_ksweeps()
    for preset in ("book", "book5k", "paper"):
        rows = C.margins(res, preset)
        assert len(rows) == 12 and all(r["verdict"] in (C.HOLDS, C.REVERSED, C.UNRESOLVED) for r in rows)
        assert len(C.seed_rows(res, preset, reference=res)) == 12
        for g in C.gap_split(res, sweeps, preset):
            assert g["k_low"] <= g["k_part"] <= g["k_high"] and g["rest"] == pytest.approx(g["gap"] - g["k_part"])
    assert all(0 < p["fraction"] <= 1 for p in C.progress_rows(R.load_progress()))


def test_posterior_gap_is_l50000_minus_l1_with_a_conservative_error():
    res = _result("200H-784V", 1, "concrete", 110.0, preset="book5k")
    sweep = _sweep(res, [-140.0, -122.0, -115.0, -112.0, -110.5, -109.5])
    sweep["stderr_bound"] = [1.2, 1.0, 1.0, 1.0, 1.0, 1.6]
    g = C.posterior_gap(sweep)
    assert g["elbo_nll"] == 140.0 and g["nll"] == 109.5 and g["kl_bound"] == pytest.approx(30.5)
    assert g["se"] == pytest.approx(2.0) and not g["paired"]  # sqrt(1.2^2 + 1.6^2), an older sweep
    sweep["stderr_minus_k1"] = [0.0, 0.3, 0.4, 0.45, 0.5, 0.55]  # a sweep with the per-image paired errors
    g = C.posterior_gap(sweep)
    assert g["se"] == 0.55 and g["paired"] and g["kl_bound"] == pytest.approx(30.5)
    with pytest.raises(ValueError, match="needs k = 1"):
        C.posterior_gap(_sweep(res, [-122.0, -115.0, -112.0, -110.5, -109.5], ks=(10, 100, 1000, 10_000, 50_000)))


def test_interim_estimate_adds_the_k_part_to_the_full_test_bound():
    res = _result("200H-784V", 1, "concrete", 110.0, preset="paper")
    sweep = _sweep(res, [-133.0, -116.0, -110.0, -107.5, -106.0, -105.5])
    sweep.update(step=2_000_000, full_test={"k": 100, "examples": 10_000, "mean_bound": -111.0},
                 stderr_minus_k100=[0.3, 0.1, 0.0, 0.05, 0.07, 0.08])
    sweep["config"]["steps"] = 10_000_000
    e = C.interim_estimate(sweep)
    assert e["k_part"] == pytest.approx(4.5) and e["k_part_se"] == 0.08  # -105.5 - (-110.0)
    assert e["estimate"] == pytest.approx(106.5) and e["paper"] == 107.3
    assert e["difference"] == pytest.approx(106.5 - 107.3)
