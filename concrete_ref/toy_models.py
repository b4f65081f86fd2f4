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
