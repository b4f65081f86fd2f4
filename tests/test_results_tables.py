"""The results layer: tables, budget and claims computed from result files (synthetic ones here).

Every number below is derived by hand from the synthetic results, so a wrong index, sign or unit in
:mod:`concrete_ref.experiments.results` makes a test fail.
"""

import json
import math

import pytest

from concrete_ref.experiments import identity, paper_numbers, results as R


def _config(task, model, arity, estimator, m, temps=None, dataset="mnist", preset="book", eval_relaxed=False):
    """The full config the preset gives this cell (a preset cell: no budget override)."""
    from concrete_ref.experiments.cli import default_temperatures

    post, prior = temps or default_temperatures(task, arity)
    return identity.preset_config(dict(task=task, dataset=dataset, model=model, arity=arity, estimator=estimator,
                                       samples=m, seed=0, preset=preset, posterior_temperature=post,
                                       prior_temperature=prior, eval_relaxed=eval_relaxed))


def _result(model, m, estimator, test_nll, train_nll, train_s=3600.0, eval_s=1800.0, threads=1,
            dataset="mnist", preset="book", cpu="Test CPU", task="density", arity=2, temps=None, eval_relaxed=False):
    cfg = _config(task, model, arity, estimator, m, temps, dataset=dataset, preset=preset, eval_relaxed=eval_relaxed)
    return {
        "config": cfg,
        "metrics": {"test_nll": test_nll, "train_nll": train_nll, "test_bound": -test_nll, "train_bound": -train_nll},
        "steps_done": 20000, "train_seconds": train_s, "eval_seconds": eval_s,
        "provenance": {"cpu": cpu, "cpu_count": 2, "torch": "2.13.0+cpu", "torch_threads": threads},
        "file": identity.run_name(cfg) + ".json",
    }


@pytest.fixture
def synthetic():
    # linear model: Concrete 110 vs NVIL 120 (Concrete wins, against the paper's claim for linear models);
    # non-linear model at m = 5: Concrete 100 vs VIMCO 99 (VIMCO wins, against the claim for non-linear).
    return [
        _result("200H-784V", 1, "concrete", 110.0, 112.0),
        _result("200H-784V", 1, "nvil", 120.0, 121.0, threads=2),
        _result("200H~784V", 5, "concrete", 100.0, 101.0),
        _result("200H~784V", 5, "vimco", 99.0, 98.5),
        _result("200H~784V", 5, "vimco", 50.0, 50.0, dataset="omniglot"),  # another dataset: never in MNIST rows
    ]


def test_rows_pick_the_right_cells_and_differences(synthetic):
    rows = R.table1_rows(synthetic, "mnist")
    assert len(rows) == 12  # 4 models x m in {1, 5, 50}
    by = {(r["model"], r["m"]): r for r in rows}
    r = by[("200H-784V", 1)]
    assert r["test_concrete_ours"] == 110.0 and r["test_vimco_ours"] == 120.0
    assert r["test_concrete_paper"] == paper_numbers.table1("mnist", "test", "200H-784V", 1, "concrete")
    assert r["test_vimco_diff"] == pytest.approx(120.0 - paper_numbers.table1("mnist", "test", "200H-784V", 1, "nvil"))
    assert r["train_concrete_diff"] == pytest.approx(112.0 - paper_numbers.table1("mnist", "train", "200H-784V", 1, "concrete"))
    r = by[("200H~784V", 5)]
    assert r["test_vimco_ours"] == 99.0  # MNIST, not the Omniglot 50.0
    assert by[("200H-784V", 50)]["test_concrete_ours"] is None and by[("200H-784V", 50)]["test_concrete_diff"] is None


def test_markdown_marks_missing_cells_and_signs_differences(synthetic):
    md = R.markdown_table(R.table1_rows(synthetic), "test")
    paper = paper_numbers.table1("mnist", "test", "200H-784V", 1, "concrete")
    line = next(l for l in md.splitlines() if l.startswith("| 200H-784V | 1 |"))
    assert f"| 110.0 | {paper:.1f} | {110.0 - paper:+.1f} |" in line
    assert md.count("not run") == 4 * 10  # 10 rows without results, 4 "not run" fields each (ours, diff x 2)


def test_budget_counts_threads_and_splits_training_from_evaluation(synthetic):
    b = R.budget_summary(synthetic[:4])
    # training: 3600 s x (1 + 2 + 1 + 1) threads = 5 h; evaluation: 1800 s x 5 = 2.5 h
    assert b["train_hours"] == pytest.approx(5.0) and b["eval_hours"] == pytest.approx(2.5)
    assert b["cpu_hours"] == pytest.approx(7.5) and b["runs"] == 4
    assert b["steps"] == [20000] and b["eval_samples_test"] == [1000]
    assert b["hardware"] == ["Test CPU, 2 cores, torch 2.13.0+cpu"]
    assert R.budget_summary([])["cpu_hours"] == 0.0


def test_family_differences_mean_and_worst(synthetic):
    extra = _result("200H-784V", 5, "concrete", 200.0, 200.0)
    fam = R.family_differences(R.table1_rows(synthetic + [extra]), "test")
    conc = next(f for f in fam if f["model"] == "200H-784V" and f["estimator"] == "Concrete")
    d1 = 110.0 - paper_numbers.table1("mnist", "test", "200H-784V", 1, "concrete")
    d5 = 200.0 - paper_numbers.table1("mnist", "test", "200H-784V", 5, "concrete")
    assert conc["cells"] == 2 and conc["mean_diff"] == pytest.approx((d1 + d5) / 2)
    assert conc["worst_diff"] == pytest.approx(max(d1, d5))
    empty = next(f for f in fam if f["model"] == "200H-200H-784V" and f["estimator"] == "VIMCO/NVIL")
    assert empty["cells"] == 0 and empty["mean_diff"] is None


def test_claims_cell_by_cell(synthetic):
    cl = {(c["model"], c["m"]): c for c in R.claims(R.table1_rows(synthetic), "test")}
    lin = cl[("200H-784V", 1)]
    assert lin["claimed_winner"] == "VIMCO/NVIL" and lin["our_winner"] == "Concrete"
    assert lin["claim_holds"] is False and lin["our_margin"] == pytest.approx(10.0)
    nonlin = cl[("200H~784V", 5)]
    assert nonlin["claimed_winner"] == "Concrete" and nonlin["our_winner"] == "VIMCO/NVIL"
    assert nonlin["claim_holds"] is False and nonlin["our_margin"] == pytest.approx(1.0)
    assert cl[("200H~784V", 50)]["claim_holds"] is None
    # the paper's own winner comes from its numbers: in the paper VIMCO beats Concrete on 200H-784V, m=1
    assert lin["paper_winner"] == "VIMCO/NVIL"


def test_load_results_filters_and_table_file_text(tmp_path, synthetic):
    for r in synthetic:
        (tmp_path / r["file"]).write_text(json.dumps({k: v for k, v in r.items() if k != "file"}))
    run = synthetic[0]["file"][: -len(".json")]
    sweep = {"run": run, "config": synthetic[0]["config"], "examples": 2, "ks": [1, 10], "mean_bound": [-1.0, -0.5],
             "stderr_bound": [0.1, 0.1], "seconds": 1.0, "provenance": {}}
    (tmp_path / f"ksweep_{run}.json").write_text(json.dumps(sweep))  # a k-sweep, not a training result: skipped
    loaded = R.load_results(tmp_path, preset="book")
    assert sorted(r["file"] for r in loaded) == sorted(r["file"] for r in synthetic)
    assert [s["file"] for s in R.load_ksweeps(tmp_path)] == [f"ksweep_{run}.json"]
    assert R.load_results(tmp_path, preset="paper") == []
    text = R.table_file_text(loaded, "mnist", "book")
    assert "Cells run: 4 of 24" in text and "## Omniglot" in text and "no number is typed by hand" in text
    assert "CPU hours so far: 7.50" in text  # the Omniglot run is not counted in the MNIST budget


@pytest.mark.parametrize("table", ["table1", "figure4", "arity"])
def test_committed_table_file_is_up_to_date(table):
    from concrete_ref.experiments.provenance import repo_root

    path = repo_root() / "data" / "results" / f"{table}_mnist_book.md"
    assert path.read_text() == R.table_file_text(R.load_results(preset="book"), "mnist", "book", table), (
        f"data/results/{table}_mnist_book.md is out of date: run `make results-pages`")


# ---------------------------------------------------------------- structured prediction and arity tables
def _sp(model, m, estimator, test_nll, train_nll, arity=2, temp=2 / 3, relaxed=None, task="structured"):
    r = _result(model, m, estimator, test_nll, train_nll, task=task, arity=arity,
                temps=(temp, temp if task == "structured" else 0.5), eval_relaxed=relaxed is not None)
    if relaxed is not None:
        r["metrics"].update(test_nll_relaxed=relaxed[0], train_nll_relaxed=relaxed[1])
    r["file"] = f"{task}_{model}_{arity}_{estimator}_{m}_{temp:.3g}.json"
    return r


SP1, SP2 = paper_numbers.FIGURE4_MODELS


def test_figure4_rows_ignore_temperature_sweep_runs():
    runs = [_sp(SP2, 1, "concrete", 60.0, 55.0),
            _sp(SP2, 1, "concrete", 99.0, 98.0, temp=5.0, relaxed=(40.0, 38.0)),  # a sweep run, not the cell
            _sp(SP1, 5, "vimco", 57.0, 52.0),
            _result("200H-784V", 1, "concrete", 110.0, 112.0)]  # a density run: never in Figure 4
    rows = {(r["model"], r["m"]): r for r in R.figure4_rows(runs)}
    assert len(rows) == 6
    assert rows[(SP2, 1)]["test_concrete_ours"] == 60.0
    assert rows[(SP2, 1)]["test_concrete_diff"] == pytest.approx(60.0 - 56.3)
    assert rows[(SP1, 5)]["train_vimco_diff"] == pytest.approx(52.0 - 52.7)
    assert rows[(SP1, 1)]["test_concrete_ours"] is None
    cl = {(c["model"], c["m"]): c for c in R.claims(R.figure4_rows(runs + [_sp(SP1, 5, "concrete", 58.0, 50.0)]),
                                                       "test", R.figure4_claim)}
    assert cl[(SP1, 5)]["claimed_winner"] == "Concrete" and cl[(SP1, 5)]["our_winner"] == "VIMCO/NVIL"
    assert cl[(SP1, 5)]["claim_holds"] is False and cl[(SP1, 5)]["our_margin"] == pytest.approx(1.0)
    # the paper's own winners: Concrete at m = 1 and 5, VIMCO at m = 50 (both models)
    assert [c["paper_winner"] for c in R.claims(R.figure4_rows([]), "test", R.figure4_claim)] == \
        ["Concrete", "Concrete", "VIMCO/NVIL"] * 2


def test_temperature_sweep_sorted_with_integrality_gap():
    runs = [_sp(SP2, 1, "concrete", 80.0, 79.0, temp=10.0, relaxed=(50.0, 49.0)),
            _sp(SP2, 1, "concrete", 60.0, 58.0, temp=0.1, relaxed=(61.0, 59.0)),
            _sp(SP2, 1, "concrete", 60.0, 58.0)]  # the default-temperature cell has no relaxed evaluation
    sweep = R.temperature_sweep(runs)
    assert [r["temperature"] for r in sweep] == [0.1, 10.0]
    assert sweep[1]["gap"] == pytest.approx(30.0) and sweep[0]["gap"] == pytest.approx(-1.0)
    md = R.temperature_markdown_table(sweep)
    assert "| 10 | 80.0 | 50.0 | +30.0 |" in md
    two_thirds = {"temperature": 2 / 3, "test_discrete": 60.0, "test_relaxed": 61.0, "gap": -1.0}
    assert "| 0.667 | 60.0 | 61.0 | -1.0 |" in R.temperature_markdown_table([two_thirds])


def test_nary_and_arity_rows():
    runs = [_sp(SP2, 1, "concrete", 57.0, 52.0), _sp(SP2, 1, "concrete", 56.0, 47.0, arity=4, temp=1.0),
            _sp("240H~784V", 5, "concrete", 95.0, 93.0, arity=8, temp=2 / 3, task="density")]
    runs[2]["config"]["prior_temperature"] = 0.4  # App. C.4's 8-ary (lambda1, lambda2) = (2/3, 2/5)
    nary = {r["arity"]: r for r in R.nary_sp_rows(runs)}
    assert nary[2]["test_ours"] == 57.0 and nary[2]["test_paper"] == 56.3  # binary = Figure 4's m = 1 cell
    assert nary[4]["train_diff"] == pytest.approx(47.0 - 46.0) and nary[8]["test_ours"] is None
    rows = {(r["model"], r["m"]): r for r in R.arity_rows(runs)}
    r = rows[("240H~784V", 5)]
    assert r["test_8_ours"] == 95.0 and r["test_8_diff"] == pytest.approx(95.0 - 90.5)
    assert r["train_8_diff"] == pytest.approx(93.0 - 87.0) and r["test_2_ours"] is None
    md = R.arity_markdown_table(R.arity_rows(runs), "test")
    assert md.count("not run") == 2 * (18 - 1)
    text = R.table_file_text(runs, "mnist", "book", "arity")
    assert "Cells run: 1 of 18" in text and "1002.7" in text and "119.61" in text
    with pytest.raises(ValueError, match="table must be"):
        R.table_file_text(runs, "mnist", "book", "table9")


def test_arity_ranking_orders_complete_rows_only():
    temps = {2: (2 / 3, 0.5), 4: (1.0, 2 / 3), 8: (2 / 3, 0.4)}  # App. C.4's (lambda1, lambda2)
    runs = []
    for arity, nll in [(2, 90.0), (4, 89.0), (8, 92.0)]:
        run = _sp("240H~784V", 1, "concrete", nll, nll - 2, arity=arity, temp=temps[arity][0], task="density")
        run["config"]["prior_temperature"] = temps[arity][1]
        runs.append(run)
    half = _sp("240H~784V", 5, "concrete", 88.0, 86.0, arity=2, temp=2 / 3, task="density")
    half["config"]["prior_temperature"] = 0.5
    ranking = R.arity_ranking(R.arity_rows(runs + [half]), "test")
    assert len(ranking) == 1  # the m = 5 row has one arity of three
    (row,) = ranking
    assert row["ours"] == [4, 2, 8] and row["margin"] == pytest.approx(1.0)
    assert row["paper"] == [4, 2, 8]  # App. E, 240H~784V m = 1: 91.4 < 91.9 < 92.5
    assert row["eight_worse_than_four_ours"] and row["eight_worse_than_four_paper"]
    with pytest.raises(ValueError, match="split must be"):
        R.arity_ranking([], "valid")


def test_paper_number_lookups_reject_bad_arguments():
    assert paper_numbers.figure4("train", SP1, 50, "vimco") == 49.6
    with pytest.raises(ValueError, match="NVIL exactly for m = 1"):
        paper_numbers.figure4("test", SP1, 5, "nvil")
    with pytest.raises(ValueError, match="arity must be"):
        paper_numbers.nary_sp(3, "test")
    with pytest.raises(ValueError, match="split"):
        paper_numbers.arity_table(2, "240H~784V", 1, "mnist", "valid")


def test_interior_region_from_the_integrality_gap():
    sweep = [{"temperature": t, "gap": g} for t, g in [(0.1, 0.2), (1.0, 0.5), (10.0, 4.0), (100.0, 30.0)]]
    low, high = R.interior_region(sweep, threshold=1.0)
    assert low == pytest.approx(math.sqrt(10.0)) and high == math.inf
    assert R.interior_region(sweep, threshold=50.0) is None
    # gap above the threshold only in the middle: the region closes before the largest temperature
    mid = [{"temperature": t, "gap": g} for t, g in [(0.1, 0.0), (1.0, 2.0), (10.0, 0.1)]]
    assert R.interior_region(mid) == pytest.approx((math.sqrt(0.1), math.sqrt(10.0)))
    assert R.interior_region([{"temperature": 0.5, "gap": 3.0}])[0] == 0.5
    with pytest.raises(ValueError, match="threshold"):
        R.interior_region(sweep, threshold=-1)


def test_a_second_seed_never_replaces_a_table_cell():
    first = _result("200H-784V", 1, "concrete", 110.0, 112.0)
    repeat = _result("200H-784V", 1, "concrete", 150.0, 152.0)
    repeat["config"]["seed"] = 1
    for order in ([first, repeat], [repeat, first]):
        row = R.table1_rows(order)[0]
        assert row["test_concrete_ours"] == 110.0
    sweep = [_sp(SP2, 1, "concrete", 80.0, 79.0, temp=10.0, relaxed=(50.0, 49.0))]
    sweep[0]["config"]["seed"] = 2
    assert R.temperature_sweep(sweep) == []


def test_table1_results_leave_out_other_density_runs(synthetic):
    arity_run = _sp("240H~784V", 5, "concrete", 95.0, 93.0, arity=4, temp=1.0, task="density")
    arity_run["config"]["prior_temperature"] = 2 / 3
    binary_240 = _result("240H~784V", 1, "concrete", 91.0, 90.0)
    repeat = _result("200H-784V", 1, "nvil", 121.0, 122.0)
    repeat["config"]["seed"] = 1
    cells = R.table1_results(synthetic + [arity_run, binary_240, repeat], "mnist")
    assert sorted(r["file"] for r in cells) == sorted(r["file"] for r in synthetic[:4])
