"""A straightforward relaxed objective written with torch.distributions, for comparison only.

Same model and parameters as concrete_ref.experiments.models.DiscreteLatentModel, but each stochastic
layer is a ``torch.distributions`` relaxed distribution on the unit interval or the simplex, as a reader
following the library's documentation would write it:

* binary layers: ``RelaxedBernoulli`` on (0, 1), value ``2 s - 1``;
* n-ary layers: ``RelaxedOneHotCategorical`` on the simplex, one per node, value ``C s`` (the
  hypercube corners of the model, ``models.hypercube_corners``).

Sample with ``rsample``, score prior and posterior with ``log_prob``.  The Jacobians of the
unit-interval and simplex densities cancel in the ratio prior/posterior, so the objective is
mathematically the one the logit-space (ExpConcrete) code computes; both draw their uniforms from the
global generator in the same order and shapes, so with one seed they see the same noise (up to
torch's clamping of the uniforms to [eps, 1 - eps]).

Structured prediction (a conditional model) needs no densities at all: the relaxed samples of
:math:`p(h \\mid x_{top})` are drawn with ``rsample`` and the weight is :math:`\\log p(x_{bottom} \\mid h)`.

The n-ary distributions are built with ``validate_args=False``: the default check of the simplex
support (``|sum - 1| < 1e-6``) rejects float32 samples of 8 categories now and then.
"""

import math

import torch
from torch.distributions import RelaxedBernoulli, RelaxedOneHotCategorical

from concrete_ref.experiments.models import bernoulli_log_likelihood


def _distribution(code, logits, temperature):
    """The torch.distributions relaxed distribution of one latent layer with these logits."""
    if code.arity == 2:
        return RelaxedBernoulli(torch.tensor(temperature), logits=logits)
    return RelaxedOneHotCategorical(torch.tensor(temperature), logits=logits.unflatten(-1, (code.nodes, code.arity)),
                                    validate_args=False)


def _value(code, sample):
    """What the layers downstream read: 2 s - 1 (binary) or the corner mixture C s (n-ary)."""
    if code.arity == 2:
        return 2.0 * sample - 1.0
    return (sample @ code.corners.T).flatten(-2)


def _log_prob(code, dist, sample):
    lp = dist.log_prob(sample)  # binary: per unit; n-ary: per node
    return lp.sum(-1)


def naive_relaxed_log_weights(model, x, m: int, target=None):
    """Log weights (m, B) of the relaxed multi-sample bound, computed on the unit interval / simplex."""
    lam1, lam2 = model.posterior_temperature, model.prior_temperature
    xs = x.unsqueeze(0).expand(m, *x.shape)
    if model.spec.conditional:
        h = xs
        for code, net in zip(model.codes, model.p_maps):
            h = _value(code, _distribution(code, net(h), lam1).rsample())
        return bernoulli_log_likelihood(model.p_out(h), target)
    L = len(model.codes)
    samples, values = [None] * L, [None] * L
    log_q = 0.0
    for j in reversed(range(L)):
        code = model.codes[j]
        logits = model.q_maps[j](xs if j == L - 1 else model._centred(j, values[j + 1]))
        q = _distribution(code, logits, lam1)
        samples[j] = q.rsample()
        values[j] = _value(code, samples[j])
        log_q = log_q + _log_prob(code, q, samples[j])
    log_p = _log_prob(model.codes[0], _distribution(model.codes[0], model.prior_logits, lam2), samples[0])
    for j in range(1, L):
        prior = _distribution(model.codes[j], model.p_maps[j - 1](values[j - 1]), lam2)
        log_p = log_p + _log_prob(model.codes[j], prior, samples[j])
    log_p = log_p + bernoulli_log_likelihood(model.p_out(values[-1]), x)
    return log_p - log_q


def naive_concrete_objective(model, x, m: int, target=None):
    """Per-example relaxed multi-sample bound (shape ``(B,)``), written with torch.distributions."""
    logw = naive_relaxed_log_weights(model, x, m, target=target)
    return torch.logsumexp(logw, 0) - math.log(m)
