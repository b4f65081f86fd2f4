r"""The evidence lower bound and the importance-weighted bound for a latent with finitely many values.

Chapter 1, Section 1.5.  A model :math:`p_\theta(x, z)` with a latent :math:`z \in \{1, \dots, n\}` is given
by its log joint at the observed :math:`x`, the vector :math:`(\log p_\theta(x, z))_{z=1}^n` (``log_joint``,
``-inf`` where the joint is 0), and an approximate posterior :math:`q(z \mid x)` by ``log_q``.  With the
importance weight :math:`w(z) = p_\theta(x, z) / q(z \mid x)`:

* evidence :math:`\log p_\theta(x) = \log\sum_z p_\theta(x, z)` (:func:`log_evidence`);
* posterior :math:`p_\theta(z \mid x) = p_\theta(x, z) / p_\theta(x)` (:func:`log_posterior`);
* ELBO :math:`\mathcal{L}_1 = \mathbb{E}_q[\log w(Z)]` (:func:`elbo`), and the identity
  :math:`\log p_\theta(x) = \mathcal{L}_1 + \mathrm{KL}(q \,\|\, p_\theta(\cdot\mid x))` when :math:`q`
  puts no mass where the joint is 0 (:func:`kl`);
* the importance-weighted bound (the paper's Eq. 8, Burda et al., 2016)
  :math:`\mathcal{L}_m = \mathbb{E}\big[\log\frac1m\sum_{i=1}^m w(Z_i)\big]`, :math:`Z_i \sim q` i.i.d.,
  computed exactly by :func:`iw_bound`: the tuple :math:`(Z_1, \dots, Z_m)` enters only through the counts
  :math:`c_z` of each value, which are multinomial, so

  .. math:: \mathcal{L}_m = \sum_{c_1 + \dots + c_n = m} \binom{m}{c_1, \dots, c_n}\prod_z q(z)^{c_z}
     \,\log\Big(\frac1m\sum_z c_z\,w(z)\Big),

  a sum over :math:`\binom{m + n - 1}{n - 1}` count vectors instead of :math:`n^m` tuples (an independent
  implementation of :func:`concrete_ref.toy_models.multi_sample_bound`, which enumerates the tuples);
* the large-m behaviour :math:`m(\log p_\theta(x) - \mathcal{L}_m) \to \operatorname{Var}_q[w(Z)] / (2 p_\theta(x)^2)`
  (:func:`iw_gap_constant`): a second-order expansion of the logarithm around :math:`p_\theta(x)`,
  valid when :math:`w` has a finite variance (always, for finitely many values).

``check_*`` functions turn the chapter's claims into :class:`~concrete_ref.claims.Check` objects; each takes
the formula under test as an argument (``tests/test_ch1_ch2_checks.py`` perturbs it).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.special import gammaln, logsumexp

from .claims import Check, abs_check

__all__ = [
    "log_weights",
    "log_evidence",
    "log_posterior",
    "elbo",
    "kl",
    "count_vectors",
    "iw_bound",
    "iw_gap_constant",
    "subset_average",
    "check_elbo",
    "check_elbo_random_q",
    "check_iw_bounds",
    "check_iw_gap",
    "check_zero_weight",
    "check_subset_average",
    "check_bound_equality",
]


def _as(v):
    return np.asarray(v, dtype=np.float64)


def _normalise(log_q):
    log_q = _as(log_q)
    return log_q - logsumexp(log_q)


def log_weights(log_joint, log_q) -> np.ndarray:
    r""":math:`\log w(z) = \log p_\theta(x, z) - \log q(z\mid x)` (``log_q`` is normalised first)."""
    return _as(log_joint) - _normalise(log_q)


def log_evidence(log_joint) -> float:
    r""":math:`\log p_\theta(x) = \log\sum_z p_\theta(x, z)`."""
    return float(logsumexp(_as(log_joint)))


def log_posterior(log_joint) -> np.ndarray:
    r""":math:`\log p_\theta(z \mid x) = \log p_\theta(x, z) - \log p_\theta(x)`."""
    lj = _as(log_joint)
    return lj - logsumexp(lj)


def elbo(log_joint, log_q) -> float:
    r""":math:`\mathcal{L}_1 = \sum_z q(z)\log w(z)` (values with :math:`q(z) = 0` do not contribute;
    ``-inf`` if :math:`q` puts mass where the joint is 0)."""
    lq = _normalise(log_q)
    q = np.exp(lq)
    lw = _as(log_joint) - lq
    keep = q > 0
    with np.errstate(invalid="ignore"):
        return float(np.sum(q[keep] * lw[keep]))


def kl(log_q, log_p) -> float:
    r""":math:`\mathrm{KL}(q\,\|\,p) = \sum_z q(z)(\log q(z) - \log p(z))` (``inf`` if q is not absolutely continuous)."""
    lq, lp = _normalise(log_q), _as(log_p)
    q = np.exp(lq)
    keep = q > 0
    return float(np.sum(q[keep] * (lq[keep] - lp[keep])))


def count_vectors(n: int, m: int) -> np.ndarray:
    """All vectors of n non-negative integers summing to m, shape (C(m + n - 1, n - 1), n) (stars and bars)."""
    if n < 1 or m < 0:
        raise ValueError(f"need n >= 1 and m >= 0; got n = {n}, m = {m}")
    bars = np.array(list(itertools.combinations(range(m + n - 1), n - 1)), dtype=np.int64).reshape(-1, n - 1)
    edges = np.concatenate([np.full((bars.shape[0], 1), -1), bars, np.full((bars.shape[0], 1), m + n - 1)], axis=1)
    return np.diff(edges, axis=1) - 1


def iw_bound(log_joint, log_q, m: int) -> float:
    r"""The importance-weighted bound :math:`\mathcal{L}_m` exactly, by the multinomial counts (module docstring).

    Count vectors with probability 0 (a count on a value with :math:`q(z) = 0`) are left out; a count vector
    of positive probability whose weights are all 0 makes the bound ``-inf``."""
    lq = _normalise(log_q)
    lw = _as(log_joint) - lq
    n = lq.size
    if m < 1 or _n_count_vectors(n, m) > 5_000_000:
        raise ValueError(f"m must be >= 1 with at most 5e6 count vectors; got n = {n}, m = {m}")
    c = count_vectors(n, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_prob = gammaln(m + 1) - gammaln(c + 1).sum(axis=1) + np.where(c > 0, c * lq, 0.0).sum(axis=1)
        log_mean_w = logsumexp(np.where(c > 0, np.log(c) + lw, -np.inf), axis=1) - np.log(m)
    keep = np.isfinite(log_prob)
    if np.any(np.isneginf(log_mean_w[keep])):
        return float("-inf")
    return float(np.sum(np.exp(log_prob[keep]) * log_mean_w[keep]))


def _n_count_vectors(n, m):
    from math import comb

    return comb(m + n - 1, n - 1)


def iw_gap_constant(log_joint, log_q) -> float:
    r""":math:`\operatorname{Var}_q[w(Z)] / (2 p_\theta(x)^2) = (\mathbb{E}_q[w^2]/p_\theta(x)^2 - 1)/2`, the limit of
    :math:`m(\log p_\theta(x) - \mathcal{L}_m)`."""
    lq = _normalise(log_q)
    lw = _as(log_joint) - lq
    lp = log_evidence(log_joint)
    return float((np.exp(logsumexp(lq + 2 * (lw - lp))) - 1.0) / 2.0)


def subset_average(weights, k: int) -> np.ndarray:
    r"""The average over all :math:`k`-subsets :math:`I` of :math:`\{1..m\}` of :math:`\frac1k\sum_{i\in I} w_i`
    (last axis: the m weights).  It equals :math:`\frac1m\sum_i w_i` (each weight is in a share k/m of the subsets)."""
    w = _as(weights)
    m = w.shape[-1]
    subsets = list(itertools.combinations(range(m), k))
    return np.mean([w[..., list(s)].mean(axis=-1) for s in subsets], axis=0)


# ------------------------------------------------------------------------------------------- checks
def check_elbo(log_joint, log_q, elbo_formula=elbo, tolerance: float = 1e-12):
    r"""The ELBO identity :math:`\log p(x) - \mathcal{L}_1 = \mathrm{KL}(q\,\|\,p(\cdot\mid x))` and the bound.

    Returns (checks, figures)."""
    lp = log_evidence(log_joint)
    value = elbo_formula(log_joint, log_q)
    divergence = kl(log_q, log_posterior(log_joint))
    checks = [abs_check("log p(x) - ELBO = KL(q || posterior)", (lp - value) - divergence, tolerance,
                        "|difference|"),
              Check("the ELBO is below log p(x)", "log p(x) - ELBO", lp - value, 0.0, ">")]
    return checks, {"log_evidence": lp, "elbo": value, "kl": divergence}


def check_elbo_random_q(log_joint, num_q: int = 1000, seed: int = 700, elbo_formula=elbo,
                        tolerance: float = 1e-12):
    """For ``num_q`` random posteriors (logits ~ 3 N(0, 1)) the ELBO is below log p(x), and at the exact
    posterior it equals log p(x).  Returns (checks, gaps)."""
    lj = _as(log_joint)
    lp = log_evidence(lj)
    rng = np.random.default_rng(seed)
    gaps = np.array([lp - elbo_formula(lj, 3.0 * rng.standard_normal(lj.size)) for _ in range(num_q)])
    at_posterior = lp - elbo_formula(lj, log_posterior(lj))
    checks = [Check(f"ELBO below log p(x) for {num_q} random q", "smallest gap", float(gaps.min()), 0.0, ">"),
              abs_check("ELBO = log p(x) at the exact posterior", at_posterior, tolerance, "|gap|")]
    return checks, gaps


def check_iw_bounds(log_joint, log_q, ms=range(1, 8), bound_formula=iw_bound, reference=None,
                    elbo_formula=elbo, tolerance: float = 1e-12):
    r""":math:`\mathcal{L}_1` = ELBO, :math:`\mathcal{L}_m` non-decreasing in m and below log p(x), and (with
    ``reference``, a function of m, for example the tuple enumeration of ``toy_models``) equal to an
    independent implementation.  Returns (checks, values)."""
    ms = list(ms)
    values = np.array([bound_formula(log_joint, log_q, m) for m in ms])
    lp = log_evidence(log_joint)
    checks = []
    if ms[0] == 1:
        checks.append(abs_check("L_1 equals the ELBO", values[0] - elbo_formula(log_joint, log_q), tolerance,
                                "|L_1 - ELBO|"))
    checks.append(Check("L_m is non-decreasing in m", "min of L_(m+1) - L_m", float(np.min(np.diff(values))),
                        -tolerance, ">"))
    checks.append(Check("L_m is below log p(x)", "min of log p(x) - L_m", float(np.min(lp - values)), 0.0, ">"))
    if reference is not None:
        ref = np.array([reference(m) for m in ms])
        checks.append(abs_check("count-vector sum equals the tuple enumeration", values - ref, tolerance,
                                "max |difference|"))
    return checks, values


def check_iw_gap(log_joint, log_q, m: int = 100, gap_formula=iw_gap_constant, rel_tolerance: float = 0.02,
                 bound_formula=iw_bound):
    r""":math:`m(\log p(x) - \mathcal{L}_m)` at large m is within ``rel_tolerance`` of ``gap_formula``.

    Returns (checks, figures)."""
    lp = log_evidence(log_joint)
    scaled = m * (lp - bound_formula(log_joint, log_q, m))
    constant = gap_formula(log_joint, log_q)
    checks = [Check(f"m (log p(x) - L_m) at m = {m} equals Var(w) / (2 p(x)^2)", "relative difference",
                    abs(scaled / constant - 1), rel_tolerance, "<")]
    return checks, {"scaled_gap": scaled, "constant": constant}


def check_zero_weight(log_joint, log_q, ms=(1, 2, 5, 20, 50), bound_formula=iw_bound):
    r"""If q puts mass on a value where the joint is 0, every :math:`\mathcal{L}_m` is :math:`-\infty`.

    Returns (checks, values)."""
    values = np.array([bound_formula(log_joint, log_q, m) for m in ms])
    n_inf = int(np.sum(np.isneginf(values)))
    return [Check(f"L_m = -inf for every m in {tuple(ms)}", "number of finite L_m", len(ms) - n_inf, 1, "<")], values


def check_subset_average(num_sets: int = 200, m: int = 6, k: int = 3, seed: int = 710, tolerance: float = 1e-12,
                         average=subset_average):
    r"""Averaging :math:`\frac1k\sum_{i\in I} w_i` over all k-subsets gives :math:`\frac1m\sum_i w_i`."""
    w = np.exp(np.random.default_rng(seed).normal(size=(num_sets, m)))
    err = np.max(np.abs(average(w, k) / w.mean(axis=-1) - 1))
    return [abs_check(f"subset average (k = {k} of m = {m}) equals the full mean", err, tolerance,
                      "max relative |error|")]


def check_bound_equality(log_joint, ms=(1, 2, 5), bound_formula=iw_bound, tolerance: float = 1e-12):
    r"""At :math:`q = p(\cdot \mid x)` the weight is the constant :math:`p(x)` and every :math:`\mathcal{L}_m = \log p(x)`."""
    lj = _as(log_joint)
    lp = log_evidence(lj)
    err = [bound_formula(lj, log_posterior(lj), m) - lp for m in ms]
    return [abs_check(f"L_m = log p(x) for m in {tuple(ms)} at the exact posterior", err, tolerance,
                      "max |L_m - log p(x)|")]
