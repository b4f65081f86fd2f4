r"""A one-latent "discrete VAE" small enough to enumerate (paper Section 3.3, Eq. 12-13; App. C, Eq. 20-25).

**Model.**  One :math:`K`-ary latent :math:`D` (one-hot) with prior :math:`P_a(d) = \operatorname{softmax}(a)^\top d`
(``prior_logits`` = :math:`\log a`), and :math:`P` binary pixels :math:`x \in \{0,1\}^P` with Bernoulli
likelihood whose logits are *linear in the latent*:

.. math:: \log p_\theta(x \mid z) = \sum_{j=1}^P x_j\eta_j - \log(1 + e^{\eta_j}),
   \qquad \eta = W z + b, \quad \theta = (W, b).

Because :math:`\eta` is linear in :math:`z`, the same formula defines the likelihood at any point
:math:`z` of the simplex, which is what the relaxed model evaluates: at a vertex :math:`e_k` it is the
discrete model's likelihood, :math:`\eta = W_{:,k} + b`.  The posterior is :math:`Q_\alpha(d \mid x) =
\operatorname{softmax}(\log\alpha)^\top d` with free ``posterior_logits`` :math:`\log\alpha` (one
observation :math:`x`, no amortisation).

**Discrete quantities, exact by enumeration of the K states.**

* :math:`\log p(x) = \operatorname{L\Sigma E}_k\{\log P_a(e_k) + \log p_\theta(x \mid e_k)\}`;
* the ELBO (Eq. 12) :math:`\mathcal{L}_1 = \sum_k Q_k(\log p_\theta(x\mid e_k) + \log P_a(e_k) - \log Q_k)`,
  which equals :math:`\log p(x)` exactly when :math:`Q` is the true posterior; its gradient by autograd.

**Relaxed quantities** (Section 3.3, App. C.3.1).  The posterior node is :math:`Y \sim
\text{ExpConcrete}(\alpha, \lambda_1)` with density :math:`\kappa_{\alpha,\lambda_1}`, the prior density is
:math:`\rho_{a,\lambda_2}` (ExpConcrete with location :math:`a` and temperature :math:`\lambda_2`), and the
likelihood is evaluated at the relaxed sample :math:`Z = \exp(Y)`:

.. math:: \text{Eq. (25)}:\quad \mathbb{E}_{Y\sim\kappa_{\alpha,\lambda_1}}\Big[\log p_\theta(x\mid e^Y)
   + \log\rho_{a,\lambda_2}(Y) - \log\kappa_{\alpha,\lambda_1}(Y)\Big],

equal to Eq. (13) = Eq. (20) because the KL term is invariant under the bijection :math:`Y \mapsto e^Y`.
By Jensen's inequality it is at most the *relaxed log marginal* (Eq. 23)
:math:`\log\int p_\theta(x\mid z)\,p_{a,\lambda_2}(z)\,dz`, computed here by prior sampling
(:func:`relaxed_log_marginal_mc`) and, for :math:`K \in \{2, 3\}`, by quadrature
(:func:`relaxed_log_marginal_quadrature`).  The "tempting" objectives of App. C.2 are

.. math:: \text{Eq. (21)}:\ \mathbb{E}_Z\Big[\log p_\theta(x\mid Z) + \sum_i Z_i\log\frac{P_a(d^{(i)})}{Q_\alpha(d^{(i)})}\Big],
   \qquad \text{Eq. (22)}:\ \mathbb{E}_Z[\log p_\theta(x\mid Z)] - \mathrm{KL}(Q_\alpha \,\|\, P_a),

with :math:`Z \sim \text{Concrete}(\alpha, \lambda_1)`; they are not bounds on the relaxed log marginal.

**The relaxed multi-sample bound** (Chapter 5, Eq. 5.2): :math:`\tilde{\mathcal{L}}_m =
\mathbb{E}[\log\frac1m\sum_i w(Y_i)]` with :math:`Y_i` i.i.d. ExpConcrete(:math:`\alpha, \lambda_1`) and
the relaxed weight :math:`w(y) = p_\theta(x\mid e^y)\rho_{a,\lambda_2}(y)/\kappa_{\alpha,\lambda_1}(y)`, a
lower bound on the relaxed log marginal, non-decreasing in :math:`m`
(:func:`relaxed_multi_sample_bound_mc`; for :math:`K = 2`, where every relaxed quantity depends on the
Gumbels only through :math:`L = G_1 - G_2`, exactly by quadrature:
:func:`relaxed_multi_sample_bound_quadrature`, and :func:`relaxed_expectation_k2` for Eq. 25 and its
parts).  The KL term of Eq. (25) in closed form and its gradient: :func:`relaxed_kl_term`,
:func:`relaxed_kl_term_gradient`.

**Gradient estimators of the discrete ELBO with respect to** :math:`\log\alpha`: the Concrete estimator
(:func:`relaxed_elbo_gradient_estimates`, the pathwise gradient of Eq. 25), and the score-function
estimators (:func:`elbo_score_function_estimates`) with learning signal
:math:`\ell(d) = \log p_\theta(x\mid d) + \log P_a(d) - \log Q_\alpha(d)`.  The score-function estimator
leaves out the term :math:`\mathbb{E}[\nabla_\alpha \ell(D)] = -\mathbb{E}[\nabla_\alpha\log Q_\alpha(D)] = 0`.
"""

from __future__ import annotations

from dataclasses import dataclass

import autograd
import autograd.numpy as anp
import numpy as np
from autograd.scipy.special import logsumexp
from scipy import integrate
from scipy.special import logsumexp as np_logsumexp

from ._validation import check_rng, check_temperature
from .binary import logistic_log_density
from .concrete import exp_concrete_log_density, exp_concrete_sample, exp_concrete_transform
from .estimators import per_sample_gradients, score_function_estimates
from .gumbel import sample_gumbel

__all__ = [
    "OneLatentVAE",
    "random_vae",
    "discrete_elbo",
    "discrete_elbo_parts",
    "discrete_elbo_gradient",
    "learning_signal",
    "multi_sample_bound",
    "relaxed_elbo_parts",
    "relaxed_elbo_values",
    "relaxed_objective_values",
    "relaxed_objective_estimates",
    "relaxed_elbo_gradient_estimates",
    "elbo_score_function_estimates",
    "relaxed_log_marginal_mc",
    "relaxed_log_marginal_quadrature",
    "relaxed_kl_term",
    "relaxed_kl_term_gradient",
    "logistic_trapezoid",
    "relaxed_expectation_k2",
    "relaxed_multi_sample_bound_mc",
    "relaxed_multi_sample_bound_quadrature",
]


def _log_softmax(v):
    return v - logsumexp(v, axis=-1, keepdims=True)


@dataclass(frozen=True)
class OneLatentVAE:
    """Parameters of the toy model: ``weights`` W (P, K), ``bias`` b (P,), ``prior_logits`` log a (K,)."""

    weights: np.ndarray
    bias: np.ndarray
    prior_logits: np.ndarray

    def __post_init__(self):
        w, b, a = (np.asarray(v, dtype=np.float64) for v in (self.weights, self.bias, self.prior_logits))
        if w.ndim != 2 or b.shape != (w.shape[0],) or a.shape != (w.shape[1],) or w.shape[1] < 2:
            raise ValueError(f"need weights (P, K), bias (P,), prior_logits (K,) with K >= 2; got "
                             f"{w.shape}, {b.shape}, {a.shape}")
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b)) and np.all(np.isfinite(a))):
            raise ValueError("model parameters must be finite")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bias", b)
        object.__setattr__(self, "prior_logits", a)

    @property
    def num_categories(self) -> int:
        return self.weights.shape[1]

    @property
    def num_pixels(self) -> int:
        return self.weights.shape[0]

    def log_likelihood(self, x, z):
        r""":math:`\log p_\theta(x \mid z)` for points ``z`` of shape ``(..., K)`` (vertices or simplex points): ``(...)``."""
        eta = anp.dot(z, self.weights.T) + self.bias
        return anp.sum(x * eta - anp.logaddexp(0.0, eta), axis=-1)

    def log_prior(self, d):
        r""":math:`\log P_a(d) = d^\top\operatorname{log\,softmax}(a)` for one-hot ``d``."""
        return anp.sum(d * _log_softmax(self.prior_logits), axis=-1)

    def log_joint_states(self, x) -> np.ndarray:
        r""":math:`\log p_\theta(x\mid e_k) + \log P_a(e_k)` for the K states, shape ``(K,)``."""
        eye = np.eye(self.num_categories)
        return self.log_likelihood(x, eye) + self.log_prior(eye)

    def log_marginal(self, x) -> float:
        r"""Exact :math:`\log p(x) = \operatorname{L\Sigma E}_k\{\log P_a(e_k) + \log p_\theta(x\mid e_k)\}`."""
        return float(np_logsumexp(self.log_joint_states(x)))

    def posterior_logits(self, x) -> np.ndarray:
        r"""Logits of the exact posterior :math:`p(d \mid x)` (normalised: ``logsumexp == 0``)."""
        lj = self.log_joint_states(x)
        return lj - np_logsumexp(lj)


def random_vae(num_categories: int, num_pixels: int, rng, weight_scale: float = 2.0,
               prior_scale: float = 1.0) -> OneLatentVAE:
    """A toy model with standard normal entries scaled by ``weight_scale`` / ``prior_scale`` (seeded)."""
    rng = check_rng(rng)
    return OneLatentVAE(weight_scale * rng.standard_normal((num_pixels, num_categories)),
                        rng.standard_normal(num_pixels), prior_scale * rng.standard_normal(num_categories))


# ----------------------------------------------------------------------- discrete ELBO (Eq. 12)
def discrete_elbo_parts(model: OneLatentVAE, x, posterior_logits):
    r"""(reconstruction, minus KL): :math:`\sum_k Q_k\log p_\theta(x\mid e_k)` and :math:`-\mathrm{KL}(Q_\alpha\,\|\,P_a)`."""
    log_q = _log_softmax(posterior_logits)
    q = anp.exp(log_q)
    eye = np.eye(model.num_categories)
    recon = anp.sum(q * model.log_likelihood(x, eye), axis=-1)
    neg_kl = anp.sum(q * (_log_softmax(model.prior_logits) - log_q), axis=-1)
    return recon, neg_kl


def discrete_elbo(model: OneLatentVAE, x, posterior_logits):
    r"""The ELBO (Eq. 12) by enumeration: :math:`\sum_k Q_k(\log p_\theta(x\mid e_k) + \log P_a(e_k) - \log Q_k)`."""
    recon, neg_kl = discrete_elbo_parts(model, x, posterior_logits)
    return recon + neg_kl


def discrete_elbo_gradient(model: OneLatentVAE, x, posterior_logits, part: str = "elbo") -> np.ndarray:
    r"""Exact gradient of the ELBO (or of one ``part``: ``"reconstruction"`` or ``"kl"`` = minus KL) in :math:`\log\alpha`."""
    index = {"elbo": None, "reconstruction": 0, "kl": 1}[part]
    fun = (lambda p: discrete_elbo(model, x, p)) if index is None else (
        lambda p: discrete_elbo_parts(model, x, p)[index])
    return autograd.grad(fun)(np.asarray(posterior_logits, dtype=np.float64))


def multi_sample_bound(model: OneLatentVAE, x, posterior_logits, m: int) -> float:
    r"""The multi-sample bound :math:`\mathcal{L}_m` (Eq. 8) exactly, by enumerating all :math:`K^m` tuples.

    :math:`\mathcal{L}_m = \sum_{d_1..d_m} \prod_i Q(d_i)\,\log\frac1m\sum_i w(d_i)` with
    :math:`w(d) = p_\theta(x, d)/Q_\alpha(d)`.  :math:`\mathcal{L}_1` is the ELBO (Eq. 12);
    :math:`\mathcal{L}_m \le \mathcal{L}_{m+1} \le \log p(x)` (Burda et al., 2016).  Cost :math:`K^m`.
    """
    k = model.num_categories
    if m < 1 or k**m > 5_000_000:
        raise ValueError(f"m must be >= 1 with K**m <= 5e6 tuples; got K = {k}, m = {m}")
    log_q = np.asarray(_log_softmax(np.asarray(posterior_logits, dtype=np.float64)))
    log_w = model.log_joint_states(x) - log_q
    idx = np.indices((k,) * m).reshape(m, -1)             # all K**m tuples, one per column
    log_prob = log_q[idx].sum(axis=0)
    log_mean_w = np_logsumexp(log_w[idx], axis=0) - np.log(m)
    return float(np.sum(np.exp(log_prob) * log_mean_w))


def learning_signal(model: OneLatentVAE, x, d, posterior_logits):
    r""":math:`\ell(d) = \log p_\theta(x\mid d) + \log P_a(d) - \log Q_\alpha(d)` for one-hot ``d`` of shape ``(..., K)``."""
    return model.log_likelihood(x, d) + model.log_prior(d) - anp.sum(d * _log_softmax(posterior_logits), -1)


def elbo_score_function_estimates(model: OneLatentVAE, x, posterior_logits, rng, num_estimates: int,
                                  num_samples: int = 1, baseline=None) -> np.ndarray:
    r"""Score-function estimates of :math:`\nabla_{\log\alpha}\mathcal{L}_1` (Eq. 5 with :math:`f = \ell`), ``(R, K)``.

    ``baseline``: ``None``, a constant (for example the ELBO value: an idealised running average, as
    in NVIL), or ``"loo"`` (leave-one-out over ``num_samples``; VIMCO's baseline for a sample average).
    """
    alpha = np.asarray(posterior_logits, dtype=np.float64)
    return score_function_estimates(lambda d: learning_signal(model, x, d, alpha), alpha, rng,
                                    num_estimates, num_samples, baseline)


# ------------------------------------------------------------------ relaxed objectives (App. C)
def relaxed_elbo_parts(model: OneLatentVAE, x, posterior_logits, lam1, lam2, gumbels):
    r"""Per-sample terms of Eq. (25) for the given Gumbels: :math:`\log p_\theta(x\mid e^Y)`,
    :math:`\log\rho_{a,\lambda_2}(Y)`, :math:`\log\kappa_{\alpha,\lambda_1}(Y)`, with
    :math:`Y = \operatorname{log\,softmax}((\log\alpha + G)/\lambda_1)` (each of shape ``gumbels.shape[:-1]``).
    """
    y = exp_concrete_transform(posterior_logits, lam1, gumbels)
    recon = model.log_likelihood(x, anp.exp(y))
    log_prior = exp_concrete_log_density(y, model.prior_logits, lam2)
    log_post = exp_concrete_log_density(y, posterior_logits, lam1)
    return recon, log_prior, log_post


def relaxed_elbo_values(model: OneLatentVAE, x, posterior_logits, lam1, lam2, gumbels, part="elbo"):
    r"""Per-sample values of Eq. (25) (``part="elbo"``), or of its ``"reconstruction"`` term
    :math:`\log p_\theta(x\mid e^Y)`, or of its ``"kl"`` term :math:`\log\rho - \log\kappa`.

    Since :math:`\lambda_1 Y = \log\alpha + G - c` for a scalar :math:`c`, the ``"kl"`` term equals
    :math:`(K-1)\log r + \sum_k \operatorname{log\,softmax}_k(\log a - r(\log\alpha + G))
    - \sum_k\operatorname{log\,softmax}_k(-G)` with :math:`r = \lambda_2/\lambda_1`: it depends on the
    temperatures only through their ratio, and :math:`\log\kappa_{\alpha,\lambda_1}(Y)` does not depend
    on :math:`\alpha` at all (tested in ``tests/test_toy_models.py``).
    """
    recon, log_prior, log_post = relaxed_elbo_parts(model, x, posterior_logits, lam1, lam2, gumbels)
    if part == "elbo":
        return recon + log_prior - log_post
    if part == "reconstruction":
        return recon
    if part == "kl":
        return log_prior - log_post
    raise ValueError(f"part must be 'elbo', 'reconstruction' or 'kl'; got {part!r}")


def relaxed_objective_values(model: OneLatentVAE, x, posterior_logits, lam1, lam2, gumbels) -> dict:
    r"""Per-sample values of the three candidate relaxed objectives of App. C.2 at common Gumbels.

    Keys ``"eq20"`` (= Eq. 25, the relaxed ELBO), ``"eq21"`` (the discrete log-mass ratio evaluated at
    the relaxed sample, :math:`\sum_i Z_i\log(P_i/Q_i)`), ``"eq22"`` (the analytic discrete KL).
    ``lam2`` is used by Eq. 20 only.  Differentiable (autograd) in ``posterior_logits``, so that
    each objective can be maximised with common random numbers.
    """
    alpha = posterior_logits
    recon, log_prior, log_post = relaxed_elbo_parts(model, x, alpha, lam1, lam2, gumbels)
    z = anp.exp(exp_concrete_transform(alpha, lam1, gumbels))
    log_ratio = _log_softmax(model.prior_logits) - _log_softmax(alpha)
    q = anp.exp(_log_softmax(alpha))
    return {"eq20": recon + log_prior - log_post,
            "eq21": recon + anp.sum(z * log_ratio, axis=-1),
            "eq22": recon + anp.sum(q * log_ratio, axis=-1)}


def relaxed_objective_estimates(model: OneLatentVAE, x, posterior_logits, lam1, lam2, rng,
                                num_samples: int) -> dict:
    """Monte Carlo values and standard errors of Eq. 20, 21, 22: ``{name: (mean, se)}``."""
    check_temperature(lam1, "lam1")
    check_temperature(lam2, "lam2")
    g = sample_gumbel((num_samples, model.num_categories), check_rng(rng))
    values = relaxed_objective_values(model, x, posterior_logits, lam1, lam2, g)
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1) / np.sqrt(num_samples))) for k, v in values.items()}


def relaxed_elbo_gradient_estimates(model: OneLatentVAE, x, posterior_logits, lam1, lam2, rng,
                                    num_estimates: int, num_samples: int = 1, part: str = "elbo",
                                    gumbels=None) -> np.ndarray:
    r"""Concrete estimates of the gradient of Eq. (25) (or of one ``part``) in :math:`\log\alpha`, shape ``(R, K)``.

    Each estimate averages the pathwise gradients of ``num_samples`` reparameterized samples; it is
    unbiased for the gradient of the relaxed objective and biased for that of the discrete ELBO.
    """
    check_temperature(lam1, "lam1")
    check_temperature(lam2, "lam2")
    alpha = np.asarray(posterior_logits, dtype=np.float64)
    g = (sample_gumbel((num_estimates, num_samples, alpha.shape[-1]), check_rng(rng))
         if gumbels is None else np.asarray(gumbels))
    fun = lambda p, noise: relaxed_elbo_values(model, x, p, lam1, lam2, noise, part)
    return np.mean(per_sample_gradients(fun, alpha, g), axis=1)


# ------------------------------------------------------------------ relaxed log marginal (Eq. 23)
def relaxed_log_marginal_mc(model: OneLatentVAE, x, lam2, rng, num_samples: int):
    r""":math:`\log\int p_\theta(x\mid z)p_{a,\lambda_2}(z)\,dz` by sampling the relaxed prior: ``(estimate, se)``.

    :math:`\log\frac1N\sum_n p_\theta(x\mid Z_n)` with :math:`Z_n \sim \text{Concrete}(a, \lambda_2)`,
    drawn in chunks of 10^6.  The likelihood is bounded by 1, so the average has finite variance; the
    standard error is that of the average divided by the average (delta method).  The log of an
    unbiased average is biased low by about :math:`\text{se}^2/2`, negligible at the sizes used.
    """
    check_temperature(lam2, "lam2")
    rng = check_rng(rng)
    total, total_sq, done, shift = 0.0, 0.0, 0, None
    while done < num_samples:
        n = min(1_000_000, num_samples - done)
        y = exp_concrete_sample(model.prior_logits, lam2, rng, n)
        ll = model.log_likelihood(x, np.exp(y))
        shift = float(np.max(ll)) if shift is None else shift
        w = np.exp(ll - shift)
        total, total_sq, done = total + w.sum(), total_sq + (w**2).sum(), done + n
    mean = total / done
    var = max(total_sq / done - mean**2, 0.0)
    return float(np.log(mean) + shift), float(np.sqrt(var / done) / mean)


def relaxed_log_marginal_quadrature(model: OneLatentVAE, x, lam2, grid_points: int = 801) -> float:
    r"""The relaxed log marginal (Eq. 23) by quadrature, for :math:`K = 2` (adaptive) or :math:`K = 3` (grid).

    The integral is taken in the relative coordinates :math:`u_k = y_k - y_K` of the ExpConcrete prior
    (density :math:`\rho_{a,\lambda_2}` in exactly these coordinates, App. C.3.1), where the integrand is
    smooth.  :math:`K = 2`: ``scipy.integrate.quad`` in :math:`u = y_1 - y_2`, whose density is the
    Logistic of Eq. 26 with location :math:`a_1 - a_2`.  :math:`K = 3`: the trapezoid rule on a
    ``grid_points``-square grid over :math:`|u_k - \mu_k| \le 40/\lambda_2` (the tails decay like
    :math:`e^{-\lambda_2 |u|}`; the truncated mass is below :math:`10^{-15}`).
    """
    check_temperature(lam2, "lam2")
    k = model.num_categories
    a = model.prior_logits
    if k == 2:
        centre = (a[0] - a[1]) / lam2

        def integrand(u):
            z = np.array([1.0 / (1.0 + np.exp(-u)), 1.0 / (1.0 + np.exp(u))])
            return np.exp(model.log_likelihood(x, z) + logistic_log_density(u, a[0] - a[1], lam2))

        half = 40.0 / lam2
        val, _ = integrate.quad(integrand, centre - half, centre + half, points=[centre], limit=500,
                                epsabs=0.0, epsrel=1e-11)
        return float(np.log(val))
    if k == 3:
        half = 40.0 / lam2
        centres = (a[:2] - a[2]) / lam2
        grids = [np.linspace(c - half, c + half, grid_points) for c in centres]
        u1, u2 = np.meshgrid(*grids, indexing="ij")
        u = np.stack([u1, u2, np.zeros_like(u1)], axis=-1)
        y = u - np_logsumexp(u, axis=-1, keepdims=True)
        log_f = model.log_likelihood(x, np.exp(y)) + exp_concrete_log_density(y, a, lam2)
        h = (grids[0][1] - grids[0][0]) * (grids[1][1] - grids[1][0])
        wts = np.ones(grid_points)
        wts[[0, -1]] = 0.5
        shift = float(np.max(log_f))
        return float(np.log(np.sum(np.exp(log_f - shift) * wts[:, None] * wts[None, :]) * h) + shift)
    raise ValueError(f"quadrature is implemented for K = 2 and K = 3; got K = {k} (use relaxed_log_marginal_mc)")


# ------------------------------------------------------ the relaxed KL term in closed form (Eq. 5.6)
def relaxed_kl_term(prior_logits, posterior_logits, ratio, gumbels):
    r"""The KL term of Eq. (25) at one sample, in closed form (Chapter 5, Eq. 5.6), shape ``gumbels.shape[:-1]``.

    With :math:`Y = \operatorname{log\,softmax}((\log\alpha + G)/\lambda_1)`, :math:`\lambda_1 Y = \log\alpha + G - c`
    for a scalar :math:`c`, and substituting into the ExpConcrete log-densities gives, with
    :math:`r = \lambda_2/\lambda_1`,

    .. math:: \log\rho_{a,\lambda_2}(Y) - \log\kappa_{\alpha,\lambda_1}(Y) = (K-1)\log r
       + \sum_k\operatorname{log\,softmax}_k(\log a - r(\log\alpha + G)) - \sum_k\operatorname{log\,softmax}_k(-G).

    The temperatures enter only through their ratio.  Equal, sample by sample, to
    ``relaxed_elbo_values(..., part="kl")`` (tested).
    """
    check_temperature(ratio, "ratio")
    a = anp.asarray(prior_logits)
    k = np.shape(a)[-1]
    g = np.asarray(gumbels, dtype=np.float64)
    return ((k - 1) * anp.log(ratio) + anp.sum(_log_softmax(a - ratio * (posterior_logits + g)), axis=-1)
            - np.sum(np.asarray(_log_softmax(-g)), axis=-1))


def relaxed_kl_term_gradient(prior_logits, posterior_logits, ratio, gumbels):
    r"""Gradient of :func:`relaxed_kl_term` in :math:`\log\alpha` with the Gumbels fixed, shape ``gumbels.shape``.

    :math:`\sum_k\operatorname{log\,softmax}_k(v) = \sum_k v_k - K\operatorname{L\Sigma E}(v)` has
    :math:`\partial/\partial v_j = 1 - K\operatorname{softmax}_j(v)`, and
    :math:`\partial v_j/\partial\log\alpha_j = -r` for :math:`v = \log a - r(\log\alpha + G)`, so

    .. math:: \nabla_{\log\alpha}\big[\log\rho_{a,\lambda_2}(Y) - \log\kappa_{\alpha,\lambda_1}(Y)\big]
       = -r\,\big(1 - K\operatorname{softmax}(\log a - r(\log\alpha + G))\big).

    Every component lies in :math:`[-r,\ r(K-1)]`, so the KL term's pathwise gradient vanishes
    uniformly as :math:`r \to 0`, and its mean is :math:`-r(1 - K P_a) + O(r^2)` for every posterior.
    """
    check_temperature(ratio, "ratio")
    a = np.asarray(prior_logits, dtype=np.float64)
    v = a - ratio * (np.asarray(posterior_logits, dtype=np.float64) + np.asarray(gumbels, dtype=np.float64))
    soft = np.exp(v - np_logsumexp(v, axis=-1, keepdims=True))
    return -ratio * (1.0 - a.shape[-1] * soft)


# ------------------------------------------------- exact relaxed expectations for K = 2 (quadrature)
def logistic_trapezoid(step: float = 0.2, half_width: float = 40.0):
    r"""Nodes and weights of the trapezoid rule for :math:`\mathbb{E}[h(L)]`, :math:`L` standard Logistic.

    Nodes :math:`L_n = n h` on :math:`[-B, B]`, weights :math:`h\,\sigma(L_n)\sigma(-L_n)` (the Logistic
    density).  For integrands analytic in a strip about the real line and growing at most
    polynomially, the error falls exponentially as :math:`h` shrinks (halving :math:`h = 0.2` changes
    the chapter's values by about :math:`10^{-12}`), and the truncated mass is
    :math:`2\sigma(-B) \approx 10^{-17}` at :math:`B = 40`.  Use :math:`h \le \lambda_1/8` when the
    integrand has a transition of width :math:`\lambda_1`.
    """
    if not (step > 0 and half_width > 0):
        raise ValueError(f"step and half_width must be positive; got {step}, {half_width}")
    n = int(np.ceil(half_width / step))
    nodes = step * np.arange(-n, n + 1)
    weights = step * np.exp(-np.logaddexp(0.0, nodes) - np.logaddexp(0.0, -nodes))
    return nodes, weights


def _k2_gumbels(nodes):
    # For K = 2 every relaxed quantity depends on the Gumbels only through L = G_1 - G_2 ~ Logistic:
    # Y = log softmax((log alpha + G)/lambda_1) and the densities at Y are functions of Y alone.
    return np.stack([nodes, np.zeros_like(nodes)], axis=-1)


def _check_k2(model: OneLatentVAE):
    if model.num_categories != 2:
        raise ValueError(f"this quadrature is for K = 2 latent states; got K = {model.num_categories}")


def relaxed_expectation_k2(model: OneLatentVAE, x, posterior_logits, lam1, lam2, part: str = "elbo",
                           step=None):
    r"""Eq. (25) (or its ``part``) exactly, for a binary latent (:math:`K = 2`), by quadrature over :math:`L = G_1 - G_2`.

    :math:`\mathbb{E}_L[v(L)]` with :math:`v` = :func:`relaxed_elbo_values` at Gumbels :math:`(L, 0)`,
    by :func:`logistic_trapezoid` with step ``min(0.2, lam1/8)`` unless given.  Differentiable
    (autograd) in ``posterior_logits``: its gradient is the exact gradient of the relaxed objective,
    the mean of the Concrete estimator.
    """
    _check_k2(model)
    check_temperature(lam1, "lam1")
    check_temperature(lam2, "lam2")
    nodes, weights = logistic_trapezoid(min(0.2, lam1 / 8.0) if step is None else step)
    return anp.sum(weights * relaxed_elbo_values(model, x, posterior_logits, lam1, lam2, _k2_gumbels(nodes), part))


def relaxed_multi_sample_bound_quadrature(model: OneLatentVAE, x, posterior_logits, lam1, lam2, m: int,
                                          step: float = 0.2) -> float:
    r"""The relaxed multi-sample bound :math:`\tilde{\mathcal{L}}_m` exactly, for :math:`K = 2` and :math:`m \le 3`.

    :math:`\tilde{\mathcal{L}}_m = \mathbb{E}\big[\log\frac1m\sum_{i=1}^m w(Y_i)\big]` with
    :math:`Y_i` i.i.d. ExpConcrete(:math:`\alpha, \lambda_1`) and
    :math:`w(y) = p_\theta(x\mid e^y)\,\rho_{a,\lambda_2}(y)/\kappa_{\alpha,\lambda_1}(y)`.  The
    expectation over :math:`(L_1, \dots, L_m)` is the tensor-product trapezoid rule of
    :func:`logistic_trapezoid`: a weighted sum over all :math:`N^m` tuples of nodes, as
    :func:`multi_sample_bound` sums over all :math:`K^m` tuples of states.
    """
    _check_k2(model)
    check_temperature(lam1, "lam1")
    check_temperature(lam2, "lam2")
    if m not in (1, 2, 3):
        raise ValueError(f"the quadrature is implemented for m = 1, 2, 3; got m = {m} (use the Monte Carlo version)")
    nodes, weights = logistic_trapezoid(step)
    log_w = np.asarray(relaxed_elbo_values(model, x, np.asarray(posterior_logits, dtype=np.float64), lam1, lam2,
                                           _k2_gumbels(nodes)))
    if m == 1:
        return float(np.sum(weights * log_w))
    pair = np.logaddexp(log_w[:, None], log_w[None, :])
    pair_weights = weights[:, None] * weights[None, :]
    if m == 2:
        return float(np.sum(pair_weights * pair) - np.log(2.0))
    total = sum(weights[i] * np.sum(pair_weights * np.logaddexp(pair, log_w[i])) for i in range(len(nodes)))
    return float(total - np.log(3.0))


def relaxed_multi_sample_bound_mc(model: OneLatentVAE, x, posterior_logits, lam1, lam2, m: int, rng,
                                  num_estimates: int):
    r"""The relaxed multi-sample bound :math:`\tilde{\mathcal{L}}_m` by Monte Carlo, any :math:`K`: ``(mean, se)``.

    The mean over ``num_estimates`` independent values of :math:`\log\frac1m\sum_{i=1}^m w(Y_i)`
    (see :func:`relaxed_multi_sample_bound_quadrature`), drawn in chunks of at most :math:`10^6` samples.
    """
    check_temperature(lam1, "lam1")
    check_temperature(lam2, "lam2")
    if m < 1 or num_estimates < 2:
        raise ValueError(f"need m >= 1 and num_estimates >= 2; got {m}, {num_estimates}")
    rng = check_rng(rng)
    alpha = np.asarray(posterior_logits, dtype=np.float64)
    chunk = max(1, 1_000_000 // m)
    values = []
    for start in range(0, num_estimates, chunk):
        n = min(chunk, num_estimates - start)
        g = sample_gumbel((n, m, model.num_categories), rng)
        log_w = np.asarray(relaxed_elbo_values(model, x, alpha, lam1, lam2, g))
        values.append(np_logsumexp(log_w, axis=1) - np.log(m))
    values = np.concatenate(values)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))
