r"""Several seeds of one run trained together in one process, with batched matrix products (issue 20).

At ``m = 1`` a training step of a Table 1 model is a handful of ``64 x 784 x 200`` products: too small
for a CPU core's GEMM to run near its peak, so most of the step is overhead. ``S`` seeds of the same
configuration have the same graph with different numbers; stacking their parameters along a leading axis
turns every product into one batched product of ``S`` slices, and every other operation into one call
over ``S`` times the data.

**Exactness.** The stacked step is the per-seed step, to the bit, on one machine (tested):

* the per-seed function is the trainer's own step (the estimator's ``loss``), mapped over the seed axis
  with :func:`torch.func.vmap` and :func:`torch.func.functional_call`, so there is one definition of the
  objective;
* ``vmap`` would rewrite ``F.linear`` as a matrix product followed by a separate bias addition, which
  rounds differently from the fused ``addmm`` of a single run. Here every ``nn.Linear`` of the stacked
  copy calls :func:`exact_linear`, a custom operator that is ``addmm`` on one seed and whose batching
  rule is ``baddbmm`` (the same fused product, slice by slice); its backward is the three products of
  ``addmm``'s backward;
* each seed keeps its own generators: its minibatch and its noise are drawn by its own trainer, in the
  order a single run draws them, then stacked;
* the summed loss has gradient 1 for each seed's own term and 0 for the others', so each seed's slice of
  the stacked gradient is its own gradient;
* each run's own optimiser (fused Adam) updates its own slice of the stacked parameters, so its update
  is the single run's (one Adam over the stacked tensors would not be: it groups the elements into
  vector lanes differently, and the lane tail rounds differently);
* the running averages of the centring (App. D.4) and of NVIL's statistics are stacked buffers, updated
  in place per seed.

Each seed keeps its own :class:`~.train.Trainer` (checkpoint, curves, validation, result file), whose
parameters and buffers are slices of the stacked tensors, so every checkpoint is an ordinary single-run checkpoint that ``--resume`` continues alone or
stacked, bit-exactly either way.

**Speed, measured** (eager, one thread, on this project's 2-core AMD EPYC development machine while two
training runs shared it; medians of 7 interleaved repeats of 40 steps, ms per seed and step): 200H-784V
m = 1, three seeds one by one 10.9, stacked 9.8 (1.08x); 200H~200H~784V m = 1, 22.5 against 23.2
(0.97x); 200H-200H-784V m = 5, 29.0 against 30.4 (0.99x). CPU ``baddbmm`` runs its slices about as fast
as separate products, and the backward pass dominates, so an eager stack buys no speed here. Compiled
(``torch.compile`` of the mapped step; then equal to the eager stack only to float32 rounding, 7e-8
relative in the loss) it ran 6.40 ms per seed against 6.45 for three compiled single runs (200H-784V,
m = 1, forward and backward, medians of 5): batching the seeds does not pay on this CPU. The stack is
therefore not the default path of any command; it is the exact, tested way to run seeds together where
batched products do pay (a GPU, where one batch-64 product leaves the device idle).

Not stacked: estimators that compute their own gradients (REBAR and RELAX tune control variates by the
gradient of a variance), structured-prediction models (their first layer reads an expanded copy of
the context, which ``nn.Linear`` multiplies by another route: tested not bit-exact), NVIL (its stacked step agrees with the single runs only to float32 rounding,
about 3e-8 in the parameters after 30 steps: not the bit-exact equality a stack promises), and compiled
steps (a stacked run is eager; its record says so).
"""

from __future__ import annotations

import contextlib
import copy
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, vmap

from .clocks import Stopwatch
from .train import NonFiniteError, Trainer, step_loss

__all__ = ["exact_linear", "exact_bernoulli_log_likelihood", "SeedStack", "run_stacked", "STACKABLE_CHANGES"]

#: the config fields that may differ between the stacked runs (everything else must be equal)
STACKABLE_CHANGES = ("seed",)


# ---------------------------------------------------------------------------------------------------- the operator
@torch.library.custom_op("concrete_book::linear", mutates_args=())
def exact_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T + bias`` as one fused ``addmm`` over the flattened leading axes: bit for bit what
    ``nn.Linear`` computes, and batched over seeds by ``baddbmm``, which rounds the same way per slice."""
    return torch.addmm(bias, x.reshape(-1, x.shape[-1]), weight.t()).reshape(*x.shape[:-1], weight.shape[0])


@exact_linear.register_fake
def _(x, weight, bias):
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


def _linear_setup(ctx, inputs, output):
    x, weight, _ = inputs
    ctx.save_for_backward(x, weight)


@torch.library.custom_op("concrete_book::column_sums", mutates_args=())
def column_sums(g: torch.Tensor) -> torch.Tensor:
    """``g.sum(0)`` of a matrix: the bias gradient of a linear layer. Batched over seeds one slice at a time:
    the summation order of ``sum(0)`` over a stacked ``(S, N, o)`` tensor differs from that over one
    ``(N, o)`` slice (measured: the bias of NVIL's baseline after two steps)."""
    return g.sum(0)


@column_sums.register_fake
def _(g):
    return g.new_empty(g.shape[1:])


@column_sums.register_vmap
def _(info, in_dims, g):
    g = g.movedim(in_dims[0], 0)
    return torch.stack([column_sums(g[s].contiguous()) for s in range(g.shape[0])]), 0


def _linear_backward(ctx, grad):
    x, weight = ctx.saved_tensors
    g = grad.reshape(-1, grad.shape[-1])
    return (g @ weight).reshape(x.shape), (x.reshape(-1, x.shape[-1]).t() @ g).t(), column_sums(g)


exact_linear.register_autograd(_linear_backward, setup_context=_linear_setup)


@exact_linear.register_vmap
def _(info, in_dims, x, weight, bias):
    size = info.batch_size

    def front(t, dim):
        return t.movedim(dim, 0) if dim is not None else t.expand(size, *t.shape)

    x, weight, bias = (front(t, d) for t, d in zip((x, weight, bias), in_dims))
    out = torch.baddbmm(bias.unsqueeze(1), x.reshape(size, -1, x.shape[-1]), weight.transpose(1, 2))
    return out.reshape(*x.shape[:-1], weight.shape[1]), 0


@torch.library.custom_op("concrete_book::bernoulli_log_likelihood", mutates_args=())
def exact_bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """:func:`~.models.bernoulli_log_likelihood` (the fused ``binary_cross_entropy_with_logits`` kernel),
    batched over seeds by the same kernel on the stacked tensors (it is elementwise, then a sum over the
    last axis); ``vmap``'s own rule for that kernel decomposes it and rounds differently."""
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


@exact_bernoulli_log_likelihood.register_fake
def _(logits, x):
    return logits.new_empty(logits.shape[:-1])


def _likelihood_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _likelihood_backward(ctx, grad):
    logits, x = ctx.saved_tensors
    # the kernel's own backward, (sigmoid(l) - x) * upstream, with upstream = -grad spread over the last axis
    return (torch.sigmoid(logits) - x) * (-grad).unsqueeze(-1), None


exact_bernoulli_log_likelihood.register_autograd(_likelihood_backward, setup_context=_likelihood_setup)


@exact_bernoulli_log_likelihood.register_vmap
def _(info, in_dims, logits, x):
    size = info.batch_size
    logits = logits.movedim(in_dims[0], 0) if in_dims[0] is not None else logits.expand(size, *logits.shape)
    if in_dims[1] is not None:  # the seed axis first, then the data broadcast against the logits' middle axes
        x = x.movedim(in_dims[1], 0)
        x = x.reshape(size, *([1] * (logits.dim() - x.dim())), *x.shape[1:])
    return exact_bernoulli_log_likelihood(logits, x), 0


@contextlib.contextmanager
def _stacked_likelihood():
    from . import models

    models.STACKED_LIKELIHOOD = exact_bernoulli_log_likelihood
    try:
        yield
    finally:
        models.STACKED_LIKELIHOOD = None


def _exact_forward(module: nn.Linear, x):
    if module.bias is None:
        raise ValueError("the stacked step needs linear layers with a bias")
    return exact_linear(x, module.weight, module.bias)


# ---------------------------------------------------------------------------------------------------- the step
class _Step(nn.Module):
    """One run's differentiable step (:func:`~.train.step_loss`) as a module holding the model and the
    estimator's own parts, so that ``functional_call`` can swap in one seed's parameters and buffers."""

    def __init__(self, estimator, split, samples: int):
        super().__init__()
        self.model = estimator.model
        self.parts = nn.ModuleDict(estimator.modules())
        object.__setattr__(self, "_estimator", estimator)  # not a submodule: its parts are registered above
        self._split, self._samples = split, samples

    def forward(self, x, uniforms):
        return step_loss(self._estimator, self._split, self._samples, x, uniforms)


class SeedStack:
    """``S`` trainers of one configuration (seeds apart) stepped as one. Build it from fresh or resumed
    trainers at the same step. Each trainer's parameters and buffers become slices of one stacked tensor
    per parameter (they share its memory), so the trainers always hold their current state: their own
    optimisers step their own slices, and their checkpoints, validations and evaluations work unchanged."""

    def __init__(self, trainers: list[Trainer]):
        if len(trainers) < 2:
            raise ValueError(f"a seed stack needs at least 2 trainers; got {len(trainers)}")
        self.trainers = trainers
        first = trainers[0]
        self._check_compatible()
        # the template: a copy of the first run's step whose linear layers call the exact operator
        template = copy.deepcopy(first.estimator)  # its model comes along (one deep copy, shared memo)
        template.model.train()
        self.step_module = _Step(template, first.split, first.config.samples)
        for module in self.step_module.modules():
            if isinstance(module, nn.Linear):
                module.forward = _exact_forward.__get__(module)
        steps = [_Step(t.estimator, t.split, t.config.samples) for t in trainers]
        persistent = steps[0].state_dict().keys()
        self.param_names = [n for n, _ in steps[0].named_parameters()]
        self.buffer_names = [n for n, _ in steps[0].named_buffers() if n in persistent]  # not the constants
        self._trainer_params = [[p for _, p in s.named_parameters()] for s in steps]
        trainer_buffers = [[dict(s.named_buffers())[n] for n in self.buffer_names] for s in steps]
        with torch.no_grad():
            self.params = [torch.stack([ps[j].detach() for ps in self._trainer_params]).requires_grad_()
                           for j in range(len(self.param_names))]
            self.buffers = [torch.stack([bs[j] for bs in trainer_buffers]) for j in range(len(self.buffer_names))]
        for s, t in enumerate(trainers):  # the trainers' tensors become views of the stacked ones
            for p, stacked in zip(self._trainer_params[s], self.params):
                p.data = stacked.detach()[s]
            for b, stacked in zip(trainer_buffers[s], self.buffers):
                b.data = stacked[s]
        self._fn = vmap(self._one, in_dims=(0, 0, 0, 0), randomness="error")
        for t in trainers:
            t.engine["stacked_seeds"] = len(trainers)

    def _check_compatible(self) -> None:
        import dataclasses

        first = self.trainers[0]
        mine = dataclasses.asdict(first.config)
        for t in self.trainers[1:]:
            other = dataclasses.asdict(t.config)
            differ = sorted(k for k in mine if k not in STACKABLE_CHANGES and mine[k] != other[k])
            if differ:
                raise ValueError(f"only seeds may differ in a seed stack; {t.config.run_name()} differs from "
                                 f"{first.config.run_name()} in " + ", ".join(differ))
        seeds = [t.config.seed for t in self.trainers]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"the seeds of a stack must differ; got {seeds}")
        steps = {t.config.run_name(): t.step for t in self.trainers}
        if len(set(steps.values())) != 1:
            raise ValueError("the runs of a stack must be at the same step: "
                             + ", ".join(f"{n} at {s}" for n, s in steps.items()))
        if not first.estimator.compilable:
            raise ValueError(f"the {first.config.estimator} step computes its own gradients: it cannot be stacked")
        if first.model.spec.conditional:
            raise ValueError("a structured-prediction model reads its context through an expanded tensor, which "
                             "torch's linear layer multiplies by another route than the stacked operator: its "
                             "seeds run one by one")
        if not first.estimator.stackable:
            raise ValueError(f"the stacked {first.config.estimator} step is not bit-exact against single runs: "
                             "its seeds run one by one")
        for t in self.trainers:
            if t.compiled:
                raise ValueError(f"{t.config.run_name()} runs a compiled step; a stack runs eager (start it with "
                                 "--compile no, or run it alone)")
            if t.device != first.device:
                raise ValueError("the runs of a stack must share one device")

    def _one(self, params, buffers, x, uniforms):
        state = dict(zip(self.param_names, params))
        state.update(zip(self.buffer_names, buffers))
        return functional_call(self.step_module, state, (x, uniforms), strict=False, tie_weights=False)

    def step(self) -> list[float]:
        """One training step of every seed; returns each seed's bound (as ``Trainer.train_step`` does)."""
        xs, noise = [], []
        for t in self.trainers:
            t.model.train()
            x = t._batch()
            xs.append(x)
            noise.append(t.estimator.noise(x.shape[0], t.config.samples, t.noise_gen, device=t.device))
        x = torch.stack(xs)
        uniforms = [torch.stack(layer) for layer in zip(*noise)]
        with _stacked_likelihood():
            losses, bounds = self._fn(self.params, self.buffers, x, uniforms)
        for t, value in zip(self.trainers, losses.detach().tolist()):
            if not math.isfinite(value):
                raise NonFiniteError(f"{t.config.run_name()}: the training loss is {value} at step {t.step + 1}; "
                                     "the run stops (no result is written)")
        for p in self.params:
            p.grad = None
        losses.sum().backward()
        for s, t in enumerate(self.trainers):
            # each run's own (fused) Adam on its own slices: the single run's update, element for element
            # (one Adam over the stacked tensors would group the elements into vector lanes differently)
            for p, stacked in zip(self._trainer_params[s], self.params):
                p.grad = stacked.grad[s]
            t.optimizer.step()
            t.step += 1
        return bounds.detach().tolist()


def run_stacked(trainers: list[Trainer], checkpoints: list[Path], progress: bool = True,
                stop_after: int | None = None) -> SeedStack:
    """Train the stacked trainers to their ``config.steps`` with each run's own curves, validations and
    checkpoints (the bookkeeping of :meth:`Trainer.run`, shared); wall and CPU time are shared out equally."""
    from tqdm import tqdm

    stack = SeedStack(trainers)
    first = trainers[0]
    c = first.config
    for t in trainers:
        t.begin_run()
    bar = tqdm(total=c.steps, initial=first.step, disable=not progress,
               desc=f"{len(trainers)} seeds of {first.config.run_name()}", mininterval=2.0)
    clock = Stopwatch()
    while first.step < c.steps:
        values = stack.step()
        for t, value in zip(trainers, values):
            t.record(value)
        if first.step % 50 == 0:
            bar.update(50)
            bar.set_postfix(objective=" ".join(f"{t.running:.2f}" for t in trainers))
        validate, save = first.due()
        if validate:
            for t, checkpoint in zip(trainers, checkpoints):
                t._validate(checkpoint)
        if save:
            wall, cpu = clock.lap()
            for t, checkpoint in zip(trainers, checkpoints):
                t.check_finite()
                t.add_train_time(wall / len(trainers), cpu / len(trainers))
                t.save(checkpoint)
        if stop_after is not None and first.step >= stop_after:
            break
    wall, cpu = clock.lap()
    for t in trainers:
        t.add_train_time(wall / len(trainers), cpu / len(trainers))
    bar.close()
    return stack
