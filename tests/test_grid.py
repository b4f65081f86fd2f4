"""The grid runner: which cells each grid holds, their run names, and what a rerun skips or resumes."""

import pytest

from concrete_ref.experiments import grid


@pytest.mark.parametrize("name, count", [("table1", 24), ("figure4", 12), ("nary-sp", 2), ("temperature", 10),
                                         ("arity", 18)])
def test_grid_sizes_and_unique_run_names(name, count):
    cells = grid.cells(name)
    assert len(cells) == count
    names = [grid.run_name(c, "book", 0) for c in cells]
    assert len(set(names)) == count, "two cells of one grid would write the same result file"


def test_grids_do_not_collide_and_sweep_cells_are_tagged():
    everything = [grid.run_name(c, "book", 0) for g in ("table1", "figure4", "nary-sp", "temperature", "arity")
                  for c in grid.cells(g)]
    assert len(set(everything)) == len(everything) == 66
    sweep = [grid.run_name(c, "book", 0) for c in grid.cells("temperature")]
    assert all("_t" in n for n in sweep)  # non-default temperatures are in the name
    relaxed = [c for c in grid.cells("figure4") if "--eval-relaxed" in c["args"]]
    assert len(relaxed) == 1 and "392V-240H-240H-240H-392V" in relaxed[0]["args"]
    with pytest.raises(ValueError, match="grid must be one of"):
        grid.cells("table2")


def test_rerun_skips_done_cells_and_resumes_checkpoints(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(grid, "repo_root", lambda: tmp_path)
    cells = sorted(grid.cells("nary-sp"), key=lambda c: c["cost"])
    done, ckpt = (grid.run_name(c, "book", 0) for c in cells)
    (tmp_path / "data" / "results").mkdir(parents=True)
    (tmp_path / "data" / "results" / f"{done}.json").write_text("{}")
    (tmp_path / "runs" / ckpt).mkdir(parents=True)
    (tmp_path / "runs" / ckpt / "checkpoint.pt").write_bytes(b"")
    grid.main(["nary-sp", "nary-sp", "--dry-run"])  # a grid named twice is run once
    out = capsys.readouterr().out.splitlines()
    assert f"done     {done}" in out and f"resume   {ckpt}" in out
    commands = [line for line in out if line.startswith("-m ")]
    assert len(commands) == 1 and commands[0].endswith("--resume") and "--arity" in commands[0]


def test_grid_cells_publish_and_a_dirty_package_is_refused(monkeypatch, capsys):
    cmd = grid.command(grid.cells("table1-m1")[0], "paper", 0)
    assert "--publish" in cmd and cmd[cmd.index("--preset") + 1] == "paper"
    assert len(grid.cells("table1-m1")) == 8
    monkeypatch.setattr(grid, "dirty_package", lambda: ["concrete_ref/experiments/train.py"])
    with pytest.raises(SystemExit) as exc:
        grid.main(["table1-m1", "--preset", "paper"])
    assert exc.value.code == 2 and "train.py" in capsys.readouterr().err


def test_snapshots_carry_an_unfinished_run_to_a_fresh_machine(tmp_path, monkeypatch, capsys):
    from concrete_ref.experiments import snapshots

    cells = sorted(grid.cells("nary-sp"), key=lambda c: c["cost"])
    running, finished = (grid.run_name(c, "book", 0) for c in cells)
    for name in (running, finished):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "checkpoint.pt").write_bytes(name.encode())
    (tmp_path / "runs" / running / "best.pt").write_bytes(b"best")
    (tmp_path / "data" / "results").mkdir(parents=True)
    (tmp_path / "data" / "results" / f"{finished}.json").write_text("{}")
    assert snapshots.save(tmp_path) == [running]  # the finished run needs no snapshot
    import shutil

    shutil.rmtree(tmp_path / "runs")  # a fresh machine: runs/ is gone, data/checkpoints/ was committed
    monkeypatch.setattr(grid, "repo_root", lambda: tmp_path)
    grid.main(["nary-sp", "--dry-run"])
    assert f"resume   {running}" in capsys.readouterr().out
    assert snapshots.restore(running, tmp_path)
    assert (tmp_path / "runs" / running / "checkpoint.pt").read_bytes() == running.encode()
    assert (tmp_path / "runs" / running / "best.pt").read_bytes() == b"best"
    assert not snapshots.restore(finished, tmp_path)
    (tmp_path / "data" / "results" / f"{running}.json").write_text("{}")  # it finished: snapshot dropped
    snapshots.save(tmp_path)
    assert not (tmp_path / "data" / "checkpoints" / running).exists()


@pytest.mark.parametrize("executor", ["local", "submitit-debug"])
def test_executors_run_every_cell_on_its_device(tmp_path, monkeypatch, executor):
    if executor.startswith("submitit"):
        pytest.importorskip("submitit")
    monkeypatch.setattr(grid, "repo_root", lambda: tmp_path)
    monkeypatch.setattr(grid, "dirty_package", lambda: [])
    calls = []
    monkeypatch.setattr(grid, "run_job", lambda name, cmd, cwd, log: calls.append((name, cmd)) or 0)
    grid.main(["nary-sp", "--executor", executor, "--workers", "2"])
    assert sorted(n for n, _ in calls) == sorted(grid.run_name(c, "book", 0) for c in grid.cells("nary-sp"))
    assert all(cmd[-2:] == ["--device", "cpu"] and "--publish" in cmd for _, cmd in calls)


def test_a_failing_cell_fails_the_grid(tmp_path, monkeypatch):
    monkeypatch.setattr(grid, "repo_root", lambda: tmp_path)
    monkeypatch.setattr(grid, "dirty_package", lambda: [])
    monkeypatch.setattr(grid, "run_job", lambda name, cmd, cwd, log: 1)
    with pytest.raises(SystemExit):
        grid.main(["nary-sp"])
