"""The compiled evaluation (issue 20): the same bound as the eager one, the same noise, a safe fallback."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from concrete_ref.experiments import cli, density, fast_eval  # noqa: E402
from concrete_ref.experiments import objectives as O  # noqa: E402
from concrete_ref.experiments.train import Trainer  # noqa: E402


def _trainer(task="density", model="20H~20H~784V", arity=2):
    args = cli.build_parser(task).parse_args(
        ["--dataset", "synthetic", "--model", model, "--arity", str(arity), "--preset", "smoke"])
    cfg, _ = cli.config_from_args(args, task)
    data = density.load_dataset("synthetic")
    mean = np.asarray(data["train"], float).mean(0)
    split = None
    if task == "structured":
        split, mean = cli.split_top_bottom, cli.split_top_bottom(mean)[1]
    t = Trainer(cfg, data, mean, split=split)
    t.model.eval()
    return t


@pytest.mark.parametrize("task,model,arity", [("density", "20H~20H~784V", 2), ("density", "20H-784V", 4),
                                              ("structured", "392V-20H-392V", 2)])
def test_compiled_log_weights_equal_the_eager_ones_and_draw_the_same_noise(task, model, arity):
    t = _trainer(task, model, arity)
    x = t.data["test"][:6]
    inp, target = t._inputs(x)
    fast = fast_eval.CompiledLogWeights(t.model)
    for relaxed in (False, True):
        ga, gb = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        with torch.no_grad():
            a = t.model.log_weights(inp, 7, relaxed, generator=ga, target=target)[0]
            b = fast(inp, 7, relaxed, generator=gb, target=target)[0]
        assert fast.info["compiled"] is True, fast.info
        assert torch.equal(ga.get_state(), gb.get_state())  # the same draws, in the same order
        assert float((a - b).abs().max()) <= 1e-5 * float(a.abs().max()), relaxed


def test_the_trainers_bound_is_the_same_compiled_or_eager():
    t = _trainer()
    state = t.eval_gen.get_state()
    t.eval_compile = "no"
    eager = t.bound("test", 50)
    t.eval_gen.set_state(state)
    t.eval_compile = "yes"
    compiled = t.bound("test", 50)
    assert abs(compiled - eager) <= 1e-5 * abs(eager)
    assert t.evaluation_engine()["compiled"] is True and t.evaluation_engine()["compile"] == "yes"
    # a perturbed model moves the bound by far more than the tolerance: the check can fail
    with torch.no_grad():
        t.model.prior_logits.add_(2.0)
    t.eval_gen.set_state(state)
    assert abs(t.bound("test", 50) - eager) > 10 * 1e-5 * abs(eager)


def test_a_failing_compile_falls_back_to_the_eager_weights(monkeypatch):
    def broken(fn, **kw):
        def call(*a, **k):
            raise RuntimeError("inductor failed")
        return call

    monkeypatch.setattr(fast_eval.torch, "compile", broken)
    t = _trainer()
    fast = fast_eval.CompiledLogWeights(t.model)
    x = t.data["test"][:4]
    with torch.no_grad():
        a = t.model.log_weights(x, 3, False, generator=torch.Generator().manual_seed(2))[0]
        b = fast(x, 3, False, generator=torch.Generator().manual_seed(2))[0]
        c = fast(x, 3, False, generator=torch.Generator().manual_seed(2))[0]
    assert torch.equal(a, b) and torch.equal(a, c)
    assert fast.info["compiled"] is False and "inductor failed" in fast.info["fallback"]


def test_only_a_large_evaluation_is_compiled_under_auto():
    assert not fast_eval.worth_compiling("auto", 1000 * 1000)  # the book's in-loop validation: 10^5 .. 10^6
    assert fast_eval.worth_compiling("auto", 10_000 * 1000)  # L_1000 on the test set
    assert fast_eval.worth_compiling("yes", 1) and not fast_eval.worth_compiling("no", 10 ** 9)
    with pytest.raises(ValueError, match="compile mode must be one of auto, yes, no"):
        fast_eval.worth_compiling("sometimes", 1)
    t = _trainer()
    t.eval_compile = "auto"
    assert t._eval_log_weights(100) is None and isinstance(t._eval_log_weights(10 ** 7), fast_eval.CompiledLogWeights)


def test_importance_bound_uses_the_given_log_weights():
    t = _trainer()
    calls = []

    def spy(x, m, relaxed=False, generator=None, target=None):
        calls.append(m)
        return t.model.log_weights(x, m, relaxed, generator=generator, target=target)

    O.importance_bound(t.model, t.data["test"][:3], 25, chunk=10, generator=torch.Generator(), log_weights=spy)
    assert calls == [10, 10, 5]


def test_the_bound_draws_from_a_given_generator_and_leaves_its_own_alone():
    """Trainer.bound(generator=g): the same bound as the trainer's own generator in g's state, drawn from
    g alone (the interim sweep's L_100 on the full test set is drawn after the sweep, from its generator)."""
    t = _trainer()
    own = t.eval_gen.get_state()
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        given = t.bound("test", 5, examples=8, generator=g)
    assert torch.equal(t.eval_gen.get_state(), own)  # the trainer's stream is untouched
    assert not torch.equal(g.get_state(), torch.Generator().manual_seed(11).get_state())  # g was drawn from
    t.eval_gen.manual_seed(11)
    with torch.no_grad():
        assert t.bound("test", 5, examples=8) == given
