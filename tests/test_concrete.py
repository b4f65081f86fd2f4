"""Concrete and ExpConcrete: normalisation, Monte Carlo, Proposition 1 (a)-(d), stability, gradients."""

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from scipy import integrate, stats

import concrete_ref as cr
from tests import high_precision as hp

ALPHA3 = np.log([2.0, 0.5, 1.0])  # the paper's Figure 2 location


# ---------------------------------------------------------------- normalisation by quadrature
@pytest.mark.parametrize("temperature", [0.3, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("logits", [np.log([2.0, 0.5]), np.log([1.0, 1.0])])
def test_concrete_k2_integrates_to_one(logits, temperature):
    """Integrated in the logit u of x1 = sigmoid(u) (dx1 = x1 (1 - x1) du), where the integrand is smooth;
    in x1 itself the density has integrable singularities x^(lambda - 1) at both ends."""
    def integrand(u):
        x = np.array([1.0 / (1.0 + np.exp(-u)), 1.0 / (1.0 + np.exp(u))])
        return np.exp(cr.concrete_log_density(x, logits, temperature)) * x[0] * x[1]

    b = min(40.0 / temperature, 700.0)  # the logit has logistic tails exp(-lambda |u|)
    total, _ = integrate.quad(integrand, -b, b, limit=400, epsabs=1e-10)
    assert total == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_concrete_k3_integrates_to_one_on_simplex(temperature):
    """dblquad over (x1, x2) on the triangle, the paper's alpha = (2, 0.5, 1).

    Lower temperatures put integrable singularities on the edges that make dblquad slow in these
    coordinates; they are covered in relative coordinates by the ExpConcrete test below, which is the
    same integral after the change of variables x = softmax(u).
    """
    def dens(x2, x1):
        x3 = 1.0 - x1 - x2
        if x3 <= 0 or x1 <= 0 or x2 <= 0:
            return 0.0
        return np.exp(cr.concrete_log_density(np.array([x1, x2, x3]), ALPHA3, temperature))

    total, _ = integrate.dblquad(dens, 0, 1, 0, lambda x1: 1 - x1, epsabs=1e-6, epsrel=1e-6)
    assert total == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0, 2.0])
def test_exp_concrete_k3_integrates_to_one_in_relative_coordinates(temperature):
    """kappa is a density in u_k = y_k - y_3; map u to the log-simplex by subtracting the LSE."""
    def dens(u2, u1):
        u = np.array([u1, u2, 0.0])
        y = u - np.logaddexp.reduce(u)
        return np.exp(cr.exp_concrete_log_density(y, ALPHA3, temperature))

    b = 40.0 / temperature
    total, _ = integrate.dblquad(dens, -b, b, -b, b, epsabs=1e-7, epsrel=1e-7)
    assert total == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------- Monte Carlo against the density
def test_box_probability_matches_density_k3():
    """P(X1 < 0.4, X2 < 0.4) from 200k samples vs the integrated density (5 binomial sigmas)."""
    lam, n = 0.7, 200_000
    x = cr.concrete_sample(ALPHA3, lam, np.random.default_rng(1), size=n)
    p_mc = np.mean((x[:, 0] < 0.4) & (x[:, 1] < 0.4))

    def dens(x2, x1):
        x3 = 1 - x1 - x2
        return np.exp(cr.concrete_log_density(np.array([x1, x2, x3]), ALPHA3, lam)) if x3 > 0 else 0.0

    p_exact, _ = integrate.dblquad(dens, 0, 0.4, 0, 0.4, epsabs=1e-6)
    assert abs(p_mc - p_exact) < 5 * np.sqrt(p_exact * (1 - p_exact) / n)


@pytest.mark.parametrize("temperature", [0.2, 1.0, 3.0])
def test_k2_samples_follow_density(temperature):
    """Prop. 1(a): samples of Eq. 10 have the density Eq. 11.

    The empirical CDF of X1 at 19 points against the CDF from integrating Eq. 11 with quad (which
    copes with the integrable endpoint singularity at small temperatures); 5 binomial sigmas each.
    """
    logits, n = np.log([2.0, 0.5]), 40_000
    x1 = cr.concrete_sample(logits, temperature, np.random.default_rng(2), size=n)[:, 0]
    dens = lambda t: np.exp(cr.concrete_log_density(np.array([t, 1 - t]), logits, temperature))
    for q in np.linspace(0.05, 0.95, 19):
        t = float(np.quantile(x1, q))
        exact = integrate.quad(dens, 0, t, limit=200)[0]
        emp = np.mean(x1 <= t)
        assert abs(emp - exact) < 5 * np.sqrt(max(exact * (1 - exact), 1e-4) / n)


# ---------------------------------------------------------------- Proposition 1 (b), (c), (d)
@pytest.mark.parametrize("temperature", [0.1, 1.0, 5.0])
def test_rounding_probability(temperature):
    """Prop. 1(b): P(argmax X = k) = alpha_k / sum(alpha) at every temperature (5 sigmas, 100k draws)."""
    logits = np.log([1.0, 2.0, 3.0, 4.0])
    n = 100_000
    x = cr.concrete_sample(logits, temperature, np.random.default_rng(3), size=n)
    freq = np.bincount(np.argmax(x, -1), minlength=4) / n
    p = np.exp(logits) / np.exp(logits).sum()
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / n))


def test_zero_temperature_limit():
    """Prop. 1(c): as lambda -> 0 the samples reach the vertices, in proportion alpha_k / sum(alpha)."""
    logits = np.log([1.0, 2.0, 3.0, 4.0])
    rng = np.random.default_rng(4)
    near = []
    for lam in [1.0, 0.1, 0.01, 0.001]:
        y = cr.exp_concrete_sample(logits, lam, rng, size=20_000)
        near.append(np.mean(np.max(y, -1) > np.log1p(-1e-3)))  # max coordinate within 1e-3 of 1
    assert np.all(np.diff(near) > 0) and near[-1] > 0.99
    p = np.exp(logits) / np.exp(logits).sum()
    freq = np.bincount(np.argmax(y, -1), minlength=4) / y.shape[0]
    assert np.max(np.abs(freq - p)) < 0.015


def _log_density_free(lam, logits):
    """log p as a function of the n-1 free coordinates of the simplex."""
    def f(v):
        x = anp.concatenate([v, anp.array([1.0]) - anp.sum(v, keepdims=True)])
        return cr.concrete_log_density(x, logits, lam)
    return f


@pytest.mark.parametrize("n", [2, 3, 4])
def test_log_convex_when_temperature_at_most_one_over_n_minus_one(n):
    """Prop. 1(d): lambda <= 1/(n-1) makes log p convex: Hessian eigenvalues >= 0 at random points."""
    rng = np.random.default_rng(5)
    for lam in [1.0 / (n - 1), 0.5 / (n - 1)]:
        for _ in range(30):
            logits = rng.normal(size=n) * 2
            x = rng.dirichlet(np.ones(n))
            if x.min() < 1e-3:
                continue
            hess = autograd.hessian(_log_density_free(lam, logits))(x[:-1])
            assert np.min(np.linalg.eigvalsh(hess)) > -1e-8 * np.max(np.abs(hess))


def test_not_log_convex_above_the_bound():
    """At lambda = 2, n = 3 (the paper's Fig. 2d) there is an interior mode: a negative-definite Hessian."""
    f = _log_density_free(2.0, ALPHA3)
    grad = autograd.grad(f)
    v = np.array([0.4, 0.2])
    for _ in range(2000):  # gradient ascent to the interior mode
        v = v + 1e-3 * grad(v)
    assert np.max(np.abs(grad(v))) < 1e-6 and v.min() > 0.05 and v.sum() < 0.95
    assert np.max(np.linalg.eigvalsh(autograd.hessian(f)(v))) < 0


# ---------------------------------------------------------------- stability bar (issue 3)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [2, 10, 100, 1000])
@pytest.mark.parametrize("temperature", [0.01, 0.05, 0.1, 1.0])
def test_exp_concrete_log_density_finite_on_own_samples(dtype, k, temperature):
    rng = np.random.default_rng(k)
    logits = (rng.normal(size=k) * 5).astype(dtype)
    lam = dtype(temperature)
    y = cr.exp_concrete_sample(logits, lam, rng, size=2000 if k < 1000 else 300)
    lp = cr.exp_concrete_log_density(y, logits, lam)
    assert y.dtype == dtype and lp.dtype == dtype
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(lp))


def test_float32_matches_float64_on_common_noise():
    rng = np.random.default_rng(6)
    for k, lam in [(3, 0.5), (10, 0.1), (100, 1.0)]:
        logits = rng.normal(size=k)
        g = cr.sample_gumbel((500, k), rng)
        y64 = cr.exp_concrete_transform(logits, lam, g)
        y32 = cr.exp_concrete_transform(logits.astype(np.float32), np.float32(lam), g.astype(np.float32))
        assert y32.dtype == np.float32
        np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-4 / lam)
        lp64 = cr.exp_concrete_log_density(y64, logits, lam)
        lp32 = cr.exp_concrete_log_density(y32, logits.astype(np.float32), np.float32(lam))
        np.testing.assert_allclose(lp32, lp64, rtol=1e-4, atol=1e-3)


def test_log_density_is_shift_invariant_and_matches_simplex_density():
    rng = np.random.default_rng(7)
    y = cr.exp_concrete_sample(ALPHA3, 0.8, rng, size=100)
    a = cr.exp_concrete_log_density(y, ALPHA3, 0.8)
    shifted = (y + 1e-12) - np.logaddexp.reduce(y + 1e-12, axis=-1, keepdims=True)
    np.testing.assert_allclose(cr.exp_concrete_log_density(shifted, ALPHA3, 0.8), a, rtol=1e-12)
    simplex = cr.concrete_log_density(np.exp(y), ALPHA3, 0.8)
    np.testing.assert_allclose(simplex, a - y.sum(-1), rtol=1e-10)


def test_underflow_is_reported_not_clipped():
    with pytest.warns(cr.ConcreteUnderflowWarning, match="underflowed to 0"):
        x = cr.concrete_sample(np.zeros(10, np.float32), np.float32(0.05), np.random.default_rng(0), 2000)
    assert np.any(x == 0)  # the sample is what it is; nothing was moved
    with pytest.raises(ValueError, match="exp_concrete_log_density"):
        cr.concrete_log_density(x[np.any(x == 0, -1)][:1], np.zeros(10, np.float32), np.float32(0.05))


# ---------------------------------------------------------------- shapes and broadcasting
def test_batched_temperature_broadcasts_against_batch_shape():
    """A per-row temperature (B,) with logits (B, K): samples (B, K), densities (B,) (cf. pytorch#37162)."""
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(5, 4))
    lam = np.array([0.1, 0.5, 1.0, 2.0, 4.0])
    y = cr.exp_concrete_sample(logits, lam, rng)
    assert y.shape == (5, 4)
    lp = cr.exp_concrete_log_density(y, logits, lam)
    assert lp.shape == (5,)
    for i in range(5):
        assert lp[i] == pytest.approx(float(cr.exp_concrete_log_density(y[i], logits[i], lam[i])), rel=1e-12)
    assert cr.exp_concrete_sample(logits, lam, rng, size=(7, 3)).shape == (7, 3, 5, 4)


def test_sample_rows_use_their_own_temperature():
    g = cr.sample_gumbel((2, 3), 0)
    logits = np.zeros((2, 3))
    y = cr.exp_concrete_transform(logits, np.array([0.5, 2.0]), g)
    np.testing.assert_allclose(y[0], cr.exp_concrete_transform(logits[0], 0.5, g[0]))
    np.testing.assert_allclose(y[1], cr.exp_concrete_transform(logits[1], 2.0, g[1]))


# ---------------------------------------------------------------- gradients against finite differences
def _central_difference(f, x, h=1e-6):
    x = np.asarray(x, float)
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        out[i] = (f(x + e) - f(x - e)) / (2 * h)
    return out


def test_log_density_gradients_match_finite_differences():
    rng = np.random.default_rng(9)
    logits, lam = rng.normal(size=4), 0.7
    y = cr.exp_concrete_sample(logits, lam, rng)
    x = np.exp(y)
    for fun, point in [(cr.exp_concrete_log_density, y), (cr.concrete_log_density, x)]:
        g_logits = autograd.grad(lambda a: fun(point, a, lam))(logits)
        np.testing.assert_allclose(g_logits, _central_difference(lambda a: fun(point, a, lam), logits), rtol=1e-6, atol=1e-8)
        g_lam = autograd.grad(lambda t: fun(point, logits, t))(lam)
        assert g_lam == pytest.approx(float(_central_difference(lambda t: fun(point, logits, t), lam)), rel=1e-6)


def test_reparameterized_sample_gradients_match_finite_differences():
    """The reparameterization (Eq. 6-7 applied to Eq. 10): d sample / d(logits, temperature) with fixed noise."""
    rng = np.random.default_rng(10)
    logits, lam = rng.normal(size=3), 0.6
    g = cr.sample_gumbel(3, rng)
    w = np.array([1.0, -2.0, 0.5])
    f = lambda a, t: anp.sum(w * anp.exp(cr.exp_concrete_transform(a, t, g)))
    np.testing.assert_allclose(
        autograd.grad(f, 0)(logits, lam), _central_difference(lambda a: f(a, lam), logits), rtol=1e-6, atol=1e-9
    )
    assert autograd.grad(f, 1)(logits, lam) == pytest.approx(
        float(_central_difference(lambda t: f(logits, t), lam)), rel=1e-6
    )


# ---------------------------------------------------------------- independent high-precision check
def test_agrees_with_mpmath_to_1e8():
    rng = np.random.default_rng(11)
    worst = 0.0
    for k in [2, 3, 5, 20]:
        for lam in [0.05, 0.3, 1.0, 3.0]:
            logits = rng.normal(size=k) * 3
            g = cr.sample_gumbel((5, k), rng)
            y = cr.exp_concrete_transform(logits, lam, g)
            for i in range(5):
                exact_y = hp.exp_concrete_transform(logits, lam, g[i])
                worst = max(worst, max(hp.relative_error(a, b) for a, b in zip(y[i], exact_y)))
                yi = np.array([float(v) for v in exact_y])  # density at the exact point
                worst = max(worst, hp.relative_error(
                    cr.exp_concrete_log_density(yi, logits, lam), hp.exp_concrete_log_density(yi, logits, lam)))
                xi = np.exp(yi)
                if np.all(xi > 1e-300) and abs(xi.sum() - 1) < 1e-12:
                    worst = max(worst, hp.relative_error(
                        cr.concrete_log_density(xi, logits, lam), hp.concrete_log_density(xi, logits, lam)))
    assert worst < 1e-8, worst
