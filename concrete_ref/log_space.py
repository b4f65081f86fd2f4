r"""Chapter 4's mathematics and its checks: Binary Concrete, the log-space nodes, and where float32 fails.

Three kinds of functions.

**Independent evaluations of the paper's formulas as printed.**  The reference densities in
:mod:`concrete_ref.concrete` and :mod:`concrete_ref.binary` are written for numerical safety (log-sum-exp,
the symmetric logistic form).  A check of those against themselves proves nothing, so the functions
``*_printed`` here type each formula exactly as the paper prints it, as a product of powers, and share no
code with them:

* :func:`eq11_log_density_printed` -- Eq. (11),
  :math:`p_{\alpha,\lambda}(x) = (n-1)!\,\lambda^{n-1}\prod_k \alpha_k x_k^{-\lambda-1} / \sum_i \alpha_i x_i^{-\lambda}`,
  at 60 significant digits (mpmath), at :math:`x = e^{y}` so that points whose coordinates underflow in
  float64 can still be evaluated;
* :func:`exp_concrete_log_density_printed` -- App. C.3.1's :math:`\log\kappa_{\alpha,\lambda}(y)`, 60 digits;
* :func:`eq17_log_density_printed` -- Eq. (17) at :math:`x = \sigma(y)`, 60 digits;
* :func:`eq17_density_float` and :func:`eq11_density_float` -- Eq. (17) and Eq. (11) in working precision
  (float64 for quadrature; float32 to show how the sigmoid-space density breaks);
* :func:`logit_log_density_printed` -- App. C.3.2 at 60 digits; :func:`logit_density_literal` -- App. C.3.2's
  :math:`\log\lambda - \lambda y + \log\alpha - 2\log(1 + e^{-\lambda y + \log\alpha})` literally.

**The facts Chapter 4 proves**, as functions: the CDF of the range of :math:`n` Gumbels
(:func:`gumbel_range_cdf`), which is the gap between the largest and smallest Concrete score times
:math:`\lambda`; the float32 underflow threshold (:data:`FLOAT32_EXP_UNDERFLOW`); Jacobian determinants of
the two charts of the log-simplex by automatic differentiation; the middle mass of Binary Concrete
(Proposition 2c); the log-convexity decomposition used to prove Proposition 2d; Kolmogorov-Smirnov
critical values; the Binary Concrete KL by quadrature.

**Checks** (``check_*``): each returns :class:`concrete_ref.checks.Check` objects (a measured value, a
tolerance, the verdict) and takes the formula it tests as an argument, so that a test can pass a
perturbed formula and see the check fail (``tests/test_ch4_checks.py``).

Nothing here imports torch; mpmath (the book's extra) is imported on first use.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, stats
from scipy.special import expit, logsumexp

from .checks import Check

__all__ = [
    "FLOAT32_EXP_UNDERFLOW",
    "FLOAT64_EXP_UNDERFLOW",
    "ks_critical_value",
    "binary_cdf",
    "eq11_log_density_printed",
    "eq11_density_float",
    "exp_concrete_log_density_printed",
    "eq17_log_density_printed",
    "eq17_density_float",
    "logit_density_literal",
    "gumbel_range_cdf",
    "gumbel_range_pdf",
    "gumbel_range_quantile",
    "score_gaps",
    "min_log_coordinate",
    "middle_mass",
    "middle_mass_bound",
    "log_convexity_decomposition",
    "softmax_chart",
    "softmax_chart_jacobian_det",
    "exp_chart_jacobian_det",
    "relative_density_integral",
    "bernoulli_kl",
    "binary_relaxed_kl",
    "sigmoid_rounding_thresholds",
    "check_logistic_difference",
    "check_binary_sampler",
    "check_binary_cdf",
    "check_eq17_density",
    "check_prop2b",
    "check_prop2c",
    "check_prop2d",
    "check_log_convexity_decomposition",
    "check_gumbel_range",
    "check_exp_concrete_density",
    "check_eq44",
    "check_chart_determinants",
    "check_relative_normalisation",
    "check_kl_invariance",
    "check_logit_forms",
    "check_logit_vs_eq17",
    "check_stability_exp_concrete",
    "check_stability_logistic",
    "simplex_kl_quadrature",
    "logit_log_density_printed",
]

#: float32 ``exp(y)`` is exactly 0 below this: half the smallest subnormal, :math:`\log 2^{-150} = -103.972`.
FLOAT32_EXP_UNDERFLOW = -150.0 * math.log(2.0)
#: the same for float64: :math:`\log 2^{-1075} = -745.13`.
FLOAT64_EXP_UNDERFLOW = -1075.0 * math.log(2.0)


def _mp():
    import mpmath

    return mpmath


def ks_critical_value(level: float, n: int, m: int | None = None) -> float:
    r"""Large-sample critical value of the Kolmogorov-Smirnov distance at significance ``level``.

    One sample of size ``n`` against a continuous CDF: :math:`c(\text{level})/\sqrt{n}`, with
    :math:`c` the upper quantile of the Kolmogorov distribution (``scipy.stats.kstwobign``):
    :math:`c(0.01) = 1.628`, :math:`c(0.001) = 1.949`.  Two samples of sizes ``n`` and ``m``:
    :math:`c(\text{level})\sqrt{(n + m)/(n m)}`.
    """
    c = float(stats.kstwobign.isf(level))
    return c / math.sqrt(n) if m is None else c * math.sqrt((n + m) / (n * m))


def binary_cdf(x, logit, temperature):
    r"""(4.1): :math:`P(X \le x) = \sigma(\lambda\,\mathrm{logit}(x) - \log\alpha)` for Binary Concrete."""
    x = np.asarray(x, dtype=np.float64)
    return expit(temperature * (np.log(x) - np.log1p(-x)) - logit)


# ---------------------------------------------------------------------------------------------------
# The paper's formulas as printed (independent of concrete_ref.concrete and concrete_ref.binary)
# ---------------------------------------------------------------------------------------------------

def eq11_log_density_printed(log_x, logits, temperature, dps: int = 60) -> np.ndarray:
    r"""Eq. (11) as printed, evaluated with ``dps`` significant digits at :math:`x = e^{\log x}`.

    :math:`\log\big[(n-1)!\,\lambda^{n-1}\prod_{k=1}^n \alpha_k x_k^{-\lambda-1} / \sum_i \alpha_i x_i^{-\lambda}\big]`,
    the product formed factor by factor with :math:`\alpha_k = e^{\log\alpha_k}`.  ``log_x`` has shape
    ``(..., n)``; the result has shape ``log_x.shape[:-1]`` (float64).  Taking :math:`\log x` as input lets
    the formula be evaluated at points such as :math:`x_k = e^{-300}`, which no float32 sample can hold.
    """
    mp = _mp()
    log_x = np.asarray(log_x, dtype=np.float64)
    rows = log_x.reshape(-1, log_x.shape[-1])
    out = np.empty(rows.shape[0])
    with mp.workdps(dps):
        lam = mp.mpf(float(temperature))
        alpha = [mp.e ** mp.mpf(float(a)) for a in np.asarray(logits, dtype=np.float64)]
        n = len(alpha)
        for r, row in enumerate(rows):
            x = [mp.e ** mp.mpf(float(v)) for v in row]
            denom = mp.fsum(a * xi ** (-lam) for a, xi in zip(alpha, x))
            dens = mp.factorial(n - 1) * lam ** (n - 1)
            for a, xi in zip(alpha, x):
                dens *= a * xi ** (-lam - 1) / denom
            out[r] = float(mp.log(dens))
    return out.reshape(log_x.shape[:-1])


def eq11_density_float(x, logits, temperature):
    r"""Eq. (11) as printed, in the working precision of ``x`` (NumPy, no logarithms): a naive product."""
    x = np.asarray(x)
    lam = x.dtype.type(temperature)
    alpha = np.exp(np.asarray(logits, dtype=x.dtype))
    n = x.shape[-1]
    denom = np.sum(alpha * x ** (-lam), axis=-1, keepdims=True)
    return math.factorial(n - 1) * lam ** (n - 1) * np.prod(alpha * x ** (-lam - 1) / denom, axis=-1)


def exp_concrete_log_density_printed(y, logits, temperature, dps: int = 60) -> np.ndarray:
    r"""App. C.3.1 as printed, with ``dps`` digits:
    :math:`\log((n-1)!) + (n-1)\log\lambda + \sum_k(\log\alpha_k - \lambda y_k) - n\,\mathrm{L\Sigma E}_k\{\log\alpha_k - \lambda y_k\}`."""
    mp = _mp()
    y = np.asarray(y, dtype=np.float64)
    rows = y.reshape(-1, y.shape[-1])
    out = np.empty(rows.shape[0])
    with mp.workdps(dps):
        lam = mp.mpf(float(temperature))
        la = [mp.mpf(float(a)) for a in np.asarray(logits, dtype=np.float64)]
        n = len(la)
        for r, row in enumerate(rows):
            t = [a - lam * mp.mpf(float(v)) for a, v in zip(la, row)]
            lse = mp.log(mp.fsum(mp.e ** s for s in t))
            out[r] = float(mp.log(mp.factorial(n - 1)) + (n - 1) * mp.log(lam) + mp.fsum(t) - n * lse)
    return out.reshape(y.shape[:-1])


def eq17_log_density_printed(y, logit, temperature, dps: int = 60) -> np.ndarray:
    r"""Eq. (17) as printed, :math:`\log[\lambda\alpha x^{-\lambda-1}(1-x)^{-\lambda-1}/(\alpha x^{-\lambda} + (1-x)^{-\lambda})^2]`,
    with ``dps`` digits at :math:`x = \sigma(y) = 1/(1 + e^{-y})` (formed at that precision, so that
    :math:`x` never rounds to 0 or 1).  Elementwise in ``y``; float64 result."""
    mp = _mp()
    y = np.asarray(y, dtype=np.float64)
    out = np.empty(y.size)
    with mp.workdps(dps):
        lam, a = mp.mpf(float(temperature)), mp.e ** mp.mpf(float(logit))
        for i, v in enumerate(y.ravel()):
            x = 1 / (1 + mp.e ** (-mp.mpf(float(v))))
            one_minus_x = 1 / (1 + mp.e ** mp.mpf(float(v)))
            num = lam * a * x ** (-lam - 1) * one_minus_x ** (-lam - 1)
            out[i] = float(mp.log(num / (a * x ** (-lam) + one_minus_x ** (-lam)) ** 2))
    return out.reshape(y.shape)


def eq17_density_float(x, logit, temperature):
    r"""Eq. (17) as printed, in the working precision of ``x`` (NumPy): the naive sigmoid-space density.

    Non-finite where :math:`x` has rounded to 0 or 1, and where :math:`x^{-\lambda-1}` overflows."""
    x = np.asarray(x)
    lam, a = x.dtype.type(temperature), x.dtype.type(math.exp(logit))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return lam * a * x ** (-lam - 1) * (1 - x) ** (-lam - 1) / (a * x ** (-lam) + (1 - x) ** (-lam)) ** 2


def logit_density_literal(y, logit, temperature):
    r"""App. C.3.2 literally: :math:`\log\lambda - \lambda y + \log\alpha - 2\log(1 + \exp(-\lambda y + \log\alpha))`
    (NumPy, working precision of ``y``; ``exp`` overflows once :math:`\log\alpha - \lambda y > 88.7` in
    float32, 709.8 in float64)."""
    y = np.asarray(y)
    lam, la = y.dtype.type(temperature), y.dtype.type(logit)
    with np.errstate(over="ignore"):
        return np.log(lam) - lam * y + la - 2 * np.log1p(np.exp(-lam * y + la))


# ---------------------------------------------------------------------------------------------------
# The gap between the scores
# ---------------------------------------------------------------------------------------------------

def _range_terms(n: int, r_arr, dps: int, derivative: bool):
    mp = _mp()
    out = np.empty(r_arr.size)
    with mp.workdps(dps):
        coef = [mp.mpf(math.comb(n - 1, j)) * (-1) ** j for j in range(n)]
        for i, rv in enumerate(r_arr.ravel()):
            if rv <= 0:
                out[i] = 0.0
                continue
            c = mp.e ** (-mp.mpf(float(rv)))
            if derivative:
                s = mp.fsum(cj * (n - 1 - j) * c / (1 + j + (n - 1 - j) * c) ** 2 for j, cj in enumerate(coef))
            else:
                s = mp.fsum(cj / (1 + j + (n - 1 - j) * c) for j, cj in enumerate(coef))
            out[i] = float(n * s)
    return out.reshape(r_arr.shape) if r_arr.ndim else float(out[0])


def gumbel_range_cdf(r, n: int, dps: int | None = None):
    r"""CDF of the range :math:`R_n = \max_k G_k - \min_k G_k` of ``n`` i.i.d. standard Gumbels:

    .. math:: P(R_n \le r) = n \sum_{j=0}^{n-1} \binom{n-1}{j} \frac{(-1)^j}{1 + j + (n-1-j)e^{-r}}.

    (Condition on the minimum :math:`m`, substitute :math:`t = e^{-m}` and expand
    :math:`(e^{-te^{-r}} - e^{-t})^{n-1}` binomially.)  The alternating sum cancels badly for large
    ``n`` (terms up to :math:`\binom{n-1}{(n-1)/2}`), so it is evaluated with ``dps`` digits (default:
    20 more than the number of digits of the largest binomial coefficient).  For uniform :math:`\alpha`
    the gap between the largest and smallest Concrete score :math:`(\log\alpha_k + G_k)/\lambda` is
    :math:`R_n/\lambda`.
    """
    n = int(n)
    dps = dps or 20 + len(str(math.comb(n - 1, (n - 1) // 2)))
    return _range_terms(n, np.asarray(r, dtype=np.float64), dps, derivative=False)


def gumbel_range_pdf(r, n: int, dps: int | None = None):
    r"""Density of :math:`R_n`, the derivative of :func:`gumbel_range_cdf`:
    :math:`n \sum_j \binom{n-1}{j} (-1)^j (n-1-j) e^{-r} / (1 + j + (n-1-j)e^{-r})^2`."""
    n = int(n)
    dps = dps or 20 + len(str(math.comb(n - 1, (n - 1) // 2)))
    return _range_terms(n, np.asarray(r, dtype=np.float64), dps, derivative=True)


def gumbel_range_quantile(q: float, n: int) -> float:
    """The ``q``-quantile of :math:`R_n` (root of :func:`gumbel_range_cdf` by Brent's method)."""
    from scipy.optimize import brentq

    return float(brentq(lambda r: gumbel_range_cdf(r, n) - q, 1e-9, 200.0, xtol=1e-13, rtol=1e-13))


def score_gaps(n: int, temperature: float, size: int, rng, logits=None) -> np.ndarray:
    r"""Monte Carlo gaps :math:`\max_k s_k - \min_k s_k` of the Concrete scores
    :math:`s_k = (\log\alpha_k + G_k)/\lambda` (uniform :math:`\alpha` unless ``logits`` given)."""
    from .gumbel import sample_gumbel

    la = np.zeros(n) if logits is None else np.asarray(logits, dtype=np.float64)
    s = (la + sample_gumbel((int(size), n), rng)) / temperature
    return s.max(axis=1) - s.min(axis=1)


def min_log_coordinate(n: int, temperature: float, size: int, rng, logits=None) -> np.ndarray:
    r""":math:`\min_k Y_k` of float64 ExpConcrete samples (:func:`concrete_ref.exp_concrete_sample`):
    a float32 simplex sample :math:`x = e^{Y}` has a coordinate exactly 0 when this is below
    :data:`FLOAT32_EXP_UNDERFLOW`."""
    from .concrete import exp_concrete_sample

    la = np.zeros(n) if logits is None else np.asarray(logits, dtype=np.float64)
    return exp_concrete_sample(la, float(temperature), rng, size=int(size)).min(axis=-1)


# ---------------------------------------------------------------------------------------------------
# Binary Concrete: Proposition 2
# ---------------------------------------------------------------------------------------------------

def middle_mass(temperature, logit, eps: float):
    r"""Proposition 2(c): :math:`P(\epsilon < X < 1 - \epsilon) = \sigma(\lambda b - \log\alpha) - \sigma(-\lambda b - \log\alpha)`,
    :math:`b = \mathrm{logit}(1 - \epsilon)`, from the CDF (4.1)."""
    b = math.log1p(-eps) - math.log(eps)
    lam = np.asarray(temperature, dtype=np.float64)
    return expit(lam * b - logit) - expit(-lam * b - logit)


def middle_mass_bound(temperature, eps: float):
    r"""The bound :math:`P(\epsilon < X < 1-\epsilon) \le \lambda\,\mathrm{logit}(1-\epsilon)/2` (mean value
    theorem, :math:`\sigma' \le 1/4`): it tends to 0 with :math:`\lambda`, for every :math:`\alpha`."""
    return np.asarray(temperature, dtype=np.float64) * (math.log1p(-eps) - math.log(eps)) / 2


def log_convexity_decomposition(x, logit, temperature):
    r"""(4.2): :math:`\log p_{\alpha,\lambda}(x) = \log\lambda + \log\alpha + (\lambda - 1)\log\big(x(1-x)\big)
    - 2\log\big(\alpha(1-x)^\lambda + x^\lambda\big)`, Eq. (17) with :math:`x^{-\lambda}(1-x)^{-\lambda}`
    taken out of the bracket.  For :math:`\lambda \le 1` both terms are convex (autograd-differentiable)."""
    import autograd.numpy as anp

    return (anp.log(temperature) + logit + (temperature - 1) * (anp.log(x) + anp.log1p(-x))
            - 2 * anp.log(anp.exp(logit) * (1 - x) ** temperature + x ** temperature))


# ---------------------------------------------------------------------------------------------------
# The reference measure of kappa: two charts of the log-simplex
# ---------------------------------------------------------------------------------------------------

def softmax_chart(u):
    r"""The chart of the log-ratio (relative) coordinates of Chapter 3:
    :math:`w \in \mathbb{R}^{n-1} \mapsto y = (w, 0) - \mathrm{L\Sigma E}(w, 0)`, a point of the log-simplex with
    :math:`w_k = y_k - y_n`.  ``u`` (the argument, :math:`w`) has shape ``(..., n-1)``."""
    u = np.asarray(u, dtype=np.float64)
    full = np.concatenate([u, np.zeros(u.shape[:-1] + (1,))], axis=-1)
    return full - logsumexp(full, axis=-1, keepdims=True)


def softmax_chart_jacobian_det(u) -> float:
    r""":math:`\det \partial x_{1:n-1}/\partial w` for :math:`x = \mathrm{softmax}(w, 0)`, by autograd's Jacobian
    (a single point ``u`` of shape ``(n-1,)``).  (4.7) says it equals :math:`\prod_{k=1}^n x_k`."""
    import autograd.numpy as anp
    from autograd import jacobian

    def first_coordinates(v):
        full = anp.concatenate([v, anp.zeros(1)])
        e = anp.exp(full - anp.max(full))
        return (e / anp.sum(e))[:-1]

    return float(np.linalg.det(jacobian(first_coordinates)(np.asarray(u, dtype=np.float64))))


def exp_chart_jacobian_det(y_first) -> float:
    r""":math:`\det \partial x_{1:n-1}/\partial y_{1:n-1}` for :math:`x_k = e^{y_k}` (the first-coordinates chart),
    by autograd's Jacobian; it equals :math:`\prod_{k<n} x_k` (no factor :math:`x_n`)."""
    import autograd.numpy as anp
    from autograd import jacobian

    return float(np.linalg.det(jacobian(anp.exp)(np.asarray(y_first, dtype=np.float64))))


def relative_density_integral(log_density, logits, temperature, rtol: float = 1e-10) -> float:
    r"""Integral of ``exp(log_density(y, logits, temperature))`` over the relative coordinates
    :math:`w = (y_1 - y_3, y_2 - y_3) \in \mathbb{R}^2` of the log-simplex (``n = 3``, :func:`softmax_chart`),
    by adaptive cubature (``scipy.integrate.cubature``) on the box of half-width :math:`36/\lambda`, outside
    which an ExpConcrete distribution has mass below :math:`10^{-14}` (:math:`w_k` is a shifted logistic
    variable divided by :math:`\lambda`)."""
    half = 36.0 / temperature

    def f(u):
        return np.exp(log_density(softmax_chart(u), logits, temperature))

    return float(integrate.cubature(f, [-half, -half], [half, half], rtol=rtol, atol=1e-14).estimate)


# ---------------------------------------------------------------------------------------------------
# KL divergences
# ---------------------------------------------------------------------------------------------------

def bernoulli_kl(logit_q, logit_p) -> float:
    r"""KL between the discrete units :math:`\mathrm{Bernoulli}(\sigma(\log\alpha))` and
    :math:`\mathrm{Bernoulli}(\sigma(\log a))`."""
    q1, p1 = expit(logit_q), expit(logit_p)
    return float(q1 * (math.log(q1) - math.log(p1)) + (1 - q1) * (math.log1p(-q1) - math.log1p(-p1)))


def binary_relaxed_kl(logit_q, temp_q, logit_p, temp_p, log_density=None) -> float:
    r""":math:`\mathrm{KL}(\mathrm{BinConcrete}(\alpha, \lambda_1)\,\|\,\mathrm{BinConcrete}(a, \lambda_2))`
    by adaptive quadrature in logit space, :math:`\int g_q \log(g_q/g_p)\,dy` (``log_density`` defaults to
    :func:`concrete_ref.logistic_log_density`; the Jacobian of :math:`\sigma` cancels in the ratio)."""
    if log_density is None:
        from .binary import logistic_log_density as log_density

    centre = logit_q / temp_q
    scale = 1.0 / temp_q

    def f(y):
        lq = log_density(y, logit_q, temp_q)
        return np.exp(lq) * (lq - log_density(y, logit_p, temp_p))

    pieces = [integrate.quad(f, centre + a * scale, centre + b * scale, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
              for a, b in ((-60, -10), (-10, 0), (0, 10), (10, 60))]
    return float(sum(pieces))


def sigmoid_rounding_thresholds(dtype) -> tuple[float, float]:
    r"""Where :math:`\sigma(y) = 1/(1 + e^{-y})` computed in ``dtype`` rounds to exactly 1 (for :math:`y` above
    the first number) and to exactly 0 (below the second), found by bisection."""
    dtype = np.dtype(dtype).type

    def sig(v):
        with np.errstate(over="ignore"):
            v = dtype(v)
            return dtype(1) / (dtype(1) + np.exp(-v))

    def bisect(lo, hi, pred):  # pred(lo) False, pred(hi) True
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if pred(mid) else (mid, hi)
        return hi

    to_one = bisect(0.0, 1000.0, lambda v: sig(v) == 1)
    to_zero = -bisect(0.0, 1000.0, lambda v: sig(-v) == 0)
    return float(to_one), float(to_zero)


# ---------------------------------------------------------------------------------------------------
# Checks (each takes the formula it tests, so a perturbed formula can be shown to fail)
# ---------------------------------------------------------------------------------------------------

def check_logistic_difference(cdf=None, n: int = 200_000, seed: int = 0, level: float = 1e-3) -> Check:
    r""":math:`G_1 - G_2` is standard logistic: one-sample KS distance of ``n`` differences against ``cdf``
    (default the standard logistic CDF) below the critical value at ``level``."""
    from .gumbel import sample_gumbel

    cdf = stats.logistic.cdf if cdf is None else cdf
    g = sample_gumbel((n, 2), np.random.default_rng(seed))
    ks = stats.kstest(g[:, 0] - g[:, 1], cdf).statistic
    return Check("G1 - G2 is standard logistic", "KS distance", ks, ks_critical_value(level, n))


def check_binary_sampler(sampler=None, temperatures=(0.5, 1.0, 2.0), logit=math.log(2.0), n: int = 200_000,
                         seed: int = 0, level: float = 1e-3) -> Check:
    r"""Eq. (16) is the first coordinate of a two-state Concrete sample (Eq. 10): two-sample KS distance
    between ``sampler(logit, lam, rng, size=n)`` (default :func:`concrete_ref.binary_concrete_sample`) and
    the first coordinate of :func:`concrete_ref.concrete_sample` at logits :math:`(\log\alpha, 0)`."""
    from .binary import binary_concrete_sample
    from .concrete import concrete_sample

    sampler = binary_concrete_sample if sampler is None else sampler
    rng = np.random.default_rng(seed)
    worst = 0.0
    for lam in temperatures:
        a = sampler(logit, lam, rng, size=n)
        b = concrete_sample(np.array([logit, 0.0]), lam, rng, size=n)[:, 0]
        worst = max(worst, stats.ks_2samp(a, b).statistic)
    return Check("Eq. (16) = first coordinate of two-state Eq. (10)", "max KS distance", worst,
                 ks_critical_value(level, n, n), cases=len(temperatures))


def check_binary_cdf(cdf=None, temperatures=(0.5, 1.0, 2.0), logit=math.log(2.0), n: int = 200_000, seed: int = 1,
                     level: float = 1e-3) -> Check:
    r"""The CDF (4.1): one-sample KS distance of Eq. (16) samples against ``cdf(x, logit, lam)``
    (default :func:`binary_cdf`)."""
    from .binary import binary_concrete_sample

    cdf = binary_cdf if cdf is None else cdf
    rng = np.random.default_rng(seed)
    worst = 0.0
    for lam in temperatures:
        x = binary_concrete_sample(logit, lam, rng, size=n)
        worst = max(worst, stats.kstest(x, lambda v, lam=lam: cdf(v, logit, lam)).statistic)
    return Check("Eq. (16) samples follow the CDF (4.1)", "max KS distance", worst, ks_critical_value(level, n),
                 cases=len(temperatures))


def check_eq17_density(density=None, temperatures=(0.5, 1.0, 2.0), logit=math.log(2.0),
                       points=(0.1, 0.3, 0.5, 0.7, 0.9), tol: float = 1e-9) -> list[Check]:
    r"""Eq. (17) as printed (``density(x, logit, lam)``, default :func:`eq17_density_float` in float64) is the
    density of the CDF (4.1): its quadrature from 0 to each point equals (4.1), and from 0 to 1 equals 1."""
    density = eq17_density_float if density is None else density
    worst_cdf = worst_total = 0.0

    def quad(lo, hi, lam):
        return integrate.quad(lambda t: float(density(np.float64(t), logit, lam)), lo, hi,
                              epsabs=1e-13, epsrel=1e-11, limit=200)[0]

    for lam in temperatures:
        for p in points:
            worst_cdf = max(worst_cdf, abs(quad(0.0, p, lam) - float(binary_cdf(p, logit, lam))))
        worst_total = max(worst_total, abs(quad(0.0, 1.0, lam) - 1.0))
    cases = len(temperatures)
    return [Check("quadrature of Eq. (17) as printed = CDF (4.1)", "max abs. difference", worst_cdf, tol,
                  cases=cases * len(points)),
            Check("Eq. (17) as printed integrates to 1", "max abs(integral - 1)", worst_total, tol, cases=cases)]


def check_prop2b(probability=None, temperatures=(0.1, 2 / 3, 3.0), logit=math.log(2.0), n: int = 400_000,
                 seed: int = 1) -> Check:
    r"""Proposition 2(b): the frequency of :math:`X > 1/2` (i.e. :math:`Y > 0` in logit space) is within
    4 standard errors of ``probability(alpha)`` (default :math:`\alpha/(1+\alpha)`) at every temperature.
    The measured value is the largest :math:`|\hat p - p|` in standard errors."""
    from .binary import logistic_sample

    probability = (lambda a: a / (1 + a)) if probability is None else probability
    alpha = math.exp(logit)
    p = probability(alpha)
    worst = 0.0
    for lam in temperatures:
        y = logistic_sample(logit, lam, np.random.default_rng(seed), size=n)
        se = math.sqrt(p * (1 - p) / n)
        worst = max(worst, abs(float(np.mean(y > 0)) - p) / se)
    return Check("Prop. 2(b): P(X > 1/2) = alpha/(1 + alpha)", "max abs. error in s.e.", worst, 4.0,
                 cases=len(temperatures))


def check_prop2c(mass=None, logit=math.log(2.0), eps: float = 1e-3, n: int = 400_000, seed: int = 2) -> list[Check]:
    r"""Proposition 2(c), three checks of ``mass(lam, logit, eps)`` (default :func:`middle_mass`):

    * it equals the Monte Carlo frequency of :math:`\epsilon < X < 1 - \epsilon` (within 4 s.e.) at
      :math:`\lambda = 1, 0.1, 0.01`;
    * it is below the bound :func:`middle_mass_bound` at :math:`\lambda = 10^{0}, \dots, 10^{-6}`;
    * :math:`\lambda \to 0`: its ratio to the first-order term :math:`2\lambda b\,\sigma(\log\alpha)\sigma(-\log\alpha)`
      tends to 1 (relative difference below 1e-3 at :math:`\lambda = 10^{-4}`).
    """
    from .binary import logistic_sample

    mass = middle_mass if mass is None else mass
    b = math.log1p(-eps) - math.log(eps)
    worst_se = 0.0
    for lam in (1.0, 0.1, 0.01):
        y = logistic_sample(logit, lam, np.random.default_rng(seed), size=n)
        # eps < sigma(y) < 1 - eps  <=>  -b < y < b
        freq = float(np.mean((y > -b) & (y < b)))
        m = float(mass(lam, logit, eps))
        worst_se = max(worst_se, abs(freq - m) / math.sqrt(max(m * (1 - m), 1e-12) / n))
    lams = np.logspace(0, -6, 13)
    ratio = float(np.max(np.asarray(mass(lams, logit, eps)) / middle_mass_bound(lams, eps)))
    first_order = 2 * 1e-4 * b * expit(logit) * expit(-logit)
    rel = abs(float(mass(1e-4, logit, eps)) / first_order - 1)
    return [Check("Prop. 2(c): middle mass from (4.1) = Monte Carlo", "max abs. error in s.e.", worst_se, 4.0, cases=3),
            Check("Prop. 2(c): middle mass <= lambda logit(1 - eps)/2", "max mass / bound", ratio, 1.0, cases=13),
            Check("Prop. 2(c): middle mass ~ 2 lambda b sigma'(log alpha) as lambda -> 0",
                  "relative difference at lambda = 1e-4", rel, 1e-3)]


def check_prop2d(log_density=None, alphas=(0.1, 1.0, 2.0, 10.0), convex=(0.3, 0.5, 1.0), not_convex=(1.05, 2.0),
                 grid=None, tol: float = 1e-9) -> list[Check]:
    r"""Proposition 2(d): the second derivative in :math:`x` (autograd) of ``log_density(x, logit, lam)``
    (default :func:`concrete_ref.binary_concrete_log_density`) on a grid of 999 points of (0, 1) is at
    least ``-tol`` for every :math:`\alpha` when :math:`\lambda \le 1`, and clearly negative (below -1)
    somewhere for every :math:`\alpha` when :math:`\lambda > 1`."""
    from autograd import elementwise_grad

    from .binary import binary_concrete_log_density

    log_density = binary_concrete_log_density if log_density is None else log_density
    xs = np.linspace(0.001, 0.999, 999) if grid is None else grid

    def min_second(lam, a):
        f = lambda x: log_density(x, math.log(a), lam)  # noqa: E731
        return float(elementwise_grad(elementwise_grad(f))(xs).min())

    worst_convex = min(min_second(lam, a) for lam in convex for a in alphas)
    best_nonconvex = max(min_second(lam, a) for lam in not_convex for a in alphas)
    return [Check("Prop. 2(d): log-convex for lambda <= 1", "min second derivative", worst_convex, -tol,
                  relation=">", cases=len(convex) * len(alphas)),
            Check("Prop. 2(d): not log-convex for lambda > 1", "max over alpha of min second derivative",
                  best_nonconvex, -1.0, cases=len(not_convex) * len(alphas))]


def check_log_convexity_decomposition(decomposition=None, temperatures=(0.3, 1.0, 2.0), alphas=(0.1, 2.0, 10.0),
                                      tol: float = 1e-12) -> Check:
    r"""(4.2) (``decomposition(x, logit, lam)``, default :func:`log_convexity_decomposition`) equals Eq. (17)
    as printed at 60 digits (:func:`eq17_log_density_printed`), on 41 points of (0, 1)."""
    decomposition = log_convexity_decomposition if decomposition is None else decomposition
    y = np.linspace(-6, 6, 41)
    x = expit(y)
    worst = 0.0
    for lam in temperatures:
        for a in alphas:
            ours = np.asarray(decomposition(x, math.log(a), lam))
            exact = eq17_log_density_printed(y, math.log(a), lam)
            worst = max(worst, float(np.max(np.abs(ours - exact) / np.maximum(1, np.abs(exact)))))
    return Check("(4.2) = Eq. (17) as printed (60 digits)", "max relative error", worst, tol,
                 cases=len(temperatures) * len(alphas))


def check_gumbel_range(cdf=None, ns=(2, 10, 100), size: int = 100_000, seed: int = 3, level: float = 1e-3) -> Check:
    r"""(4.3): one-sample KS distance between Monte Carlo ranges of ``n`` Gumbels and ``cdf(r, n)`` (default
    :func:`gumbel_range_cdf`, interpolated on a fine grid) below the critical value, for each ``n``."""
    cdf = gumbel_range_cdf if cdf is None else cdf
    worst = 0.0
    for n in ns:
        r = score_gaps(n, 1.0, size, np.random.default_rng(seed))
        grid = np.linspace(0.0, float(r.max()) + 1.0, 600)
        table = np.asarray(cdf(grid, n), dtype=np.float64)
        worst = max(worst, stats.kstest(r, lambda v: np.interp(v, grid, table)).statistic)
    return Check("(4.3): CDF of the range of n Gumbels", "max KS distance", worst, ks_critical_value(level, size),
                 cases=len(ns))


_LA4 = np.log([2.0, 0.5, 1.0, 3.0])


def check_exp_concrete_density(log_density=None, temperatures=(0.1, 0.5, 1.0, 2.0), logits=_LA4, size: int = 200,
                               seed: int = 2, tol: float = 1e-12) -> Check:
    r"""(4.5): ``log_density(y, logits, lam)`` (default :func:`concrete_ref.exp_concrete_log_density`) against
    the 60-digit App. C.3.1 formula (:func:`exp_concrete_log_density_printed`) on ExpConcrete samples."""
    from .concrete import exp_concrete_log_density, exp_concrete_sample

    log_density = exp_concrete_log_density if log_density is None else log_density
    worst = 0.0
    for lam in temperatures:
        y = exp_concrete_sample(logits, lam, np.random.default_rng(seed), size=size)
        ours = np.asarray(log_density(y, logits, lam))
        exact = exp_concrete_log_density_printed(y, logits, lam)
        worst = max(worst, float(np.max(np.abs(ours - exact) / np.maximum(1, np.abs(exact)))))
    return Check("(4.5) = App. C.3.1 at 60 digits", "max relative error", worst, tol, cases=len(temperatures) * size)


def check_eq44(log_jacobian=None, log_density=None, temperatures=(0.1, 0.5, 1.0, 2.0), logits=_LA4, size: int = 100,
               seed: int = 4, tol: float = 1e-12) -> Check:
    r"""(4.6): :math:`\log\kappa(y) = \log p(e^y) + \text{log\_jacobian}(y)` with :math:`\log\kappa` from
    ``log_density`` (default :func:`concrete_ref.exp_concrete_log_density`, log space) and :math:`\log p` from
    Eq. (11) as printed at 60 digits (:func:`eq11_log_density_printed`, independent code); ``log_jacobian``
    defaults to :math:`\sum_{k=1}^n y_k`.  Includes :math:`\lambda = 0.1`, where float32 :math:`e^y` underflows."""
    from .concrete import exp_concrete_log_density, exp_concrete_sample

    log_density = exp_concrete_log_density if log_density is None else log_density
    log_jacobian = (lambda y: np.sum(y, axis=-1)) if log_jacobian is None else log_jacobian
    worst = 0.0
    for lam in temperatures:
        y = exp_concrete_sample(logits, lam, np.random.default_rng(seed), size=size)
        ours = np.asarray(log_density(y, logits, lam))
        via_simplex = eq11_log_density_printed(y, logits, lam) + log_jacobian(y)
        worst = max(worst, float(np.max(np.abs(ours - via_simplex) / np.maximum(1, np.abs(ours)))))
    return Check("(4.6): log kappa(y) = log p(e^y) [Eq. (11), 60 digits] + sum_k y_k", "max relative difference",
                 worst, tol, cases=len(temperatures) * size)


def check_chart_determinants(relative_det=None, first_det=None, ns=(2, 3, 5, 8), points: int = 20, seed: int = 5,
                             tol: float = 1e-12) -> list[Check]:
    r"""(4.7): autograd's Jacobian determinants of the two charts against the closed forms
    ``relative_det(x)`` (default :math:`\prod_{k=1}^n x_k`) and ``first_det(x)`` (default
    :math:`\prod_{k<n} x_k`), at random points, relative error."""
    relative_det = (lambda x: np.prod(x)) if relative_det is None else relative_det
    first_det = (lambda x: np.prod(x[:-1])) if first_det is None else first_det
    rng = np.random.default_rng(seed)
    worst_rel = worst_first = 0.0
    for n in ns:
        for _ in range(points):
            u = rng.normal(scale=2.0, size=n - 1)
            y = softmax_chart(u)
            x = np.exp(y)
            d = softmax_chart_jacobian_det(u)
            worst_rel = max(worst_rel, abs(d - relative_det(x)) / abs(d))
            d1 = exp_chart_jacobian_det(y[:-1])
            worst_first = max(worst_first, abs(d1 - first_det(x)) / abs(d1))
    cases = len(ns) * points
    return [Check("(4.7): det d x_{1:n-1} / d w = prod_{k=1}^n x_k", "max relative error", worst_rel, tol, cases=cases),
            Check("det d x_{1:n-1} / d y_{1:n-1} = prod_{k<n} x_k", "max relative error", worst_first, tol, cases=cases)]


def check_relative_normalisation(log_density=None, logits=np.log([2.0, 0.5, 1.0]), temperatures=(0.5, 1.0, 2.0),
                                 tol: float = 1e-8) -> Check:
    r"""The reference measure of :math:`\kappa` (``n = 3``): ``exp(log_density)`` (default
    :func:`concrete_ref.exp_concrete_log_density`) integrates to 1 over the relative coordinates
    :math:`w = (y_1 - y_3, y_2 - y_3)` (:func:`relative_density_integral`)."""
    from .concrete import exp_concrete_log_density

    log_density = exp_concrete_log_density if log_density is None else log_density
    worst = max(abs(relative_density_integral(log_density, logits, lam) - 1) for lam in temperatures)
    return Check("kappa integrates to 1 over w = (y_1 - y_3, y_2 - y_3)", "max abs(integral - 1)", worst, tol,
                 cases=len(temperatures))


def simplex_kl_quadrature(logits_q, temp_q, logits_p, temp_p, density=None, rtol: float = 1e-9) -> float:
    r""":math:`\mathrm{KL}(\mathrm{Concrete}(\alpha, \lambda_1)\,\|\,\mathrm{Concrete}(a, \lambda_2))` for ``n = 3``
    in simplex space, from Eq. (11) as printed (``density``, default :func:`eq11_density_float`), by cubature
    over the relative coordinates :math:`w`: :math:`\int q(x(w))\prod_k x_k(w)\,\log(q/p)(x(w))\,dw`."""
    density = eq11_density_float if density is None else density
    half = 36.0 / min(temp_q, temp_p)

    def f(u):
        x = np.exp(softmax_chart(u))
        q, p = density(x, logits_q, temp_q), density(x, logits_p, temp_p)
        with np.errstate(divide="ignore", invalid="ignore"):
            val = q * np.prod(x, axis=-1) * (np.log(q) - np.log(p))
        return np.where(q > 0, val, 0.0)

    return float(integrate.cubature(f, [-half, -half], [half, half], rtol=rtol, atol=1e-14).estimate)


def check_kl_invariance(log_density=None, logits_q=np.log([2.0, 0.5, 1.0]), temp_q=2 / 3, logits_p=np.zeros(3),
                        temp_p=0.5, size: int = 100_000, seed: int = 3) -> tuple[Check, float, float, float]:
    r"""KL is the same in log and simplex space: the Monte Carlo mean of the log-space ratio
    :math:`\log\kappa_q(Y) - \log\kappa_p(Y)` (``log_density``, default
    :func:`concrete_ref.exp_concrete_log_density`) over ExpConcrete samples is within 4 standard errors of
    the simplex-space KL from Eq. (11) as printed (:func:`simplex_kl_quadrature`).

    Returns the check, the Monte Carlo estimate, its standard error and the quadrature value.
    """
    from .concrete import exp_concrete_log_density, exp_concrete_sample

    log_density = exp_concrete_log_density if log_density is None else log_density
    y = exp_concrete_sample(logits_q, temp_q, np.random.default_rng(seed), size=size)
    ratio = np.asarray(log_density(y, logits_q, temp_q)) - np.asarray(log_density(y, logits_p, temp_p))
    mc, se = float(ratio.mean()), float(ratio.std() / math.sqrt(size))
    quad = simplex_kl_quadrature(logits_q, temp_q, logits_p, temp_p)
    return Check("KL in log space (Monte Carlo) = KL in simplex space (Eq. (11) by cubature)",
                 "abs. difference in s.e.", abs(mc - quad) / se, 4.0), mc, se, quad


def check_logit_forms(safe=None, temperatures=(0.3, 2 / 3, 1.5), logit=math.log(2.0), tol: float = 1e-12) -> Check:
    r"""(4.9) = (4.8): ``safe(y, logit, lam)`` (default :func:`concrete_ref.logistic_log_density`) against the
    literal App. C.3.2 form (:func:`logit_density_literal`) in float64 on :math:`y \in [-8, 8]`, where the
    literal form does not overflow."""
    from .binary import logistic_log_density

    safe = logistic_log_density if safe is None else safe
    y = np.linspace(-8, 8, 161)
    worst = 0.0
    for lam in temperatures:
        a, b = np.asarray(safe(y, logit, lam)), logit_density_literal(y, logit, lam)
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(1, np.abs(b)))))
    return Check("(4.9) = (4.8), the literal App. C.3.2 form", "max relative difference", worst, tol,
                 cases=len(temperatures) * y.size)


def check_logit_vs_eq17(log_jacobian=None, safe=None, temperatures=(0.3, 2 / 3, 1.5), logit=math.log(2.0),
                        tol: float = 1e-12) -> Check:
    r"""(4.8) is Eq. (17) times the sigmoid's Jacobian: ``safe(y)`` (default
    :func:`concrete_ref.logistic_log_density`) against Eq. (17) **as printed**, at 60 digits at
    :math:`x = \sigma(y)` (:func:`eq17_log_density_printed`), plus ``log_jacobian(y)`` (default
    :math:`\log\sigma(y) + \log\sigma(-y)`), on :math:`y \in [-40, 40]`."""
    from .binary import logistic_log_density

    safe = logistic_log_density if safe is None else safe
    log_jacobian = (lambda v: -np.logaddexp(0, -v) - np.logaddexp(0, v)) if log_jacobian is None else log_jacobian
    y = np.linspace(-40, 40, 81)
    worst = 0.0
    for lam in temperatures:
        a = np.asarray(safe(y, logit, lam))
        b = eq17_log_density_printed(y, logit, lam) + log_jacobian(y)
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(1, np.abs(b)))))
    return Check("(4.8) = Eq. (17) as printed (60 digits) + log sigma'(y)", "max relative difference", worst, tol,
                 cases=len(temperatures) * y.size)



def check_stability_exp_concrete(log_density=None, ns=(2, 10, 100, 1000), temperatures=(0.01, 0.05, 0.1, 1.0),
                                 dtypes=(np.float32, np.float64), seed_offset: int = 0) -> Check:
    r"""The stability bar, log space: ``log_density`` (default :func:`concrete_ref.exp_concrete_log_density`)
    is finite, in the sample's dtype, on :func:`concrete_ref.exp_concrete_sample`'s own samples (2,000 per
    case, 200 for :math:`n = 1000`; logits standard normal times 2), for every :math:`n`, temperature and
    dtype.  The measured value is the number of non-finite results (or of results in the wrong dtype)."""
    from .concrete import exp_concrete_log_density, exp_concrete_sample

    log_density = exp_concrete_log_density if log_density is None else log_density
    bad = cases = 0
    for dtype in dtypes:
        for k in ns:
            for lam in temperatures:
                rng = np.random.default_rng(k + seed_offset)
                logits = rng.normal(scale=2.0, size=k).astype(dtype)
                y = exp_concrete_sample(logits, dtype(lam), rng, size=2000 if k < 1000 else 200)
                lp = np.asarray(log_density(y, logits, dtype(lam)))
                bad += int(np.count_nonzero(~np.isfinite(lp))) + (0 if lp.dtype == dtype else lp.size)
                cases += 1
    return Check("exp_concrete_log_density on its own samples, n <= 1000, lambda >= 0.01, float32 and float64",
                 "non-finite values", bad, 0, relation="==", cases=cases)


def check_stability_logistic(log_density=None, dtype=np.float32, temperatures=(0.01, 0.1, 1.0)) -> list[Check]:
    r"""The stability bar, logit space: ``log_density`` (default :func:`concrete_ref.logistic_log_density`) is
    finite on the grid :math:`|y| \le 100`, :math:`|\log\alpha| \le 50` (41 x 21 points) at each temperature,
    and within a relative ``1e-6`` (float32) or ``1e-13`` (float64) of App. C.3.2 evaluated with 60 digits at
    the same (rounded) inputs."""
    from .binary import logistic_log_density

    log_density = logistic_log_density if log_density is None else log_density
    tol = 1e-6 if np.dtype(dtype) == np.float32 else 1e-13
    ys = np.linspace(-100, 100, 41).astype(dtype)
    lgs = np.linspace(-50, 50, 21).astype(dtype)
    worst, bad = 0.0, 0
    for lam in temperatures:
        ours = np.asarray(log_density(ys[:, None], lgs[None, :], dtype(lam)))
        bad += int(np.count_nonzero(~np.isfinite(ours)))
        exact = logit_log_density_printed(ys[:, None], lgs[None, :], float(dtype(lam)))
        worst = max(worst, float(np.max(np.abs(ours - exact) / np.abs(exact))))
    name = np.dtype(dtype).name
    cases = len(temperatures) * ys.size * lgs.size
    return [Check(f"logistic_log_density {name}, abs(y) <= 100, abs(logit) <= 50", "non-finite values", bad, 0,
                  relation="==", cases=cases),
            Check(f"logistic_log_density {name} against App. C.3.2 at 60 digits", "max relative error", worst, tol,
                  cases=cases)]


def logit_log_density_printed(y, logit, temperature, dps: int = 60) -> np.ndarray:
    r"""App. C.3.2 as printed, :math:`\log\lambda - \lambda y + \log\alpha - 2\log(1 + \exp(-\lambda y + \log\alpha))`,
    with ``dps`` digits, elementwise over the broadcast of ``y`` and ``logit`` (float64 result)."""
    mp = _mp()
    y, logit = np.broadcast_arrays(np.asarray(y, dtype=np.float64), np.asarray(logit, dtype=np.float64))
    out = np.empty(y.size)
    with mp.workdps(dps):
        lam = mp.mpf(float(temperature))
        for i, (v, a) in enumerate(zip(y.ravel(), logit.ravel())):
            t = -lam * mp.mpf(float(v)) + mp.mpf(float(a))
            out[i] = float(mp.log(lam) + t - 2 * mp.log(1 + mp.e ** t))
    return out.reshape(y.shape)
