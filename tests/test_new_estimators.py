"""The estimators added for issue 24 (st-gumbel, gumbel-rao, rebar, relax, arm, disarm).

On enumerable binary models (float64): the unbiased ones (rebar, relax, arm, disarm) have the exact
gradient of the single-sample ELBO as their Monte Carlo mean (z-scores against exact enumeration, on a
one- and a two-layer density model and on a conditional model); straight-through Gumbel-softmax has
the mean of its defining expression, computed from an independent implementation by quadrature over
the uniforms, which is biased for the ELBO's gradient (nonzero bias, positive cosine); Gumbel-Rao has
straight-through's mean (paired with it on the same exact samples) and a smaller variance. REBAR's and
RELAX's variance gradients match finite differences of the squared gradient. Each trains through the
command line, and REBAR's and RELAX's control-variate parameters move during training.
"""

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from concrete_ref.experiments import density, estimators  # noqa: E402
from concrete_ref.experiments.estimators import _walk as W  # noqa: E402
from concrete_ref.experiments.models import bernoulli_log_likelihood  # noqa: E402
from tests.test_experiments_core import _exact_lm_and_grad, _tiny, _tiny_conditional, _z_scores  # noqa: E402

NEW = ["st-gumbel", "gumbel-rao", "rebar", "relax", "arm", "disarm"]
UNBIASED = ["rebar", "relax", "arm", "disarm"]
X = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
CALLS, BATCH = 100, 50  # 5,000 draws: 100 minibatch means of 50


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _gradients(model, est, x, calls=CALLS, batch=BATCH, seed=0, target=None):
    """``calls`` minibatch-mean gradients of the objective (the negated ``.grad`` that ``backward`` sets)."""
    g = torch.Generator().manual_seed(seed)
    named = list(model.named_parameters())
    out = {n: [] for n, _ in named}
    xb = x[None].expand(batch, -1)
    tb = None if target is None else target[None].expand(batch, -1)
    for _ in range(calls):
        for _, p in named:
            p.grad = None
        est.backward(xb, 1, est.noise(batch, 1, g), target=tb)
        for n, p in named:
            out[n].append(-p.grad.clone())
    return {n: torch.stack(v) for n, v in out.items()}


def _set_control(est, model):
    """Non-default control variates, so that every term of REBAR / RELAX matters."""
    with torch.no_grad():
        L = len(model.codes)
        est.control.eta.copy_(torch.tensor([0.8, 1.3, 1.1][:L], dtype=torch.float64))
        est.control.log_temperature.fill_(math.log(0.3))
        if est.name == "relax":
            gen = torch.Generator().manual_seed(5)
            for net in est.network:
                net[-1].weight.copy_(0.5 * torch.randn(net[-1].weight.shape, generator=gen, dtype=torch.float64))
                net[-1].bias.fill_(0.3)


# ---------------------------------------------------------------- registration, refusals, the walk
def test_registered_with_m_1_and_binary_layers_only():
    assert set(NEW) <= set(estimators.names())
    model = _tiny("2H-3V", arity=4)
    for name in NEW:
        cls = estimators.get(name)
        assert cls.check_samples(1) is None and cls.check_samples(2)
        with pytest.raises(ValueError, match="binary latent layers only"):
            cls(model)
    assert not estimators.get("rebar").compilable and not estimators.get("relax").compilable


@pytest.mark.parametrize("conditional", [False, True])
def test_the_walk_on_exact_states_is_log_weights(conditional):
    model = _tiny_conditional(2 / 3) if conditional else _tiny("2H-2H-3V", seed=1).eval()
    x = torch.rand(6, 4 if conditional else 3, generator=torch.Generator().manual_seed(0)).round().double()
    t = torch.rand(6, 4, generator=torch.Generator().manual_seed(1)).round().double() if conditional else None
    u = model.draw_uniforms(6, 1, torch.Generator().manual_seed(2))
    logw, log_q = model.log_weights(x, 1, relaxed=False, uniforms=u, target=t)
    w = W.walk(model, x, lambda s, a: W.hard(W.logistic(a, u[s])), target=t)
    torch.testing.assert_close(w.logw, logw, rtol=0, atol=1e-12)
    torch.testing.assert_close(sum(w.log_q), log_q, rtol=0, atol=1e-12)


def test_conditional_logistic_is_the_logistic_given_its_sign():
    """z~ ~ (a + L) | H(a + L) = b: its quantiles match those of exact samples with that sign."""
    a = torch.tensor(0.7, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    z = a + torch.logit(torch.rand(200_000, generator=g, dtype=torch.float64))
    v = torch.rand(200_000, generator=g, dtype=torch.float64)
    qs = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9], dtype=torch.float64)
    for b in (0.0, 1.0):
        zt = W.conditional_logistic(a, torch.full_like(v, b), v)
        assert ((zt > 0) == (b > 0)).all()
        ref = z[(z > 0) == (b > 0)]
        torch.testing.assert_close(torch.quantile(zt, qs), torch.quantile(ref, qs), rtol=0, atol=0.03)


@pytest.mark.parametrize("name", NEW)
def test_training_mode_moves_the_centering_once_and_after_every_walk(name):
    """In training mode a step computes what it computes in evaluation mode (every walk of the step
    reads the same centering averages, App. D.4) and then moves the averages as one log_weights call
    on its exact sample does."""
    model = _tiny("2H-2H-3V", seed=3)
    with torch.no_grad():
        model.center_0.copy_(torch.tensor([0.3, -0.4], dtype=torch.float64))
    est = estimators.get(name)(model)
    xb = torch.rand(5, 3, generator=torch.Generator().manual_seed(8)).round().double()
    u = est.noise(5, 1, torch.Generator().manual_seed(9))
    grads = {}
    for mode in ("eval", "train"):
        getattr(model, mode)()
        for p in model.parameters():
            p.grad = None
        est.backward(xb, 1, u)
        grads[mode] = _flat({n: p.grad for n, p in model.named_parameters()})
        if mode == "train":
            moved = model.center_0.clone()
            with torch.no_grad():
                model.center_0.copy_(torch.tensor([0.3, -0.4], dtype=torch.float64))
                model.log_weights(xb, 1, relaxed=False, uniforms=u[: len(model.codes)])
            torch.testing.assert_close(moved, model.center_0, rtol=0, atol=1e-15)
            assert not torch.equal(moved, torch.tensor([0.3, -0.4], dtype=torch.float64))
    torch.testing.assert_close(grads["train"], grads["eval"], rtol=0, atol=1e-13)


# ---------------------------------------------------------------- the unbiased estimators
@pytest.mark.parametrize("notation", ["2H-3V", "2H-2H-3V"])
@pytest.mark.parametrize("name", UNBIASED)
def test_unbiased_estimators_have_the_exact_elbo_gradient_as_mean(name, notation):
    model = _tiny(notation, seed=1).eval()  # eval: the centering averages are frozen, the objective fixed
    _, exact = _exact_lm_and_grad(model, X, 1)
    est = estimators.get(name)(model)
    if name in ("rebar", "relax"):
        _set_control(est, model)
    z = _z_scores(exact, _gradients(model, est, X, seed=11))
    print(f"{name} {notation}: max z = {z.max():.2f} over {z.numel()} entries")
    assert z.max() < 4.5, z.max()  # ~ 30-50 entries: 4.5 sigma is a per-test false-alarm rate < 1e-3


def test_disarm_varies_less_than_arm_on_the_same_noise():
    """DisARM is ARM's estimator averaged over the uniforms given the antithetic pair."""
    for notation in ("2H-3V", "2H-2H-3V"):
        model = _tiny(notation, seed=1).eval()
        var = {}
        for name in ("arm", "disarm"):
            s = _gradients(model, estimators.get(name)(model), X, calls=600, batch=2, seed=15)
            var[name] = sum(v.var(0).sum() for n, v in s.items() if n.startswith("q_maps")).item()
        print(f"{notation}: inference-network gradient variance disarm {var['disarm']:.4f}, arm {var['arm']:.4f}")
        assert var["disarm"] < var["arm"]


def _exact_structured_objective_gradient(model, context, target):
    """E_{p(h | context)}[log p(target | h)] by enumerating every latent state, and its gradient."""
    per_layer = [list(itertools.product([0.0, 1.0], repeat=code.units)) for code in model.codes]
    total = 0.0
    for config in itertools.product(*per_layer):
        h, log_p = context, 0.0
        for code, net, s in zip(model.codes, model.p_maps, config):
            s = torch.tensor(s, dtype=torch.float64)
            log_p = log_p + code.discrete_log_prob(s, net(h))
            h = 2 * s - 1
        total = total + torch.exp(log_p) * bernoulli_log_likelihood(model.p_out(h), target)
    model.zero_grad()
    total.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("name", ["rebar", "disarm"])
def test_unbiased_on_a_structured_prediction_model(name):
    model = _tiny_conditional(2 / 3, scale=0.5)  # 4V-3H-2H-4V
    context = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    target = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    exact = _exact_structured_objective_gradient(model, context, target)
    est = estimators.get(name)(model)
    if name == "rebar":
        _set_control(est, model)
    z = _z_scores(exact, _gradients(model, est, context, seed=12, target=target))
    print(f"{name} 4V-3H-2H-4V: max z = {z.max():.2f} over {z.numel()} entries")
    assert z.max() < 4.5, z.max()


@pytest.mark.parametrize("name", ["rebar", "relax"])
def test_the_control_variate_gradient_is_that_of_the_squared_gradient(name):
    """backward() sets d(sum_k g_k^2)/d(phi) on the control variate's parameters (finite differences),
    and the model's gradient loss() defines."""
    model = _tiny("2H-2H-3V", seed=2).eval()
    est = estimators.get(name)(model)
    _set_control(est, model)
    xb = torch.rand(8, 3, generator=torch.Generator().manual_seed(4)).round().double()
    u = est.noise(8, 1, torch.Generator().manual_seed(5))

    def squared_gradient():
        est.backward(xb, 1, u)
        return sum((p.grad ** 2).sum() for p in W.distribution_parameters(model)).item()

    est.backward(xb, 1, u)
    model_grad = [p.grad.clone() for p in model.parameters()]
    own = {"eta": est.control.eta, "log_temperature": est.control.log_temperature}
    if name == "relax":
        own["network"] = est.network[1][0].weight
    analytic = {k: p.grad.flatten()[0].item() for k, p in own.items()}
    for k, p in own.items():
        h = 1e-6
        with torch.no_grad():
            p.view(-1)[0] += h
        up = squared_gradient()
        with torch.no_grad():
            p.view(-1)[0] -= 2 * h
        down = squared_gradient()
        with torch.no_grad():
            p.view(-1)[0] += h
        assert analytic[k] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8), k
        assert analytic[k] != 0.0
    model.zero_grad()
    est.loss(xb, 1, u)[0].backward()
    for p, g in zip(model.parameters(), model_grad):
        torch.testing.assert_close(p.grad, g, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- straight-through and Gumbel-Rao
def _st_by_hand(model, x, u, lam):
    """Straight-through Gumbel-softmax surrogate of a one-layer density model, written from its weights:
    f(s) = log p(s) + log p(x | s) - log q(s | x), s = b + sigma(z / lam) - sg[.], z = alpha + logit(u)."""
    def log_sigmoid(t):
        return torch.log(torch.sigmoid(t))

    alpha = x @ model.q_maps[0].weight.T + model.q_maps[0].bias
    z = alpha + torch.log(u) - torch.log1p(-u)
    soft = torch.sigmoid(z / lam)
    s = (z > 0).double() + soft - soft.detach()
    a = model.prior_logits
    logits = (2 * s - 1) @ model.p_out.weight.T + model.p_out.bias
    return ((s * log_sigmoid(a) + (1 - s) * log_sigmoid(-a)).sum(-1)
            + (x * log_sigmoid(logits) + (1 - x) * log_sigmoid(-logits)).sum(-1)
            - (s * log_sigmoid(alpha) + (1 - s) * log_sigmoid(-alpha)).sum(-1))


def _grad(model, value):
    model.zero_grad()
    value.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def _flat(d):
    return torch.cat([v.flatten() for v in d.values()])


def test_st_gumbel_is_its_defining_expression_and_biased():
    model = _tiny("2H-3V", seed=2).eval()
    est = estimators.get("st-gumbel")(model)
    lam = model.posterior_temperature
    # per draw: the estimator is the hand-written straight-through gradient (same uniforms)
    u = torch.rand(1, 7, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    xb = torch.rand(7, 3, generator=torch.Generator().manual_seed(7)).round().double()
    mine, ref = _grad(model, est.loss(xb, 1, [u])[0]), _grad(model, -_st_by_hand(model, xb, u[0], lam).mean())
    torch.testing.assert_close(_flat(mine), _flat(ref), rtol=1e-10, atol=1e-12)
    # its mean, by Gauss-Legendre quadrature over each unit's uniform split where the exact state flips
    with torch.no_grad():
        t = torch.sigmoid(-model.q_maps[0](X))  # b_i = 1 iff u_i > t_i
    xi, wi = (torch.tensor(a, dtype=torch.float64) for a in np.polynomial.legendre.leggauss(40))
    nodes = [torch.cat([ti * (xi + 1) / 2, ti + (1 - ti) * (xi + 1) / 2]) for ti in t]
    weights = [torch.cat([ti * wi / 2, (1 - ti) * wi / 2]) for ti in t]
    grid = torch.cartesian_prod(*nodes)
    w = torch.cartesian_prod(*weights).prod(-1)
    mean = _grad(model, (w * _st_by_hand(model, X, grid, lam)).sum())
    samples = _gradients(model, est, X, seed=13)
    z = _z_scores(mean, samples)
    _, exact = _exact_lm_and_grad(model, X, 1)
    m, e = _flat(mean), _flat(exact)
    cosine, rel_bias = float(m @ e / (m.norm() * e.norm())), float((m - e).norm() / e.norm())
    print(f"st-gumbel 2H-3V: max z vs quadrature mean = {z.max():.2f}; bias |E g - grad|/|grad| = {rel_bias:.3f}, "
          f"cosine = {cosine:.3f}, max z vs exact = {_z_scores(exact, samples).max():.1f}")
    assert z.max() < 4.5, z.max()
    assert cosine > 0.9 and rel_bias > 0.02  # the quadrature is exact to ~1e-9 (40 vs 80 nodes)


@pytest.mark.parametrize("notation", ["2H-3V", "2H-2H-3V"])
def test_gumbel_rao_has_straight_through_mean_and_less_variance(notation):
    """Same exact samples for both (gumbel-rao's noise starts with the model's uniforms): the paired
    difference has mean zero (E[gumbel-rao | b] = E[st-gumbel | b]); the inference network's gradient
    varies less; and both are biased for the ELBO's gradient."""
    model = _tiny(notation, seed=1).eval()
    L = len(model.codes)
    st, gr = estimators.get("st-gumbel")(model), estimators.get("gumbel-rao")(model)
    g = torch.Generator().manual_seed(14)
    xb = X[None].expand(20, -1)
    draws = {"st": [], "gr": []}
    for _ in range(250):
        noise = gr.noise(20, 1, g)
        for key, est, uni in (("gr", gr, noise), ("st", st, noise[:L])):
            draws[key].append(_flat(_grad(model, est.loss(xb, 1, uni)[0])).neg())
    s, r = torch.stack(draws["st"]), torch.stack(draws["gr"])
    d = r - s
    se_d = d.std(0) / math.sqrt(d.shape[0])
    assert (d.mean(0).abs()[se_d <= 1e-9] < 1e-12).all()  # entries that do not vary: identical
    z_pair = (d.mean(0).abs()[se_d > 1e-9] / se_d[se_d > 1e-9]).max()
    q = torch.cat([torch.ones_like(p).flatten() * n.startswith("q_maps") for n, p in model.named_parameters()]).bool()
    var_st, var_gr = s[:, q].var(0).sum(), r[:, q].var(0).sum()
    _, exact = _exact_lm_and_grad(model, X, 1)
    e = _flat(exact)
    se = r.std(0) / math.sqrt(r.shape[0])
    z_exact = ((r.mean(0) - e).abs()[se > 1e-9] / se[se > 1e-9]).max()
    print(f"gumbel-rao {notation}: paired max z vs st-gumbel = {z_pair:.2f}; inference-network gradient variance "
          f"{var_gr:.4f} vs st-gumbel {var_st:.4f}; max z vs exact ELBO gradient = {z_exact:.1f}")
    assert z_pair < 4.5
    assert var_gr < 0.97 * var_st
    if L == 2:  # (one layer: the bias is measured exactly, by quadrature, in the st-gumbel test)
        assert z_exact > 6.0


# ---------------------------------------------------------------- through the command line
@pytest.mark.parametrize("name", NEW)
def test_trains_through_the_command_line(name, tmp_path):
    res = density.main(["--dataset", "synthetic", "--model", "20H-784V", "--preset", "smoke", "--steps", "20",
                        "--estimator", name, "--run-dir", str(tmp_path / "run"), "--results-dir",
                        str(tmp_path / "res"), "--no-progress"])
    assert res["config"]["estimator"] == name and math.isfinite(res["metrics"]["test_nll"])
    if name in ("rebar", "relax"):
        state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["estimator"]
        assert (state["control"]["eta"] != 1.0).all()
        assert float(state["control"]["log_temperature"]) != pytest.approx(math.log(0.5), abs=1e-7)
        if name == "relax":
            assert state["network"]["0.2.weight"].abs().sum() > 0  # the output layer starts at zero


def test_the_add_an_estimator_page_lists_the_package_estimators():
    page = (Path(__file__).resolve().parents[1] / "book" / "add_an_estimator.md").read_text()
    package = "concrete_ref.experiments.estimators"
    ours = [n for n in estimators.names() if estimators.get(n).__module__.startswith(package)]
    assert set(NEW) <= set(ours)
    for name in ours:
        assert f"- `{name}`" in page, name
