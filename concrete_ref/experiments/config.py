"""What defines a run (torch-free, so that the command lines answer ``--help`` at once)."""

from __future__ import annotations

import dataclasses

__all__ = ["RunConfig", "RESUMABLE_CHANGES"]

#: settings a resumed run (or a rerun into an existing result file) may change: they change how, not what,
#: it computes
RESUMABLE_CHANGES = ("checkpoint_every", "eval_chunk")


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
    eval_examples: int | None = None  # None: the full splits; N: N examples spread evenly over each
    eval_train_examples: int | None = None  # None: the train bound on the full (or eval_examples) train split

    def run_name(self) -> str:
        """The run's name (:func:`identity.run_name`): its cell, its preset and a tag for any override."""
        from .identity import run_name

        return run_name(dataclasses.asdict(self))
