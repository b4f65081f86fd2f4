r"""Numerical checks that show their margin: a measured quantity, the tolerance it is held to, the verdict.

A chapter claims something ("the density integrates to 1"), computes a number that would be small if the
claim holds (:math:`\max |\int p - 1|` over the cases tried) and compares it with a tolerance.  A bare
``True`` hides how close the call was; the measured value itself, on the other hand, differs in its last
digits between CPUs, thread counts and library versions, so it cannot appear in an output that nbval
compares.  A :class:`Check` therefore has two renderings:

* :meth:`Check.line` -- the verdict and the tolerance only (``max |error| < 1e-9: True``): the same on
  every machine, for the chapter's checked cells;
* :meth:`Check.margin` and :func:`margin_table` -- the measured value beside the tolerance and their
  ratio (the *margin*: how many times smaller than the tolerance the error is), for unchecked cells.

Three kinds of comparison: ``"<"`` (an error below a tolerance), ``">"`` (a p-value or a count above a
threshold) and ``"=="`` (an exact count, e.g. zero mismatches; the value is an integer and may be shown
in a checked cell).  Nothing here imports matplotlib, IPython or torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Check", "format_number", "report", "margin_table", "all_passed"]


def format_number(value: float) -> str:
    """A tolerance or a measured value in short scientific form: ``1e-9``, ``2.5e-3``, ``0.001``, ``4``.

    Powers of ten are written ``1e-9`` (not Python's ``1e-09``); numbers between 0.001 and 1000 in
    plain notation with at most three significant digits; anything else as ``d.de±x``.
    """
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if 1e-3 <= abs(value) < 1e3:
        return f"{value:.3g}"
    exponent = math.floor(math.log10(abs(value)))
    mantissa = value / 10.0**exponent
    if round(abs(mantissa), 1) >= 10.0:  # 9.99e-10 is written 1.0e-9, not 10.0e-10
        exponent, mantissa = exponent + 1, mantissa / 10.0
    if abs(abs(mantissa) - 1.0) < 1e-9:
        return f"{'-' if value < 0 else ''}1e{exponent}"
    return f"{mantissa:.1f}e{exponent}"


@dataclass(frozen=True)
class Check:
    r"""One claim tested against a tolerance.

    Parameters
    ----------
    claim : str
        What is tested, e.g. ``"(3.4) Jacobian determinant"``.
    measure : str
        The measured quantity, e.g. ``"max relative error"``.
    value : float
        Its measured value (the worst case over ``cases``).
    tolerance : float
        The threshold.
    relation : ``"<"``, ``">"`` or ``"=="``
        Passes when ``value < tolerance``, ``value > tolerance`` or ``value == tolerance``.
    cases : int, optional
        How many cases the worst value is taken over (shown in both renderings).
    """

    claim: str
    measure: str
    value: float
    tolerance: float
    relation: str = "<"
    cases: int | None = None

    def __post_init__(self):
        if self.relation not in ("<", ">", "=="):
            raise ValueError(f"relation must be '<', '>' or '=='; got {self.relation!r}")

    @property
    def passed(self) -> bool:
        """The verdict (``False`` for a NaN value, whatever the relation)."""
        v, t = float(self.value), float(self.tolerance)
        if math.isnan(v):
            return False
        return bool(v < t if self.relation == "<" else v > t if self.relation == ">" else v == t)

    @property
    def ratio(self) -> float:
        """How far inside the tolerance the value is, as a factor (above 1 when the check passes).

        For an upper bound ``value < tolerance``: tolerance/value when both are positive (``inf`` for a
        zero error), value/tolerance when both are negative; for a lower bound the reverse.  ``nan`` for
        ``==`` and where value and tolerance differ in sign or one is 0 (then :attr:`slack` says it).
        """
        v, t = float(self.value), float(self.tolerance)
        if self.relation == "==" or math.isnan(v):
            return math.nan
        if self.relation == "<" and v == 0 and t > 0:
            return math.inf
        if v * t <= 0:
            return math.nan
        upper = self.relation == "<"
        return (t / v if upper else v / t) if v > 0 else (v / t if upper else t / v)

    @property
    def slack(self) -> float:
        """How far inside the tolerance the value is, as a difference: tolerance - value for ``<``,
        value - tolerance for ``>`` (positive when the check passes)."""
        v, t = float(self.value), float(self.tolerance)
        return t - v if self.relation == "<" else v - t

    def _margin_text(self) -> str:
        if math.isnan(float(self.value)):
            return "none (no value)"
        ratio = self.ratio
        if math.isinf(ratio):
            return "no error"
        if math.isnan(ratio):
            return f"slack {format_number(self.slack)}"
        return f"{format_number(ratio)}x"

    def _subject(self) -> str:
        return self.claim + (f" ({self.cases} cases)" if self.cases is not None else "")

    def line(self) -> str:
        """The portable rendering, for checked cells: ``claim (cases): measure < tolerance: True``.

        An ``==`` check prints its integer value, which is exact on every machine.
        """
        if self.relation == "==":
            return f"{self._subject()}: {self.measure} = {int(self.value)} (must be {format_number(self.tolerance)}): {self.passed}"
        return f"{self._subject()}: {self.measure} {self.relation} {format_number(self.tolerance)}: {self.passed}"

    def margin(self) -> str:
        """The measured value beside the tolerance, for unchecked cells (its last digits vary by machine)."""
        if self.relation == "==":
            return f"{self._subject()}: {self.measure} = {int(self.value)} (must be {format_number(self.tolerance)})"
        return (f"{self._subject()}: {self.measure} = {format_number(self.value)} "
                f"(tolerance {self.relation} {format_number(self.tolerance)}; margin {self._margin_text()})")


def report(checks) -> str:
    """The :meth:`Check.line` of each check, one per line (print it in a checked cell)."""
    return "\n".join(c.line() for c in checks)


def all_passed(checks) -> bool:
    """Whether every check passed."""
    return all(c.passed for c in checks)


def margin_table(checks, *, title_claim: str = "claim") -> str:
    r"""A Markdown table of the checks with their measured values, tolerances and margins.

    Columns: claim, cases, the measured quantity, its value, tolerance, margin (tolerance/value for an upper
    bound, value/threshold for a lower bound, or the difference where a ratio means nothing: a
    negative value held below 0), passed.  Display it in an unchecked cell, e.g. with
    ``IPython.display.Markdown``.
    """
    cell = lambda text: str(text).replace("|", "\\|")  # a literal | (as in |error|) must not end a cell
    rows = [f"| {cell(title_claim)} | cases | quantity | measured | tolerance | margin | passed |",
            "|---|---:|---|---:|---:|---:|:---:|"]
    for c in checks:
        if c.relation == "==":
            value, margin = str(int(c.value)), "exact"
        else:
            value, margin = format_number(c.value), c._margin_text()
        rows.append(f"| {cell(c.claim)} | {'' if c.cases is None else c.cases} | {cell(c.measure)} | {value} | "
                    f"{c.relation} {format_number(c.tolerance)} | {margin} | {'yes' if c.passed else '**no**'} |")
    return "\n".join(rows)
