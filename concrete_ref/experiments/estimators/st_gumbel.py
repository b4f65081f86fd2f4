r"""Straight-through Gumbel-softmax (Jang, Gu & Poole, 2017; the straight-through idea: Bengio, Léonard &
Courville, 2013), ``m = 1``, binary latent layers.

Every latent layer is sampled exactly, :math:`b = H(z)` with the logistic sample
:math:`z = a + \operatorname{logit}(U)` of its logits :math:`a`, and relaxed from the *same* uniforms,
:math:`\sigma(z/\lambda_1)` (the Binary Concrete at the posterior temperature). The layer's
straight-through state is

.. math:: s = b + \sigma(z/\lambda_1) - \mathrm{sg}[\sigma(z/\lambda_1)]

(forward: the exact 0/1 state; backward: the relaxed one). The layers after it in the sampling order
read its value :math:`2s - 1`, so the backward pass runs through every relaxed layer. The surrogate
(maximised) is the single-sample ELBO written on these states,

.. math:: \tilde f(s) = \log p(x, s) - \log q(s \mid x),

every Bernoulli log mass written linearly in the state, :math:`s\log\sigma(\alpha) + (1-s)\log\sigma(-\alpha)`
(forward: exactly the discrete model's :math:`\log p(x, b) - \log q(b\mid x)`; see :mod:`._walk`). Its
gradient :math:`\nabla_\theta \tilde f(s)` is the estimator: the pathwise gradient of the relaxation
applied to a function evaluated at the discrete point.

**Bias.** It estimates nothing exactly: it is a *biased* estimator of the gradient of the discrete
ELBO :math:`\mathcal{L}_1 = E_{q(b|x)}[\log p(x,b) - \log q(b|x)]` (and of the relaxed ELBO too), at any
temperature; straight-through estimators "have not been shown to be the estimators of any loss function"
(the paper, §4). Its mean is :math:`E_U[\nabla_\theta\tilde f(s(U))]`, which the tests compute by
quadrature over :math:`U` from an independent implementation and compare with the exact
:math:`\nabla\mathcal{L}_1` (the bias is nonzero, the cosine positive). The reported bound is the
single-sample ELBO of the exact sample. Binary layers only (n-ary models are refused at construction);
density and structured-prediction models (for the latter the objective is :math:`\log p(t \mid h)`
with :math:`h \sim p(h \mid x)`).
"""

from __future__ import annotations

from .base import Estimator, register


@register
class STGumbel(Estimator):
    name = "st-gumbel"
    graph = "discrete"  # the forward pass (and the reported bound) is the discrete model's
    arities = (2,)  # binary latent layers only
    min_samples = max_samples = 1
    summary = ("straight-through Gumbel-softmax: forward on the exact sample, backward through its Concrete "
               "relaxation from the same noise (biased; m = 1; binary layers)")

    def __init__(self, model, config=None):
        super().__init__(model, config)
        from ._walk import require_binary

        require_binary(model, self.name)

    @classmethod
    def check_samples(cls, m):
        return None if m == 1 else f"{cls.name} estimates the single-sample ELBO's gradient; use --samples 1"

    def temperature(self) -> float:
        """The relaxation's temperature: the model's posterior temperature lambda1."""
        return self.model.posterior_temperature

    def relaxed_part(self, s, logits, z, uniforms):
        """The relaxed state whose gradient the straight-through state carries (here sigma(z / lambda))."""
        import torch

        return torch.sigmoid(z / self.temperature())

    def loss(self, x, m, uniforms, target=None):
        from . import _walk as W

        u = uniforms[: len(self.model.codes)]  # (gumbel-rao appends its conditional uniforms)

        def pick(s, logits):
            z = W.logistic(logits, u[s])
            soft = self.relaxed_part(s, logits, z, uniforms)
            return W.hard(z) + (soft - soft.detach())

        w = W.walk(self.model, x, pick, target=target)
        W.update_centering(self.model, w)
        logw = w.logw[0]
        return -logw.mean(), logw.detach().mean()
