r"""NVIL (Mnih & Gregor, 2014), ``m = 1``: the score-function estimator with a running mean, an
input-dependent baseline network and variance normalisation (:func:`..objectives.nvil_objective`)."""

from __future__ import annotations

from .base import Estimator, register


@register
class NVIL(Estimator):
    name = "nvil"
    graph = "discrete"
    min_samples = max_samples = 1
    stackable = False
    summary = "score function with a learned baseline and variance normalisation (m = 1)"

    def __init__(self, model, config=None):
        super().__init__(model, config)
        from .. import objectives as O

        spec = model.spec
        self.baseline = O.NVILBaseline(spec.layers[0].units if spec.conditional else spec.layers[-1].units)

    @classmethod
    def check_samples(cls, m):
        return "nvil is the m = 1 estimator; use --samples 1 (vimco for m > 1)" if m != 1 else None

    def modules(self):
        return {"baseline": self.baseline}

    def loss(self, x, m, uniforms, target=None):
        from .. import objectives as O

        surrogate, baseline_loss, bound = O.nvil_objective(self.model, self.baseline, x, target=target,
                                                           uniforms=uniforms)
        return -surrogate.mean() + baseline_loss.mean(), bound.mean()
