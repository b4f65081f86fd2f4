r"""DisARM (Dong, Mnih & Tucker, 2020), ``m = 1``, binary latent layers; unbiased, variance no larger than
ARM's.

With the antithetic pair of :mod:`.arm`, :math:`b = H(a + \operatorname{logit} U)` and
:math:`\tilde b = H(a - \operatorname{logit} U)`, DisARM integrates ARM's estimator over :math:`U` given
the pair (:math:`E[g_{ARM} \mid b, \tilde b]`), which gives, per unit :math:`i`,

.. math:: g_i = \tfrac12\,(f(b) - f(\tilde b))\,(-1)^{\tilde b_i}\,\mathbf{1}[b_i \ne \tilde b_i]\,
          \sigma(|a_i|):

zero where the pair agrees, symmetric in the pair, and a conditional expectation of ARM's estimator,
so unbiased with variance no larger. Several layers: the same per-layer variant as :mod:`.arm` (the
antithetic copy of layer :math:`t` given the layers sampled before it, the later layers resampled from
the main sample's uniforms given each copy; :math:`L + 1` evaluations of
:math:`f = \log p(x,b) - \log q(b|x)`). Surrogate (maximised):
:math:`\log p(x, b) + \sum_t\sum_i \mathrm{sg}[g_{t,i}]\,a_{t,i}`. Unbiased for the gradient of the
discrete single-sample ELBO (tested against exact enumeration). Binary layers only (the categorical
extension is not implemented; n-ary models are refused at construction).
"""

from __future__ import annotations

from .arm import ARM
from .base import register


@register
class DisARM(ARM):
    name = "disarm"
    summary = "DisARM: ARM's antithetic pair with the pair-conditional weighting (unbiased; m = 1; binary layers)"

    @staticmethod
    def signal(f, f_anti, b, b_anti, logits, u):
        import torch

        differ = (b != b_anti).to(logits.dtype)
        return 0.5 * (f - f_anti).unsqueeze(-1) * (1.0 - 2.0 * b_anti) * differ * torch.sigmoid(logits.abs())
