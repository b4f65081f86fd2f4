"""Chapter 3's checks can fail: each package function the chapter calls passes with the paper's formulas
and fails when a formula is perturbed (a dropped (n-1)!, lambda^(n-2) for lambda^(n-1), a Jacobian
forgotten, a noise that is not tempered, a wrong bracket).  Also the Check records, the log-ratio
coordinates and the temperature-path animation of the chapter.

Sizes are cut down from the chapter's (fewer cases and samples) so that the file runs in well under a
minute; the seeds are fixed, so every verdict is deterministic.
"""

from __future__ import annotations

import math

import autograd.numpy as anp
import matplotlib
import numpy as np
import pytest
from scipy.special import gammaln

import concrete_ref as cr
from concrete_ref import animation, simplex
from concrete_ref import change_of_variables as cov
from concrete_ref import concrete_properties as props
from concrete_ref.checks import Check, all_passed, format_number, margin_table, report

matplotlib.use("Agg")

LOGITS = np.log([2.0, 0.5, 1.0])  # the paper's Figure 2


# --- perturbed formulas --------------------------------------------------------------------------------


def no_factorial(x, logits, temperature):
    """Eq. (11) without its (n-1)!."""
    return cr.concrete_log_density(x, logits, temperature) - gammaln(np.shape(x)[-1])


def lambda_n_minus_2(x, logits, temperature):
    """Eq. (11) with lambda^(n-2) in place of lambda^(n-1)."""
    return cr.concrete_log_density(x, logits, temperature) - anp.log(temperature)


def no_jacobian(x, logits, temperature):
    """Eq. (11) with x_k^(-lambda) in place of x_k^(-lambda-1) (the Jacobian of the softmax forgotten)."""
    return cr.concrete_log_density(x, logits, temperature) + anp.sum(anp.log(x), -1)


def extra_jacobian(x, logits, temperature):
    """Eq. (11) with x_k^(-lambda-3): log-convex well above lambda = 1/(n-1)."""
    return cr.concrete_log_density(x, logits, temperature) - 2 * anp.sum(anp.log(x), -1)


def untempered_noise_sample(logits, temperature, rng, size=None):
    """softmax(log alpha + G / lambda): only the noise divided by the temperature."""
    return cr.concrete_sample(np.asarray(logits) * temperature, temperature, rng, size)


def untempered_noise_exp_sample(logits, temperature, rng, size=None):
    return cr.exp_concrete_sample(np.asarray(logits) * temperature, temperature, rng, size)


def verdicts(checks):
    return [c.passed for c in checks]


# --- Check records ---------------------------------------------------------------------------------------


def test_format_number():
    assert format_number(1e-9) == "1e-9"
    assert format_number(2.5e-3) == "0.0025"
    assert format_number(4) == "4"
    assert format_number(4.4e-15) == "4.4e-15"
    assert format_number(9.99999e-10) == "1.0e-9"
    assert format_number(0) == "0"


def test_check_renderings_and_verdicts():
    ok = Check("claim", "max |error|", 3.1e-12, 1e-9, cases=6)
    assert ok.passed and ok.line() == "claim (6 cases): max |error| < 1e-9: True"
    assert "3.1e-12" in ok.margin() and "margin 323x" in ok.margin()
    assert "3.1e-12" not in ok.line()  # the checked rendering never shows the machine-dependent value
    assert not Check("c", "p-value", 1e-4, 1e-3, ">").passed
    assert Check("c", "mismatches", 0, 0, "==").line() == "c: mismatches = 0 (must be 0): True"
    assert not Check("c", "error", float("nan"), 1.0).passed
    assert math.isinf(Check("c", "error", 0.0, 1e-9).ratio)
    assert Check("c", "eig", -1.4e-15, -1e-9, ">").ratio == pytest.approx(1e-9 / 1.4e-15)
    assert Check("c", "excess", -0.5, 4.0).slack == pytest.approx(4.5)
    with pytest.raises(ValueError):
        Check("c", "x", 1.0, 1.0, "<=")
    table = margin_table([ok])
    assert "max \\|error\\|" in table and table.count("\n") == 2  # header, rule, one row; | escaped
    assert report([ok, ok]).count("\n") == 1 and all_passed([ok])


# --- 3.2: the path of one draw ---------------------------------------------------------------------------


def test_temperature_path_goes_from_centroid_to_the_gumbel_max_vertex():
    g = cr.sample_gumbel((5, 3), np.random.default_rng(9))
    path = animation.temperature_path(LOGITS, g, [1e4, 1.0, 1e-3])
    assert path.shape == (3, 5, 3)
    np.testing.assert_allclose(path[0], 1 / 3, atol=1e-3)
    np.testing.assert_array_equal(path[-1].argmax(-1), (LOGITS + g).argmax(-1))
    assert np.all(path[-1].max(-1) > 1 - 1e-12)


def test_path_checks_pass_and_fail_for_an_untempered_noise():
    g = cr.sample_gumbel((12, 3), np.random.default_rng(9))
    temps = np.geomspace(8.0, 1 / 16, 29)
    assert verdicts(animation.path_checks(LOGITS, g, temps)) == [True, True]

    def untempered_path(logits, gumbels, temperatures):  # softmax(log alpha + G/lambda)
        return np.stack([np.exp(cr.exp_concrete_transform(np.asarray(logits) * lam, lam, gumbels)) for lam in temperatures])

    bad = animation.path_checks(LOGITS, g, temps, path=untempered_path)
    assert verdicts(bad) == [False, False]


def test_path_animation_embeds_small_frames():
    g = cr.sample_gumbel((4, 3), np.random.default_rng(9))
    temps = np.geomspace(4.0, 0.25, 5)
    html = animation.path_animation(animation.temperature_path(LOGITS, g, temps), temps).to_jshtml()
    assert html.count("data:image/png;base64") == 5
    assert len(html) < 60_000  # palette PNGs at the figure's own dpi: a few kB per frame


# --- 3.3: the derivation ---------------------------------------------------------------------------------


DERIVATION = dict(ns=(3,), temperatures=(0.7,))


def test_derivation_checks_pass_with_the_papers_formulas():
    assert verdicts(cov.derivation_checks(np.random.default_rng(1), **DERIVATION)) == [True] * 4


def test_autograd_determinant_is_the_closed_form():
    x, c, lam = np.array([0.2, 0.3, 0.1, 0.4]), 1.7, 0.6
    assert cov.jacobian_determinant(x, c, lam) == pytest.approx(cov.jacobian_determinant_formula(x, c, lam), rel=1e-12)


@pytest.mark.parametrize("perturbation, failing", [
    ({"log_density": no_factorial}, 3),
    ({"log_density": lambda_n_minus_2}, 3),
    ({"jacobian_formula": lambda x, c, lam: lam ** (x.size - 1) / (c * np.prod(x))}, 0),
    ({"joint_formula": lambda x, c, l, lam: cov.joint_log_density_formula(x, c, l, lam) + np.log(c) * lam}, 1),
    ({"gamma_formula": lambda s, n, lam: cov.gamma_integral_formula(s, n + 1, lam)}, 2),
])
def test_each_derivation_check_fails_for_a_perturbed_formula(perturbation, failing):
    result = verdicts(cov.derivation_checks(np.random.default_rng(1), **DERIVATION, **perturbation))
    expected = [True] * 4
    expected[failing] = False
    assert result == expected


# --- 3.4: normalisation ----------------------------------------------------------------------------------


INTEGRALS = dict(n2_alphas=((2.0, 0.5),), n2_temperatures=(0.5,), dblquad_cases=(((2.0, 0.5, 1.0), 2.0),),
                 n3_alphas=((2.0, 0.5, 1.0),), n3_temperatures=(0.5,))


def test_integral_checks_pass():
    result = props.integral_checks(**INTEGRALS)
    assert verdicts(result.checks) == [True, True, True]
    assert result.data["dblquad_evaluations"][((2.0, 0.5, 1.0), 2.0)] > 1000


def test_integral_checks_fail_for_lambda_to_the_n_minus_2():
    # lambda = 2 in dblquad and 0.5 elsewhere: a factor 1/2 or 2 everywhere
    assert verdicts(props.integral_checks(lambda_n_minus_2, **INTEGRALS).checks) == [False, False, False]


def test_integral_checks_fail_without_the_factorial():
    # (n-1)! = 1 at n = 2: only the n = 3 integrals see it
    assert verdicts(props.integral_checks(no_factorial, **INTEGRALS).checks) == [True, False, False]


# --- 3.7: regions and moments ----------------------------------------------------------------------------


REGIONS = dict(temperatures=(0.5,), seeds=(10,), n_samples=20_000)


def test_region_checks_pass():
    assert verdicts(props.region_checks(LOGITS, **REGIONS).checks) == [True, True, True]


def test_region_probabilities_exact_sum_to_one():
    p = props.region_probabilities_exact(np.exp(LOGITS), 0.7, [-np.inf, -1.0, 2.0, np.inf])
    assert p.shape == (3, 3) and p.sum() == pytest.approx(1.0, abs=1e-14) and np.all(p > 0)


@pytest.mark.parametrize("density", [no_factorial, lambda_n_minus_2])
def test_region_checks_fail_for_a_perturbed_density(density):
    checks = props.region_checks(LOGITS, **REGIONS, log_density=density).checks
    assert not checks[0].passed and not checks[2].passed  # quadrature != (3.9); frequencies far from it


def test_region_checks_fail_for_a_perturbed_sampler():
    checks = props.region_checks(LOGITS, **REGIONS, sampler=untempered_noise_sample).checks
    assert checks[0].passed and not checks[1].passed and not checks[2].passed


MOMENTS = dict(temperatures=(0.5,), seeds=(13,), n_samples=20_000)


def test_moment_checks_pass_and_fail():
    assert verdicts(props.moment_checks(LOGITS, **MOMENTS).checks) == [True]
    assert verdicts(props.moment_checks(LOGITS, **MOMENTS, log_density=no_factorial).checks) == [False]
    assert verdicts(props.moment_checks(LOGITS, **MOMENTS, sampler=untempered_noise_sample).checks) == [False]


# --- 3.8: rounding and zero temperature ------------------------------------------------------------------


ROUNDING = dict(temperatures=(0.5, 2.0), n_samples=20_000)


def test_rounding_checks_pass_and_fail_for_an_untempered_noise():
    assert verdicts(props.rounding_checks(LOGITS, **ROUNDING).checks) == [True, True, True]
    bad = props.rounding_checks(LOGITS, **ROUNDING, sampler=untempered_noise_sample)
    assert verdicts(bad.checks) == [False, False, False]
    assert bad.checks[0].value > 1000


def test_brackets_contain_the_limit_and_order():
    lo, hi = props.vertex_brackets(np.exp(LOGITS), 0.01, 0.01)
    assert np.all(lo < hi) and np.all(hi < np.exp(LOGITS) / np.exp(LOGITS).sum())


def test_zero_temperature_checks_pass():
    assert verdicts(props.zero_temperature_checks(LOGITS).checks) == [True, True]


def test_zero_temperature_checks_fail_for_wrong_brackets():
    wrong = lambda alpha, m: props.win_by_probability(alpha, 2 * m)  # e^(2m) in (3.10)
    checks = props.zero_temperature_checks(LOGITS, temperatures=(0.5, 0.1, 0.001), n_samples=50_000, win_by=wrong).checks
    assert not checks[0].passed


def test_zero_temperature_checks_fail_for_an_untempered_noise():
    # softmax(log alpha + G/lambda) rounds to argmax G as lambda -> 0: every vertex with probability 1/3
    checks = props.zero_temperature_checks(LOGITS, temperatures=(0.5, 0.1, 0.001), n_samples=50_000,
                                           sampler=untempered_noise_exp_sample).checks
    assert verdicts(checks) == [False, False]


# --- 3.9: log-convexity ----------------------------------------------------------------------------------


SCAN = dict(ns=(3,), ms=(0.5, 1.0, 1.05), trials=1, points=500)


def test_batched_hessians_match_autograd_hessian():
    from autograd import hessian

    x = np.random.default_rng(70).dirichlet(np.ones(3), size=4)
    batched = props.free_coordinate_hessians(x, LOGITS, 0.7)
    for h, point in zip(batched, x):
        single = hessian(lambda z: cr.concrete_log_density(anp.concatenate([z, 1 - anp.sum(z, keepdims=True)]), LOGITS, 0.7))
        np.testing.assert_allclose(h, single(point[:2]), rtol=1e-10)


def test_convexity_scan_passes():
    assert verdicts(props.convexity_scan(np.random.default_rng(0), **SCAN).checks) == [True, True]


def test_convexity_scan_fails_without_the_jacobian():
    # x^(-lambda): coefficient lambda (n-1) > 0, concave near the faces even below the threshold
    assert verdicts(props.convexity_scan(np.random.default_rng(0), **SCAN, log_density=no_jacobian).checks) == [False, True]


def test_convexity_scan_fails_when_the_threshold_moves():
    # x^(-lambda-3): convex up to lambda (n-1) = 3, so the bound would not be sharp
    assert verdicts(props.convexity_scan(np.random.default_rng(0), **SCAN, log_density=extra_jacobian).checks) == [True, False]


def test_near_face_checks():
    assert verdicts(props.near_face_checks(LOGITS).checks) == [True, True]
    assert verdicts(props.near_face_checks(LOGITS, log_density=no_jacobian).checks) == [False, True]
    assert verdicts(props.near_face_checks(LOGITS, log_density=extra_jacobian).checks) == [True, False]


def test_interior_mode_found_at_lambda_2_and_not_for_a_log_convex_density():
    found = props.interior_mode(LOGITS, 2.0)
    assert all_passed(found.checks)
    np.testing.assert_allclose(found.data["mode"], [0.5026, 0.1979, 0.2995], atol=1e-3)
    quarter = lambda x, l, t: cr.concrete_log_density(x, l, t / 4)  # the density at lambda = 1/2: no interior mode
    assert not all_passed(props.interior_mode(LOGITS, 2.0, log_density=quarter).checks)


# --- simplex additions -----------------------------------------------------------------------------------


def test_log_ratio_coordinates_round_trip():
    x = np.random.default_rng(0).dirichlet(np.ones(4), size=7)
    np.testing.assert_allclose(simplex.from_log_ratios(simplex.to_log_ratios(x)), x, atol=1e-15)
    far = simplex.from_log_ratios(np.array([800.0, -800.0]))  # no overflow
    assert np.all(np.isfinite(far)) and far[0] == 1.0
    with pytest.raises(ValueError):
        simplex.to_log_ratios(np.ones((2, 1)))


def test_draw_simplex_frame():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert simplex.draw_simplex_frame(ax) is ax and len(ax.texts) == 3
    plt.close(fig)
