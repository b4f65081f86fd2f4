r"""Chapter 2's facts about the Gumbel-max trick, with checks that can fail.

**Gumbel law** (Section 2.1).  :math:`F(g) = \exp(-e^{-g})`, density :math:`F'(g) = \exp(-g - e^{-g})`,
mean :math:`\gamma` (Euler--Mascheroni), variance :math:`\pi^2/6`.

**Gumbel-max** (Section 2.2).  With :math:`V_k = \log\alpha_k + G_k` and :math:`A = \sum_i\alpha_i`:
:math:`P(\arg\max_k V_k = k) = \alpha_k / A` (the paper's Eq. 9), :math:`\max_k V_k \sim \mathrm{Gumbel}(\log A)`
(2.5), independent of the argmax (2.6).  :func:`frequency_residuals` gives each state's frequency in
binomial standard errors, :math:`(\hat p_k - p_k)/\sqrt{p_k(1 - p_k)/N}`.

**Exponential race** (Section 2.5).  With the same uniforms :math:`U_k`, let :math:`E_k = -\log U_k \sim
\mathrm{Exp}(1)` and :math:`T_k = E_k/\alpha_k \sim \mathrm{Exp}(\alpha_k)`: clock k rings at time
:math:`T_k`.  Since :math:`G_k = -\log E_k`, :math:`V_k = \log\alpha_k - \log E_k = -\log T_k`, and
:math:`-\log` is decreasing, so the first clock to ring is the Gumbel-max state, sample by sample:

.. math:: \arg\min_k T_k = \arg\max_k\{\log\alpha_k + G_k\}, \qquad \min_k T_k = e^{-\max_k V_k}.

Competing exponentials: :math:`P(\text{clock } k \text{ first}, \min_i T_i > t) = \frac{\alpha_k}{A} e^{-At}`,
so the winner has probability :math:`\alpha_k / A` and the first ring time is :math:`\mathrm{Exp}(A)`,
independent of the winner: (9), (2.5) and (2.6) again.

**Exercises.**  Top-k (:func:`gumbel_top_k`): the indices of the k largest :math:`V_k`, in order, are a
sample without replacement, with the Plackett--Luce probability
:math:`\prod_{j=1}^k \alpha_{i_j} / (A - \sum_{l<j}\alpha_{i_l})` (:func:`plackett_luce_probability`).
Max-stability: the maximum of n standard Gumbels is :math:`\mathrm{Gumbel}(\log n)`; the maximum of n
standard exponentials minus :math:`\log n` has CDF :math:`(1 - e^{-g}/n)^n` (for :math:`g > -\log n`),
whose largest distance to :math:`F` is :math:`2e^{-2}/n + O(1/n^2)` (:func:`exponential_max_cdf_error`).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import integrate

from .claims import Check, abs_check, chi_square_check, ks_check, z_check
from .gumbel import gumbel_log_density, gumbel_max_sample, sample_gumbel, sample_logistic, sample_uniform

__all__ = [
    "gumbel_cdf",
    "exponential_cdf",
    "luce_probabilities",
    "check_gumbel_law",
    "frequency_residuals",
    "check_gumbel_max_frequencies",
    "check_max_and_argmax",
    "check_logistic",
    "race_times",
    "check_race",
    "check_race_memoryless",
    "gumbel_top_k",
    "plackett_luce_probability",
    "check_top_k",
    "check_max_stability",
    "exponential_max_cdf_error",
    "check_exponential_max",
    "normal_noise",
    "check_normal_noise",
]

ALPHA = np.array([2.0, 0.5, 1.0])  # the paper's running example (its Figure 2)


def gumbel_cdf(g, loc=0.0):
    r"""Gumbel CDF with location ``loc``: :math:`\exp(-e^{-(g - \text{loc})})` (Eq. 2.1)."""
    return np.exp(-np.exp(-(np.asarray(g, dtype=np.float64) - loc)))


def exponential_cdf(t, rate=1.0):
    r""":math:`1 - e^{-\text{rate}\,t}` for :math:`t \ge 0`."""
    t = np.asarray(t, dtype=np.float64)
    return np.where(t > 0, -np.expm1(-rate * np.maximum(t, 0.0)), 0.0)


def luce_probabilities(alpha) -> np.ndarray:
    r"""Eq. (9): :math:`\alpha_k / \sum_i \alpha_i`."""
    a = np.asarray(alpha, dtype=np.float64)
    return a / a.sum()


def check_gumbel_law(num_samples: int = 200_000, seed: int = 0, cdf=gumbel_cdf, log_density=gumbel_log_density,
                     mean=np.euler_gamma, variance=np.pi**2 / 6, level: float = 1e-3, z_bound: float = 4.0):
    """Section 2.1: the density integrates to 1, ``sample_gumbel`` follows ``cdf`` (KS) with the stated
    mean and variance (in standard errors).  Returns (checks, samples)."""
    from .claims import variance_check

    g = sample_gumbel(num_samples, np.random.default_rng(seed))
    total, _ = integrate.quad(lambda t: np.exp(log_density(t)), -10, 60, epsabs=1e-13)
    checks = [abs_check("the density integrates to 1", total - 1, 1e-10, "|1 - integral|"),
              ks_check(f"samples follow F (N = {num_samples})", g, cdf, level),
              z_check("sample mean equals gamma (in standard errors)", g.mean(), mean,
                      g.std() / np.sqrt(num_samples), z_bound, "|z|"),
              variance_check("sample variance equals pi^2/6 (in standard errors)", [g], [variance], z_bound, "|z|")]
    return checks, g


def frequency_residuals(counts, probs) -> np.ndarray:
    r"""Each frequency's distance from its probability in binomial standard errors, :math:`(\hat p - p)/\sqrt{p(1-p)/N}`."""
    counts = np.asarray(counts, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    n = counts.sum()
    return (counts / n - p) / np.sqrt(p * (1 - p) / n)


def check_gumbel_max_frequencies(alpha, num_samples: int = 1_000_000, seed: int = 2, probs_formula=luce_probabilities,
                                 level: float = 1e-3, z_bound: float = 4.0):
    """Eq. (9): frequencies of ``gumbel_max_sample`` against ``probs_formula(alpha)`` (chi-square, and every
    state within ``z_bound`` standard errors).  Returns (checks, residuals)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    counts = gumbel_max_sample(np.log(alpha), np.random.default_rng(seed), size=num_samples).sum(axis=0)
    p = np.asarray(probs_formula(alpha), dtype=np.float64)
    resid = frequency_residuals(counts, p)
    checks = [chi_square_check(f"frequencies follow Eq. (9), n = {alpha.size}", counts, p, level),
              Check(f"every state within {z_bound:g} SE of Eq. (9), n = {alpha.size}", "max |residual| in SE",
                    float(np.max(np.abs(resid))), z_bound, "<")]
    return checks, resid


def check_max_and_argmax(alpha=ALPHA, num_samples: int = 300_000, seed: int = 4,
                         location_formula=lambda a: float(np.log(np.sum(a))), level: float = 1e-3):
    """(2.5) and (2.6): the maximum of the perturbed logits against a Gumbel with location
    ``location_formula(alpha)``, unconditionally and given each winner (KS).  The first check: the argmax of
    ``log(alpha) + sample_gumbel`` is the sample ``gumbel_max_sample`` returns with the same seed.
    Returns (checks, (winner, top))."""
    alpha = np.asarray(alpha, dtype=np.float64)
    logits = np.log(alpha)
    v = logits + sample_gumbel((num_samples, alpha.size), np.random.default_rng(seed))
    winner, top = v.argmax(axis=-1), v.max(axis=-1)
    same = int(np.sum(gumbel_max_sample(logits, np.random.default_rng(seed), size=num_samples).argmax(-1) != winner))
    loc = location_formula(alpha)
    checks = [Check("argmax of log(alpha) + sample_gumbel is the sample of gumbel_max_sample (same seed)",
                    "samples that differ", same, 1, "<"),
              ks_check("max_k V_k follows Gumbel(log sum alpha)", top, gumbel_cdf, level, args=(loc,))]
    for k in range(alpha.size):
        checks.append(ks_check(f"  ... given argmax = {k + 1}", top[winner == k], gumbel_cdf, level, args=(loc,)))
    return checks, (winner, top)


def check_logistic(num_samples: int = 200_000, seeds=(5, 6), ratio: float = 4.0, cdf=None,
                   prob_formula=lambda r: r / (1 + r), level: float = 1e-3, z_bound: float = 4.0):
    r"""Section 2.4: :math:`G_1 - G_2` and ``sample_logistic`` against the Logistic CDF (KS), the frequency
    of :math:`H(\log\alpha + L) = 1` against ``prob_formula(ratio)``, and Eq. (15) sample by sample.
    Returns (checks, differences)."""
    from .binary import sigmoid

    cdf = sigmoid if cdf is None else cdf
    gg = sample_gumbel((num_samples, 2), np.random.default_rng(seeds[0]))
    diff = gg[:, 0] - gg[:, 1]
    ell = sample_logistic(num_samples, np.random.default_rng(seeds[1]))
    freq = np.mean(np.log(ratio) + ell > 0)
    target = prob_formula(ratio)
    a1, a2 = ratio, 1.0
    agree = np.array_equal(np.log(a1) + gg[:, 0] > np.log(a2) + gg[:, 1], np.log(ratio) + diff > 0)
    checks = [ks_check("G1 - G2 (two sample_gumbel draws) follows sigma", diff, cdf, level),
              ks_check("log U - log(1 - U) (sample_logistic) follows sigma", ell, cdf, level),
              z_check("frequency of H(log alpha + L) = 1 equals alpha/(1 + alpha) (in SE)", freq, target,
                      np.sqrt(target * (1 - target) / num_samples), z_bound, "|z|"),
              Check("Eq. (15) sample by sample: Gumbel comparison = Logistic threshold",
                    "samples that differ", 0 if agree else 1, 1, "<")]
    return checks, diff


# ------------------------------------------------------------------------------ the exponential race
def race_times(alpha, u) -> np.ndarray:
    r"""Ring times :math:`T_k = E_k / \alpha_k` with :math:`E_k = -\log U_k` for given uniforms ``u`` (..., n)."""
    return -np.log(np.asarray(u, dtype=np.float64)) / np.asarray(alpha, dtype=np.float64)


def check_race(alpha=ALPHA, num_samples: int = 300_000, seed: int = 8, win_formula=luce_probabilities,
               rate_formula=lambda a: float(np.sum(a)), level: float = 1e-3):
    r"""The exponential race: with the same uniforms, the first clock is the Gumbel-max state and
    :math:`\min_k T_k = e^{-\max_k V_k}` (sample by sample); the winner follows ``win_formula`` (chi-square);
    the first ring time follows :math:`\mathrm{Exp}(\text{rate\_formula}(\alpha))` (KS), also given each
    winner.  Returns (checks, (times, winner))."""
    alpha = np.asarray(alpha, dtype=np.float64)
    u = sample_uniform((num_samples, alpha.size), np.random.default_rng(seed))
    t = race_times(alpha, u)
    v = np.log(alpha) - np.log(-np.log(u))           # log alpha + G with G = -log(-log U)
    first, winner = t.min(axis=-1), t.argmin(axis=-1)
    differ = int(np.sum(winner != v.argmax(axis=-1)))
    time_err = np.max(np.abs(np.log(first) + v.max(axis=-1)))
    rate = rate_formula(alpha)
    counts = np.bincount(winner, minlength=alpha.size)
    checks = [Check("the first clock to ring is argmax(log alpha + G) (same uniforms)", "samples that differ",
                    differ, 1, "<"),
              abs_check("first ring time equals exp(-max_k V_k)", time_err, 1e-12, "max |log T_min + max V|"),
              chi_square_check("the first clock is k with probability alpha_k / A", counts,
                               win_formula(alpha), level),
              ks_check("the first ring time is Exp(A)", first, exponential_cdf, level, args=(rate,))]
    for k in range(alpha.size):
        checks.append(ks_check(f"  ... given clock {k + 1} rang first", first[winner == k], exponential_cdf, level,
                               args=(rate,)))
    return checks, (t, winner)


def check_race_memoryless(alpha=ALPHA, num_samples: int = 300_000, seed: int = 10, rate_formula=lambda a, i: a[i],
                          level: float = 1e-3):
    r"""Memorylessness: given that clock k rang first, the other clocks' remaining times :math:`T_i - \min_j T_j`
    are :math:`\mathrm{Exp}(\alpha_i)` (``rate_formula(alpha, i)``), for every winner k and every other clock i
    (KS).  Returns checks."""
    alpha = np.asarray(alpha, dtype=np.float64)
    t = race_times(alpha, sample_uniform((num_samples, alpha.size), np.random.default_rng(seed)))
    winner, first = t.argmin(axis=-1), t.min(axis=-1)
    checks = []
    for k in range(alpha.size):
        for i in range(alpha.size):
            if i != k:
                rest = t[winner == k, i] - first[winner == k]
                checks.append(ks_check(f"clock {k + 1} first: clock {i + 1}'s remaining time is Exp(alpha_{i + 1})",
                                       rest, exponential_cdf, level, args=(rate_formula(alpha, i),)))
    return checks


# ------------------------------------------------------------------------------------ exercises
def gumbel_top_k(logits, k: int, rng, size: int) -> np.ndarray:
    r"""The indices of the k largest :math:`\log\alpha_i + G_i`, largest first: shape ``(size, k)``."""
    logits = np.asarray(logits, dtype=np.float64)
    v = logits + sample_gumbel((size, logits.size), rng)
    return np.argsort(-v, axis=-1)[:, :k]


def plackett_luce_probability(alpha, order) -> float:
    r""":math:`\prod_j \alpha_{i_j} / (A - \sum_{l<j}\alpha_{i_l})`: the probability of drawing the states in
    ``order`` one after the other without replacement, each with probability proportional to its alpha."""
    a = np.asarray(alpha, dtype=np.float64)
    prob, left = 1.0, a.sum()
    for i in order:
        prob *= a[i] / left
        left -= a[i]
    return float(prob)


def check_top_k(alpha=(2.0, 0.5, 1.0, 1.5), k: int = 2, num_samples: int = 400_000, seed: int = 9,
                prob_formula=plackett_luce_probability, level: float = 1e-3, z_bound: float = 4.0):
    """Gumbel top-k against ``prob_formula`` over every ordered k-tuple (chi-square and residuals in SE).
    Returns (checks, (tuples, residuals))."""
    alpha = np.asarray(alpha, dtype=np.float64)
    top = gumbel_top_k(np.log(alpha), k, np.random.default_rng(seed), num_samples)
    tuples = list(itertools.permutations(range(alpha.size), k))
    index = {t: j for j, t in enumerate(tuples)}
    counts = np.bincount([index[tuple(r)] for r in top.tolist()], minlength=len(tuples))
    p = np.array([prob_formula(alpha, t) for t in tuples])
    resid = frequency_residuals(counts, p)
    checks = [abs_check("the Plackett-Luce probabilities of all ordered k-tuples sum to 1", p.sum() - 1, 1e-12,
                        "|sum - 1|"),
              chi_square_check(f"ordered top-{k} follows Plackett-Luce", counts, p, level),
              Check(f"every ordered top-{k} within {z_bound:g} SE", "max |residual| in SE",
                    float(np.max(np.abs(resid))), z_bound, "<")]
    return checks, (tuples, resid)


def check_max_stability(n: int = 10, num_samples: int = 200_000, seed: int = 11,
                        location_formula=lambda n: float(np.log(n)), level: float = 1e-3):
    """The maximum of n standard Gumbels minus ``location_formula(n)`` is a standard Gumbel (KS)."""
    g = sample_gumbel((num_samples, n), np.random.default_rng(seed)).max(axis=-1) - location_formula(n)
    return [ks_check(f"max of {n} standard Gumbels minus log {n} is standard Gumbel", g, gumbel_cdf, level)]


def exponential_max_cdf_error(n: int, grid=None) -> float:
    r""":math:`\sup_g |P(\max_{i\le n} E_i - \log n \le g) - F(g)|` with the exact CDF :math:`(1 - e^{-g}/n)^n`
    (for :math:`g > -\log n`, 0 below), on a fine grid of g."""
    g = np.linspace(-np.log(n) - 1, 30, 400_001) if grid is None else np.asarray(grid)
    y = np.exp(-g) / n
    inside = y < 1
    exact = np.where(inside, np.exp(n * np.log1p(-np.where(inside, y, 0.0))), 0.0)
    return float(np.max(np.abs(exact - gumbel_cdf(g))))


def check_exponential_max(ns=(100, 1000, 10_000), constant=2 * np.exp(-2), rel_tolerance: float = 0.01):
    r""":math:`n \sup_g|\ldots|` against ``constant`` (default :math:`2e^{-2}`) at the largest n, and the error
    decreasing in n.  Returns (checks, errors)."""
    errors = np.array([exponential_max_cdf_error(n) for n in ns])
    checks = [Check("the distance to the Gumbel CDF decreases with n", "max ratio of consecutive errors",
                    float(np.max(errors[1:] / errors[:-1])), 1.0, "<"),
              Check(f"n x distance at n = {ns[-1]} equals 2/e^2", "relative difference",
                    abs(ns[-1] * errors[-1] / constant - 1), rel_tolerance, "<")]
    return checks, errors


def normal_noise(rng, shape, scale=np.pi / np.sqrt(6)):
    r"""Normal noise with the standard Gumbel's variance :math:`\pi^2/6` (by default)."""
    return scale * rng.standard_normal(shape)


def check_normal_noise(alpha=ALPHA, num_samples: int = 1_000_000, seed: int = 12, noise=normal_noise,
                       probs_formula=luce_probabilities, z_bound: float = 10.0):
    r"""Normal noise with the Gumbel's variance does *not* give Eq. (9): some state's frequency lies more than
    ``z_bound`` standard errors from :math:`\alpha_k / A`.  ``noise(rng, shape)`` draws the perturbations.
    Returns (checks, residuals)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    noise = noise(np.random.default_rng(seed), (num_samples, alpha.size))
    counts = np.bincount((np.log(alpha) + noise).argmax(axis=-1), minlength=alpha.size)
    resid = frequency_residuals(counts, probs_formula(alpha))
    return [Check("argmax(log alpha + Normal noise) is far from Eq. (9)", "max |residual| in SE",
                  float(np.max(np.abs(resid))), z_bound, ">")], resid

