r"""Gumbel-Rao (Paulus, Maddison & Krause, 2021), ``m = 1``, binary latent layers: the straight-through
Gumbel-softmax estimator (:mod:`.st_gumbel`) with its relaxed gradient Rao-Blackwellised over the
relaxation given the discrete sample.

Each layer is sampled exactly, :math:`b = H(a + \operatorname{logit}(U))`; then :math:`K` relaxed
samples are drawn *given* :math:`b`, :math:`\tilde z_k \sim (a + L) \mid H(a + L) = b` (the truncated
logistic: :func:`._walk.conditional_logistic`, from :math:`K` further uniforms), each written as
:math:`\tilde z_k = a + \tilde L_k` with the noise :math:`\tilde L_k` *held fixed* (so that the
Jacobian averaged is the one straight-through differentiates, :math:`\partial\sigma((a+L)/\lambda_1)/\partial a`
at :math:`L = \tilde L_k`), and the straight-through state is

.. math:: s = b + \bar\sigma - \mathrm{sg}[\bar\sigma], \qquad
          \bar\sigma = \frac1K\sum_{k=1}^K \sigma\big((a + \mathrm{sg}[\tilde L_k]) / \lambda_1\big).

The surrogate is :math:`\tilde f(s) = \log p(x, s) - \log q(s \mid x)` as for st-gumbel. Because the
gradient of :math:`\tilde f` is linear in each layer's Jacobian :math:`\partial\sigma/\partial a` (a
path through the graph crosses a layer once) and the layers' relaxations are independent given the
exact states, :math:`E[\,\text{gumbel-rao} \mid b\,] = E[\,\text{st-gumbel} \mid b\,]`: the same mean for
every :math:`K`, with variance no larger.

**Bias.** Exactly the bias of straight-through Gumbel-softmax: biased for the gradient of the discrete
single-sample ELBO (the tests check that its mean equals st-gumbel's mean, computed independently, and
that its variance is smaller). ``K`` (:attr:`GumbelRao.K`, 10) is a class attribute. Binary layers only.
"""

from __future__ import annotations

from .base import register
from .st_gumbel import STGumbel


@register
class GumbelRao(STGumbel):
    name = "gumbel-rao"
    K = 10  # conditional relaxed samples per exact sample
    summary = ("straight-through Gumbel-softmax with the relaxed gradient averaged over K = 10 relaxations "
               "given the exact sample (biased like st-gumbel, lower variance; m = 1; binary layers)")

    def noise(self, batch, m, generator=None, device=None):
        """The model's uniforms for one sample, then ``K`` per unit for the conditional relaxations."""
        from ..relaxed import uniform_noise

        u = self.model.draw_uniforms(batch, 1, generator, device=device)
        return u + [uniform_noise((self.K, *t.shape), generator=generator, device=device) for t in u]

    def relaxed_part(self, s, logits, z, uniforms):
        import torch

        from . import _walk as W

        v = uniforms[len(self.model.codes) + s]  # (K, 1, B, units)
        fixed = logits.detach()
        # the logistic noise of a relaxation given b, held fixed: the Jacobian averaged is the one of
        # the unconditional relaxation sigma((a + L) / lambda) (what straight-through differentiates)
        noise = W.conditional_logistic(fixed, W.hard(z), v) - fixed
        return torch.sigmoid((logits + noise) / self.temperature()).mean(0)
