"""Result readers on bad folders (issue 19): a malformed file names itself, a run with budget overrides is
never its preset's cell, a file not named after its config is an error, two files claiming one cell are
an error naming both, and an unknown preset or dataset writes nothing.

Every folder here is a ``tmp_path`` filled with small copies of committed result files, edited.
"""

import copy
import json

import pytest

from concrete_ref.experiments import identity, reproduce, results as R
from concrete_ref.experiments.provenance import repo_root

DENSITY = "density_mnist_200Hn784V_concrete_m1_book_s0"  # a Table 1 cell with a k-sweep
SWEEP = "structured_mnist_392V_240H_240H_240H_392V_concrete_m1_t0.1_0.1_book_s0"  # a temperature-sweep cell


def _template(name: str) -> dict:
    res = json.loads((repo_root() / "data" / "results" / f"{name}.json").read_text())
    res.pop("curves", None)  # keep the copies small
    return res


def _write(folder, res: dict, name: str | None = None) -> str:
    """Write ``res`` as ``name`` (default: the name its config gives it); returns the file name."""
    name = name or identity.run_name(res["config"]) + ".json"
    (folder / name).write_text(json.dumps(res))
    return name


def _cell(folder, model="200H~784V", m=1):
    """Table 1's test NLL (Concrete) of one cell, read from ``folder``."""
    row = next(row for row in R.table1_rows(R.load_results(folder)) if row["model"] == model and row["m"] == m)
    return row["test_concrete_ours"]


def _readers():
    """Every reader of a results folder, as functions of the folder."""
    return {"load_results": R.load_results, "reproduce.result_rows": reproduce.result_rows}


# ------------------------------------------------------------------ 1. a malformed file names itself
@pytest.mark.parametrize("reader", ["load_results", "reproduce.result_rows"])
def test_invalid_json_names_the_file(tmp_path, reader):
    _write(tmp_path, _template(DENSITY))
    (tmp_path / "density_broken.json").write_text('{"config": {"task": "density"')  # truncated by a crash
    with pytest.raises(ValueError) as err:
        _readers()[reader](tmp_path)
    assert str(tmp_path / "density_broken.json") in str(err.value) and "not valid JSON" in str(err.value)


def _drop(res, *keys):
    res = copy.deepcopy(res)
    *parents, last = keys
    d = res
    for k in parents:
        d = d[k]
    del d[last]
    return res


@pytest.mark.parametrize("reader", ["load_results", "reproduce.result_rows"])
@pytest.mark.parametrize("broken, what", [
    (lambda r: _drop(r, "metrics"), "metrics"),
    (lambda r: _drop(r, "config"), "config"),
    (lambda r: _drop(r, "metrics", "test_nll"), "test_nll"),
    (lambda r: _drop(r, "config", "model"), "model"),
    (lambda r: {**r, "metrics": [1.0]}, "metrics"),
    (lambda r: {**r, "config": {**r["config"], "preset": "nope"}}, "preset"),
    (lambda r: [r], "JSON object"),
])
def test_a_training_result_without_its_keys_names_the_file_and_the_key(tmp_path, reader, broken, what):
    res = _template(DENSITY)
    _write(tmp_path, broken(res), f"{DENSITY}.json")
    with pytest.raises(ValueError) as err:
        _readers()[reader](tmp_path)
    assert str(tmp_path / f"{DENSITY}.json") in str(err.value) and what in str(err.value)


@pytest.mark.parametrize("reader", ["load_results", "load_ksweeps", "reproduce.result_rows"])
@pytest.mark.parametrize("key", ["mean_bound", "run", "config"])
def test_a_ksweep_without_its_keys_names_the_file(tmp_path, reader, key):
    _write(tmp_path, _template(DENSITY))
    _write(tmp_path, _drop(_template(f"ksweep_{DENSITY}"), key), f"ksweep_{DENSITY}.json")
    fn = {**_readers(), "load_ksweeps": getattr(R, "load_ksweeps", None)}[reader]
    assert fn is not None, "results.load_ksweeps: the checked reader of k-sweeps"
    with pytest.raises(ValueError) as err:
        fn(tmp_path)
    assert f"ksweep_{DENSITY}.json" in str(err.value) and key in str(err.value)


def test_cli_names_a_malformed_file_and_writes_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "results"
    folder.mkdir(parents=True)
    _write(folder, _drop(_template(DENSITY), "metrics"), f"{DENSITY}.json")
    monkeypatch.setattr(R, "repo_root", lambda: tmp_path)
    with pytest.raises(SystemExit) as err:
        R.main(["table1", "--preset", "book"])
    assert f"{DENSITY}.json" in str(err.value.code) and "metrics" in str(err.value.code)
    assert sorted(p.name for p in folder.iterdir()) == [f"{DENSITY}.json"]


@pytest.mark.parametrize("reader", ["load_results", "reproduce.result_rows"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")], ids=repr)
@pytest.mark.parametrize("key", ["test_nll", "train_bound"])
def test_a_non_finite_metric_never_reaches_a_table(tmp_path, reader, value, key):
    """Issue 19 §2: 'a NaN never reaches a results file or a table'. A result file with a NaN (JSON's NaN,
    from older code or a hand edit) was read and printed as 'nan' in Table 1; now an error naming the file."""
    res = _template(DENSITY)
    res["metrics"][key] = value
    _write(tmp_path, res)
    with pytest.raises(ValueError) as err:
        _readers()[reader](tmp_path)
    assert f"{DENSITY}.json" in str(err.value) and "not finite" in str(err.value) and key in str(err.value)


def test_a_non_finite_ksweep_bound_is_an_error(tmp_path):
    _write(tmp_path, _template(DENSITY))
    sweep = _template(f"ksweep_{DENSITY}")
    sweep["mean_bound"][-1] = float("nan")
    _write(tmp_path, sweep, f"ksweep_{DENSITY}.json")
    with pytest.raises(ValueError, match=f"ksweep_{DENSITY}.json.*NaN or infinite"):
        R.load_ksweeps(tmp_path)


# ------------------------------------------- 2. overrides are never a preset's cell; names follow configs
def _short_run(res):
    res = copy.deepcopy(res)
    res["config"]["steps"] = res["steps_done"] = 5
    res["metrics"]["test_nll"] = 150.0
    return res


def test_a_run_with_overrides_is_never_the_table_cell(tmp_path):
    cell, short = _template(DENSITY), _short_run(_template(DENSITY))
    name = _write(tmp_path, short)
    assert name != f"{DENSITY}.json" and "_x" in name  # another run, another name
    assert [r["file"] for r in R.load_results(tmp_path)] == [name]  # still a result...
    assert _cell(tmp_path) is None  # ... but not the cell
    assert R.table1_results(R.load_results(tmp_path)) == []
    assert "No cell has been run yet (0 of 24)" in R.table_file_text(R.load_results(tmp_path), "mnist", "book")
    _write(tmp_path, cell)  # with the preset cell beside it, the cell is the preset's (sorted after it by name)
    assert _cell(tmp_path) == cell["metrics"]["test_nll"]


def test_an_overridden_temperature_sweep_run_is_not_a_sweep_cell(tmp_path):
    short = _short_run(_template(SWEEP))
    _write(tmp_path, short)
    assert R.temperature_sweep(R.load_results(tmp_path)) == []


def test_the_reproduce_page_marks_a_run_with_overrides(tmp_path):
    name = _write(tmp_path, _short_run(_template(DENSITY)))
    (row,) = reproduce.result_rows(tmp_path)
    assert row["overrides"] == {"steps": 5}
    assert f"**`{name}`**" in reproduce.page_text(tmp_path)
    assert "not a preset cell (overrides: steps = 5; never counted in a table)" in reproduce.page_text(tmp_path)


@pytest.mark.parametrize("reader", ["load_results", "reproduce.result_rows"])
@pytest.mark.parametrize("name, res", [
    ("renamed.json", lambda: _template(DENSITY)),
    (DENSITY.replace("_s0", "_s1") + ".json", lambda: _template(DENSITY)),  # seed 0 in the config
    (f"{DENSITY}.json", lambda: _short_run(_template(DENSITY))),  # --steps 5 under the preset cell's name
])
def test_a_file_not_named_after_its_config_is_an_error(tmp_path, reader, name, res):
    res = res()
    _write(tmp_path, res, name)
    with pytest.raises(ValueError) as err:
        _readers()[reader](tmp_path)
    assert str(tmp_path / name) in str(err.value) and identity.run_name(res["config"]) in str(err.value)


@pytest.mark.parametrize("reader", ["load_results", "reproduce.result_rows"])
def test_a_ksweep_is_named_after_the_run_its_config_is(tmp_path, reader):
    sweep = _template(f"ksweep_{DENSITY}")
    _write(tmp_path, sweep, "ksweep_other.json")
    with pytest.raises(ValueError, match="ksweep_other.json"):
        _readers()[reader](tmp_path)
    (tmp_path / "ksweep_other.json").unlink()
    sweep["run"] = DENSITY.replace("_s0", "_s1")  # says it re-evaluates another run than its config
    _write(tmp_path, sweep, f"ksweep_{sweep['run']}.json")
    with pytest.raises(ValueError, match=f"ksweep_{sweep['run']}.json"):
        _readers()[reader](tmp_path)


def test_committed_files_all_read_and_are_preset_cells():
    loaded = R.load_results()
    assert len(loaded) > 0 and all(R.is_cell(r) for r in loaded)
    sweeps = R.load_ksweeps()
    assert f"ksweep_{DENSITY}.json" in [s["file"] for s in sweeps]
    runs = {r["file"].removesuffix(".json") for r in loaded}
    assert all(s["run"] in runs for s in sweeps)  # every committed sweep re-evaluates a committed run


# ------------------------------------------------------------- 3. two files claiming one cell: an error
def test_two_files_claiming_one_table_cell_name_both(tmp_path):
    a = _template(DENSITY)
    b = copy.deepcopy(a)
    b["config"]["posterior_temperature"] = 0.6666666667  # the default temperature to 1e-9: the same cell
    b["metrics"]["test_nll"] = 80.0
    name_b = _write(tmp_path, b)
    _write(tmp_path, a)
    assert name_b != f"{DENSITY}.json"  # two names, one cell
    results = R.load_results(tmp_path)
    for build in (R.table1_rows, R.table1_results, lambda rs: R.table_file_text(rs, "mnist", "book")):
        with pytest.raises(ValueError) as err:
            build(results)
        assert f"{DENSITY}.json" in str(err.value) and name_b in str(err.value)


def test_the_same_cell_from_two_folders_is_an_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    res = _template(DENSITY)
    _write(tmp_path / "a", res)
    res["metrics"]["test_nll"] = 80.0
    _write(tmp_path / "b", res)
    with pytest.raises(ValueError, match="two results claim"):
        R.table1_rows(R.load_results(tmp_path / "a") + R.load_results(tmp_path / "b"))


def test_two_runs_at_one_sweep_temperature_name_both():
    r_a = dict(_template(SWEEP), file="a.json")
    r_b = copy.deepcopy(r_a)
    r_b["config"]["posterior_temperature"] = r_b["config"]["prior_temperature"] = 0.1 + 1e-12
    r_b.update(file="b.json", metrics={**r_b["metrics"], "test_nll": 80.0})
    with pytest.raises(ValueError) as err:
        R.temperature_sweep([r_a, r_b])
    assert "a.json" in str(err.value) and "b.json" in str(err.value)
    with pytest.raises(ValueError, match="a.json"):
        R.table_file_text([r_a, r_b], "mnist", "book", "figure4")


def test_an_arity_cell_claimed_twice_is_an_error():
    a = dict(_template("density_mnist_240Hn784V_4ary_concrete_m5_book_s0"), file="a.json")
    b = copy.deepcopy(a)
    b["file"] = "b.json"
    with pytest.raises(ValueError, match="a.json and b.json"):
        R.arity_rows([a, b])


# ------------------------------------------------- 4. unknown presets and datasets: usage error, no file
@pytest.mark.parametrize("argv", [["table1", "--preset", "nope"], ["table1", "--dataset", "nope"],
                                  ["arity", "--dataset", "nope"], ["figure4", "--dataset", "omniglot"]])
def test_unknown_preset_or_dataset_is_a_usage_error_and_writes_nothing(tmp_path, monkeypatch, capsys, argv):
    folder = tmp_path / "data" / "results"
    folder.mkdir(parents=True)
    name = _write(folder, _template(DENSITY))
    monkeypatch.setattr(R, "repo_root", lambda: tmp_path)
    with pytest.raises(SystemExit) as err:
        R.main(argv)
    assert err.value.code == 2 and argv[-1] in capsys.readouterr().err
    assert [p.name for p in folder.iterdir()] == [name]


def test_known_preset_writes_its_table(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "data" / "results"
    folder.mkdir(parents=True)
    _write(folder, _template(DENSITY))
    monkeypatch.setattr(R, "repo_root", lambda: tmp_path)
    R.main(["table1", "--preset", "book"])
    assert "Cells run: 1 of 24" in (folder / "table1_mnist_book.md").read_text()


def test_help_describes_the_command(capsys):
    with pytest.raises(SystemExit) as err:
        R.main(["--help"])
    out = capsys.readouterr().out
    assert err.value.code == 0 and "beside the paper's numbers" in out and "is_preset_cell" in out


def test_the_reproduce_command_names_a_malformed_file_and_writes_nothing(tmp_path, monkeypatch):
    """``make results-pages`` ends with ``reproduce``: a malformed result file was an uncaught
    ResultFileError traceback (issue 19's audit); it is an error message naming the file, and the page is
    not written."""
    folder = tmp_path / "data" / "results"
    folder.mkdir(parents=True)
    _write(folder, _drop(_template(DENSITY), "metrics"), f"{DENSITY}.json")
    monkeypatch.setattr(reproduce, "repo_root", lambda: tmp_path)
    monkeypatch.setattr(R, "repo_root", lambda: tmp_path)
    page = tmp_path / "reproduce.md"
    with pytest.raises(SystemExit) as err:
        reproduce.main(["--output", str(page)])
    assert str(err.value.code).startswith("reproduce: ") and f"{DENSITY}.json" in str(err.value.code)
    assert not page.exists()
