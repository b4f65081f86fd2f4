r"""``torch.distributions`` against ``concrete_ref`` on the same samples (book Chapter 4).

Three known failures of PyTorch's relaxed distributions, each measured next to the reference
implementation on exactly the same inputs:

1. **Simplex underflow** (pytorch/pytorch#18254, pyro-ppl/pyro#3304).
   ``RelaxedOneHotCategorical`` is ``ExpRelaxedCategorical`` (log space, App. C.3.1) followed by
   ``exp``.  At low temperature a coordinate :math:`x_k = e^{y_k}` underflows to exactly 0; its
   ``log_prob`` maps it back to :math:`y_k = \log 0 = -\infty`, and the score
   :math:`\log\alpha_k - \lambda y_k = +\infty` gives ``inf - inf = nan``.  Separately, its support check
   ``constraints.simplex`` demands :math:`|\sum_k x_k - 1| < 10^{-6}`, a fixed tolerance that float32 sums
   miss at low temperature, so ``validate_args=True`` raises ``ValueError`` for some of its own samples.
   :func:`relaxed_categorical_failures` counts both, and evaluates
   :func:`concrete_ref.exp_concrete_log_density` (the paper's :math:`\log\kappa`) on the log-space samples
   that the simplex samples were exponentiated from (same random numbers: ``RelaxedOneHotCategorical``
   draws its sample as ``exp`` of an ``ExpRelaxedCategorical`` draw).

2. **Logit-space overflow.**  ``LogitRelaxedBernoulli.log_prob`` computes the paper's App. C.3.2 density
   :math:`\log\lambda + d - 2\log(1 + e^{d})`, :math:`d = \log\alpha - \lambda y`, literally: ``exp(d)``
   overflows for :math:`d > 88.7` in float32 (:math:`d > 709.8` in float64) and the result is ``-inf``.
   :func:`logit_relaxed_bernoulli_log_prob` returns PyTorch's values for comparison with
   :func:`concrete_ref.logistic_log_density`, which uses the symmetric form
   :math:`\log\lambda - |d| - 2\log(1 + e^{-|d|})`.

3. **Batched temperature** (pytorch/pytorch#37162).  With logits of shape ``(B, K)`` and a per-row
   temperature of shape ``(B, 1)`` (the shape that makes PyTorch's sampler broadcast), ``log_prob``
   returns shape ``(B, B)``: entry ``[i, j]`` is row ``j``'s score plus row ``i``'s normalising constant
   :math:`\log\Gamma(K) + (K-1)\log\lambda_i` (the ``(B,)`` scores are added to the ``(B, 1)``
   constants, and broadcasting makes a table).  :func:`batched_temperature_shapes` reports the shapes and
   checks that the diagonal is the right answer.

4. **The fixed simplex tolerance.**  ``constraints.simplex`` accepts :math:`|\sum_k x_k - 1| < 10^{-6}` whatever
   the dtype and :math:`K`: float32 samples without a single underflowed coordinate miss it at low
   temperature (the rounding of ``logsumexp`` of scores of size :math:`1/\lambda` lands in every
   coordinate), while a float64 vector off the simplex by :math:`5\cdot 10^{-7}` passes.
   :func:`simplex_tolerance_comparison` measures both against :func:`concrete_ref._validation.simplex_tolerance`.

5. **What is exported.**  ``ExpRelaxedCategorical`` and ``LogitRelaxedBernoulli``, the log-space classes, are
   not in the ``torch.distributions`` namespace; :func:`torch_exports` says where each class lives.

:func:`relaxed_nan_rate` and :func:`exp_relaxed_nonfinite` are the lean counts behind Chapter 4's figure
(NaN rate of the simplex ``log_prob`` against the temperature) and its log-space check;
:func:`eq27_binary_terms` evaluates both densities of the paper's Eq. (27) at a posterior sample.

PyTorch is imported inside the functions, so importing this module needs only NumPy; it is not
imported by :mod:`concrete_ref` (whose core never imports torch).  Sampling seeds PyTorch's CPU
generator inside :func:`torch.random.fork_rng`, which leaves the caller's global RNG state untouched.
Counts are deterministic for a given PyTorch version on CPU; another version may draw different
numbers (:func:`torch_version` says which one produced them).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "torch_available",
    "torch_version",
    "RelaxedCategoricalFailures",
    "torch_relaxed_categorical_samples",
    "relaxed_categorical_failures",
    "logit_relaxed_bernoulli_log_prob",
    "batched_temperature_shapes",
    "relaxed_nan_rate",
    "exp_relaxed_nonfinite",
    "torch_exports",
    "simplex_tolerance_comparison",
    "underflowed_sample_demo",
    "eq27_binary_terms",
]

_DTYPES = ("float32", "float64")


def _torch():
    try:
        import torch
    except ImportError as err:  # pragma: no cover - exercised only without torch
        raise ImportError(
            "concrete_ref.library_comparison needs PyTorch (pip install torch); the rest of "
            "concrete_ref does not"
        ) from err
    return torch


def torch_available() -> bool:
    """Whether PyTorch can be imported."""
    try:
        _torch()
    except ImportError:
        return False
    return True


def torch_version() -> str | None:
    """PyTorch's version string (e.g. ``'2.13.0+cpu'``), or ``None`` if it is not installed."""
    return _torch().__version__ if torch_available() else None


def _torch_dtype(dtype):
    name = np.dtype(dtype).name
    if name not in _DTYPES:
        raise ValueError(f"dtype must be float32 or float64; got {name}")
    return getattr(_torch(), name), np.dtype(name)


def _logits_array(logits, num_categories, np_dtype):
    if logits is None:
        if num_categories is None or int(num_categories) < 2:
            raise ValueError("give logits, or num_categories >= 2 for uniform logits (all zero)")
        return np.zeros(int(num_categories), dtype=np_dtype)
    logits = np.asarray(logits, dtype=np_dtype)
    if logits.ndim != 1 or logits.shape[0] < 2 or not np.all(np.isfinite(logits)):
        raise ValueError(f"logits must be a finite vector with at least 2 entries; got shape {logits.shape}")
    if num_categories is not None and int(num_categories) != logits.shape[0]:
        raise ValueError(f"num_categories = {num_categories} but logits has {logits.shape[0]} entries")
    return logits


def _check_temperature(temperature):
    t = float(temperature)
    if not np.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be in (0, inf); got {temperature!r}")
    return t


@contextlib.contextmanager
def _seeded(seed):
    torch = _torch()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield torch


def torch_relaxed_categorical_samples(temperature, logits=None, num_categories=None, num_samples=20_000,
                                      seed=0, dtype="float32"):
    r"""Samples of PyTorch's ``RelaxedOneHotCategorical`` and the log-space samples they came from.

    Parameters
    ----------
    temperature : float
        :math:`\lambda > 0`.
    logits : array_like of shape (K,), optional
        :math:`\log\alpha`; default all zeros (uniform :math:`\alpha`) with ``num_categories`` entries.
    num_samples, seed : int
        Sample size, and the seed given to ``torch.manual_seed`` (inside ``fork_rng``).
    dtype : "float32" or "float64"

    Returns
    -------
    y, x : ndarrays of shape (num_samples, K)
        ``y`` drawn by ``ExpRelaxedCategorical(temperature, logits).rsample`` and ``x`` by
        ``RelaxedOneHotCategorical(...).rsample`` with the same seed; ``x == exp(y)`` exactly
        (checked: the second is the first followed by ``ExpTransform``).
    """
    torch = _torch()
    from torch.distributions import RelaxedOneHotCategorical
    from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

    tdt, ndt = _torch_dtype(dtype)
    lg = torch.as_tensor(_logits_array(logits, num_categories, ndt), dtype=tdt)
    tau = torch.tensor(_check_temperature(temperature), dtype=tdt)
    with _seeded(seed):
        y = ExpRelaxedCategorical(tau, logits=lg, validate_args=False).rsample((int(num_samples),))
    with _seeded(seed):
        x = RelaxedOneHotCategorical(tau, logits=lg, validate_args=False).rsample((int(num_samples),))
    if not torch.equal(torch.exp(y), x):  # pragma: no cover - would mean PyTorch changed its sampler
        raise RuntimeError("RelaxedOneHotCategorical samples are no longer exp of ExpRelaxedCategorical samples")
    return y.numpy(), x.numpy()


@dataclass(frozen=True)
class RelaxedCategoricalFailures:
    """Counts over ``num_samples`` samples of one (K, temperature, dtype) case; see
    :func:`relaxed_categorical_failures`."""

    num_categories: int
    temperature: float
    dtype: str
    num_samples: int
    seed: int
    zero_coordinate: int        #: simplex samples with a coordinate exactly 0
    simplex_check_failed: int   #: samples failing ``constraints.simplex`` (|sum - 1| < 1e-6, x >= 0)
    value_errors: int | None    #: per-sample ``log_prob`` calls raising ``ValueError`` (validate_args=True)
    torch_nan: int              #: ``RelaxedOneHotCategorical.log_prob`` NaN (validate_args=False)
    torch_inf: int              #: ... and +-inf
    torch_log_space_nan: int    #: ``ExpRelaxedCategorical.log_prob`` on the log-space samples: NaN
    torch_log_space_inf: int
    ours_nan: int               #: ``concrete_ref.exp_concrete_log_density`` on the same log-space samples
    ours_inf: int
    max_rel_diff_log_space: float  #: max |ours - ExpRelaxedCategorical.log_prob| / max(|torch|, 1) where both finite

    def as_dict(self):
        return asdict(self)


def relaxed_categorical_failures(temperature, logits=None, num_categories=None, num_samples=20_000, seed=0,
                                 dtype="float32", count_value_errors=False):
    r"""Failures of ``RelaxedOneHotCategorical.log_prob`` on its own samples, against our log-space density.

    Draws the samples with :func:`torch_relaxed_categorical_samples` and evaluates

    * PyTorch's simplex-space ``log_prob(x)`` (``validate_args=False``, so it returns NaN instead of
      raising), and its support check ``constraints.simplex.check(x)``;
    * with ``count_value_errors=True``, the number of samples ``x_i`` for which ``log_prob(x_i)`` with
      ``validate_args=True`` raises ``ValueError``.  PyTorch validates a whole batch at once, so a single
      failing sample makes a batched call raise; the count is found by bisection (a batch that raises
      is split in halves until single samples remain), which calls ``log_prob`` about
      ``2 * failures * log2(N / failures)`` times instead of ``N``;
    * PyTorch's log-space ``ExpRelaxedCategorical.log_prob(y)`` and
      :func:`concrete_ref.exp_concrete_log_density` ``(y, logits, temperature)`` on the log-space samples
      ``y`` with ``x = exp(y)``, in the same dtype.

    Returns a :class:`RelaxedCategoricalFailures`.
    """
    torch = _torch()
    from torch.distributions import RelaxedOneHotCategorical, constraints
    from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

    from .concrete import exp_concrete_log_density

    tdt, ndt = _torch_dtype(dtype)
    lg_np = _logits_array(logits, num_categories, ndt)
    temperature = _check_temperature(temperature)
    y, x = torch_relaxed_categorical_samples(temperature, lg_np, None, num_samples, seed, ndt.name)
    lg = torch.as_tensor(lg_np)
    tau = torch.tensor(temperature, dtype=tdt)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    simplex = RelaxedOneHotCategorical(tau, logits=lg, validate_args=False)
    lp_simplex = simplex.log_prob(xt)
    check = constraints.simplex.check(xt)
    value_errors = None
    if count_value_errors:
        value_errors = _count_value_errors(RelaxedOneHotCategorical(tau, logits=lg, validate_args=True), xt)

    lp_torch_log = ExpRelaxedCategorical(tau, logits=lg, validate_args=False).log_prob(yt).numpy()
    ours = np.asarray(exp_concrete_log_density(y, lg_np, ndt.type(temperature)))
    both = np.isfinite(ours) & np.isfinite(lp_torch_log)
    a, b = ours[both].astype(np.float64), lp_torch_log[both].astype(np.float64)
    diff = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0), initial=0.0))
    return RelaxedCategoricalFailures(
        num_categories=int(lg_np.shape[0]), temperature=temperature, dtype=ndt.name,
        num_samples=int(num_samples), seed=int(seed),
        zero_coordinate=int(np.count_nonzero(np.any(x == 0, axis=-1))),
        simplex_check_failed=int((~check).sum()),
        value_errors=value_errors,
        torch_nan=int(torch.isnan(lp_simplex).sum()), torch_inf=int(torch.isinf(lp_simplex).sum()),
        torch_log_space_nan=int(np.isnan(lp_torch_log).sum()), torch_log_space_inf=int(np.isinf(lp_torch_log).sum()),
        ours_nan=int(np.isnan(ours).sum()), ours_inf=int(np.isinf(ours).sum()),
        max_rel_diff_log_space=diff,
    )


def _count_value_errors(validated, x):
    """Number of rows ``x[i]`` for which ``validated.log_prob(x[i])`` raises ``ValueError`` (by bisection)."""
    try:
        validated.log_prob(x)
    except ValueError:
        if x.shape[0] == 1:
            return 1
        half = x.shape[0] // 2
        return _count_value_errors(validated, x[:half]) + _count_value_errors(validated, x[half:])
    return 0


def logit_relaxed_bernoulli_log_prob(y, logit, temperature, dtype="float32"):
    r"""PyTorch's ``LogitRelaxedBernoulli(temperature, logits=logit).log_prob(y)`` as a NumPy array.

    The logit-space Binary Concrete density of App. C.3.2 (the paper's Eq. 26 node), computed by
    PyTorch as ``log(T) + d - 2 * exp(d).log1p()`` with ``d = logit - T * y``.  ``y``, ``logit`` and
    ``temperature`` broadcast elementwise; the result has their broadcast shape and ``dtype``.
    """
    torch = _torch()
    from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli

    tdt, ndt = _torch_dtype(dtype)
    y, logit, temperature = np.broadcast_arrays(np.asarray(y, ndt), np.asarray(logit, ndt),
                                                np.asarray(temperature, ndt))
    if np.any(temperature <= 0) or not np.all(np.isfinite(temperature)):
        raise ValueError("temperature must be in (0, inf)")
    d = LogitRelaxedBernoulli(torch.tensor(temperature, dtype=tdt), logits=torch.tensor(logit, dtype=tdt),
                              validate_args=False)
    return d.log_prob(torch.tensor(y, dtype=tdt)).numpy()


def batched_temperature_shapes(temperatures=(0.5, 1.0, 2.0), num_categories=4, seed=0, dtype="float64"):
    r"""pytorch/pytorch#37162: a per-row temperature of shape ``(B, 1)`` makes ``log_prob`` return ``(B, B)``.

    Builds ``ExpRelaxedCategorical`` and ``RelaxedOneHotCategorical`` with logits of shape ``(B, K)``
    (seeded standard normal, NumPy ``default_rng(seed)``) and temperature of shape ``(B, 1)``, draws one
    sample of shape ``(B, K)``, and evaluates ``log_prob``.  The reference takes the temperature with
    shape ``(B,)`` (it broadcasts against the batch shape ``logits.shape[:-1]`` and never meets the
    category axis) and evaluates :func:`concrete_ref.exp_concrete_log_density` at PyTorch's log-space sample.

    Returns a dict with the shapes (tuples), whether PyTorch's diagonal equals our values
    (``diagonal_matches``, within ``1e-5`` relative in float32, ``1e-12`` in float64), and whether
    every entry ``[i, j]`` of PyTorch's table equals row ``j``'s value with its normalising constant
    replaced by row ``i``'s, :math:`\log\Gamma(K) + (K - 1)\log\lambda_i`
    (``off_diagonal_is_mixed_constant``).
    """
    torch = _torch()
    from scipy.special import gammaln
    from torch.distributions import RelaxedOneHotCategorical
    from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

    from .concrete import exp_concrete_log_density

    tdt, ndt = _torch_dtype(dtype)
    lam = np.asarray([_check_temperature(t) for t in temperatures], dtype=ndt)
    b, k = lam.shape[0], int(num_categories)
    logits = np.random.default_rng(seed).standard_normal((b, k)).astype(ndt)
    tau = torch.tensor(lam[:, None])
    lg = torch.tensor(logits)
    exp_dist = ExpRelaxedCategorical(tau, logits=lg, validate_args=False)
    with _seeded(seed):
        y = exp_dist.rsample()
    simplex_dist = RelaxedOneHotCategorical(tau, logits=lg, validate_args=False)
    torch_exp_lp = exp_dist.log_prob(y).numpy()
    torch_simplex_lp = simplex_dist.log_prob(torch.exp(y)).numpy()
    ours = np.asarray(exp_concrete_log_density(y.numpy(), logits, lam))
    rtol = 1e-5 if ndt == np.float32 else 1e-12
    diag_ok = bool(np.allclose(np.diag(torch_exp_lp), ours, rtol=rtol, atol=rtol))
    const = gammaln(k) + (k - 1) * np.log(lam.astype(np.float64))
    mixed = ours[None, :] - const[None, :] + const[:, None]
    mixed_ok = bool(np.allclose(torch_exp_lp, mixed, rtol=rtol, atol=rtol))
    return {
        "logits_shape": tuple(logits.shape),
        "torch_temperature_shape": tuple(tau.shape),
        "torch_batch_shape": tuple(exp_dist.batch_shape),
        "torch_sample_shape": tuple(y.shape),
        "torch_exp_relaxed_log_prob_shape": tuple(torch_exp_lp.shape),
        "torch_relaxed_one_hot_log_prob_shape": tuple(torch_simplex_lp.shape),
        "ours_temperature_shape": tuple(lam.shape),
        "ours_log_density_shape": tuple(ours.shape),
        "diagonal_matches": diag_ok,
        "off_diagonal_is_mixed_constant": mixed_ok,
        "torch_exp_relaxed_log_prob": torch_exp_lp,
        "ours_log_density": ours,
    }


def relaxed_nan_rate(temperature, num_categories, num_samples=20_000, seed=0, dtype="float32"):
    r"""NaN count of ``RelaxedOneHotCategorical.log_prob`` on its own samples (uniform logits).

    Draws ``num_samples`` samples with ``rsample`` (``torch.manual_seed(seed)`` inside ``fork_rng``) and
    evaluates ``log_prob`` with ``validate_args=False``.  Returns a dict: ``nan`` (NaN log densities),
    ``zero_coordinate`` (samples with a coordinate exactly 0) and ``num_samples``.  The lean version of
    :func:`relaxed_categorical_failures`, for sweeps over the temperature.
    """
    torch = _torch()
    from torch.distributions import RelaxedOneHotCategorical

    tdt, ndt = _torch_dtype(dtype)
    lg = torch.as_tensor(_logits_array(None, num_categories, ndt))
    tau = torch.tensor(_check_temperature(temperature), dtype=tdt)
    dist = RelaxedOneHotCategorical(tau, logits=lg, validate_args=False)
    with _seeded(seed):
        x = dist.rsample((int(num_samples),))
    lp = dist.log_prob(x)
    return {"nan": int(torch.isnan(lp).sum()), "zero_coordinate": int((x == 0).any(dim=-1).sum()),
            "num_samples": int(num_samples)}


def exp_relaxed_nonfinite(temperature, num_categories, num_samples=20_000, seed=0, dtype="float32"):
    r"""``(nan, inf)`` counts of ``ExpRelaxedCategorical.log_prob`` on its own samples (uniform logits)."""
    torch = _torch()
    from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

    tdt, ndt = _torch_dtype(dtype)
    lg = torch.as_tensor(_logits_array(None, num_categories, ndt))
    dist = ExpRelaxedCategorical(torch.tensor(_check_temperature(temperature), dtype=tdt), logits=lg,
                                 validate_args=False)
    with _seeded(seed):
        y = dist.rsample((int(num_samples),))
    lp = dist.log_prob(y)
    return int(torch.isnan(lp).sum()), int(torch.isinf(lp).sum())


_RELAXED_CLASSES = {
    "RelaxedOneHotCategorical": "torch.distributions.relaxed_categorical",
    "ExpRelaxedCategorical": "torch.distributions.relaxed_categorical",
    "RelaxedBernoulli": "torch.distributions.relaxed_bernoulli",
    "LogitRelaxedBernoulli": "torch.distributions.relaxed_bernoulli",
}


def torch_exports():
    r"""For each relaxed class: whether ``torch.distributions`` exports it (``hasattr`` and ``__all__``) and
    whether it can be imported from its module.  Returns ``{name: {"exported", "in_all", "module",
    "importable"}}``."""
    import importlib

    torch = _torch()
    out = {}
    for name, module in _RELAXED_CLASSES.items():
        mod = importlib.import_module(module)
        out[name] = {"exported": hasattr(torch.distributions, name),
                     "in_all": name in getattr(torch.distributions, "__all__", ()),
                     "module": module, "importable": hasattr(mod, name)}
    return out


def simplex_tolerance_comparison(num_categories=10, temperature=0.05, num_samples=20_000, seed=0,
                                 float64_offset=5e-7):
    r"""PyTorch's fixed support tolerance (``constraints.simplex``: :math:`|\sum_k x_k - 1| < 10^{-6}`) against
    the reference's :func:`concrete_ref._validation.simplex_tolerance` (:math:`4\max(K, 16)\,\varepsilon`).

    On float32 ``RelaxedOneHotCategorical`` samples (uniform logits) **without** a coordinate equal to 0,
    counts those that fail PyTorch's check and those beyond the reference tolerance, and reports the largest
    :math:`|\sum_k x_k - 1|` (summed in float64).  Then builds a float64 point of the open simplex and moves
    one coordinate by ``float64_offset``: PyTorch's check accepts it, the reference (float64 tolerance
    about :math:`1.4\cdot 10^{-14}`) rejects it.
    """
    torch = _torch()
    from torch.distributions import RelaxedOneHotCategorical, constraints

    from ._validation import simplex_tolerance

    k = int(num_categories)
    dist = RelaxedOneHotCategorical(torch.tensor(_check_temperature(temperature)), logits=torch.zeros(k),
                                    validate_args=False)
    with _seeded(seed):
        x = dist.rsample((int(num_samples),))
    interior = ~(x == 0).any(dim=-1)
    xi = x[interior]
    err = (xi.double().sum(-1) - 1).abs().numpy()
    tol32 = simplex_tolerance(np.float32, k)
    point = np.full(k, 1.0 / k)
    point[0] += float64_offset
    tol64 = simplex_tolerance(np.float64, k)
    return {
        "num_samples": int(num_samples), "interior_samples": int(interior.sum()),
        "torch_rejects_interior": int((~constraints.simplex.check(xi)).sum()),
        "ours_rejects_interior": int((err > tol32).sum()), "max_sum_error": float(err.max(initial=0.0)),
        "ours_tolerance_float32": tol32, "ours_tolerance_float64": tol64,
        "float64_offset": float(float64_offset),
        "torch_accepts_off_simplex_float64": bool(constraints.simplex.check(torch.tensor(point)).item()),
        "ours_rejects_off_simplex_float64": bool(abs(point.sum() - 1) > tol64),
    }


def underflowed_sample_demo(num_categories=10, temperature=0.05, num_samples=1000, seed=0):
    r"""One ``RelaxedOneHotCategorical`` sample with a coordinate exactly 0, scored three ways.

    Returns a dict: ``torch_simplex`` (``RelaxedOneHotCategorical.log_prob(x)``, NaN), ``torch_log_space``
    (``ExpRelaxedCategorical.log_prob(y)`` at the log-space sample ``y`` with ``x = exp(y)``), ``ours``
    (:func:`concrete_ref.exp_concrete_log_density` at ``y``, float32), ``min_y`` and ``ours_simplex_error``:
    the message of the ``ValueError`` that :func:`concrete_ref.concrete_log_density` raises at ``x``
    (``None`` if it does not raise).
    """
    torch = _torch()
    from torch.distributions import RelaxedOneHotCategorical
    from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

    from .concrete import concrete_log_density, exp_concrete_log_density

    y, x = torch_relaxed_categorical_samples(temperature, None, num_categories, num_samples, seed, "float32")
    rows = np.flatnonzero(np.any(x == 0, axis=-1))
    if rows.size == 0:
        raise ValueError("no sample with a coordinate equal to 0; lower the temperature or draw more samples")
    i = int(rows[0])
    tau, lg = torch.tensor(float(temperature)), torch.zeros(int(num_categories))
    torch_simplex = float(RelaxedOneHotCategorical(tau, logits=lg, validate_args=False).log_prob(
        torch.from_numpy(x[i])))
    torch_log = float(ExpRelaxedCategorical(tau, logits=lg, validate_args=False).log_prob(torch.from_numpy(y[i])))
    ours = float(exp_concrete_log_density(y[i], np.zeros(int(num_categories), np.float32), np.float32(temperature)))
    try:
        concrete_log_density(x[i], np.zeros(int(num_categories), np.float32), np.float32(temperature))
        message = None
    except ValueError as err:
        message = str(err)
    return {"index": i, "min_y": float(y[i].min()), "torch_simplex": torch_simplex, "torch_log_space": torch_log,
            "ours": ours, "ours_simplex_error": message}


def eq27_binary_terms(posterior_logits, prior_logits, posterior_temperature=2 / 3, prior_temperature=0.5,
                      noise=0.0, dtype="float32"):
    r"""Both densities of the paper's Eq. (27) at a posterior sample, by PyTorch and by the reference.

    In Eq. (27) the sample is drawn from the posterior, :math:`Y = (\log\alpha(x) + L)/\lambda_1` (Eq. 26),
    and **both** the posterior density :math:`g_{\alpha,\lambda_1}(Y \mid x)` and the prior density
    :math:`f_{a,\lambda_2}(Y)` are evaluated at it.  For each posterior logit :math:`\log\alpha(x)` (the
    columns) and prior logit :math:`\log a` (the rows), with logistic noise ``noise`` (a number or an array
    broadcasting against the columns), returns a dict of arrays:

    * ``y``: the posterior samples, shape ``(C,)``;
    * ``torch_prior``, ``ours_prior``: :math:`\log f_{a,\lambda_2}(y)`, shape ``(R, C)``, by
      ``LogitRelaxedBernoulli(prior_temperature, logits=prior_logit).log_prob`` and by
      :func:`concrete_ref.logistic_log_density`;
    * ``torch_posterior``, ``ours_posterior``: :math:`\log g_{\alpha,\lambda_1}(y)`, shape ``(C,)``;
    * ``d_prior``: :math:`\log a - \lambda_2 y`, whose ``exp`` PyTorch forms (overflow above 88.72 in
      float32), and ``d_posterior`` :math:`= \log\alpha(x) - \lambda_1 y = -L` (up to rounding).
    """
    from .binary import logistic_log_density

    _, ndt = _torch_dtype(dtype)
    post = np.asarray(posterior_logits, dtype=ndt)
    prior = np.asarray(prior_logits, dtype=ndt)[:, None]
    lam1, lam2 = ndt.type(posterior_temperature), ndt.type(prior_temperature)
    y = ((post + np.asarray(noise, dtype=ndt)) / lam1).astype(ndt)
    return {
        "y": y,
        "torch_prior": logit_relaxed_bernoulli_log_prob(y[None, :], prior, lam2, dtype=dtype),
        "ours_prior": np.asarray(logistic_log_density(y[None, :], prior, lam2)),
        "torch_posterior": logit_relaxed_bernoulli_log_prob(y, post, lam1, dtype=dtype),
        "ours_posterior": np.asarray(logistic_log_density(y, post, lam1)),
        "d_prior": (prior - lam2 * y[None, :]).astype(ndt),
        "d_posterior": (post - lam1 * y).astype(ndt),
    }
