"""A straightforward relaxed objective written with torch.distributions, for comparison only.

Same model and parameters as concrete_ref.experiments.models.DiscreteLatentModel (binary layers),
but each stochastic layer is a ``torch.distributions.RelaxedBernoulli`` on (0, 1): sample with
``rsample``, score prior and posterior with ``log_prob`` on the unit interval, as a reader following
the library's documentation would write it.  The Jacobians of the unit-interval densities cancel in
the ratio prior/posterior, so the objective is mathematically the one the logit-space code computes.
"""

import math

import torch
from torch.distributions import RelaxedBernoulli

from concrete_ref.experiments.models import bernoulli_log_likelihood


def naive_relaxed_log_weights(model, x, m: int):
    """Log weights (m, B) of the relaxed multi-sample bound, computed in unit-interval space."""
    lam1, lam2 = model.posterior_temperature, model.prior_temperature
    L = len(model.codes)
    xs = x.unsqueeze(0).expand(m, *x.shape)
    samples, values = [None] * L, [None] * L
    log_q = 0.0
    for j in reversed(range(L)):
        logits = model.q_maps[j](xs if j == L - 1 else model._centred(j, values[j + 1]))
        q = RelaxedBernoulli(torch.tensor(lam1), logits=logits)
        samples[j] = q.rsample()
        values[j] = 2.0 * samples[j] - 1.0
        log_q = log_q + q.log_prob(samples[j]).sum(-1)
    log_p = RelaxedBernoulli(torch.tensor(lam2), logits=model.prior_logits).log_prob(samples[0]).sum(-1)
    for j in range(1, L):
        prior = RelaxedBernoulli(torch.tensor(lam2), logits=model.p_maps[j - 1](values[j - 1]))
        log_p = log_p + prior.log_prob(samples[j]).sum(-1)
    log_p = log_p + bernoulli_log_likelihood(model.p_out(values[-1]), x)
    return log_p - log_q


def naive_concrete_objective(model, x, m: int):
    logw = naive_relaxed_log_weights(model, x, m)
    return torch.logsumexp(logw, 0) - math.log(m)
