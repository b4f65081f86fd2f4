r"""Concrete (the paper, Eq. 8 relaxed; Eq. 25/27 densities): the relaxed multi-sample bound
:math:`\log\frac1m\sum_i p(x\mid h_i)\rho(Y_i)/\kappa(Y_i\mid x)` with reparameterized :math:`Y_i`; its
gradient is the pathwise gradient (:func:`..objectives.concrete_objective`)."""

from __future__ import annotations

from .base import Estimator, register


@register
class Concrete(Estimator):
    name = "concrete"
    graph = "relaxed"
    summary = "relaxed multi-sample bound, pathwise gradient (the paper)"

    def loss(self, x, m, uniforms, target=None):
        from .. import objectives as O

        value = O.concrete_objective(self.model, x, m, target=target, uniforms=uniforms)
        return -value.mean(), value.detach().mean()
