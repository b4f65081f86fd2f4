r"""RELAX (Grathwohl, Choi, Wu, Roeder & Duvenaud, 2018), discrete-variable form, ``m = 1``, binary latent
layers; unbiased, its control variate tuned to minimise the gradient's variance.

RELAX is REBAR (:mod:`.rebar`) with a free-form control variate. For one layer (logits :math:`a`,
:math:`z = a + \operatorname{logit}U`, :math:`b = H(z)`, :math:`\tilde z \sim z \mid b`):

.. math:: \hat g = \nabla_\theta\log p(x, b) + \big(f(b) - c_\phi(\tilde z)\big)\nabla_\theta\log q(b\mid x)
          + \nabla_\theta c_\phi(z) - \nabla_\theta c_\phi(\tilde z),\qquad
          c_\phi(z) = \eta\,\tilde f(\sigma(z/\lambda)) + r_\rho(\sigma(z/\lambda)),

the paper's choice for discrete variables: the REBAR control variate plus a neural network
:math:`r_\rho` (here with REBAR's scale :math:`\eta` kept, so that RELAX contains REBAR). Unbiased for
any :math:`\phi = (\eta, \lambda, \rho)`, for the same reason as REBAR.

Choices (stated): :math:`r_\rho` is one network per layer of the sampling order, one tanh hidden layer
of :attr:`RELAX.hidden` (50) units, reading the layer's relaxed value :math:`2\sigma(z/\lambda) - 1`
(bounded, at the control variate's learned temperature) and the value of what the layer is sampled
from (the data ``x`` for the first layer, the exact sample of the layer before it otherwise: fixed
given the conditioning, so allowed); its output layer starts at zero, so RELAX starts as REBAR. The
layers, the detached maps and the tuning are REBAR's: :math:`\phi` follows the gradient of the
single-sample variance proxy :math:`\sum_k\hat g_k^2` (``compilable = False``,
:meth:`~.rebar.REBAR.backward`). Unbiased for the gradient of the discrete single-sample ELBO (tested
against exact enumeration with a nonzero :math:`r_\rho`). ``m = 1``; binary layers only.
"""

from __future__ import annotations

from .base import register
from .rebar import REBAR


@register
class RELAX(REBAR):
    name = "relax"
    hidden = 50
    summary = ("REBAR's control variate plus a learned network, all tuned to minimise the variance "
               "(unbiased; m = 1; binary layers)")

    def __init__(self, model, config=None):
        super().__init__(model, config)
        import torch.nn as nn

        from . import _walk as W

        spec = model.spec
        order = W.layer_indices(model)
        data = spec.layers[0].units if spec.conditional else spec.layers[-1].units
        nets = []
        for t, j in enumerate(order):
            parent = data if t == 0 else model.codes[order[t - 1]].units
            net = nn.Sequential(nn.Linear(model.codes[j].units + parent, self.hidden), nn.Tanh(),
                                nn.Linear(self.hidden, 1))
            nn.init.zeros_(net[-1].weight)
            nn.init.zeros_(net[-1].bias)
            nets.append(net)
        self.network = nn.ModuleList(nets).to(W.model_dtype(model))

    def modules(self):
        return {"control": self.control, "network": self.network}

    def residual(self, t, soft_values, parent):
        import torch

        return self.network[t](torch.cat([soft_values, parent.to(soft_values.dtype)], -1)).squeeze(-1)
