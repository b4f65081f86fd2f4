"""Binary Concrete (App. B) and its logit-space node (App. C.3.2): densities, Prop. 2, stability, gradients."""

import autograd
import numpy as np
import pytest
from scipy import integrate

import concrete_ref as cr
from tests import high_precision as hp


@pytest.mark.parametrize("temperature", [0.3, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("logit", [-1.5, 0.0, 2.0])
def test_binary_concrete_integrates_to_one(logit, temperature):
    """Eq. 17 integrated over (0, 1), in the logit u of x where the integrand is smooth.

    Near x = 1 float64 cannot resolve 1 - x, so the upper half is integrated through the symmetry
    p_{alpha,lambda}(x) = p_{1/alpha,lambda}(1 - x): both halves are integrals over (0, 1/2].
    """
    def half(a):
        def integrand(u):  # x = sigmoid(u) <= 1/2 for u <= 0, dx = x (1 - x) du
            x, one_minus_x = 1 / (1 + np.exp(-u)), 1 / (1 + np.exp(u))
            return np.exp(cr.binary_concrete_log_density(x, a, temperature)) * x * one_minus_x
        b = min((40.0 + abs(a)) / temperature, 700.0)
        return integrate.quad(integrand, -b, 0.0, limit=400, epsabs=1e-11)[0]

    assert half(logit) + half(-logit) == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("temperature", [0.01, 0.5, 3.0])
def test_logistic_density_integrates_to_one(temperature):
    logit = 1.3
    f = lambda y: np.exp(cr.logistic_log_density(y, logit, temperature))
    centre = logit / temperature
    total, _ = integrate.quad(f, -np.inf, np.inf, points=None) if temperature > 0.1 else integrate.quad(
        f, centre - 60 / temperature, centre + 60 / temperature, points=[centre], limit=400)
    assert total == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("temperature", [0.1, 1.0, 4.0])
def test_probability_above_one_half(temperature):
    """Prop. 2(b): P(X > 1/2) = alpha / (1 + alpha) at any temperature (5 sigmas, 200k draws)."""
    logit, n = 0.7, 200_000
    x = cr.logistic_sample(logit, temperature, np.random.default_rng(0), size=n)
    p = 1 / (1 + np.exp(-logit))
    assert abs(np.mean(x > 0) - p) < 5 * np.sqrt(p * (1 - p) / n)


def test_samples_follow_the_density():
    """Prop. 2(a): the empirical CDF of sigmoid((logit + L)/lambda) against the integral of Eq. 17."""
    logit, lam, n = -0.4, 0.6, 40_000
    with np.errstate(all="ignore"):
        x = cr.binary_concrete_sample(logit, lam, np.random.default_rng(1), size=n)
    dens = lambda t: np.exp(cr.binary_concrete_log_density(t, logit, lam))
    for q in np.linspace(0.05, 0.95, 10):
        t = float(np.quantile(x, q))
        exact = integrate.quad(dens, 0, t, limit=200)[0]
        assert abs(np.mean(x <= t) - exact) < 5 * np.sqrt(exact * (1 - exact) / n)


def test_zero_temperature_limit():
    """Prop. 2(c): as lambda -> 0, X -> {0, 1} with P(X = 1) = alpha / (1 + alpha)."""
    logit = 0.7
    rng = np.random.default_rng(2)
    fractions = []
    for lam in [1.0, 0.1, 0.001]:
        y = cr.logistic_sample(logit, lam, rng, size=50_000)
        fractions.append(np.mean(np.abs(y) > np.log(1e3)))  # X within 1e-3 of 0 or 1
    assert np.all(np.diff(fractions) > 0) and fractions[-1] > 0.99


def test_log_convex_iff_temperature_at_most_one():
    """Prop. 2(d): d^2/dx^2 log p >= 0 on (0, 1) for lambda <= 1; fails somewhere for lambda = 2."""
    d2 = autograd.elementwise_grad(autograd.elementwise_grad(cr.binary_concrete_log_density))
    x = np.linspace(0.001, 0.999, 999)
    for logit in [-2.0, 0.0, 1.0]:
        for lam in [0.5, 1.0]:
            assert np.all(d2(x, logit, lam) >= -1e-9)
        assert np.any(d2(x, logit, 2.0) < 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logistic_density_stable_and_accurate_on_the_issue_grid(dtype):
    """|y| <= 100, |logit| <= 50, lambda in {0.01, 0.1, 1}: finite, and within 1e-6 (float32) / 1e-12
    (float64) relative of a 60-digit evaluation of the paper's formula."""
    tol = {np.float32: 1e-6, np.float64: 1e-12}[dtype]
    ys = np.array([-100, -37.5, -1, 0, 0.3, 12, 100], dtype)
    for logit in np.array([-50, -3, 0, 2.5, 50], dtype):
        for lam in np.array([0.01, 0.1, 1.0], dtype):
            ours = cr.logistic_log_density(ys, logit, lam)
            assert ours.dtype == dtype and np.all(np.isfinite(ours))
            for y, o in zip(ys, ours):
                assert hp.relative_error(o, hp.logistic_log_density(y, logit, lam)) < tol


def test_binary_concrete_density_agrees_with_mpmath():
    rng = np.random.default_rng(3)
    worst = 0.0
    for lam in [0.05, 0.5, 1.0, 3.0]:
        for logit in [-5.0, 0.0, 2.0]:
            for x in rng.uniform(1e-6, 1 - 1e-6, size=10):
                worst = max(worst, hp.relative_error(
                    cr.binary_concrete_log_density(x, logit, lam), hp.binary_concrete_log_density(x, logit, lam)))
    assert worst < 1e-8, worst


def test_unit_interval_density_is_logit_density_times_jacobian():
    x = np.array([1e-8, 0.2, 0.5, 0.9, 1 - 1e-8])
    lhs = cr.binary_concrete_log_density(x, 0.3, 0.7)
    rhs = cr.logistic_log_density(np.log(x) - np.log1p(-x), 0.3, 0.7) - np.log(x) - np.log1p(-x)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


def test_rounded_samples_are_reported():
    with pytest.warns(cr.ConcreteUnderflowWarning, match="exactly 0 or 1"):
        x = cr.binary_concrete_sample(np.float32(0.0), np.float32(0.01), np.random.default_rng(4), 1000)
    assert np.any((x == 0) | (x == 1))


def test_gradients_match_finite_differences():
    y, logit, lam, h = 1.7, -0.3, 0.8, 1e-6
    f = cr.logistic_log_density
    assert autograd.grad(f, 1)(y, logit, lam) == pytest.approx((f(y, logit + h, lam) - f(y, logit - h, lam)) / (2 * h), rel=1e-6)
    assert autograd.grad(f, 2)(y, logit, lam) == pytest.approx((f(y, logit, lam + h) - f(y, logit, lam - h)) / (2 * h), rel=1e-6)
    g = lambda a, t: cr.sigmoid(cr.logistic_transform(a, t, 0.37))  # reparameterized sample, fixed noise
    assert autograd.grad(g, 0)(logit, lam) == pytest.approx((g(logit + h, lam) - g(logit - h, lam)) / (2 * h), rel=1e-6)
    assert autograd.grad(g, 1)(logit, lam) == pytest.approx((g(logit, lam + h) - g(logit, lam - h)) / (2 * h), rel=1e-6)


def test_broadcasting_and_dtype():
    logit = np.zeros((3, 1), np.float32)
    lam = np.array([0.5, 1.0], np.float32)
    y = cr.logistic_sample(logit, lam, np.random.default_rng(5), size=4)
    assert y.shape == (4, 3, 2) and y.dtype == np.float32
    assert cr.logistic_log_density(y, logit, lam).shape == (4, 3, 2)
