r"""Gumbel and Logistic noise, and the Gumbel-max trick (paper Section 3.1, Eq. 9; App. B; App. F).

Noise is drawn through the uniform:

* Gumbel:   :math:`G = -\log(-\log U)`, density :math:`\exp(-g - e^{-g})`;
* Logistic: :math:`L = \log U - \log(1 - U)`, density :math:`e^{-l} / (1 + e^{-l})^2`;

with :math:`U` uniform on :math:`[\text{tiny}, 1)` in float64 (``tiny`` = smallest normal float64, as
TensorFlow Probability does, so that ``log U`` is finite).  This truncates the noise to a range that
no practical sample size reaches: :math:`G \in [-6.56, 36.7]` and :math:`L \in [-708.4, 36.7]`; the
mass outside is below :math:`10^{-16}` on each side.  The noise is then cast to the requested dtype.

Gumbel-max trick (Eq. 9): with :math:`G_k` i.i.d. Gumbel,
:math:`P(\arg\max_k \{\log\alpha_k + G_k\} = k) = \alpha_k / \sum_i \alpha_i`.
"""

from __future__ import annotations

import numpy as np
from autograd.tracer import getval

from ._validation import (
    as_real_array,
    check_float_dtype,
    check_logits,
    check_rng,
    check_size,
    result_dtype,
)

__all__ = [
    "sample_uniform",
    "sample_gumbel",
    "sample_logistic",
    "gumbel_log_density",
    "logistic_noise_log_density",
    "gumbel_max_sample",
]

_TINY = np.finfo(np.float64).tiny


def sample_uniform(shape, rng) -> np.ndarray:
    """Uniform noise on ``[tiny, 1)`` in float64, ``tiny`` the smallest normal float64 (about 2.2e-308)."""
    rng = check_rng(rng)
    shape = check_size(shape, "shape")
    u = rng.random(shape)
    # rng.random draws k * 2**-53; only k = 0 lies below tiny, and it is replaced by a fresh draw,
    # so the law is exactly uniform on the grid above tiny (no clipping, no point mass at tiny).
    while True:
        zero = u < _TINY
        if not np.any(zero):
            return u
        u[zero] = rng.random(int(np.count_nonzero(zero)))


def sample_gumbel(shape, rng, dtype=np.float64) -> np.ndarray:
    r"""Standard Gumbel noise :math:`G = -\log(-\log U)` of the given shape.

    Parameters
    ----------
    shape : int or tuple of int
        Shape of the returned array.
    rng : numpy.random.Generator or int
        Source of randomness (an int is used as a seed).
    dtype : numpy floating dtype
        dtype of the result; the noise is computed in float64 and then cast.  Integer (and boolean,
        complex) dtypes are refused: the cast would truncate the continuous noise.
    """
    dtype = check_float_dtype(dtype)
    u = sample_uniform(shape, rng)
    return (-np.log(-np.log(u))).astype(dtype, copy=False)


def sample_logistic(shape, rng, dtype=np.float64) -> np.ndarray:
    r"""Standard Logistic noise :math:`L = \log U - \log(1 - U)`, the difference of two Gumbels (App. B).

    ``shape``, ``rng`` and ``dtype`` as in :func:`sample_gumbel` (a floating dtype; integers refused).
    """
    dtype = check_float_dtype(dtype)
    u = sample_uniform(shape, rng)
    return (np.log(u) - np.log1p(-u)).astype(dtype, copy=False)


def _point(v, name):
    """A density's argument: checked real and finite; a list or tuple becomes an array, an array, a
    scalar or an autograd box passes through unchanged."""
    value = as_real_array(v, name)
    if not np.all(np.isfinite(value)):
        bad = int(value.size - np.count_nonzero(np.isfinite(value)))
        raise ValueError(f"{name} must be finite, in (-inf, inf); got {bad} non-finite entries")
    if v is not getval(v) or isinstance(v, (np.ndarray, np.generic, int, float)):
        return v
    return value


def gumbel_log_density(g):
    r"""Log density of the standard Gumbel, :math:`\log f(g) = -g - e^{-g}` (App. F, Table 3).

    ``g`` is array_like of finite real numbers (a list is converted to an array).
    """
    import autograd.numpy as anp

    g = _point(g, "g")
    return -g - anp.exp(-g)


def logistic_noise_log_density(l):
    r"""Log density of the standard Logistic, :math:`-|l| - 2\log(1 + e^{-|l|})` (symmetric, no overflow).

    ``l`` is array_like of finite real numbers (a list is converted to an array).
    """
    import autograd.numpy as anp

    l = _point(l, "l")
    a = anp.abs(l)
    return -a - 2.0 * anp.log1p(anp.exp(-a))


def gumbel_max_sample(logits, rng, size=None) -> np.ndarray:
    r"""One-hot samples of :math:`D \sim \text{Discrete}(\alpha)` by the Gumbel-max trick (Eq. 9).

    Parameters
    ----------
    logits : array_like, shape (..., K)
        :math:`\log\alpha_k`, finite; need not be normalised.
    rng : numpy.random.Generator or int
    size : None, int or tuple of int
        Leading sample shape; the result has shape ``size + logits.shape``.

    Returns
    -------
    ndarray of the logits' float dtype, one-hot on the last axis.
    """
    check_logits(logits, min_categories=1)
    rng = check_rng(rng)
    logits = as_real_array(logits, "logits")
    dtype = result_dtype(logits)
    shape = check_size(size) + logits.shape
    perturbed = logits.astype(np.float64) + sample_gumbel(shape, rng)
    index = np.argmax(perturbed, axis=-1)
    return (np.arange(logits.shape[-1]) == index[..., None]).astype(dtype)
