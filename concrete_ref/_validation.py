"""Argument checks shared by the reference distributions.

Every public function validates its input here and raises ``ValueError`` naming the argument and the
accepted range.  Nothing is clipped: a point outside the support is an error, not a silently moved
point.  The checks look through autograd's tracing boxes (``getval``) so they cost nothing in gradients.
"""

from __future__ import annotations

import numbers

import numpy as np
from autograd.tracer import getval

__all__ = [
    "as_float_array",
    "check_logits",
    "check_temperature",
    "check_rng",
    "check_size",
    "check_last_dim",
    "result_dtype",
    "simplex_tolerance",
    "log_simplex_tolerance",
]


def result_dtype(*arrays) -> np.dtype:
    """The floating dtype of a computation on ``arrays`` (float64 unless all floats are float32).

    Python scalars do not promote (NumPy 2 rules), integers and booleans compute in float64.
    """
    values = [getval(a) for a in arrays if a is not None]
    dtype = np.result_type(*values) if values else np.dtype(np.float64)
    if not np.issubdtype(dtype, np.floating) or dtype.itemsize < 4:
        return np.dtype(np.float64) if not np.issubdtype(dtype, np.floating) else np.dtype(np.float32)
    if dtype.itemsize > 8:
        return np.dtype(np.float64)
    return np.dtype(dtype)


def as_float_array(x, dtype):
    """``x`` as an array of ``dtype``; autograd boxes pass through untouched (they are already arrays)."""
    if x is getval(x):
        return np.asarray(x, dtype=dtype)
    return x


def check_logits(logits, name: str = "logits", min_categories: int = 2):
    """Finite values with at least ``min_categories`` entries on the last axis.

    The paper's location is alpha in (0, inf)^n, so log alpha must be finite: a state with
    probability zero is excluded from the support (Section 3.1), not represented by ``-inf``.
    """
    value = np.asarray(getval(logits))
    if value.ndim < 1:
        raise ValueError(
            f"{name} must have at least one axis (the categories on the last axis); got a scalar"
        )
    if value.shape[-1] < min_categories:
        raise ValueError(
            f"{name} must have at least {min_categories} categories on its last axis; "
            f"got shape {value.shape}"
        )
    _check_finite(value, name, "log alpha must be finite: every state needs probability in (0, 1)")


def check_scalar_logit(logit, name: str = "logit"):
    """A finite real number or array of them (Binary Concrete location log alpha)."""
    _check_finite(np.asarray(getval(logit)), name, "log alpha must be finite")


def _check_finite(value, name, why):
    if not np.issubdtype(value.dtype, np.number) or np.issubdtype(value.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers; got dtype {value.dtype}")
    if not np.all(np.isfinite(value)):
        bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        raise ValueError(f"{name} must be finite, in (-inf, inf); got {bad} non-finite entries ({why})")


def check_temperature(temperature, name: str = "temperature"):
    """The temperature lambda must lie in (0, inf): finite and strictly positive."""
    value = np.asarray(getval(temperature))
    if not np.issubdtype(value.dtype, np.number) or np.issubdtype(value.dtype, np.complexfloating):
        raise ValueError(f"{name} must be a real number in (0, inf); got dtype {value.dtype}")
    if not np.all(np.isfinite(value)) or np.any(value <= 0):
        shown = value if value.size <= 4 else value.ravel()[:4]
        raise ValueError(f"{name} must be in (0, inf), finite and strictly positive; got {shown}")


def check_rng(rng, name: str = "rng") -> np.random.Generator:
    """A ``numpy.random.Generator``, or an integer seed turned into one (never global state)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"{name} as a seed must be a non-negative integer; got {rng}")
        return np.random.default_rng(int(rng))
    raise ValueError(
        f"{name} must be a numpy.random.Generator or a non-negative integer seed; got {type(rng).__name__}"
    )


def check_size(size, name: str = "size") -> tuple:
    """A sample shape: ``None`` (one draw), a non-negative int, or a tuple of non-negative ints."""
    if size is None:
        return ()
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (int(size),)
    try:
        size = tuple(int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be None, a non-negative integer or a tuple of them; got {size!r}")
    if any(s < 0 for s in size):
        raise ValueError(f"{name} entries must be non-negative integers; got {size}")
    return size


def check_last_dim(x, logits, x_name: str, logits_name: str = "logits"):
    """The point and the location must agree on the number of categories (the last axis)."""
    xs, ls = np.shape(getval(x)), np.shape(getval(logits))
    if len(xs) < 1 or xs[-1] != ls[-1]:
        raise ValueError(
            f"{x_name} must have the same last dimension as {logits_name} (the number of categories, "
            f"{ls[-1]}); got shapes {xs} and {ls}"
        )


def simplex_tolerance(dtype, num_categories: int) -> float:
    """How far ``sum(x)`` may be from 1 for a point of the simplex stored in ``dtype``.

    Summing K numbers in [0, 1] in floating point accumulates at most about K ulps of error, so the
    tolerance is ``4 * K * eps`` (never below ``64 * eps``): about 5e-4 for K = 1000 in float32 and
    9e-13 in float64.  A vector further off than that is not a rounding error of a simplex point.
    """
    eps = float(np.finfo(dtype).eps)
    return 4.0 * max(num_categories, 16) * eps


def log_simplex_tolerance(dtype, y_abs_max: float, num_categories: int) -> float:
    """How far ``logsumexp(y)`` may be from 0 for a point of the log-simplex stored in ``dtype``.

    A sample is computed as ``s - logsumexp(s)`` with scores ``s``; its rounding error is a few ulps of
    the largest magnitude involved, which the sample itself shows as ``max |y|``.  The tolerance is
    ``64 * eps * (1 + max|y| + K)``.  The ExpConcrete density is invariant to shifting ``y`` by a
    constant, so this check only guards against passing something that is not a log-simplex point.
    """
    eps = float(np.finfo(dtype).eps)
    return 64.0 * eps * (1.0 + y_abs_max + num_categories)
