"""An independent high-precision implementation of the paper's formulas, written with mpmath.

It shares no code with concrete_ref: each density is the paper's formula typed as printed (the naive
product form of Eq. 11 and Eq. 17), evaluated with 60 significant digits, so that rounding and
cancellation, the things the reference implementation is careful about, cannot matter here.
"""

from __future__ import annotations

import mpmath as mp

mp.mp.dps = 60


def _mpf_list(v):
    return [mp.mpf(float(a)) for a in v]


def concrete_log_density(x, logits, temperature):
    """Eq. 11: (n-1)! lam^(n-1) prod_k alpha_k x_k^(-lam-1) / (sum_i alpha_i x_i^(-lam))."""
    x, alpha = _mpf_list(x), [mp.e ** a for a in _mpf_list(logits)]
    lam, n = mp.mpf(float(temperature)), len(x)
    denom = mp.fsum(a * xi ** (-lam) for a, xi in zip(alpha, x))
    dens = mp.factorial(n - 1) * lam ** (n - 1)
    for a, xi in zip(alpha, x):
        dens *= a * xi ** (-lam - 1) / denom
    return mp.log(dens)


def exp_concrete_log_density(y, logits, temperature):
    """App. C.3.1: log((n-1)!) + (n-1) log lam + sum_k (log a_k - lam y_k) - n LSE_k(log a_k - lam y_k)."""
    y, la = _mpf_list(y), _mpf_list(logits)
    lam, n = mp.mpf(float(temperature)), len(y)
    t = [a - lam * yk for a, yk in zip(la, y)]
    lse = mp.log(mp.fsum(mp.e ** ti for ti in t))
    return mp.log(mp.factorial(n - 1)) + (n - 1) * mp.log(lam) + mp.fsum(t) - n * lse


def exp_concrete_transform(logits, temperature, gumbels):
    """Eq. 10 in log space: (log a_k + G_k)/lam - LSE_i((log a_i + G_i)/lam)."""
    lam = mp.mpf(float(temperature))
    s = [(a + g) / lam for a, g in zip(_mpf_list(logits), _mpf_list(gumbels))]
    lse = mp.log(mp.fsum(mp.e ** si for si in s))
    return [si - lse for si in s]


def binary_concrete_log_density(x, logit, temperature):
    """Eq. 17: lam a x^(-lam-1) (1-x)^(-lam-1) / (a x^(-lam) + (1-x)^(-lam))^2."""
    x, a, lam = mp.mpf(float(x)), mp.e ** mp.mpf(float(logit)), mp.mpf(float(temperature))
    num = lam * a * x ** (-lam - 1) * (1 - x) ** (-lam - 1)
    return mp.log(num / (a * x ** (-lam) + (1 - x) ** (-lam)) ** 2)


def logistic_log_density(y, logit, temperature):
    """App. C.3.2 as printed: log lam - lam y + log a - 2 log(1 + exp(-lam y + log a))."""
    y, la, lam = mp.mpf(float(y)), mp.mpf(float(logit)), mp.mpf(float(temperature))
    return mp.log(lam) - lam * y + la - 2 * mp.log(1 + mp.e ** (-lam * y + la))


def relative_error(ours: float, exact) -> float:
    """|ours - exact| / max(|exact|, 1): relative error, absolute near zero (log densities cross 0)."""
    exact = mp.mpf(exact)
    return float(abs(mp.mpf(float(ours)) - exact) / max(abs(exact), mp.mpf(1)))
