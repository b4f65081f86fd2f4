"""The density-estimation command line: smoke preset, result file, exact resume, clear errors."""

import json

import numpy as np

import pytest

torch = pytest.importorskip("torch")

from concrete_ref.experiments import density  # noqa: E402


def _args(tmp_path, *extra):
    return ["--dataset", "synthetic", "--model", "20H-784V", "--preset", "smoke", "--run-dir",
            str(tmp_path / "run"), "--results-dir", str(tmp_path / "results"), "--no-progress", *extra]


@pytest.mark.parametrize("estimator,m", [("concrete", 1), ("concrete", 5), ("vimco", 5), ("nvil", 1)])
def test_smoke_run_writes_a_result_with_provenance(tmp_path, estimator, m):
    result = density.main(_args(tmp_path, "--estimator", estimator, "--samples", str(m)))
    files = list((tmp_path / "results").glob("*.json"))
    assert len(files) == 1
    saved = json.loads(files[0].read_text())
    assert saved["metrics"] == result["metrics"]
    assert saved["steps_done"] == 40 and saved["config"]["estimator"] == estimator
    for key in ("git_commit", "torch", "cpu", "command", "date"):
        assert key in saved["provenance"]
    assert len(saved["curves"]["valid_bound"]) == 2
    assert 0 < saved["metrics"]["test_nll"] < 1000


def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path):
    """Kill after 25 of 40 steps (a checkpoint is written at 20), resume: same parameters bit for bit."""
    full = density.main(_args(tmp_path / "a", "--estimator", "vimco", "--samples", "3"))
    cfg, _ = density.config_from_args(density.build_parser().parse_args(_args(tmp_path / "b", "--estimator", "vimco", "--samples", "3")))
    data = density.load_dataset("synthetic")
    import numpy as np

    base = np.asarray(data["train"], float).mean(0)
    ckpt = tmp_path / "b" / "run" / "checkpoint.pt"
    first = density.Trainer(cfg, data, base)
    first.run(ckpt, progress=False, stop_after=25)  # "killed" at step 25; last checkpoint at step 20
    del first
    resumed = density.main(_args(tmp_path / "b", "--estimator", "vimco", "--samples", "3", "--resume"))
    a = torch.load(tmp_path / "a" / "run" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(ckpt, weights_only=False)["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed["metrics"] == full["metrics"]


def test_a_run_paused_with_stop_at_resumes_to_an_uninterrupted_runs_end(tmp_path, capsys):
    """--stop-at (the grid's --slice): the run pauses at that step with its checkpoint (25: not a step
    where a checkpoint was due) and no result; --resume (again with --stop-at: at once, nothing trained;
    then without) ends bit for bit where an uninterrupted run ends."""
    full = density.main(_args(tmp_path / "a", "--estimator", "nvil", "--samples", "1"))
    b = _args(tmp_path / "b", "--estimator", "nvil", "--samples", "1")
    paused = density.main(b + ["--stop-at", "25"])
    assert paused == {"paused": True, "step": 25, "steps": 40}
    assert not (tmp_path / "b" / "results").exists()
    ckpt = tmp_path / "b" / "run" / "checkpoint.pt"
    assert torch.load(ckpt, weights_only=False)["step"] == 25
    assert density.main(b + ["--resume", "--stop-at", "20"])["step"] == 25  # already past: nothing trained
    assert "paused" in capsys.readouterr().err
    resumed = density.main(b + ["--resume"])
    a = torch.load(tmp_path / "a" / "run" / "checkpoint.pt", weights_only=False)["model"]
    for key, value in torch.load(ckpt, weights_only=False)["model"].items():
        assert torch.equal(a[key], value), key
    assert resumed["metrics"] == full["metrics"] and resumed["curves"] == full["curves"]


@pytest.mark.parametrize("stop", ["40", "41", "0", "-3"])
def test_stop_at_outside_the_run_is_a_usage_error(tmp_path, capsys, stop):
    with pytest.raises(SystemExit) as exc:
        density.main(_args(tmp_path, "--stop-at", stop))
    assert exc.value.code == 2 and "argument --stop-at" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_existing_checkpoint_needs_resume_or_fresh(tmp_path):
    density.main(_args(tmp_path))
    with pytest.raises(SystemExit, match="--resume"):
        density.main(_args(tmp_path))


@pytest.mark.parametrize("extra,match", [
    (["--estimator", "vimco", "--samples", "1"], "vimco needs"),
    (["--estimator", "nvil", "--samples", "5"], "nvil is the m = 1"),
    (["--model", "392V-240H-392V"], "structured"),
    (["--model", "200Q-784V"], "cannot read layer"),
])
def test_bad_arguments(tmp_path, extra, match, capsys):
    with pytest.raises(SystemExit) as exc:  # argparse usage errors, before any work
        density.main(_args(tmp_path, *extra))
    assert exc.value.code == 2 and match in capsys.readouterr().err


def test_structured_prediction_smoke_and_defaults(tmp_path):
    from concrete_ref.experiments import structured

    args = ["--dataset", "synthetic", "--model", "392V-24H-24H-392V", "--preset", "smoke", "--estimator", "vimco",
            "--samples", "3", "--run-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path / "res"), "--no-progress"]
    result = structured.main(args)
    cfg = result["config"]
    assert cfg["task"] == "structured" and cfg["weight_decay"] == 1e-3 and cfg["learning_rate"] == 3e-4
    assert cfg["prior_temperature"] == cfg["posterior_temperature"] == 2 / 3
    assert 0 < result["metrics"]["test_nll"] < 1000  # a bound on -log p(bottom | top): 392 pixels
    paper_cfg, _ = structured.config_from_args(structured.build_parser("structured").parse_args(
        ["--preset", "paper", "--estimator", "concrete"]), "structured")
    assert paper_cfg.eval_samples_test == 100 and paper_cfg.steps == 10_000_000
    with pytest.raises(SystemExit) as exc:
        structured.main(args[:2] + ["--model", "200H-784V"] + args[4:])
    assert exc.value.code == 2


def test_top_bottom_split_reassembles_the_image():
    import numpy as np

    from concrete_ref.experiments.cli import split_top_bottom

    img = np.arange(784).reshape(1, 784)
    top, bottom = split_top_bottom(img)
    assert top.shape == bottom.shape == (1, 392)
    np.testing.assert_array_equal(np.concatenate([top, bottom], -1), img)
    np.testing.assert_array_equal(top.reshape(14, 28), np.arange(784).reshape(28, 28)[:14])  # rows 0-13


def test_evaluation_subsets_are_spread_over_the_split():
    from concrete_ref.experiments.cli import evenly_spaced

    x = np.arange(10_000)
    sub = evenly_spaced(x, 8)
    assert sub.tolist() == [0, 1250, 2500, 3750, 5000, 6250, 7500, 8750]  # one per class of a sorted file
    assert evenly_spaced(x, 3).tolist() == [0, 3333, 6666]
    assert evenly_spaced(x[:5], 8).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="n must be"):
        evenly_spaced(x, 0)


def test_ksweep_reevaluates_a_run_on_spread_test_images(tmp_path, monkeypatch):
    from concrete_ref.experiments import evaluate

    name = "density_synthetic_20H_784V_concrete_m1_smoke_s0"
    density.main(["--dataset", "synthetic", "--model", "20H-784V", "--preset", "smoke",
                  "--run-dir", str(tmp_path / "runs" / name), "--results-dir", str(tmp_path), "--no-progress"])
    monkeypatch.setattr(evaluate, "repo_root", lambda: tmp_path)
    res = evaluate.main(["ksweep", "--run", name, "--examples", "8", "--batch", "4", "--publish"])
    saved = json.loads((tmp_path / "data" / "results" / f"ksweep_{name}.json").read_text())
    assert saved["mean_bound"] == res["mean_bound"] and saved["ks"] == list(evaluate.KS)
    assert saved["examples"] == 8 and saved["example_indices"] == "every 25-th test image from the first"  # 200 / 8
    b = np.asarray(saved["mean_bound"])
    assert np.all(np.isfinite(b)) and b[-1] > b[0]  # L_50000 above L_1 on the same images
    assert np.all(np.diff(b) > -3 * np.asarray(saved["stderr_bound"][1:]))  # non-decreasing within noise
    assert saved["provenance"]["command"].startswith("python -m concrete_ref.experiments.evaluate ksweep")


def test_ksweep_goes_to_scratch_unless_published_and_never_over_other_settings(tmp_path, monkeypatch):
    """Issue 19 §2 for the README's `evaluate ksweep --run <run name>`: it wrote into data/results/ always, and
    over a committed sweep of other --examples or --seed (500 images replaced by 8, silently); now a scratch
    folder unless --publish (the grid's), and a sweep of other settings is refused before the evaluation."""
    from concrete_ref.experiments import evaluate, grid

    name = "density_synthetic_20H_784V_concrete_m1_smoke_s0"
    density.main(["--dataset", "synthetic", "--model", "20H-784V", "--preset", "smoke", "--steps", "3",
                  "--run-dir", str(tmp_path / "runs" / name), "--results-dir", str(tmp_path), "--no-progress"])
    monkeypatch.setattr(evaluate, "repo_root", lambda: tmp_path)
    sweep = ["ksweep", "--run", name, "--batch", "4"]
    evaluate.main(sweep + ["--examples", "4"])
    assert (tmp_path / "runs" / "results" / f"ksweep_{name}.json").exists()
    assert not (tmp_path / "data").exists()
    evaluate.main(sweep + ["--examples", "4", "--publish"])
    published = tmp_path / "data" / "results" / f"ksweep_{name}.json"
    before = published.read_text()
    assert json.loads(before)["seed"] == 0
    for extra, named in ((["--examples", "2"], "--examples: 4 there, 2 here"), (["--seed", "3"], "--seed: 0 there, 3 here")):
        with pytest.raises(SystemExit, match="holds a k-sweep of other settings .*" + named):
            evaluate.main(sweep + ["--examples", "4", "--publish", *extra])
        assert published.read_text() == before
    evaluate.main(sweep + ["--examples", "4", "--publish"])  # the same settings: a rerun, allowed
    assert grid.ksweep_command(name)[-1] == "--publish"  # the grid publishes its sweeps


def _unfinished_smoke_run(tmp_path, name, stop_after=25):
    """A smoke run of ``name`` "killed" after ``stop_after`` of its 40 steps (its checkpoint: step 20)."""
    args = ["--dataset", "synthetic", "--model", "20H-784V", "--preset", "smoke", "--run-dir",
            str(tmp_path / "runs" / name), "--results-dir", str(tmp_path / "scratch"), "--no-progress"]
    cfg, _ = density.config_from_args(density.build_parser().parse_args(args))
    data = density.load_dataset("synthetic")
    trainer = density.Trainer(cfg, data, np.asarray(data["train"], float).mean(0))
    trainer.run(tmp_path / "runs" / name / "checkpoint.pt", progress=False, stop_after=stop_after)
    return trainer


def test_an_unfinished_run_is_swept_only_as_interim_under_its_step(tmp_path, monkeypatch):
    """A plain sweep of a checkpoint part-way through a run would file a part-way model under the run's
    final name (ksweep_<run>.json): refused, naming the step; --interim names the file by the step, puts it
    in data/results/interim/ with --publish and adds L_100 on the full test set, and the book's reader and
    estimate take it."""
    from concrete_ref.experiments import claims, evaluate, results

    name = "density_synthetic_20H_784V_concrete_m1_smoke_s0"
    _unfinished_smoke_run(tmp_path, name)
    monkeypatch.setattr(evaluate, "repo_root", lambda: tmp_path)
    sweep = ["ksweep", "--run", name, "--examples", "8", "--batch", "4"]
    with pytest.raises(SystemExit, match="checkpoint is at step 20 of 40.*--interim"):
        evaluate.main(sweep + ["--publish"])
    assert not (tmp_path / "data").exists()
    res = evaluate.main(sweep + ["--publish", "--interim"])
    out = tmp_path / "data" / "results" / "interim" / f"ksweep_{name}_step20.json"
    saved = json.loads(out.read_text())
    assert saved["step"] == 20 and saved["mean_bound"] == res["mean_bound"]
    full = saved["full_test"]
    assert full["k"] == 100 and full["examples"] == 200 and np.isfinite(full["mean_bound"])
    ks = saved["ks"]
    assert saved["stderr_minus_k100"][ks.index(100)] == 0.0 and all(v >= 0 for v in saved["stderr_minus_k100"])
    assert saved["stderr_minus_k1"][ks.index(1)] == 0.0 and all(v > 0 for v in saved["stderr_minus_k1"][1:])
    gap = claims.posterior_gap(saved)
    assert gap["paired"] and gap["se"] == saved["stderr_minus_k1"][ks.index(50_000)]
    (read,) = results.load_interim_sweeps(tmp_path / "data" / "results")
    assert read["file"] == out.name
    est = claims.interim_estimate(read)
    part = saved["mean_bound"][ks.index(50_000)] - saved["mean_bound"][ks.index(100)]
    assert est["estimate"] == pytest.approx(-full["mean_bound"] - part)
    assert est["k_part_se"] == saved["stderr_minus_k100"][ks.index(50_000)] and est["paper"] is None
    assert (est["step"], est["steps"]) == (20, 40)
    # the interim file is no final sweep: the final-sweep reader does not see it, and a file named for
    # another step than it holds is an error naming it
    assert results.load_ksweeps(tmp_path / "data" / "results") == []
    out.rename(out.with_name(f"ksweep_{name}_step30.json"))
    with pytest.raises(results.ResultFileError, match="_step20.json"):
        results.load_interim_sweeps(tmp_path / "data" / "results")


def test_an_interim_sweep_of_the_best_model_is_the_sweep_of_its_step(tmp_path, monkeypatch, capsys):
    """--interim --model best sweeps best.pt, the model early stopping reports, where it lies behind the
    checkpoint: filed under its own step, with the same numbers, to the bit, as an interim sweep of the
    run's checkpoint at that step; a second call keeps the file; --model best needs --interim and a best.pt."""
    import shutil

    import torch

    from concrete_ref.experiments import evaluate, results

    args = ["--dataset", "synthetic", "--model", "20H-784V", "--estimator", "nvil", "--preset", "smoke",
            "--steps", "80", "--no-progress"]  # 80 steps: unfinished at 40
    cfg, _ = density.config_from_args(density.build_parser().parse_args(args))
    name = cfg.run_name()
    data = density.load_dataset("synthetic")
    trainer = density.Trainer(cfg, data, np.asarray(data["train"], float).mean(0))
    ckpt = tmp_path / "runs" / name / "checkpoint.pt"
    trainer.run(ckpt, progress=False, stop_after=25)  # checkpoint and validation at step 20
    at20 = tmp_path / "runs20" / name
    shutil.copytree(ckpt.parent, at20)
    trainer.run(ckpt, progress=False, stop_after=45)  # checkpoint at step 40
    # the state where the best validation lies behind the checkpoint (the validation at 40 was worse)
    state, early = torch.load(ckpt, weights_only=False), torch.load(at20 / "checkpoint.pt", weights_only=False)
    state["best"] = early["best"]
    torch.save(state, ckpt)
    torch.save({"step": 20, "model": early["model"], "baseline": None}, ckpt.with_name("best.pt"))

    monkeypatch.setattr(evaluate, "repo_root", lambda: tmp_path)
    sweep = ["ksweep", "--run", name, "--examples", "8", "--batch", "4"]
    with pytest.raises(SystemExit) as usage:
        evaluate.main(sweep + ["--model", "best"])
    assert usage.value.code == 2 and "only with --interim" in capsys.readouterr().err
    best = evaluate.main(sweep + ["--interim", "--model", "best", "--publish"])
    out = tmp_path / "data" / "results" / "interim" / f"ksweep_{name}_step20.json"
    saved = json.loads(out.read_text())
    assert saved["step"] == 20 and saved["best_of"] == {"checkpoint_step": 40, "valid_bound": early["best"]["valid_bound"]}
    (read,) = results.load_interim_sweeps(tmp_path / "data" / "results")  # a valid interim file of step 20
    assert read["mean_bound"] == best["mean_bound"]
    # the run's checkpoint at step 20, swept as last: the same numbers
    shutil.move(str(ckpt.parent), str(tmp_path / "runs40"))
    shutil.copytree(at20, ckpt.parent)
    last = evaluate.main(sweep + ["--interim", "--results-dir", str(tmp_path / "scratch")])
    assert last["step"] == 20 and "best_of" not in last
    assert last["mean_bound"] == best["mean_bound"] and last["full_test"]["mean_bound"] == best["full_test"]["mean_bound"]
    # again: the filed sweep stands, no evaluation is run
    shutil.rmtree(ckpt.parent)
    shutil.move(str(tmp_path / "runs40"), str(ckpt.parent))
    monkeypatch.setattr(evaluate, "full_test_bound", lambda *a: pytest.fail("evaluated again"))
    assert evaluate.main(sweep + ["--interim", "--model", "best", "--publish"])["mean_bound"] == best["mean_bound"]
    assert "is swept already" in capsys.readouterr().out
    ckpt.with_name("best.pt").unlink()
    with pytest.raises(SystemExit, match="no best validation model at .*best.pt"):
        evaluate.main(sweep + ["--interim", "--model", "best"])


def test_a_finished_run_is_not_swept_as_interim(tmp_path, monkeypatch):
    from concrete_ref.experiments import evaluate

    name = "density_synthetic_20H_784V_concrete_m1_smoke_s0"
    density.main(["--dataset", "synthetic", "--model", "20H-784V", "--preset", "smoke", "--steps", "3",
                  "--run-dir", str(tmp_path / "runs" / name), "--results-dir", str(tmp_path), "--no-progress"])
    monkeypatch.setattr(evaluate, "repo_root", lambda: tmp_path)
    with pytest.raises(SystemExit, match="has finished .*without --interim"):
        evaluate.main(["ksweep", "--run", name, "--examples", "4", "--interim"])
    assert not (tmp_path / "runs" / "results").exists()


def test_snapshots_restore_copies_one_run_and_names_a_missing_one(tmp_path, capsys):
    from concrete_ref.experiments import snapshots

    name = "density_synthetic_20H_784V_concrete_m1_smoke_s0"
    src = tmp_path / "data" / "checkpoints" / name
    src.mkdir(parents=True)
    (src / "checkpoint.pt").write_bytes(b"state")
    snapshots.main(["restore", "--run", name, "--root", str(tmp_path)])
    assert (tmp_path / "runs" / name / "checkpoint.pt").read_bytes() == b"state"
    (tmp_path / "runs" / name / "checkpoint.pt").write_bytes(b"newer")
    snapshots.main(["restore", "--run", name, "--root", str(tmp_path)])  # a checkpoint there is kept
    assert (tmp_path / "runs" / name / "checkpoint.pt").read_bytes() == b"newer"
    assert "kept the checkpoint" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=f"no snapshot at .*nosuchrun_s0 \\(snapshots: {name}\\)"):
        snapshots.main(["restore", "--run", "nosuchrun_s0", "--root", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        snapshots.main(["restore", "--root", str(tmp_path)])
    assert exc.value.code == 2


@pytest.mark.parametrize("extra, flag", [
    (["--examples", "0"], "--examples"), (["--examples", "-5"], "--examples"), (["--batch", "0"], "--batch"),
    (["--seed", "-1"], "--seed"), (["--seed", str(2**64)], "--seed"), (["--threads", "0"], "--threads"),
    (["--run", "../../etc"], "--run"), (["--run", ""], "--run"), (["--run", "a\nb"], "--run"),
    (["--publish", "--results-dir", "x"], "--results-dir"),
])
def test_ksweep_flags_are_usage_errors_before_any_work(tmp_path, monkeypatch, capsys, extra, flag):
    """They failed after loading the run (ValueError: n must be >= 1, range() arg 3 must not be zero, ...)."""
    from concrete_ref.experiments import evaluate

    def forbidden(*a, **k):
        raise AssertionError("work started before the flags were validated")

    monkeypatch.setattr(evaluate, "experiment_process", forbidden)
    monkeypatch.setattr(evaluate, "load_trainer", forbidden)
    argv = ["ksweep", "--run", "density_synthetic_20H_784V_concrete_m1_smoke_s0", *extra]
    with pytest.raises(SystemExit) as exc:
        evaluate.main(argv)
    assert exc.value.code == 2 and f"error: argument {flag}" in capsys.readouterr().err


def test_runs_flush_subnormals_and_restore_the_default():
    from concrete_ref.experiments.cli import subnormals_flushed

    def tiny_product():  # 1e-30 * 1e-10 = 1e-40 is subnormal in float32
        return float((torch.full((8,), 1e-30) * 1e-10)[0])

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormals")
    assert tiny_product() > 0.0
    with subnormals_flushed():
        assert tiny_product() == 0.0
    assert tiny_product() > 0.0  # restored: later code (NumPy too) sees IEEE subnormals again
    with pytest.raises(RuntimeError), subnormals_flushed():
        raise RuntimeError("a failing run")
    assert tiny_product() > 0.0


def test_provenance_names_the_code_the_process_started_with(monkeypatch):
    from concrete_ref.experiments import provenance as P

    first = P.provenance()
    monkeypatch.setattr(P, "_git", lambda *args: "moved-on")  # HEAD and status change while a run goes
    later = P.provenance()
    assert later["git_commit"] == first["git_commit"] != "moved-on"
    assert later["git_dirty"] == first["git_dirty"]


def test_snapshot_save_brings_a_stale_progress_file_up_to_its_checkpoint(tmp_path):
    """A paused run's progress file, replaced by an older copy (a checkout of the tree between sessions),
    would be committed behind its snapshot: ``snapshots save`` rewrites it from the checkpoint, the same
    file the run itself writes at a validation, and leaves a current one and an unpublished run alone."""
    import shutil

    import torch

    from concrete_ref.experiments import snapshots
    from concrete_ref.experiments.train import atomic_write_json, progress_record

    name = "density_synthetic_20H_784V_concrete_m1_smoke_s0"
    trainer = _unfinished_smoke_run(tmp_path, name, stop_after=20)  # its checkpoint holds step 20
    other = "density_synthetic_20H_784V_concrete_m1_smoke_s1"  # unpublished: no progress file
    shutil.copytree(tmp_path / "runs" / name, tmp_path / "runs" / other)
    progress = tmp_path / "data" / "results" / "progress" / f"{name}.json"
    stale = {**trainer.progress(), "step": 10}
    atomic_write_json(progress, stale)
    assert snapshots.save(tmp_path) == [name, other]
    written = json.loads(progress.read_text())
    state = torch.load(tmp_path / "runs" / name / "checkpoint.pt", weights_only=False)
    assert written["step"] == 20 and written == json.loads(json.dumps(progress_record(state)))
    mine = trainer.progress()  # what the run itself writes at a validation (its seconds: a little later)
    clocks = ("train_seconds", "train_cpu_seconds")
    assert {k: v for k, v in written.items() if k not in clocks} == json.loads(json.dumps(
        {k: v for k, v in mine.items() if k not in clocks}))
    assert not (progress.parent / f"{other}.json").exists()
    before = progress.stat().st_mtime_ns
    assert not snapshots.refresh_progress(tmp_path / "runs" / name / "checkpoint.pt", progress)  # current
    assert progress.stat().st_mtime_ns == before
