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
    # one command line per cell (no --ksweep), on its device, publishing
    assert all(len(cmds) == 1 and cmds[0][-2:] == ["--device", "cpu"] and "--publish" in cmds[0] for _, cmds in calls)


def test_a_failing_cell_fails_the_grid(tmp_path, monkeypatch):
    monkeypatch.setattr(grid, "repo_root", lambda: tmp_path)
    monkeypatch.setattr(grid, "dirty_package", lambda: [])
    monkeypatch.setattr(grid, "run_job", lambda name, cmd, cwd, log: 1)
    with pytest.raises(SystemExit):
        grid.main(["nary-sp"])


def test_estimator_grid_and_several_seeds_make_distinct_runs():
    cells = grid.cells("estimators")
    assert len(cells) == 6 * 3
    names = {grid.run_name(c, "book5k", s) for c in cells for s in (0, 1, 2)}
    assert len(names) == 54 and all(n.endswith(("_book5k_s0", "_book5k_s1", "_book5k_s2")) for n in names)
    seeded = {grid.run_name(c, "book5k", s) for c in grid.cells("table1") for s in (0, 1, 2)}
    assert len(seeded) == 72 and not seeded & names
    # the book5k preset is the book budget with one k for every estimator
    from concrete_ref.experiments import cli

    book, eq = cli.PRESETS["book"], cli.PRESETS["book5k"]
    assert eq["steps"] == book["steps"] and eq["eval_samples_test"] == eq["eval_samples_train"] == 5000
    assert eq["eval_train_examples"] == 10_000 and eq["eval_examples"] is None


@pytest.mark.parametrize("bad", ["", "a", "1,,2", "-1", "0,0", str(2 ** 31)])
def test_bad_seed_lists_are_refused(bad, capsys):
    with pytest.raises(SystemExit) as exc:
        grid.main(["nary-sp", "--seed", bad, "--dry-run"])
    assert exc.value.code == 2 and "--seed must be distinct integers" in capsys.readouterr().err


def test_seeds_run_once_each_and_ksweeps_follow_seed_0(tmp_path, monkeypatch, capsys):
    from concrete_ref.experiments import snapshots

    monkeypatch.setattr(grid, "repo_root", lambda: tmp_path)
    grid.main(["table1-m1", "--preset", "book5k", "--seed", "0,1", "--ksweep", "--dry-run"])
    out = capsys.readouterr().out.splitlines()
    commands = [line for line in out if line.startswith("-m ")]
    assert len(commands) == 16
    swept = [c for c in commands if " && " in c]
    assert len(swept) == 8 and all("--seed 0 " in c and "evaluate ksweep --run density_" in c for c in swept)
    # a trained seed-0 run whose sweep is owed: only the sweep is left, and its snapshot is kept for it
    name = grid.run_name(grid.cells("table1-m1")[0], "book5k", 0)
    results = tmp_path / "data" / "results"
    results.mkdir(parents=True)
    (results / f"{name}.json").write_text("{}")
    (tmp_path / "runs" / name).mkdir(parents=True)
    (tmp_path / "runs" / name / "checkpoint.pt").write_bytes(b"final")
    (tmp_path / "runs" / name / snapshots.PENDING).write_text("owed")
    assert snapshots.save(tmp_path) == [name]
    grid.main(["table1-m1", "--preset", "book5k", "--ksweep", "--dry-run"])
    out = capsys.readouterr().out.splitlines()
    assert f"ksweep   {name}" in out
    assert any(line.startswith("-m concrete_ref.experiments.evaluate ksweep --run " + name) for line in out)
    import shutil

    shutil.rmtree(tmp_path / "runs")  # a fresh machine: the committed snapshot still carries the final model
    grid.main(["table1-m1", "--preset", "book5k", "--ksweep", "--dry-run"])
    assert f"ksweep   {name}" in capsys.readouterr().out.splitlines()
    (results / f"ksweep_{name}.json").write_text("{}")  # swept: done, and its snapshot is dropped
    snapshots.save(tmp_path)
    assert not (tmp_path / "data" / "checkpoints" / name).exists()
    grid.main(["table1-m1", "--preset", "book5k", "--ksweep", "--dry-run"])
    assert f"done     {name}" in capsys.readouterr().out.splitlines()


def test_a_job_runs_its_commands_in_order_and_stops_at_the_first_failure(tmp_path):
    import sys

    log = tmp_path / "job.log"
    say = lambda text: [sys.executable, "-c", f"print({text!r})"]  # noqa: E731
    fail = [sys.executable, "-c", "raise SystemExit(3)"]
    assert grid.run_job("a", [say("train"), say("sweep")], str(tmp_path), str(log)) == 0
    assert log.read_text().split() == ["train", "sweep"]
    assert grid.run_job("b", [say("train2"), fail, say("never")], str(tmp_path), str(log)) == 3
    assert log.read_text().split() == ["train", "sweep", "train2"]


@pytest.mark.parametrize("extra, flag", [
    (["--workers", "0"], "--workers"), (["--workers", "-2"], "--workers"), (["--slurm-time", "0"], "--slurm-time"),
    (["--slurm-cpus", "0"], "--slurm-cpus"), (["--slurm-gpus", "-1"], "--slurm-gpus"),
    (["--slurm-parallel", "0"], "--slurm-parallel"), (["--preset", "nope"], "--preset"),
])
def test_bad_grid_flags_are_usage_errors_before_any_work(monkeypatch, capsys, extra, flag):
    """Issue 19 §3 for the grid: --workers 0 restored the cells' snapshots and then failed in
    ThreadPoolExecutor; an unknown preset was refused with the density command's usage line."""
    from concrete_ref.experiments import snapshots

    def forbidden(*a, **k):
        raise AssertionError("work started before the flags were validated")

    monkeypatch.setattr(grid, "dirty_package", lambda: [])
    monkeypatch.setattr(snapshots, "restore", forbidden)
    with pytest.raises(SystemExit) as exc:
        grid.main(["table1-m1", *extra])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"error: argument {flag}" in err and "experiments.grid" in err


def test_next_stop_is_the_next_multiple_of_the_slice_below_the_end():
    assert grid.next_stop(0, 10_000_000, 1_000_000) == 1_000_000
    assert grid.next_stop(2_830_000, 10_000_000, 1_000_000) == 3_000_000
    assert grid.next_stop(3_000_000, 10_000_000, 1_000_000) == 4_000_000  # a paused run goes on
    assert grid.next_stop(9_000_000, 10_000_000, 1_000_000) is None  # the last slice: train to the end
    assert grid.next_stop(0, 20_000, 1_000_000) is None  # shorter than a slice: not sliced
    assert grid.next_stop(5, 100, None) is None


def test_slices_train_every_cell_in_turns_then_finish_and_sweep(tmp_path, monkeypatch, capsys):
    """--slice: every round takes each unfinished cell to its next multiple of the slice (--stop-at), all
    cells before any goes further; the round that reaches the end evaluates and k-sweeps."""
    from concrete_ref.experiments import snapshots
    from concrete_ref.experiments.cli import PRESETS

    steps = PRESETS["paper"]["steps"]
    monkeypatch.setattr(grid, "repo_root", lambda: tmp_path)
    monkeypatch.setattr(grid, "dirty_package", lambda: [])
    held = {}  # run name -> the step its (simulated) checkpoint holds
    monkeypatch.setattr(snapshots, "restore", lambda name, root=None: name in held)
    monkeypatch.setattr(grid, "checkpoint_step", lambda path: held.get(path.parent.name, 0))
    rounds = []

    def run_job(name, cmds, cwd, log):
        train = cmds[0]
        assert ("--resume" in train) == (name in held)  # a paused run is resumed, a new one started
        assert ("--stop-at" in train) == ("--interim" in cmds[-1])  # a paused run is swept as interim
        best = "concrete_ref.experiments.evaluate" in cmds[-1] and "best" in cmds[-1]  # --model best
        assert best == ("--stop-at" in train and "nvil" in train)
        if "--stop-at" in train:
            held[name] = int(train[train.index("--stop-at") + 1])
        else:
            held[name] = steps
            (tmp_path / "data" / "results").mkdir(parents=True, exist_ok=True)
            (tmp_path / "data" / "results" / f"{name}.json").write_text("{}")
            if len(cmds) == 2:  # its k-sweep
                (tmp_path / "data" / "results" / f"ksweep_{name}.json").write_text("{}")
        rounds.append((name, held[name], len(cmds)))
        return 0

    monkeypatch.setattr(grid, "run_job", run_job)
    first = grid.run_name(grid.cells("table1-m1")[0], "paper", 0)
    held[first] = int(0.45 * steps)  # one run part-way already
    grid.main(["table1-m1", "--preset", "paper", "--slice", str(steps // 4), "--ksweep"])
    # 8 cells; the part-way one has 3 rounds to go (to 1/2, 3/4, the end), the others 4 (1/4, 1/2, 3/4, end);
    # in the first round it waits for the others to reach 1/4, so that no run is ever a slice ahead
    assert len(rounds) == 3 + 7 * 4
    q = steps // 4
    by_round = [[s for _, s, _ in rounds[:7]]] + [[s for _, s, _ in rounds[i:i + 8]] for i in (7, 15, 23)]
    assert by_round == [[q] * 7, [2 * q] * 8, [3 * q] * 8, [steps] * 8]
    assert first not in [n for n, _, _ in rounds[:7]]
    # each job: training, then its final or (paused) interim sweep; a paused NVIL run (early-stopped) is
    # swept at its best validation model too
    assert all(n == (3 if "_nvil_" in name and s < steps else 2) for name, s, n in rounds)
    assert all(held[n] == steps for n in held) and len(held) == 8
    out = capsys.readouterr().out
    assert f"(to step {2 * q:,} this round)" in out
    assert f"waits    {first} (at step {int(0.45 * steps):,}; this round takes the others to {q:,})" in out


def test_a_round_is_balanced_to_the_lowest_next_stop():
    """balance_round: a run whose next stop is above the round's lowest waits, and another round follows."""
    todo = [("a", ["a"]), ("b", ["b"]), ("c", ["c"])]
    trained = [(0, "resume a", "a", 4_000_000, 5_000_000), (1, "todo b", "b", 0, 1_000_000),
               (2, "resume c", "c", 600_000, 1_000_000)]
    assert grid.balance_round(todo, trained, True) == ([("b", ["b"]), ("c", ["c"])], True)
    # all in their last slice (next stop = the end): nobody waits, and no round follows
    ends = [(0, "resume a", "a", 9_500_000, 10_000_000), (1, "resume b", "b", 9_100_000, 10_000_000)]
    assert grid.balance_round(todo[:2], ends, False) == (todo[:2], False)
    assert grid.balance_round(todo, [], False) == (todo, False)


def test_a_finishing_run_that_waits_is_not_marked_as_owing_a_sweep(tmp_path, monkeypatch):
    """The k-sweep marker (``ksweep.pending``, which keeps a run's final checkpoint in its snapshot) is
    written only for a run that finishes in this round: a run in its last slice that waits for the others
    gets it in the round that trains it, not before."""
    from concrete_ref.experiments import snapshots
    from concrete_ref.experiments.cli import PRESETS

    steps = PRESETS["paper"]["steps"]
    monkeypatch.setattr(grid, "repo_root", lambda: tmp_path)
    monkeypatch.setattr(grid, "dirty_package", lambda: [])
    first = grid.run_name(grid.cells("table1-m1")[0], "paper", 0)
    held = {first: int(0.8 * steps)}  # in its last slice of 1/4: it would train to the end
    monkeypatch.setattr(snapshots, "restore", lambda name, root=None: name in held)
    monkeypatch.setattr(grid, "checkpoint_step", lambda path: held.get(path.parent.name, 0))
    marked = []

    def run_job(name, cmds, cwd, log):
        marked.append((name, (tmp_path / "runs" / first / snapshots.PENDING).exists()))
        train = cmds[0]
        held[name] = int(train[train.index("--stop-at") + 1]) if "--stop-at" in train else steps
        if "--stop-at" not in train:
            (tmp_path / "data" / "results").mkdir(parents=True, exist_ok=True)
            (tmp_path / "data" / "results" / f"{name}.json").write_text("{}")
            (tmp_path / "data" / "results" / f"ksweep_{name}.json").write_text("{}")
        return 0

    monkeypatch.setattr(grid, "run_job", run_job)
    grid.main(["table1-m1", "--preset", "paper", "--slice", str(steps // 4), "--ksweep"])
    waiting = [m for n, m in marked[:7]]  # rounds 1-3: the others go to 1/4, 1/2, 3/4 while it waits
    assert len(marked) == 1 + 7 * 4 and not any(m for n, m in marked[:21]), marked[:21]
    assert waiting == [False] * 7
    assert (first, True) in marked[21:]  # the last round trains it to the end and marks it first
