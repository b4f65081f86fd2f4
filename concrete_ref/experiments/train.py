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
import time
from pathlib import Path

import torch

from . import objectives as O
from .models import DiscreteLatentModel
from .provenance import provenance

__all__ = ["RunConfig", "Trainer", "atomic_write_json"]


@dataclasses.dataclass
class RunConfig:
    """Everything that defines a run (written into its checkpoint and result file)."""

    task: str  # "density" or "structured"
    dataset: str
    model: str
    arity: int
    estimator: str  # "concrete", "vimco", "nvil"
    samples: int  # m of the training objective
    seed: int
    steps: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    posterior_temperature: float
    prior_temperature: float
    eval_samples_test: int
    eval_samples_train: int
    eval_chunk: int
    valid_every: int
    valid_samples: int
    valid_examples: int
    checkpoint_every: int
    preset: str
    train_examples: int | None = None  # None: the full training set
    eval_relaxed: bool = False  # also evaluate the bounds on the relaxed graph (Figure 4)

    def run_name(self) -> str:
        from .cli import default_temperatures

        safe = self.model.replace("~", "n").replace("-", "_")
        ar = "" if self.arity == 2 else f"_{self.arity}ary"
        temps = (self.posterior_temperature, self.prior_temperature)
        t = "" if temps == default_temperatures(self.task, self.arity) else f"_t{temps[0]:.4g}_{temps[1]:.4g}"
        return f"{self.task}_{self.dataset}_{safe}{ar}_{self.estimator}_m{self.samples}{t}_{self.preset}_s{self.seed}"


def atomic_write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def _atomic_torch_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    """Owns the model, optimiser(s), generators and curves of one run."""

    def __init__(self, config: RunConfig, data: dict, base_rate, split=None):
        from .notation import parse_notation

        self.config = config
        self.split = split  # structured prediction: function image -> (context, target)
        torch.manual_seed(config.seed)
        spec = parse_notation(config.model, config.arity)
        temps = (config.posterior_temperature, config.prior_temperature)
        self.model = DiscreteLatentModel(spec, temperatures=temps, base_rate=base_rate)
        self.baseline = None
        params = list(self.model.parameters())
        if config.estimator == "nvil":
            ctx_dim = spec.layers[0].units if spec.conditional else spec.layers[-1].units
            self.baseline = O.NVILBaseline(ctx_dim)
            params += list(self.baseline.parameters())
        self.optimizer = torch.optim.Adam(
            params, lr=config.learning_rate, betas=(0.9, 0.999), weight_decay=config.weight_decay
        )
        self.data = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in data.items()}
        if config.train_examples:
            self.data["train"] = self.data["train"][: config.train_examples]
        self.data_gen = torch.Generator().manual_seed(config.seed)
        self.noise_gen = torch.Generator().manual_seed(config.seed + 1_000_003)
        self.eval_gen = torch.Generator().manual_seed(config.seed + 2_000_003)
        self.step = 0
        self.order = torch.empty(0, dtype=torch.long)
        self.cursor = 0
        self.curves = {"step": [], "train_objective": [], "valid_step": [], "valid_bound": []}
        self.train_seconds = 0.0
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
        return self.data["train"][idx]

    def _inputs(self, x):
        if self.split is None:
            return x, None
        return self.split(x)

    # ------------------------------------------------------------------ one step
    def objective(self, x, generator):
        """Per-example surrogate and the bound it estimates, for the configured estimator."""
        c = self.config
        inp, target = self._inputs(x)
        if c.estimator == "concrete":
            value = O.concrete_objective(self.model, inp, c.samples, generator=generator, target=target)
            return value, value.detach(), None
        if c.estimator == "vimco":
            value = O.vimco_objective(self.model, inp, c.samples, generator=generator, target=target)
            return value, value.detach(), None
        if c.estimator == "nvil":
            surrogate, baseline_loss, bound = O.nvil_objective(
                self.model, self.baseline, inp, generator=generator, target=target
            )
            return surrogate, bound, baseline_loss
        raise ValueError(f"estimator must be one of concrete, vimco, nvil; got {c.estimator!r}")

    def train_step(self) -> float:
        self.model.train()
        x = self._batch()
        surrogate, bound, baseline_loss = self.objective(x, self.noise_gen)
        loss = -surrogate.mean()
        if baseline_loss is not None:
            loss = loss + baseline_loss.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return float(bound.mean())

    # ------------------------------------------------------------------ evaluation
    def bound(self, split: str, k: int, examples: int | None = None, batch: int | None = None,
              relaxed: bool = False) -> float:
        """Mean L_k over a split (or its first ``examples``), chunked to bound memory; discrete graph
        unless ``relaxed``."""
        x_all = self.data[split] if examples is None else self.data[split][:examples]
        c = self.config
        batch = batch or max(1, min(x_all.shape[0], 50_000 // max(1, min(k, c.eval_chunk))))
        total = 0.0
        for start in range(0, x_all.shape[0], batch):
            x = x_all[start : start + batch]
            inp, target = self._inputs(x)
            values = O.importance_bound(
                self.model, inp, k, chunk=min(k, c.eval_chunk), generator=self.eval_gen, target=target,
                relaxed=relaxed,
            )
            total += float(values.sum())
        return total / x_all.shape[0]

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {
            "config": dataclasses.asdict(self.config),
            "model": self.model.state_dict(),
            "baseline": self.baseline.state_dict() if self.baseline is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "data_gen": self.data_gen.get_state(),
            "noise_gen": self.noise_gen.get_state(),
            "eval_gen": self.eval_gen.get_state(),
            "step": self.step,
            "order": self.order,
            "cursor": self.cursor,
            "curves": self.curves,
            "train_seconds": self.train_seconds,
            "starts": self.starts,
        }

    def load_state(self, state: dict) -> None:
        saved = state["config"]
        mine = dataclasses.asdict(self.config)
        differ = {k for k in mine if k not in ("steps", "checkpoint_every") and saved.get(k) != mine[k]}
        if differ:
            raise ValueError(
                "checkpoint was written by a run with a different configuration: "
                + ", ".join(f"{k}: {saved.get(k)!r} vs {mine[k]!r}" for k in sorted(differ))
            )
        self.model.load_state_dict(state["model"])
        if self.baseline is not None:
            self.baseline.load_state_dict(state["baseline"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.data_gen.set_state(state["data_gen"])
        self.noise_gen.set_state(state["noise_gen"])
        self.eval_gen.set_state(state["eval_gen"])
        self.step, self.order, self.cursor = state["step"], state["order"], state["cursor"]
        self.curves, self.train_seconds = state["curves"], state["train_seconds"]
        self.starts = state.get("starts", []) + self.starts

    def save(self, path: Path) -> None:
        _atomic_torch_save(self.state(), path)

    # ------------------------------------------------------------------ the run
    def run(self, checkpoint: Path, progress: bool = True, stop_after: int | None = None) -> None:
        """Train to ``config.steps`` (checkpointing), or stop early after ``stop_after`` steps (tests)."""
        from tqdm import tqdm  # the text bar: works on a terminal, in Jupyter and in logs alike

        c = self.config
        self.starts.append(provenance(self.command))
        bar = tqdm(total=c.steps, initial=self.step, disable=not progress, desc=c.run_name(), mininterval=2.0)
        running = None
        t0 = time.perf_counter()
        while self.step < c.steps:
            value = self.train_step()
            running = value if running is None or not math.isfinite(running) else 0.98 * running + 0.02 * value
            if self.step % max(1, c.steps // 200) == 0 or self.step == c.steps:
                self.curves["step"].append(self.step)
                self.curves["train_objective"].append(running)
            if c.valid_every and (self.step % c.valid_every == 0 or self.step == c.steps):
                self.curves["valid_step"].append(self.step)
                self.curves["valid_bound"].append(self.bound("valid", c.valid_samples, c.valid_examples))
            bar.update(1)
            if self.step % 50 == 0:
                bar.set_postfix(objective=f"{running:.2f}")
            if self.step % c.checkpoint_every == 0 or self.step == c.steps:
                self.train_seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                self.save(checkpoint)
            if stop_after is not None and self.step >= stop_after:
                break
        self.train_seconds += time.perf_counter() - t0
        bar.close()

    def results(self) -> dict:
        """Final evaluation on the discrete graph (train and test), with provenance."""
        c = self.config
        t0 = time.perf_counter()
        metrics = {
            "test_bound": self.bound("test", c.eval_samples_test),
            "train_bound": self.bound("train", c.eval_samples_train),
        }
        metrics["test_nll"] = -metrics["test_bound"]
        metrics["train_nll"] = -metrics["train_bound"]
        if c.eval_relaxed:
            for split, k in (("test", c.eval_samples_test), ("train", c.eval_samples_train)):
                metrics[f"{split}_nll_relaxed"] = -self.bound(split, k, relaxed=True)
        eval_seconds = time.perf_counter() - t0
        return {
            "config": dataclasses.asdict(c),
            "metrics": metrics,
            "curves": self.curves,
            "steps_done": self.step,
            "train_seconds": round(self.train_seconds, 1),
            "eval_seconds": round(eval_seconds, 1),
            "examples": {k: int(v.shape[0]) for k, v in self.data.items()},
            "provenance": provenance(self.command),  # at evaluation time
            "run_starts": self.starts,  # at the start and at every resume: the code that trained
        }


def load_model(checkpoint: Path) -> DiscreteLatentModel:
    """The trained model of a run from its ``checkpoint.pt`` (built from the config saved in it), in eval mode."""
    from .notation import parse_notation

    state = torch.load(checkpoint, weights_only=False)
    cfg = state["config"]
    model = DiscreteLatentModel(parse_notation(cfg["model"], cfg["arity"]),
                                temperatures=(cfg["posterior_temperature"], cfg["prior_temperature"]))
    model.load_state_dict(state["model"])
    return model.eval()

