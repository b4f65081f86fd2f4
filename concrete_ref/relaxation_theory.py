r"""Why the Concrete gradient is biased, how fast the bias vanishes, and why its variance grows (Chapter 5).

**Setting.**  One categorical node with logits :math:`\theta = \log\alpha` (:math:`K` states,
:math:`p = \operatorname{softmax}\theta`), a function :math:`f` on the simplex, continuously
differentiable near its edges, the discrete objective :math:`L(\theta) = \mathbb{E}[f(D)]` and the
relaxed one :math:`L_\lambda(\theta) = \mathbb{E}_G[f(X_\lambda)]` with
:math:`X_\lambda = \operatorname{softmax}((\theta + G)/\lambda)`.  The Concrete estimator
:math:`\hat g_\lambda = \nabla_\theta f(X_\lambda)` is unbiased for :math:`\nabla L_\lambda`; its bias
for the discrete gradient is :math:`\nabla L_\lambda - \nabla L`.

**Boundary layers.**  Write :math:`U = \theta + G`.  Away from the faces where two :math:`U_k` tie,
:math:`X_\lambda` is exponentially close to the vertex :math:`D = e_{\arg\max U}`.  Near the face between
vertices :math:`i` and :math:`j`, with :math:`s = U_i - U_j` and the other coordinates far below,
:math:`X_\lambda \approx \sigma(s/\lambda)e_i + \sigma(-s/\lambda)e_j`.  The density of :math:`s` at 0,
jointly with the event that :math:`i` and :math:`j` are the two largest, is

.. math:: m_{ij} = \int \alpha_i\alpha_j e^{-2v}\exp\big(-e^{-v}\textstyle\sum_k\alpha_k\big)\,dv = p_ip_j

(Gumbel densities at the same point :math:`v`, times the probability that the others are below it;
substitute :math:`w = e^{-v}`).  Integrating across the layer of width :math:`O(\lambda)` gives

* the **bias** (:func:`bias_leading_term`): :math:`L_\lambda - L = \lambda\sum_{i<j}c_{ij}\,p_ip_j + O(\lambda^2)`, with
  :math:`c_{ij} = \int_{-\infty}^{\infty}\big[f(\sigma(t)e_i + \sigma(-t)e_j) - f(H_{ij}(t))\big]\,dt`
  (:func:`boundary_coefficients`; :math:`H_{ij}(t) = e_i` for :math:`t > 0`, :math:`e_j` otherwise), and so

  .. math:: \nabla L_\lambda - \nabla L = \lambda B + O(\lambda^2), \qquad
     B = \sum_{i<j} c_{ij}\,p_ip_j\,(e_i + e_j - 2p).

  The squared bias falls like :math:`\lambda^2` (log-log slope 2) wherever :math:`B \ne 0`.  At
  :math:`K = 2` and :math:`p = (\frac12, \frac12)`, :math:`B = 0` and the slope is 4.
* the **variance** (:func:`variance_leading_term`): inside the layer the Jacobian of the softmax is
  :math:`\frac1\lambda(\operatorname{diag}X - XX^\top)`, so :math:`\hat g_\lambda` has components
  :math:`\pm\frac1\lambda\sigma(t)\sigma(-t)(\partial_if - \partial_jf)` on a set of probability
  :math:`O(\lambda)`, and

  .. math:: \operatorname{tr}\operatorname{Cov}\hat g_\lambda = \frac{V_1}{\lambda} + O(1), \qquad
     V_1 = 2\sum_{i<j}p_ip_j\int\sigma(t)^2\sigma(-t)^2\,\big(\partial_if - \partial_jf\big)^2(x_{ij}(t))\,dt,

  with :math:`x_{ij}(t) = \sigma(t)e_i + \sigma(-t)e_j`: the variance grows like :math:`1/\lambda`
  (log-log slope :math:`-1`), for an average of :math:`S` samples :math:`V_1/(S\lambda)`.

**The KL term of the relaxed ELBO** does not follow this pattern: it depends on the temperatures only
through :math:`r = \lambda_2/\lambda_1` (:func:`concrete_ref.toy_models.relaxed_kl_term`), its gradient
is :math:`-r(1 - K\operatorname{softmax}(\log a - r(\log\alpha + G)))`, of mean
:math:`-r(1 - KP_a) + O(r^2)`, so its squared bias against the discrete KL gradient :math:`g` tends to
:math:`\lVert g\rVert^2` as :math:`r \to 0` with slope :math:`2(1 - KP_a)^\top g` there
(:func:`kl_bias2_slope_at_zero`).

**Checks.**  :class:`Check` and the ``check_*`` functions are the chapter's checks: each returns whether
its claim holds with the margin measured, and the tests (``tests/test_ch5_checks.py``) confirm that each
fails when the formula it checks is perturbed.  Everything here is NumPy, SciPy and autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import autograd
import numpy as np
from scipy import integrate
from scipy.special import expit

from ._validation import check_logits

__all__ = [
    "boundary_coefficients",
    "bias_leading_term",
    "objective_bias_leading_term",
    "variance_leading_term",
    "kl_bias2_slope_at_zero",
    "jeffreys_to_uniform",
    "weighted_fit",
    "loglog_slope",
    "Check",
    "check_tolerance",
    "check_z",
    "check_exponent",
    "check_increasing",
    "check_below",
]


def _probs(logits):
    check_logits(logits)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 1:
        raise ValueError(f"one node's logits, shape (K,), are expected; got shape {logits.shape}")
    p = np.exp(logits - logits.max())
    return p / p.sum()


def _edge_point(i, j, t, k):
    z = np.zeros(k)
    z[i], z[j] = expit(t), expit(-t)
    return z


def _line_integral(fun, scale: float = 60.0) -> float:
    # the integrands decay like e^{-|t|}; split at the kink t = 0
    left = integrate.quad(fun, -scale, 0.0, limit=400, epsabs=1e-13, epsrel=1e-11)[0]
    right = integrate.quad(fun, 0.0, scale, limit=400, epsabs=1e-13, epsrel=1e-11)[0]
    return left + right


def boundary_coefficients(f, num_categories: int) -> np.ndarray:
    r"""The edge integrals :math:`c_{ij} = \int[f(\sigma(t)e_i + \sigma(-t)e_j) - f(H_{ij}(t))]\,dt`, a symmetric ``(K, K)`` array.

    ``f`` maps one point of shape ``(K,)`` to a number.  :math:`c_{ij}` is the area between :math:`f`
    along the edge from :math:`e_j` to :math:`e_i` (parameterised by the logit :math:`t`) and the step
    that jumps from :math:`f(e_j)` to :math:`f(e_i)` at :math:`t = 0`; it does not depend on
    :math:`\theta`.  The diagonal is 0.
    """
    k = int(num_categories)
    c = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            fi, fj = float(f(np.eye(k)[i])), float(f(np.eye(k)[j]))
            c[i, j] = c[j, i] = _line_integral(
                lambda t, i=i, j=j, fi=fi, fj=fj: float(f(_edge_point(i, j, t, k))) - (fi if t > 0 else fj))
    return c


def objective_bias_leading_term(f, logits, coefficients=None) -> float:
    r""":math:`\lim_{\lambda\to0}(L_\lambda - L)/\lambda = \sum_{i<j}c_{ij}\,p_ip_j` (the first-order bias of the relaxed objective)."""
    p = _probs(logits)
    c = boundary_coefficients(f, p.size) if coefficients is None else np.asarray(coefficients)
    return float(0.5 * np.sum(c * np.outer(p, p)))


def bias_leading_term(f, logits, coefficients=None) -> np.ndarray:
    r""":math:`B = \lim_{\lambda\to0}(\nabla L_\lambda - \nabla L)/\lambda = \sum_{i<j}c_{ij}\,p_ip_j\,(e_i + e_j - 2p)`, shape ``(K,)``.

    The gradient in :math:`\theta` of :func:`objective_bias_leading_term`, since
    :math:`\partial(p_ip_j)/\partial\theta_k = p_ip_j(\delta_{ik} + \delta_{jk} - 2p_k)`.
    """
    p = _probs(logits)
    k = p.size
    c = boundary_coefficients(f, k) if coefficients is None else np.asarray(coefficients)
    eye = np.eye(k)
    out = np.zeros(k)
    for i in range(k):
        for j in range(i + 1, k):
            out += c[i, j] * p[i] * p[j] * (eye[i] + eye[j] - 2.0 * p)
    return out


def variance_leading_term(f, logits) -> float:
    r""":math:`V_1 = \lim_{\lambda\to0}\lambda\operatorname{tr}\operatorname{Cov}\hat g_\lambda` for one sample (see the module docstring).

    ``f`` must be written with ``autograd.numpy`` (its gradient :math:`\nabla f` along each edge is
    taken by autograd).
    """
    p = _probs(logits)
    k = p.size
    grad_f = autograd.grad(lambda z: f(z))
    total = 0.0
    for i in range(k):
        for j in range(i + 1, k):
            def integrand(t, i=i, j=j):
                h = grad_f(_edge_point(i, j, t, k))
                return (expit(t) * expit(-t)) ** 2 * (h[i] - h[j]) ** 2
            total += 2.0 * p[i] * p[j] * _line_integral(integrand)
    return float(total)


def jeffreys_to_uniform(prior_logits) -> float:
    r""":math:`J(P, U) = \mathrm{KL}(P\,\|\,U) + \mathrm{KL}(U\,\|\,P) = \sum_k p_k\log p_k - \frac1K\sum_k\log p_k` for :math:`P = \operatorname{softmax}(\log a)`."""
    p = _probs(prior_logits)
    return float(np.sum(p * np.log(p)) - np.mean(np.log(p)))


def kl_bias2_slope_at_zero(prior_logits, posterior_logits) -> float:
    r"""The slope at :math:`r = 0` of the KL term's squared bias against the ratio :math:`r = \lambda_2/\lambda_1`.

    The relaxed KL gradient has mean :math:`m(r) = -r(1 - KP_a) + O(r^2)` and the discrete one is
    :math:`g = q\odot(c - q^\top c)` with :math:`c = \log P_a - \log q`, so
    :math:`\lVert m(r) - g\rVert^2 = \lVert g\rVert^2 + 2r(1 - KP_a)^\top g + O(r^2)`.  At the uniform
    posterior this slope is :math:`-2J(P_a, U)` (:func:`jeffreys_to_uniform`): negative for every
    non-uniform prior, so the squared bias has an interior minimum in :math:`r`.
    """
    pa = _probs(prior_logits)
    q = _probs(posterior_logits)
    c = np.log(pa) - np.log(q)
    g = q * (c - np.dot(q, c))
    return float(2.0 * np.dot(1.0 - pa.size * pa, g))


# ------------------------------------------------------------------------------------ fitting
def weighted_fit(design, y, y_se):
    r"""Weighted least squares with known standard errors: ``(coef, cov)``.

    Minimises :math:`\sum_n ((y_n - X_n\beta)/s_n)^2`; :math:`\operatorname{Cov}\hat\beta = (X^\top WX)^{-1}`,
    :math:`W = \operatorname{diag}(s^{-2})`, valid when the :math:`y_n` are independent with those standard errors.
    """
    x = np.asarray(design, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = 1.0 / np.asarray(y_se, dtype=np.float64) ** 2
    cov = np.linalg.inv(x.T @ (w[:, None] * x))
    return cov @ (x.T @ (w * y)), cov


def loglog_slope(x, y, y_se):
    r"""Slope of :math:`\log y` against :math:`\log x` with its standard error: ``(slope, se, intercept)``.

    ``y_se`` are the standard errors of ``y``; those of :math:`\log y` are ``y_se / y`` (delta method).
    The points must be independent (separate random draws).
    """
    y = np.asarray(y, dtype=np.float64)
    if np.any(y <= 0):
        raise ValueError("loglog_slope needs positive values")
    design = np.stack([np.ones_like(y), np.log(np.asarray(x, dtype=np.float64))], axis=-1)
    coef, cov = weighted_fit(design, np.log(y), np.asarray(y_se) / y)
    return float(coef[1]), float(np.sqrt(cov[1, 1])), float(coef[0])


# ------------------------------------------------------------------------------------- checks
@dataclass(frozen=True)
class Check:
    """One check: ``passed``, the ``claim`` with its tolerance (portable), and the ``measured`` margin (not)."""

    claim: str
    passed: bool
    measured: str

    def __str__(self) -> str:
        return f"{self.claim}: {self.passed}"

    def __bool__(self) -> bool:
        return bool(self.passed)


def check_tolerance(claim: str, error, tolerance: float) -> Check:
    """``max |error| < tolerance``."""
    err = float(np.max(np.abs(np.asarray(error, dtype=np.float64))))
    return Check(f"{claim} (max |error| < {tolerance:g})", bool(err < tolerance),
                 f"max |error| = {err:.2e} against {tolerance:g}")


def check_z(claim: str, measured, se, predicted, z_tol: float = 4.5) -> Check:
    """Every component of ``measured`` within ``z_tol`` standard errors ``se`` of ``predicted``."""
    m, s, p = (np.asarray(v, dtype=np.float64) for v in (measured, se, predicted))
    z = float(np.max(np.abs(m - p) / s))
    return Check(f"{claim} (max |z| < {z_tol:g})", bool(z < z_tol), f"max |z| = {z:.2f} against {z_tol:g}")


def check_exponent(claim: str, slope: float, slope_se: float, expected: float, tolerance: float,
                   max_se: float | None = None) -> Check:
    r"""``|slope - expected| < tolerance``, and the fit precise enough to tell: ``slope_se < max_se``.

    ``max_se`` defaults to ``tolerance / 3``.  A slope that passes is then at least
    :math:`1 - \text{tolerance}` from any exponent one unit away, which is more than the tolerance when
    it is below 0.5 (so that exponent fails the same check), and
    :math:`3(1 - \text{tolerance})/\text{tolerance}` standard errors from it: 7 at a tolerance of 0.3.
    """
    max_se = tolerance / 3.0 if max_se is None else max_se
    ok = abs(slope - expected) < tolerance and slope_se < max_se
    return Check(f"{claim} (|slope - {expected:g}| < {tolerance:g}, standard error < {max_se:.3g})", bool(ok),
                 f"slope = {slope:.3f} +- {slope_se:.3f}; |slope - {expected:g}| = {abs(slope - expected):.3f}")


def check_increasing(claim: str, values, margin: float) -> Check:
    """Each value above the one before by more than ``margin`` (a quadrature or rounding error bound)."""
    v = np.asarray(values, dtype=np.float64)
    gaps = np.diff(v)
    return Check(f"{claim} (each step > {margin:g})", bool(np.all(gaps > margin)),
                 f"smallest step {float(gaps.min()):.3e} against {margin:g}")


def check_below(claim: str, values, ses, bound: float, bound_se: float, z: float = 4.5) -> Check:
    """Each Monte Carlo value below ``bound`` by more than ``z`` standard errors of each: ``v + z se < bound - z bound_se``."""
    v, s = np.asarray(values, dtype=np.float64), np.asarray(ses, dtype=np.float64)
    margin = (bound - z * bound_se) - (v + z * s)
    return Check(f"{claim} (by more than {z:g} standard errors each)", bool(np.all(margin > 0)),
                 f"smallest margin {float(margin.min()):+.4f} beyond {z:g} standard errors")
