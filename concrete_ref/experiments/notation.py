"""The paper's model notation (Section 5.1), parsed: "200H-200H-784V", "200H~784V", "392V-240H-240H-392V".

Read left to right in the order of conditional sampling.  Integers are numbers of stochastic units;
``H`` is a latent layer, ``V`` an observed one; ``-`` is a linear map from the previous layer and ``~``
a non-linear one (two tanh layers, App. D.1).  A leftmost ``H`` has a learned unconditional prior.
A leftmost ``V`` makes the model conditional (structured prediction, Section 5.3: the top half of the
digit is observed and the bottom half predicted).  The arity of the latent units is not part of the
notation (the paper's App. E gives it beside the model); ``n``-ary layers of ``U`` units hold
``U / log2(n)`` independent ``n``-way nodes whose values are the corners of ``{-1, 1}^{log2 n}``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["Layer", "ModelSpec", "parse_notation"]

_TOKEN = re.compile(r"(\d+)([HV])")
_LINKS = {"-": "linear", "~": "nonlinear"}
# the typographic forms that appear in the paper's text
_NORMALISE = str.maketrans({"\u2013": "-", "\u2212": "-", "\u223c": "~", "\u02dc": "~"})


@dataclass(frozen=True)
class Layer:
    units: int
    kind: str  # "H" latent or "V" visible


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model: ``layers`` left to right, ``links[i]`` joins ``layers[i]`` to ``layers[i + 1]``."""

    notation: str
    layers: tuple
    links: tuple
    arity: int = 2

    @property
    def conditional(self) -> bool:
        """True for structured prediction (a visible layer on the left)."""
        return self.layers[0].kind == "V"

    @property
    def latent(self) -> tuple:
        """The latent layers, left to right (top of the generative model first)."""
        return tuple(layer for layer in self.layers if layer.kind == "H")

    @property
    def nonlinear(self) -> bool:
        return "nonlinear" in self.links

    @property
    def bits_per_node(self) -> int:
        return int(math.log2(self.arity))


def parse_notation(notation: str, arity: int = 2) -> ModelSpec:
    """Parse the paper's notation; raise ``ValueError`` naming what is wrong and what is accepted."""
    if not isinstance(notation, str) or not notation.strip():
        raise ValueError(f"model notation must be a non-empty string like '200H-784V'; got {notation!r}")
    if arity not in (2, 4, 8):
        raise ValueError(f"arity must be 2, 4 or 8 (the paper's App. E); got {arity!r}")
    text = notation.strip().translate(_NORMALISE).replace(" ", "")
    parts = re.split(r"([-~])", text)
    tokens, links = parts[0::2], parts[1::2]
    layers = []
    for tok in tokens:
        m = _TOKEN.fullmatch(tok)
        if not m:
            raise ValueError(
                f"model notation {notation!r}: cannot read layer {tok!r}; a layer is a unit count followed "
                "by H (latent) or V (visible), layers joined by '-' (linear) or '~' (non-linear), "
                "e.g. '200H~200H~784V' or '392V-240H-240H-392V'"
            )
        units = int(m.group(1))
        if units <= 0:
            raise ValueError(f"model notation {notation!r}: layer {tok!r} must have at least one unit")
        layers.append(Layer(units, m.group(2)))
    if len(layers) < 2:
        raise ValueError(f"model notation {notation!r}: needs at least two layers, e.g. '200H-784V'")
    if layers[-1].kind != "V":
        raise ValueError(f"model notation {notation!r}: the rightmost layer must be visible (V)")
    inner = layers[1:-1]
    if any(layer.kind != "H" for layer in inner) or (layers[0].kind == "V" and not inner):
        raise ValueError(
            f"model notation {notation!r}: visible layers may only stand at the ends, with at least one "
            "latent (H) layer between them"
        )
    bits = int(math.log2(arity))
    for layer in layers:
        if layer.kind == "H" and layer.units % bits:
            raise ValueError(
                f"model notation {notation!r}: a {arity}-ary layer needs a unit count divisible by "
                f"log2({arity}) = {bits}; got {layer.units}"
            )
    return ModelSpec(notation, tuple(layers), tuple(_LINKS[s] for s in links), arity)
