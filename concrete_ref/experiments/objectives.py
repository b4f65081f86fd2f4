r"""Training objectives (Concrete, VIMCO, NVIL) and the discrete-graph evaluation bound.

All objectives are written as *surrogates*: scalars whose gradient is the estimator, to be
*maximised* (the training loop minimises their negation).

* **Concrete** (Eq. 8 relaxed, Eq. 25/27): :math:`\log\frac1m\sum_i w_i` with relaxed weights
  :math:`w_i = p(x \mid h_i)\rho(Y_i)/\kappa(Y_i \mid x)`, :math:`Y_i` reparameterized; its gradient is
  the pathwise gradient.  For ``m > 1`` this is our reading of the paper (its App. C writes m = 1 only):
  the usual importance-weighted bound on the *relaxed* model's log marginal.
* **VIMCO** (Mnih & Rezende, 2016), ``m > 1``: discrete samples, :math:`\hat L = \log\frac1m\sum_i w_i`,
  per-sample learning signals :math:`\hat L - \hat L_{-i}` where :math:`\hat L_{-i}` replaces
  :math:`\log w_i` by the mean of the other :math:`\log w_j` (the geometric-mean leave-one-out baseline).
  Surrogate: :math:`\hat L + \sum_i \mathrm{sg}[\hat L - \hat L_{-i}]\log q(h_i \mid x)`.
* **NVIL** (Mnih & Gregor, 2014), ``m = 1``: learning signal :math:`l = \log p(x,h) - \log q(h|x)`, minus
  a running mean :math:`c` and an input-dependent baseline :math:`b(x)`, divided by
  :math:`\max(1, \hat\sigma)` with :math:`\hat\sigma^2` a running variance of the centred signal (both
  averages with rate 0.8 as in the NVIL paper).  Surrogate:
  :math:`\log p(x,h) + \mathrm{sg}[(l - c - b(x))/\max(1,\hat\sigma)]\log q(h|x)`; the baseline network
  is fitted by least squares to :math:`l - c`.  One global learning signal for all layers (the NVIL
  paper's per-layer local signals are not used: a stated simplification).
* **Evaluation** :math:`\mathcal{L}_k` on the discrete graph (Section 5.2: k = 50,000 in the paper):
  :math:`\log\frac1k\sum_{i\le k} w_i` with exact discrete samples, accumulated chunk by chunk with a
  running log-sum-exp so that any ``k`` fits in memory.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn as nn

from .models import DiscreteLatentModel, bernoulli_log_likelihood

__all__ = [
    "exact_conditional_log_likelihood",
    "concrete_objective",
    "vimco_objective",
    "NVILBaseline",
    "nvil_objective",
    "importance_bound",
    "vimco_learning_signals",
]


def _log_mean_exp(logw, dim=0):
    return torch.logsumexp(logw, dim=dim) - math.log(logw.shape[dim])


def concrete_objective(model: DiscreteLatentModel, x, m: int, generator=None, target=None, uniforms=None):
    """Per-example relaxed multi-sample bound (shape ``(B,)``); differentiate its mean."""
    logw, _ = model.log_weights(x, m, relaxed=True, generator=generator, target=target, uniforms=uniforms)
    return _log_mean_exp(logw)


def vimco_learning_signals(logw: torch.Tensor) -> torch.Tensor:
    """:math:`\\hat L - \\hat L_{-i}` for each of the ``m`` samples (rows), without gradient."""
    logw = logw.detach()
    m = logw.shape[0]
    mean_others = (logw.sum(0, keepdim=True) - logw) / (m - 1)
    # replace row i by the mean of the others, one i at a time: (m, m, B) with the diagonal swapped
    eye = torch.eye(m, dtype=torch.bool, device=logw.device).unsqueeze(-1)
    swapped = torch.where(eye, mean_others.unsqueeze(0), logw.unsqueeze(1).transpose(0, 1))
    return _log_mean_exp(logw) - _log_mean_exp(swapped, dim=1)


def vimco_objective(model: DiscreteLatentModel, x, m: int, generator=None, target=None, uniforms=None):
    """Per-example VIMCO surrogate (``m >= 2``); its value equals the discrete multi-sample bound."""
    if m < 2:
        raise ValueError(f"VIMCO needs m >= 2 samples (use NVIL for m = 1); got m = {m}")
    logw, log_q = model.log_weights(x, m, relaxed=False, generator=generator, target=target, uniforms=uniforms)
    bound = _log_mean_exp(logw)
    signals = vimco_learning_signals(logw)
    return bound + (signals * log_q).sum(0) - (signals * log_q).sum(0).detach()


class NVILBaseline(nn.Module):
    """Input-dependent baseline b(x) (one tanh layer of 100 units) and the running centring statistics."""

    def __init__(self, in_dim: int, hidden: int = 100, rate: float = 0.8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.rate = rate
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("var", torch.ones(()))

    def forward(self, x):
        return self.net(x).squeeze(-1)


def nvil_objective(model: DiscreteLatentModel, baseline: NVILBaseline, x, generator=None, target=None, uniforms=None):
    """Per-example NVIL surrogate (m = 1) and the baseline's squared error (to be minimised).

    Returns ``(surrogate, baseline_loss, bound)``; ``bound`` is the single-sample ELBO value.
    """
    logw, log_q = model.log_weights(x, 1, relaxed=False, generator=generator, target=target, uniforms=uniforms)
    logw, log_q = logw[0], log_q[0]
    signal = logw.detach()
    context = x
    b = baseline(context)
    centred = signal - baseline.mean
    if model.training:
        with torch.no_grad():
            r = baseline.rate
            baseline.mean.mul_(r).add_((1 - r) * signal.mean())
            baseline.var.mul_(r).add_((1 - r) * (centred - b.detach()).var(unbiased=False))
    scaled = (centred - b.detach()) / baseline.var.sqrt().clamp_min(1.0)
    log_p = logw + log_q if not model.spec.conditional else logw
    surrogate = log_p + scaled * log_q - (scaled * log_q).detach() + (logw - log_p).detach()
    baseline_loss = (centred - b) ** 2
    return surrogate, baseline_loss, logw.detach()


@torch.no_grad()
def importance_bound(model: DiscreteLatentModel, x, k: int, chunk: int = 1000, generator=None, target=None,
                     relaxed: bool = False, log_weights=None):
    """:math:`\\mathcal{L}_k` per example (shape ``(B,)``), in chunks of samples.

    On the discrete graph by default (the paper's test-time evaluation); ``relaxed=True`` evaluates the
    same bound on the relaxed graph (Concrete samples and densities), as in Figure 4's "Continuous" curve.
    ``log_weights``: a stand-in for ``model.log_weights`` with its arguments (the compiled one of
    :mod:`.fast_eval`, which draws the same noise from ``generator``).
    """
    log_weights = log_weights or model.log_weights
    was_training = model.training
    model.eval()
    total = torch.full((x.shape[0],), -math.inf, device=x.device)
    done = 0
    while done < k:
        c = min(chunk, k - done)
        logw, _ = log_weights(x, c, relaxed=relaxed, generator=generator, target=target)
        total = torch.logaddexp(total, torch.logsumexp(logw, 0))
        done += c
    model.train(was_training)
    return total - math.log(k)


@torch.no_grad()
def importance_bound_curve(model: DiscreteLatentModel, x, ks, chunk: int = 1000, generator=None, target=None,
                           log_weights=None):
    """Estimates of :math:`\\mathbb{E}[\\mathcal{L}_k]` for several ``k`` from one stream of ``max(ks)`` samples.

    The ``K = max(ks)`` log weights of each example are split into ``K // k`` disjoint blocks of ``k``;
    the block bounds are averaged, which uses every sample for every ``k`` (so small ``k`` are estimated
    with far less noise than a single draw of L_k).  Every ``k`` must divide ``K``.  Returns a tensor of
    shape ``(len(ks), B)``. ``log_weights`` as in :func:`importance_bound`.
    """
    log_weights = log_weights or model.log_weights
    kmax = max(ks)
    if any(kmax % k for k in ks):
        raise ValueError(f"every k must divide max(ks) = {kmax}; got {list(ks)}")
    was_training = model.training
    model.eval()
    parts, done = [], 0
    while done < kmax:
        c = min(chunk, kmax - done)
        parts.append(log_weights(x, c, relaxed=False, generator=generator, target=target)[0])
        done += c
    model.train(was_training)
    logw = torch.cat(parts, 0)  # (K, B)
    out = []
    for k in ks:
        blocks = logw.reshape(kmax // k, k, -1)
        out.append((torch.logsumexp(blocks, 1) - math.log(k)).mean(0))
    return torch.stack(out)


def exact_conditional_log_likelihood(model: DiscreteLatentModel, context, target, max_states: int = 2 ** 16):
    """:math:`\\log p(\\text{target} \\mid \\text{context}) = \\log \\sum_h p(h \\mid \\text{context})\\,
    p(\\text{target} \\mid h)` for one example of a small binary conditional model, by enumerating every
    joint state of its latent units (all ``2**units`` of them): the quantity :math:`\\mathcal{L}^{SP}_m`
    bounds from below, exactly, for tests and for the chapter's check on a toy model."""
    if not model.spec.conditional or model.spec.arity != 2:
        raise ValueError("exact_conditional_log_likelihood needs a binary conditional model, e.g. 4V-3H-2H-4V")
    units = [code.units for code in model.codes]
    if 2 ** sum(units) > max_states:
        raise ValueError(f"the model has {sum(units)} latent units: 2**{sum(units)} states exceed max_states={max_states}")
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sum(units))), dtype=context.dtype,
                          device=context.device)
    h = context.expand(states.shape[0], -1)
    log_p, offset = 0.0, 0
    for code, net, u in zip(model.codes, model.p_maps, units):
        s = states[:, offset:offset + u]
        log_p = log_p + code.discrete_log_prob(s, net(h))
        h, offset = 2.0 * s - 1.0, offset + u
    return torch.logsumexp(log_p + bernoulli_log_likelihood(model.p_out(h), target), 0)

