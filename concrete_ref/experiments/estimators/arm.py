r"""ARM, augment-REINFORCE-merge (Yin & Zhou, 2019), ``m = 1``, binary latent layers; unbiased.

For a layer of independent Bernoulli units with logits :math:`a` and any :math:`f`,

.. math:: \nabla_a E_{b}[f(b)] = E_{U}\big[\,(f(b) - f(\tilde b))\,(U - \tfrac12)\,\big],\qquad
          b = H(a + \operatorname{logit} U),\ \tilde b = H(a - \operatorname{logit} U),

the antithetic pair from one vector of uniforms :math:`U` (the model's sample and the one from
:math:`1 - U`; ARM's theorem in the model's convention :math:`b = 1[U > \sigma(-a)]`).

**Variant for several layers** (the per-layer ARM of Yin & Zhou's multi-layer networks): the ELBO
gradient splits by the chain rule over the sampling order, :math:`\nabla\mathcal{L}_1 =
E[\nabla_\theta\log p(x, b)] + \sum_t E[\nabla_{a_t}E[f \mid b_{<t}]\;\partial a_t/\partial\theta]`
with :math:`f = \log p(x,b) - \log q(b|x)`. For layer :math:`t` the antithetic copy
:math:`\tilde b_t` is taken given the exact samples :math:`b_{<t}` of the layers sampled before it, and
the layers after it are resampled given :math:`\tilde b_t` from the *same* uniforms as the main sample
(common random numbers; each branch is still a sample of :math:`f` given its layer-:math:`t` state, so
the estimator stays unbiased). One step evaluates :math:`f` at :math:`L + 1` configurations. Surrogate
(maximised):

.. math:: \log p(x, b) + \sum_t \sum_i \mathrm{sg}[g_{t,i}]\,a_{t,i},\qquad
          g_t = (f(b) - f(b^{(t)}))\,(U_t - \tfrac12),

with :math:`b^{(t)}` the configuration whose layer :math:`t` is antithetic. Unbiased for the gradient
of the discrete single-sample ELBO (of :math:`E_{p(h|x)}\log p(t \mid h)` for a structured-prediction
model); the tests check it against exact enumeration. The reported bound is the main sample's
single-sample ELBO. Binary layers only: the n-ary form (ARS/ARSM) is not implemented, and n-ary models
are refused at construction.
"""

from __future__ import annotations

from .base import Estimator, register


@register
class ARM(Estimator):
    name = "arm"
    graph = "discrete"
    arities = (2,)  # binary latent layers only
    min_samples = max_samples = 1
    summary = "augment-REINFORCE-merge: antithetic pair per layer (unbiased; m = 1; binary layers)"

    def __init__(self, model, config=None):
        super().__init__(model, config)
        from ._walk import require_binary

        require_binary(model, self.name)

    @classmethod
    def check_samples(cls, m):
        if m == 1:
            return None
        return f"{cls.name} estimates the single-sample ELBO's gradient (one antithetic pair); use --samples 1"

    @staticmethod
    def signal(f, f_anti, b, b_anti, logits, u):
        """ARM's gradient with respect to the layer's logits, per unit: ``(f - f_anti) (u - 1/2)``."""
        return (f - f_anti).unsqueeze(-1) * (u - 0.5)

    def loss(self, x, m, uniforms, target=None):
        import torch

        from . import _walk as W
        from ..relaxed import logistic_from_uniform

        u = uniforms
        main = W.walk(self.model, x, lambda s, a: W.hard(W.logistic(a, u[s])), target=target)
        f = main.logw.detach()
        surrogate = main.explicit
        for t in range(len(u)):
            def pick(r, a, t=t):
                if r < t:
                    return main.states[r]
                if r == t:
                    return W.hard(a - logistic_from_uniform(u[t]))  # the sample from 1 - U
                return W.hard(W.logistic(a, u[r]))

            with torch.no_grad():
                anti = W.walk(self.model, x, pick, target=target)
                logits = main.logits[t].detach()
                g = self.signal(f, anti.logw, main.states[t], anti.states[t], logits, u[t])
            surrogate = surrogate + (g * main.logits[t]).sum(-1)
        W.update_centering(self.model, main)  # last: the antithetic walks read the main walk's averages
        return -surrogate[0].mean(), f[0].mean()
