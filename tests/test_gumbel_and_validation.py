"""Gumbel and Logistic noise, the Gumbel-max trick (Eq. 9), and every ValueError path."""

import numpy as np
import pytest
from scipy import integrate, stats

import concrete_ref as cr


def test_gumbel_noise_distribution():
    g = cr.sample_gumbel(50_000, np.random.default_rng(0))
    assert stats.kstest(g, stats.gumbel_r.cdf).pvalue > 1e-3
    total, _ = integrate.quad(lambda t: np.exp(cr.gumbel_log_density(t)), -8.0, 60.0)  # tails < 1e-25
    assert total == pytest.approx(1.0, abs=1e-10)


def test_logistic_noise_distribution():
    l = cr.sample_logistic(50_000, np.random.default_rng(1))
    assert stats.kstest(l, stats.logistic.cdf).pvalue > 1e-3
    np.testing.assert_allclose(cr.logistic_noise_log_density(np.array([-800.0, 0.0, 3.0, 800.0])),
                               stats.logistic.logpdf([-800.0, 0.0, 3.0, 800.0]), rtol=1e-12)


def test_uniform_noise_never_zero():
    u = cr.sample_uniform(1_000_000, np.random.default_rng(2))
    assert u.min() >= np.finfo(np.float64).tiny and u.max() < 1.0


def test_noise_is_seedable_and_dtype_preserving():
    a = cr.sample_gumbel((3, 4), 7)
    b = cr.sample_gumbel((3, 4), np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert cr.sample_gumbel(5, 0, dtype=np.float32).dtype == np.float32


def test_gumbel_max_frequencies_chi_square():
    """Eq. 9: P(D_k = 1) = alpha_k / sum(alpha); chi-square goodness of fit at level 0.001."""
    alpha = np.array([2.0, 0.5, 1.0, 0.1, 3.0])
    d = cr.gumbel_max_sample(np.log(alpha), np.random.default_rng(3), size=100_000)
    assert d.shape == (100_000, 5) and np.all(d.sum(-1) == 1)
    counts = d.sum(0)
    assert stats.chisquare(counts, alpha / alpha.sum() * counts.sum()).pvalue > 1e-3


def test_gumbel_max_batches():
    logits = np.log(np.array([[0.9, 0.1], [0.1, 0.9]]))
    d = cr.gumbel_max_sample(logits, np.random.default_rng(4), size=20_000)
    freq = d.mean(0)[:, 0]
    assert abs(freq[0] - 0.9) < 0.01 and abs(freq[1] - 0.1) < 0.01


# ---------------------------------------------------------------- every ValueError path
LOGITS = np.zeros(3)
Y = np.log(np.full(3, 1 / 3))


@pytest.mark.parametrize("temperature", [0.0, -1.0, np.nan, np.inf, np.array([1.0, -0.5])])
def test_bad_temperature(temperature):
    for call in [
        lambda: cr.exp_concrete_sample(LOGITS, temperature, 0),
        lambda: cr.exp_concrete_log_density(Y, LOGITS, temperature),
        lambda: cr.concrete_log_density(np.exp(Y), LOGITS, temperature),
        lambda: cr.logistic_log_density(0.0, 0.0, temperature),
        lambda: cr.binary_concrete_sample(0.0, temperature, 0),
        lambda: cr.binary_concrete_log_density(0.5, 0.0, temperature),
    ]:
        with pytest.raises(ValueError, match=r"temperature must be in \(0, inf\)"):
            call()


@pytest.mark.parametrize("logits", [np.array([0.0, np.inf, 1.0]), np.array([0.0, -np.inf, 1.0]), np.array([np.nan, 0.0])])
def test_non_finite_logits(logits):
    with pytest.raises(ValueError, match="logits must be finite"):
        cr.exp_concrete_sample(logits, 1.0, 0)
    with pytest.raises(ValueError, match="logits must be finite"):
        cr.gumbel_max_sample(logits, 0)
    with pytest.raises(ValueError, match="logit must be finite"):
        cr.logistic_sample(logits, 1.0, 0)


def test_too_few_categories_and_scalars():
    with pytest.raises(ValueError, match="at least 2 categories"):
        cr.exp_concrete_sample(np.zeros(1), 1.0, 0)
    with pytest.raises(ValueError, match="at least one axis"):
        cr.concrete_sample(0.0, 1.0, 0)


def test_mismatched_last_dimension():
    with pytest.raises(ValueError, match="same last dimension as logits"):
        cr.exp_concrete_log_density(np.log(np.full(4, 0.25)), LOGITS, 1.0)
    with pytest.raises(ValueError, match="same last dimension as logits"):
        cr.concrete_log_density(np.full(2, 0.5), LOGITS, 1.0)


def test_points_off_the_simplex():
    with pytest.raises(ValueError, match="sum\\(x, axis=-1\\) must be 1"):
        cr.concrete_log_density(np.array([0.5, 0.3, 0.3]), LOGITS, 1.0)
    with pytest.raises(ValueError, match="open simplex"):
        cr.concrete_log_density(np.array([0.0, 0.5, 0.5]), LOGITS, 1.0)
    with pytest.raises(ValueError, match="open simplex"):
        cr.concrete_log_density(np.array([-0.1, 0.6, 0.5]), LOGITS, 1.0)
    with pytest.raises(ValueError, match="logsumexp\\(y, axis=-1\\) must be 0"):
        cr.exp_concrete_log_density(np.zeros(3), LOGITS, 1.0)  # logits passed where y belongs
    with pytest.raises(ValueError, match="y must be finite"):
        cr.exp_concrete_log_density(np.array([0.0, -np.inf, -np.inf]), LOGITS, 1.0)


def test_simplex_tolerance_is_dtype_aware():
    """A float32 point that sums to 1 only within float32 rounding is accepted; in float64 it is not."""
    x32 = np.array([0.1, 0.2, 0.7000005], np.float32)  # off by ~5e-7: float32 rounding at K = 3
    cr.concrete_log_density(x32, LOGITS.astype(np.float32), np.float32(1.0))
    with pytest.raises(ValueError, match="must be 1 within"):
        cr.concrete_log_density(x32.astype(np.float64), LOGITS, 1.0)


def test_unit_interval_and_logit_space_domains():
    for x in [0.0, 1.0, -0.2, 1.5, np.nan]:
        with pytest.raises(ValueError, match=r"open interval \(0, 1\)"):
            cr.binary_concrete_log_density(x, 0.0, 1.0)
    with pytest.raises(ValueError, match="y must be finite"):
        cr.logistic_log_density(np.inf, 0.0, 1.0)


@pytest.mark.parametrize("rng", [None, "seed", 1.5, -3, True])
def test_bad_rng(rng):
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator|rng as a seed"):
        cr.exp_concrete_sample(LOGITS, 1.0, rng)


@pytest.mark.parametrize("size", [-1, (2, -1), "abc"])
def test_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        cr.exp_concrete_sample(LOGITS, 1.0, 0, size=size)


def test_non_real_input():
    with pytest.raises(ValueError, match="real numbers"):
        cr.exp_concrete_sample(np.array(["a", "b"]), 1.0, 0)
