"""Gradient estimators (Eq. 1-7, 10): exact enumeration, score function, leave-one-out, Concrete, Gaussian.

Monte Carlo checks use seeded generators and a z-score tolerance of Z_TOL = 4.5 (the largest
componentwise |mean - target| / standard error): with a handful of components per test, a correct
estimator fails with probability below about 1e-4, and since the seeds are fixed the outcome is
deterministic.  A biased estimator with the sample sizes used here gives z-scores in the tens.
"""

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from scipy import integrate
from scipy.special import expit

from concrete_ref import estimators as E
from concrete_ref.gumbel import logistic_noise_log_density, sample_gumbel

Z_TOL = 4.5
W3 = np.array([1.0, -2.0, 3.0])
LOGITS3 = np.log([0.5, 0.3, 0.2])


def f_quadratic(d):
    """A smooth function of a point of the simplex (one-hot or relaxed): (w . d)^2."""
    return anp.sum(d * W3, axis=-1) ** 2


# ------------------------------------------------------------------------------------ exact
def test_exact_gradient_matches_finite_differences_and_autograd():
    logits = np.array([[0.3, -1.0, 0.5], [2.0, 0.0, -0.5]])
    exact = E.exact_gradient(f_quadratic, logits)
    h = 1e-6
    fd = np.zeros_like(logits)
    for j in range(3):
        step = np.zeros(3)
        step[j] = h
        fd[:, j] = (E.exact_objective(f_quadratic, logits + step)
                    - E.exact_objective(f_quadratic, logits - step)) / (2 * h)
    np.testing.assert_allclose(exact, fd, rtol=1e-7, atol=1e-8)
    # the same objective written with autograd: sum_k softmax_k f(e_k)
    values = (W3) ** 2
    auto = autograd.grad(lambda l: anp.sum(E.categorical_probs(l) * values))(logits[0])
    np.testing.assert_allclose(exact[0], auto, rtol=1e-12)
    assert abs(exact.sum(axis=-1)).max() < 1e-12  # softmax is shift invariant


def test_sample_categorical_frequencies():
    p = E.categorical_probs(LOGITS3)
    d = E.sample_categorical(LOGITS3, np.random.default_rng(0), 200_000)
    freq = d.mean(axis=0)
    se = np.sqrt(p * (1 - p) / d.shape[0])
    assert np.all(np.abs(freq - p) / se < Z_TOL)
    assert np.all(d.sum(-1) == 1)


# ---------------------------------------------------------------------------- score function
@pytest.mark.parametrize("baseline", [None, 5.0])
def test_score_function_unbiased_against_enumeration(baseline):
    logits = np.array([LOGITS3, [1.0, 0.0, -1.0]])  # a batch of two nodes
    exact = E.exact_gradient(f_quadratic, logits)
    est = E.score_function_estimates(f_quadratic, logits, np.random.default_rng(1), 200_000,
                                     baseline=baseline)
    assert est.shape == (200_000, 2, 3)
    assert E.estimator_summary(est, exact)["z"] < Z_TOL


def test_leave_one_out_unbiased_and_lower_variance():
    """An objective with a large constant offset: without a baseline the score-function variance scales
    with the offset squared; the leave-one-out baseline removes the offset exactly."""
    f = lambda d: 20.0 + f_quadratic(d)
    exact = E.exact_gradient(f, LOGITS3)
    rng = np.random.default_rng(2)
    plain = E.estimator_summary(E.score_function_estimates(f, LOGITS3, rng, 100_000, 4), exact)
    loo = E.estimator_summary(E.score_function_estimates(f, LOGITS3, rng, 100_000, 4, "loo"), exact)
    assert plain["z"] < Z_TOL and loo["z"] < Z_TOL
    assert loo["variance"] < 0.1 * plain["variance"]


def test_leave_one_out_is_vimco_signal_for_the_sample_average():
    """(f_s - mean of others)/S equals L_hat - L_hat_{-s} for L_hat = (1/S) sum f, as VIMCO defines it."""
    logits, s = LOGITS3, 5
    est = E.score_function_estimates(f_quadratic, logits, np.random.default_rng(3), 1, s, "loo")[0]
    d = E.sample_categorical(logits, np.random.default_rng(3), (1, s))[0]
    f = f_quadratic(d)
    l_hat = f.mean()
    vimco = 0.0
    for i in range(s):
        f_minus = f.copy()
        f_minus[i] = np.delete(f, i).mean()
        vimco = vimco + (l_hat - f_minus.mean()) * (d[i] - E.categorical_probs(logits))
    np.testing.assert_allclose(est, vimco, rtol=1e-12, atol=1e-14)


def test_loo_needs_two_samples():
    with pytest.raises(ValueError, match="num_samples >= 2"):
        E.score_function_estimates(f_quadratic, LOGITS3, 0, 10, 1, "loo")


# ------------------------------------------------------------------------------ Concrete, K = 2
def _relaxed_objective_k2(f, delta, lam):
    """L_lambda for K = 2 by quadrature: X_1 = sigmoid((delta + L)/lambda), L standard Logistic."""
    def integrand(l):
        x1 = expit((delta + l) / lam)
        return f(np.array([x1, 1.0 - x1])) * np.exp(logistic_noise_log_density(l))
    return integrate.quad(integrand, -50, 50, points=[-delta], limit=400, epsabs=1e-13, epsrel=1e-13)[0]


def _relaxed_gradient_k2(f, logits, lam, h=1e-4):
    delta = logits[0] - logits[1]
    d = (_relaxed_objective_k2(f, delta + h, lam) - _relaxed_objective_k2(f, delta - h, lam)) / (2 * h)
    return np.array([d, -d])


F2 = lambda d: anp.sum(d * np.array([2.0, -1.0]), axis=-1) ** 2 + anp.sin(3.0 * d[..., 0])
LOGITS2 = np.array([0.4, -0.3])


@pytest.mark.parametrize("temperature", [0.3, 1.0])
def test_concrete_estimator_unbiased_for_relaxed_objective_k2_quadrature(temperature):
    target = _relaxed_gradient_k2(F2, LOGITS2, temperature)
    est = E.concrete_estimates(F2, LOGITS2, temperature, np.random.default_rng(4), 200_000)
    summary = E.estimator_summary(est, target)
    assert summary["z"] < Z_TOL
    # ... and measurably biased for the discrete gradient at these temperatures
    assert E.estimator_summary(est, E.exact_gradient(F2, LOGITS2))["z"] > 10


def test_concrete_bias_shrinks_as_temperature_goes_to_zero_k2():
    """The relaxed gradient (quadrature) tends to the discrete one; here the bias is O(lambda): each
    halving of lambda below 0.1 halves it (ratio within [0.45, 0.55]).  Above lambda ~ 0.5 the bias need
    not be monotone (for this f it is not)."""
    exact = E.exact_gradient(F2, LOGITS2)
    temps = [0.1, 0.05, 0.025, 0.0125]
    bias = np.array([np.abs(_relaxed_gradient_k2(F2, LOGITS2, t) - exact).max() for t in temps])
    ratios = bias[1:] / bias[:-1]
    assert np.all((ratios > 0.45) & (ratios < 0.55)), bias
    assert bias[-1] < 0.005 * np.abs(exact).max() + 0.005
    assert abs(_relaxed_gradient_k2(F2, LOGITS2, 1.0)[0] - exact[0]) > 10 * bias[-1]


def test_concrete_estimator_unbiased_for_relaxed_objective_k3_common_random_numbers():
    """K = 3: the target is the central difference of a 2e6-sample average with common Gumbels (its own
    Monte Carlo error is accounted for in the z-score); the estimator uses independent samples."""
    lam, h, n = 0.5, 1e-4, 2_000_000
    g = sample_gumbel((n, 3), np.random.default_rng(5))
    fd_samples = np.zeros((n, 3))
    for j in range(3):
        step = np.zeros(3)
        step[j] = h
        fd_samples[:, j] = (E.relaxed_values(f_quadratic, LOGITS3 + step, lam, g)
                            - E.relaxed_values(f_quadratic, LOGITS3 - step, lam, g)) / (2 * h)
    target, target_se = fd_samples.mean(0), fd_samples.std(0) / np.sqrt(n)
    est = E.concrete_estimates(f_quadratic, LOGITS3, lam, np.random.default_rng(6), 200_000)
    z = np.abs(est.mean(0) - target) / np.sqrt(est.var(0) / est.shape[0] + target_se**2)
    assert z.max() < Z_TOL
    # with the Gumbels shared, the pathwise gradients equal the finite differences sample by sample
    shared = E.concrete_estimates(f_quadratic, LOGITS3, lam, None, 1000, 1, gumbels=g[:1000, None, :])
    np.testing.assert_allclose(shared, fd_samples[:1000], rtol=1e-5, atol=1e-6)


def test_concrete_variance_grows_as_temperature_shrinks():
    variances = [E.estimator_summary(E.concrete_estimates(f_quadratic, LOGITS3, t, np.random.default_rng(7),
                                                          50_000), 0.0)["variance"]
                 for t in [1.0, 0.3, 0.1]]
    assert variances[0] < variances[1] < variances[2]


def test_straight_through_is_softmax_jacobian_times_gradient_at_the_hard_sample():
    lam, w = 0.5, np.array([1.0, -2.0, 0.5])
    g = sample_gumbel((50, 1, 3), np.random.default_rng(8))
    st = E.straight_through_estimates(lambda d: anp.sum(d * w, -1), LOGITS3, lam, None, 50, 1, gumbels=g)
    x = np.exp(LOGITS3 / lam + g[:, 0] / lam)
    x /= x.sum(-1, keepdims=True)
    jac_t_w = (x * w - x * (x @ w)[:, None]) / lam  # (diag(x) - x x^T) w / lambda
    np.testing.assert_allclose(st, jac_t_w, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------- Gaussian node
def test_gaussian_estimators_match_analytic_gradient():
    """E[sin X] = sin(mu) exp(-sigma^2/2): d/dmu = cos(mu) e^{-s^2/2}, d/dsigma = -sigma sin(mu) e^{-s^2/2}."""
    mu, sigma = 0.7, 1.3
    exact = np.exp(-sigma**2 / 2) * np.array([np.cos(mu), -sigma * np.sin(mu)])
    rep = E.gaussian_reparam_estimates(anp.sin, mu, sigma, np.random.default_rng(9), 200_000)
    sf = E.gaussian_score_estimates(np.sin, mu, sigma, np.random.default_rng(10), 200_000)
    assert E.estimator_summary(rep, exact)["z"] < Z_TOL
    assert E.estimator_summary(sf, exact)["z"] < Z_TOL


@pytest.mark.parametrize("mu,sigma", [(0.5, 1.0), (2.0, 0.5)])
def test_gaussian_quadratic_variances_match_closed_forms(mu, sigma):
    """f(x) = x^2, d/dmu component: reparameterization 4 sigma^2; score function
    mu^4/sigma^2 + 14 mu^2 + 15 sigma^2; with baseline b = mu^2 + sigma^2: 8 mu^2 + 10 sigma^2."""
    n = 400_000
    rep = E.gaussian_reparam_estimates(lambda x: x**2, mu, sigma, np.random.default_rng(11), n)[:, 0]
    sf = E.gaussian_score_estimates(lambda x: x**2, mu, sigma, np.random.default_rng(12), n)[:, 0]
    sfb = E.gaussian_score_estimates(lambda x: x**2, mu, sigma, np.random.default_rng(13), n,
                                     baseline=mu**2 + sigma**2)[:, 0]
    assert rep.var() == pytest.approx(4 * sigma**2, rel=0.02)
    assert sf.var() == pytest.approx(mu**4 / sigma**2 + 14 * mu**2 + 15 * sigma**2, rel=0.05)
    assert sfb.var() == pytest.approx(8 * mu**2 + 10 * sigma**2, rel=0.05)
    for est in (rep, sf, sfb):
        assert abs(est.mean() - 2 * mu) / (est.std() / np.sqrt(n)) < Z_TOL


# ---------------------------------------------------------------------------------- summaries
def test_estimator_summary_bias_correction():
    """Draws N(target + b, I): the corrected bias^2 is about |b|^2 and the variance about dim."""
    rng = np.random.default_rng(14)
    target, b = np.zeros(4), np.array([0.05, 0.0, -0.05, 0.02])
    est = target + b + rng.standard_normal((100_000, 4))
    s = E.estimator_summary(est, target)
    assert s["variance"] == pytest.approx(4.0, rel=0.02)
    assert abs(s["bias2"] - np.sum(b**2)) < 3 * s["bias2_se"]
    assert s["mse"] == pytest.approx(s["bias2"] + s["variance"])
    unbiased = E.estimator_summary(target + rng.standard_normal((100_000, 4)), target)
    assert abs(unbiased["bias2"]) < 3 * unbiased["bias2_se"]
