r"""Shared machinery of the binary-layer estimators (st-gumbel, gumbel-rao, rebar, relax, arm, disarm).

:meth:`DiscreteLatentModel.log_weights` samples every layer one way (all exact or all relaxed). These
estimators need mixed graphs: a layer's exact sample and its relaxed sample from the *same* uniforms,
straight-through states, conditional relaxed samples given the exact one, antithetic copies of one layer
with the rest of the graph resampled. :func:`walk` evaluates the model on any such graph. It follows
``log_weights`` exactly: the layers in :meth:`~DiscreteLatentModel.sampling_order` (bottom-up through the
inference network of a density model; top-down through the prior of a conditional model), each layer's
logits computed from the *value* ``2 s - 1`` of the layer before (centred by the running averages of
App. D.4 in a density model's inference network), and then the generative model. A walk reads the
centering averages and never moves them: an estimator calls :func:`update_centering` once per step,
after all its walks, with its exact sample (what one ``log_weights`` call in training mode does).
This module is a helper; it registers no estimator.

A layer's state ``s`` is 0/1 when exact; it may also be a relaxed state in (0, 1) (a control variate
evaluates the model there) or a straight-through state (forward 0/1, backward relaxed). Every Bernoulli
log mass is written linearly in the state, :math:`s\log\sigma(a) + (1-s)\log\sigma(-a)` (REBAR's
``binary_log_likelihood``): on exact states it is the log mass of the discrete model, so on exact states
:func:`walk` returns ``log_weights(..., relaxed=False)``; in between it is the continuous extension
that REBAR's control variate and the straight-through estimators differentiate.

Noise conventions (the model's): a layer with logits ``a`` and uniforms ``u`` has the logistic sample
:math:`z = a + \operatorname{logit}(u)`, exact state :math:`b = H(z)`, relaxed state
:math:`\sigma(z/\lambda)`. :func:`conditional_logistic` draws :math:`\tilde z \sim z \mid b` from a second
uniform ``v`` (reparameterized in ``a`` for fixed ``b``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..models import bernoulli_log_likelihood
from ..relaxed import logistic_from_uniform

__all__ = ["require_binary", "Nets", "Walk", "walk", "bernoulli_mass", "logistic", "hard", "conditional_logistic",
           "update_centering", "distribution_parameters", "two_sets_of_uniforms", "model_dtype", "layer_indices"]


def require_binary(model, name: str) -> None:
    """Refuse a model with n-ary latent layers (these estimators are written for binary units)."""
    if model.spec.arity != 2:
        raise ValueError(f"the {name} estimator supports binary latent layers only (--arity 2); "
                         f"the model {model.spec.notation!r} has {model.spec.arity}-ary layers")


def model_dtype(model):
    return next(model.parameters()).dtype


def bernoulli_mass(state, logits):
    """:math:`\\sum_i s_i\\log\\sigma(a_i) + (1-s_i)\\log\\sigma(-a_i)`, linear in the state ``s``."""
    return (state * F.logsigmoid(logits) + (1.0 - state) * F.logsigmoid(-logits)).sum(-1)


def logistic(logits, u):
    """The logistic sample :math:`z = a + \\operatorname{logit}(u)` (exact state ``z > 0``)."""
    return logits + logistic_from_uniform(u)


def hard(z):
    return (z > 0).to(z.dtype)


def conditional_logistic(logits, b, v):
    r""":math:`\tilde z \sim (a + L) \mid H(a + L) = b` from uniforms ``v``, differentiable in ``a``:

    :math:`b = 1`: :math:`\tilde z = \operatorname{softplus}(a + \log v) - \log(1 - v)` (positive);
    :math:`b = 0`: :math:`\tilde z = \log v - \operatorname{softplus}(-a + \log(1 - v))` (negative).
    (The inverse CDF of the truncated logistic, written without cancellation.)"""
    log_v, log_1mv = torch.log(v), torch.log1p(-v)
    up = F.softplus(logits + log_v) - log_1mv
    down = log_v - F.softplus(-logits + log_1mv)
    return torch.where(b > 0.5, up, down)


class Nets:
    """The model's maps, called with its live parameters or (``frozen``) with detached copies of them.

    A control variate evaluated with frozen maps depends on the model's parameters only through the
    inputs it is given (a layer's relaxed sample), which is the dependence the estimators differentiate."""

    def __init__(self, model, frozen: bool = False):
        self.model, self.frozen = model, frozen
        if frozen:
            self._cache = {}

    def _call(self, module, inp):
        if not self.frozen:
            return module(inp)
        key = id(module)
        if key not in self._cache:
            self._cache[key] = {n: p.detach() for n, p in module.named_parameters()}
        return functional_call(module, self._cache[key], (inp,))

    def q(self, j, inp):
        return self._call(self.model.q_maps[j], inp)

    def p(self, j, inp):
        return self._call(self.model.p_maps[j], inp)

    def out(self, inp):
        return self._call(self.model.p_out, inp)

    def prior(self):
        logits = self.model.prior_logits
        return logits.detach() if self.frozen else logits


@dataclass
class Walk:
    """One evaluation of the model. Per layer, in sampling order: ``logits`` (of the layer given the
    layers before it), ``states``, ``log_q`` (the proposal's log mass of the layer, ``(m, B)``); and
    ``values`` by model layer index. ``logw`` is :math:`\\log p(x,h) - \\log q(h|x)` (density) or
    :math:`\\log p(t|h)` (conditional), ``explicit`` is :math:`\\log p(x, h)` (density) or ``logw``
    (conditional): the term whose gradient at fixed states is the explicit part of the ELBO gradient
    (:math:`E[\\nabla\\log q] = 0` removes the rest)."""

    logits: list
    states: list
    log_q: list
    values: list
    logw: torch.Tensor
    explicit: torch.Tensor


def layer_indices(model) -> list:
    """Model layer index of each position in the sampling order."""
    L = len(model.codes)
    return list(range(L)) if model.spec.conditional else list(reversed(range(L)))


def walk(model, x, pick, nets: Nets | None = None, target=None) -> Walk:
    """Evaluate the model on the graph whose layer states ``pick(s, logits)`` chooses, ``s`` the position
    in the sampling order and ``logits`` that layer's logits given the states before it (shape
    ``(m, B, units)``; ``m`` is whatever the states' first axis is). ``x`` has shape ``(B, D)``."""
    nets = nets or Nets(model)
    L = len(model.codes)
    order = layer_indices(model)
    values = [None] * L
    logits_s, states_s, log_q = [], [], []
    xs = x.unsqueeze(0)
    for s, j in enumerate(order):
        if model.spec.conditional:
            a = nets.p(j, xs if s == 0 else values[j - 1])
        elif s == 0:
            a = nets.q(j, xs)
        else:
            a = nets.q(j, values[j + 1] - getattr(model, f"center_{j}"))
        state = pick(s, a)
        values[j] = 2.0 * state - 1.0
        logits_s.append(a)
        states_s.append(state)
        log_q.append(bernoulli_mass(state, a))
    if model.spec.conditional:
        logw = bernoulli_log_likelihood(nets.out(values[-1]), target)
        return Walk(logits_s, states_s, log_q, values, logw, logw)
    states = [None] * L
    for s, j in enumerate(order):
        states[j] = states_s[s]
    log_p = bernoulli_mass(states[0], nets.prior())
    for j in range(1, L):
        log_p = log_p + bernoulli_mass(states[j], nets.p(j - 1, values[j - 1]))
    log_p = log_p + bernoulli_log_likelihood(nets.out(values[-1]), x)
    return Walk(logits_s, states_s, log_q, values, log_p - sum(log_q), log_p)


def update_centering(model, walk_: Walk) -> None:
    """Move the centering averages (App. D.4) as one ``log_weights`` call on the walk's states would."""
    if model.spec.conditional or not model.training:
        return
    rate = model.centering
    with torch.no_grad():
        for j in range(len(model.codes) - 1):
            h = walk_.values[j + 1].detach()
            buf = getattr(model, f"center_{j}")
            buf.mul_(rate).add_((1 - rate) * h.reshape(-1, h.shape[-1]).mean(0))


def distribution_parameters(model) -> list:
    """The parameters of the proposal's logits (the inference network; a conditional model's prior): the
    only ones a score-function term or a control variate of the proposal's samples sends gradient to."""
    maps = model.p_maps if model.spec.conditional else model.q_maps
    return list(maps.parameters())


def two_sets_of_uniforms(model, batch, generator=None, device=None) -> list:
    """The model's uniforms for one sample, then as many again (for the conditional samples)."""
    return model.draw_uniforms(batch, 1, generator, device=device) + model.draw_uniforms(batch, 1, generator,
                                                                                         device=device)

