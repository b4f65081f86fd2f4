r"""The estimators side by side on enumerable toys: bias, variance and MSE against the exact gradient.

Chapter 10 (issue 24, part a). Each estimator of :mod:`.estimators` is the code the MNIST runs train with;
here it is run on tiny binary models whose latent states can be enumerated, so the gradient it should
estimate is known exactly.

**The toys.** Three models shaped like the paper's ``200H-784V``, ``200H-200H-784V`` and ``200H~784V``:
``4H-6V`` (one linear latent layer), ``3H-3H-6V`` (two) and ``4H~6V`` (one, non-linear links: two tanh
layers of 4), float64, in evaluation mode (the centering averages of App. D.4 frozen at zero, so the
objective is fixed). Their parameters are drawn uniformly from :math:`[-1.5, 1.5]` with a fixed seed, the
same bits on every machine (:func:`toy_model`), and each has one fixed binary image ``x`` of 6 pixels
(:data:`TOY_IMAGE`). A model with :math:`n` latent units has :math:`2^n` states (16, 64, 16).

**The target.** Every estimator but VIMCO is measured against the exact gradient of the discrete
single-sample ELBO,

.. math:: \mathcal L_1(\theta) = \sum_h q_\theta(h\mid x)\,\big[\log p_\theta(x, h) - \log q_\theta(h\mid x)\big],

computed by enumerating every state and differentiating the sum (:func:`exact_bound_and_gradient`;
tested against finite differences and an independent enumeration). That is the objective the unbiased
estimators (NVIL, REBAR, RELAX, ARM, DisARM) target, and the one whose gradient a user of any of them
wants. Concrete's gradient is the exact gradient of a *different* function, the relaxed ELBO at
temperatures :math:`(\lambda_1, \lambda_2)`; its bias against :math:`\nabla\mathcal L_1` is the
relaxation's bias, which is what matters for training the discrete model, so that is what is measured.
Straight-through Gumbel-softmax and Gumbel-Rao are the gradient of no objective; their bias is measured
against the same :math:`\nabla\mathcal L_1`. VIMCO needs :math:`m \ge 2`: it is run at :math:`m = 2` and
measured against the exact gradient of the discrete :math:`\mathcal L_2` (enumerated over pairs of
states), so its row is not comparable with the others' (another target, two samples per draw).

**The estimates.** One *draw* :math:`\hat g` is one estimator's gradient for one copy of ``x`` with its own
noise, over all the model's parameters (generative and inference network; each estimator's own
parameters excluded). Draws come in ``calls`` minibatches of ``batch`` copies of ``x``: the estimator's
``backward`` on a minibatch gives the mean :math:`G_c` of ``batch`` independent draws (every estimator
here is a per-example average over the minibatch when the model is in evaluation mode). From
:math:`G_1, \dots, G_C` (:func:`summarise`, per parameter group and over all of them):

* bias :math:`b = E[\hat g] - g`; :math:`\lVert b\rVert^2` estimated without bias as
  :math:`\lVert\bar G - g\rVert^2 - \operatorname{tr}\widehat{\operatorname{Cov}}(G)/C`;
* variance :math:`v = E\lVert\hat g - E\hat g\rVert^2 = \operatorname{tr}\operatorname{Cov}[\hat g]`
  (of one draw) = ``batch`` :math:`\times\operatorname{tr}\widehat{\operatorname{Cov}}(G)`;
* :math:`\mathrm{MSE} = E\lVert\hat g - g\rVert^2 = \lVert b\rVert^2 + v`, also relative to
  :math:`\lVert g\rVert^2`;
* the standard errors of these three by the jackknife over the calls (leave one minibatch out), which
  accounts for the correlations between the gradient's components (they all move with the same learning
  signal: a formula that treats them as independent, such as the one of
  :func:`concrete_ref.estimators.estimator_summary`, understated the standard error of
  :math:`\lVert b\rVert^2` by a factor of two to three on these toys);
* the cosine of :math:`\bar G` with :math:`g` (jackknife standard error over calls), and the largest
  componentwise z-score :math:`\max_i |\bar G_i - g_i| / \mathrm{se}_i` (below about 4 for an unbiased
  estimator with this many components).

The parameter groups are ``generative`` (prior logits, generative maps, output map) and ``inference``
(the inference network). Every score-function estimator here gives the generative parameters the same
term :math:`\nabla_\theta\log p_\theta(x, h)` at an exact sample; they differ in the inference network.

**Compute.** Seconds per draw: the median, over ``timing_rounds`` interleaved rounds (each round times one
minibatch call of every variant of a model in turn), of the CPU time of this process
(:func:`time.process_time`, one thread) spent drawing the noise and running ``backward`` on a minibatch,
divided by ``batch``. CPU time, not wall time, so that other processes on a shared machine do not enter it
(the wall-clock median is recorded too, ``wall_seconds_per_draw``). On toys this small the time is mostly
per-call overhead of small tensors, not arithmetic; the MNIST runs' training seconds are the measure at
scale. *Per unit of compute*: :math:`\mathrm{MSE}\times\text{seconds}` and :math:`v \times \text{seconds}`
(the variance of the average of as many draws as fit in one second is :math:`v \times \text{seconds per
draw}`; the bias does not average away, so :math:`\mathrm{MSE}\times\text{seconds}` is the MSE of one draw
times its cost, as issue 24 asks).

**The variants** (:func:`variants`): Concrete at posterior temperatures :math:`\lambda_1 \in`
:data:`TEMPERATURES` with the prior at :math:`\lambda_2 = \tfrac34\lambda_1` (the paper's ratio, App. C.4:
:math:`\lambda_1 = 2/3` is the book's pair :math:`(2/3, 1/2)`); straight-through Gumbel-softmax and
Gumbel-Rao (:math:`K = 10`) at :math:`\lambda_1 \in` :data:`TEMPERATURES`; REBAR with its control variate
at scale :math:`\eta = 1` and temperature :math:`\lambda \in` :data:`TEMPERATURES`, and REBAR and RELAX
with :math:`(\eta, \lambda)` (and RELAX's network) tuned first by ``tune_steps`` Adam steps on their own
variance objective with the model held fixed (what their training does at every step; :func:`tune_control`);
NVIL with its baseline at the exact :math:`E_q[f]` and its variance normalisation off (the normalisation
divides the inference network's learning signal by :math:`\max(1, \hat\sigma)`, a step size, which would
make the estimator biased by that factor: the scale it would apply here is recorded as
``nvil_normalisation_scale``); REINFORCE (NVIL's code with baseline 0), ARM, DisARM; VIMCO at
:math:`m = 2` against :math:`\nabla\mathcal L_2`.

``python -m concrete_ref.experiments.estimator_study --json data/results/studies/estimator_toy_study.json``
runs the whole study (a few minutes on one core) and writes it with its provenance.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import estimators
from .estimators import _walk as W
from .models import DiscreteLatentModel
from .notation import parse_notation

__all__ = ["TOY_MODELS", "TOY_IMAGE", "TEMPERATURES", "DEFAULT_JSON", "Variant", "toy_model", "toy_image",
           "enumerate_states", "exact_bound_and_gradient", "exact_signal_moments", "parameter_groups",
           "variants", "make_estimator", "tune_control", "gradient_draws", "summarise", "study_model",
           "run_study", "main"]

#: the toys: the shapes of the paper's 200H-784V, 200H-200H-784V and 200H~784V, small enough to enumerate
TOY_MODELS = {"4H-6V": "200H-784V", "3H-3H-6V": "200H-200H-784V", "4H~6V": "200H~784V"}
#: the one image of each toy (6 pixels)
TOY_IMAGE = (1.0, 0.0, 1.0, 1.0, 0.0, 0.0)
#: the temperatures of the relaxed estimators (lambda1 for Concrete, st-gumbel, gumbel-rao; REBAR's lambda)
TEMPERATURES = (0.1, 0.3, 2 / 3, 1.0, 2.0)
#: the prior temperature of Concrete as a fraction of the posterior one (the paper's 1/2 : 2/3)
PRIOR_RATIO = 0.75
#: the model's default temperatures, restored after every variant
DEFAULT_TEMPERATURES = (2 / 3, 1 / 2)
#: the toys' parameters are uniform on [-PARAMETER_RANGE, PARAMETER_RANGE]
PARAMETER_RANGE = 1.5
DEFAULT_JSON = Path("data/results/studies/estimator_toy_study.json")


# ---------------------------------------------------------------- the toys and their exact gradients
def toy_model(notation: str, seed: int = 0) -> DiscreteLatentModel:
    """A float64 binary density model in evaluation mode whose every parameter is drawn uniformly from
    [-:data:`PARAMETER_RANGE`, :data:`PARAMETER_RANGE`] (seeded; in ``named_parameters`` order), so that the
    posterior is neither uniform nor degenerate.

    The values are ``numpy.random.default_rng(seed).random()`` (exact multiples of 2^-53) times
    ``2 * PARAMETER_RANGE`` minus ``PARAMETER_RANGE``, each step one correctly rounded operation: the same
    bits on every CPU and with every SIMD kernel, so the exact gradients do not depend on the machine (the
    model's own initialisation draws in float32 through vectorised kernels, which move its last bits)."""
    spec = parse_notation(notation, 2)
    if spec.conditional:
        raise ValueError(f"the study's toys are density models; got {notation!r}")
    with torch.random.fork_rng(devices=[]):  # the initialisation draws from the global generator: leave it as it was
        model = DiscreteLatentModel(spec, temperatures=DEFAULT_TEMPERATURES).double()
    n = sum(code.units for code in model.codes)
    if n > 16:
        raise ValueError(f"{notation!r} has {n} latent units: 2^{n} states are too many to enumerate")
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in model.parameters():
            u = rng.random(p.numel())
            values = np.subtract(np.multiply(u, 2.0 * PARAMETER_RANGE), PARAMETER_RANGE)
            p.copy_(torch.from_numpy(values).reshape(p.shape))
    return model.eval()


def toy_image(model) -> torch.Tensor:
    """The toy's image, :data:`TOY_IMAGE` cut or tiled to the model's pixels, float64."""
    d = model.spec.layers[-1].units
    return torch.tensor([TOY_IMAGE[i % len(TOY_IMAGE)] for i in range(d)], dtype=torch.float64)


def enumerate_states(model) -> list:
    """Every joint latent state, as one 0/1 tensor per position of the sampling order, shape ``(S, 1, units)``
    with ``S = 2^(total units)`` (the first axis plays the role of the sample axis of :func:`._walk.walk`)."""
    order = W.layer_indices(model)
    sizes = [model.codes[j].units for j in order]
    rows = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sum(sizes))), dtype=torch.float64)
    out, start = [], 0
    for n in sizes:
        out.append(rows[:, start:start + n].unsqueeze(1))
        start += n
    return out


def _log_weights_and_q(model, x):
    states = enumerate_states(model)
    w = W.walk(model, x[None], lambda s, a: states[s])
    return w.logw[:, 0], sum(w.log_q)[:, 0]


def exact_bound_and_gradient(model, x, m: int = 1):
    r"""The discrete :math:`\mathcal L_m` of one image ``x`` by enumeration, and its exact gradient.

    :math:`\mathcal L_1 = \sum_h q(h|x)\,[\log p(x,h) - \log q(h|x)]`; for :math:`m = 2`,
    :math:`\mathcal L_2 = \sum_{h, h'} q(h|x) q(h'|x) \log\tfrac12(w_h + w_{h'})`. The log weights come from
    :func:`._walk.walk` on every state (which equals ``log_weights`` on exact states). Returns
    ``(value, {parameter name: gradient})``; the model's ``.grad`` are left as they were."""
    if m not in (1, 2):
        raise ValueError(f"m must be 1 or 2; got {m}")
    params = dict(model.named_parameters())
    with torch.enable_grad():
        logw, logq = _log_weights_and_q(model, x)
        q = logq.exp()
        if m == 1:
            value = (q * logw).sum()
        else:
            pair = torch.logaddexp(logw[:, None], logw[None, :]) - math.log(2.0)
            value = (q[:, None] * q[None, :] * pair).sum()
        grads = torch.autograd.grad(value, list(params.values()), allow_unused=True)
    return float(value.detach()), {n: (torch.zeros_like(p) if g is None else g.detach())
                          for (n, p), g in zip(params.items(), grads)}


def exact_signal_moments(model, x) -> tuple:
    """Mean and variance of the learning signal :math:`f = \\log p(x,h) - \\log q(h|x)` under :math:`q`."""
    with torch.no_grad():
        logw, logq = _log_weights_and_q(model, x)
        q = logq.exp()
        mean = float((q * logw).sum())
        return mean, float((q * (logw - mean) ** 2).sum())


def parameter_groups(model) -> dict:
    """Index arrays into the flat parameter vector (``named_parameters`` order): ``generative``,
    ``inference`` and ``all``."""
    gen, inf, start = [], [], 0
    for name, p in model.named_parameters():
        idx = list(range(start, start + p.numel()))
        (inf if name.startswith("q_maps") else gen).extend(idx)
        start += p.numel()
    return {"generative": np.array(gen), "inference": np.array(inf), "all": np.arange(start)}


def _flat(grads: dict) -> np.ndarray:
    return torch.cat([g.flatten() for g in grads.values()]).numpy()


# ---------------------------------------------------------------- the variants
@dataclass
class Variant:
    """One estimator in one setting. ``temperature``: lambda1 (concrete, st-gumbel, gumbel-rao) or the control
    variate's lambda (rebar); ``tuned``: REBAR/RELAX after :func:`tune_control`; ``baseline``: NVIL's
    (``"exact"``: E_q[f]; ``"zero"``: REINFORCE)."""

    label: str
    estimator: str
    family: str
    m: int = 1
    temperature: float | None = None
    tuned: bool = False
    baseline: str | None = None
    target: str = "L1"
    notes: dict = field(default_factory=dict)


def _t(lam: float) -> str:
    return "2/3" if abs(lam - 2 / 3) < 1e-12 else f"{lam:g}"


def variants(temperatures=TEMPERATURES) -> list:
    """The study's variants, in the order of the table."""
    out = []
    for lam in temperatures:
        out.append(Variant(f"concrete, lambda1 = {_t(lam)}", "concrete", "concrete", temperature=lam))
    for lam in temperatures:
        out.append(Variant(f"st-gumbel, lambda1 = {_t(lam)}", "st-gumbel", "st-gumbel", temperature=lam))
    for lam in temperatures:
        out.append(Variant(f"gumbel-rao, lambda1 = {_t(lam)}", "gumbel-rao", "gumbel-rao", temperature=lam))
    for lam in temperatures:
        out.append(Variant(f"rebar, eta = 1, lambda = {_t(lam)}", "rebar", "rebar", temperature=lam))
    out += [Variant("rebar, tuned", "rebar", "rebar (tuned)", tuned=True),
            Variant("relax, tuned", "relax", "relax (tuned)", tuned=True),
            Variant("reinforce (nvil, baseline 0)", "nvil", "reinforce", baseline="zero"),
            Variant("nvil, baseline E_q[f]", "nvil", "nvil", baseline="exact"),
            Variant("arm", "arm", "arm"),
            Variant("disarm", "disarm", "disarm"),
            Variant("vimco, m = 2 (target L_2)", "vimco", "vimco (m = 2)", m=2, target="L2")]
    return out


def _seed(*parts) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def set_temperatures(model, variant: Variant) -> None:
    """The model's temperatures for a variant (the relaxed estimators read them from the model)."""
    if variant.estimator == "concrete":
        model.posterior_temperature, model.prior_temperature = variant.temperature, PRIOR_RATIO * variant.temperature
    elif variant.estimator in ("st-gumbel", "gumbel-rao"):
        model.posterior_temperature, model.prior_temperature = variant.temperature, DEFAULT_TEMPERATURES[1]
    else:
        model.posterior_temperature, model.prior_temperature = DEFAULT_TEMPERATURES


def tune_control(model, est, x, steps: int = 500, batch: int = 1, lr: float = 0.01, seed: int = 0) -> dict:
    r"""REBAR's / RELAX's own training of its control variate with the model held fixed: ``steps`` Adam steps
    on :math:`\partial\sum_k\hat g_k^2/\partial\phi` (what :meth:`~.estimators.rebar.REBAR.backward` sets),
    on minibatches of ``batch``. Batch 1 by default: the proxy's mean is :math:`\lVert E\hat g\rVert^2 + v/B`,
    whose first term does not depend on :math:`\phi`, so the signal in its gradient shrinks as :math:`1/B`
    while the noise does not (with Adam's normalised steps, minibatches of 20 tuned worse on the toys than
    minibatches of 1). Returns the tuned scale(s) and temperature."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(list(est.parameters()), lr=lr)
    xb = x[None].expand(batch, -1)
    for _ in range(steps):
        opt.zero_grad()
        model.zero_grad()
        est.backward(xb, 1, est.noise(batch, 1, gen))
        opt.step()
    model.zero_grad()
    return {"eta": [float(v) for v in est.control.eta.detach()],
            "temperature": float(est.control.log_temperature.detach().exp()),
            "tune_steps": steps, "tune_batch": batch, "tune_lr": lr}


def make_estimator(model, variant: Variant, x, tune_steps: int = 500, seed: int = 0):
    """The registered estimator for a variant, set up as :func:`variants` describes (float64, on the model's
    temperatures). Returns ``(estimator, notes)``."""
    set_temperatures(model, variant)
    est = estimators.get(variant.estimator)(model)
    for module in est.modules().values():
        module.double()
    notes = {}
    if variant.estimator == "nvil":
        mean, var = exact_signal_moments(model, x)
        with torch.no_grad():
            last = est.baseline.net[-1]
            last.weight.zero_()
            last.bias.zero_()
            est.baseline.mean.fill_(mean if variant.baseline == "exact" else 0.0)
            est.baseline.var.fill_(1.0)  # no variance normalisation
        centred_sd = math.sqrt(var + (0.0 if variant.baseline == "exact" else mean ** 2))
        notes = {"baseline": mean if variant.baseline == "exact" else 0.0,
                 "nvil_normalisation_scale": 1.0 / max(1.0, centred_sd)}
    elif variant.estimator in ("rebar", "relax"):
        if variant.tuned:
            notes = tune_control(model, est, x, steps=tune_steps, seed=_seed(seed, "tune", variant.label))
        else:
            with torch.no_grad():
                est.control.eta.fill_(1.0)
                est.control.log_temperature.fill_(math.log(variant.temperature))
    return est, notes


def gradient_draws(model, est, x, m: int, calls: int, batch: int, generator) -> np.ndarray:
    """``calls`` minibatch means of ``batch`` draws of the estimator's gradient of the objective (the negated
    ``.grad`` its ``backward`` sets on the model's parameters), shape ``(calls, parameters)``."""
    named = list(model.named_parameters())
    xb = x[None].expand(batch, -1)
    out = np.empty((calls, sum(p.numel() for _, p in named)))
    for c in range(calls):
        for _, p in named:
            p.grad = None
        est.backward(xb, m, est.noise(batch, m, generator))
        out[c] = np.concatenate([(-p.grad if p.grad is not None else torch.zeros_like(p)).flatten().numpy()
                                 for _, p in named])
    for _, p in named:
        p.grad = None
    return out


def _time_call(model, est, x, m, batch, generator) -> tuple:
    """(CPU seconds, wall seconds) of one minibatch call: the noise and ``backward``."""
    xb = x[None].expand(batch, -1)
    c0, t0 = time.process_time(), time.perf_counter()
    est.backward(xb, m, est.noise(batch, m, generator))
    c, t = time.process_time() - c0, time.perf_counter() - t0
    model.zero_grad()
    for p in est.parameters():
        p.grad = None
    return c, t


# ---------------------------------------------------------------- the statistics
def summarise(draws: np.ndarray, exact: np.ndarray, batch: int) -> dict:
    """Bias, variance and MSE of one draw from ``draws`` (minibatch means of ``batch`` draws, shape
    ``(calls, D)``) against ``exact`` (``(D,)``), with jackknife standard errors over the calls (see the
    module docstring)."""
    G = np.asarray(draws, dtype=np.float64)
    g = np.asarray(exact, dtype=np.float64)
    C = G.shape[0]
    if C < 3:
        raise ValueError(f"need at least 3 calls for the standard errors; got {C}")
    mean = G.mean(0)
    G0 = G - mean  # centred: no cancellation between the squared mean and the second moment
    q = (G0 ** 2).sum(1)
    d = mean - g
    norm2 = float(g @ g)

    def estimates(diff, trace, calls):
        """bias^2 (unbiased), variance and MSE of one draw, from a mean's difference from g and the trace of
        the sample covariance of ``calls`` minibatch means."""
        bias2 = (diff ** 2).sum(-1) - trace / calls
        return bias2, batch * trace, bias2 + batch * trace

    full = estimates(d, q.sum() / (C - 1), C)
    # leave call c out: the mean moves by -G0_c / (C - 1); the trace is that of the other C - 1 calls
    loo = estimates(d - G0 / (C - 1), (q.sum() - q - q / (C - 1)) / (C - 2), C - 1)
    se = [float(math.sqrt((C - 1) / C * ((t - t.mean()) ** 2).sum())) for t in loo]
    bias2, variance, mse = (float(v) for v in full)
    comp_se = G.std(0, ddof=1) / math.sqrt(C)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(comp_se > 0, np.abs(d) / comp_se, np.where(d == 0, 0.0, np.inf))
    loo_mean = mean - G0 / (C - 1)
    cos_loo = (loo_mean @ g) / (np.linalg.norm(loo_mean, axis=1) * math.sqrt(norm2))
    cosine = float(mean @ g / (np.linalg.norm(mean) * math.sqrt(norm2)))
    cosine_se = float(math.sqrt((C - 1) / C * ((cos_loo - cos_loo.mean()) ** 2).sum()))
    return {"bias2": bias2, "bias2_se": se[0], "bias_norm": math.sqrt(max(bias2, 0.0)),
            "variance": variance, "variance_se": se[1], "mse": mse, "mse_se": se[2],
            "exact_norm2": norm2, "rel_bias2": bias2 / norm2, "rel_variance": variance / norm2,
            "rel_mse": mse / norm2, "rel_mse_se": se[2] / norm2, "cosine": cosine, "cosine_se": cosine_se,
            "max_z": float(z.max()), "components": int(g.size)}


def _summaries(draws, exact, batch, groups) -> dict:
    return {name: summarise(draws[:, idx], exact[idx], batch) for name, idx in groups.items()}


# ---------------------------------------------------------------- the study
def study_model(notation: str, calls: int = 100, batch: int = 200, temperatures=TEMPERATURES, seed: int = 0,
                tune_steps: int = 500, timing_rounds: int = 30, only=None, progress=None) -> dict:
    """Every variant on one toy: its exact targets, and per variant the statistics per parameter group, the
    seconds per draw and the per-unit-of-compute products. ``only``: labels of the variants to run."""
    model = toy_model(notation, seed)
    x = toy_image(model)
    groups = parameter_groups(model)
    exact = {}
    for m in (1, 2):
        value, grads = exact_bound_and_gradient(model, x, m)
        exact[f"L{m}"] = {"value": value, "gradient": _flat(grads)}
    f_mean, f_var = exact_signal_moments(model, x)
    chosen = [v for v in variants(temperatures) if only is None or v.label in only]
    rows, ests = [], []
    for v in chosen:
        t0 = time.perf_counter()
        est, notes = make_estimator(model, v, x, tune_steps=tune_steps, seed=seed)
        gen = torch.Generator().manual_seed(_seed(seed, notation, v.label))
        draws = gradient_draws(model, est, x, v.m, calls, batch, gen)
        stats = _summaries(draws, exact[v.target]["gradient"], batch, groups)
        rows.append({"label": v.label, "estimator": v.estimator, "family": v.family, "m": v.m,
                     "temperature": v.temperature, "prior_temperature": (PRIOR_RATIO * v.temperature
                                                                         if v.estimator == "concrete" else None),
                     "tuned": v.tuned, "target": v.target, "notes": notes, "stats": stats,
                     "draws": calls * batch, "study_seconds": time.perf_counter() - t0})
        ests.append((v, est))
        if progress:
            progress(f"{notation:<9} {v.label:<34} rel MSE {stats['all']['rel_mse']:.4g}  "
                     f"({time.perf_counter() - t0:.1f} s)")
    # timing: interleaved rounds, one minibatch call of every variant per round
    times = {v.label: [] for v, _ in ests}
    tgen = torch.Generator().manual_seed(_seed(seed, notation, "timing"))
    for r in range(timing_rounds):
        for i in range(len(ests)):
            v, est = ests[(i + r) % len(ests)]  # rotate the order from round to round
            set_temperatures(model, v)
            times[v.label].append(_time_call(model, est, x, v.m, batch, tgen))
    set_temperatures(model, Variant("", "", ""))
    for row in rows:
        t = statistics.median(c for c, _ in times[row["label"]]) / batch
        row["seconds_per_draw"] = t
        row["wall_seconds_per_draw"] = statistics.median(w for _, w in times[row["label"]]) / batch
        row["mse_x_seconds"] = row["stats"]["all"]["mse"] * t
        row["variance_x_seconds"] = row["stats"]["all"]["variance"] * t
    return {"notation": notation, "stands_for": TOY_MODELS.get(notation), "image": x.tolist(),
            "latent_states": 2 ** sum(c.units for c in model.codes),
            "parameters": {k: int(len(v)) for k, v in groups.items()},
            "exact": {k: {"value": e["value"], "gradient": e["gradient"].tolist(),
                          "norm2": {g: float(e["gradient"][idx] @ e["gradient"][idx]) for g, idx in groups.items()}}
                      for k, e in exact.items()},
            "signal_mean": f_mean, "signal_variance": f_var, "variants": rows}


def run_study(models=tuple(TOY_MODELS), calls: int = 100, batch: int = 200, temperatures=TEMPERATURES, seed: int = 0,
              tune_steps: int = 500, timing_rounds: int = 30, only=None, progress=None) -> dict:
    """:func:`study_model` on each toy, with the settings recorded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    try:
        out = [study_model(n, calls, batch, temperatures, seed, tune_steps, timing_rounds, only, progress)
               for n in models]
    finally:
        torch.set_num_threads(threads)
    return {"study": "estimator_toy_study",
            "settings": {"calls": calls, "batch": batch, "draws_per_variant": calls * batch,
                         "temperatures": list(temperatures), "prior_ratio": PRIOR_RATIO, "seed": seed,
                         "tune_steps": tune_steps, "timing_rounds": timing_rounds, "threads": 1, "timing": "process CPU time",
                         "gumbel_rao_K": estimators.get("gumbel-rao").K, "dtype": "float64"},
            "models": out, "seconds": time.perf_counter() - t0}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m concrete_ref.experiments.estimator_study",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, default=None, help=f"write the results here (e.g. {DEFAULT_JSON})")
    p.add_argument("--models", default=",".join(TOY_MODELS), help="comma-separated toy notations")
    p.add_argument("--calls", type=int, default=100, help="minibatch calls per variant")
    p.add_argument("--batch", type=int, default=200, help="draws per call")
    p.add_argument("--tune-steps", type=int, default=500)
    p.add_argument("--timing-rounds", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    from .provenance import provenance
    from .train import atomic_write_json

    import shlex
    command = shlex.join(["python", "-m", "concrete_ref.experiments.estimator_study",
                          *(sys.argv[1:] if argv is None else argv)])
    res = run_study(tuple(args.models.split(",")), args.calls, args.batch, seed=args.seed,
                    tune_steps=args.tune_steps, timing_rounds=args.timing_rounds,
                    progress=None if args.quiet else (lambda s: print(s, flush=True)))
    res["provenance"] = provenance(command)
    if args.json:
        atomic_write_json(args.json, res)
        if not args.quiet:
            print(f"wrote {args.json} ({res['seconds']:.0f} s)")
    return res


if __name__ == "__main__":
    main()
