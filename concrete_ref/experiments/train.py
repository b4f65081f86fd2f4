"""The training loop shared by the experiments: Adam, checkpoints, exact resume, curves, JSON results.

Determinism: every random draw (minibatch order, noise) comes from two ``torch.Generator`` objects
whose states are checkpointed with the parameters, optimiser moments, centering averages and NVIL
statistics.  A run killed and resumed with ``--resume`` therefore ends with the same parameters as an
uninterrupted run with the same seed (on the same machine and torch build; tested).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import torch

from . import estimators
from . import objectives as O
from .models import DiscreteLatentModel
from .fast_eval import COMPILE_ROWS, CompiledLogWeights, worth_compiling
from .clocks import Stopwatch
from .config import RESUMABLE_CHANGES, RunConfig
from .provenance import provenance

__all__ = ["RunConfig", "Trainer", "NonFiniteError", "atomic_write_json", "EVAL_ROWS", "step_loss", "progress_record"]

#: rows (examples x importance samples) per evaluation call: small enough for the temporaries to stay in cache
EVAL_ROWS = 1024


def _temporary_name(path: Path) -> Path:
    """A temporary file beside ``path`` that no other process or thread uses (pid and a random part)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


def atomic_write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _compact(obj):
    """``obj`` with every tensor that views a larger storage replaced by a copy of its own elements:
    ``torch.save`` writes a view's whole storage (the parameters of a seed stack's runs are slices of
    one stacked tensor; see :mod:`.seed_stack`)."""
    if isinstance(obj, torch.Tensor):
        own = obj.numel() * obj.element_size()
        return obj.clone() if obj.untyped_storage().nbytes() > own else obj
    if isinstance(obj, dict):
        return type(obj)((k, _compact(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_compact(v) for v in obj)
    return obj


def _atomic_torch_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        torch.save(_compact(obj), tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class NonFiniteError(RuntimeError):
    """Training produced a NaN or infinite loss or parameter; the run stops and writes no result."""


def _fused_adam_available(device="cpu") -> bool:
    try:
        torch.optim.Adam([torch.zeros(1, requires_grad=True, device=device)], fused=True)
        return True
    except (RuntimeError, TypeError, ValueError):
        return False


def step_loss(estimator, split, samples: int, x, uniforms):
    """``(loss, bound)`` of one minibatch ``x`` with its noise: the estimator's loss on the data (density
    estimation) or on the top half given the bottom half (``split``, structured prediction)."""
    inp, target = (x, None) if split is None else split(x)
    return estimator.loss(inp, samples, uniforms, target=target)


def progress_record(state: dict) -> dict:
    """A run's progress file (``data/results/progress/<run>.json``) from its checkpoint's state
    (:meth:`Trainer.state`): the run so far, its curves, step, best validation, seconds and starts."""
    out = {"run": RunConfig(**state["config"]).run_name(), "config": state["config"], "step": state["step"],
           "curves": state["curves"], "best": state["best"], "train_seconds": round(state["train_seconds"], 1),
           "engine": state["engine"], "run_starts": state["starts"]}
    if state.get("train_cpu_seconds") is not None:  # checkpoints from before CPU seconds were counted lack it
        out.update(train_cpu_seconds=round(state["train_cpu_seconds"], 1),
                   cpu_seconds_from_step=state["cpu_seconds_from_step"])
    return out


class Trainer:
    """Owns the model, optimiser(s), generators and curves of one run."""

    def __init__(self, config: RunConfig, data: dict, base_rate, split=None, device="cpu"):
        from .notation import parse_notation

        self.config = config
        self.device = torch.device(device)
        self.split = split  # structured prediction: function image -> (context, target)
        torch.manual_seed(config.seed)
        spec = parse_notation(config.model, config.arity)
        temps = (config.posterior_temperature, config.prior_temperature)
        self.model = DiscreteLatentModel(spec, temperatures=temps, base_rate=base_rate).to(self.device)
        # the estimator and its own trainable parts (NVIL's baseline network), created after the model so that
        # the global seed initialises both as it always did
        self.estimator = estimators.get(config.estimator)(self.model, config).to(self.device)
        self.baseline = self.estimator.modules().get("baseline")
        params = list(self.model.parameters()) + list(self.estimator.parameters())
        # Adam in one fused kernel over all parameters (the same update as the per-parameter loop, to
        # float32 rounding); the per-parameter loop was 22-24% of an m = 1 step.
        self.fused_adam = _fused_adam_available(self.device)
        self.optimizer = torch.optim.Adam(
            params, lr=config.learning_rate, betas=(0.9, 0.999), weight_decay=config.weight_decay,
            **({"fused": True} if self.fused_adam else {}),
        )
        self._step_fn = self._loss
        self.compiled = False
        self.engine = {"fused_adam": self.fused_adam, "compiled": False, "device": str(self.device)}
        # evaluation: "auto" compiles an evaluation of at least fast_eval.COMPILE_ROWS sample-rows (the
        # command lines set it from --compile); "no" keeps the eager reference
        self.eval_compile = "no"
        self._compiled_eval = None
        self.data = {k: torch.as_tensor(v, dtype=torch.float32, device=self.device) for k, v in data.items()}
        if config.train_examples:
            self.data["train"] = self.data["train"][: config.train_examples]
        # the minibatch order comes from a CPU generator: the same examples in the same order on every device
        self.data_gen = torch.Generator().manual_seed(config.seed)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(config.seed + 1_000_003)
        self.eval_gen = torch.Generator(device=self.device).manual_seed(config.seed + 2_000_003)
        self.step = 0
        self.order = torch.empty(0, dtype=torch.long)
        self.cursor = 0
        self.curves = {"step": [], "train_objective": [], "valid_step": [], "valid_bound": []}
        self.running = None  # the running average of the training objective (checkpointed: exact resume)
        self.best = None  # {"step", "valid_bound"} of the best validation so far (its model: best.pt)
        self.train_seconds = 0.0  # wall-clock seconds of training (validations and checkpoints included)
        # CPU seconds of the same work (:mod:`.clocks`), counted from step ``cpu_seconds_from_step``: 0, or the
        # step of a checkpoint written before CPU seconds were counted, from which this run resumed
        self.train_cpu_seconds = 0.0
        self.cpu_seconds_from_step = 0
        self.command = None  # the command line that started the run, for provenance
        self.starts = []  # provenance of the start and of every resume (the code that actually ran)

    # ------------------------------------------------------------------ data
    def _batch(self):
        n = self.data["train"].shape[0]
        if self.cursor + self.config.batch_size > self.order.numel():
            self.order = torch.randperm(n, generator=self.data_gen)
            self.cursor = 0
        idx = self.order[self.cursor : self.cursor + self.config.batch_size]
        self.cursor += self.config.batch_size
        # index_select: the same rows as ``train[idx]``, in half the time of advanced indexing (41 against 80
        # microseconds per batch of 64 from the 50,000 MNIST images, one thread: about 1% of an m = 1 step)
        return torch.index_select(self.data["train"], 0, idx.to(self.device))

    def _inputs(self, x):
        if self.split is None:
            return x, None
        return self.split(x)

    # ------------------------------------------------------------------ one step
    def _loss(self, x, uniforms):
        """The minibatch loss of the run's estimator and the mean bound it estimates: the whole
        differentiable step, a pure function of the batch and its noise (what gets compiled, and what a
        seed stack maps over its seeds)."""
        return step_loss(self.estimator, self.split, self.config.samples, x, uniforms)

    def compile_step(self) -> float:
        """Compile :meth:`_loss` (forward and backward) with ``torch.compile``; returns the seconds the first
        compiled step took. The noise is drawn outside the compiled region from the run's generator, so the
        compiled and eager steps see the same numbers."""
        if not self.estimator.compilable:
            raise ValueError(f"the {self.config.estimator} step computes its own gradients: it runs eager")
        self._step_fn = torch.compile(self._loss, dynamic=False)
        self.compiled = True
        self.engine["compiled"] = True
        return 0.0

    def train_step(self) -> float:
        self.model.train()
        x = self._batch()
        c = self.config
        uniforms = self.estimator.noise(x.shape[0], c.samples, self.noise_gen, device=self.device)
        if self.estimator.compilable:
            loss, bound = self._step_fn(x, uniforms)
            self._check_loss(loss)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        else:  # the estimator computes its gradients itself (e.g. a variance-tuned control variate)
            self.optimizer.zero_grad(set_to_none=True)
            inp, target = self._inputs(x)
            loss, bound = self.estimator.backward(inp, c.samples, uniforms, target=target)
            self._check_loss(loss)
        self.optimizer.step()
        self.step += 1
        return float(bound)

    def _named_parameters(self):
        yield from self.model.named_parameters()
        for name, module in self.estimator.modules().items():
            yield from ((f"{self.config.estimator}.{name}.{n}", p) for n, p in module.named_parameters())

    def _check_loss(self, loss) -> None:
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteError(f"{self.config.run_name()}: the training loss is {value} at step {self.step + 1}; "
                                 "the run stops (no result is written)")

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteError` naming the step if any parameter is NaN or infinite."""
        for name, p in self._named_parameters():
            if not torch.isfinite(p).all():
                raise NonFiniteError(f"{self.config.run_name()}: parameter {name} is not finite at step "
                                     f"{self.step}; the run stops (no result is written)")

    # ------------------------------------------------------------------ evaluation
    def bound(self, split: str, k: int, examples: int | None = None, batch: int | None = None,
              relaxed: bool = False, generator: torch.Generator | None = None, key: str | None = None) -> float:
        """Mean L_k over a split (or its first ``examples``), chunked to bound memory; discrete graph
        unless ``relaxed``. The importance samples come from ``generator``, by default the trainer's own
        evaluation generator (whose state the checkpoints keep). With ``key`` and a :attr:`ledger`, the
        bound's progress is kept in the ledger under that name, and a bound the ledger holds finished or
        under way is taken from it or continued (:mod:`.eval_ledger`: the same value, to the bit)."""
        x_all = self.data[split] if examples is None else self.data[split][:examples]
        c = self.config
        # about EVAL_ROWS (examples x samples) rows per call: the temporaries stay in cache (50,000 rows
        # per call ran 2.3x slower on 200H-784V, 2x on 200H~200H~784V, L_1000, one thread)
        batch = batch or max(1, min(x_all.shape[0], EVAL_ROWS // max(1, min(k, c.eval_chunk))))
        gen = self.eval_gen if generator is None else generator
        ledger = self.ledger if key is not None else None
        first, total = 0, 0.0
        if ledger is not None:
            value, first, total = ledger.start(key, gen)
            if value is not None:
                return value
        log_weights = self._eval_log_weights(x_all.shape[0] * k)
        for start in range(first, x_all.shape[0], batch):
            x = x_all[start : start + batch]
            inp, target = self._inputs(x)
            values = O.importance_bound(
                self.model, inp, k, chunk=min(k, c.eval_chunk), generator=gen, target=target,
                relaxed=relaxed, log_weights=log_weights,
            )
            total += float(values.sum())
            if ledger is not None:
                ledger.advance(key, start + batch, total, gen)
        value = total / x_all.shape[0]
        if ledger is not None:
            ledger.finish(key, value, gen)
        return value

    def _eval_log_weights(self, rows: int):
        """The compiled log weights (:mod:`.fast_eval`) for an evaluation of ``rows`` sample-rows, or None
        (the model's eager ``log_weights``), by :attr:`eval_compile`."""
        if not worth_compiling(self.eval_compile, rows):
            return None
        if self._compiled_eval is None:
            self._compiled_eval = CompiledLogWeights(self.model)
        return self._compiled_eval

    def evaluation_engine(self) -> dict:
        """How the evaluations of this process ran: the compile mode and, if one was compiled, its record."""
        info = {"compile": self.eval_compile, "compile_rows": COMPILE_ROWS}
        info.update(self._compiled_eval.info if self._compiled_eval is not None else {"compiled": False})
        return info

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {
            "config": dataclasses.asdict(self.config),
            "model": self.model.state_dict(),
            "baseline": self.baseline.state_dict() if self.baseline is not None else None,  # older readers
            "estimator": self.estimator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "data_gen": self.data_gen.get_state(),
            "noise_gen": self.noise_gen.get_state(),
            "eval_gen": self.eval_gen.get_state(),
            "step": self.step,
            "order": self.order,
            "cursor": self.cursor,
            "curves": self.curves,
            "running": self.running,
            "best": self.best,
            "engine": dict(self.engine),
            "train_seconds": self.train_seconds,
            "train_cpu_seconds": self.train_cpu_seconds,
            "cpu_seconds_from_step": self.cpu_seconds_from_step,
            "starts": self.starts,
        }

    #: settings a resumed run may change: they change how, not what, it computes
    RESUMABLE_CHANGES = RESUMABLE_CHANGES

    def load_state(self, state: dict, evaluation_only: bool = False) -> None:
        """Continue from a checkpoint of the same run: every setting but :attr:`RESUMABLE_CHANGES` must
        match (``--steps`` included: a longer run is another run). ``evaluation_only`` allows another
        device (its generators then keep their fresh seeds: training cannot continue bit-exactly)."""
        saved = state["config"]
        saved_device = (state.get("engine") or {}).get("device", "cpu")
        other_device = torch.device(saved_device).type != self.device.type
        if other_device and not evaluation_only:
            raise ValueError(f"the checkpoint was written on {saved_device}; resume it with --device {saved_device} "
                             f"(not {self.device}): generator states belong to their device")
        mine = dataclasses.asdict(self.config)
        differ = {k for k in mine if k not in self.RESUMABLE_CHANGES and saved.get(k) != mine[k]}
        if differ:
            raise ValueError(
                "the checkpoint was written by a run with other settings; --resume continues the same run only: "
                + ", ".join(f"{k}: {saved.get(k)!r} in the checkpoint, {mine[k]!r} now" for k in sorted(differ))
            )
        self.model.load_state_dict(state["model"])
        if state.get("estimator") is not None:
            self.estimator.load_state_dict(state["estimator"])
        elif self.baseline is not None:  # checkpoints written before the estimator interface
            self.baseline.load_state_dict(state["baseline"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.data_gen.set_state(state["data_gen"])
        if not other_device:
            self.noise_gen.set_state(state["noise_gen"])
            self.eval_gen.set_state(state["eval_gen"])
        self.step, self.order, self.cursor = state["step"], state["order"], state["cursor"]
        self.curves, self.train_seconds = state["curves"], state["train_seconds"]
        if state.get("train_cpu_seconds") is None:  # written before CPU seconds were counted: count from here
            self.train_cpu_seconds, self.cpu_seconds_from_step = 0.0, state["step"]
        else:
            self.train_cpu_seconds, self.cpu_seconds_from_step = state["train_cpu_seconds"], state["cpu_seconds_from_step"]
        self.running, self.best = state.get("running"), state.get("best")
        self.starts = state.get("starts", []) + self.starts
        saved_engine = state.get("engine") or {}
        if saved_engine.get("compiled") and not self.compiled:
            self.compile_step()  # resume on the path the run started on: bit-exact continuation
        self.engine.update({k: v for k, v in saved_engine.items() if k not in ("compiled", "fused_adam", "device")})

    def save(self, path: Path) -> None:
        _atomic_torch_save(self.state(), path)

    def _validate(self, checkpoint: Path) -> None:
        """Validation bound L_k on the validation set; the best model so far is kept beside the checkpoint
        (``best.pt``), for early stopping (the paper's protocol for the score-function estimators)."""
        c = self.config
        value = self.bound("valid", c.valid_samples, c.valid_examples)
        self.curves["valid_step"].append(self.step)
        self.curves["valid_bound"].append(value)
        if not math.isfinite(value):
            raise NonFiniteError(f"{c.run_name()}: validation bound {value} at step {self.step}; the run stops")
        if self.best is None or value > self.best["valid_bound"]:
            self.best = {"step": self.step, "valid_bound": value}
            _atomic_torch_save({"step": self.step, "model": self.model.state_dict(),
                                "baseline": self.baseline.state_dict() if self.baseline is not None else None},
                               checkpoint.with_name("best.pt"))
        if self.progress_path is not None:
            atomic_write_json(self.progress_path, self.progress())

    def progress(self) -> dict:
        """The run so far (curves, step, best validation, seconds): written at every validation, so a long
        run's curves can be read, and committed, before it ends."""
        return progress_record(self.state())

    # ------------------------------------------------------------------ the run
    progress_path: Path | None = None

    def begin_run(self) -> None:
        """Record the start (or resume) of training: the code and engine that run from this step on."""
        self.starts.append({**provenance(self.command, self.device), "step": self.step, "engine": dict(self.engine),
                            "train_seconds": round(self.train_seconds, 1),  # the pace since: claims.progress_rows
                            "train_cpu_seconds": round(self.train_cpu_seconds, 1)})

    def record(self, value: float) -> None:
        """After a step: the running average of the training objective (rate 0.02) and, at every
        ``steps // 200``-th step and the last, a point of the training curve."""
        running = self.running
        self.running = value if running is None or not math.isfinite(running) else 0.98 * running + 0.02 * value
        c = self.config
        if self.step % max(1, c.steps // 200) == 0 or self.step == c.steps:
            self.curves["step"].append(self.step)
            self.curves["train_objective"].append(self.running)

    def due(self) -> tuple[bool, bool]:
        """Whether a validation and whether a checkpoint is due after the current step."""
        c = self.config
        last = self.step == c.steps
        return (bool(c.valid_every) and (self.step % c.valid_every == 0 or last),
                self.step % c.checkpoint_every == 0 or last)

    def run(self, checkpoint: Path, progress: bool = True, stop_after: int | None = None) -> None:
        """Train to ``config.steps`` (checkpointing), or stop early after ``stop_after`` steps (tests)."""
        from tqdm import tqdm  # the text bar: works on a terminal, in Jupyter and in logs alike

        c = self.config
        self.begin_run()
        bar = tqdm(total=c.steps, initial=self.step, disable=not progress, desc=c.run_name(), mininterval=2.0)
        clock = Stopwatch()
        while self.step < c.steps:
            self.record(self.train_step())
            if self.step % 50 == 0:
                bar.update(50)
                bar.set_postfix(objective=f"{self.running:.2f}")
            validate, save = self.due()
            if validate:
                self._validate(checkpoint)
            if save:
                self.check_finite()
                self.add_train_time(*clock.lap())
                self.save(checkpoint)
            if stop_after is not None and self.step >= stop_after:
                break
        self.add_train_time(*clock.lap())
        bar.close()

    def add_train_time(self, wall: float, cpu: float) -> None:
        """Count ``wall`` and ``cpu`` seconds (:class:`.clocks.Stopwatch`) as training time."""
        self.train_seconds += wall
        self.train_cpu_seconds += cpu

    def evaluate(self, model: str = "last") -> dict:
        """Test and train bounds of the current model on the discrete graph (and relaxed, if configured).
        ``model`` ("last" or "best") names the bounds in the :attr:`ledger`, if there is one."""
        c = self.config
        metrics = {
            "test_bound": self.bound("test", c.eval_samples_test, key=f"{model}/test"),
            "train_bound": self.bound("train", c.eval_samples_train, key=f"{model}/train"),
        }
        metrics["test_nll"] = -metrics["test_bound"]
        metrics["train_nll"] = -metrics["train_bound"]
        if c.eval_relaxed:
            for split, k in (("test", c.eval_samples_test), ("train", c.eval_samples_train)):
                metrics[f"{split}_nll_relaxed"] = -self.bound(split, k, relaxed=True, key=f"{model}/{split}_relaxed")
        return metrics

    #: the final evaluation's progress on disk (:mod:`.eval_ledger`), set by the command line; None: none
    ledger = None

    def ledger_identity(self) -> dict:
        """What a final evaluation's ledger is of: the run, its step, its settings, the examples of every
        split, the best validation step (if it is evaluated) and the evaluation's compile mode."""
        return {"run": self.config.run_name(), "step": int(self.step), "config": dataclasses.asdict(self.config),
                "examples": {k: int(v.shape[0]) for k, v in self.data.items()},
                "best_step": (self.best or {}).get("step") if self.early_stopping else None,
                "eval_compile": self.eval_compile, "device": str(self.device)}

    @property
    def early_stopping(self) -> bool:
        """Whether the best validation checkpoint is evaluated too: for the estimators on the discrete graph
        (score-function estimators, which the paper early-stopped as "much more prone to overfitting")."""
        return self.estimator.early_stopped()

    def results(self, checkpoint: Path | None = None) -> dict:
        """Final evaluation on the discrete graph (train and test), with provenance. For the score-function
        estimators the best validation checkpoint (``best.pt`` beside ``checkpoint``) is evaluated as well,
        as ``metrics_best``, when it is not the last step."""
        c = self.config
        clock = Stopwatch()
        metrics = self.evaluate("last")
        out_best = None
        best_file = checkpoint.with_name("best.pt") if checkpoint is not None else None
        if (self.early_stopping and self.best is not None and best_file is not None
                and best_file.exists() and self.best["step"] != self.step):
            last = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            best = torch.load(best_file, weights_only=False, map_location=self.device)
            self.model.load_state_dict(best["model"])
            out_best = {"step": best["step"], "valid_bound": self.best["valid_bound"], **self.evaluate("best")}
            self.model.load_state_dict(last)
        # a resumed evaluation: the seconds of every process that worked on it
        if self.ledger is not None:
            eval_seconds, eval_cpu = self.ledger.seconds(), self.ledger.cpu_seconds()
        else:
            eval_seconds, eval_cpu = clock.peek()
        out = {
            "config": dataclasses.asdict(c),
            "metrics": metrics,
            "curves": self.curves,
            "steps_done": self.step,
            "train_seconds": round(self.train_seconds, 1),
            "eval_seconds": round(eval_seconds, 1),
            # CPU seconds (:mod:`.clocks`): training from step cpu_seconds_from_step on; None: not counted
            "train_cpu_seconds": round(self.train_cpu_seconds, 1),
            "cpu_seconds_from_step": self.cpu_seconds_from_step,
            "eval_cpu_seconds": None if eval_cpu is None else round(eval_cpu, 1),
            "examples": {k: int(v.shape[0]) for k, v in self.data.items()},
            "engine": {**self.engine, "evaluation": self.evaluation_engine()},
            "provenance": provenance(self.command, self.device),  # at evaluation time
            "run_starts": self.starts,  # at the start and at every resume: the code that trained
        }
        if self.ledger is not None and self.ledger.resumed:  # where each later process took the evaluation over
            out["evaluation_resumes"] = list(self.ledger.resumes)
        if self.early_stopping and self.best is not None:
            out["best_validation"] = dict(self.best)
            if out_best is not None:
                out["metrics_best"] = out_best
        return out


def load_model(checkpoint: Path) -> DiscreteLatentModel:
    """The trained model of a run from its ``checkpoint.pt`` (built from the config saved in it), in eval mode."""
    from .notation import parse_notation

    state = torch.load(checkpoint, weights_only=False, map_location="cpu")
    cfg = state["config"]
    model = DiscreteLatentModel(parse_notation(cfg["model"], cfg["arity"]),
                                temperatures=(cfg["posterior_temperature"], cfg["prior_temperature"]))
    model.load_state_dict(state["model"])
    return model.eval()

