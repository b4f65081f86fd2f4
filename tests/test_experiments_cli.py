"""The density-estimation command line: smoke preset, result file, exact resume, clear errors."""

import json

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
def test_bad_arguments(tmp_path, extra, match):
    with pytest.raises(ValueError, match=match):
        density.main(_args(tmp_path, *extra))
