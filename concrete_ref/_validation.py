"""Argument checks shared by the reference distributions.

Every public function validates its input here and raises ``ValueError`` naming the argument and the
accepted range.  Nothing is clipped: a point outside the support is an error, not a silently moved
point.  The checks look through autograd's tracing boxes (``getval``) so they cost nothing in gradients.
"""

from __future__ import annotations

import numbers
import operator

import numpy as np
from autograd.tracer import getval

__all__ = [
    "as_float_array",
    "as_real_array",
    "check_noise",
    "check_float_dtype",
    "check_batch_shapes",
    "check_logits",
    "check_temperature",
    "check_rng",
    "check_size",
    "check_last_dim",
    "result_dtype",
    "simplex_tolerance",
    "log_simplex_tolerance",
]


def _dtype_operand(a):
    """``a`` as ``np.result_type`` should see it: Python and NumPy scalars and arrays as they are
    (a Python scalar is "weak" and does not promote, NumPy 2 rules), anything else array_like (a list,
    a tuple, a nested list) as the array ``np.asarray`` makes of it.  ``np.result_type`` must never
    see a list: it reads one as a structured-dtype specification."""
    v = getval(a)
    if isinstance(v, (np.ndarray, np.generic, numbers.Number)):
        return v
    return np.asarray(v)


def result_dtype(*arrays) -> np.dtype:
    """The floating dtype of a computation on ``arrays`` (float64 unless all floats are float32).

    Python scalars do not promote (NumPy 2 rules), integers and booleans compute in float64; lists and
    tuples count as the arrays they convert to (a list of Python floats is float64).
    """
    values = [_dtype_operand(a) for a in arrays if a is not None]
    dtype = np.result_type(*values) if values else np.dtype(np.float64)
    if not np.issubdtype(dtype, np.floating) or dtype.itemsize < 4:
        return np.dtype(np.float64) if not np.issubdtype(dtype, np.floating) else np.dtype(np.float32)
    if dtype.itemsize > 8:
        return np.dtype(np.float64)
    return np.dtype(dtype)


def as_real_array(x, name: str) -> np.ndarray:
    """The value of ``x`` (an array_like: number, list, tuple, nested list, array, autograd box) as a
    NumPy array of real numbers, or ``ValueError`` naming ``name``.

    Refused: ragged nested lists (no array shape), and anything whose dtype is not a real number
    (strings, objects, booleans, complex).  Integers are accepted (they compute in float64).
    """
    value = _to_array(x, name)
    if not _is_real(value.dtype):
        raise ValueError(f"{name} must be real numbers; got dtype {value.dtype}")
    return value


def _to_array(x, name: str) -> np.ndarray:
    try:
        return np.asarray(getval(x))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be array_like of real numbers (a number, a list or nested list of one "
            f"rectangular shape, or an array); could not make an array of it: {err}"
        ) from None


def _is_real(dtype) -> bool:
    return np.issubdtype(dtype, np.number) and not np.issubdtype(dtype, np.complexfloating)


def check_noise(noise, name: str) -> np.ndarray:
    """Given noise (Gumbel or Logistic draws): finite floating-point numbers, returned as an array.

    The noise is a continuous random variable; an integer (or boolean) array of it has been truncated
    somewhere, so it is refused rather than converted.
    """
    value = _to_array(noise, name)
    if value.dtype == np.bool_ or np.issubdtype(value.dtype, np.integer):
        raise ValueError(
            f"{name} must be floating-point noise (a continuous random variable); got dtype {value.dtype}: "
            "integer noise has been truncated (cast it to a float dtype only if that is really intended)"
        )
    value = as_real_array(value, name)
    _check_finite(value, name, "the noise of a sample is a finite real number")
    return value


def check_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """A NumPy floating dtype (float16, float32, float64, ...); integer, boolean, complex refused."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(
            f"{name} must be a NumPy floating dtype such as numpy.float32 or numpy.float64; got {dtype!r}"
        ) from None
    if not np.issubdtype(dt, np.floating):
        raise ValueError(
            f"{name} must be a NumPy floating dtype such as numpy.float32 or numpy.float64; got {dt} "
            "(continuous noise cast to it would be truncated or changed)"
        )
    return dt


def check_batch_shapes(*entries) -> tuple:
    """The broadcast of batch shapes, or ``ValueError`` naming two arguments that do not broadcast.

    Each entry is ``(name, shape, batch_shape)``: the argument's full shape and the part of it that
    must broadcast (all axes but the category axis for vector arguments, the whole shape otherwise).
    """
    batches = [tuple(b) for _, _, b in entries]
    try:
        return np.broadcast_shapes(*batches)
    except ValueError:
        pass

    def describe(name, shape, batch):
        shape, batch = tuple(shape), tuple(batch)
        return f"{name} of shape {shape}" + (f" (batch shape {batch})" if batch != shape else "")

    for i in range(len(entries)):
        for j in range(i + 1, len(entries)):
            try:
                np.broadcast_shapes(batches[i], batches[j])
            except ValueError:
                (a, *ea), (b, *eb) = entries[i], entries[j]
                raise ValueError(
                    f"{a} and {b} must have batch shapes that broadcast against each other (NumPy "
                    f"broadcasting; for vectors the last axis, the categories, is not part of the batch); "
                    f"got {describe(a, *ea)} and {describe(b, *eb)}"
                ) from None
    raise ValueError(  # unreachable: pairwise broadcastable shapes broadcast together
        "batch shapes do not broadcast: " + ", ".join(describe(*e) for e in entries)
    )


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
    value = as_real_array(logits, name)
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
    _check_finite(as_real_array(logit, name), name, "log alpha must be finite")


def _check_finite(value, name, why):
    if not _is_real(value.dtype):
        raise ValueError(f"{name} must be real numbers; got dtype {value.dtype}")
    if not np.all(np.isfinite(value)):
        bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        raise ValueError(f"{name} must be finite, in (-inf, inf); got {bad} non-finite entries ({why})")


def check_temperature(temperature, name: str = "temperature"):
    """The temperature lambda must lie in (0, inf): finite and strictly positive."""
    try:
        value = np.asarray(getval(temperature))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real number in (0, inf) or array_like of them; {err}") from None
    if not _is_real(value.dtype):
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


def _as_index(s):
    """``s`` as a Python int if it is an integer (Python, NumPy, 0-d integer array), else ``None``."""
    if isinstance(s, (bool, np.bool_)):
        return None
    try:
        return operator.index(s)
    except TypeError:
        return None


def check_size(size, name: str = "size") -> tuple:
    """A sample shape: ``None`` (one draw), a non-negative int, or a tuple (or list) of non-negative ints.

    Refused, not converted: strings (``'12'`` is not the shape ``(1, 2)``), floats (``2.5`` is not
    ``2``), booleans, negative entries.
    """
    if size is None:
        return ()
    accepted = "None, a non-negative integer or a tuple of non-negative integers (the sample shape)"
    if isinstance(size, (str, bytes)):
        raise ValueError(f"{name} must be {accepted}; got the string {size!r}")
    single = _as_index(size)
    if single is not None:
        entries = (single,)
    else:
        try:
            items = tuple(size)
        except TypeError:
            raise ValueError(f"{name} must be {accepted}; got {size!r} ({type(size).__name__})") from None
        entries = tuple(_as_index(s) for s in items)
        if any(e is None for e in entries):
            bad = next(s for s, e in zip(items, entries) if e is None)
            raise ValueError(
                f"{name} must be {accepted}; got {size!r}, whose entry {bad!r} ({type(bad).__name__}) "
                "is not an integer"
            )
    if any(s < 0 for s in entries):
        raise ValueError(f"{name} entries must be non-negative integers; got {size!r}")
    return entries


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
