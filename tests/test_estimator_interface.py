"""The estimator interface (issue 24): the registered estimators compute what the objectives compute,
the command lines take any registered name, and the book's example estimator trains and is unbiased."""

import importlib.util
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from concrete_ref.experiments import density, estimators  # noqa: E402
from concrete_ref.experiments import objectives as O  # noqa: E402
from tests.test_experiments_core import _exact_lm_and_grad, _mc_gradient, _tiny, _z_scores  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _example():
    if "reinforce-mean" in estimators.REGISTRY:
        return estimators.get("reinforce-mean")
    spec = importlib.util.spec_from_file_location("reinforce_estimator", ROOT / "book" / "examples" / "reinforce_estimator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ReinforceMeanBaseline


def test_the_paper_estimators_are_registered_with_their_m():
    assert {"concrete", "vimco", "nvil"} <= set(estimators.names())
    assert estimators.get("vimco").check_samples(1) and not estimators.get("vimco").check_samples(5)
    assert estimators.get("nvil").check_samples(5) and not estimators.get("nvil").check_samples(1)
    assert not estimators.get("concrete").check_samples(50)
    with pytest.raises(ValueError, match="estimator must be one of"):
        estimators.get("rebar-typo")


@pytest.mark.parametrize("name,m", [("concrete", 3), ("vimco", 3), ("nvil", 1)])
def test_interface_losses_equal_the_objectives_bit_for_bit(name, m):
    model = _tiny("3H-2H-5V", seed=2).float()
    model.train()
    x = (torch.rand(7, 5, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    est = estimators.get(name)(model)
    u = est.noise(7, m, torch.Generator().manual_seed(3))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    loss, bound = est.loss(x, m, u)
    model.load_state_dict(state)  # the centering averages moved: put them back for the direct call
    if name == "concrete":
        v = O.concrete_objective(model, x, m, uniforms=u)
        ref = -v.mean()
    elif name == "vimco":
        v = O.vimco_objective(model, x, m, uniforms=u)
        ref = -v.mean()
    else:
        base = O.NVILBaseline(5)
        base.load_state_dict(est.baseline.state_dict())
        base.mean.zero_(), base.var.fill_(1.0)  # as before the estimator's call moved them
        s, bl, _ = O.nvil_objective(model, base, x, uniforms=u)
        ref = -s.mean() + bl.mean()
    assert torch.equal(loss, ref)


def test_the_book_example_estimator_trains_through_the_command_line(tmp_path):
    _example()
    res = density.main(["--dataset", "synthetic", "--model", "20H-784V", "--preset", "smoke", "--estimator",
                        "reinforce-mean", "--run-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path / "res"),
                        "--no-progress"])
    assert res["config"]["estimator"] == "reinforce-mean" and math.isfinite(res["metrics"]["test_nll"])
    assert "best_validation" in res  # a discrete-graph estimator: early stopping applies
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert float(state["estimator"]["state"]["mean"]) != 0.0  # its running mean is checkpointed
    with pytest.raises(SystemExit):
        density.main(["--dataset", "synthetic", "--estimator", "reinforce-mean", "--samples", "2"])


def test_the_book_example_estimator_is_unbiased():
    cls = _example()
    model = _tiny("2H-3V", seed=1).eval()
    x = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    _, exact = _exact_lm_and_grad(model, x, 1)
    est = cls(model)
    est.state.mean.fill_(-2.5)
    g = torch.Generator().manual_seed(2)
    samples = _mc_gradient(model, lambda: est.loss(x[None], 1, est.noise(1, 1, g))[0].neg().sum(), 4000)
    z = _z_scores(exact, samples)
    assert z.max() < 4.5, z.max()


def test_the_add_an_estimator_page_includes_the_tested_example():
    page = (ROOT / "book" / "add_an_estimator.md").read_text()
    assert "examples/reinforce_estimator.py" in page


@pytest.mark.parametrize("name", ["arm", "disarm", "rebar", "relax", "st-gumbel", "gumbel-rao"])
def test_binary_only_estimators_refuse_n_ary_models_on_the_command_line(name, capsys):
    with pytest.raises(SystemExit) as exc:
        density.main(["--dataset", "synthetic", "--model", "24H-784V", "--arity", "4", "--estimator", name])
    assert exc.value.code == 2 and "supports --arity 2 only" in capsys.readouterr().err
