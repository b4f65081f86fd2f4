"""The checks of chapters 1 and 2 can fail (issue 23 §2).

Each chapter check is a function of the package that takes the formula it tests as an argument
(``concrete_ref.estimator_checks``, ``concrete_ref.variational``, ``concrete_ref.gumbel_race``).  Every test
here runs the check as the chapter does (same sizes and seeds) twice: with the chapter's formula it
passes, and with a perturbed formula -- a wrong coefficient, a missing term, a shifted location, the
claim the chapter corrects -- it fails.  A check that passed whatever the formula would test nothing.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pytest

from concrete_ref import claims
from concrete_ref import estimator_checks as ec
from concrete_ref import estimators as est
from concrete_ref import gumbel_race as gr
from concrete_ref import toy_models as toy
from concrete_ref import variational as vi

# ------------------------------------------------------------------------------------ chapter 1 setting
LOGITS = np.log([0.5, 0.3, 0.2])
BETA = np.array([1.0, -2.0, 3.0])


def f(d):
    return anp.sum(d * BETA, axis=-1) ** 2


MODEL = toy.random_vae(4, 8, np.random.default_rng(1))
X = (np.random.default_rng(101).random(8) < 0.5).astype(float)
Q_LOGITS = np.zeros(4)
LOG_JOINT = MODEL.log_joint_states(X)


def passes(checks) -> bool:
    return claims.all_passed(checks)


def fails(checks) -> bool:
    return not claims.all_passed(checks)


def _with(base, **changes):
    """A perturbed variant of a dict-valued formula: ``changes`` maps a key to a replacement function."""
    def formula(*args):
        out = dict(base(*args))
        for key, fn in changes.items():
            out[key] = fn(*args)
        return out
    return formula


# ------------------------------------------------------------------------------------------ Check itself
def test_check_lines():
    c = claims.Check("claim", "max |z|", 1.5, 4.5)
    assert c.passed and c.verdict() == "claim: max |z| < 4.5: True"
    assert "1.5" in c.margin() and "33% of it" in c.margin() and "1.5" not in c.verdict()
    assert not claims.Check("claim", "p", 1e-5, 1e-3, ">").passed
    assert not claims.Check("claim", "x", float("nan"), 1.0).passed
    with pytest.raises(ValueError):
        claims.Check("claim", "x", 1.0, 1.0, "<=")


# ------------------------------------------------------------------------------------------- chapter 1
def test_gaussian_estimators():
    assert passes(ec.check_gaussian_estimators()[0])
    wrong_mu2 = _with(ec.gaussian_variances, **{"score, b = 0": lambda mu, s: mu**4 / s**2 + 13 * mu**2 + 15 * s**2})
    assert fails(ec.check_gaussian_estimators(variance_formula=wrong_mu2)[0])
    wrong_path = _with(ec.gaussian_variances, pathwise=lambda mu, s: 4.1 * s**2)
    assert fails(ec.check_gaussian_estimators(variance_formula=wrong_path)[0])
    assert fails(ec.check_gaussian_estimators(gradient_formula=lambda mu, s: 2.02 * mu)[0])


def test_score_scale_is_not_unit():
    assert passes(ec.check_score_scale()[0])
    # the claim the chapter corrects: "a score of unit scale"
    assert fails(ec.check_score_scale(scale_formula=lambda s: 1.0)[0])
    assert fails(ec.check_score_scale(scale_formula=lambda s: 1.02 / s)[0])


def test_cosine_estimators():
    assert passes(ec.check_cosine_estimators()[0])
    wrong = _with(ec.cosine_variances, score=lambda om: 0.5 + 0.5 * (1 - 3 * om**2) * np.exp(-2 * om**2))
    assert fails(ec.check_cosine_estimators(variance_formula=wrong)[0])
    wrong = _with(ec.cosine_variances, pathwise=lambda om: om**2 / 2)
    assert fails(ec.check_cosine_estimators(variance_formula=wrong)[0])


def test_argmax_zero_derivative():
    assert passes(ec.check_argmax_zero_derivative(f, LOGITS)[0])
    # a continuous state (the softmax of Chapter 3) has non-zero derivatives
    soft = lambda lg, g: est.categorical_probs(lg + g)
    assert fails(ec.check_argmax_zero_derivative(f, LOGITS, state=soft)[0])


def test_argmax_exchange():
    assert passes(ec.check_argmax_exchange(f, LOGITS)[0])
    assert fails(ec.check_argmax_exchange(f, LOGITS, gradient_formula=lambda f_, lg: 1.1 * est.exact_gradient(f_, lg))[0])
    # the gradient without its baseline term, p * f
    no_baseline = lambda f_, lg: est.categorical_probs(lg) * np.asarray(f_(np.eye(3)))
    assert fails(ec.check_argmax_exchange(f, LOGITS, gradient_formula=no_baseline)[0])
    assert fails(ec.check_argmax_exchange(f, LOGITS, share_formula=lambda h, p: h * p * (1 - p))[0])
    assert fails(ec.check_argmax_exchange(f, LOGITS, share_formula=lambda h, p: 2.2 * h * p * (1 - p))[0])


def test_score_function_estimators():
    assert passes(ec.check_score_function_estimators(f, LOGITS)[0])
    no_baseline = lambda f_, lg: est.categorical_probs(lg) * np.asarray(f_(np.eye(3)))
    assert fails(ec.check_score_function_estimators(f, LOGITS, gradient_formula=no_baseline)[0])

    def no_mean_term(f_, lg, b=0.0, s=1):  # forgets to subtract the squared mean
        grad = est.exact_gradient(f_, lg)
        return ec.score_function_total_variance(f_, lg, b, s) + np.sum(grad**2) / s

    assert fails(ec.check_score_function_estimators(f, LOGITS, variance_formula=no_mean_term)[0])


def test_loo_identity():
    assert passes(ec.check_loo_identity()[0])
    assert fails(ec.check_loo_identity(identity=lambda v: ec.loo_signals(v) / (v.shape[-1] - 1))[0])


def test_elbo():
    assert passes(vi.check_elbo(LOG_JOINT, Q_LOGITS)[0])
    # the ELBO without the entropy term -E_q[log q]
    no_entropy = lambda lj, lq: float(np.sum(np.exp(lq - np.logaddexp.reduce(lq)) * lj))
    assert fails(vi.check_elbo(LOG_JOINT, Q_LOGITS, elbo_formula=no_entropy)[0])
    assert passes(vi.check_elbo_random_q(LOG_JOINT)[0])
    assert fails(vi.check_elbo_random_q(LOG_JOINT, elbo_formula=lambda lj, lq: vi.elbo(lj, lq) + 1e-3)[0])


def test_iw_bounds():
    ref = lambda m: toy.multi_sample_bound(MODEL, X, Q_LOGITS, m)
    assert passes(vi.check_iw_bounds(LOG_JOINT, Q_LOGITS, reference=ref)[0])
    log_of_sum = lambda lj, lq, m: vi.iw_bound(lj, lq, m) + np.log(m)  # log sum instead of log mean
    assert fails(vi.check_iw_bounds(LOG_JOINT, Q_LOGITS, bound_formula=log_of_sum)[0])
    mean_of_logs = lambda lj, lq, m: vi.elbo(lj, lq) - 1e-9 * m  # E[mean of log w]: decreasing
    assert fails(vi.check_iw_bounds(LOG_JOINT, Q_LOGITS, bound_formula=mean_of_logs)[0])
    # a wrong count-vector sum (1/(m+1) instead of 1/m) disagrees with the tuple enumeration
    wrong_norm = lambda lj, lq, m: vi.iw_bound(lj, lq, m) + np.log(m / (m + 1))
    assert fails(vi.check_iw_bounds(LOG_JOINT, Q_LOGITS, ms=range(1, 6), bound_formula=wrong_norm, reference=ref)[0])


def test_iw_gap():
    assert passes(vi.check_iw_gap(LOG_JOINT, Q_LOGITS)[0])
    assert fails(vi.check_iw_gap(LOG_JOINT, Q_LOGITS, gap_formula=lambda lj, lq: 2 * vi.iw_gap_constant(lj, lq))[0])
    assert fails(vi.check_iw_gap(LOG_JOINT, Q_LOGITS, gap_formula=lambda lj, lq: 1.05 * vi.iw_gap_constant(lj, lq))[0])


def test_zero_weight():
    zero_joint = LOG_JOINT.copy()
    zero_joint[3] = -np.inf
    zero_q = np.log([0.3, 0.3, 0.3, 0.1])
    assert passes(vi.check_zero_weight(zero_joint, zero_q)[0])
    # an implementation that drops the zero weights (as if q covered only the model's support)
    drops_zeros = lambda lj, lq, m: vi.iw_bound(lj[:3], lq[:3], m)
    assert fails(vi.check_zero_weight(zero_joint, zero_q, bound_formula=drops_zeros)[0])


def test_subset_average():
    assert passes(vi.check_subset_average())
    assert fails(vi.check_subset_average(average=lambda w, k: w[..., :k].mean(axis=-1)))


def test_bound_equality():
    assert passes(vi.check_bound_equality(LOG_JOINT))
    assert fails(vi.check_bound_equality(LOG_JOINT, bound_formula=lambda lj, lq, m: vi.iw_bound(lj, lq, m)
                                         + np.log(m / (m + 1))))


def test_bernoulli_variance():
    assert passes(ec.check_bernoulli_variance()[0])
    # the weights the wrong way round: p f(1) + (1 - p) f(0)
    swapped = lambda p, f0, f1, b=0.0: p * (1 - p) * (p * (f1 - b) + (1 - p) * (f0 - b)) ** 2
    assert fails(ec.check_bernoulli_variance(variance_formula=swapped)[0])


def test_optimal_baseline():
    assert passes(ec.check_optimal_baseline(f, LOGITS)[0])
    assert fails(ec.check_optimal_baseline(f, LOGITS, baseline_formula=lambda f_, lg: float(est.exact_objective(f_, lg)))[0])
    assert fails(ec.check_optimal_baseline(f, LOGITS, baseline_formula=lambda f_, lg: ec.optimal_baseline(f_, lg) + 0.05)[0])


def test_gaussian_variances_quadrature():
    assert passes(ec.check_gaussian_variances_quadrature())
    wrong = _with(ec.gaussian_variances, **{"score, b = L": lambda mu, s: 8 * mu**2 + 10.001 * s**2})
    assert fails(ec.check_gaussian_variances_quadrature(variance_formula=wrong))


# ------------------------------------------------------------------------------------------- chapter 2
def test_gumbel_law():
    assert passes(gr.check_gumbel_law()[0])
    assert fails(gr.check_gumbel_law(mean=np.euler_gamma + 0.02)[0])
    assert fails(gr.check_gumbel_law(variance=np.pi**2 / 6 * 1.03)[0])
    assert fails(gr.check_gumbel_law(cdf=lambda g: gr.gumbel_cdf(g, 0.01))[0])
    assert fails(gr.check_gumbel_law(log_density=lambda g: -g - np.exp(-g) + 1e-3)[0])


@pytest.mark.parametrize("which", ["paper", "random"])
def test_gumbel_max_frequencies(which):
    alpha, seed = (gr.ALPHA, 2) if which == "paper" else (np.random.default_rng(1).gamma(1.0, size=10), 3)
    assert passes(gr.check_gumbel_max_frequencies(alpha, seed=seed)[0])
    tempered = lambda a: a**1.02 / np.sum(a**1.02)
    assert fails(gr.check_gumbel_max_frequencies(alpha, seed=seed, probs_formula=tempered)[0])


def test_max_and_argmax():
    assert passes(gr.check_max_and_argmax()[0])
    assert fails(gr.check_max_and_argmax(location_formula=lambda a: float(np.log(a.sum())) + 0.03)[0])
    assert fails(gr.check_max_and_argmax(location_formula=lambda a: float(np.log(a.max())))[0])


def test_logistic():
    assert passes(gr.check_logistic()[0])
    assert fails(gr.check_logistic(prob_formula=lambda r: r / (1 + r) + 0.005)[0])
    assert fails(gr.check_logistic(cdf=lambda x: 1 / (1 + np.exp(-(x - 0.03))))[0])


def test_race():
    assert passes(gr.check_race()[0])
    assert fails(gr.check_race(rate_formula=lambda a: float(np.sum(a)) * 1.01)[0])
    assert fails(gr.check_race(win_formula=lambda a: a**2 / np.sum(a**2))[0])


def test_race_memoryless():
    assert passes(gr.check_race_memoryless())
    assert fails(gr.check_race_memoryless(rate_formula=lambda a, i: a[i] * 1.03))
    # the remaining time at the rate of all the other clocks together
    assert fails(gr.check_race_memoryless(rate_formula=lambda a, i: float(np.sum(a)) - a[i]))


def test_top_k():
    assert passes(gr.check_top_k()[0])
    with_replacement = lambda a, order: float(np.prod(a[list(order)]) / a.sum() ** len(order))
    assert fails(gr.check_top_k(prob_formula=with_replacement)[0])

    def renormalised_with_replacement(a, order):  # drawn with replacement, ties removed
        probs = a / a.sum()
        total = 1 - np.sum(probs**2)
        return float(np.prod(probs[list(order)]) / total)

    assert fails(gr.check_top_k(prob_formula=renormalised_with_replacement)[0])


def test_max_stability():
    assert passes(gr.check_max_stability())
    assert fails(gr.check_max_stability(location_formula=lambda n: float(np.log(n)) + 0.03))


def test_exponential_max():
    assert passes(gr.check_exponential_max()[0])
    assert fails(gr.check_exponential_max(constant=np.exp(-2))[0])
    assert fails(gr.check_exponential_max(constant=2 * np.exp(-2) * 1.02)[0])


def test_normal_noise():
    assert passes(gr.check_normal_noise()[0])
    # with Gumbel noise the frequencies do follow Eq. (9): the claim "far from Eq. (9)" fails
    gumbel = lambda rng, shape: rng.gumbel(size=shape)
    assert fails(gr.check_normal_noise(noise=gumbel)[0])
