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

__all__ = ["Layer", "ModelSpec", "MAX_NOTATION_LENGTH", "normalise_notation", "parse_notation"]

# ASCII digits only: ``\d`` would also match other scripts' digits (which ``int`` reads), so "２００H-784V"
# would parse as 200 units and still name its files with the full-width digits
_TOKEN = re.compile(r"([0-9]+)([HV])", re.ASCII)
#: the longest notation accepted (the paper's longest, "392V-240H-240H-240H-392V", has 24 characters); the
#: notation becomes part of the run's file names
MAX_NOTATION_LENGTH = 200
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


def normalise_notation(notation: str) -> str:
    """The canonical ASCII form of a model string (the form that goes into file names), or ``ValueError``.

    The paper's typographic dashes and tildes (en dash, minus sign, tilde operator, small tilde) become
    ``-`` and ``~``; nothing else is rewritten.  Refused, naming the problem: a non-string or empty string,
    one over :data:`MAX_NOTATION_LENGTH` characters, whitespace anywhere (spaces, tabs, newlines), any
    other non-ASCII character (e.g. non-ASCII digits), and unit counts with leading zeros ("0200H": the
    same model as "200H" under another file name).  The layer grammar itself is :func:`parse_notation`'s.
    """
    if not isinstance(notation, str) or not notation:
        raise ValueError(f"model notation must be a non-empty string like '200H-784V'; got {notation!r}")
    if len(notation) > MAX_NOTATION_LENGTH:
        raise ValueError(f"model notation has {len(notation)} characters; at most {MAX_NOTATION_LENGTH} "
                         f"are accepted (it becomes part of file names): {notation[:40]!r}...")
    space = next((ch for ch in notation if ch.isspace()), None)
    if space is not None:
        raise ValueError(f"model notation {notation!r} contains whitespace ({space!r}); write the layers "
                         "without spaces, e.g. '200H~200H~784V'")
    text = notation.translate(_NORMALISE)
    other = next((ch for ch in text if not ch.isascii()), None)
    if other is not None:
        raise ValueError(f"model notation {notation!r} contains the non-ASCII character {other!r} "
                         f"(U+{ord(other):04X}); use ASCII digits, H, V, '-' and '~', e.g. '200H~784V'")
    for count in re.findall(r"[0-9]+", text):
        if not int(count):
            raise ValueError(f"model notation {notation!r}: a layer must have at least one unit; got {count!r}")
        if count.startswith("0"):
            raise ValueError(f"model notation {notation!r}: unit count {count!r} has a leading zero; "
                             f"write it as {int(count)}")
    return text


def parse_notation(notation: str, arity: int = 2) -> ModelSpec:
    """Parse the paper's notation; raise ``ValueError`` naming what is wrong and what is accepted.

    The string is first brought to its canonical form by :func:`normalise_notation` (or refused there);
    ``ModelSpec.notation`` holds that form."""
    if arity not in (2, 4, 8):
        raise ValueError(f"arity must be 2, 4 or 8 (the paper's App. E); got {arity!r}")
    text = normalise_notation(notation)
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
    return ModelSpec(text, tuple(layers), tuple(_LINKS[s] for s in links), arity)
