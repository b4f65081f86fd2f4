r"""Numerical checks of the Concrete density (Eq. 11) and of Proposition 1, as functions that can fail.

Each ``*_checks`` function tests one claim of Chapter 3 and returns :class:`~concrete_ref.checks.Check`
records (the measured worst case beside its tolerance).  The formula under test is an argument --
``log_density`` (default :func:`~concrete_ref.concrete_log_density`), ``sampler``, or the bracket
formula -- so that a perturbed formula (a dropped :math:`(n-1)!`, :math:`\lambda^{n-2}` for
:math:`\lambda^{n-1}`) can be passed in and seen to fail (``tests/test_ch3_checks.py``).  Every
``log_density`` is called as ``log_density(x, logits, temperature)`` on a batch ``x`` of shape
``(M, n)``; for the Hessians it must be autograd-traceable.

**Normalisation** (:func:`integral_checks`): :math:`\int p = 1` by ``quad`` for :math:`n = 2` (over the
smaller coordinate on each half, so that no coordinate is computed as :math:`1 - (\text{nearly } 1)`),
by ``dblquad`` in :math:`(x_1, x_2)` and by ``cubature`` in the log-ratio coordinates
:math:`w_k = \log(x_k/x_n)` (where the integrand :math:`p(x)\prod_k x_k` is smooth) for :math:`n = 3`.

**Regions** (:func:`region_checks`, :math:`n = 3`): with :math:`W_k = \log(X_k/X_3) = (Z_k - Z_3)/\lambda`,

.. math:: P(W_1 \le a, W_2 \le b) = \frac{\alpha_3}{\alpha_3 + \alpha_1 e^{-\lambda a} + \alpha_2 e^{-\lambda b}}
   \qquad (3.9)

gives every box probability exactly (inclusion-exclusion), without (11).

**Rounding** (:func:`rounding_checks`): :math:`\arg\max_k X_k = \arg\max_k (\log\alpha_k + G_k)`, so on
the same noise the sampler must pick the Gumbel-max vertex, and :math:`P(\arg\max X = k) =
\alpha_k/\sum_i\alpha_i`.

**Zero temperature** (:func:`zero_temperature_checks`): with :math:`M` the winner's margin over the
runner-up, :math:`X_k > 1 - \epsilon` is bracketed by :math:`M > \lambda\log((n-1)(1-\epsilon)/\epsilon)`
and :math:`M > \lambda\log((1-\epsilon)/\epsilon)`, and

.. math:: P(k \text{ wins by more than } m) = \frac{\alpha_k}{\alpha_k + e^{m}\sum_{i\ne k}\alpha_i}. \qquad (3.10)

**Log-convexity** (:func:`convexity_scan`): the Hessian of :math:`\log p` in the free coordinates
:math:`(x_1, \dots, x_{n-1})`, batched with two passes of autograd's ``elementwise_grad``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import autograd.numpy as anp
import numpy as np
from autograd import elementwise_grad, grad, hessian
from scipy import integrate, optimize, stats

from .checks import Check
from .concrete import concrete_log_density, concrete_sample, exp_concrete_sample
from .gumbel import gumbel_max_sample
from .simplex import from_log_ratios

__all__ = [
    "integral_n2",
    "integral_dblquad",
    "integral_log_ratios",
    "integral_checks",
    "region_probabilities_exact",
    "region_probabilities_quadrature",
    "region_checks",
    "moments_quadrature",
    "moment_checks",
    "rounding_checks",
    "win_by_probability",
    "vertex_brackets",
    "zero_temperature_checks",
    "free_coordinate_hessians",
    "scaled_smallest_eigenvalues",
    "convexity_scan",
    "near_face_checks",
    "interior_mode",
    "Results",
]


@dataclass
class Results:
    """What a ``*_checks`` function returns: its :class:`Check` records and the per-case data behind them."""

    checks: list
    data: dict = field(default_factory=dict)


# --- normalisation ----------------------------------------------------------------------------------


def _log_ratio_integrand(w, logits, temperature, log_density):
    """:math:`p(x) \\prod_k x_k` at :math:`x = \\operatorname{softmax}(w, 0)`, as exp of a sum of logs."""
    x = from_log_ratios(w)
    return np.exp(log_density(x, logits, temperature) + np.log(x).sum(-1))


def integral_n2(logits, temperature, log_density=concrete_log_density) -> float:
    r""":math:`\int_0^1 p(t, 1 - t)\, dt` by ``quad``, split at 1/2, each half over its smaller coordinate."""
    p = lambda x: float(np.exp(log_density(np.array([x]), logits, temperature))[0])
    halves = (lambda t: [t, 1 - t], lambda t: [1 - t, t])
    return float(sum(integrate.quad(lambda t: p(x_of(t)), 0, 0.5, limit=200, epsabs=1e-11, epsrel=1e-11)[0]
                     for x_of in halves))


def integral_dblquad(logits, temperature, log_density=concrete_log_density, tol=1e-7):
    r""":math:`\int_0^1\int_0^{1-x_1} p(x_1, x_2, 1 - x_1 - x_2)\, dx_2\, dx_1` (:math:`n = 3`) by ``dblquad``.

    Returns ``(value, evaluations)``: the number of density evaluations grows quickly as the vertex
    singularities :math:`h^{\lambda - 2}` sharpen at lower temperatures.
    """
    calls = [0]

    def dens(x2, x1):
        if x1 + x2 >= 1:
            return 0.0
        calls[0] += 1
        return float(np.exp(log_density(np.array([[x1, x2, 1 - x1 - x2]]), logits, temperature))[0])
    value = float(integrate.dblquad(dens, 0, 1, 0, lambda x1: 1 - x1, epsabs=tol, epsrel=tol)[0])
    return value, calls[0]


def integral_log_ratios(logits, temperature, log_density=concrete_log_density, bound=32.0, rtol=1e-10, atol=1e-12):
    r""":math:`\int_{\mathbb{R}^{n-1}} p(\operatorname{softmax}(w, 0)) \prod_k x_k\, dw` by ``cubature``.

    Over the box :math:`|w_k| \le` ``bound``:math:`/\lambda` (each :math:`\lambda W_k` is Logistic, so the
    mass outside is below :math:`2(n-1)\max(\alpha_k/\alpha_n + \alpha_n/\alpha_k) e^{-\text{bound}}`).
    Returns ``(estimate, converged)``.
    """
    n = np.shape(logits)[-1]
    b = bound / temperature
    res = integrate.cubature(lambda w: _log_ratio_integrand(w, logits, temperature, log_density),
                             [-b] * (n - 1), [b] * (n - 1), rtol=rtol, atol=atol)
    return float(res.estimate), res.status == "converged"


def integral_checks(log_density=concrete_log_density, *,
                    n2_alphas=((2.0, 0.5), (1.0, 1.0), (0.1, 5.0)), n2_temperatures=(0.25, 0.5, 1.0, 2.0),
                    dblquad_cases=(((2.0, 0.5, 1.0), 2.0), ((1.0, 1.0, 1.0), 2.0)),
                    n3_alphas=((2.0, 0.5, 1.0), (1.0, 1.0, 1.0), (0.1, 1.0, 5.0)),
                    n3_temperatures=(0.1, 0.25, 0.5, 1.0, 2.0), tolerance=1e-8) -> Results:
    r"""Eq. (11) integrates to 1: three :class:`Check`\ s (``quad`` at n = 2, ``dblquad`` and ``cubature`` at n = 3).

    ``data["cases"]`` lists ``(method, alpha, temperature, |integral - 1|)`` for every case (a cubature
    that did not converge counts as an error of ``nan``, which fails); ``data["dblquad_evaluations"]``
    the number of density evaluations of each ``dblquad``.
    """
    cases = []
    for alpha in n2_alphas:
        for lam in n2_temperatures:
            cases.append(("quad, n = 2", alpha, lam, abs(integral_n2(np.log(alpha), lam, log_density) - 1)))
    evaluations = {}
    for alpha, lam in dblquad_cases:
        value, evaluations[(alpha, lam)] = integral_dblquad(np.log(alpha), lam, log_density)
        cases.append(("dblquad, n = 3", alpha, lam, abs(value - 1)))
    for alpha in n3_alphas:
        for lam in n3_temperatures:
            value, converged = integral_log_ratios(np.log(alpha), lam, log_density)
            cases.append(("cubature (3.8), n = 3", alpha, lam, abs(value - 1) if converged else np.nan))
    checks = []
    for method, claim in [("quad, n = 2", "n = 2, quad"), ("dblquad, n = 3", "n = 3, dblquad in (x1, x2)"),
                          ("cubature (3.8), n = 3", "n = 3, cubature in log-ratios (3.8)")]:
        errors = [e for m, _, _, e in cases if m == method]
        if not errors:
            continue
        worst = np.nan if np.any(np.isnan(errors)) else max(errors)
        checks.append(Check(f"integral of (11) = 1, {claim}", "max |integral - 1|", worst, tolerance, cases=len(errors)))
    return Results(checks, {"cases": cases, "dblquad_evaluations": evaluations})


# --- probabilities of regions and moments (n = 3) -------------------------------------------------------


def region_probabilities_exact(alpha, temperature, edges) -> np.ndarray:
    r"""Box probabilities :math:`P(W_1 \in (a_i, a_{i+1}], W_2 \in (a_j, a_{j+1}])` from (3.9), inclusion-exclusion.

    ``alpha`` has 3 entries; ``edges`` is increasing and may start at ``-inf`` and end at ``inf``.
    Returns a ``(len(edges) - 1, len(edges) - 1)`` array.  Uses only the Gumbel construction, not (11).
    """
    a1, a2, a3 = np.asarray(alpha, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    with np.errstate(over="ignore"):
        cdf = a3 / (a3 + a1 * np.exp(-temperature * e)[:, None] + a2 * np.exp(-temperature * e)[None, :])
    return cdf[1:, 1:] - cdf[:-1, 1:] - cdf[1:, :-1] + cdf[:-1, :-1]


def region_probabilities_quadrature(logits, temperature, edges, log_density=concrete_log_density, bound=32.0):
    """The same box probabilities by ``cubature`` of the density (11) in log-ratio coordinates (3.8)."""
    b = bound / temperature
    clip = np.clip(np.asarray(edges, dtype=np.float64), -b, b)
    k = len(clip) - 1
    return np.array([[integrate.cubature(lambda w: _log_ratio_integrand(w, logits, temperature, log_density),
                                         [clip[i], clip[j]], [clip[i + 1], clip[j + 1]], rtol=1e-9, atol=1e-13).estimate
                      for j in range(k)] for i in range(k)])


def region_checks(logits, temperatures=(0.5, 1.0, 2.0), seeds=(10, 11, 12), n_samples=300_000,
                  edges=(-np.inf, -3.0, -1.0, 1.0, 3.0, np.inf), *, log_density=concrete_log_density,
                  sampler=concrete_sample) -> Results:
    r"""Samples of Eq. (10) have the density (11), tested on boxes in log-ratio coordinates (:math:`n = 3`).

    Three :class:`Check`\ s: quadrature of ``log_density`` over each box against (3.9) (max absolute
    difference < 1e-10); the box counts of ``n_samples`` draws of ``sampler`` against the quadrature,
    by a chi-square test (smallest p-value over the temperatures > 0.001) and box by box (largest
    :math:`|\text{frequency} - \text{probability}|` in standard errors < 4).  ``data`` holds the
    p-values and the standardised residuals.
    """
    alpha = np.exp(np.asarray(logits, dtype=np.float64))
    worst_quad, p_values, residuals = 0.0, {}, {}
    for lam, seed in zip(temperatures, seeds):
        x = sampler(logits, lam, np.random.default_rng(seed), size=n_samples)
        w = np.log(x[:, :2]) - np.log(x[:, 2:])
        quad = region_probabilities_quadrature(logits, lam, edges, log_density)
        exact = region_probabilities_exact(alpha, lam, edges)
        worst_quad = max(worst_quad, float(np.max(np.abs(quad - exact))))
        counts = np.histogram2d(w[:, 0], w[:, 1], bins=[np.asarray(edges)] * 2)[0]
        p_values[lam] = float(stats.chisquare(counts.ravel(), n_samples * quad.ravel() / quad.sum()).pvalue)
        residuals[lam] = (counts / n_samples - quad) / np.sqrt(quad * (1 - quad) / n_samples)
    boxes = sum(r.size for r in residuals.values())
    checks = [
        Check("region probabilities: quadrature of (11) = exact (3.9)", "max |difference|", worst_quad, 1e-10, cases=boxes),
        Check("samples of (10) in the regions: chi-square", "smallest p-value", min(p_values.values()), 1e-3, ">",
              cases=len(p_values)),
        Check("samples of (10) in the regions, region by region", "max |residual| in SE",
              max(float(np.max(np.abs(r))) for r in residuals.values()), 4.0, cases=boxes),
    ]
    return Results(checks, {"p_values": p_values, "residuals": residuals})


def moments_quadrature(logits, temperature, log_density=concrete_log_density, bound=32.0) -> np.ndarray:
    r""":math:`(E[X_1], \dots, E[X_n], E[X_1^2], \dots, E[X_n^2])` by ``cubature`` of (11) in log-ratio coordinates."""
    n = np.shape(logits)[-1]
    b = bound / temperature
    f = lambda w: (_log_ratio_integrand(w, logits, temperature, log_density)[:, None]
                   * np.concatenate([from_log_ratios(w), from_log_ratios(w) ** 2], -1))
    return integrate.cubature(f, [-b] * (n - 1), [b] * (n - 1), rtol=1e-9, atol=1e-13).estimate


def moment_checks(logits, temperatures=(0.5, 1.0, 2.0), seeds=(13, 14, 15), n_samples=300_000, *,
                  log_density=concrete_log_density, sampler=concrete_sample) -> Results:
    r"""First and second moments by quadrature of (11) against sample means of Eq. (10): one :class:`Check`,
    the largest difference in standard errors of the mean (< 4).  ``data["z"]`` maps each temperature to
    its ``2n`` standardised differences."""
    z = {}
    for lam, seed in zip(temperatures, seeds):
        moments = moments_quadrature(logits, lam, log_density)
        x = sampler(logits, lam, np.random.default_rng(seed), size=n_samples)
        feats = np.concatenate([x, x**2], -1)
        z[lam] = (feats.mean(0) - moments) / (feats.std(0) / np.sqrt(n_samples))
    count = sum(v.size for v in z.values())
    return Results([Check("moments E[X_k], E[X_k^2]: quadrature of (11) = sample means of (10)",
                          "max |difference| in SE", max(float(np.max(np.abs(v))) for v in z.values()), 4.0,
                          cases=count)], {"z": z})


# --- rounding (Proposition 1b) ---------------------------------------------------------------------------


def rounding_checks(logits, temperatures=(0.25, 0.5, 1.0, 2.0, 5.0), n_samples=200_000, seed=20, *,
                    sampler=concrete_sample) -> Results:
    r"""Proposition 1b: three :class:`Check`\ s and the rounded frequencies.

    On the same seed (the same Gumbels) the vertex nearest to a sample of ``sampler`` must be the
    Gumbel-max sample's (mismatches == 0).  On independent seeds (``seed + 20 + i``) the rounded
    frequencies must match :math:`\alpha_k/\sum_i\alpha_i`: chi-square (smallest p-value > 0.001) and
    each frequency within 4 standard errors.  ``data`` holds ``frequencies`` and ``residuals`` (in SE),
    shape ``(len(temperatures), n)``, the ``p_values`` and the ``probabilities``.
    """
    logits = np.asarray(logits, dtype=np.float64)
    p_true = np.exp(logits - logits.max())
    p_true /= p_true.sum()
    mismatches, freqs, p_values = 0, [], []
    for i, lam in enumerate(temperatures):
        x = sampler(logits, lam, np.random.default_rng(seed + i), size=n_samples)
        d = gumbel_max_sample(logits, np.random.default_rng(seed + i), size=n_samples)
        mismatches += int(np.count_nonzero(x.argmax(-1) != d.argmax(-1)))
        counts = np.bincount(sampler(logits, lam, np.random.default_rng(seed + 20 + i), size=n_samples).argmax(-1),
                             minlength=logits.size)
        freqs.append(counts / n_samples)
        p_values.append(float(stats.chisquare(counts, n_samples * p_true).pvalue))
    freqs = np.array(freqs)
    residuals = (freqs - p_true) / np.sqrt(p_true * (1 - p_true) / n_samples)
    draws = len(temperatures) * n_samples
    checks = [
        Check("rounded sample = Gumbel-max sample on the same noise", "mismatches", mismatches, 0, "==", cases=draws),
        Check("rounded frequencies = alpha_k / sum alpha: chi-square", "smallest p-value", min(p_values), 1e-3, ">",
              cases=len(temperatures)),
        Check("rounded frequencies = alpha_k / sum alpha, each", "max |residual| in SE",
              float(np.max(np.abs(residuals))), 4.0, cases=residuals.size),
    ]
    return Results(checks, {"frequencies": freqs, "residuals": residuals, "p_values": p_values,
                            "probabilities": p_true})


# --- zero temperature (Proposition 1c) -------------------------------------------------------------------


def win_by_probability(alpha, margin) -> np.ndarray:
    r"""(3.10): :math:`P(k \text{ wins by more than } m) = \alpha_k / (\alpha_k + e^m \sum_{i \ne k}\alpha_i)`, per k."""
    alpha = np.asarray(alpha, dtype=np.float64)
    return alpha / (alpha + np.exp(margin) * (alpha.sum() - alpha))


def vertex_brackets(alpha, temperature, eps, win_by=win_by_probability):
    r"""Lower and upper brackets on :math:`P(X_k > 1 - \epsilon)`, per vertex: (3.10) at
    :math:`m_+ = \lambda\log((n-1)(1-\epsilon)/\epsilon)` and at :math:`m_- = \lambda\log((1-\epsilon)/\epsilon)`."""
    n = np.size(alpha)
    lower = win_by(alpha, temperature * np.log((n - 1) * (1 - eps) / eps))
    upper = win_by(alpha, temperature * np.log((1 - eps) / eps))
    return lower, upper


def zero_temperature_checks(logits, temperatures=(2.0, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001),
                            eps=0.01, n_samples=200_000, seed=60, *, win_by=win_by_probability,
                            sampler=exp_concrete_sample) -> Results:
    r"""Proposition 1c: the fraction of samples within ``eps`` of each vertex, against the brackets.

    Samples in log space (``sampler`` draws :math:`Y = \log X`; :math:`X_k > 1 - \epsilon` iff
    :math:`Y_k > \log(1-\epsilon)`), with seed ``seed + i`` at the i-th temperature.  Two :class:`Check`\ s:
    every fraction inside its bracket up to 4 standard errors (the largest excursion beyond a bracket
    edge, in SE, negative when inside, < 4), and at the lowest temperature every fraction within 0.005
    of :math:`\alpha_k/\sum_i\alpha_i`.  ``data`` holds ``fractions``, ``lower``, ``upper``
    (``(len(temperatures), n)`` arrays) and ``probabilities``.
    """
    logits = np.asarray(logits, dtype=np.float64)
    alpha = np.exp(logits)
    p_true = alpha / alpha.sum()
    fractions, lowers, uppers, excursion = [], [], [], -np.inf
    for i, lam in enumerate(temperatures):
        y = sampler(logits, lam, np.random.default_rng(seed + i), size=n_samples)
        frac = np.mean(y > np.log1p(-eps), axis=0)
        lo, hi = vertex_brackets(alpha, lam, eps, win_by)
        se = np.sqrt(frac * (1 - frac) / n_samples) + 1.0 / n_samples
        excursion = max(excursion, float(np.max(np.maximum(lo - frac, frac - hi) / se)))
        fractions.append(frac), lowers.append(lo), uppers.append(hi)
    fractions = np.array(fractions)
    checks = [
        Check("fraction within eps of each vertex inside the brackets (3.10)", "largest excursion beyond a bracket, in SE",
              excursion, 4.0, cases=fractions.size),
        Check(f"at lambda = {temperatures[-1]:g}, fraction near vertex k = alpha_k / sum alpha",
              "max |difference|", float(np.max(np.abs(fractions[-1] - p_true))), 0.005, cases=p_true.size),
    ]
    return Results(checks, {"fractions": fractions, "lower": np.array(lowers), "upper": np.array(uppers),
                            "probabilities": p_true, "temperatures": tuple(temperatures)})


# --- log-convexity (Proposition 1d) ----------------------------------------------------------------------


def _log_p_free(z, logits, temperature, log_density):
    """log p as a function of the first n - 1 coordinates (x_n = 1 - their sum)."""
    return log_density(anp.concatenate([z, 1 - anp.sum(z, -1, keepdims=True)], -1), logits, temperature)


def free_coordinate_hessians(x, logits, temperature, log_density=concrete_log_density) -> np.ndarray:
    r"""Hessians of :math:`\log p` in :math:`(x_1, \dots, x_{n-1})` at a batch of points ``x`` ``(M, n)``: ``(M, n-1, n-1)``.

    Each point's log density depends on that point only, so the Jacobian of the batched gradient is
    block-diagonal and two passes of ``elementwise_grad`` (one per free coordinate in the second) give
    every Hessian at once.
    """
    z = np.asarray(x, dtype=np.float64)[:, :-1]
    g = elementwise_grad(lambda z: _log_p_free(z, logits, temperature, log_density))
    return np.stack([elementwise_grad(lambda z, i=i: g(z)[:, i])(z) for i in range(z.shape[-1])], -2)


def scaled_smallest_eigenvalues(x, logits, temperature, log_density=concrete_log_density) -> np.ndarray:
    r"""The smallest Hessian eigenvalue of :math:`\log p` at each point, divided by :math:`1 + \sum_k x_k^{-2}`.

    The Hessian's entries grow like :math:`x_k^{-2}` near the faces, so this is the eigenvalue on the
    scale of its rounding error; :math:`\log p` is called not convex at a point where it is below
    :math:`-10^{-9}`.
    """
    x = np.asarray(x, dtype=np.float64)
    smallest = np.linalg.eigvalsh(free_coordinate_hessians(x, logits, temperature, log_density))[:, 0]
    return smallest / (1 + np.sum(x**-2.0, axis=-1))


def convexity_scan(rng, ns=(2, 3, 4, 5), ms=(0.25, 0.5, 1.0, 1.05, 1.5, 2.0, 4.0), trials=5, points=4000,
                   dirichlet=(0.2, 1.0, 5.0), tolerance=1e-9, *, log_density=concrete_log_density) -> Results:
    r"""Proposition 1d at :math:`\lambda = m/(n-1)`: where is :math:`\log p` not convex?

    For each :math:`n`, :math:`m` and each of ``trials`` locations :math:`\log\alpha_k \sim N(0, 1.5^2)`:
    ``points`` Dirichlet points for each parameter in ``dirichlet`` (near the faces, uniform, near the
    centre; points with a coordinate below 1e-12 dropped).  Two :class:`Check`\ s: for :math:`m \le 1`
    the smallest scaled eigenvalue over all points is above ``-tolerance`` (convex everywhere); at
    :math:`m = 1.05` (the smallest :math:`m > 1` in ``ms``) the smallest fraction of non-convex points over
    :math:`n` and the locations is above 0 (the bound is sharp).  ``data["fractions"]`` maps ``(n, m)`` to
    the ``trials`` fractions of non-convex points.
    """
    fractions, claimed_min, claimed_count = {}, np.inf, 0
    for n in ns:
        for m in ms:
            lam = m / (n - 1)
            fr = []
            for _ in range(trials):
                logits = rng.normal(scale=1.5, size=n)
                x = np.vstack([rng.dirichlet(np.full(n, a), size=points) for a in dirichlet])
                x = x[np.all(x > 1e-12, axis=-1)]
                scaled = scaled_smallest_eigenvalues(x, logits, lam, log_density)
                fr.append(float(np.mean(scaled < -tolerance)))
                if m <= 1:
                    claimed_min, claimed_count = min(claimed_min, float(scaled.min())), claimed_count + x.shape[0]
            fractions[(n, m)] = fr
    above = min(m for m in ms if m > 1)
    checks = [
        Check("log p convex for lambda <= 1/(n-1)", "smallest scaled Hessian eigenvalue", claimed_min, -tolerance, ">",
              cases=claimed_count),
        Check(f"log p not convex somewhere at lambda = {above:g}/(n-1), every n and alpha",
              "smallest fraction of non-convex points", min(min(fractions[(n, above)]) for n in ns), 0.0, ">",
              cases=len(ns) * trials),
    ]
    return Results(checks, {"fractions": fractions, "ns": tuple(ns), "ms": tuple(ms)})


def near_face_checks(logits, threshold=0.5, above=(0.51, 0.55, 0.75, 1.0, 2.0), delta=1e-6, tolerance=1e-9, *,
                     log_density=concrete_log_density) -> Results:
    r"""Sharpness of Proposition 1d for :math:`n = 3` at points ``delta`` from the midpoint of each edge.

    Two :class:`Check`\ s: at :math:`\lambda` = ``threshold`` (:math:`1/(n-1)`) the three scaled smallest
    eigenvalues are above ``-tolerance``; at every temperature in ``above`` all three are below it.
    ``data["scaled"]`` maps each temperature to its three scaled eigenvalues.
    """
    d = delta
    points = np.array([[d, (1 - d) / 2, (1 - d) / 2], [(1 - d) / 2, d, (1 - d) / 2], [(1 - d) / 2, (1 - d) / 2, d]])
    scaled = {lam: scaled_smallest_eigenvalues(points, logits, lam, log_density) for lam in (threshold, *above)}
    checks = [
        Check(f"lambda = {threshold:g}: convex {d:g} from each edge", "smallest scaled eigenvalue",
              float(scaled[threshold].min()), -tolerance, ">", cases=3),
        Check(f"lambda in ({', '.join(f'{a:g}' for a in above)}): not convex {d:g} from each edge",
              "largest scaled smallest eigenvalue", max(float(scaled[a].max()) for a in above), -tolerance, "<",
              cases=3 * len(above)),
    ]
    return Results(checks, {"scaled": scaled})


def interior_mode(logits, temperature, *, log_density=concrete_log_density, ring_radius=0.01) -> Results:
    r"""An interior maximum of the density (:math:`n = 3`): BFGS on :math:`\log p` in log-ratio coordinates.

    Four :class:`Check`\ s: BFGS stopped at a stationary point (gradient norm < 1e-6); it lies inside
    (every coordinate > 0.1); the Hessian of :math:`\log p` in :math:`(x_1, x_2)` is negative definite
    there (largest eigenvalue < -1); and :math:`\log p` is lower on a ring of 64 points at distance about
    ``ring_radius`` (largest difference < 0).  ``data`` holds the ``mode``, ``log_p`` and ``eigenvalues``.
    If BFGS runs to the boundary (a coordinate underflows to 0, where the density is undefined), the
    checks fail with ``nan`` values.
    """
    f = lambda w: log_density(from_log_ratios(w), logits, temperature)
    try:
        res = optimize.minimize(lambda w: -f(w), np.zeros(2), method="BFGS", jac=lambda w: -grad(f)(w),
                                options={"gtol": 1e-10, "maxiter": 500})
    except ValueError:  # BFGS ran to the boundary (a coordinate underflowed to 0): no interior mode found
        nan = float("nan")
        checks = [Check("BFGS stopped at a stationary point of log p", "gradient norm", nan, 1e-6),
                  Check("the point is inside the triangle", "smallest coordinate", nan, 0.1, ">"),
                  Check("Hessian of log p negative definite there", "largest eigenvalue", nan, -1.0),
                  Check(f"log p lower on a ring at distance ~{ring_radius:g}", "max (log p(ring) - log p(mode))", nan,
                        0.0, cases=64)]
        return Results(checks, {"mode": None, "log_p": nan, "eigenvalues": None})
    mode = from_log_ratios(res.x)
    grad_norm = float(np.linalg.norm(grad(f)(res.x)))
    eig = np.linalg.eigvalsh(hessian(lambda z: _log_p_free(z, logits, temperature, log_density))(mode[:2]))
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    ring = mode + ring_radius * np.stack([np.cos(t), np.sin(t), -np.cos(t) - np.sin(t)], -1)
    ring_gap = float(np.max(log_density(ring, logits, temperature)) - (-res.fun))
    checks = [
        Check("BFGS stopped at a stationary point of log p", "gradient norm", grad_norm, 1e-6),
        Check("the point is inside the triangle", "smallest coordinate", float(mode.min()), 0.1, ">"),
        Check("Hessian of log p negative definite there", "largest eigenvalue", float(eig.max()), -1.0),
        Check(f"log p lower on a ring at distance ~{ring_radius:g}", "max (log p(ring) - log p(mode))", ring_gap, 0.0,
              cases=64),
    ]
    return Results(checks, {"mode": mode, "log_p": float(-res.fun), "eigenvalues": eig})
