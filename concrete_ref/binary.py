r"""Binary Concrete on (0, 1) and its logit-space node (App. B, Eq. 16-17; App. C.3.2, Eq. 26).

``logit`` is the paper's :math:`\log\alpha` (so :math:`P(D_1 = 1) = \alpha/(1+\alpha) = \sigma(\log\alpha)`),
``temperature`` is :math:`\lambda > 0`.  All arguments broadcast elementwise (there is no event axis).

**Logit space** (Eq. 26): :math:`Y = (\log\alpha + L)/\lambda` with :math:`L` standard Logistic, i.e.
a Logistic variable with location :math:`\log\alpha/\lambda` and scale :math:`1/\lambda`.  Its log density

.. math:: \log g_{\alpha,\lambda}(y) = \log\lambda - \lambda y + \log\alpha
   - 2\log(1 + e^{-\lambda y + \log\alpha})
   = \log\lambda - |d| - 2\log(1 + e^{-|d|}), \qquad d = \log\alpha - \lambda y,

is evaluated in the second, symmetric form: :math:`d - 2\,\mathrm{softplus}(d)` equals
:math:`-|d| - 2\log(1 + e^{-|d|})` exactly, and the right side never overflows (PyTorch's
``LogitRelaxedBernoulli`` computes ``exp(d)`` and returns ``-inf`` at d = 100 in float32).

**Unit interval** (Eq. 16-17): :math:`X = \sigma(Y)`, density
:math:`p_{\alpha,\lambda}(x) = \lambda\alpha x^{-\lambda-1}(1-x)^{-\lambda-1} / (\alpha x^{-\lambda} + (1-x)^{-\lambda})^2`,
computed as :math:`\log g(\operatorname{logit} x) - \log x - \log(1 - x)` (change of variables).

Arguments are ``array_like`` (numbers, lists, tuples, nested lists, arrays); a bad one raises
``ValueError`` naming it and the accepted range, and nothing is clipped.
"""

from __future__ import annotations

import warnings

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval

from ._validation import (
    as_float_array,
    as_real_array,
    check_batch_shapes,
    check_noise,
    check_rng,
    check_scalar_logit,
    check_size,
    check_temperature,
    result_dtype,
)
from .concrete import ConcreteUnderflowWarning
from .gumbel import sample_logistic

__all__ = [
    "logistic_transform",
    "logistic_sample",
    "logistic_log_density",
    "binary_concrete_sample",
    "binary_concrete_log_density",
    "sigmoid",
]


def sigmoid(y):
    r""":math:`\sigma(y) = 1/(1 + e^{-y})`, as :math:`\exp(-\mathrm{softplus}(-y))`: accurate in both tails.

    ``y`` is array_like of real numbers (``sigmoid(+-inf)`` is 1 and 0); a list is converted to an array.
    """
    if y is getval(y):  # not an autograd box: check it and make an array of a list
        value = as_real_array(y, "y")
        y = y if isinstance(y, (np.ndarray, np.generic, int, float)) else value
    return anp.exp(-anp.logaddexp(0.0, -y))


def _prepare(logit, temperature, *others):
    check_scalar_logit(logit)
    check_temperature(temperature)
    dtype = result_dtype(logit, temperature, *others)
    return as_float_array(logit, dtype), as_float_array(temperature, dtype), dtype


def _batch(*named):
    """Broadcast shape of ``(name, value)`` pairs (no event axis), or ``ValueError`` naming two of them."""
    return check_batch_shapes(*[(n, np.shape(getval(v)), np.shape(getval(v))) for n, v in named])


def logistic_transform(logit, temperature, noise):
    r"""Eq. 26 without the noise draw: :math:`Y = (\log\alpha + L)/\lambda`; differentiable in all three.

    ``logit`` finite, ``temperature`` in :math:`(0, \infty)`, ``noise`` the Logistic draws :math:`L`
    (finite, floating-point: an integer array is refused); all three broadcast elementwise.
    """
    check_scalar_logit(logit)
    check_temperature(temperature)
    check_noise(noise, "noise")
    _batch(("logit", logit), ("temperature", temperature), ("noise", noise))
    dtype = result_dtype(logit, temperature, noise)
    return _logistic_transform(
        as_float_array(logit, dtype), as_float_array(temperature, dtype), as_float_array(noise, dtype)
    )


def _logistic_transform(logit, temperature, noise):
    return (logit + noise) / temperature


def logistic_sample(logit, temperature, rng, size=None):
    r"""Samples of the logit-space node :math:`Y = (\log\alpha + L)/\lambda` (Eq. 26), shape ``size + batch``."""
    logit, temperature, dtype = _prepare(logit, temperature)
    rng = check_rng(rng)
    batch = _batch(("logit", logit), ("temperature", temperature))
    noise = sample_logistic(check_size(size) + batch, rng, dtype=dtype)
    return _logistic_transform(logit, temperature, noise)


def logistic_log_density(y, logit, temperature):
    r"""Log density :math:`\log g_{\alpha,\lambda}(y)` of the logit-space Binary Concrete node (App. C.3.2).

    Finite and accurate for any finite ``y``, ``logit`` and ``temperature`` > 0 (no exponential of a
    large number is ever formed).
    """
    yv = as_real_array(y, "y")
    logit, temperature, dtype = _prepare(logit, temperature, y)
    _batch(("y", yv), ("logit", logit), ("temperature", temperature))
    if not np.all(np.isfinite(yv)):
        raise ValueError("y must be finite, in (-inf, inf): it is a point of the logit-space node")
    d = anp.abs(logit - temperature * as_float_array(y, dtype))
    return anp.log(temperature) - d - 2.0 * anp.log1p(anp.exp(-d))


def binary_concrete_sample(logit, temperature, rng, size=None):
    r"""Samples of :math:`X \sim \text{BinConcrete}(\alpha, \lambda)` on (0, 1) (Eq. 16): :math:`\sigma(Y)`.

    At low temperatures many samples round to exactly 0 or 1 in the working dtype (for float32,
    whenever :math:`|Y| > 17` or so); a :class:`ConcreteUnderflowWarning` reports how many.  Use
    :func:`logistic_sample` and :func:`logistic_log_density` to stay in logit space.
    """
    x = sigmoid(logistic_sample(logit, temperature, rng, size))
    xv = getval(x)
    edge = (xv == 0) | (xv == 1)
    if np.any(edge):
        warnings.warn(
            f"binary_concrete_sample: {int(np.count_nonzero(edge))} of {np.size(xv)} samples rounded to "
            f"exactly 0 or 1 in {np.asarray(xv).dtype}; the density is undefined there. Use "
            "logistic_sample and logistic_log_density to stay in logit space.",
            ConcreteUnderflowWarning,
            stacklevel=2,
        )
    return x


def binary_concrete_log_density(x, logit, temperature):
    r"""Log density of Binary Concrete on the open unit interval (Eq. 17).

    ``x`` must lie in (0, 1): 0 and 1 raise ``ValueError`` (the density is 0 or infinite there and
    such a value is a rounded sample; evaluate the logit-space density instead).
    """
    xv = as_real_array(x, "x")
    logit, temperature, dtype = _prepare(logit, temperature, x)
    _batch(("x", xv), ("logit", logit), ("temperature", temperature))
    if not np.all(np.isfinite(xv)) or np.any(xv <= 0) or np.any(xv >= 1):
        raise ValueError(
            "x must lie in the open interval (0, 1); got "
            f"min {float(np.min(xv)):.3g}, max {float(np.max(xv)):.3g}"
        )
    x = as_float_array(x, dtype)
    log_x, log_1mx = anp.log(x), anp.log1p(-x)
    d = anp.abs(logit - temperature * (log_x - log_1mx))
    return anp.log(temperature) - d - 2.0 * anp.log1p(anp.exp(-d)) - log_x - log_1mx
