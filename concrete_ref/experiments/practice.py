r"""Concrete in your own PyTorch model (book Chapter 9): layers, densities, straight-through, schedules.

Everything a model needs to use a Concrete relaxation correctly, in PyTorch, with the densities in the
coordinates the paper optimises (App. C.3), parity-tested against the NumPy core :mod:`concrete_ref`.
PyTorch's argument ``tau`` is the book's temperature :math:`\lambda`.

**Relaxed categorical node** (:class:`ExpConcrete`, :class:`RelaxedCategoricalLayer`).  With Gumbel
noise :math:`G_k = -\log(-\log U_k)`, the log-space node is

.. math:: Y = \operatorname{log\,softmax}\big((\log\alpha + G)/\lambda\big) \in \log\Delta^{n-1},

and the downstream value is :math:`X = e^Y \in \Delta^{n-1}` (Concrete).  Its log density, with respect
to Lebesgue measure on the relative coordinates :math:`u_k = y_k - y_n` (:math:`k < n`), is (App. C.3.1)

.. math:: \log\kappa_{\alpha,\lambda}(y) = \log\Gamma(n) + (n-1)\log\lambda
   + \sum_{k=1}^n \operatorname{log\,softmax}_k(\log\alpha - \lambda y).

**Relaxed binary node** (:class:`LogitBinaryConcrete`, :class:`RelaxedBinaryLayer`).  With Logistic
noise :math:`L = \log U - \log(1-U)`, the logit-space node is :math:`Y = (\log\alpha + L)/\lambda`
(Eq. 26) and the downstream value :math:`\sigma(Y) \in (0, 1)` (Binary Concrete).  Its log density is

.. math:: \log g_{\alpha,\lambda}(y) = \log\lambda - |d| - 2\log(1 + e^{-|d|}),
   \qquad d = \log\alpha - \lambda y,

the symmetric form of :math:`\log\lambda + d - 2\log(1 + e^{d})`, which never overflows.

**Temperatures** may be a number or a tensor that broadcasts against the *batch* shape of the logits
(``logits.shape[:-1]`` for the categorical node, ``logits.shape`` for the binary one): one temperature
per example is a tensor of shape ``(B,)`` for logits ``(B, n)``, and the log density has shape ``(B,)``
(PyTorch's ``ExpRelaxedCategorical`` needs ``(B, 1)`` to sample and then returns ``(B, B)``;
pytorch/pytorch#37162).  A temperature that is not finite and positive raises ``ValueError``
(``F.gumbel_softmax`` returns NaN at ``tau=0`` and a sample of a different distribution at ``tau<0``).

**Noise** is drawn with ``torch.rand(..., generator=generator)``, so a ``torch.Generator`` makes a
sample reproducible without touching the global seed; exact zeros of ``torch.rand`` are moved up to
the dtype's smallest normal number (:func:`concrete_ref.experiments.relaxed.uniform_noise`).

**Straight-through** (:func:`straight_through`, :func:`straight_through_binary`).  The forward value is
the discrete sample :math:`D = \text{one\_hot}(\arg\max_k Y_k)` (binary: :math:`H(Y)`, the step at 0);
the backward pass uses the Jacobian of the relaxed value :math:`X = e^Y` (binary :math:`\sigma(Y)`).
For a downstream function :math:`f` the gradient in the parameters :math:`\phi` of the logits is

.. math:: \hat g_{\mathrm{ST}} = \Big(\frac{\partial X}{\partial\phi}\Big)^{\!\top} \nabla f(D),
   \qquad\text{against}\qquad
   \hat g_{\mathrm{relaxed}} = \Big(\frac{\partial X}{\partial\phi}\Big)^{\!\top} \nabla f(X):

the same Jacobian at the same noise, with :math:`\nabla f` taken at the hard sample instead of at the
relaxed one.  They agree when :math:`f` is linear; in general neither is unbiased for the discrete
gradient.  The forward value here is exactly one-hot (``hard + (soft - soft.detach())``).

**Temperature schedules** (:func:`jang_schedule`, :func:`fixed_schedule`): Jang et al. (2017),
:math:`\lambda_t = \max(\lambda_{\min}, \lambda_0 e^{-\nu t})` with :math:`t` rounded down to a multiple
of the update interval :math:`N`; the paper's fixed temperatures (App. C.4, D.5): :func:`paper_temperatures`.

**The chapter-5 toy in PyTorch** (:class:`TorchToyVAE`): one :math:`n`-ary latent, Bernoulli pixels with
logits linear in the latent (:class:`concrete_ref.toy_models.OneLatentVAE`), with the discrete ELBO by
enumeration, the relaxed ELBO of Eq. (25), the analytic-KL surrogate of Eq. (22) and the
straight-through surrogate, for measuring estimators (:func:`gradient_estimates`) and training runs
(:func:`train_posterior`) against the exact discrete gradient.

**Quadrature for one binary unit** (:func:`binary_relaxed_kl_quadrature`,
:func:`binary_relaxed_log_marginal_quadrature`): the exact relaxed KL of Eq. (27) and the relaxed log
marginal for a one-pixel model, by ``scipy.integrate.quad`` (torch-free).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .relaxed import gumbel_from_uniform, logistic_from_uniform, uniform_noise

__all__ = [
    "TORCH_RELAXED_CLASSES",
    "check_temperature",
    "ExpConcrete",
    "LogitBinaryConcrete",
    "straight_through",
    "straight_through_binary",
    "RelaxedCategoricalLayer",
    "RelaxedBinaryLayer",
    "categorical_kl",
    "bernoulli_kl",
    "jang_schedule",
    "fixed_schedule",
    "paper_temperatures",
    "TorchToyVAE",
    "gradient_estimates",
    "train_posterior",
    "binary_relaxed_kl_quadrature",
    "binary_relaxed_log_marginal_quadrature",
    "one_pixel_binary_objectives",
]

#: Where PyTorch's relaxed distributions live, which space they are in, and whether
#: ``torch.distributions`` exports them (checked in ``tests/test_practice.py``).
TORCH_RELAXED_CLASSES = (
    # (import path, space of the value, has log_prob, exported from torch.distributions)
    ("torch.nn.functional.gumbel_softmax", "simplex (sample only)", False, False),
    ("torch.distributions.RelaxedOneHotCategorical", "simplex", True, True),
    ("torch.distributions.relaxed_categorical.ExpRelaxedCategorical", "log-simplex", True, False),
    ("torch.distributions.RelaxedBernoulli", "unit interval", True, True),
    ("torch.distributions.relaxed_bernoulli.LogitRelaxedBernoulli", "logit", True, False),
)


def check_temperature(temperature, name: str = "temperature") -> torch.Tensor | float:
    """``temperature`` unchanged if every entry is finite and positive, else ``ValueError`` naming it."""
    if isinstance(temperature, torch.Tensor):
        ok = bool(torch.all(torch.isfinite(temperature) & (temperature > 0)))
    else:
        ok = math.isfinite(float(temperature)) and float(temperature) > 0
    if not ok:
        raise ValueError(f"{name} must be finite and > 0 (lambda in (0, inf)); got {temperature!r}")
    return temperature


def _as_tensor(temperature, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(temperature, dtype=like.dtype, device=like.device)


class ExpConcrete:
    r"""ExpConcrete(:math:`\alpha, \lambda`): the log-space relaxed categorical node (App. C.3.1).

    ``logits`` :math:`\log\alpha` of shape ``batch_shape + (n,)``; ``temperature`` a number or a tensor
    broadcasting against ``batch_shape`` (one per example: shape ``(B,)``).  :meth:`rsample` returns
    :math:`Y` with ``logsumexp(Y, -1) == 0``, differentiable in ``logits`` (and ``temperature``);
    :meth:`log_prob` returns :math:`\log\kappa_{\alpha,\lambda}(y)` of shape
    ``broadcast(y.shape[:-1], batch_shape)``.
    """

    def __init__(self, logits: torch.Tensor, temperature):
        if logits.dim() < 1 or logits.shape[-1] < 2:
            raise ValueError(f"logits must have a last axis of n >= 2 categories; got shape {tuple(logits.shape)}")
        self.logits = logits
        self.temperature = _as_tensor(check_temperature(temperature), logits)
        self.n = logits.shape[-1]
        self.batch_shape = torch.broadcast_shapes(logits.shape[:-1], self.temperature.shape)

    def rsample_from_gumbels(self, gumbels: torch.Tensor) -> torch.Tensor:
        r""":math:`Y = \operatorname{log\,softmax}((\log\alpha + G)/\lambda)` for given Gumbels."""
        z = self.logits + gumbels
        z = z - z.detach().amax(-1, keepdim=True)  # exact: log-softmax is shift-invariant
        return torch.log_softmax(z / self.temperature.unsqueeze(-1), dim=-1)

    def rsample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """A reparameterized sample of shape ``sample_shape + batch_shape + (n,)``."""
        shape = torch.Size(sample_shape) + self.batch_shape + (self.n,)
        u = uniform_noise(shape, dtype=self.logits.dtype, device=self.logits.device, generator=generator)
        return self.rsample_from_gumbels(gumbel_from_uniform(u))

    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        r""":math:`\log\Gamma(n) + (n-1)\log\lambda + \sum_k \operatorname{log\,softmax}_k(\log\alpha - \lambda y)`."""
        lam = self.temperature
        u = self.logits - lam.unsqueeze(-1) * y
        # sum_k log_softmax_k(u) = sum_k u_k - n logsumexp(u), both terms of one sign after the shift
        u = u - u.detach().amax(-1, keepdim=True)
        return (math.lgamma(self.n) + (self.n - 1) * torch.log(lam)
                + u.sum(-1) - self.n * torch.logsumexp(u, dim=-1))


class LogitBinaryConcrete:
    r"""The logit-space Binary Concrete node :math:`Y = (\log\alpha + L)/\lambda` (Eq. 26), elementwise.

    ``logits`` :math:`\log\alpha` of any shape; ``temperature`` broadcasting against it.
    :meth:`log_prob` is :math:`\log\lambda - |d| - 2\log(1 + e^{-|d|})`, :math:`d = \log\alpha - \lambda y`,
    finite wherever its arguments are.
    """

    def __init__(self, logits: torch.Tensor, temperature):
        self.logits = logits
        self.temperature = _as_tensor(check_temperature(temperature), logits)
        self.batch_shape = torch.broadcast_shapes(logits.shape, self.temperature.shape)

    def rsample_from_noise(self, noise: torch.Tensor) -> torch.Tensor:
        """:math:`Y = (\\log\\alpha + L)/\\lambda` for given standard Logistic noise."""
        return (self.logits + noise) / self.temperature

    def rsample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        shape = torch.Size(sample_shape) + self.batch_shape
        u = uniform_noise(shape, dtype=self.logits.dtype, device=self.logits.device, generator=generator)
        return self.rsample_from_noise(logistic_from_uniform(u))

    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        d = (self.logits - self.temperature * y).abs()
        return torch.log(self.temperature) - d - 2.0 * F.softplus(-d)


def straight_through(soft: torch.Tensor) -> torch.Tensor:
    """Exactly one-hot :math:`\\arg\\max` of ``soft`` in the forward pass, the gradient of ``soft`` backward."""
    hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
    return hard + (soft - soft.detach())


def straight_through_binary(soft: torch.Tensor) -> torch.Tensor:
    """Exactly 0/1 (``soft > 1/2``) in the forward pass, the gradient of ``soft`` (a value in (0, 1)) backward."""
    hard = (soft > 0.5).to(soft.dtype)
    return hard + (soft - soft.detach())


class _StochasticLayer(nn.Module):
    """What the two layers share: the straight-through switch ``hard``, and the uniforms of a discrete draw."""

    def __init__(self, hard: bool = False):
        super().__init__()
        self.hard = hard

    @staticmethod
    def _uniforms(logits, generator):
        return uniform_noise(logits.shape, dtype=logits.dtype, device=logits.device, generator=generator)


class RelaxedCategoricalLayer(_StochasticLayer):
    r"""A stochastic layer of ``n``-ary nodes: reads logits ``(..., n)``, returns ``(node, value)``.

    In training mode (``self.training``) the node is :math:`Y \sim \text{ExpConcrete}(\alpha, \lambda)` and
    the value is :math:`e^Y` on the simplex, or with ``hard=True`` its straight-through one-hot.  In
    evaluation mode the node is the discrete one-hot :math:`D = \text{one\_hot}(\arg\max(\log\alpha + G))`
    and the value is :math:`D`: the discrete graph.  Score nodes with :meth:`log_prob`.
    """

    def forward(self, logits, temperature, generator=None):
        if not self.training:
            u = self._uniforms(logits, generator)
            d = F.one_hot((logits + gumbel_from_uniform(u)).argmax(-1), logits.shape[-1]).to(logits.dtype)
            return d, d
        y = ExpConcrete(logits, temperature).rsample(generator=generator)
        x = torch.exp(y)
        return y, (straight_through(x) if self.hard else x)

    def log_prob(self, node, logits, temperature=None):
        """:math:`\\log\\kappa_{\\alpha,\\lambda}(y)` for a relaxed node, :math:`\\log Q_\\alpha(d)` for a discrete one
        (``temperature=None``)."""
        if temperature is None:
            return (node * torch.log_softmax(logits, -1)).sum(-1)
        return ExpConcrete(logits, temperature).log_prob(node)


class RelaxedBinaryLayer(_StochasticLayer):
    r"""A stochastic layer of binary nodes: reads logits, returns ``(node, value)``.

    Training: node :math:`Y = (\log\alpha + L)/\lambda`, value :math:`\sigma(Y)` (``hard=True``: its
    straight-through 0/1).  Evaluation: node and value :math:`H(\log\alpha + L) \in \{0, 1\}`.
    """

    def forward(self, logits, temperature, generator=None):
        if not self.training:
            u = self._uniforms(logits, generator)
            d = (logits + logistic_from_uniform(u) > 0).to(logits.dtype)
            return d, d
        y = LogitBinaryConcrete(logits, temperature).rsample(generator=generator)
        x = torch.sigmoid(y)
        return y, (straight_through_binary(x) if self.hard else x)

    def log_prob(self, node, logits, temperature=None):
        """:math:`\\log g_{\\alpha,\\lambda}(y)` for a relaxed node, :math:`\\log\\sigma(\\pm\\log\\alpha)` for a
        discrete one (``temperature=None``); elementwise (sum over units yourself)."""
        if temperature is None:
            return -F.softplus(-(2.0 * node - 1.0) * logits)
        return LogitBinaryConcrete(logits, temperature).log_prob(node)


def categorical_kl(post_logits, prior_logits) -> torch.Tensor:
    r"""Analytic :math:`\mathrm{KL}(Q_\alpha \,\|\, P_a) = \sum_k Q_k(\log Q_k - \log P_k)` over the last axis."""
    log_q, log_p = torch.log_softmax(post_logits, -1), torch.log_softmax(prior_logits, -1)
    return (log_q.exp() * (log_q - log_p)).sum(-1)


def bernoulli_kl(post_logits, prior_logits) -> torch.Tensor:
    r"""Analytic :math:`\mathrm{KL}(\mathrm{Bern}(\sigma(\log\alpha)) \,\|\, \mathrm{Bern}(\sigma(a)))`, elementwise."""
    q = torch.sigmoid(post_logits)
    return (q * (F.logsigmoid(post_logits) - F.logsigmoid(prior_logits))
            + (1 - q) * (F.logsigmoid(-post_logits) - F.logsigmoid(-prior_logits)))


# ------------------------------------------------------------------------------------ schedules
def jang_schedule(step: int, rate: float, floor: float = 0.5, initial: float = 1.0, every: int = 1) -> float:
    r"""Jang et al. (2017): :math:`\lambda_t = \max(\lambda_{\min}, \lambda_0 e^{-\nu\,t'})`, :math:`t' = N\lfloor t/N\rfloor`.

    ``rate`` :math:`\nu \ge 0`, ``floor`` :math:`\lambda_{\min} > 0`, ``initial`` :math:`\lambda_0`,
    ``every`` :math:`N` (Jang et al. start at :math:`\lambda_0 = 1`, floor at :math:`\lambda_{\min} = 0.5`,
    and treat :math:`N` and :math:`\nu`, their :math:`r`, as hyperparameters).
    """
    if step < 0 or rate < 0 or every < 1:
        raise ValueError(f"need step >= 0, rate >= 0, every >= 1; got {step}, {rate}, {every}")
    check_temperature(floor, "floor")
    check_temperature(initial, "initial")
    return max(floor, initial * math.exp(-rate * every * (step // every)))


def fixed_schedule(step: int, temperature: float) -> float:
    """The paper's choice: the same temperature at every step (App. C.4: "No temperature annealing")."""
    if step < 0:
        raise ValueError(f"step must be >= 0; got {step}")
    return float(check_temperature(temperature))


def paper_temperatures(n: int) -> tuple[float, float]:
    r"""The paper's (posterior :math:`\lambda_1`, prior :math:`\lambda_2`) for arity ``n`` in {2, 4, 8} (App. C.4)."""
    table = {2: (2 / 3, 1 / 2), 4: (1.0, 2 / 3), 8: (2 / 3, 2 / 5)}
    if n not in table:
        raise ValueError(f"the paper tuned n = 2, 4, 8 only; got n = {n}")
    return table[n]


# ----------------------------------------------------------------------- the chapter-5 toy in torch
@dataclass
class TorchToyVAE:
    r"""The toy of :mod:`concrete_ref.toy_models` in PyTorch (float64): :math:`\eta = Wz + b`, prior logits :math:`a`.

    All methods take posterior logits of shape ``batch + (n,)`` (several independent posteriors at once).
    """

    weights: torch.Tensor
    bias: torch.Tensor
    prior_logits: torch.Tensor
    x: torch.Tensor

    @classmethod
    def from_numpy(cls, model, x) -> "TorchToyVAE":
        """From a :class:`concrete_ref.toy_models.OneLatentVAE` and an observation ``x``."""
        t = lambda v: torch.as_tensor(np.asarray(v, dtype=np.float64))
        return cls(t(model.weights), t(model.bias), t(model.prior_logits), t(x))

    @property
    def n(self) -> int:
        return self.weights.shape[1]

    def log_likelihood(self, z):
        r""":math:`\log p_\theta(x\mid z) = \sum_j x_j\eta_j - \log(1 + e^{\eta_j})` at points ``z`` (..., n)."""
        eta = z @ self.weights.T + self.bias
        return (self.x * eta - F.softplus(eta)).sum(-1)

    def log_marginal(self) -> float:
        eye = torch.eye(self.n, dtype=torch.float64)
        return float(torch.logsumexp(self.log_likelihood(eye) + torch.log_softmax(self.prior_logits, -1), -1))

    def discrete_elbo(self, logits):
        r"""Eq. (12) by enumeration: :math:`\sum_k Q_k\log p_\theta(x\mid e_k) - \mathrm{KL}(Q_\alpha\,\|\,P_a)`."""
        eye = torch.eye(self.n, dtype=logits.dtype)
        recon = (torch.softmax(logits, -1) * self.log_likelihood(eye)).sum(-1)
        return recon - categorical_kl(logits, self.prior_logits)

    def surrogate(self, logits, gumbels, kind: str, lam1: float | torch.Tensor = 1.0,
                  lam2: float | torch.Tensor = 1.0):
        r"""Per-sample values of a single-sample training objective at Gumbels ``(..., n)``:

        * ``"relaxed"``: Eq. (25), :math:`\log p_\theta(x\mid e^Y) + \log\rho_{a,\lambda_2}(Y) - \log\kappa_{\alpha,\lambda_1}(Y)`;
        * ``"discrete_kl"``: Eq. (22), :math:`\log p_\theta(x\mid e^Y) - \mathrm{KL}(Q_\alpha\,\|\,P_a)`
          (what ``F.gumbel_softmax`` users write);
        * ``"straight_through"``: :math:`\log p_\theta(x\mid D) - \mathrm{KL}(Q_\alpha\,\|\,P_a)` with :math:`D`
          the straight-through one-hot of :math:`e^Y` (forward value: an unbiased estimate of Eq. 12).
        """
        post = ExpConcrete(logits, lam1)
        y = post.rsample_from_gumbels(gumbels)
        if kind == "relaxed":
            return self.log_likelihood(torch.exp(y)) + ExpConcrete(self.prior_logits, lam2).log_prob(y) - post.log_prob(y)
        kl = categorical_kl(logits, self.prior_logits)
        if kind == "discrete_kl":
            return self.log_likelihood(torch.exp(y)) - kl
        if kind == "straight_through":
            return self.log_likelihood(straight_through(torch.exp(y))) - kl
        raise ValueError(f"kind must be 'relaxed', 'discrete_kl' or 'straight_through'; got {kind!r}")


def gradient_estimates(toy: TorchToyVAE, logits, kind: str, lam1, lam2, gumbels) -> torch.Tensor:
    r"""Per-estimate gradients of :meth:`TorchToyVAE.surrogate` in the posterior logits.

    ``gumbels`` has shape ``(R, S, n)``: ``R`` estimates, each the mean of ``S`` samples, at the single
    posterior ``logits`` (n,).  Returns ``(R, n)`` (one backward pass: the estimates are independent).
    """
    r, s, _ = gumbels.shape
    p = logits.detach().to(torch.float64).expand(r, s, -1).clone().requires_grad_(True)
    toy.surrogate(p, gumbels, kind, lam1, lam2).sum().backward()
    return p.grad.sum(1) / s


def train_posterior(toy: TorchToyVAE, schedule, kind: str = "relaxed", steps: int = 2000, seeds: int = 8,
                    num_samples: int = 4, lr: float = 0.05, prior_ratio: float = 1.0, seed: int = 0,
                    record_every: int = 50) -> dict:
    r"""Fit the posterior logits of the toy by Adam on a single-sample surrogate, ``seeds`` runs at once.

    ``schedule(t)`` gives :math:`\lambda_1` at step ``t``; the prior temperature is
    :math:`\lambda_2 = ` ``prior_ratio`` :math:`\times\lambda_1`.  Every run starts at the uniform
    posterior (logits 0) with its own noise (one ``torch.Generator`` seeded ``seed``).  Returns
    ``{"steps", "temperature", "discrete_elbo"}``: the recorded steps, :math:`\lambda_1` there, and the
    exact discrete ELBO (Eq. 12) of every run there, shape ``(len(steps), seeds)``; and ``"logits"``, the
    final posterior logits ``(seeds, n)``.
    """
    gen = torch.Generator().manual_seed(seed)
    logits = torch.zeros(seeds, 1, toy.n, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=lr)
    rec_steps, rec_temp, rec_elbo = [], [], []
    for t in range(steps + 1):
        lam1 = schedule(t)
        if t % record_every == 0 or t == steps:
            with torch.no_grad():
                rec_steps.append(t)
                rec_temp.append(lam1)
                rec_elbo.append(toy.discrete_elbo(logits[:, 0]).numpy().copy())
        if t == steps:
            break
        u = uniform_noise((seeds, num_samples, toy.n), dtype=torch.float64, generator=gen)
        loss = -toy.surrogate(logits.expand(-1, num_samples, -1), gumbel_from_uniform(u), kind,
                              lam1, prior_ratio * lam1).mean(1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"steps": np.array(rec_steps), "temperature": np.array(rec_temp),
            "discrete_elbo": np.array(rec_elbo), "logits": logits.detach()[:, 0].numpy()}


# ------------------------------------------------------------- one binary unit, by quadrature (numpy)
def _logistic_log_density_np(y, logit, lam):
    d = np.abs(logit - lam * y)
    return np.log(lam) - d - 2.0 * np.log1p(np.exp(-d))


def binary_relaxed_kl_quadrature(post_logit: float, lam1: float, prior_logit: float, lam2: float) -> float:
    r"""The relaxed KL of Eq. (27) for one unit, :math:`\int g_{\alpha,\lambda_1}(y)\log\frac{g_{\alpha,\lambda_1}(y)}{f_{a,\lambda_2}(y)}\,dy`,
    by adaptive quadrature (relative error about 1e-10)."""
    from scipy import integrate

    centre, half = post_logit / lam1, 60.0 / lam1

    def integrand(y):
        lg = _logistic_log_density_np(y, post_logit, lam1)
        return np.exp(lg) * (lg - _logistic_log_density_np(y, prior_logit, lam2))

    val, _ = integrate.quad(integrand, centre - half, centre + half, points=[centre], limit=500,
                            epsabs=0.0, epsrel=1e-11)
    return float(val)


def binary_relaxed_log_marginal_quadrature(log_lik, prior_logit: float, lam2: float) -> float:
    r""":math:`\log\int p_\theta(x\mid\sigma(y))\,f_{a,\lambda_2}(y)\,dy` for one binary latent, by quadrature.

    ``log_lik(z)`` is :math:`\log p_\theta(x\mid z)` for NumPy ``z`` in (0, 1)."""
    from scipy import integrate

    centre, half = prior_logit / lam2, 60.0 / lam2

    def integrand(y):
        return np.exp(log_lik(1.0 / (1.0 + np.exp(-y))) + _logistic_log_density_np(y, prior_logit, lam2))

    val, _ = integrate.quad(integrand, centre - half, centre + half, points=[centre], limit=500,
                            epsabs=0.0, epsrel=1e-11)
    return float(np.log(val))


def one_pixel_binary_objectives(post_logit: float, lam1: float, lam2: float, weight: float = 2.0,
                                prior_logit: float = 0.0, num_samples: int = 400_000,
                                generator: torch.Generator | None = None) -> dict:
    r"""Monte Carlo values of single-sample objectives for one binary latent and one pixel, ``{name: (mean, se)}``.

    Model: prior node :math:`f_{a,\lambda_2}` (``prior_logit`` :math:`a`), likelihood
    :math:`p(x{=}1\mid z) = \sigma(w(2z - 1))` at :math:`z = \sigma(y)`, observation :math:`x = 1`; posterior
    node :math:`Y = (\log\alpha + L)/\lambda_1` with ``post_logit`` :math:`\log\alpha`.  With :math:`a = 0`
    the relaxed prior is symmetric, so the relaxed log marginal is exactly :math:`\log\frac12`, and so is
    the discrete :math:`\log p(x)`.  Keys, all at the same posterior samples :math:`Y`:

    * ``"eq27"``: :math:`\log p(x\mid\sigma(Y)) + \log f_{a,\lambda_2}(Y) - \log g_{\alpha,\lambda_1}(Y)`;
    * ``"discrete_kl"``: :math:`\log p(x\mid\sigma(Y)) - \mathrm{KL}(\mathrm{Bern}\,\|\,\mathrm{Bern})` (analytic);
    * ``"prior_at_own_sample"``: the prior density at an independent *prior* sample :math:`Y'` instead of at :math:`Y`;
    * ``"mass_at_relaxed"``: Bernoulli log-masses evaluated at the relaxed value :math:`\sigma(Y)` (Eq. 21's analogue);
    * ``"relaxed_kl"``: :math:`\log g_{\alpha,\lambda_1}(Y) - \log f_{a,\lambda_2}(Y)`, whose mean is the relaxed KL.
    """
    dt = torch.float64
    post = LogitBinaryConcrete(torch.tensor(float(post_logit), dtype=dt), lam1)
    prior = LogitBinaryConcrete(torch.tensor(float(prior_logit), dtype=dt), lam2)
    y = post.rsample((num_samples,), generator=generator)
    y_prior = prior.rsample((num_samples,), generator=generator)
    z = torch.sigmoid(y)
    rec = F.logsigmoid(weight * (2.0 * z - 1.0))
    log_g, log_f = post.log_prob(y), prior.log_prob(y)
    lq1, lq0 = F.logsigmoid(post.logits), F.logsigmoid(-post.logits)
    lp1, lp0 = F.logsigmoid(prior.logits), F.logsigmoid(-prior.logits)
    values = {
        "eq27": rec + log_f - log_g,
        "discrete_kl": rec - bernoulli_kl(post.logits, prior.logits),
        "prior_at_own_sample": rec + prior.log_prob(y_prior) - log_g,
        "mass_at_relaxed": rec + z * (lp1 - lq1) + (1 - z) * (lp0 - lq0),
        "relaxed_kl": log_g - log_f,
    }
    return {k: (float(v.mean()), float(v.std() / math.sqrt(num_samples))) for k, v in values.items()}
