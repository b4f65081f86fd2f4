r"""Gradient estimators for a single stochastic node (paper Section 2, Eq. 1-7; Section 3.2, Eq. 10).

The objective is :math:`L(\phi) = \mathbb{E}_{D \sim \text{Discrete}(\alpha)}[f(D)]` over one-hot
:math:`D` with :math:`K` categories, ``logits`` :math:`= \log\alpha` (so
:math:`P(D_k = 1) = \operatorname{softmax}(\log\alpha)_k`), and the gradient is taken with respect to the
logits.  Every estimator returns **independent per-estimate gradients**, shape
``(num_estimates,) + batch + (K,)``, so that their mean, variance and mean squared error can be measured
against the exact gradient (:func:`exact_gradient`, by enumeration of the :math:`K` states).

**The function f.**  ``f`` maps an array of points of shape ``lead + batch + (K,)`` to values of shape
``lead + batch`` for any leading shape ``lead``, acting row by row (it must not mix different rows).
The discrete estimators call it on one-hot vectors; the Concrete estimators call it on points of the
simplex and differentiate it with autograd, so there it must be written with ``autograd.numpy``.

**Estimators.**

* Exact gradient (Eq. 3 with the integral a sum over the :math:`K` states):
  :math:`\nabla L = \sum_k f(e_k)\nabla p_k = p \odot (f - \sum_k p_k f(e_k))`, with
  :math:`p = \operatorname{softmax}(\log\alpha)` and :math:`f_k = f(e_k)`.
* Score function (REINFORCE; Eq. 4-5, :cite:`williams1992simple`, :cite:`glynn1990likelihood`):
  :math:`\hat g = \frac1S\sum_s (f(D^s) - b_s)\nabla\log P(D^s)` with
  :math:`\nabla_{\log\alpha}\log P(D) = D - p`.  The baseline :math:`b_s` is ``None`` (0), a constant,
  or ``"loo"``: the mean of the *other* :math:`S-1` values, :math:`b_s = \frac{1}{S-1}\sum_{j\ne s} f(D^j)`.
  Any baseline independent of :math:`D^s` keeps the estimator unbiased because
  :math:`\mathbb{E}[\nabla\log P(D)] = 0`.  The leave-one-out estimator is exactly VIMCO's per-sample
  learning signal (Mnih & Rezende, 2016) for the objective :math:`\frac1S\sum_s f(D^s)`: replacing
  :math:`f(D^s)` by the mean of the others changes that average by :math:`(f(D^s) - b_s)/S`.
* Concrete (reparameterized relaxation; Eq. 6-7 applied to Eq. 10): with Gumbels :math:`G^s` held
  fixed, :math:`\hat g = \frac1S\sum_s\nabla_{\log\alpha} f(\operatorname{softmax}((\log\alpha + G^s)/\lambda))`,
  computed by autograd.  It is an unbiased estimator of the gradient of the *relaxed* objective
  :math:`L_\lambda = \mathbb{E}_G[f(\operatorname{softmax}((\log\alpha + G)/\lambda))]`, and a biased
  one of :math:`\nabla L` (the bias vanishes as :math:`\lambda \to 0` for smooth :math:`f`, while the
  variance grows).
* Gumbel score (:func:`gumbel_score_estimates`): :math:`\hat g = f(X_\lambda)(1 - e^{-G})`, the score of
  the Gumbel density, unbiased for :math:`\nabla L_\lambda` like the Concrete estimator, without
  differentiating :math:`f`; with :math:`f(D)` subtracted (:func:`concrete_bias_estimates`) it is unbiased
  for the Concrete estimator's bias :math:`\nabla L_\lambda - \nabla L`, with a variance of order
  :math:`\lambda` (Chapter 5).
* Straight-through Gumbel (for comparison; not an estimator of the gradient of any objective): the
  forward pass uses the one-hot :math:`D = \text{one\_hot}(\arg\max(\log\alpha + G))`, the backward pass
  the Jacobian of the softmax, :math:`\hat g = J_{\text{softmax}}^\top \nabla f(D)`.

**Gaussian node** (the continuous example of Chapter 1): for
:math:`L(\mu, \sigma) = \mathbb{E}_{X \sim N(\mu, \sigma^2)}[f(X)]`, the reparameterization estimator
(Eq. 7 with :math:`X = \mu + \sigma Z`): :math:`f'(X)\,(1, Z)`; the score-function estimator (Eq. 5):
:math:`(f(X) - b)\,\big((X-\mu)/\sigma^2,\ ((X-\mu)^2 - \sigma^2)/\sigma^3\big)`.  Both return
``(num_estimates, 2)`` arrays of :math:`(\partial/\partial\mu, \partial/\partial\sigma)`.
"""

from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as np
from autograd.scipy.special import logsumexp
from autograd.tracer import getval

from ._validation import check_logits, check_rng, check_temperature
from .concrete import exp_concrete_transform
from .gumbel import sample_gumbel

__all__ = [
    "categorical_probs",
    "one_hot",
    "enumerate_states",
    "exact_objective",
    "exact_gradient",
    "sample_categorical",
    "score_function_estimates",
    "per_sample_gradients",
    "relaxed_values",
    "concrete_estimates",
    "straight_through_estimates",
    "gaussian_reparam_estimates",
    "gaussian_score_estimates",
    "estimator_summary",
    "gumbel_score_estimates",
    "concrete_bias_estimates",
    "score_function_variance",
    "total_variance",
]


# ------------------------------------------------------------------------------------- helpers
def categorical_probs(logits):
    r""":math:`p = \operatorname{softmax}(\log\alpha)` on the last axis (Eq. 9), autograd-friendly."""
    return anp.exp(logits - logsumexp(logits, axis=-1, keepdims=True))


def one_hot(index, num_categories: int) -> np.ndarray:
    """One-hot float64 vectors for integer ``index`` (any shape): result shape ``index.shape + (K,)``."""
    return (np.arange(num_categories) == np.asarray(index)[..., None]).astype(np.float64)


def enumerate_states(num_categories: int, batch_shape=()) -> np.ndarray:
    """All one-hot states :math:`e_1, \\dots, e_K`, shape ``(K,) + batch_shape + (K,)`` (row k is e_k)."""
    eye = np.eye(num_categories)
    shape = (num_categories,) + tuple(batch_shape) + (num_categories,)
    return np.broadcast_to(eye.reshape((num_categories,) + (1,) * len(batch_shape) + (num_categories,)),
                           shape).copy()


def _values_of_states(f, logits):
    k = np.shape(logits)[-1]
    states = enumerate_states(k, np.shape(logits)[:-1])
    values = np.asarray(f(states), dtype=np.float64)
    expected = (k,) + np.shape(logits)[:-1]
    if values.shape != expected:
        raise ValueError(f"f must map points of shape lead + batch + (K,) to lead + batch; "
                         f"on the {k} states it returned {values.shape}, expected {expected}")
    return np.moveaxis(values, 0, -1)  # batch + (K,)


def exact_objective(f, logits) -> np.ndarray:
    r""":math:`L = \sum_k p_k f(e_k)` by enumeration, shape ``batch``."""
    check_logits(logits)
    logits = np.asarray(logits, dtype=np.float64)
    return np.sum(categorical_probs(logits) * _values_of_states(f, logits), axis=-1)


def exact_gradient(f, logits) -> np.ndarray:
    r"""Exact :math:`\nabla_{\log\alpha} L = p \odot (f - \sum_k p_k f_k)` by enumeration (Eq. 3), ``batch + (K,)``."""
    check_logits(logits)
    logits = np.asarray(logits, dtype=np.float64)
    p = categorical_probs(logits)
    values = _values_of_states(f, logits)
    return p * (values - np.sum(p * values, axis=-1, keepdims=True))


def sample_categorical(logits, rng, size) -> np.ndarray:
    """One-hot samples of Discrete(softmax(logits)) by inverse CDF (exact), shape ``size + batch + (K,)``."""
    rng = check_rng(rng)
    logits = np.asarray(logits, dtype=np.float64)
    p = categorical_probs(logits)
    size = (size,) if np.isscalar(size) else tuple(size)
    u = rng.random(size + p.shape[:-1] + (1,))
    cdf = np.cumsum(p, axis=-1)
    index = np.minimum(np.sum(u > cdf, axis=-1), p.shape[-1] - 1)
    return one_hot(index, p.shape[-1])


# ---------------------------------------------------------------------- score function (Eq. 4-5)
def score_function_estimates(f, logits, rng, num_estimates: int, num_samples: int = 1, baseline=None):
    r"""Independent score-function (REINFORCE) estimates of :math:`\nabla_{\log\alpha} L` (Eq. 5).

    Each estimate averages ``num_samples`` = S terms :math:`(f(D^s) - b_s)(D^s - p)`.

    Parameters
    ----------
    f : callable
        Values of the objective at one-hot points (see the module docstring).
    logits : array_like, shape batch + (K,)
    rng : numpy.random.Generator or int
    num_estimates : int
        Number of independent estimates R (the leading axis of the result).
    num_samples : int
        Samples S averaged inside one estimate.
    baseline : None, float / array broadcasting against ``batch``, or ``"loo"``
        ``"loo"`` uses the leave-one-out mean of the other S - 1 values (needs S >= 2); it is VIMCO's
        per-sample baseline for the average of S samples.

    Returns
    -------
    ndarray of shape ``(R,) + batch + (K,)``.
    """
    check_logits(logits)
    rng = check_rng(rng)
    logits = np.asarray(logits, dtype=np.float64)
    d = sample_categorical(logits, rng, (num_estimates, num_samples))  # (R, S) + batch + (K,)
    values = np.asarray(f(d), dtype=np.float64)                          # (R, S) + batch
    if isinstance(baseline, str):
        if baseline != "loo":
            raise ValueError(f"baseline must be None, a number or 'loo'; got {baseline!r}")
        if num_samples < 2:
            raise ValueError("the leave-one-out baseline needs num_samples >= 2")
        b = (np.sum(values, axis=1, keepdims=True) - values) / (num_samples - 1)
    elif baseline is None:
        b = 0.0
    else:
        b = np.asarray(baseline, dtype=np.float64)
    score = d - categorical_probs(logits)
    return np.mean((values - b)[..., None] * score, axis=1)


# --------------------------------------------------------------- reparameterization (Eq. 6-7, 10)
def per_sample_gradients(fun, params, noise):
    r"""Gradients of ``fun`` with respect to ``params``, one per noise draw, in a single backward pass.

    ``fun(p, noise)`` must return one value per leading index of ``noise`` (shape ``noise.shape[:-1]``
    when params and noise share the last axis), depending only on its own row of ``p``.  ``params`` is
    broadcast to ``noise``'s shape and the gradient of the *sum* of the values is taken with respect to
    the broadcast copy: row ``i`` of the result is :math:`\nabla_p\,\text{fun}(p, \text{noise}_i)`.
    """
    tiled = np.array(np.broadcast_to(np.asarray(params, dtype=np.float64), np.shape(noise)))
    return autograd.grad(lambda p: anp.sum(fun(p, noise)))(tiled)


def relaxed_values(f, logits, temperature, gumbels):
    r""":math:`f(\operatorname{softmax}((\log\alpha + G)/\lambda))` for given Gumbels (Eq. 10), shape ``gumbels.shape[:-1]``.

    Its mean over the Gumbels estimates the relaxed objective :math:`L_\lambda`; with common random
    numbers it is a smooth function of the logits, which is what the Concrete estimator differentiates.
    """
    return f(anp.exp(exp_concrete_transform(logits, temperature, gumbels)))


def _gumbels(logits, rng, num_estimates, num_samples):
    return sample_gumbel((num_estimates, num_samples) + np.shape(logits), check_rng(rng))


def concrete_estimates(f, logits, temperature, rng, num_estimates: int, num_samples: int = 1,
                       gumbels=None):
    r"""Independent Concrete (relaxed reparameterization) gradient estimates (Eq. 7 applied to Eq. 10).

    Each estimate is :math:`\frac1S\sum_s \nabla_{\log\alpha} f(\operatorname{softmax}((\log\alpha + G^s)/\lambda))`,
    unbiased for :math:`\nabla L_\lambda` and biased for the discrete :math:`\nabla L`.  ``gumbels`` of
    shape ``(R, S) + batch + (K,)`` may be passed to use common random numbers; otherwise they are drawn.
    Returns shape ``(R,) + batch + (K,)``.
    """
    check_logits(logits)
    check_temperature(temperature)
    logits = np.asarray(logits, dtype=np.float64)
    g = _gumbels(logits, rng, num_estimates, num_samples) if gumbels is None else np.asarray(gumbels)
    grads = per_sample_gradients(lambda p, noise: relaxed_values(f, p, temperature, noise), logits, g)
    return np.mean(grads, axis=1)


def straight_through_estimates(f, logits, temperature, rng, num_estimates: int, num_samples: int = 1,
                               gumbels=None):
    r"""Straight-through Gumbel estimates: forward :math:`f(D)` at the one-hot :math:`D = \arg\max(\log\alpha + G)`,
    backward through the tempered softmax, :math:`J_{\text{softmax}}^\top\nabla f(D)`.

    Not an unbiased estimator of the gradient of :math:`L` or of :math:`L_\lambda` (the paper, Section 4:
    straight-through estimators "have not been shown to be the estimators of any loss function").
    Returns shape ``(R,) + batch + (K,)``.
    """
    check_logits(logits)
    check_temperature(temperature)
    logits = np.asarray(logits, dtype=np.float64)
    g = _gumbels(logits, rng, num_estimates, num_samples) if gumbels is None else np.asarray(gumbels)
    hard = one_hot(np.argmax(logits + g, axis=-1), logits.shape[-1])

    def fun(p, noise):
        soft = anp.exp(exp_concrete_transform(p, temperature, noise))
        return f(soft + (hard - getval(soft)))  # value of the hard sample, gradient of the soft one

    return np.mean(per_sample_gradients(fun, logits, g), axis=1)


# --------------------------------------------------------------------------- Gaussian node (Ch. 1)
def gaussian_reparam_estimates(f, mu, sigma, rng, num_estimates: int):
    r"""Reparameterization estimates of :math:`\nabla_{(\mu,\sigma)}\mathbb{E}_{N(\mu,\sigma^2)}[f(X)]` (Eq. 7).

    :math:`X = \mu + \sigma Z`, :math:`Z \sim N(0, 1)`: the estimate is :math:`f'(X)\,(1, Z)`, with
    :math:`f'` from autograd (``f`` must be elementwise and written with ``autograd.numpy``).
    Returns ``(num_estimates, 2)``.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive; got {sigma}")
    z = check_rng(rng).standard_normal(num_estimates)
    fprime = autograd.elementwise_grad(f)(mu + sigma * z)
    return np.stack([fprime, fprime * z], axis=-1)


def gaussian_score_estimates(f, mu, sigma, rng, num_estimates: int, baseline=None):
    r"""Score-function estimates of the same gradient (Eq. 5): :math:`(f(X) - b)\nabla_{(\mu,\sigma)}\log N(X;\mu,\sigma^2)`.

    :math:`\partial_\mu \log N = (X - \mu)/\sigma^2 = Z/\sigma`,
    :math:`\partial_\sigma \log N = ((X-\mu)^2 - \sigma^2)/\sigma^3 = (Z^2 - 1)/\sigma`.
    ``baseline`` is ``None`` (0) or a constant.  Returns ``(num_estimates, 2)``.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive; got {sigma}")
    z = check_rng(rng).standard_normal(num_estimates)
    values = np.asarray(f(mu + sigma * z), dtype=np.float64) - (0.0 if baseline is None else baseline)
    return np.stack([values * z / sigma, values * (z * z - 1.0) / sigma], axis=-1)


# ----------------------------------------------------------------------------------- statistics
def estimator_summary(estimates, target):
    r"""Bias, variance and mean squared error of per-estimate gradients against a target gradient.

    ``estimates`` has shape ``(R,) + shape``; ``target`` broadcasts against ``shape``.  Returns a dict:

    * ``mean``: the sample mean (shape ``shape``);
    * ``variance``: the total variance :math:`\operatorname{tr}\operatorname{Cov}[\hat g]`, the sum
      over components of the unbiased sample variances;
    * ``bias2``: :math:`\lVert\mathbb{E}\hat g - g\rVert^2`, estimated without bias as
      :math:`\lVert\bar g - g\rVert^2 - \text{variance}/R` (can be slightly negative when the bias is
      below the Monte Carlo resolution);
    * ``bias2_se``: an approximate standard error of ``bias2``: the delta-method term
      :math:`2\sqrt{\sum_i d_i^2 v_i / R}` plus the chi-square spread :math:`\sqrt{2\sum_i v_i^2}/R`
      of the noise itself (:math:`d` the difference of means, :math:`v_i` the component variances);
    * ``mse``: ``bias2 + variance`` (= :math:`\mathbb{E}\lVert\hat g - g\rVert^2`);
    * ``z``: the largest componentwise :math:`|\bar g - g| / \text{se}` (a z-score for unbiasedness).
    """
    est = np.asarray(estimates, dtype=np.float64)
    r = est.shape[0]
    mean = est.mean(axis=0)
    var_comp = est.var(axis=0, ddof=1)
    diff = mean - np.asarray(target, dtype=np.float64)
    variance = float(np.sum(var_comp))
    bias2 = float(np.sum(diff**2) - variance / r)
    bias2_se = float(2.0 * np.sqrt(np.sum(diff**2 * var_comp) / r) + np.sqrt(2.0 * np.sum(var_comp**2)) / r)
    se = np.sqrt(var_comp / r)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, np.abs(diff) / se, np.where(diff == 0, 0.0, np.inf))
    return {"mean": mean, "variance": variance, "bias2": bias2, "bias2_se": bias2_se,
            "mse": bias2 + variance, "z": float(np.max(z)), "num_estimates": r}



# ------------------------------------------------------- the relaxed gradient through the Gumbel density
def _gumbel_score_terms(f, logits, temperature, gumbels, subtract_discrete):
    u = logits + gumbels
    values = f(np.exp(np.asarray(exp_concrete_transform(logits, temperature, gumbels))))
    if subtract_discrete:
        values = values - f(one_hot(np.argmax(u, axis=-1), logits.shape[-1]))
    return np.asarray(values, dtype=np.float64)[..., None] * (1.0 - np.exp(-gumbels))


def gumbel_score_estimates(f, logits, temperature, rng, num_estimates: int, num_samples: int = 1,
                           gumbels=None):
    r"""Score-function estimates of the *relaxed* gradient :math:`\nabla L_\lambda`, through the Gumbel density.

    :math:`U = \log\alpha + G` has density :math:`\prod_k g(u_k - \log\alpha_k)` with
    :math:`g(v) = e^{-v - e^{-v}}`, whose score in :math:`\log\alpha_k` is
    :math:`-(\log g)'(G_k) = 1 - e^{-G_k}`.  Hence
    :math:`\nabla L_\lambda = \mathbb{E}[f(X_\lambda)\,(1 - e^{-G})]` with
    :math:`X_\lambda = \operatorname{softmax}(U/\lambda)`: the same target as the pathwise
    :func:`concrete_estimates`, reached without differentiating :math:`f`.  ``f`` needs only NumPy.
    Returns shape ``(R,) + batch + (K,)``.
    """
    check_logits(logits)
    check_temperature(temperature)
    logits = np.asarray(logits, dtype=np.float64)
    g = _gumbels(logits, rng, num_estimates, num_samples) if gumbels is None else np.asarray(gumbels)
    return np.mean(_gumbel_score_terms(f, logits, temperature, g, False), axis=1)


def concrete_bias_estimates(f, logits, temperature, rng, num_estimates: int, num_samples: int = 1,
                            gumbels=None):
    r"""Unbiased estimates of the Concrete estimator's bias :math:`\nabla L_\lambda - \nabla L`, shape ``(R,) + batch + (K,)``.

    :math:`D = e_{\arg\max_k U_k}` is a function of the same :math:`U = \log\alpha + G`, so
    :math:`\nabla L = \mathbb{E}[f(D)(1 - e^{-G})]` too, and

    .. math:: \nabla L_\lambda - \nabla L = \mathbb{E}\big[(f(X_\lambda) - f(D))\,(1 - e^{-G})\big].

    The factor :math:`f(X_\lambda) - f(D)` is exponentially small except where the two largest
    :math:`U_k` are within a few :math:`\lambda` of each other, a set of probability :math:`O(\lambda)`:
    the variance of these estimates is :math:`O(\lambda)`, against the :math:`O(1/\lambda)` of the
    pathwise estimates whose bias they measure.  That is what resolves the bias at small :math:`\lambda`.
    """
    check_logits(logits)
    check_temperature(temperature)
    logits = np.asarray(logits, dtype=np.float64)
    g = _gumbels(logits, rng, num_estimates, num_samples) if gumbels is None else np.asarray(gumbels)
    return np.mean(_gumbel_score_terms(f, logits, temperature, g, True), axis=1)


def score_function_variance(f, logits, baseline=0.0, num_samples: int = 1) -> float:
    r"""Exact total variance :math:`\operatorname{tr}\operatorname{Cov}\hat g` of the score-function estimator
    with a constant ``baseline`` :math:`b`, by enumeration of the :math:`K` states (one node, no batch).

    One sample: :math:`\hat g = (f(D) - b)(D - p)` has mean :math:`\nabla L` for every constant
    :math:`b`, and :math:`\mathbb{E}\lVert\hat g\rVert^2 = \sum_k p_k (f_k - b)^2\lVert e_k - p\rVert^2`
    with :math:`\lVert e_k - p\rVert^2 = 1 - 2p_k + \lVert p\rVert^2`; the variance is the difference,
    divided by :math:`S` = ``num_samples`` for an average of :math:`S` independent samples.  The
    minimising constant is :math:`b^\star = \sum_k p_k\lVert e_k - p\rVert^2 f_k / \sum_k p_k\lVert e_k - p\rVert^2`.
    """
    check_logits(logits)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 1:
        raise ValueError(f"score_function_variance takes one node's logits, shape (K,); got {logits.shape}")
    p = np.asarray(categorical_probs(logits))
    values = _values_of_states(f, logits)
    norm2 = 1.0 - 2.0 * p + np.sum(p**2)
    grad = p * (values - np.sum(p * values))
    second = np.sum(p * (values - baseline) ** 2 * norm2)
    return float((second - np.sum(grad**2)) / num_samples)


def total_variance(estimates):
    r"""The total variance :math:`\operatorname{tr}\operatorname{Cov}\hat g` of ``(R,) + shape`` estimates, with its standard error: ``(value, se)``.

    The value is the sum of the componentwise unbiased sample variances (as in :func:`estimator_summary`);
    the standard error is that of the mean of :math:`\lVert\hat g_r - \bar g\rVert^2` (its sample
    standard deviation over :math:`\sqrt R`), which accounts for heavy tails through the fourth moment.
    """
    est = np.asarray(estimates, dtype=np.float64)
    r = est.shape[0]
    if r < 2:
        raise ValueError("need at least 2 estimates")
    sq = np.sum((est - est.mean(axis=0)).reshape(r, -1) ** 2, axis=1) * r / (r - 1)
    return float(sq.mean()), float(sq.std(ddof=1) / np.sqrt(r))
