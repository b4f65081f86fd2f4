r"""Chapter 1's gradient-estimator facts, as closed forms and as checks that can fail.

Each ``check_*`` function draws the chapter's Monte Carlo sample (its defaults are the chapter's sizes
and seeds), compares it with the closed form it is given -- by default the one derived in the
chapter -- and returns :class:`~concrete_ref.claims.Check` objects (claim, measured value, bound) and,
where the chapter shows one, a table of the measured figures.  ``tests/test_ch1_ch2_checks.py`` calls
the same functions with perturbed formulas and asserts that the checks fail.

**Gaussian node** (Section 1.2).  :math:`X = \mu + \sigma\varepsilon`, :math:`\varepsilon \sim N(0,1)`,
:math:`f(x) = x^2`, :math:`L = \mu^2 + \sigma^2`, :math:`\partial L/\partial\mu = 2\mu`.  Single-sample
estimators of :math:`\partial L/\partial\mu` and their variances (Eq. 1.3):

.. math:: \operatorname{Var}\hat g_{\text{path}} = 4\sigma^2, \quad
   \operatorname{Var}\hat g_{\text{SF}}\big|_{b=0} = \mu^4/\sigma^2 + 14\mu^2 + 15\sigma^2, \quad
   \operatorname{Var}\hat g_{\text{SF}}\big|_{b=L} = 8\mu^2 + 10\sigma^2.

The score :math:`\partial_\mu\log N(X;\mu,\sigma^2) = (X-\mu)/\sigma^2 = \varepsilon/\sigma` has mean 0
and standard deviation :math:`1/\sigma` (its variance is the Fisher information :math:`1/\sigma^2`).
For :math:`f(x) = \cos(\omega x)` at :math:`\mu = 0, \sigma = 1` the variances are
:math:`\tfrac{\omega^2}{2}(1 - e^{-2\omega^2})` (pathwise) and
:math:`\tfrac12 + \tfrac12(1 - 4\omega^2)e^{-2\omega^2}` (score function).

**Discrete node** (Sections 1.3-1.4).  For the Gumbel-max sample
:math:`D(\log\alpha, G) = \text{onehot}(\arg\max_k\{\log\alpha_k + G_k\})` and a fixed noise draw
:math:`G`, the central difference quotient in logit :math:`j` with step :math:`h`,

.. math:: q_h^{(j)}(G) = \frac{f(D(\log\alpha + h e_j, G)) - f(D(\log\alpha - h e_j, G))}{2h},

is non-zero only on an event of probability :math:`O(h)` (the argmax changes inside the step), where
it is of size :math:`O(1/h)`.  Its mean is exactly the difference quotient of the objective,
:math:`\mathbb{E}[q_h^{(j)}] = (L(\log\alpha + he_j) - L(\log\alpha - he_j))/2h \to \partial_j L`, while
:math:`q_h^{(j)}(G) \to 0` for almost every :math:`G`: the limit and the expectation cannot be exchanged
because no integrable function dominates the quotients.

Leave-one-out baseline and the arithmetic-mean analogue of VIMCO: for values
:math:`f_1, \dots, f_S`, :math:`\hat F = \frac1S\sum_j f_j` and :math:`\hat F_{-s}` the same mean with
:math:`f_s` replaced by :math:`b_s = \frac{1}{S-1}\sum_{j\ne s} f_j`,

.. math:: \hat F - \hat F_{-s} = \frac{f_s - b_s}{S}.

VIMCO (Mnih & Rezende, 2016) applies the construction to :math:`\hat L = \log\frac1S\sum_j w_j` and
replaces :math:`w_s` by the *geometric* mean of the other weights (:func:`vimco_signals`).

Bernoulli node: for :math:`D \sim \text{Bernoulli}(p)` with logit :math:`\eta`, the single-sample
score-function estimate :math:`(f(D) - b)(D - p)` of :math:`\partial_\eta\mathbb{E}[f(D)]` has variance
:math:`p(1-p)\big((1-p)(f(1) - b) + p(f(0) - b)\big)^2`, zero at :math:`b = (1-p)f(1) + pf(0)`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from . import estimators as est
from .claims import Check, abs_check, variance_check, z_check

__all__ = [
    "gaussian_variances",
    "cosine_variances",
    "check_gaussian_estimators",
    "check_score_scale",
    "check_cosine_estimators",
    "gumbel_max_state",
    "argmax_difference_quotients",
    "check_argmax_zero_derivative",
    "change_share",
    "check_argmax_exchange",
    "total_variance_se",
    "score_function_total_variance",
    "check_score_function_estimators",
    "loo_signals",
    "arithmetic_vimco_signals",
    "vimco_signals",
    "check_loo_identity",
    "bernoulli_score_variance",
    "check_bernoulli_variance",
    "optimal_baseline",
    "check_optimal_baseline",
    "gaussian_variances_quadrature",
    "check_gaussian_variances_quadrature",
]

GAUSSIAN_CASES = ((0.5, 1.0), (2.0, 1.0), (2.0, 0.5))


# ---------------------------------------------------------------------------------- Gaussian node
def gaussian_variances(mu, sigma) -> dict:
    r"""Eq. (1.3): variances of the single-sample estimates of :math:`\partial_\mu\mathbb{E}[X^2]`."""
    return {"pathwise": 4 * sigma**2 + 0 * mu,
            "score, b = 0": mu**4 / sigma**2 + 14 * mu**2 + 15 * sigma**2,
            "score, b = L": 8 * mu**2 + 10 * sigma**2}


def cosine_variances(omega) -> dict:
    r"""Variances for :math:`f(x) = \cos(\omega x)`, :math:`X \sim N(0, 1)` (pathwise, score function)."""
    e = np.exp(-2 * omega**2)
    return {"pathwise": omega**2 / 2 * (1 - e), "score": 0.5 + 0.5 * (1 - 4 * omega**2) * e}


def _square(x):
    return x**2


def check_gaussian_estimators(cases=GAUSSIAN_CASES, num_estimates: int = 400_000, seed: int = 100,
                              variance_formula=gaussian_variances, gradient_formula=lambda mu, s: 2 * mu,
                              z_bound: float = 4.5):
    """The three estimators of Eq. (1.2) at each (mu, sigma): unbiased for ``gradient_formula`` and with
    the variances of ``variance_formula``, both judged in standard errors.  Returns (checks, rows)."""
    rows, means, vars_ = [], [], []
    for i, (mu, s) in enumerate(cases):
        rng = np.random.default_rng(seed + i)
        v = variance_formula(mu, s)
        samples = {"pathwise": est.gaussian_reparam_estimates(_square, mu, s, rng, num_estimates)[:, 0],
                   "score, b = 0": est.gaussian_score_estimates(_square, mu, s, rng, num_estimates)[:, 0],
                   "score, b = L": est.gaussian_score_estimates(_square, mu, s, rng, num_estimates,
                                                                baseline=mu**2 + s**2)[:, 0]}
        for name, g in samples.items():
            target = gradient_formula(mu, s)
            z = abs(g.mean() - target) / (g.std() / np.sqrt(g.size))
            means.append((g.mean(), target, g.std() / np.sqrt(g.size)))
            vars_.append((g, v[name]))
            rows.append({"mu": mu, "sigma": s, "estimator": name, "mean": g.mean(), "target": target, "z": z,
                         "variance": g.var(), "formula": v[name], "rel_err": abs(g.var() / v[name] - 1)})
    checks = [z_check("every mean equals 2 mu (in standard errors)", [m[0] for m in means],
                      [m[1] for m in means], [m[2] for m in means], z_bound),
              variance_check("every variance equals Eq. (1.3) (in standard errors of the variance)",
                             [g for g, _ in vars_], [v for _, v in vars_], z_bound)]
    return checks, rows


def check_score_scale(sigmas=(0.5, 1.0, 2.0), mu: float = 2.0, num_samples: int = 400_000, seed: int = 110,
                      scale_formula=lambda s: 1 / s, z_bound: float = 4.5):
    r"""The score :math:`\partial_\mu\log N(X;\mu,\sigma^2)` has mean 0 and standard deviation
    ``scale_formula(sigma)`` (default :math:`1/\sigma`).  Returns (checks, rows)."""
    rows, scores = [], []
    for i, s in enumerate(sigmas):
        eps = np.random.default_rng(seed + i).standard_normal(num_samples)
        x = mu + s * eps
        score = (x - mu) / s**2
        scores.append(score)
        rows.append({"sigma": s, "mean": score.mean(), "sd": score.std(), "formula": scale_formula(s),
                     "fisher": score.var(), "fisher_formula": scale_formula(s) ** 2})
    checks = [z_check("the score has mean 0 (in standard errors)", [r["mean"] for r in rows], 0.0,
                      [r["sd"] / np.sqrt(num_samples) for r in rows], z_bound),
              variance_check("its variance is the stated scale squared, 1/sigma^2 (in standard errors)", scores,
                             [r["fisher_formula"] for r in rows], z_bound)]
    return checks, rows


def check_cosine_estimators(omegas=(0.5, 1.0, 2.0, 4.0), num_estimates: int = 200_000, seed: int = 300,
                            variance_formula=cosine_variances, z_bound: float = 4.5):
    r"""Pathwise and score-function variances for :math:`f(x) = \cos(\omega x)` against the closed forms."""
    import autograd.numpy as anp

    rows, samples, targets = [], [], []
    for i, om in enumerate(omegas):
        rng = np.random.default_rng(seed + i)
        gp = est.gaussian_reparam_estimates(lambda x, om=om: anp.cos(om * x), 0.0, 1.0, rng, num_estimates)[:, 0]
        gs = est.gaussian_score_estimates(lambda x, om=om: np.cos(om * x), 0.0, 1.0, rng, num_estimates)[:, 0]
        v = variance_formula(om)
        samples += [gp, gs]
        targets += [v["pathwise"], v["score"]]
        rows.append({"omega": om, "pathwise": gp.var(), "pathwise_formula": v["pathwise"],
                     "score": gs.var(), "score_formula": v["score"]})
    checks = [variance_check("sample variances equal the closed forms (in standard errors of the variance)",
                             samples, targets, z_bound)]
    return checks, rows


# -------------------------------------------------------------------------- discrete node: argmax
def gumbel_max_state(logits, gumbels) -> np.ndarray:
    r"""The Gumbel-max sample :math:`D = \text{onehot}(\arg\max_k\{\log\alpha_k + G_k\})` (Eq. 1.4), row by row."""
    logits = np.asarray(logits, dtype=np.float64)
    return est.one_hot(np.argmax(logits + gumbels, axis=-1), logits.shape[-1])


def argmax_difference_quotients(f, logits, gumbels, step: float, state=gumbel_max_state) -> np.ndarray:
    r"""Central difference quotients :math:`q_h^{(j)}(G)` of :math:`f(D(\log\alpha, G))` in every logit.

    ``gumbels`` has shape ``(N, n)``; the result has shape ``(N, n)`` (column j: the quotient in logit j).
    ``state(logits, gumbels)`` maps the perturbed logits to the point ``f`` is evaluated at (default:
    the Gumbel-max one-hot state).
    """
    logits = np.asarray(logits, dtype=np.float64)
    n = logits.shape[-1]

    def value(lg):
        return np.asarray(f(state(lg, gumbels)), dtype=np.float64)

    return np.stack([(value(logits + step * e) - value(logits - step * e)) / (2 * step) for e in np.eye(n)],
                    axis=-1)


def check_argmax_zero_derivative(f, logits, num_samples: int = 100_000, seed: int = 400, step: float = 1e-6,
                                 state=gumbel_max_state):
    """At a tiny step, no sample has a non-zero difference quotient: the pathwise derivative of the
    piecewise-constant ``state`` (default: Gumbel-max, Eq. 1.4) is 0.

    Returns (checks, counts) with ``counts`` the exact integers shown (non-zero samples, samples)."""
    g = np.random.default_rng(seed).gumbel(size=(num_samples, np.shape(logits)[-1]))
    q = argmax_difference_quotients(f, logits, g, step, state)
    nonzero = int(np.count_nonzero(np.any(q != 0, axis=-1)))
    return [Check(f"samples with a non-zero quotient at step {step:g}", "count", nonzero, 1, "<")], \
        {"nonzero": nonzero, "samples": num_samples, "mean": q.mean(axis=0)}


def change_share(step, probs):
    r"""Probability that the Gumbel-max state changes between logits :math:`\log\alpha \mp h e_j`, per logit j.

    The state changes exactly when the gap :math:`\Delta_j = (\log\alpha_j + G_j) - \max_{i\ne j}(\log\alpha_i + G_i)`
    lies in :math:`(-h, h]`; :math:`\Delta_j` is Logistic with location :math:`\ell_j = \log(p_j / (1 - p_j))`
    (a difference of two Gumbels, Chapter 2), so the probability is
    :math:`\sigma(h - \ell_j) - \sigma(-h - \ell_j) = 2h\,p_j(1 - p_j) + O(h^3)`."""
    p = np.asarray(probs, dtype=np.float64)
    ell = np.log(p) - np.log1p(-p)
    sig = lambda t: 1.0 / (1.0 + np.exp(-t))
    return sig(step - ell) - sig(-step - ell)


def check_argmax_exchange(f, logits, num_samples: int = 200_000, seed: int = 401,
                          steps=(0.1, 0.03, 0.01, 0.003), gradient_formula=est.exact_gradient,
                          share_formula=change_share, z_bound: float = 4.5):
    r"""The exchange of limit and expectation fails for the Gumbel-max sample.

    For each step :math:`h`: the mean quotient over the samples equals ``gradient_formula`` (in standard
    errors; the central difference's own bias, :math:`O(h^2)`, is far below them), while the share of
    samples whose quotient in logit j is non-zero is ``share_formula(h, p)`` (default
    :func:`change_share`, about :math:`2h\,p_j(1-p_j)`: it vanishes with :math:`h`; in binomial standard
    errors), and the non-zero quotients are differences of :math:`f` over :math:`2h`: they grow like
    :math:`1/h`.  ``f`` must take different values at different states.  Returns (checks, rows)."""
    logits = np.asarray(logits, dtype=np.float64)
    p = est.categorical_probs(logits)
    g = np.random.default_rng(seed).gumbel(size=(num_samples, logits.shape[-1]))
    grad = np.asarray(gradient_formula(f, logits))
    rows, zs, share_zs = [], [], []
    for h in steps:
        q = argmax_difference_quotients(f, logits, g, h)
        share = np.mean(q != 0, axis=0)
        expected = np.asarray(share_formula(h, p), dtype=np.float64)
        share_zs.append(z_check("", share, expected, np.sqrt(expected * (1 - expected) / num_samples)).value)
        mean, se = q.mean(axis=0), q.std(axis=0) / np.sqrt(num_samples)
        zs.append(z_check("", mean, grad, se).value)
        size = float(np.abs(q[q != 0]).mean()) if np.any(q != 0) else 0.0
        rows.append({"step": h, "share_nonzero": share, "share_formula": expected, "mean": mean,
                     "max_z": zs[-1], "mean_abs_nonzero": size, "size_times_step": size * h})
    checks = [Check("mean quotient equals the gradient p * (f - L) at every step (in standard errors)",
                    "max |z|", max(zs), z_bound, "<"),
              Check("share of samples with a non-zero quotient equals the formula, ~2h p(1 - p) (in SE)",
                    "max |z|", max(share_zs), z_bound, "<")]
    return checks, rows


# ---------------------------------------------------------------- discrete node: score function
def total_variance_se(estimates) -> tuple[float, float]:
    r"""(total variance :math:`\operatorname{tr}\operatorname{Cov}\hat g`, its standard error) of ``(R, n)`` estimates.

    The total variance is the mean of :math:`\lVert\hat g_r - \bar g\rVert^2`; its standard error is the
    standard deviation of those squared norms over :math:`\sqrt R`."""
    g = np.asarray(estimates, dtype=np.float64)
    sq = np.sum((g - g.mean(axis=0)) ** 2, axis=-1)
    return float(sq.mean()), float(sq.std() / np.sqrt(sq.size))


def score_function_total_variance(f, logits, baseline=0.0, num_samples: int = 1) -> float:
    r"""Exact total variance of the score-function estimate (1.6) with a *constant* baseline ``b``.

    :math:`\frac1S\big(\sum_k p_k (f(e_k) - b)^2\lVert e_k - p\rVert^2 - \lVert\nabla L\rVert^2\big)`, by
    enumeration of the n states."""
    logits = np.asarray(logits, dtype=np.float64)
    p = est.categorical_probs(logits)
    eye = np.eye(logits.shape[-1])
    values = np.asarray(f(eye), dtype=np.float64)
    second = np.sum(p * (values - baseline) ** 2 * np.sum((eye - p) ** 2, axis=-1))
    grad = est.exact_gradient(f, logits)
    return float((second - np.sum(grad**2)) / num_samples)


SCORE_CASES = (("b = 0, S = 1", 1, None), ("b = L, S = 1", 1, "L"), ("b = 0, S = 4", 4, None),
               ("b = L, S = 4", 4, "L"), ("leave-one-out, S = 4", 4, "loo"))


def check_score_function_estimators(f, logits, num_estimates: int = 200_000, seed: int = 500,
                                    cases=SCORE_CASES, gradient_formula=est.exact_gradient,
                                    variance_formula=score_function_total_variance, z_bound: float = 4.5):
    """The score-function estimators (1.6): unbiased for ``gradient_formula``; with a constant baseline,
    total variance equal to ``variance_formula``; leave-one-out below the plain S = 4 estimator.
    Returns (checks, rows)."""
    logits = np.asarray(logits, dtype=np.float64)
    grad = np.asarray(gradient_formula(f, logits))
    L = float(est.exact_objective(f, logits))
    rows, zs, var_z = [], [], []
    for i, (name, s, b) in enumerate(cases):
        baseline = L if b == "L" else b
        g = est.score_function_estimates(f, logits, np.random.default_rng(seed + i), num_estimates, s, baseline)
        summary = est.estimator_summary(g, grad)
        tv, tv_se = total_variance_se(g)
        exact_var = None if b == "loo" else variance_formula(f, logits, 0.0 if baseline is None else baseline, s)
        if exact_var is not None:
            var_z.append(abs(tv - exact_var) / tv_se)
        zs.append(summary["z"])
        rows.append({"estimator": name, "mean": summary["mean"], "z": summary["z"], "variance": tv,
                     "exact_variance": exact_var})
    var = {r["estimator"]: r["variance"] for r in rows}
    checks = [Check("every estimator is unbiased for p * (f - L) (in standard errors)", "max |z|", max(zs),
                    z_bound, "<"),
              Check("constant baselines: total variance equals the exact one (in standard errors)",
                    "max |z|", max(var_z), z_bound, "<"),
              Check("leave-one-out variance below plain S = 4", "variance ratio",
                    var["leave-one-out, S = 4"] / var["b = 0, S = 4"], 1.0, "<")]
    return checks, rows


def loo_signals(values) -> np.ndarray:
    r""":math:`f_s - b_s` with the leave-one-out mean :math:`b_s = \frac{1}{S-1}\sum_{j\ne s} f_j` (last axis: S)."""
    v = np.asarray(values, dtype=np.float64)
    s = v.shape[-1]
    return v - (v.sum(axis=-1, keepdims=True) - v) / (s - 1)


def arithmetic_vimco_signals(values) -> np.ndarray:
    r"""VIMCO's construction on the arithmetic mean: :math:`\hat F - \hat F_{-s}`, :math:`f_s` replaced by :math:`b_s`."""
    v = np.asarray(values, dtype=np.float64)
    s = v.shape[-1]
    b = (v.sum(axis=-1, keepdims=True) - v) / (s - 1)
    full = v.mean(axis=-1, keepdims=True)
    return full - (full * s - v + b) / s


def vimco_signals(log_weights) -> np.ndarray:
    r"""VIMCO's own signals for :math:`\hat L = \log\frac1S\sum_j w_j`: :math:`\hat L - \hat L_{-s}`, with
    :math:`\log w_s` replaced by the mean of the other log weights (the geometric mean of the other weights)."""
    lw = np.asarray(log_weights, dtype=np.float64)
    s = lw.shape[-1]
    full = logsumexp(lw, axis=-1, keepdims=True) - np.log(s)
    others = (lw.sum(axis=-1, keepdims=True) - lw) / (s - 1)
    out = np.empty_like(lw)
    for i in range(s):
        replaced = lw.copy()
        replaced[..., i] = others[..., i]
        out[..., i] = full[..., 0] - (logsumexp(replaced, axis=-1) - np.log(s))
    return out


def check_loo_identity(num_sets: int = 10_000, num_samples: int = 4, seed: int = 510,
                       identity=lambda v: loo_signals(v) / v.shape[-1], tolerance: float = 1e-12):
    r""":math:`\hat F - \hat F_{-s} = (f_s - b_s)/S` on random value sets (``identity`` is the right side);
    VIMCO's log-mean signals are not (f_s - b_s)/S.  Returns (checks, worst relative difference to VIMCO)."""
    v = np.random.default_rng(seed).normal(size=(num_sets, num_samples)) * 3.0
    lhs = arithmetic_vimco_signals(v)
    err = np.max(np.abs(lhs - identity(v))) / np.max(np.abs(lhs))
    vimco = vimco_signals(v)
    vimco_diff = float(np.max(np.abs(vimco - loo_signals(v) / num_samples)))
    checks = [abs_check("arithmetic-mean VIMCO signal = (f_s - b_s)/S", err, tolerance, "max relative |error|"),
              Check("VIMCO's own (log-mean) signals differ from (f_s - b_s)/S", "max |difference|", vimco_diff,
                    0.1, ">")]
    return checks, vimco_diff


# ------------------------------------------------------------------------ exercises: Bernoulli, b*
def bernoulli_score_variance(p, f0, f1, baseline=0.0):
    r""":math:`\operatorname{Var}[(f(D)-b)(D-p)] = p(1-p)\big((1-p)(f(1)-b) + p(f(0)-b)\big)^2`, D ~ Bernoulli(p)."""
    return p * (1 - p) * ((1 - p) * (f1 - baseline) + p * (f0 - baseline)) ** 2


def check_bernoulli_variance(cases=((0.3, 1.0, 4.0), (0.8, -2.0, 1.0), (0.5, 3.0, 3.5)),
                             num_estimates: int = 400_000, seed: int = 520,
                             variance_formula=bernoulli_score_variance, z_bound: float = 4.5):
    r"""Monte Carlo variance of :math:`(f(D) - b)(D - p)` (``estimators.score_function_estimates`` with two
    states, logits :math:`(0, \eta)`) at :math:`b = 0` against ``variance_formula``, and zero variance at
    :math:`b^* = (1-p)f(1) + pf(0)`.  Returns (checks, rows)."""
    rows, samples, targets, zero = [], [], [], []
    for i, (p, f0, f1) in enumerate(cases):
        logits = np.array([0.0, np.log(p / (1 - p))])
        f = lambda d, f0=f0, f1=f1: f0 * d[..., 0] + f1 * d[..., 1]
        g = est.score_function_estimates(f, logits, np.random.default_rng(seed + i), num_estimates)[:, 1]
        b_star = (1 - p) * f1 + p * f0
        g_star = est.score_function_estimates(f, logits, np.random.default_rng(seed + i), 1000, 1, b_star)[:, 1]
        samples.append(g)
        targets.append(variance_formula(p, f0, f1))
        zero.append(float(np.std(g_star)))
        rows.append({"p": p, "f0": f0, "f1": f1, "variance": g.var(), "formula": targets[-1],
                     "sd_at_b_star": zero[-1]})
    checks = [variance_check("variance at b = 0 equals p(1-p)((1-p)f(1) + p f(0))^2 (in standard errors)",
                             samples, targets, z_bound),
              abs_check("at b* = (1-p)f(1) + p f(0) every estimate is the same", zero, 1e-12,
                        "max standard deviation")]
    return checks, rows


def optimal_baseline(f, logits) -> float:
    r"""The constant baseline minimising the total variance of (1.6):
    :math:`b^* = \mathbb{E}[f(D)\lVert D - p\rVert^2] / \mathbb{E}[\lVert D - p\rVert^2]`."""
    logits = np.asarray(logits, dtype=np.float64)
    p = est.categorical_probs(logits)
    eye = np.eye(logits.shape[-1])
    w = p * np.sum((eye - p) ** 2, axis=-1)
    return float(np.sum(w * np.asarray(f(eye), dtype=np.float64)) / np.sum(w))


def check_optimal_baseline(f, logits, num_estimates: int = 200_000, seed: int = 530,
                           baseline_formula=optimal_baseline, z_bound: float = 4.5):
    """The total variance at ``baseline_formula`` is the minimum over constants (exact, on a grid of 2001
    baselines) and below that at b = L; the Monte Carlo variance agrees with the exact one.
    Returns (checks, figures)."""
    logits = np.asarray(logits, dtype=np.float64)
    b_star = baseline_formula(f, logits)
    L = float(est.exact_objective(f, logits))
    grid = np.linspace(b_star - 10, b_star + 10, 2001)
    exact = np.array([score_function_total_variance(f, logits, b) for b in grid])
    at_star = score_function_total_variance(f, logits, b_star)
    g = est.score_function_estimates(f, logits, np.random.default_rng(seed), num_estimates, 1, b_star)
    tv, se = total_variance_se(g)
    checks = [Check("no constant on the grid has a lower total variance than b*", "min over grid - Var(b*)",
                    float(exact.min() - at_star), -1e-12, ">"),
              Check("b* has a lower total variance than b = L", "Var(b*) / Var(b = L)",
                    at_star / score_function_total_variance(f, logits, L), 1.0, "<"),
              Check("Monte Carlo total variance at b* equals the exact one (in standard errors)", "|z|",
                    abs(tv - at_star) / se, z_bound, "<")]
    return checks, {"b_star": b_star, "L": L, "var_star": at_star,
                    "var_L": score_function_total_variance(f, logits, L), "var_mc": tv}


def gaussian_variances_quadrature(mu, sigma, num_nodes: int = 20) -> dict:
    r"""The variances of Eq. (1.3) computed without Monte Carlo: Gauss-Hermite quadrature over
    :math:`\varepsilon \sim N(0, 1)` (probabilists' nodes), exact for polynomials of degree below
    ``2 * num_nodes``; every estimator of Eq. (1.2) is a polynomial of degree at most 3 in :math:`\varepsilon`."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(num_nodes)
    weights = weights / weights.sum()
    x = mu + sigma * nodes
    estimates = {"pathwise": 2 * x, "score, b = 0": x**2 * nodes / sigma,
                 "score, b = L": (x**2 - (mu**2 + sigma**2)) * nodes / sigma}
    return {k: float(np.sum(weights * g**2) - np.sum(weights * g) ** 2) for k, g in estimates.items()}


def check_gaussian_variances_quadrature(num_points: int = 12, seed: int = 540, variance_formula=gaussian_variances,
                                        tolerance: float = 1e-10):
    """Eq. (1.3) against :func:`gaussian_variances_quadrature` at random (mu, sigma), mu in [-3, 3],
    sigma in [0.2, 3]: the largest relative difference must stay below ``tolerance``."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for mu, s in zip(rng.uniform(-3, 3, num_points), rng.uniform(0.2, 3, num_points)):
        quad = gaussian_variances_quadrature(mu, s)
        formula = variance_formula(mu, s)
        worst = max(worst, max(abs(formula[k] / quad[k] - 1) for k in quad))
    return [abs_check(f"Eq. (1.3) equals exact quadrature at {num_points} random (mu, sigma)", worst, tolerance,
                      "max relative |difference|")]
