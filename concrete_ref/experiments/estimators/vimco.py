r"""VIMCO (Mnih & Rezende, 2016), ``m >= 2``: the discrete multi-sample bound with leave-one-out learning
signals (:func:`..objectives.vimco_objective`)."""

from __future__ import annotations

from .base import Estimator, register


@register
class VIMCO(Estimator):
    name = "vimco"
    graph = "discrete"
    min_samples = 2
    summary = "score function with leave-one-out baselines (m >= 2; the paper's comparison for m > 1)"

    @classmethod
    def check_samples(cls, m):
        return "vimco needs --samples >= 2 (for m = 1 the paper uses nvil)" if m < 2 else None

    def loss(self, x, m, uniforms, target=None):
        from .. import objectives as O

        value = O.vimco_objective(self.model, x, m, target=target, uniforms=uniforms)
        return -value.mean(), value.detach().mean()
