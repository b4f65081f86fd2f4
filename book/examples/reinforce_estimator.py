"""An estimator written outside the package: REINFORCE with a running-mean baseline (m = 1).

The learning signal of the score-function estimator is the single-sample bound
l = log p(x, h) - log q(h | x) with h ~ q(h | x) on the discrete graph; subtracting a constant c
(here a running mean of l) keeps the estimator unbiased. Surrogate (maximised):
    log p(x, h) + sg[l - c] * log q(h | x),
whose gradient is E[(l - c) grad log q] + E[grad log p(x, h)] = grad ELBO.
"""

import torch

from concrete_ref.experiments import estimators


@estimators.register
class ReinforceMeanBaseline(estimators.Estimator):
    name = "reinforce-mean"
    graph = "discrete"  # exact samples; its best validation checkpoint is evaluated too
    min_samples = max_samples = 1
    summary = "REINFORCE with a running-mean baseline (an example)"

    def __init__(self, model, config=None):
        super().__init__(model, config)
        self.state = torch.nn.Module()  # a module, so that the running mean is checkpointed
        self.state.register_buffer("mean", torch.zeros(()))

    def modules(self):
        return {"state": self.state}

    def loss(self, x, m, uniforms, target=None):
        logw, log_q = self.model.log_weights(x, 1, relaxed=False, uniforms=uniforms, target=target)
        logw, log_q = logw[0], log_q[0]
        signal = logw.detach()
        if self.model.training:
            with torch.no_grad():
                self.state.mean.mul_(0.9).add_(0.1 * signal.mean())
        log_p = logw + log_q
        surrogate = log_p + (signal - self.state.mean) * log_q
        return -surrogate.mean(), signal.mean()
