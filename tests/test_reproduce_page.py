"""The Reproduce page is generated from the committed results and never falls behind them."""

import json

import pytest

from concrete_ref.experiments import reproduce
from concrete_ref.experiments.provenance import repo_root


def test_committed_page_is_up_to_date():
    committed = (repo_root() / "book" / "reproduce.md").read_text()
    assert committed == reproduce.page_text(), (
        "book/reproduce.md is out of date with data/results/: run `make results-pages`")


def _prov(**kw):
    base = {"git_commit": "0123456789abcdef", "git_dirty": False, "command": "python -m x --seed 3",
            "cpu": "Test CPU", "torch_threads": 1, "torch": "2.13.0+cpu", "date": "2026-11-24T10:00:00+00:00"}
    return {**base, **kw}


def _template(name):
    return json.loads((repo_root() / "data" / "results" / name).read_text())


RUN = "density_mnist_200Hn784V_concrete_m1_book_s0"


def test_rows_and_page_from_synthetic_results(tmp_path):
    run = _template(f"{RUN}.json")
    run["config"]["seed"] = 3
    run.update(train_seconds=3000.0, eval_seconds=600.0, provenance=_prov(command="python -m eval-time"),
               run_starts=[_prov(git_dirty=True, git_dirty_files=["concrete_ref/x.py"]), _prov()])
    name = RUN.replace("_s0", "_s3")
    sweep = _template(f"ksweep_{RUN}.json")
    sweep.update(run=name, config=run["config"], seconds=90.0, provenance=_prov(command="python -m sweep"))
    (tmp_path / f"{name}.json").write_text(json.dumps(run))
    (tmp_path / f"ksweep_{name}.json").write_text(json.dumps(sweep))
    rows = reproduce.result_rows(tmp_path)
    assert [r["kind"] for r in rows] == ["run", "ksweep"]
    r = rows[0]
    # the first start's command and commit (the one that trained), and training + evaluation wall time
    assert r["command"] == "python -m x --seed 3" and r["commit"] == "`0123456789`+dirty (concrete_ref/x.py)"
    assert r["wall"] == "60 min" and r["starts"] == 2 and r["date"] == "2026-11-24" and r["overrides"] == {}
    text = reproduce.page_text(tmp_path)
    assert f"**`{name}.json`**: seed 3 · commit `0123456789`+dirty (concrete_ref/x.py)" in text
    assert "wall time 60 min (2 starts)\n\n```bash\npython -m x --seed 3\n```" in text
    assert "## Structured prediction\n\nNo result committed yet." in text
    assert f"**`ksweep_{name}.json`**" in text and "```bash\npython -m sweep\n```" in text
    assert "not a preset cell" not in text
    assert r["cpu"] is None and "· CPU time" not in text  # the template predates CPU seconds: wall time only


def test_the_page_gives_cpu_time_where_a_file_holds_all_of_it(tmp_path):
    """CPU time (training from step 0 and the whole evaluation) beside the wall time; a run that counted CPU
    seconds only from a resume, or a sweep without them, shows wall time alone."""
    run = _template(f"{RUN}.json")
    run.update(train_seconds=3000.0, eval_seconds=600.0, train_cpu_seconds=1500.0, cpu_seconds_from_step=0,
               eval_cpu_seconds=300.0)
    (tmp_path / f"{RUN}.json").write_text(json.dumps(run))
    later = {**run, "config": {**run["config"], "seed": 1}, "cpu_seconds_from_step": 10_000}
    (tmp_path / f"{RUN.replace('_s0', '_s1')}.json").write_text(json.dumps(later))
    sweep = _template(f"ksweep_{RUN}.json")
    sweep.update(seconds=90.0, cpu_seconds=60.0)
    (tmp_path / f"ksweep_{RUN}.json").write_text(json.dumps(sweep))
    rows = {r["file"]: r for r in reproduce.result_rows(tmp_path)}
    assert rows[f"{RUN}.json"]["cpu"] == "30 min" and rows[f"{RUN}.json"]["wall"] == "60 min"
    assert rows[f"{RUN.replace('_s0', '_s1')}.json"]["cpu"] is None
    assert rows[f"ksweep_{RUN}.json"]["cpu"] == "1 min"
    text = reproduce.page_text(tmp_path)
    assert "wall time 60 min · CPU time 30 min\n\n```bash" in text
    assert "wall time 2 min · CPU time 1 min" in text  # the sweep: 90 and 60 s


def test_long_commands_wrap_before_flags_and_stay_one_command():
    cmd = "python -m concrete_ref.experiments.density " + " ".join(f"--flag{i} value{i}" for i in range(12))
    wrapped = reproduce._wrap_command(cmd, width=60)
    lines = wrapped.split("\n")
    assert len(lines) > 2 and all(len(line) <= 62 for line in lines)
    assert all(line.endswith(" \\") for line in lines[:-1]) and all(l.startswith("    --") for l in lines[1:])
    # joining the continuation lines gives back the command
    assert " ".join(l.rstrip(" \\").strip() for l in lines) == cmd


def test_unknown_result_file_is_an_error(tmp_path):
    (tmp_path / "odd.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="odd.json"):
        reproduce.result_rows(tmp_path)


def test_interim_sweeps_are_listed_with_how_to_restore_their_snapshot(tmp_path):
    """Every committed file is on the page, the interim k-sweeps of unfinished runs too (their own section,
    which says to restore the snapshot of the commit they name before running the command)."""
    src = repo_root() / "data" / "results" / "interim"
    if not src.is_dir() or not any(src.glob("*.json")):
        pytest.skip("no interim sweep committed")
    (tmp_path / "interim").mkdir()
    name = sorted(src.glob("*.json"))[0].name
    (tmp_path / "interim" / name).write_text((src / name).read_text())
    (row,) = reproduce.result_rows(tmp_path)
    assert row["kind"] == "interim" and row["file"] == f"interim/{name}"
    page = reproduce.page_text(tmp_path)
    section = page.split("## Interim re-evaluations of unfinished runs")[1]
    assert "snapshots restore --run" in section and f"`interim/{name}`" in section
    assert "--interim" in section
