r"""The Concrete distribution on the simplex and ExpConcrete in log space (Sections 3.2, App. C.3.1).

Notation as in the paper: ``logits`` are :math:`\log\alpha_k` (unnormalised, finite), ``temperature``
is :math:`\lambda \in (0, \infty)`, :math:`n = K` is the number of categories (last axis).

**Sampling** (Eq. 10).  With :math:`G_k` i.i.d. Gumbel,

.. math:: X_k = \frac{\exp((\log\alpha_k + G_k)/\lambda)}{\sum_i \exp((\log\alpha_i + G_i)/\lambda)},
   \qquad Y_k = \log X_k = \frac{\log\alpha_k + G_k}{\lambda}
   - \operatorname{L\Sigma E}_i\Big\{\frac{\log\alpha_i + G_i}{\lambda}\Big\}.

:math:`Y \sim \text{ExpConcrete}(\alpha, \lambda)` is computed in log space; :math:`X = e^Y`.

**Densities.**  Concrete (Eq. 11), with respect to Lebesgue measure on the first :math:`n-1`
coordinates of the simplex:

.. math:: \log p_{\alpha,\lambda}(x) = \log((n-1)!) + (n-1)\log\lambda
   + \sum_k \big(\log\alpha_k - (\lambda + 1)\log x_k\big)
   - n \log \sum_i \alpha_i x_i^{-\lambda}.

ExpConcrete (App. C.3.1), with respect to Lebesgue measure on the relative coordinates
:math:`u_k = y_k - y_n`:

.. math:: \log\kappa_{\alpha,\lambda}(y) = \log((n-1)!) + (n-1)\log\lambda
   + \sum_k \operatorname{log\,softmax}_k(\log\alpha - \lambda y),

which is the paper's :math:`\sum_k(\log\alpha_k - \lambda y_k) - n\,\operatorname{L\Sigma E}_k
\{\log\alpha_k - \lambda y_k\}` written as a sum of log-softmax terms, each of moderate size, so that
nothing cancels catastrophically.  It is invariant to adding a constant to every :math:`y_k`, and
to adding a constant to every :math:`\log\alpha_k`; the logits are therefore shifted to
:math:`\max_k \log\alpha_k = 0` before evaluating it (exact math, and it keeps float32 accurate at
logits far from 0).  And :math:`\log p(x) = \log\kappa(\log x) - \sum_k \log x_k`.

**Arguments** are ``array_like``: numbers, lists, tuples, nested lists or arrays.  Every one is
checked and a bad one raises ``ValueError`` naming it and the accepted range; nothing is clipped.

Shapes: ``logits`` has shape ``(..., K)``; ``temperature`` broadcasts against the *batch* shape
``logits.shape[:-1]`` (it never meets the category axis), so a per-row temperature of shape ``(B,)``
with logits ``(B, K)`` gives samples ``(B, K)`` and densities ``(B,)``.  (PyTorch's
``ExpRelaxedCategorical`` returns ``(B, B)`` there for a ``(B, 1)`` temperature, issue #37162.)
"""

from __future__ import annotations

import warnings

import autograd.numpy as anp
import numpy as np
from autograd.scipy.special import logsumexp
from autograd.tracer import getval
from scipy.special import gammaln

from ._validation import (
    as_float_array,
    as_real_array,
    check_batch_shapes,
    check_last_dim,
    check_logits,
    check_noise,
    check_rng,
    check_size,
    check_temperature,
    log_simplex_tolerance,
    result_dtype,
    simplex_tolerance,
)
from .gumbel import sample_gumbel

__all__ = [
    "exp_concrete_transform",
    "exp_concrete_sample",
    "concrete_sample",
    "exp_concrete_log_density",
    "concrete_log_density",
    "ConcreteUnderflowWarning",
]


class ConcreteUnderflowWarning(RuntimeWarning):
    """A simplex-space sample has a coordinate that is exactly 0 (or 1) in its dtype.

    Such a point is outside the open simplex, and its simplex density is undefined; the log-space
    sample it came from is fine.  Use :func:`exp_concrete_sample` and :func:`exp_concrete_log_density`.
    """


def _prepare(logits, temperature):
    check_logits(logits)
    check_temperature(temperature)
    dtype = result_dtype(logits, temperature)
    logits = as_float_array(logits, dtype)
    temperature = as_float_array(temperature, dtype)
    return logits, temperature, dtype


def _batch(point_name, point, logits, temperature) -> tuple:
    """The broadcast batch shape of a point (or noise) of shape ``(..., K)``, the logits and the
    temperature; ``ValueError`` naming the two arguments that do not broadcast."""
    ls, ts = np.shape(getval(logits)), np.shape(getval(temperature))
    entries = [("logits", ls, ls[:-1]), ("temperature", ts, ts)]
    if point_name is not None:
        ps = np.shape(getval(point))
        entries.insert(0, (point_name, ps, ps[:-1]))
    return check_batch_shapes(*entries)


def _exp_concrete_transform(logits, temperature, gumbels):
    z = logits + gumbels
    z = z - getval(anp.max(z, axis=-1, keepdims=True))
    scores = z / anp.expand_dims(temperature, -1)
    return scores - logsumexp(scores, axis=-1, keepdims=True)


def exp_concrete_transform(logits, temperature, gumbels):
    r"""The deterministic part of Eq. 10 in log space: :math:`Y = \operatorname{log\,softmax}((\log\alpha + G)/\lambda)`.

    Differentiable (autograd) in ``logits``, ``temperature`` and ``gumbels``.  The maximum of
    :math:`\log\alpha + G` is subtracted *before* dividing by :math:`\lambda`, so that at small
    temperatures no large scores are formed and rounded (the result is mathematically unchanged).

    Parameters
    ----------
    logits : array_like, shape (..., K)
        :math:`\log\alpha`, finite, K >= 2.
    temperature : float or array_like broadcasting against ``logits.shape[:-1]``
        :math:`\lambda \in (0, \infty)`.
    gumbels : array_like of floats, shape (..., K)
        The noise :math:`G`: finite, floating-point (an integer array is refused), same K; its batch
        shape ``gumbels.shape[:-1]`` broadcasts against ``logits.shape[:-1]`` and the temperature's.

    Returns
    -------
    array of shape ``broadcast(gumbels.shape[:-1], logits.shape[:-1], temperature.shape) + (K,)``.
    """
    check_logits(logits)
    check_temperature(temperature)
    check_noise(gumbels, "gumbels")
    check_last_dim(gumbels, logits, "gumbels")
    _batch("gumbels", gumbels, logits, temperature)
    dtype = result_dtype(logits, temperature, gumbels)
    return _exp_concrete_transform(
        as_float_array(logits, dtype), as_float_array(temperature, dtype), as_float_array(gumbels, dtype)
    )


def exp_concrete_sample(logits, temperature, rng, size=None):
    r"""Samples of :math:`Y \sim \text{ExpConcrete}(\alpha, \lambda)`, i.e. :math:`\log X` for :math:`X \sim \text{Concrete}`.

    Parameters
    ----------
    logits : array_like, shape (..., K)
        :math:`\log\alpha`, finite, K >= 2.
    temperature : float or array_like broadcasting against ``logits.shape[:-1]``
        :math:`\lambda > 0`.
    rng : numpy.random.Generator or int
    size : None, int or tuple of int
        Leading sample shape; the result has shape ``size + batch_shape + (K,)``.

    Returns
    -------
    array with ``logsumexp(y, axis=-1) == 0`` up to rounding; finite for every temperature.
    Differentiable in ``logits`` and ``temperature`` (the reparameterization trick, Eq. 6-7).
    """
    logits, temperature, dtype = _prepare(logits, temperature)
    rng = check_rng(rng)
    batch = _batch(None, None, logits, temperature)
    shape = check_size(size) + batch + (np.shape(getval(logits))[-1],)
    gumbels = sample_gumbel(shape, rng, dtype=dtype)
    return _exp_concrete_transform(logits, temperature, gumbels)


def concrete_sample(logits, temperature, rng, size=None):
    r"""Samples of :math:`X \sim \text{Concrete}(\alpha, \lambda)` on the simplex (Eq. 10).

    Computed as ``exp(exp_concrete_sample(...))``.  At low temperatures small coordinates underflow
    to exactly 0 (for example about 14% of samples at K = 10, lambda = 0.05 in float32); such points
    are not in the open simplex, and a :class:`ConcreteUnderflowWarning` says how many there are.
    Nothing is clipped.  Work in log space to avoid this.
    """
    x = anp.exp(exp_concrete_sample(logits, temperature, rng, size))
    zeros = np.any(getval(x) == 0, axis=-1)
    if np.any(zeros):
        warnings.warn(
            f"concrete_sample: {int(np.count_nonzero(zeros))} of {zeros.size} samples have a coordinate "
            f"that underflowed to 0 in {np.asarray(getval(x)).dtype}; they lie on the boundary of the "
            "simplex, where the Concrete density is undefined. Use exp_concrete_sample and "
            "exp_concrete_log_density to stay in log space.",
            ConcreteUnderflowWarning,
            stacklevel=2,
        )
    return x


def _exp_concrete_log_density(y, logits, temperature, dtype):
    k = np.shape(getval(logits))[-1]
    lam = anp.expand_dims(temperature, -1)
    # kappa is invariant to adding a constant to every log alpha_k, so the logits are normalised to
    # max_k log alpha_k = 0 first (exact math).  Otherwise, at logits near +-1e4, logsumexp would be
    # ~1e4 and its rounding (half an ulp, 5e-4 in float32) would be counted K times in the sum below
    # (0.48 nats at K = 1000).  The shift is a constant for autograd: d kappa / d logits is unchanged.
    logits = logits - np.max(getval(logits), axis=-1, keepdims=True)
    log_softmax = logits - lam * y
    log_softmax = log_softmax - logsumexp(log_softmax, axis=-1, keepdims=True)
    const = np.asarray(gammaln(k), dtype=dtype)
    return const + (k - 1) * anp.log(temperature) + anp.sum(log_softmax, axis=-1)


def exp_concrete_log_density(y, logits, temperature):
    r"""Log density :math:`\log\kappa_{\alpha,\lambda}(y)` of ExpConcrete (App. C.3.1).

    Parameters
    ----------
    y : array_like, shape (..., K)
        A point of the log-simplex: finite, ``logsumexp(y) == 0`` within a dtype-aware tolerance
        (see :func:`concrete_ref._validation.log_simplex_tolerance`).
    logits, temperature : as in :func:`exp_concrete_sample`.

    Returns
    -------
    array of shape ``broadcast(y.shape[:-1], logits.shape[:-1], temperature.shape)``.
    """
    logits, temperature, dtype = _prepare(logits, temperature)
    yv = as_real_array(y, "y")
    check_last_dim(yv, logits, "y")
    _batch("y", yv, logits, temperature)
    dtype = result_dtype(y, logits, temperature)
    if not np.all(np.isfinite(yv)):
        raise ValueError("y must be finite (a point of the log-simplex has every y_k in (-inf, 0])")
    lse = np.abs(_np_logsumexp(yv))
    tol = log_simplex_tolerance(dtype, float(np.max(np.abs(yv), initial=0.0)), yv.shape[-1])
    if np.any(lse > tol):
        raise ValueError(
            f"y must lie on the log-simplex: logsumexp(y, axis=-1) must be 0 within {tol:.3g} for "
            f"{dtype}; got deviations up to {float(np.max(lse)):.3g}"
        )
    return _exp_concrete_log_density(as_float_array(y, dtype), logits, temperature, dtype)


def concrete_log_density(x, logits, temperature):
    r"""Log density :math:`\log p_{\alpha,\lambda}(x)` of the Concrete distribution on the simplex (Eq. 11).

    Parameters
    ----------
    x : array_like, shape (..., K)
        A point of the *open* simplex: every coordinate in (0, 1] and ``sum(x) == 1`` within
        ``simplex_tolerance(dtype, K)``.  Points with a coordinate equal to 0 raise ``ValueError``
        (the density is not defined there); compute such samples in log space instead.
    logits, temperature : as in :func:`exp_concrete_sample`.
    """
    logits, temperature, dtype = _prepare(logits, temperature)
    xv = as_real_array(x, "x")
    check_last_dim(xv, logits, "x")
    _batch("x", xv, logits, temperature)
    dtype = result_dtype(x, logits, temperature)
    if not np.all(np.isfinite(xv)) or np.any(xv <= 0) or np.any(xv > 1):
        raise ValueError(
            "x must lie in the open simplex: every coordinate in (0, 1]; got "
            f"min {float(np.min(xv)):.3g}, max {float(np.max(xv)):.3g}"
            + (" (a coordinate equal to 0 is an underflowed sample: use exp_concrete_log_density)"
               if np.any(xv == 0) else "")
        )
    k = xv.shape[-1]
    err = np.abs(np.sum(xv.astype(np.float64), axis=-1) - 1.0)
    tol = simplex_tolerance(dtype, k)
    if np.any(err > tol):
        raise ValueError(
            f"x must lie on the simplex: sum(x, axis=-1) must be 1 within {tol:.3g} for {dtype} and "
            f"K = {k}; got deviations up to {float(np.max(err)):.3g}"
        )
    log_x = anp.log(as_float_array(x, dtype))
    return _exp_concrete_log_density(log_x, logits, temperature, dtype) - anp.sum(log_x, axis=-1)


def _np_logsumexp(y):
    m = np.max(y, axis=-1, keepdims=True)
    return (m + np.log(np.sum(np.exp(y - m), axis=-1, keepdims=True)))[..., 0]
