r"""REBAR (Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein, 2017), ``m = 1``, binary latent layers;
unbiased, with its control variate's scale and temperature tuned to minimise the gradient's variance.

The score-function estimator of the discrete single-sample ELBO, with the Concrete relaxation as
control variate. For one layer with logits :math:`a` (given the layers sampled before it), uniforms
:math:`U, V`: the logistic sample :math:`z = a + \operatorname{logit}U`, the exact state
:math:`b = H(z)`, and the conditional relaxed sample :math:`\tilde z \sim z \mid b` from :math:`V`
(:func:`._walk.conditional_logistic`, reparameterized in :math:`a` for fixed :math:`b`). With
:math:`f(b) = \log p(x,b) - \log q(b|x)` and a control variate :math:`c(z) = \eta\,\tilde f(\sigma(z/\lambda))`,

.. math:: \hat g = \nabla_\theta\log p(x, b) + \big(f(b) - c(\tilde z)\big)\nabla_\theta\log q(b\mid x)
          + \nabla_\theta c(z) - \nabla_\theta c(\tilde z),

unbiased because :math:`E_b[E_{z|b}\,c] = E_z\,c` for any :math:`c`, so the last three terms of the
control variate have mean zero (the score term of :math:`E_b E_{z|b} c` and the two reparameterized
ones). :math:`\tilde f` is :math:`f` with every Bernoulli log mass written linearly in the state,
evaluated on relaxed states (REBAR's relaxed :math:`f`; see :mod:`._walk`).

Choices (stated):

* **Several layers**: one REBAR term per layer of the sampling order. Layer :math:`t`'s term is
  conditional on the exact samples :math:`b_{<t}` before it; its control variate :math:`c_t` evaluates
  :math:`\tilde f` with the earlier layers exact, layer :math:`t` relaxed, and the later layers relaxed
  too (sampled from the relaxed values of their parents with the main sample's uniforms, so that
  :math:`c_t` is a smooth function of :math:`z_t`: an exact later layer would make it jump, and its
  reparameterization gradient biased). Each term has mean zero given :math:`b_{<t}`.
* **What the control variate differentiates**: :math:`c_t` is evaluated with the model's maps
  detached, so :math:`\nabla_\theta c_t(z_t)` runs only through :math:`a_t` (the proposal's logits);
  the generative parameters get :math:`\nabla_\theta\log p(x, b)` alone (a valid control variate
  either way; this one adds no zero-mean noise to them).
* **Tuning**: one scale :math:`\eta_t` per layer (initially 1) and one temperature :math:`\lambda`
  (learned as :math:`\log\lambda`, initially :math:`\log 0.5`, REBAR's default), set by gradient
  descent on the single-sample variance proxy :math:`\sum_k \hat g_k^2` over the entries of the
  minibatch gradient (its mean does not depend on :math:`\eta, \lambda`, so this is the trace of its
  variance up to a constant): :meth:`REBAR.backward` computes :math:`\hat g` with ``create_graph=True``,
  sets it (negated: the trainer minimises) as the model parameters' ``.grad`` and
  :math:`\partial\sum_k\hat g_k^2/\partial(\eta, \log\lambda)` as theirs. Only the proposal's
  parameters' entries depend on :math:`\eta, \lambda`. ``compilable = False``.

Unbiased for the gradient of the discrete single-sample ELBO (of :math:`E_{p(h|x)}\log p(t\mid h)`
for structured prediction), tested against exact enumeration. ``m = 1`` only (the multi-sample
version is not implemented). Binary layers only (n-ary models are refused at construction).
"""

from __future__ import annotations

import math

from .base import Estimator, register


@register
class REBAR(Estimator):
    name = "rebar"
    graph = "discrete"
    arities = (2,)  # binary latent layers only
    min_samples = max_samples = 1
    compilable = False
    init_eta = 1.0
    init_temperature = 0.5
    summary = ("REINFORCE with the Concrete relaxation as control variate, scale and temperature tuned to "
               "minimise the variance (unbiased; m = 1; binary layers)")

    def __init__(self, model, config=None):
        super().__init__(model, config)
        import torch
        import torch.nn as nn

        from . import _walk as W

        W.require_binary(model, self.name)
        dtype = W.model_dtype(model)
        self.control = nn.Module()
        self.control.eta = nn.Parameter(torch.full((len(model.codes),), self.init_eta, dtype=dtype))
        self.control.log_temperature = nn.Parameter(torch.tensor(math.log(self.init_temperature), dtype=dtype))

    @classmethod
    def check_samples(cls, m):
        return None if m == 1 else f"{cls.name} estimates the single-sample ELBO's gradient; use --samples 1"

    def modules(self):
        return {"control": self.control}

    def noise(self, batch, m, generator=None, device=None):
        """The model's uniforms for one sample (``U``), then as many for the conditional samples (``V``)."""
        from . import _walk as W

        return W.two_sets_of_uniforms(self.model, batch, generator, device=device)

    # ------------------------------------------------------------------ the control variate
    def residual(self, t, soft_values, parent):
        """RELAX's free-form part of the control variate of layer ``t`` (none for REBAR)."""
        return 0.0

    def _terms(self, x, uniforms, target=None):
        """The main (exact) walk, the control-variate differences ``c_t(z_t) - c_t(z~_t)`` summed over
        layers, ``(B,)``, and the learning signals ``f(b) - c_t(z~_t)`` per layer, ``(B,)`` each."""
        import torch

        from . import _walk as W

        model = self.model
        L = len(model.codes)
        u, v = uniforms[:L], uniforms[L:]
        main = W.walk(model, x, lambda s, a: W.hard(W.logistic(a, u[s])), target=target)
        frozen = W.Nets(model, frozen=True)
        lam = self.control.log_temperature.exp()
        f = main.logw.detach()[0]
        order = W.layer_indices(model)
        cv, signals = 0.0, []
        for t in range(L):
            a, b = main.logits[t], main.states[t]
            pair = torch.cat([W.logistic(a, u[t]), W.conditional_logistic(a, b, v[t])], 0)  # z, z~: (2, B, n)

            def pick(r, logits, t=t, pair=pair):
                if r < t:
                    return main.states[r]
                if r == t:
                    return torch.sigmoid(pair / lam)
                return torch.sigmoid(W.logistic(logits, u[r]) / lam)

            relaxed = W.walk(model, x, pick, nets=frozen, target=target)
            parent = x.unsqueeze(0) if t == 0 else main.values[order[t - 1]]
            c = self.control.eta[t] * relaxed.logw + self.residual(t, 2.0 * relaxed.states[t] - 1.0,
                                                                   parent.expand(2, *parent.shape[1:]))
            cv = cv + (c[0] - c[1])
            signals.append(f - c[1])
        W.update_centering(model, main)  # last: every walk of the step reads the same averages
        return main, cv, signals

    def loss(self, x, m, uniforms, target=None):
        """The surrogate whose gradient in the *model's* parameters is the estimator (learning signals
        held fixed). Training uses :meth:`backward`, which also tunes the control variate."""
        main, cv, signals = self._terms(x, uniforms, target)
        surrogate = main.explicit[0] + cv + sum(s.detach() * lq[0] for s, lq in zip(signals, main.log_q))
        return -surrogate.mean(), main.logw.detach()[0].mean()

    def backward(self, x, m, uniforms, target=None):
        import torch

        from . import _walk as W

        model = self.model
        main, cv, signals = self._terms(x, uniforms, target)
        B = x.shape[0]
        params = [p for p in model.parameters() if p.requires_grad]
        dist_ids = {id(p) for p in W.distribution_parameters(model)}
        dist = [p for p in params if id(p) in dist_ids]
        explicit = main.explicit[0].mean()
        g_explicit = torch.autograd.grad(explicit, params, retain_graph=True, allow_unused=True)
        # score terms as vector-Jacobian products with the signals as weights: differentiable in the
        # signals (hence in eta, lambda), not through them in theta
        outputs = [cv.mean()] + [lq[0] for lq in main.log_q]
        weights = [torch.ones((), dtype=cv.dtype, device=cv.device)] + [s / B for s in signals]
        g_dist = torch.autograd.grad(outputs, dist, grad_outputs=weights, create_graph=True, allow_unused=True)
        by_id = dict(zip((id(p) for p in dist), g_dist))
        variance = 0.0
        for p, ge in zip(params, g_explicit):
            g = torch.zeros_like(p) if ge is None else ge.detach()
            gd = by_id.get(id(p))
            if gd is not None:
                g = g + gd
                variance = variance + (g ** 2).sum()
            p.grad = -g.detach()
        own = [p for p in self.parameters() if p.requires_grad]
        if torch.is_tensor(variance) and variance.requires_grad:
            g_own = torch.autograd.grad(variance, own, allow_unused=True)
        else:
            g_own = [None] * len(own)
        for p, g in zip(own, g_own):
            p.grad = torch.zeros_like(p) if g is None else g.detach()
        surrogate = main.explicit[0] + cv + sum(s * lq[0] for s, lq in zip(signals, main.log_q))
        self.last_variance = float(variance.detach()) if torch.is_tensor(variance) else 0.0
        return -surrogate.detach().mean(), main.logw.detach()[0].mean()
