r"""PyTorch versions of the relaxed distributions used in training (parity-tested against the NumPy core).

Same formulas as :mod:`concrete_ref.concrete` and :mod:`concrete_ref.binary`, written with torch ops
so that they run batched, in float32, with autograd.  No argument validation happens here (this is
the inner loop of training); the models only ever call these functions with finite logits and the
fixed positive temperatures of the paper.

* ExpConcrete (App. C.3.1): sample :math:`Y = \operatorname{log\,softmax}((\log\alpha + G)/\lambda)`,
  log density :math:`\log((n-1)!) + (n-1)\log\lambda + \sum_k \operatorname{log\,softmax}_k(\log\alpha - \lambda y)`.
* Logit-space Binary Concrete (Eq. 26): sample :math:`Y = (\log\alpha + L)/\lambda`, log density
  :math:`\log\lambda - |d| - 2\log(1 + e^{-|d|})` with :math:`d = \log\alpha - \lambda y`.

Noise is drawn as in the core: uniforms on ``[tiny, 1)`` so that every logarithm is finite
(``torch.rand`` can return exactly 0; it is replaced by ``tiny``, which changes the law by at most
one float32 grid point out of 2**24, and this is the only place anything is bounded).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "uniform_noise",
    "gumbel_noise",
    "gumbel_from_uniform",
    "logistic_from_uniform",
    "logistic_noise",
    "exp_concrete_rsample",
    "exp_concrete_log_prob",
    "log_normalizer",
    "shift_by_max",
    "logistic_rsample",
    "logistic_log_prob",
]


def uniform_noise(shape, *, dtype=torch.float32, device=None, generator=None) -> torch.Tensor:
    """Uniform noise on ``[tiny, 1)``: ``torch.rand`` with its exact zeros moved up to ``tiny``."""
    u = torch.rand(shape, dtype=dtype, device=device, generator=generator)
    return u.clamp_min(torch.finfo(dtype).tiny)


def gumbel_from_uniform(u) -> torch.Tensor:
    """Standard Gumbel noise :math:`-\\log(-\\log U)` from uniforms ``u`` on [tiny, 1)."""
    return -torch.log(-torch.log(u))


def logistic_from_uniform(u) -> torch.Tensor:
    """Standard Logistic noise :math:`\\log U - \\log(1 - U)` from uniforms ``u``, as ``torch.logit(U)`` (one op)."""
    return torch.logit(u)


def gumbel_noise(shape, **kw) -> torch.Tensor:
    """Standard Gumbel noise :math:`-\\log(-\\log U)`."""
    return gumbel_from_uniform(uniform_noise(shape, **kw))


def logistic_noise(shape, **kw) -> torch.Tensor:
    """Standard Logistic noise, ``torch.logit(U)``."""
    return logistic_from_uniform(uniform_noise(shape, **kw))


def shift_by_max(u) -> torch.Tensor:
    """``u`` minus its (gradient-free) maximum over the last axis: every entry <= 0, one entry 0."""
    return u - u.detach().amax(dim=-1, keepdim=True)


def log_normalizer(u, keepdim: bool = False) -> torch.Tensor:
    """:math:`\\log\\sum_k e^{u_k}` over the last axis, for ``u`` already shifted by its maximum.

    With :math:`\\max_k u_k = 0` the sum lies in :math:`[1, n]`, so nothing overflows or underflows.
    Written with ``exp``, ``sum`` and ``log`` because ``torch.log_softmax`` over a last axis of 4 or 8
    (the n-ary nodes) is slow on the CPU: about 40% of a 240H~240H~784V 8-ary training step at m = 50.
    """
    return torch.log(torch.exp(u).sum(-1, keepdim=keepdim))


def exp_concrete_rsample(logits, temperature, gumbels) -> torch.Tensor:
    """ExpConcrete sample from given Gumbel noise (reparameterized: differentiable in ``logits``):
    :math:`Y = z - \\log\\sum_k e^{z_k}` with :math:`z = (\\log\\alpha + G)/\\lambda` shifted by its maximum."""
    z = shift_by_max(logits + gumbels) / temperature
    return z - log_normalizer(z, keepdim=True)


def exp_concrete_log_prob(y, logits, temperature: float) -> torch.Tensor:
    """ExpConcrete log density :math:`\\log\\kappa_{\\alpha,\\lambda}(y)`; sums over the last axis.

    The sum of the ``n`` log-softmax terms is taken in one step: with :math:`u = \\log\\alpha - \\lambda y`
    (shifted by its maximum), :math:`\\sum_k \\operatorname{log\\,softmax}_k(u) = \\sum_k u_k - n\\log\\sum_j e^{u_j}`,
    two non-positive terms, so no cancellation.
    """
    n = logits.shape[-1]
    const = math.lgamma(n) + (n - 1) * math.log(temperature)
    u = shift_by_max(logits - temperature * y)
    return const + u.sum(-1) - n * log_normalizer(u)


def logistic_rsample(logit, temperature: float, noise) -> torch.Tensor:
    """Logit-space Binary Concrete sample :math:`(\\log\\alpha + L)/\\lambda` from given noise."""
    return (logit + noise) / temperature


def logistic_log_prob(y, logit, temperature: float) -> torch.Tensor:
    """Elementwise :math:`\\log g_{\\alpha,\\lambda}(y) = \\log\\lambda - |d| - 2\\log(1+e^{-|d|})`."""
    d = (logit - temperature * y).abs()
    return math.log(temperature) - d - 2.0 * F.softplus(-d)
