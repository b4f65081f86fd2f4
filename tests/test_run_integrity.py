"""A committed result can never be replaced by a different run; killed, resumed, broken and concurrent runs
behave (issue 19 §2); the compiled step computes what the eager step computes (issue 20)."""

import json

import pytest

torch = pytest.importorskip("torch")

from concrete_ref.experiments import cli, density, identity  # noqa: E402
from concrete_ref.experiments.train import Trainer  # noqa: E402


def _args(tmp_path, *extra):
    return ["--dataset", "synthetic", "--model", "20H-784V", "--preset", "smoke", "--run-dir",
            str(tmp_path / "run"), "--results-dir", str(tmp_path / "results"), "--no-progress", *extra]


def _config(argv):
    cfg, _ = density.config_from_args(density.build_parser().parse_args(argv))
    return cfg


def test_a_run_with_overridden_budget_is_another_run():
    """The issue's case: --preset book with --steps 5 and tiny evaluation is not the book cell."""
    base = ["--dataset", "mnist", "--model", "200H-784V", "--preset", "book"]
    book = _config(base)
    adhoc = _config(base + ["--steps", "5", "--eval-samples-test", "2", "--eval-samples-train", "2",
                            "--eval-examples", "50", "--valid-every", "0"])
    assert book.run_name() == "density_mnist_200H_784V_concrete_m1_book_s0"
    assert adhoc.run_name().startswith("density_mnist_200H_784V_concrete_m1_book_x") and adhoc.run_name() != book.run_name()
    assert identity.is_preset_cell(vars(book) | {}) and not identity.is_preset_cell(vars(adhoc) | {})
    assert set(identity.overrides(vars(adhoc))) == {"steps", "eval_samples_test", "eval_samples_train",
                                                    "eval_examples", "valid_every"}
    for flag, value in [("--learning-rate", "1e-3"), ("--batch-size", "32"), ("--train-examples", "100"),
                        ("--weight-decay", "0.1"), ("--eval-train-examples", "10")]:
        assert _config(base + [flag, value]).run_name() != book.run_name(), flag
    # settings that change how, not what, a run computes keep its name
    assert _config(base + ["--eval-chunk", "7", "--checkpoint-every", "3"]).run_name() == book.run_name()


def test_every_committed_result_is_its_preset_cell_under_its_name():
    from concrete_ref.experiments.provenance import repo_root

    files = [p for p in (repo_root() / "data" / "results").glob("*.json") if not p.name.startswith("ksweep_")]
    assert len(files) >= 60
    for path in files:
        cfg = json.loads(path.read_text())["config"]
        assert identity.is_preset_cell(cfg), path.name
        assert identity.run_name(cfg) + ".json" == path.name


def test_results_go_to_a_scratch_folder_unless_published(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "repo_root", lambda: tmp_path)
    argv = ["--dataset", "synthetic", "--model", "20H-784V", "--preset", "smoke", "--no-progress", "--steps", "4"]
    density.main(argv)
    assert len(list((tmp_path / "runs" / "results").glob("*.json"))) == 1
    assert not (tmp_path / "data").exists()
    density.main(argv + ["--publish", "--fresh"])
    assert len(list((tmp_path / "data" / "results").glob("*.json"))) == 1
    assert len(list((tmp_path / "data" / "results" / "progress").glob("*.json"))) == 1  # the curve as it grows


def test_writing_over_a_result_of_another_configuration_is_refused_before_training(tmp_path):
    cfg = _config(_args(tmp_path))
    out = tmp_path / "results" / f"{cfg.run_name()}.json"
    out.parent.mkdir(parents=True)
    import dataclasses

    other = dataclasses.asdict(cfg) | {"learning_rate": 0.5}
    out.write_text(json.dumps({"config": other, "metrics": {"test_nll": 113.1}}))
    with pytest.raises(SystemExit, match="another configuration.*learning_rate"):
        density.main(_args(tmp_path))
    assert json.loads(out.read_text())["metrics"]["test_nll"] == 113.1  # untouched
    assert not (tmp_path / "run" / "checkpoint.pt").exists()  # refused before any training
    density.main(_args(tmp_path / "same"))  # the same configuration again is a rerun: allowed
    density.main(_args(tmp_path / "same", "--fresh"))


def test_resume_refuses_changed_settings_and_a_missing_checkpoint(tmp_path):
    with pytest.raises(SystemExit, match="no checkpoint"):
        density.main(_args(tmp_path, "--resume"))
    density.main(_args(tmp_path))
    # with an explicit --run-dir the changed name cannot move the folder: a usage error naming the setting,
    # not a traceback (it was an uncaught ValueError)
    with pytest.raises(SystemExit, match="--resume: .*steps: 40 in the checkpoint, 60 now"):
        density.main(_args(tmp_path, "--resume", "--steps", "60"))
    with pytest.raises(SystemExit, match="--resume: .*learning_rate"):
        density.main(_args(tmp_path, "--resume", "--learning-rate", "0.01"))


def test_resume_in_the_default_folder_names_the_changed_setting(tmp_path, monkeypatch):
    """The README's ``--resume`` (no --run-dir): a changed --steps or temperature gives the run another name,
    hence another folder; the refusal names the setting and the cell's checkpoint, not only 'no checkpoint'
    (it said only that before)."""
    monkeypatch.setattr(cli, "repo_root", lambda: tmp_path)
    argv = ["--dataset", "synthetic", "--model", "20H-784V", "--preset", "smoke", "--no-progress", "--steps", "4",
            "--results-dir", str(tmp_path / "results")]
    density.main(argv)
    with pytest.raises(SystemExit, match=r"other settings is at .*_smoke_x[0-9a-f]{8}_s0 \(steps: 4 there, 6 now\)"):
        density.main(argv + ["--resume", "--steps", "6"])
    with pytest.raises(SystemExit, match=r"posterior_temperature: 0\.666.* there, 0\.5 now"):
        density.main(argv + ["--resume", "--posterior-temperature", "0.5"])
    with pytest.raises(SystemExit, match="no checkpoint at .*_s1/checkpoint.pt; run without --resume"):
        density.main(argv + ["--resume", "--seed", "1"])  # another seed is another cell: nothing to name
    density.main(argv + ["--resume"])  # the same settings resume


def test_resumed_curves_equal_an_uninterrupted_runs(tmp_path):
    full = density.main(_args(tmp_path / "a", "--estimator", "nvil"))
    cfg = _config(_args(tmp_path / "b", "--estimator", "nvil"))
    data = density.load_dataset("synthetic")
    import numpy as np

    first = Trainer(cfg, data, np.asarray(data["train"], float).mean(0))
    first.run(tmp_path / "b" / "run" / "checkpoint.pt", progress=False, stop_after=27)  # killed after step 27
    resumed = density.main(_args(tmp_path / "b", "--estimator", "nvil", "--resume"))
    assert resumed["curves"] == full["curves"]  # the running average is checkpointed too
    assert resumed["metrics"] == full["metrics"]


def test_two_processes_cannot_train_one_run(tmp_path):
    with cli.run_lock(tmp_path / "run"):
        with pytest.raises(SystemExit, match=r"in use by process \d+"):
            density.main(_args(tmp_path))


@pytest.mark.parametrize("writer", ["json", "checkpoint"])
def test_two_writers_of_one_file_use_their_own_temporary_names(tmp_path, monkeypatch, writer):
    """Issue 19 §2, 'unique temporary names': a second writer of the same result or checkpoint, starting while
    the first one's temporary file exists, no longer takes the same '<name>.tmp' (the first writer's rename
    then failed with FileNotFoundError, or moved the other's half-written file into place); both finish,
    and no temporary file is left."""
    from concrete_ref.experiments import train

    target = tmp_path / ("result.json" if writer == "json" else "checkpoint.pt")
    write = (lambda obj: train.atomic_write_json(target, obj)) if writer == "json" else \
        (lambda obj: train._atomic_torch_save(obj, target))
    real_replace, nested = train.os.replace, []

    def replace_with_a_second_writer(src, dst):
        if not nested:  # the first writer's temporary file is complete; another writer starts now
            nested.append(src)
            write({"writer": 2})
        return real_replace(src, dst)

    monkeypatch.setattr(train.os, "replace", replace_with_a_second_writer)
    write({"writer": 1})
    saved = json.loads(target.read_text()) if writer == "json" else torch.load(target)
    assert saved == {"writer": 1}  # the last rename wins, and it is a whole file
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_corrupt_checkpoint_names_the_file_and_fresh(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"\x80\x02 not a checkpoint")
    with pytest.raises(SystemExit, match=r"checkpoint\.pt is corrupt or truncated.*--fresh"):
        density.main(_args(tmp_path, "--resume"))


def test_a_non_finite_loss_stops_the_run_and_writes_nothing(tmp_path, monkeypatch):
    original = Trainer._loss

    def poisoned(self, x, uniforms):
        loss, bound = original(self, x, uniforms)
        return (loss * float("nan"), bound) if self.step == 6 else (loss, bound)

    monkeypatch.setattr(Trainer, "_loss", poisoned)
    # the command line stops with the step named (a message, not a traceback: issue 19's audit)
    with pytest.raises(SystemExit, match="stopped: .*at step 7"):
        density.main(_args(tmp_path))
    assert not (tmp_path / "results").exists()


def test_a_bad_data_timeout_is_a_usage_error_before_any_work(tmp_path, monkeypatch, capsys):
    """``CONCRETE_DATA_TIMEOUT=abc``: the density command printed a 32-line traceback once it loaded the data,
    after the run folder and its lock existed; it is now a usage error (exit 2) naming the variable."""
    monkeypatch.setenv("CONCRETE_DATA_TIMEOUT", "abc")
    with pytest.raises(SystemExit) as exit_info:
        density.main(_args(tmp_path))
    assert exit_info.value.code == 2 and "CONCRETE_DATA_TIMEOUT" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_non_finite_evaluation_writes_no_result(tmp_path, monkeypatch):
    """Finite parameters can still give an infinite or NaN bound in the final evaluation: no result file
    (it was written with the NaN, and Table 1 printed 'nan')."""
    original = Trainer.evaluate

    def poisoned(self, model="last"):
        return {**original(self, model), "test_nll": float("nan"), "test_bound": float("nan")}

    monkeypatch.setattr(Trainer, "evaluate", poisoned)
    with pytest.raises(SystemExit, match=r"evaluation after step 40 gave metrics\.test_bound = nan"):
        density.main(_args(tmp_path))
    assert not (tmp_path / "results").exists()


def test_non_finite_parameters_stop_the_run_at_the_checkpoint(tmp_path, monkeypatch):
    original = Trainer.train_step

    def poisoned(self):
        value = original(self)
        if self.step == 20:  # poisoned after the update of a checkpoint step
            with torch.no_grad():
                next(self.model.parameters())[0] = float("inf")
        return value

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    with pytest.raises(SystemExit, match="not finite at step 20"):
        density.main(_args(tmp_path, "--valid-every", "0"))
    assert not (tmp_path / "results").exists()


def test_score_function_runs_keep_and_evaluate_their_best_validation_checkpoint(tmp_path):
    res = density.main(_args(tmp_path, "--estimator", "nvil", "--steps", "60", "--valid-every", "10"))
    best = res["best_validation"]
    assert best["valid_bound"] == max(res["curves"]["valid_bound"])
    assert (tmp_path / "run" / "best.pt").exists()
    if best["step"] != 60:
        assert res["metrics_best"]["step"] == best["step"] and "test_nll" in res["metrics_best"]
    concrete = density.main(_args(tmp_path / "c"))
    assert "metrics_best" not in concrete  # Concrete runs are not early-stopped (the paper's protocol)


# ---------------------------------------------------------------- the compiled step (issue 20)
def _trainer(estimator="concrete", m=1, model="20H~20H~784V"):
    cfg = _config(["--dataset", "synthetic", "--model", model, "--estimator", estimator, "--samples", str(m)])
    data = density.load_dataset("synthetic")
    import numpy as np

    return Trainer(cfg, data, np.asarray(data["train"], float).mean(0))


@pytest.mark.parametrize("estimator,m", [("concrete", 3), ("nvil", 1)])
def test_compiled_step_matches_the_eager_step(estimator, m):
    """Same batch, same uniforms: loss to 1e-5 relative, every gradient to 1e-4 of its largest entry."""
    eager, comp = _trainer(estimator, m), _trainer(estimator, m)
    comp.compile_step()
    x = eager._batch()
    u = eager.model.draw_uniforms(x.shape[0], m, torch.Generator().manual_seed(3))
    comp.model.load_state_dict(eager.model.state_dict())
    la, _ = eager._loss(x, u)
    lb, _ = comp._step_fn(x, u)
    assert abs(float(la - lb)) <= 1e-5 * abs(float(la))
    ga = torch.autograd.grad(la, list(eager.model.parameters()))
    gb = torch.autograd.grad(lb, list(comp.model.parameters()))
    for a, b in zip(ga, gb):
        assert float((a - b).abs().max()) <= 1e-4 * float(a.abs().max()) + 1e-7


def test_drawn_uniforms_reproduce_the_generator_path():
    """log_weights with uniforms drawn up front equals log_weights drawing them itself (bit for bit)."""
    t = _trainer(model="20H-20H-784V")
    t.model.eval()  # in training mode each call also moves the centering averages
    x = t._batch()
    for relaxed in (True, False):
        a = t.model.log_weights(x, 4, relaxed, generator=torch.Generator().manual_seed(1))[0]
        u = t.model.draw_uniforms(x.shape[0], 4, torch.Generator().manual_seed(1))
        b = t.model.log_weights(x, 4, relaxed, uniforms=u)[0]
        assert torch.equal(a, b)


def test_compiled_run_resumes_bit_exactly(tmp_path):
    full = density.main(_args(tmp_path / "a", "--compile", "yes"))
    assert full["engine"]["compiled"] is True and full["engine"]["fused_adam"] is True
    cfg = _config(_args(tmp_path / "b"))
    data = density.load_dataset("synthetic")
    import numpy as np

    first = Trainer(cfg, data, np.asarray(data["train"], float).mean(0))
    first.compile_step()
    first.run(tmp_path / "b" / "run" / "checkpoint.pt", progress=False, stop_after=25)
    resumed = density.main(_args(tmp_path / "b", "--resume"))  # the checkpoint says: compiled
    assert resumed["engine"]["compiled"] is True
    a = torch.load(tmp_path / "a" / "run" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "run" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["metrics"] == full["metrics"]


def test_the_engine_probe_leaves_no_trace_in_the_run():
    """choose_engine('auto') trains eager and compiled blocks on the run, then restores it exactly."""
    import dataclasses

    t = _trainer(model="20H-784V")
    t.config = dataclasses.replace(t.config, steps=10**6)  # auto probes runs of at least 2,000 steps
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    gen = t.noise_gen.get_state().clone()
    info = cli.choose_engine(t, "auto", block=2, repeats=2)
    assert {"eager_step_ms", "compiled_step_ms", "compile_seconds"} <= set(info)
    assert t.step == 0 and torch.equal(t.noise_gen.get_state(), gen)
    assert all(torch.equal(before[k], v) for k, v in t.model.state_dict().items())
    assert t.compiled == (info["compiled_step_ms"] < info["eager_step_ms"]) == t.engine["compiled"]


def test_device_flag_runs_on_the_cpu_and_refuses_what_is_not_there(tmp_path):
    res = density.main(_args(tmp_path, "--device", "cpu", "--steps", "4"))
    assert res["engine"]["device"] == "cpu" and res["provenance"]["device"] == "cpu"
    auto = density.main(_args(tmp_path / "auto", "--device", "auto", "--steps", "4"))
    assert auto["engine"]["device"] == ("cuda" if torch.cuda.is_available() else auto["engine"]["device"])
    if not torch.cuda.is_available():
        assert auto["metrics"] == res["metrics"]  # auto is the CPU here: the same run
        with pytest.raises(SystemExit, match="no CUDA device"):
            density.main(_args(tmp_path / "cuda", "--device", "cuda"))
    with pytest.raises(SystemExit, match="--device must be"):
        density.main(_args(tmp_path / "tpu", "--device", "tpu"))


def test_a_checkpoint_resumes_only_on_its_device(tmp_path):
    density.main(_args(tmp_path, "--steps", "4"))
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    state["engine"]["device"] = "cuda:0"
    torch.save(state, tmp_path / "run" / "checkpoint.pt")
    with pytest.raises(SystemExit, match="--resume: the checkpoint was written on cuda:0; resume it with --device cuda:0"):
        density.main(_args(tmp_path, "--steps", "4", "--resume", "--device", "cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_a_cuda_run_matches_the_cpu_run_in_distribution(tmp_path):
    cpu = density.main(_args(tmp_path / "cpu", "--device", "cpu"))
    gpu = density.main(_args(tmp_path / "gpu", "--device", "cuda"))
    assert gpu["engine"]["device"].startswith("cuda")
    assert abs(gpu["metrics"]["test_nll"] - cpu["metrics"]["test_nll"]) < 5.0
