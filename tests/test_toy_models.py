"""The one-latent discrete VAE (Eq. 12-13, 20-25): enumeration, ELBO, relaxed objectives and marginals.

Monte Carlo checks use seeded generators and the z-score tolerance Z_TOL = 4.5 (see test_estimators).
"""

import autograd
import numpy as np
import pytest
from scipy.special import expit, logsumexp

from concrete_ref import estimators as E
from concrete_ref import toy_models as T
from concrete_ref.gumbel import sample_gumbel

Z_TOL = 4.5


@pytest.fixture(scope="module")
def model4():
    m = T.random_vae(4, 6, np.random.default_rng(0))
    x = (np.random.default_rng(1).random(6) < 0.5).astype(float)
    return m, x


@pytest.fixture(scope="module")
def model3():
    m = T.random_vae(3, 4, np.random.default_rng(2), weight_scale=1.5)
    x = np.array([1.0, 0.0, 1.0, 1.0])
    return m, x


# ------------------------------------------------------------------------------- discrete model
def test_likelihood_at_vertices_is_the_bernoulli_likelihood(model4):
    m, x = model4
    for k in range(4):
        probs = expit(m.weights[:, k] + m.bias)
        direct = np.sum(np.log(np.where(x == 1, probs, 1 - probs)))
        assert m.log_likelihood(x, np.eye(4)[k]) == pytest.approx(direct, rel=1e-12)


def test_log_marginal_by_brute_force(model4):
    m, x = model4
    prior = np.exp(m.prior_logits) / np.exp(m.prior_logits).sum()
    lik = [np.prod(np.where(x == 1, expit(m.weights[:, k] + m.bias), 1 - expit(m.weights[:, k] + m.bias)))
           for k in range(4)]
    assert m.log_marginal(x) == pytest.approx(np.log(np.dot(prior, lik)), rel=1e-12)


def test_elbo_is_tight_at_the_posterior_and_a_bound_elsewhere(model4):
    m, x = model4
    post = m.posterior_logits(x)
    assert T.discrete_elbo(m, x, post) == pytest.approx(m.log_marginal(x), abs=1e-12)
    assert np.abs(T.discrete_elbo_gradient(m, x, post)).max() < 1e-12
    rng = np.random.default_rng(3)
    for _ in range(20):
        alpha = 2 * rng.standard_normal(4)
        assert T.discrete_elbo(m, x, alpha) < m.log_marginal(x)


def test_elbo_gradient_matches_finite_differences_and_parts_add_up(model4):
    m, x = model4
    alpha, h = np.array([0.3, -0.2, 1.0, 0.0]), 1e-6
    grad = T.discrete_elbo_gradient(m, x, alpha)
    fd = np.array([(T.discrete_elbo(m, x, alpha + h * e) - T.discrete_elbo(m, x, alpha - h * e)) / (2 * h)
                   for e in np.eye(4)])
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    parts = T.discrete_elbo_gradient(m, x, alpha, "reconstruction") + T.discrete_elbo_gradient(m, x, alpha, "kl")
    np.testing.assert_allclose(parts, grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("baseline", [None, "elbo", "loo"])
def test_score_function_elbo_gradient_unbiased(model4, baseline):
    m, x = model4
    alpha = np.array([0.3, -0.2, 1.0, 0.0])
    exact = T.discrete_elbo_gradient(m, x, alpha)
    b = float(T.discrete_elbo(m, x, alpha)) if baseline == "elbo" else baseline
    est = T.elbo_score_function_estimates(m, x, alpha, np.random.default_rng(4), 100_000, 4, b)
    assert E.estimator_summary(est, exact)["z"] < Z_TOL


def test_multi_sample_bound_exact(model4):
    """L_1 is the ELBO, L_m increases with m and stays below log p(x), with equality at the posterior;
    L_2 against a direct double sum."""
    m, x = model4
    alpha = np.array([0.3, -0.2, 1.0, 0.0])
    bounds = [T.multi_sample_bound(m, x, alpha, k) for k in range(1, 6)]
    assert bounds[0] == pytest.approx(T.discrete_elbo(m, x, alpha), abs=1e-12)
    assert all(a < b for a, b in zip(bounds, bounds[1:])) and bounds[-1] < m.log_marginal(x)
    q = np.exp(alpha - logsumexp(alpha))
    log_w = m.log_joint_states(x) - np.log(q)
    direct = sum(q[i] * q[j] * np.logaddexp(log_w[i], log_w[j]) for i in range(4) for j in range(4)) - np.log(2)
    assert bounds[1] == pytest.approx(direct, abs=1e-12)
    assert T.multi_sample_bound(m, x, m.posterior_logits(x), 3) == pytest.approx(m.log_marginal(x), abs=1e-12)


# ------------------------------------------------------------------------------ relaxed model
def test_relaxed_elbo_gradient_unbiased_for_relaxed_objective(model3):
    """Target: central differences of a 4e5-sample average of Eq. 25 with common Gumbels."""
    m, x = model3
    alpha, lam1, lam2, h, n = np.array([0.5, -0.5, 0.2]), 0.8, 0.5, 1e-4, 400_000
    g = sample_gumbel((n, 3), np.random.default_rng(5))
    fd = np.stack([(T.relaxed_elbo_values(m, x, alpha + h * e, lam1, lam2, g)
                    - T.relaxed_elbo_values(m, x, alpha - h * e, lam1, lam2, g)) / (2 * h) for e in np.eye(3)], -1)
    target, target_se = fd.mean(0), fd.std(0) / np.sqrt(n)
    est = T.relaxed_elbo_gradient_estimates(m, x, alpha, lam1, lam2, np.random.default_rng(6), 100_000)
    z = np.abs(est.mean(0) - target) / np.sqrt(est.var(0) / est.shape[0] + target_se**2)
    assert z.max() < Z_TOL
    # parts add up, sample by sample, with shared Gumbels
    gg = g[:500, None, :]
    parts = sum(T.relaxed_elbo_gradient_estimates(m, x, alpha, lam1, lam2, None, 500, 1, part, gumbels=gg)
                for part in ("reconstruction", "kl"))
    full = T.relaxed_elbo_gradient_estimates(m, x, alpha, lam1, lam2, None, 500, 1, gumbels=gg)
    np.testing.assert_allclose(parts, full, rtol=1e-10, atol=1e-12)


def test_relaxed_kl_gradient_depends_on_temperatures_only_through_their_ratio(model3):
    """lambda1 Y = log alpha + G - c for a scalar c, so with r = lambda2 / lambda1
    log rho_{a,lambda2}(Y) - log kappa_{alpha,lambda1}(Y)
        = (K-1) log r + sum_k logsoftmax_k(log a - r (log alpha + G)) - sum_k logsoftmax_k(-G):
    the same function of (alpha, G) at every pair of temperatures with the same ratio r."""
    m, x = model3
    alpha = np.array([0.5, -0.5, 0.2])
    g = sample_gumbel((200, 3), np.random.default_rng(7))
    vals = [T.relaxed_elbo_values(m, x, alpha, lam, 0.75 * lam, g, part="kl") for lam in (0.1, 1.0, 3.0)]
    np.testing.assert_allclose(vals[0], vals[1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(vals[2], vals[1], rtol=1e-9, atol=1e-9)
    lsm = lambda v: v - logsumexp(v, axis=-1, keepdims=True)
    closed = 2 * np.log(0.75) + np.sum(lsm(m.prior_logits - 0.75 * (alpha + g)), -1) \
        - np.sum(lsm(-g), -1)
    np.testing.assert_allclose(vals[1], closed, rtol=1e-9, atol=1e-9)


def test_relaxed_reconstruction_tends_to_discrete_as_temperature_shrinks(model3):
    m, x = model3
    alpha = np.array([0.5, -0.5, 0.2])
    recon_discrete, _ = T.discrete_elbo_parts(m, x, alpha)
    g = sample_gumbel((400_000, 3), np.random.default_rng(8))
    gaps = [abs(np.mean(T.relaxed_elbo_values(m, x, alpha, lam, lam, g, "reconstruction")) - recon_discrete)
            for lam in (1.0, 0.1, 0.01)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.01


def test_relaxed_log_marginal_quadrature_matches_monte_carlo_k2():
    m = T.random_vae(2, 3, np.random.default_rng(9))
    x = np.array([1.0, 0.0, 1.0])
    for lam2 in (0.5, 1.0):
        quad = T.relaxed_log_marginal_quadrature(m, x, lam2)
        mc, se = T.relaxed_log_marginal_mc(m, x, lam2, np.random.default_rng(10), 1_000_000)
        assert abs(quad - mc) < Z_TOL * se


def test_relaxed_log_marginal_quadrature_matches_monte_carlo_k3(model3):
    m, x = model3
    quad = T.relaxed_log_marginal_quadrature(m, x, 2 / 3)
    finer = T.relaxed_log_marginal_quadrature(m, x, 2 / 3, grid_points=1201)
    assert quad == pytest.approx(finer, abs=1e-9)
    mc, se = T.relaxed_log_marginal_mc(m, x, 2 / 3, np.random.default_rng(11), 1_000_000)
    assert abs(quad - mc) < Z_TOL * se


def test_relaxed_log_marginal_tends_to_discrete_log_marginal(model3):
    m, x = model3
    far = T.relaxed_log_marginal_quadrature(m, x, 1.0)
    near = T.relaxed_log_marginal_quadrature(m, x, 0.02, grid_points=1601)
    assert abs(near - m.log_marginal(x)) < 0.1 * abs(far - m.log_marginal(x))


@pytest.mark.parametrize("lam1,lam2", [(2 / 3, 0.5), (1.0, 2 / 3), (0.5, 0.5), (0.3, 1.0)])
def test_relaxed_elbo_is_below_relaxed_log_marginal(model3, lam1, lam2):
    """Eq. 23 for random posteriors: the relaxed ELBO is below the relaxed log marginal (Jensen)."""
    m, x = model3
    marginal = T.relaxed_log_marginal_quadrature(m, x, lam2)
    rng = np.random.default_rng(12)
    for alpha in [np.zeros(3), m.posterior_logits(x), rng.standard_normal(3), 3 * rng.standard_normal(3)]:
        est = T.relaxed_objective_estimates(m, x, alpha, lam1, lam2, rng, 100_000)["eq20"]
        assert est[0] < marginal + Z_TOL * est[1]


def test_relaxed_elbo_maximised_approaches_relaxed_log_marginal_from_below(model3):
    """Maximising Eq. 25 over the posterior logits (common random numbers) stays below Eq. 23's right side."""
    from scipy.optimize import minimize

    m, x = model3
    lam1 = lam2 = 2 / 3
    g = sample_gumbel((20_000, 3), np.random.default_rng(13))
    f = lambda a: -np.mean(T.relaxed_objective_values(m, x, a, lam1, lam2, g)["eq20"])
    res = minimize(f, np.zeros(3), jac=autograd.grad(f), method="L-BFGS-B")
    est = T.relaxed_objective_estimates(m, x, res.x, lam1, lam2, np.random.default_rng(14), 400_000)["eq20"]
    marginal = T.relaxed_log_marginal_quadrature(m, x, lam2)
    assert est[0] < marginal + Z_TOL * est[1]
    assert marginal - est[0] < 0.5  # and the bound is not vacuous


# --------------------------------------------------------------------------- App. C.2 pitfalls
def _symmetric_model():
    """One pixel, x = 1, p(x|z) = sigmoid(2 (z1 - z2)), uniform prior: by the symmetry z1 <-> z2 of the
    relaxed prior and sigmoid(t) + sigmoid(-t) = 1, the relaxed marginal is exactly 1/2 at every lambda2."""
    return T.OneLatentVAE(np.array([[2.0, -2.0]]), np.zeros(1), np.zeros(2)), np.array([1.0])


@pytest.mark.parametrize("lam", [0.5, 1.0])
def test_symmetric_model_relaxed_marginal_is_one_half(lam):
    m, x = _symmetric_model()
    assert T.relaxed_log_marginal_quadrature(m, x, lam) == pytest.approx(np.log(0.5), abs=1e-9)


def test_eq21_and_eq22_exceed_the_relaxed_log_marginal_but_eq20_does_not():
    """App. C.2: Eq. 21 and Eq. 22 are not bounds.  Equal temperatures lambda1 = lambda2 = 1/2, posterior
    logits (2, 0): both exceed log(1/2) by many standard errors; Eq. 20 stays below."""
    m, x = _symmetric_model()
    est = T.relaxed_objective_estimates(m, x, np.array([2.0, 0.0]), 0.5, 0.5, np.random.default_rng(15), 400_000)
    log_half = np.log(0.5)
    assert (est["eq21"][0] - log_half) / est["eq21"][1] > 20
    assert (est["eq22"][0] - log_half) / est["eq22"][1] > 20
    assert est["eq20"][0] < log_half


def test_relaxed_objectives_agree_where_they_must(model3):
    """With posterior = prior logits, the discrete log-ratio vanishes: Eq. 21 = Eq. 22 = E[log p(x|Z)]."""
    m, x = model3
    g = sample_gumbel((1000, 3), np.random.default_rng(16))
    vals = T.relaxed_objective_values(m, x, m.prior_logits, 0.7, 0.4, g)
    recon = T.relaxed_elbo_values(m, x, m.prior_logits, 0.7, 0.4, g, "reconstruction")
    np.testing.assert_allclose(vals["eq21"], recon, atol=1e-12)
    np.testing.assert_allclose(vals["eq22"], recon, atol=1e-12)


def test_model_validation():
    with pytest.raises(ValueError, match="weights"):
        T.OneLatentVAE(np.zeros((3, 2)), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="K = 4"):
        T.relaxed_log_marginal_quadrature(T.random_vae(4, 2, 0), np.ones(2), 0.5)
    assert logsumexp(T.random_vae(3, 2, 0).posterior_logits(np.ones(2))) == pytest.approx(0.0, abs=1e-12)
