"""A killed final evaluation resumes where it stopped and ends with the same numbers, to the bit."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from concrete_ref.experiments import density, eval_ledger  # noqa: E402
from concrete_ref.experiments.eval_ledger import LEDGER, EvaluationLedger  # noqa: E402


class Killed(Exception):
    """Stands for the SIGKILL of a session's end."""


def _args(root, *extra):
    return ["--dataset", "synthetic", "--model", "20H-784V", "--preset", "smoke", "--estimator", "nvil",
            "--run-dir", str(root / "run"), "--results-dir", str(root / "results"), "--no-progress", *extra]


def _kill_after(monkeypatch, batches):
    """Every ledger writes after every batch, and the process is "killed" after ``batches`` of them."""
    monkeypatch.setattr(eval_ledger, "WRITE_INTERVAL", 1e-12)
    real, seen = EvaluationLedger.advance, []

    def advance(self, *a, **k):
        real(self, *a, **k)
        seen.append(a[0])
        if len(seen) == batches:
            raise Killed(a[0])

    monkeypatch.setattr(EvaluationLedger, "advance", advance)
    return seen


def test_a_killed_evaluation_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, capsys):
    """NVIL, smoke: the last model's test and train bounds (and the best model's, if it is not the last);
    killed in the middle of the train bound, resumed with --resume: the same metrics, bit for bit, the
    finished test bound taken from the ledger, the resume recorded in the result and the ledger removed."""
    full = density.main(_args(tmp_path / "a"))
    assert "evaluation_resumes" not in full
    assert not (tmp_path / "a" / "run" / LEDGER).exists()  # removed once the result is written
    seen = _kill_after(monkeypatch, 4)  # test: 2 batches of 102 of 200 images (k = 10), then train: 3 of 256
    with pytest.raises(Killed):
        density.main(_args(tmp_path / "b"))
    assert seen == ["last/test"] * 2 + ["last/train"] * 2
    ledger = torch.load(tmp_path / "b" / "run" / LEDGER, weights_only=False)
    assert list(ledger["done"]) == ["last/test"] and ledger["current"]["key"] == "last/train"
    assert ledger["current"]["next"] == 2 * 102
    assert not (tmp_path / "b" / "results").exists()
    monkeypatch.undo()  # the next process: no kill, the usual write interval
    resumed = density.main(_args(tmp_path / "b", "--resume"))
    assert "evaluation resumed at last/train, example 204 (finished: last/test)" in capsys.readouterr().err
    assert resumed["metrics"] == full["metrics"]
    assert resumed.get("metrics_best") == full.get("metrics_best")
    (where,) = resumed["evaluation_resumes"]
    assert (where["key"], where["example"], where["finished"]) == ("last/train", 204, ["last/test"])
    (saved,) = [json.loads(f.read_text()) for f in (tmp_path / "b" / "results").glob("*.json")]
    assert saved["metrics"] == full["metrics"] and saved["evaluation_resumes"] == resumed["evaluation_resumes"]
    assert not (tmp_path / "b" / "run" / LEDGER).exists()



def _trainer():
    args = density.build_parser().parse_args(_args_plain())
    cfg, _ = density.config_from_args(args)
    data = density.load_dataset("synthetic")
    t = density.Trainer(cfg, data, np.asarray(data["train"], float).mean(0))
    t.data["train"] = t.data["train"][:256]
    return t


def _args_plain():
    return ["--dataset", "synthetic", "--model", "20H-784V", "--preset", "smoke", "--no-progress"]


def test_a_ledger_of_another_evaluation_or_a_torn_one_is_discarded(tmp_path):
    """A ledger is used only for the evaluation it was written for: another step (the run trained on, or
    retrained) or an unreadable file start the evaluation again, and say why."""
    t = _trainer()
    path = tmp_path / LEDGER
    t.ledger = EvaluationLedger(path, t.ledger_identity())
    with torch.no_grad():
        first = t.evaluate()
    assert path.exists() and list(torch.load(path, weights_only=False)["done"]) == ["last/test", "last/train"]
    again = EvaluationLedger(path, t.ledger_identity())
    assert again.resumed and again.discarded is None and again.done == {"last/test": first["test_bound"],
                                                                        "last/train": first["train_bound"]}
    t.step += 1
    other = EvaluationLedger(path, t.ledger_identity())
    assert not other.resumed and other.done == {} and "another evaluation" in other.discarded
    path.write_bytes(b"torn")
    torn = EvaluationLedger(path, t.ledger_identity())
    assert not torn.resumed and torn.discarded.startswith("unreadable")


def test_the_ledger_refuses_bounds_in_another_order_and_a_bad_interval(tmp_path):
    g = torch.Generator().manual_seed(0)
    ledger = EvaluationLedger(tmp_path / LEDGER, {"run": "r"}, interval=1e-12)
    assert ledger.start("last/test", g) == (None, 0, 0.0)
    ledger.advance("last/test", 10, -5.0, g)
    resumed = EvaluationLedger(tmp_path / LEDGER, {"run": "r"})
    with pytest.raises(RuntimeError, match="under way is 'last/test', not 'last/train'"):
        resumed.start("last/train", torch.Generator())
    assert resumed.start("last/test", g) == (None, 10, -5.0)
    with pytest.raises(ValueError, match="interval must be > 0 seconds; got 0"):
        EvaluationLedger(tmp_path / "x.pt", {}, interval=0)


def test_a_snapshot_carries_the_ledger_of_an_evaluation_under_way(tmp_path):
    """snapshots save copies evaluation.pt beside the checkpoint (so that an hours-long evaluation
    resumes on a fresh machine) and restore brings it back; a ledger the run no longer has leaves the
    snapshot too."""
    from concrete_ref.experiments import snapshots

    run = tmp_path / "runs" / "density_x_paper_s0"
    run.mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(b"ckpt")
    (run / LEDGER).write_bytes(b"ledger")
    assert snapshots.save(tmp_path) == ["density_x_paper_s0"]
    snap = snapshots.snapshot_dir(tmp_path) / "density_x_paper_s0"
    assert (snap / LEDGER).read_bytes() == b"ledger"
    (run / LEDGER).unlink()  # e.g. started again after a discarded ledger, not yet written
    snapshots.save(tmp_path)
    assert not (snap / LEDGER).exists() and (snap / "checkpoint.pt").exists()
    (snap / LEDGER).write_bytes(b"ledger 2")
    import shutil

    shutil.rmtree(tmp_path / "runs")  # a fresh machine
    assert snapshots.restore("density_x_paper_s0", tmp_path)
    assert (run / LEDGER).read_bytes() == b"ledger 2"
