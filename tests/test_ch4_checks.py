"""Chapter 4's checks can fail: each passes with the book's formula and fails when the formula is perturbed.

The checks live in concrete_ref.log_space and take the formula they test as an argument; each test runs a
check twice, with the default formula (it must pass) and with a perturbed one (it must fail), on samples
smaller than the chapter's where that keeps the test fast and the perturbation still far outside the
tolerance.  The last tests cover the torch comparisons added for Chapter 4 (skipped without torch).
"""

from __future__ import annotations

import math

import autograd.numpy as anp
import numpy as np
import pytest
from scipy import stats

import concrete_ref as cr
from concrete_ref import log_space as ls

LOGIT = math.log(2.0)


def _passed(result):
    checks = result if isinstance(result, list) else [result]
    return all(c.passed for c in checks)


def _pair(check, perturbed, **kwargs):
    """(default passes, perturbed passes) for a check whose first argument is the formula under test."""
    return _passed(check(**kwargs)), _passed(check(perturbed, **kwargs))


# --- 4.1 Binary Concrete -------------------------------------------------------------------------------

def test_logistic_difference_detects_a_wrong_scale():
    ok, bad = _pair(ls.check_logistic_difference, lambda v: stats.logistic.cdf(v, scale=1.1), n=50_000)
    assert ok and not bad


def test_binary_sampler_detects_a_wrong_temperature():
    wrong = lambda la, lam, rng, size: cr.binary_concrete_sample(la, 1.2 * lam, rng, size=size)  # noqa: E731
    ok, bad = _pair(ls.check_binary_sampler, wrong, n=50_000)
    assert ok and not bad


def test_binary_cdf_detects_a_wrong_temperature():
    ok, bad = _pair(ls.check_binary_cdf, lambda x, la, lam: ls.binary_cdf(x, la, 1.1 * lam), n=50_000)
    assert ok and not bad


def test_eq17_density_detects_a_wrong_exponent():
    def wrong(x, logit, lam):  # x^(-lam-1) replaced by x^(-lam-1.01)
        a = math.exp(logit)
        return lam * a * x ** (-lam - 1.01) * (1 - x) ** (-lam - 1) / (a * x ** (-lam) + (1 - x) ** (-lam)) ** 2

    checks = ls.check_eq17_density()
    assert all(c.passed for c in checks)
    assert not any(c.passed for c in ls.check_eq17_density(wrong))


def test_eq17_printed_is_the_paper_formula_at_a_point():
    # x = sigma(0) = 1/2, alpha = 2, lambda = 1: 1 * 2 * 2^2 * 2^2 / (2 * 2 + 2)^2 = 32/36
    assert abs(ls.eq17_log_density_printed(np.array([0.0]), LOGIT, 1.0)[0] - math.log(32 / 36)) < 1e-14
    assert abs(ls.eq17_density_float(np.float64(0.5), LOGIT, 1.0) - 32 / 36) < 1e-15


def test_prop2b_detects_a_wrong_probability():
    ok, bad = _pair(ls.check_prop2b, lambda a: a / (1 + a) + 0.005)
    assert ok and not bad


def test_prop2c_detects_a_wrong_middle_mass():
    default = ls.check_prop2c(n=100_000)
    perturbed = ls.check_prop2c(lambda lam, la, eps: 1.05 * ls.middle_mass(lam, la, eps), n=100_000)
    assert all(c.passed for c in default)
    assert not perturbed[0].passed and not perturbed[2].passed
    # the bound holds with room (the ratio to it is at most 8/9 for alpha = 2), so only a mass beyond it fails
    assert not ls.check_prop2c(lambda lam, la, eps: 1.2 * ls.middle_mass(lam, la, eps), n=100_000)[1].passed


def test_prop2c_detects_a_wrong_limit():
    # a middle mass that is right at lambda = 1 but does not vanish like lambda
    perturbed = ls.check_prop2c(lambda lam, la, eps: ls.middle_mass(np.sqrt(lam), la, eps), n=100_000)
    assert not perturbed[1].passed or not perturbed[2].passed


def test_prop2d_detects_a_wrong_exponent():
    # density times (x(1-x))^(1/2): the exponent -lambda-1 of Eq. (17) replaced by -lambda-1/2
    wrong = lambda x, la, lam: cr.binary_concrete_log_density(x, la, lam) + 0.5 * anp.log(x * (1 - x))  # noqa: E731
    default, perturbed = ls.check_prop2d(), ls.check_prop2d(wrong)
    assert all(c.passed for c in default)
    assert not perturbed[0].passed


def test_prop2d_detects_a_convex_density_above_one():
    # a density whose log is convex at every temperature fails the "not convex for lambda > 1" half
    convex = lambda x, la, lam: -anp.log(x * (1 - x))  # noqa: E731
    assert not ls.check_prop2d(convex)[1].passed


def test_log_convexity_decomposition_detects_a_wrong_coefficient():
    def wrong(x, logit, lam):  # (lambda - 1) replaced by lambda
        return (anp.log(lam) + logit + lam * (anp.log(x) + anp.log1p(-x))
                - 2 * anp.log(anp.exp(logit) * (1 - x) ** lam + x ** lam))

    ok, bad = _pair(ls.check_log_convexity_decomposition, wrong)
    assert ok and not bad


# --- 4.2 the gap, ExpConcrete, its measure, KL, the logit node --------------------------------------------

def test_gumbel_range_cdf_closed_forms():
    r = np.array([0.1, 1.0, 3.0, 10.0])
    assert np.allclose(ls.gumbel_range_cdf(r, 2), np.tanh(r / 2), rtol=1e-13, atol=0)
    assert ls.gumbel_range_cdf(0.0, 10) == 0.0
    assert abs(ls.gumbel_range_cdf(200.0, 100) - 1) < 1e-12
    # the density is the derivative of the CDF
    h = 1e-5
    for n in (3, 10, 100):
        num = (ls.gumbel_range_cdf(2.0 + h, n) - ls.gumbel_range_cdf(2.0 - h, n)) / (2 * h)
        assert abs(num - ls.gumbel_range_pdf(2.0, n)) < 1e-8
    # the chapter's numbers: median gap 73.4 and P(gap > 200) = 0.13% at n = 10, lambda = 0.05
    assert abs(ls.gumbel_range_quantile(0.5, 10) / 0.05 - 73.396) < 1e-3
    assert abs((1 - ls.gumbel_range_cdf(10.0, 10)) - 0.0012834) < 1e-6


def test_gumbel_range_detects_a_wrong_n():
    ok, bad = _pair(ls.check_gumbel_range, lambda r, n: ls.gumbel_range_cdf(r, n - 1), ns=(10,), size=20_000)
    assert ok and not bad


def test_float32_underflow_threshold():
    import numpy as np

    t = ls.FLOAT32_EXP_UNDERFLOW
    assert np.exp(np.float32(t - 1e-4)) == 0 and np.exp(np.float32(t + 1e-4)) > 0


def test_exp_concrete_density_detects_a_wrong_normaliser():
    # n log(lambda) instead of (n - 1) log(lambda)
    wrong = lambda y, la, lam: cr.exp_concrete_log_density(y, la, lam) + np.log(lam)  # noqa: E731
    ok, bad = _pair(ls.check_exp_concrete_density, wrong, size=40)
    assert ok and not bad


def test_eq44_detects_the_first_coordinate_jacobian():
    # prod_{k<n} e^{y_k}: the Jacobian of the first-coordinate chart, not the one in (4.6)
    ok, bad = _pair(ls.check_eq44, lambda y: np.sum(y[..., :-1], axis=-1), size=30)
    assert ok and not bad


def test_chart_determinants_detect_swapped_products():
    default = ls.check_chart_determinants(points=5)
    swapped = ls.check_chart_determinants(lambda x: np.prod(x[:-1]), lambda x: np.prod(x), points=5)
    assert all(c.passed for c in default)
    assert not swapped[0].passed and not swapped[1].passed


def test_relative_normalisation_detects_the_wrong_measure():
    # kappa(y) e^{-y_n} is the density in the first coordinates: over w it does not integrate to 1
    wrong = lambda y, la, lam: cr.exp_concrete_log_density(y, la, lam) - y[..., -1]  # noqa: E731
    ok, bad = _pair(ls.check_relative_normalisation, wrong, temperatures=(1.0,))
    assert ok and not bad


def test_kl_invariance_detects_a_wrong_normaliser_but_not_a_change_of_measure():
    wrong = lambda y, la, lam: cr.exp_concrete_log_density(y, la, lam) + np.log(lam)  # noqa: E731
    assert ls.check_kl_invariance(size=20_000)[0].passed
    assert not ls.check_kl_invariance(wrong, size=20_000)[0].passed
    # adding sum_k y_k to every log density (another reference measure) cancels in the ratio
    remeasured = lambda y, la, lam: cr.exp_concrete_log_density(y, la, lam) + np.sum(y, axis=-1)  # noqa: E731
    assert ls.check_kl_invariance(remeasured, size=20_000)[0].passed


def test_simplex_kl_quadrature_is_zero_for_equal_distributions():
    la = np.log([2.0, 0.5, 1.0])
    assert abs(ls.simplex_kl_quadrature(la, 0.7, la, 0.7)) < 1e-10


def test_logit_forms_detect_a_missing_factor_two():
    def wrong(y, logit, lam):
        d = np.abs(logit - lam * y)
        return np.log(lam) - d - np.log1p(np.exp(-d))

    ok, bad = _pair(ls.check_logit_forms, wrong)
    assert ok and not bad


def test_logit_vs_eq17_detects_half_the_jacobian():
    ok, bad = _pair(ls.check_logit_vs_eq17, lambda v: -np.logaddexp(0, -v))
    assert ok and not bad


def test_stability_checks_detect_the_naive_forms():
    def naive_simplex(y, logits, lam):  # Eq. (11) in working precision at exp(y), plus the log Jacobian
        with np.errstate(all="ignore"):
            return np.log(ls.eq11_density_float(np.exp(y), logits, lam)) + np.sum(y, axis=-1)

    assert ls.check_stability_exp_concrete(ns=(10,), temperatures=(0.05,), dtypes=(np.float32,)).passed
    assert not ls.check_stability_exp_concrete(naive_simplex, ns=(10,), temperatures=(0.05,),
                                               dtypes=(np.float32,)).passed

    def literal(y, logit, lam):  # App. C.3.2 as printed, in working precision
        with np.errstate(over="ignore"):
            return np.log(lam) + (logit - lam * y) - 2 * np.log1p(np.exp(logit - lam * y))

    assert all(c.passed for c in ls.check_stability_logistic(temperatures=(1.0,)))
    assert not ls.check_stability_logistic(literal, temperatures=(1.0,))[0].passed


def test_sigmoid_rounding_thresholds():
    one, zero = ls.sigmoid_rounding_thresholds(np.float32)
    assert 16.5 < one < 16.8 and -88.8 < zero < -88.6
    with np.errstate(over="ignore"):
        s = lambda v: np.float32(1) / (np.float32(1) + np.exp(-np.float32(v)))  # noqa: E731
        assert s(one + 0.01) == 1 and s(one - 0.01) < 1 and s(zero - 0.01) == 0 and s(zero + 0.01) > 0


def test_binary_relaxed_kl_is_zero_for_equal_units_and_above_the_discrete_kl():
    assert abs(ls.binary_relaxed_kl(LOGIT, 0.5, LOGIT, 0.5)) < 1e-10
    assert ls.binary_relaxed_kl(LOGIT, 2 / 3, 0.0, 0.5) > ls.bernoulli_kl(LOGIT, 0.0) > 0


# --- torch comparisons (Chapter 4, §4.3) -------------------------------------------------------------------

torch = pytest.importorskip("torch")
from concrete_ref import library_comparison as lc  # noqa: E402


def test_relaxed_nan_rate_is_the_underflow_rate():
    r = lc.relaxed_nan_rate(0.05, 10, num_samples=5_000)
    assert r["nan"] == r["zero_coordinate"] > 0
    assert lc.relaxed_nan_rate(0.5, 10, num_samples=5_000)["nan"] == 0


def test_exp_relaxed_has_no_nan_at_low_temperature():
    assert lc.exp_relaxed_nonfinite(0.01, 100, num_samples=2_000) == (0, 0)


def test_torch_exports():
    e = lc.torch_exports()
    assert e["RelaxedOneHotCategorical"]["exported"] and e["RelaxedBernoulli"]["exported"]
    assert all(v["importable"] for v in e.values())


def test_simplex_tolerance_comparison():
    t = lc.simplex_tolerance_comparison(num_samples=5_000)
    assert t["ours_rejects_interior"] == 0
    assert t["torch_accepts_off_simplex_float64"] and t["ours_rejects_off_simplex_float64"]


def test_underflowed_sample_demo():
    d = lc.underflowed_sample_demo()
    assert np.isnan(d["torch_simplex"]) and np.isfinite(d["ours"])
    assert "exp_concrete_log_density" in d["ours_simplex_error"]
    assert abs(d["ours"] - d["torch_log_space"]) < 1e-5 * abs(d["ours"])


def test_eq27_prior_overflows_only_where_d_is_large():
    t = lc.eq27_binary_terms(np.array([-150.0, 0.0]), np.array([0.0, 50.0]))
    assert np.array_equal(np.isneginf(t["torch_prior"]), t["d_prior"] > 88.72)
    assert np.all(np.isfinite(t["ours_prior"])) and np.all(np.isfinite(t["torch_posterior"]))
    assert np.allclose(t["d_posterior"], 0.0)
