"""CPU seconds beside wall-clock seconds: what a run records, and that a pause or a wait is not CPU time."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from concrete_ref.experiments.clocks import Stopwatch


def _busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_the_stopwatch_counts_waiting_in_wall_time_only():
    """A sleep is wall time and (almost) no CPU time; a busy loop is both. ``peek`` leaves the lap running,
    ``lap`` starts a new one."""
    clock = Stopwatch()
    time.sleep(0.3)
    wall, cpu = clock.peek()
    assert wall >= 0.3 and cpu < 0.1
    wall2, cpu2 = clock.lap()
    assert wall2 >= wall and cpu2 >= cpu  # the same lap, a little later
    _busy(0.3)
    wall, cpu = clock.lap()
    assert wall >= 0.3 and cpu > 0.1  # the loop ran (on a loaded machine, not all of the wall time)
    assert clock.peek()[0] < 0.1  # a new lap


def test_a_process_paused_with_sigstop_counts_the_pause_in_wall_time_only(tmp_path):
    """What happens to the long runs during a CI run: a child spins for 1.5 wall seconds on a Stopwatch and
    is stopped for 0.8 s of them. Its wall time counts the pause, its CPU time cannot."""
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import time, json\n"
         "from concrete_ref.experiments.clocks import Stopwatch\n"
         "c = Stopwatch(); print('go', flush=True)\n"
         "end = time.perf_counter() + 1.5\n"
         "while time.perf_counter() < end: pass\n"
         "print(json.dumps(c.peek()))\n"],
        stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert child.stdout.readline().strip() == "go"
    time.sleep(0.2)
    os.kill(child.pid, signal.SIGSTOP)
    time.sleep(0.8)
    os.kill(child.pid, signal.SIGCONT)
    wall, cpu = json.loads(child.stdout.readline())
    assert child.wait(timeout=30) == 0
    assert wall >= 1.5 and cpu <= wall - 0.7


def _density_args(root, *extra):
    return ["--dataset", "synthetic", "--model", "20H-784V", "--preset", "smoke", "--estimator", "concrete",
            "--run-dir", str(root / "run"), "--results-dir", str(root / "results"), "--no-progress", *extra]


def test_a_run_records_cpu_seconds_of_training_and_evaluation(tmp_path):
    """Every result and progress record carries CPU seconds beside the wall-clock ones, counted from step 0
    for a run that counted them from its start."""
    torch = pytest.importorskip("torch")
    from concrete_ref.experiments import density
    from concrete_ref.experiments.train import progress_record

    res = density.main(_density_args(tmp_path))
    assert res["cpu_seconds_from_step"] == 0
    for key in ("train_cpu_seconds", "eval_cpu_seconds"):  # a smoke run's: tenths of a second, rounded
        assert isinstance(res[key], float) and res[key] >= 0
    # one thread, no compiling at this size: the CPU seconds are at most the wall seconds (to the rounding)
    assert res["train_cpu_seconds"] <= res["train_seconds"] + 0.15
    assert res["run_starts"][0]["train_cpu_seconds"] == 0.0
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    rec = progress_record(state)
    assert rec["train_cpu_seconds"] == pytest.approx(res["train_cpu_seconds"], abs=0.05)
    assert rec["cpu_seconds_from_step"] == 0


def test_a_run_resumed_from_a_checkpoint_without_cpu_seconds_counts_them_from_there(tmp_path):
    """A checkpoint written before CPU seconds were counted (the long runs' snapshots): the resumed run
    counts them from the step it resumes at, says so (``cpu_seconds_from_step``), and its start records
    where the count began, so that the pace since that start is in CPU seconds."""
    torch = pytest.importorskip("torch")
    from concrete_ref.experiments import density
    from concrete_ref.experiments.estimator_runs import training_seconds

    density.main(_density_args(tmp_path, "--stop-at", "20"))
    path = tmp_path / "run" / "checkpoint.pt"
    state = torch.load(path, weights_only=False)
    assert state["step"] == 20 and state["cpu_seconds_from_step"] == 0
    for key in ("train_cpu_seconds", "cpu_seconds_from_step"):
        del state[key]
    torch.save(state, path)
    res = density.main(_density_args(tmp_path, "--resume"))
    assert res["steps_done"] == 40 and res["cpu_seconds_from_step"] == 20
    assert res["run_starts"][-1]["step"] == 20 and res["run_starts"][-1]["train_cpu_seconds"] == 0.0
    assert res["train_cpu_seconds"] >= 0
    assert training_seconds(res) == (res["train_seconds"], "wall")  # not the whole run's: wall clock


def test_the_ledger_carries_cpu_seconds_across_processes(tmp_path):
    """A resumed evaluation's CPU seconds add up those of every process, like its wall seconds; a ledger
    written before CPU seconds were counted leaves them unknown (None), not short."""
    torch = pytest.importorskip("torch")
    from concrete_ref.experiments.eval_ledger import LEDGER, EvaluationLedger

    g = torch.Generator().manual_seed(0)
    path = tmp_path / LEDGER
    first = EvaluationLedger(path, {"run": "r"}, interval=1e-12)
    first.start("last/test", g)
    _busy(0.2)
    first.advance("last/test", 10, -5.0, g)
    saved = torch.load(path, weights_only=False)
    assert saved["cpu_seconds"] > 0.05 and saved["seconds"] >= 0.2
    second = EvaluationLedger(path, {"run": "r"})
    assert second.resumed and second.cpu_seconds() >= saved["cpu_seconds"]
    del saved["cpu_seconds"]
    torch.save(saved, path)
    older = EvaluationLedger(path, {"run": "r"})
    assert older.resumed and older.cpu_seconds() is None and older.seconds() >= saved["seconds"]


def test_training_seconds_and_the_estimator_table_say_which_clock(tmp_path):
    """The comparison of chapter 10 reads CPU seconds where a run counted them from step 0 and wall-clock
    seconds otherwise; a cell mixing the two reports wall-clock seconds for all its seeds."""
    from concrete_ref.experiments import estimator_runs as E

    def result(seed, cpu=None, start=0):
        r = {"config": {"model": "200H-784V", "estimator": "concrete", "seed": seed}, "train_seconds": 300.0,
             "steps_done": 20_000, "metrics": {"test_nll": 110.0, "train_nll": 111.0},
             "curves": {"valid_step": [10_000, 20_000], "valid_bound": [-120.0, -115.0], "train_objective": [-116.0]}}
        if cpu is not None:
            r.update(train_cpu_seconds=cpu, cpu_seconds_from_step=start)
        return r

    assert E.training_seconds(result(0, cpu=100.0)) == (100.0, "cpu")
    assert E.training_seconds(result(0, cpu=100.0, start=10_000)) == (300.0, "wall")
    assert E.training_seconds(result(0)) == (300.0, "wall")
    c = E.curves(result(0, cpu=100.0))
    assert c["clock"] == "cpu" and c["valid_seconds"] == pytest.approx([50.0, 100.0])
    (row,) = E.nll_rows([result(0, cpu=100.0), result(1, cpu=120.0)])
    assert row["clock"] == "cpu" and row["train_seconds"] == pytest.approx(110.0)
    (row,) = E.nll_rows([result(0, cpu=100.0), result(1)])
    assert row["clock"] == "wall" and row["train_seconds"] == pytest.approx(300.0)
