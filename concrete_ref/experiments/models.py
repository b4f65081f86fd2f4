r"""Discrete-latent models of the paper (Section 5, App. D), built from the notation, in PyTorch.

A density model ``200H-200H-784V`` has latent layers :math:`h_1` (top, learned prior) and :math:`h_2`,
generative maps :math:`h_1 \to h_2 \to x` and a mirrored inference network :math:`x \to h_2 \to h_1`
with the same link types.  A conditional model ``392V-240H-240H-392V`` (structured prediction) maps
the observed top half through the latent layers to the bottom half; its "prior" :math:`p(z \mid x_{top})`
is the proposal, so it has no inference network.

Conventions from the paper's appendix, and the choices it leaves open (each stated):

* **Values** (App. D.2): binary units take values in :math:`\{-1, 1\}`; relaxed, :math:`2\sigma(Y) - 1`
  with :math:`Y` the logit-space node of Eq. 26.  ``n``-ary nodes take the corners of
  :math:`\{-1, 1\}^{\log_2 n}`: value :math:`C d` with :math:`C` the :math:`\log_2 n \times n` corner
  matrix; relaxed, :math:`C\exp(Y)` with :math:`Y` ExpConcrete.
* **Non-linear links** "~" (App. D.1): two tanh layers "of the same size as the preceding stochastic
  layer".  We use the width of the latent layer of each link in *both* directions (200 for
  ``200H~784V``), because the paper follows Burda et al. (2016) "exactly", whose deterministic layers
  next to the data are 200 wide, and because REBAR's code (same group) does the same; the literal
  reading would give 784-wide layers in the inference network.
* **Initialisation** (App. D.3, D.5): Glorot-uniform weights, zero biases, except the biases of the
  visible output units, set to the logit of the per-pixel training-set mean clipped to
  [0.001, 0.999] (the clipping is REBAR's; the paper does not say per-pixel or scalar).
* **Centering** (App. D.4): the input of every inference map that reads a latent layer is centred by
  an exponentially decaying average of that layer's activity (rate 0.9 over minibatches), subtracted
  before the average is updated, with no gradient through it, frozen at evaluation.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .notation import ModelSpec
from .relaxed import (
    exp_concrete_log_prob,
    exp_concrete_rsample,
    gumbel_from_uniform,
    logistic_from_uniform,
    logistic_log_prob,
    logistic_rsample,
    log_normalizer,
    shift_by_max,
    uniform_noise,
)

__all__ = ["LatentCode", "DiscreteLatentModel", "hypercube_corners", "bernoulli_log_likelihood"]


def hypercube_corners(arity: int) -> torch.Tensor:
    """The ``log2(n) x n`` matrix whose column ``k`` is state ``k`` as a corner of {-1, 1}^log2(n)."""
    bits = int(math.log2(arity))
    k = torch.arange(arity)
    return torch.stack([((k >> b) & 1) * 2.0 - 1.0 for b in range(bits)]).to(torch.float32)


#: set by :mod:`.seed_stack` while a stacked step runs: the same likelihood through an operator whose batching
#: rule rounds like the single run (``vmap``'s own rule for the fused loss rounds differently)
STACKED_LIKELIHOOD = None


def bernoulli_log_likelihood(logits, x):
    """:math:`\\sum_i x_i \\log\\sigma(l_i) + (1 - x_i)\\log\\sigma(-l_i)` over the last axis."""
    if STACKED_LIKELIHOOD is not None:
        return STACKED_LIKELIHOOD(logits, x)
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


class LatentCode(nn.Module):
    """How one latent layer of ``units`` stochastic units of a given arity is sampled and scored."""

    def __init__(self, units: int, arity: int):
        super().__init__()
        self.units, self.arity = units, arity
        self.bits = int(math.log2(arity))
        self.nodes = units // self.bits
        self.n_logits = units if arity == 2 else self.nodes * arity
        self.register_buffer("corners", hypercube_corners(arity), persistent=False)

    def _nodes(self, logits):
        return logits.unflatten(-1, (self.nodes, self.arity))

    # relaxed graph: the stochastic node is the logit (binary) or the ExpConcrete log-simplex point
    def noise_shape(self, logits_shape) -> tuple:
        """Shape of the uniforms one sample of this layer consumes, for logits of ``logits_shape``."""
        return tuple(logits_shape) if self.arity == 2 else (*logits_shape[:-1], self.nodes, self.arity)

    def relaxed(self, logits, temperature: float, generator=None, uniforms=None):
        """Reparameterized sample: returns ``(node, value)``; ``value`` is what downstream layers read.

        The noise is ``uniforms`` (on [tiny, 1), of :meth:`noise_shape`) when given, else drawn from
        ``generator``: the same uniforms give the same sample either way."""
        if self.arity == 2:
            u = uniform_noise(logits.shape, generator=generator) if uniforms is None else uniforms
            y = logistic_rsample(logits, temperature, logistic_from_uniform(u))
            return y, torch.tanh(0.5 * y)  # 2 sigmoid(y) - 1
        lg = self._nodes(logits)
        u = uniform_noise(lg.shape, generator=generator) if uniforms is None else uniforms
        y = exp_concrete_rsample(lg, temperature, gumbel_from_uniform(u))
        return y, (torch.exp(y) @ self.corners.T).flatten(-2)

    def relaxed_log_prob(self, node, logits, temperature: float):
        """Log density of the relaxed node (Eq. 26's logistic, or ExpConcrete), summed over the layer."""
        if self.arity == 2:
            return logistic_log_prob(node, logits, temperature).sum(-1)
        return exp_concrete_log_prob(node, self._nodes(logits), temperature).sum(-1)

    # discrete graph
    def discrete(self, logits, generator=None, uniforms=None):
        """Exact sample: returns ``(state, value)``; binary states are 0/1, n-ary states are indices.
        Noise as in :meth:`relaxed`."""
        if self.arity == 2:
            u = uniform_noise(logits.shape, generator=generator) if uniforms is None else uniforms
            d = (logits + logistic_from_uniform(u) > 0).to(logits.dtype)
            return d, 2.0 * d - 1.0
        lg = self._nodes(logits)
        u = uniform_noise(lg.shape, generator=generator) if uniforms is None else uniforms
        idx = torch.argmax(lg + gumbel_from_uniform(u), dim=-1)
        return idx, self.corners.T[idx].flatten(-2)

    def discrete_log_prob(self, state, logits):
        if self.arity == 2:
            return -F.softplus(-(2.0 * state - 1.0) * logits).sum(-1)
        u = shift_by_max(self._nodes(logits))  # log p(state k) = u_k - log sum_j exp(u_j)
        picked = u.expand(*state.shape, self.arity).gather(-1, state.unsqueeze(-1)).squeeze(-1)
        return (picked - log_normalizer(u)).sum(-1)


def _link(in_dim: int, out_dim: int, kind: str, hidden: int) -> nn.Module:
    if kind == "linear":
        net = nn.Linear(in_dim, out_dim)
    else:
        net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, out_dim)
        )
    for mod in net.modules():
        if isinstance(mod, nn.Linear):
            nn.init.xavier_uniform_(mod.weight)
            nn.init.zeros_(mod.bias)
    return net


def _output_bias(net: nn.Module) -> torch.Tensor:
    last = net if isinstance(net, nn.Linear) else net[-1]
    return last.bias


class DiscreteLatentModel(nn.Module):
    """A density model (latent prior on the left) or a conditional model (visible layer on the left).

    ``log_weights(x, m, relaxed=...)`` returns, for ``m`` samples per example, the log importance
    weights :math:`\\log p(x, h) - \\log q(h \\mid x)` (density estimation) or :math:`\\log p(x_b \\mid h)`
    with :math:`h \\sim p(h \\mid x_t)` (structured prediction), and the proposal's log probability.
    """

    def __init__(self, spec: ModelSpec, temperatures=(2 / 3, 1 / 2), base_rate=None, centering: float = 0.9):
        super().__init__()
        self.spec = spec
        self.posterior_temperature, self.prior_temperature = temperatures
        latent = spec.latent
        self.codes = nn.ModuleList(LatentCode(layer.units, spec.arity) for layer in latent)
        L = len(latent)
        if spec.conditional:
            ctx, out = spec.layers[0].units, spec.layers[-1].units
            ins = [ctx] + [layer.units for layer in latent]
            self.p_maps = nn.ModuleList(
                _link(ins[j], self.codes[j].n_logits, spec.links[j], latent[j].units) for j in range(L)
            )
            self.p_out = _link(latent[-1].units, out, spec.links[-1], latent[-1].units)
            self.q_maps = nn.ModuleList()
            self.prior_logits = None
        else:
            out = spec.layers[-1].units
            self.prior_logits = nn.Parameter(torch.zeros(self.codes[0].n_logits))
            self.p_maps = nn.ModuleList(
                _link(latent[j - 1].units, self.codes[j].n_logits, spec.links[j - 1], latent[j - 1].units)
                for j in range(1, L)
            )
            self.p_out = _link(latent[-1].units, out, spec.links[-1], latent[-1].units)
            # q_maps[j] produces the logits of latent layer j from the layer below it (x for the last)
            below = [layer.units for layer in latent[1:]] + [out]
            self.q_maps = nn.ModuleList(
                _link(below[j], self.codes[j].n_logits, spec.links[j], latent[j].units) for j in range(L)
            )
            for j in range(L - 1):  # centering of latent inputs to the inference network (App. D.4)
                self.register_buffer(f"center_{j}", torch.zeros(latent[j + 1].units))
        self.centering = centering
        if base_rate is not None:
            p = torch.as_tensor(base_rate, dtype=torch.float32).clamp(1e-3, 1 - 1e-3)
            with torch.no_grad():
                _output_bias(self.p_out).copy_(torch.log(p) - torch.log1p(-p))

    # ------------------------------------------------------------------ helpers
    def _centred(self, j: int, h: torch.Tensor) -> torch.Tensor:
        """Input of q_maps[j] from latent layer j + 1, centred by the running mean (App. D.4)."""
        buf = getattr(self, f"center_{j}")
        out = h - buf
        if self.training:
            with torch.no_grad():
                buf.mul_(self.centering).add_((1 - self.centering) * h.detach().reshape(-1, h.shape[-1]).mean(0))
        return out

    def _sample(self, code, logits, relaxed: bool, temperature: float, uniforms):
        if relaxed:
            node, value = code.relaxed(logits, temperature, uniforms=uniforms)
            return node, value, code.relaxed_log_prob(node, logits, temperature)
        state, value = code.discrete(logits, uniforms=uniforms)
        return state, value, code.discrete_log_prob(state, logits)

    def sampling_order(self) -> list:
        """The latent codes in the order :meth:`log_weights` samples them (top-down for a conditional
        model; bottom-up, from the data, for a density model's inference network)."""
        return list(self.codes) if self.spec.conditional else list(reversed(self.codes))

    def draw_uniforms(self, batch: int, m: int, generator=None, device=None) -> list:
        """The uniforms (on [tiny, 1)) that one call of :meth:`log_weights` on ``batch`` examples with ``m``
        samples consumes, drawn from ``generator`` in the order it uses them. Drawing them first and passing
        them in (what the compiled training step does) gives the same numbers as letting it draw them."""
        return [uniform_noise(code.noise_shape((m, batch, code.n_logits)), generator=generator, device=device)
                for code in self.sampling_order()]

    def _score(self, code, node, logits, relaxed: bool, temperature: float):
        return code.relaxed_log_prob(node, logits, temperature) if relaxed else code.discrete_log_prob(node, logits)

    # ------------------------------------------------------------------ the two graphs
    def log_weights(self, x, m: int, relaxed: bool, generator=None, target=None, uniforms=None):
        """Log weights of ``m`` samples per example, shape ``(m, B)``, and the proposal log prob ``(m, B)``.

        Density estimation: ``x`` is the data, weights are :math:`\\log p(x,h) - \\log q(h|x)` (relaxed:
        Eq. 27 / Eq. 25 densities at temperatures lambda2 (prior) and lambda1 (posterior)).
        Structured prediction: ``x`` is the context (top half) and ``target`` the bottom half; weights
        are :math:`\\log p(target \\mid h)`, :math:`h \\sim p(h \\mid x)` at the posterior temperature.
        The noise is ``uniforms`` (from :meth:`draw_uniforms`) when given, else drawn from ``generator``.
        """
        lam1, lam2 = self.posterior_temperature, self.prior_temperature
        if uniforms is None:
            uniforms = self.draw_uniforms(x.shape[0], m, generator, device=x.device)
        if self.spec.conditional:
            h, log_prop = x.unsqueeze(0).expand(m, *x.shape), 0.0
            for code, net, u in zip(self.codes, self.p_maps, uniforms):
                _, h, lp = self._sample(code, net(h), relaxed, lam1, u)
                log_prop = log_prop + lp
            return bernoulli_log_likelihood(self.p_out(h), target), log_prop
        L = len(self.codes)
        nodes, values = [None] * L, [None] * L
        log_q = 0.0
        below = self.q_maps[L - 1](x).unsqueeze(0).expand(m, x.shape[0], -1)
        for j, u in zip(reversed(range(L)), uniforms):
            logits = below if j == L - 1 else self.q_maps[j](self._centred(j, values[j + 1]))
            nodes[j], values[j], lq = self._sample(self.codes[j], logits, relaxed, lam1, u)
            log_q = log_q + lq
        log_p = self._score(self.codes[0], nodes[0], self.prior_logits, relaxed, lam2)
        for j in range(1, L):
            log_p = log_p + self._score(self.codes[j], nodes[j], self.p_maps[j - 1](values[j - 1]), relaxed, lam2)
        log_p = log_p + bernoulli_log_likelihood(self.p_out(values[-1]), x)
        return log_p - log_q, log_q

    @torch.no_grad()
    def conditional_means(self, context, m: int, generator=None, relaxed: bool = False):
        """Structured prediction: :math:`E[\\sigma(\\text{logits}(h))]` over ``m`` samples
        :math:`h \\sim p(h \\mid \\text{context})`, shape ``(B, out)``: the model's predicted probability
        that each target pixel is on (discrete graph unless ``relaxed``)."""
        if not self.spec.conditional:
            raise ValueError("conditional_means needs a conditional (structured prediction) model, e.g. 392V-240H-392V")
        if m < 1:
            raise ValueError(f"m must be >= 1; got {m}")
        h = context.unsqueeze(0).expand(m, *context.shape)
        uniforms = self.draw_uniforms(context.shape[0], m, generator, device=context.device)
        for code, net, u in zip(self.codes, self.p_maps, uniforms):
            _, h, _ = self._sample(code, net(h), relaxed, self.posterior_temperature, u)
        return torch.sigmoid(self.p_out(h)).mean(0)

