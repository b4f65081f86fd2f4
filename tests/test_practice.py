"""concrete_ref.experiments.practice (Chapter 9): densities against the NumPy core, straight-through, schedules.

Parity tolerances: float64 agrees with the core to 1e-12 (relative), float32 to 1e-5 relative (the
core evaluated in float32 on the same float32 points); the straight-through identity holds to 1e-12 in
float64.  Each test also pins a failure of PyTorch's own classes that the module avoids, so a change
on either side shows up here.
"""

import importlib
import inspect
import math

import numpy as np
import pytest

import concrete_ref as cr
from concrete_ref import estimators as est
from concrete_ref import toy_models as toy

torch = pytest.importorskip("torch")
pr = pytest.importorskip("concrete_ref.experiments.practice")
F = torch.nn.functional


def _rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------- categorical node
@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_exp_concrete_sample_and_density_match_the_core(dtype, rtol):
    rng = _rng(1)
    logits = rng.standard_normal((6, 5)) * 3
    lam = np.array([0.05, 0.1, 0.5, 1.0, 2.0, 2 / 3])
    gumbels = cr.sample_gumbel((6, 5), rng)
    d = pr.ExpConcrete(torch.tensor(logits, dtype=dtype), torch.tensor(lam, dtype=dtype))
    y = d.rsample_from_gumbels(torch.tensor(gumbels, dtype=dtype))
    y_core = cr.exp_concrete_transform(logits, lam, gumbels)
    np.testing.assert_allclose(y.double().numpy(), y_core, rtol=rtol, atol=rtol * 10)
    ours = d.log_prob(y).double().numpy()
    npdt = y.numpy().dtype  # the core in the same dtype, on the same points
    core = cr.exp_concrete_log_density(y.numpy(), logits.astype(npdt), lam.astype(npdt))
    assert ours.shape == (6,)
    np.testing.assert_allclose(ours, core, rtol=rtol, atol=rtol)


def test_exp_concrete_matches_torch_where_torch_is_right():
    from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

    logits = torch.tensor(_rng(2).standard_normal((4, 7)))
    ours = pr.ExpConcrete(logits, 0.3)
    y = ours.rsample((50,), generator=torch.Generator().manual_seed(0))
    theirs = ExpRelaxedCategorical(torch.tensor(0.3, dtype=torch.float64), logits=logits).log_prob(y)
    np.testing.assert_allclose(ours.log_prob(y).numpy(), theirs.numpy(), rtol=1e-12)


def test_per_example_temperature_gives_one_density_per_example():
    """pytorch/pytorch#37162: torch needs (B, 1) to sample and returns (B, B); ours takes (B,) and returns (B,)."""
    from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

    logits = torch.tensor(_rng(3).standard_normal((3, 4)))
    lam = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    ours = pr.ExpConcrete(logits, lam)
    y = ours.rsample(generator=torch.Generator().manual_seed(1))
    assert y.shape == (3, 4) and ours.log_prob(y).shape == (3,)
    rowwise = torch.stack([pr.ExpConcrete(logits[i], float(lam[i])).log_prob(y[i]) for i in range(3)])
    np.testing.assert_allclose(ours.log_prob(y).numpy(), rowwise.numpy(), rtol=1e-14)
    table = ExpRelaxedCategorical(lam[:, None], logits=logits).log_prob(y)
    assert table.shape == (3, 3)  # the bug, still there: if this fails, torch fixed it and the chapter must say so
    np.testing.assert_allclose(table.diagonal().numpy(), ours.log_prob(y).numpy(), rtol=1e-12)
    # a sample shape in front broadcasts too
    ys = ours.rsample((5,), generator=torch.Generator().manual_seed(2))
    assert ys.shape == (5, 3, 4) and ours.log_prob(ys).shape == (5, 3)


def test_exp_concrete_integrates_to_one_for_n_2():
    """kappa is a density in the relative coordinate u = y_1 - y_2 (App. C.3.1; book/notation.md): it integrates
    to 1 in u, for any location and temperature, and in u it is the Logistic density of Eq. (26)."""
    from scipy import integrate

    logits = torch.tensor([0.7, -0.4], dtype=torch.float64)
    for lam in (0.3, 1.0, 2.0):
        d = pr.ExpConcrete(logits, lam)

        def log_density(u):
            return float(d.log_prob(torch.log_softmax(torch.tensor([u, 0.0], dtype=torch.float64), -1)))

        val, _ = integrate.quad(lambda u: math.exp(log_density(u)), -80 / lam, 80 / lam, limit=400)
        assert val == pytest.approx(1.0, abs=1e-8)
        u = torch.linspace(-10, 10, 21, dtype=torch.float64)
        logistic = pr.LogitBinaryConcrete(logits[0] - logits[1], lam).log_prob(u)
        np.testing.assert_allclose([log_density(float(v)) for v in u], logistic.numpy(), rtol=1e-12)


def test_exp_concrete_is_finite_on_its_own_samples_at_low_temperature():
    logits = torch.zeros(1000, dtype=torch.float32)
    d = pr.ExpConcrete(logits, 0.01)
    y = d.rsample((200,), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(d.log_prob(y)).all()


# ------------------------------------------------------------------------------------ binary node
@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_logit_binary_concrete_matches_the_core(dtype, rtol):
    rng = _rng(4)
    logits = rng.standard_normal(50) * 5
    lam = rng.uniform(0.05, 2, 50)
    noise = cr.sample_logistic(50, rng)
    d = pr.LogitBinaryConcrete(torch.tensor(logits, dtype=dtype), torch.tensor(lam, dtype=dtype))
    y = d.rsample_from_noise(torch.tensor(noise, dtype=dtype))
    np.testing.assert_allclose(y.double().numpy(), cr.logistic_transform(logits, lam, noise), rtol=rtol, atol=rtol)
    npdt = y.numpy().dtype
    np.testing.assert_allclose(d.log_prob(y).double().numpy(),
                               cr.logistic_log_density(y.numpy(), logits.astype(npdt), lam.astype(npdt)), rtol=rtol)


def test_logit_binary_concrete_does_not_overflow_where_torch_does():
    from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli

    y = torch.tensor([-100.0, -50.0, 0.0, 50.0, 100.0])
    torch_lp = LogitRelaxedBernoulli(torch.tensor(1.0), logits=torch.tensor(0.0)).log_prob(y)
    assert torch.isneginf(torch_lp[0])  # the overflow, still there
    ours = pr.LogitBinaryConcrete(torch.tensor(0.0), 1.0).log_prob(y)
    assert torch.isfinite(ours).all()
    np.testing.assert_allclose(ours.numpy(), cr.logistic_log_density(y.double().numpy(), 0.0, 1.0), rtol=1e-6)
    np.testing.assert_allclose(ours[1:].numpy(), torch_lp[1:].numpy(), rtol=1e-6)
    # the Eq. (27) case: a confident prior scoring a far posterior sample; the gradient stays finite
    post = torch.tensor([-50.0], requires_grad=True)
    y_post = (post + 0.0) / (2 / 3)
    lp = pr.LogitBinaryConcrete(torch.tensor([60.0]), 0.5).log_prob(y_post).sum()
    lp.backward()
    assert torch.isfinite(lp) and torch.isfinite(post.grad).all()


def test_relaxed_kl_by_quadrature_is_at_least_the_discrete_kl():
    for post, lam1, prior, lam2 in [(2.0, 2 / 3, 0.0, 0.5), (-1.0, 1.0, 1.5, 1.0), (0.3, 0.2, -0.3, 0.5)]:
        relaxed = pr.binary_relaxed_kl_quadrature(post, lam1, prior, lam2)
        discrete = float(pr.bernoulli_kl(torch.tensor(post), torch.tensor(prior)))
        assert relaxed >= discrete - 1e-7
    assert pr.binary_relaxed_kl_quadrature(0.4, 0.7, 0.4, 0.7) == pytest.approx(0.0, abs=1e-9)


def test_one_pixel_objectives_which_density_goes_where():
    res = pr.one_pixel_binary_objectives(2.0, 2 / 3, 0.5, num_samples=200_000,
                                         generator=torch.Generator().manual_seed(0))
    half = math.log(0.5)
    assert pr.binary_relaxed_log_marginal_quadrature(lambda z: -np.log1p(np.exp(-2 * (2 * z - 1))), 0.0, 0.5) \
        == pytest.approx(half, abs=1e-9)
    m, s = res["eq27"]
    assert m + 5 * s < half  # a bound
    for key in ("discrete_kl", "prior_at_own_sample", "mass_at_relaxed"):
        m, s = res[key]
        assert m - 5 * s > half, key  # not bounds
    m, s = res["relaxed_kl"]
    assert abs(m - pr.binary_relaxed_kl_quadrature(2.0, 2 / 3, 0.0, 0.5)) < 5 * s


# ------------------------------------------------------------------------------- validation, noise
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), torch.tensor([0.5, 0.0])])
def test_bad_temperatures_raise(bad):
    with pytest.raises(ValueError, match="temperature"):
        pr.ExpConcrete(torch.zeros(3), bad)
    with pytest.raises(ValueError, match="temperature"):
        pr.LogitBinaryConcrete(torch.zeros(3), bad)


def test_generator_makes_samples_reproducible_without_the_global_seed():
    d = pr.ExpConcrete(torch.zeros(4), 0.5)
    a = d.rsample((3,), generator=torch.Generator().manual_seed(7))
    torch.rand(10)  # some other use of the global generator in between
    b = d.rsample((3,), generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert "generator" not in inspect.signature(F.gumbel_softmax).parameters  # why the chapter needs this


def test_torch_class_table_is_true():
    import torch.distributions as td

    for path, _space, has_log_prob, exported in pr.TORCH_RELAXED_CLASSES:
        module, name = path.rsplit(".", 1)
        obj = getattr(importlib.import_module(module), name)
        assert hasattr(td, name) == exported, path
        assert (hasattr(obj, "log_prob") and inspect.isclass(obj)) == has_log_prob, path


# ---------------------------------------------------------------------------------- layers, ST
def test_layers_relaxed_in_training_discrete_in_evaluation():
    logits = torch.tensor(_rng(5).standard_normal((8, 4)))
    cat = pr.RelaxedCategoricalLayer()
    y, x = cat(logits, 0.5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(torch.logsumexp(y, -1), torch.zeros(8, dtype=torch.float64), atol=1e-12)
    assert torch.equal(x, torch.exp(y))
    np.testing.assert_allclose(cat.log_prob(y, logits, 0.5).numpy(),
                               cr.exp_concrete_log_density(y.numpy(), logits.numpy(), 0.5), rtol=1e-12)
    cat.eval()
    d, v = cat(logits, 0.5)
    assert torch.equal(d, v) and torch.equal(d.sum(-1), torch.ones(8, dtype=torch.float64))
    np.testing.assert_allclose(cat.log_prob(d, logits).numpy(),
                               (d * torch.log_softmax(logits, -1)).sum(-1).numpy())
    hard = pr.RelaxedCategoricalLayer(hard=True)
    _, xh = hard(logits, 0.5)
    assert set(xh.unique().tolist()) <= {0.0, 1.0}
    binl = pr.RelaxedBinaryLayer()
    yb, xb = binl(logits, 2 / 3)
    assert torch.equal(xb, torch.sigmoid(yb))
    binl.eval()
    db, _ = binl(logits, 2 / 3)
    assert set(db.unique().tolist()) <= {0.0, 1.0}
    np.testing.assert_allclose(binl.log_prob(db, logits).numpy(),
                               torch.distributions.Bernoulli(logits=logits).log_prob(db).numpy(), rtol=1e-12)


def test_discrete_samples_have_the_right_law():
    logits = torch.log(torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64))
    cat = pr.RelaxedCategoricalLayer().eval()
    d, _ = cat(logits.expand(100_000, 3), None, generator=torch.Generator().manual_seed(0))
    freq = d.mean(0).numpy()
    assert np.all(np.abs(freq - [0.6, 0.3, 0.1]) < 5 * np.sqrt([0.24, 0.21, 0.09] / np.array(100_000)))


def test_straight_through_gradient_is_the_relaxed_jacobian_times_the_gradient_at_the_hard_sample():
    model = toy.random_vae(4, 8, _rng(1))
    xobs = (_rng(101).random(8) < 0.5).astype(float)
    t = pr.TorchToyVAE.from_numpy(model, xobs)
    gumbels = torch.tensor(cr.sample_gumbel((200, 4), _rng(6)))
    logits = torch.zeros(200, 4, dtype=torch.float64, requires_grad=True)
    x = torch.exp(pr.ExpConcrete(logits, 0.5).rsample_from_gumbels(gumbels))
    d = pr.straight_through(x)
    assert torch.equal(d.detach(), F.one_hot(x.argmax(-1), 4).double())  # exactly one-hot forward
    (st,) = torch.autograd.grad(t.log_likelihood(d).sum(), logits, retain_graph=True)
    hard = d.detach().requires_grad_(True)
    (grad_at_d,) = torch.autograd.grad(t.log_likelihood(hard).sum(), hard)
    (manual,) = torch.autograd.grad(x, logits, grad_outputs=grad_at_d, retain_graph=True)
    np.testing.assert_allclose(st.numpy(), manual.numpy(), rtol=1e-12, atol=1e-14)
    (relaxed,) = torch.autograd.grad(t.log_likelihood(x).sum(), logits, retain_graph=True)
    assert np.max(np.abs(st.numpy() - relaxed.numpy())) > 1e-2  # not the relaxed gradient for nonlinear f
    # linear f: the same
    c = torch.tensor(_rng(7).standard_normal(4))
    (st_lin,) = torch.autograd.grad((d * c).sum(), logits, retain_graph=True)
    (rel_lin,) = torch.autograd.grad((x * c).sum(), logits)
    np.testing.assert_allclose(st_lin.numpy(), rel_lin.numpy(), rtol=1e-12, atol=1e-14)
    # and the NumPy core's straight-through estimator agrees (plus the exact KL gradient)
    g = gumbels.numpy()[:50, None, :]
    core = est.straight_through_estimates(lambda z: model.log_likelihood(xobs, z), np.zeros(4), 0.5, None, 50, 1,
                                          gumbels=g) + toy.discrete_elbo_gradient(model, xobs, np.zeros(4), "kl")
    ours = pr.gradient_estimates(t, torch.zeros(4), "straight_through", 0.5, 0.5, torch.tensor(g))
    np.testing.assert_allclose(ours.numpy(), core, rtol=1e-10, atol=1e-12)


def test_straight_through_is_biased_and_its_forward_value_unbiased():
    model = toy.random_vae(4, 8, _rng(1))
    xobs = (_rng(101).random(8) < 0.5).astype(float)
    t = pr.TorchToyVAE.from_numpy(model, xobs)
    g = torch.tensor(cr.sample_gumbel((20_000, 4, 4), _rng(8)))
    e = pr.gradient_estimates(t, torch.zeros(4), "straight_through", 0.5, 0.5, g).numpy()
    s = est.estimator_summary(e, toy.discrete_elbo_gradient(model, xobs, np.zeros(4)))
    assert s["z"] > 10
    values = t.surrogate(torch.zeros(g.shape[0] * 4, 4, dtype=torch.float64), g.reshape(-1, 4),
                         "straight_through", 0.5, 0.5)
    elbo = float(toy.discrete_elbo(model, xobs, np.zeros(4)))
    assert abs(float(values.mean()) - elbo) < 4.5 * float(values.std()) / math.sqrt(values.numel())


# -------------------------------------------------------------------------------- toy parity, training
def test_torch_toy_matches_the_numpy_toy():
    model = toy.random_vae(4, 8, _rng(1))
    xobs = (_rng(101).random(8) < 0.5).astype(float)
    t = pr.TorchToyVAE.from_numpy(model, xobs)
    a = _rng(9).standard_normal(4)
    g = cr.sample_gumbel((30, 4), _rng(10))
    assert t.log_marginal() == pytest.approx(model.log_marginal(xobs), rel=1e-14)
    assert float(t.discrete_elbo(torch.tensor(a))) == pytest.approx(float(toy.discrete_elbo(model, xobs, a)), rel=1e-13)
    np.testing.assert_allclose(t.surrogate(torch.tensor(a), torch.tensor(g), "relaxed", 1.0, 2 / 3).numpy(),
                               toy.relaxed_elbo_values(model, xobs, a, 1.0, 2 / 3, g), rtol=1e-12)
    np.testing.assert_allclose(t.surrogate(torch.tensor(a), torch.tensor(g), "discrete_kl", 1.0).numpy(),
                               toy.relaxed_objective_values(model, xobs, a, 1.0, 2 / 3, g)["eq22"], rtol=1e-12)
    gr = pr.gradient_estimates(t, torch.tensor(a), "relaxed", 1.0, 2 / 3, torch.tensor(g[:, None, :]))
    core = toy.relaxed_elbo_gradient_estimates(model, xobs, a, 1.0, 2 / 3, None, 30, 1, gumbels=g[:, None, :])
    np.testing.assert_allclose(gr.numpy(), core, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="kind"):
        t.surrogate(torch.tensor(a), torch.tensor(g), "naive")


def test_train_posterior_improves_the_discrete_elbo_and_is_reproducible():
    model = toy.random_vae(4, 8, _rng(1))
    xobs = (_rng(101).random(8) < 0.5).astype(float)
    t = pr.TorchToyVAE.from_numpy(model, xobs)
    run = lambda: pr.train_posterior(t, lambda s: 1.0, "relaxed", steps=200, seeds=3, prior_ratio=2 / 3)
    a, b = run(), run()
    np.testing.assert_array_equal(a["discrete_elbo"], b["discrete_elbo"])
    assert a["discrete_elbo"].shape == (len(a["steps"]), 3) and a["steps"][-1] == 200
    assert np.all(a["discrete_elbo"][-1] > a["discrete_elbo"][0] + 0.1)
    assert np.all(a["discrete_elbo"] <= model.log_marginal(xobs) + 1e-12)


# ------------------------------------------------------------------------------------- schedules
def test_jang_schedule():
    assert pr.jang_schedule(0, 1e-3) == 1.0
    assert pr.jang_schedule(99, 1e-3, every=100) == 1.0
    assert pr.jang_schedule(100, 1e-3, every=100) == pytest.approx(math.exp(-0.1))
    assert pr.jang_schedule(150, 1e-3, every=100) == pytest.approx(math.exp(-0.1))
    assert pr.jang_schedule(10**6, 1e-3) == 0.5
    assert pr.jang_schedule(10**6, 1e-3, floor=0.1) == 0.1
    values = [pr.jang_schedule(t, 1e-4, every=500) for t in range(0, 20_000, 250)]
    assert all(a >= b for a, b in zip(values, values[1:])) and min(values) >= 0.5
    # the step where it reaches its floor: exp(-r t) = 1/2 at t = log 2 / r
    assert pr.jang_schedule(int(math.log(2) / 1e-3) + 1, 1e-3) == 0.5
    assert pr.jang_schedule(int(math.log(2) / 1e-3) - 1, 1e-3) > 0.5
    for bad in [dict(step=-1, rate=1e-3), dict(step=0, rate=-1.0), dict(step=0, rate=1e-3, every=0),
                dict(step=0, rate=1e-3, floor=0.0)]:
        with pytest.raises(ValueError):
            pr.jang_schedule(**bad)


def test_fixed_schedule_and_paper_temperatures():
    assert pr.fixed_schedule(12345, 2 / 3) == 2 / 3
    with pytest.raises(ValueError):
        pr.fixed_schedule(0, 0.0)
    assert pr.paper_temperatures(2) == (2 / 3, 1 / 2)
    assert pr.paper_temperatures(4) == (1.0, 2 / 3)
    assert pr.paper_temperatures(8) == (2 / 3, 2 / 5)
    with pytest.raises(ValueError):
        pr.paper_temperatures(3)


def test_analytic_kls():
    q, p = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([0.0, 0.5, -0.2])
    expected = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=q),
                                                 torch.distributions.Categorical(logits=p))
    assert float(pr.categorical_kl(q, p)) == pytest.approx(float(expected), rel=1e-6)
    eb = torch.distributions.kl_divergence(torch.distributions.Bernoulli(logits=q),
                                           torch.distributions.Bernoulli(logits=p))
    np.testing.assert_allclose(pr.bernoulli_kl(q, p).numpy(), eb.numpy(), rtol=1e-5)
