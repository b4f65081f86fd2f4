r"""The evaluation bound's log weights, compiled: the same numbers as the eager ones, 1.4-1.7x faster.

The evaluation :math:`\mathcal{L}_k` (Section 5.2) spends most of its time outside the matrix products: in
the eager path, one 1,000-sample call on 200H-784V spends 35% in GEMMs and 27% in the Bernoulli
log-likelihood :math:`\sum_d x_d\log\sigma(l_d) + (1 - x_d)\log\sigma(-l_d)` alone (``log_sigmoid`` over
784 pixels per sample), the rest in a dozen small element-wise kernels each of which reads and writes its
whole tensor. ``torch.compile`` fuses those element-wise passes into loops over the GEMMs' outputs.

:class:`CompiledLogWeights` is a drop-in for :meth:`DiscreteLatentModel.log_weights` (same arguments):
the uniforms are drawn *outside* the compiled region by :meth:`DiscreteLatentModel.draw_uniforms`, from
the same generator in the same order as the eager call draws them, and the rest (sampling from the
uniforms, scoring, the likelihood) is compiled, without autograd (evaluation runs under ``no_grad``). So
the compiled weights are the eager weights up to float32 rounding (measured: equal, or within 2e-7
relative, on the Table 1 models), and the generator ends in the same state.

Measured on one thread of the 2-core AMD EPYC (loaded; medians of five interleaved repeats of ten
1,000-sample calls): 200H-784V 35.4 -> 21.8 ms, 200H-200H-784V 38.9 -> 22.9 ms, 200H~200H~784V 91.3 ->
64.8 ms. Compiling costs 9-35 s per model and shape, so the trainer compiles only an evaluation of at least
:data:`COMPILE_ROWS` sample-rows (:func:`worth_compiling`). A compile that fails falls back to the eager
weights for the rest of the process (recorded), never stopping a run.
"""

from __future__ import annotations

import time

import torch

__all__ = ["COMPILE_ROWS", "CompiledLogWeights", "worth_compiling"]

#: the smallest evaluation (examples x samples) that ``--compile auto`` compiles: about 4 s of eager
#: evaluation per million rows here, against a compile of 9-35 s (the book's L_1000 on the 10,000 test
#: images is 10^7 rows; its in-loop validation, L_100 on 1,000 images, 10^5)
COMPILE_ROWS = 4_000_000

MODES = ("auto", "yes", "no")


def worth_compiling(mode: str, rows: int) -> bool:
    """Whether an evaluation of ``rows`` sample-rows is compiled under ``--compile mode``."""
    if mode not in MODES:
        raise ValueError(f"compile mode must be one of {', '.join(MODES)}; got {mode!r}")
    return mode == "yes" or (mode == "auto" and rows >= COMPILE_ROWS)


class CompiledLogWeights:
    """``model.log_weights(x, m, relaxed, generator, target)`` with everything after the noise compiled.

    ``info`` records what happened: ``compiled`` (whether the compiled path is in use), the seconds of the
    first compiled call (``compile_seconds``, which includes compiling), and ``fallback`` (the error) if
    compiling failed and the eager path took over."""

    def __init__(self, model):
        self.model = model
        self._fn = torch.compile(self._pure, dynamic=False)
        self._first = True
        self.info = {"compiled": True}

    def _pure(self, x, uniforms, target, relaxed: bool, m: int):
        return self.model.log_weights(x, m, relaxed=relaxed, target=target, uniforms=uniforms)

    def __call__(self, x, m: int, relaxed: bool = False, generator=None, target=None):
        uniforms = self.model.draw_uniforms(x.shape[0], m, generator, device=x.device)
        if not self.info["compiled"]:
            return self._pure(x, uniforms, target, relaxed, m)
        if not self._first:
            return self._fn(x, uniforms, target, relaxed, m)
        self._first = False
        t0 = time.perf_counter()
        try:
            out = self._fn(x, uniforms, target, relaxed, m)
        except Exception as exc:  # an inductor failure must not stop an evaluation: eager is the reference
            self.info = {"compiled": False, "fallback": f"{type(exc).__name__}: {str(exc)[:200]}"}
            return self._pure(x, uniforms, target, relaxed, m)
        self.info["compile_seconds"] = round(time.perf_counter() - t0, 1)
        return out
