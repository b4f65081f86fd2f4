"""A long final evaluation's progress on disk, so that a killed evaluation resumes where it stopped.

The paper's final evaluation, :math:`\\mathcal{L}_{50000}` on the 10,000 test images and on 10,000
training images, takes one core 1.3 to 4 hours per split on the Table 1 models (the benchmark: 9.5 to
28 s per 1,000 images at :math:`k = 1000`, times 50), and twice that for NVIL and VIMCO, whose best
validation checkpoint is evaluated too: longer than a session of the machine that runs it, so that an
evaluation started over after every kill might never end.

:meth:`Trainer.bound <concrete_ref.experiments.train.Trainer.bound>` is a sum over batches of
examples, taken in order, with the importance samples drawn from one generator.  Its state after any
batch is therefore three things: the next example, the partial sum (a Python float) and the
generator's state.  The ledger writes them atomically beside the checkpoint (``evaluation.pt``) at most
every ``interval`` seconds, together with the values of the bounds already finished.  A resumed run
(``--resume``) takes the finished bounds from it, restores the generator and continues the current
bound from its next example.  It computes the same batches with the same noise and adds the same
partial sums, so the result is the same, to the last bit, as an evaluation never interrupted (tested).

A ledger belongs to one evaluation: the run, its step, its settings, the examples of every split, the
best validation step and the evaluation engine (compiled or eager evaluation round differently in the
last bits).  A ledger written for anything else is discarded, and the evaluation starts again.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from .clocks import Stopwatch
from .train import _atomic_torch_save

__all__ = ["EvaluationLedger", "LEDGER"]

#: the ledger's file, beside the run's checkpoint (and in its snapshot)
LEDGER = "evaluation.pt"
#: the default for ``interval``: the most seconds of evaluation a kill costs
WRITE_INTERVAL = 60.0


class EvaluationLedger:
    """The bounds of one evaluation finished so far, and the state of the one under way.

    ``identity``: what the evaluation is of (compared with the file's, see the module docstring);
    ``interval``: the most seconds of work a kill may cost (the file is written after the first batch
    that ends that long after the last write, and whenever a bound finishes; default
    :data:`WRITE_INTERVAL`)."""

    def __init__(self, path: Path, identity: dict, interval: float | None = None):
        interval = WRITE_INTERVAL if interval is None else interval
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds; got {interval}")
        self.path, self.identity, self.interval = Path(path), identity, float(interval)
        self.done: dict[str, float] = {}
        self.current: dict | None = None  # {"key", "next", "total"} of the bound under way
        self.generator_state = None  # the evaluation generator's state after what done and current hold
        self.earlier_seconds = 0.0  # evaluation seconds of the processes before this one
        self.earlier_cpu_seconds = 0.0  # their CPU seconds (None: a ledger written before they were counted)
        self.resumes: list[dict] = []  # where each resumed process took over
        self.discarded = None  # why a ledger on disk was not used, if one was found and not used
        self._restore = False
        self._clock = Stopwatch()
        self._written = time.perf_counter()
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            state = torch.load(self.path, weights_only=False, map_location="cpu")
        except Exception as exc:  # a torn or foreign file: the evaluation starts again
            self.discarded = f"unreadable ({type(exc).__name__})"
            return
        if state.get("identity") != self.identity:
            self.discarded = "written for another evaluation (run, step, settings, examples or engine differ)"
            return
        self.done = dict(state["done"])
        self.current = state["current"]
        self.generator_state = state["generator_state"]
        self.earlier_seconds = float(state["seconds"])
        self.earlier_cpu_seconds = None if state.get("cpu_seconds") is None else float(state["cpu_seconds"])
        self.resumes = list(state["resumes"])
        self._restore = self.generator_state is not None
        where = self.current or {"key": "after " + (list(self.done)[-1] if self.done else "nothing"), "next": 0}
        self.resumes.append({"key": where["key"], "example": int(where["next"]), "finished": list(self.done),
                             "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    @property
    def resumed(self) -> bool:
        """Whether this process continues an evaluation that an earlier one began."""
        return bool(self.resumes)

    def seconds(self) -> float:
        """Evaluation seconds over every process that worked on this evaluation."""
        return self.earlier_seconds + self._clock.peek()[0]

    def cpu_seconds(self) -> float | None:
        """CPU seconds (:mod:`.clocks`) over every process that worked on this evaluation; None when an
        earlier process's were not counted."""
        return None if self.earlier_cpu_seconds is None else self.earlier_cpu_seconds + self._clock.peek()[1]

    def start(self, key: str, generator: torch.Generator) -> tuple[float | None, int, float]:
        """Before bound ``key``: ``(its value, if finished; else None, the next example, the partial sum)``.
        The first call of a resumed process puts ``generator`` in the state the ledger holds."""
        if self._restore:
            generator.set_state(self.generator_state)
            self._restore = False
        if key in self.done:
            return self.done[key], 0, 0.0
        if self.current is not None:
            if self.current["key"] != key:
                raise RuntimeError(f"{self.path}: the evaluation under way is {self.current['key']!r}, not {key!r}: "
                                   "the bounds are evaluated in another order than when the ledger was written")
            return None, int(self.current["next"]), float(self.current["total"])
        return None, 0, 0.0

    def advance(self, key: str, next_example: int, total: float, generator: torch.Generator) -> None:
        """After a batch of bound ``key``: its next example and partial sum; written if ``interval`` passed."""
        self.current = {"key": key, "next": int(next_example), "total": float(total)}
        if time.perf_counter() - self._written >= self.interval:
            self._write(generator)

    def finish(self, key: str, value: float, generator: torch.Generator) -> None:
        """Bound ``key`` is finished with ``value``; written at once."""
        self.done[key] = float(value)
        self.current = None
        self._write(generator)

    def remove(self) -> None:
        """The evaluation's result is written: the ledger is no longer needed."""
        self.path.unlink(missing_ok=True)

    def _write(self, generator: torch.Generator) -> None:
        self.generator_state = generator.get_state()
        state = {"identity": self.identity, "done": self.done, "current": self.current,
                 "generator_state": self.generator_state, "seconds": self.seconds(), "cpu_seconds": self.cpu_seconds(),
                 "resumes": self.resumes}
        _atomic_torch_save(state, self.path)  # the checkpoints' own atomic write
        self._written = time.perf_counter()
