"""The estimator interface and its registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported by the estimators' methods, not by the registry (fast --help)
    import torch.nn as nn

__all__ = ["Estimator", "REGISTRY", "register", "get", "names"]

REGISTRY: dict[str, type] = {}


def register(cls):
    """Class decorator: make ``cls`` available as ``--estimator cls.name``."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"estimator name {cls.name!r} is empty or already registered")
    REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    return sorted(REGISTRY)


def get(name: str) -> type:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"estimator must be one of {', '.join(names())}; got {name!r}") from None


class Estimator:
    """One gradient estimator of the training objective of a :class:`DiscreteLatentModel`.

    Subclasses set :attr:`name`, :attr:`graph` (``"relaxed"``: Concrete samples, pathwise gradients;
    ``"discrete"``: exact samples, score-function gradients), the range of ``m`` they accept, and implement
    :meth:`loss`. An estimator with trainable parts of its own (a baseline network, a control variate, a
    temperature) creates them in ``__init__`` and returns them from :meth:`modules`: the trainer optimises
    them with the model's parameters and checkpoints them by name. The noise is drawn by :meth:`noise`
    outside :meth:`loss`, so that :meth:`loss` is a pure function of its inputs (what ``torch.compile``
    needs, and what makes a compiled and an eager step see the same numbers).
    """

    name: str = ""
    graph: str = "relaxed"
    min_samples: int = 1
    max_samples: int | None = None
    #: the latent arities it supports (None: any)
    arities: tuple | None = None
    #: a sentence for ``--help`` and the tables
    summary: str = ""

    def __init__(self, model, config=None):
        self.model = model
        self.config = config

    @classmethod
    def early_stopped(cls) -> bool:
        """Whether its runs are early-stopped (their best validation model evaluated as well): the estimators
        on the discrete graph, the score-function ones the paper early-stopped as "much more prone to
        overfitting"."""
        return cls.graph == "discrete"

    # ------------------------------------------------------------------ what subclasses provide
    def modules(self) -> dict[str, nn.Module]:
        """Trainable parts of the estimator itself, by name (checkpointed under these names)."""
        return {}

    def samples_drawn(self, m: int) -> int:
        """How many samples per example one step draws (``m`` for most estimators)."""
        return m

    def noise(self, batch: int, m: int, generator=None, device=None) -> list:
        """The uniforms one step consumes, drawn from ``generator`` (default: the model's, for ``m`` samples)."""
        return self.model.draw_uniforms(batch, self.samples_drawn(m), generator, device=device)

    def loss(self, x, m: int, uniforms, target=None):
        """``(loss, bound)``: the minibatch loss to *minimise* (its gradient is the estimator) and the mean
        value of the bound it estimates (detached), for data ``x`` (the context in structured prediction,
        with ``target`` the bottom half)."""
        raise NotImplementedError

    #: whether the step is :meth:`loss` followed by ``loss.backward()`` (and can be compiled). An estimator
    #: whose gradients are not those of one loss (REBAR and RELAX tune their control variates to minimise
    #: the estimator's variance, which needs the gradient of a gradient) sets it False and overrides
    #: :meth:`backward`.
    compilable: bool = True
    #: whether seeds of a run may be trained together (:mod:`..seed_stack`): tested bit-exact against the
    #: runs one by one. NVIL's stacked step agrees only to float32 rounding (3e-8 after 30 steps: its
    #: gradient sums its paths in another order), so NVIL runs alone.
    stackable: bool = True

    def backward(self, x, m: int, uniforms, target=None):
        """Set ``.grad`` of the model's and the estimator's parameters for one minibatch (the optimiser
        then steps); returns ``(loss, bound)``, detached. Default: ``loss.backward()`` of :meth:`loss`."""
        loss, bound = self.loss(x, m, uniforms, target=target)
        loss.backward()
        return loss.detach(), bound

    # ------------------------------------------------------------------ checks
    @classmethod
    def check_samples(cls, m: int) -> str | None:
        """``None`` if ``m`` is allowed, else the reason (used by the command lines)."""
        if m < cls.min_samples:
            return f"{cls.name} needs --samples >= {cls.min_samples}"
        if cls.max_samples is not None and m > cls.max_samples:
            return f"{cls.name} takes --samples <= {cls.max_samples}"
        return None

    @classmethod
    def check_arity(cls, arity: int) -> str | None:
        """``None`` if latent layers of this arity are supported, else the reason (used by the command lines)."""
        if cls.arities is not None and arity not in cls.arities:
            allowed = ", ".join(str(a) for a in cls.arities)
            return f"{cls.name} supports --arity {allowed} only; got {arity}"
        return None

    def parameters(self):
        for module in self.modules().values():
            yield from module.parameters()

    def state_dict(self) -> dict:
        return {name: module.state_dict() for name, module in self.modules().items()}

    def load_state_dict(self, state: dict) -> None:
        for name, module in self.modules().items():
            module.load_state_dict(state[name])

    def to(self, device):
        for module in self.modules().values():
            module.to(device)
        return self
