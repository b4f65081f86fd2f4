r"""Claims checked by running code, each with its margin (used by chapters 1 and 2).

A :class:`Check` is one claim of the text turned into a comparison: a measured ``value``, a ``bound``
and the ``relation`` between them (``"<"``: the value must stay below the bound, ``">"``: above it).
A chapter prints it twice:

* in a *checked* cell (compared by nbval on every machine), :meth:`Check.verdict`: the claim, the
  quantity, the bound and whether it holds, for example ``mean within 4.5 SE of 2 mu: max |z| < 4.5:
  True``: the same on any CPU, thread count and supported library version;
* in an *unchecked* cell after it, :meth:`Check.margin`: the measured value beside the bound and the
  share of the tolerance it uses, for example ``max |z| = 1.78 (bound < 4.5, 40% of it)``: these
  figures vary in their last digits between machines, so nbval does not compare them.

The statistical comparisons used by the chapters:

* :func:`z_check`: :math:`|\hat\theta - \theta| / \mathrm{se} < z_{\max}`;
* :func:`variance_check`: a sample variance against a formula, in standard errors of the sample
  variance, :math:`\mathrm{se}(s^2) = \sqrt{(\hat m_4 - s^4)/N}` with :math:`\hat m_4` the fourth
  central sample moment (so heavy-tailed estimators get their honest, wider, error bar);
* :func:`ks_check`: a Kolmogorov--Smirnov test of samples against a CDF, :math:`p > \text{level}`;
* :func:`chi_square_check`: Pearson's goodness-of-fit test of counts against probabilities;
* :func:`abs_check`: an error below a stated tolerance.

Each returns a :class:`Check`; the chapters' own check functions (:mod:`concrete_ref.estimator_checks`,
:mod:`concrete_ref.variational`, :mod:`concrete_ref.gumbel_race`) take the formula under test as an
argument, so that ``tests/test_ch1_ch2_checks.py`` can show that each check fails when the formula is
perturbed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Check",
    "abs_check",
    "z_check",
    "variance_check",
    "ks_check",
    "chi_square_check",
    "all_passed",
    "verdicts",
    "margins",
]


@dataclass(frozen=True)
class Check:
    """One claim: ``value relation bound`` (``relation`` is ``"<"`` or ``">"``)."""

    claim: str
    quantity: str
    value: float
    bound: float
    relation: str = "<"

    def __post_init__(self):
        if self.relation not in ("<", ">"):
            raise ValueError(f"relation must be '<' or '>'; got {self.relation!r}")
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "bound", float(self.bound))

    @property
    def passed(self) -> bool:
        """Whether the claim holds (a NaN value never passes)."""
        if np.isnan(self.value):
            return False
        return bool(self.value < self.bound) if self.relation == "<" else bool(self.value > self.bound)

    def verdict(self) -> str:
        """The portable line: claim, quantity, bound and the outcome (no measured figure)."""
        return f"{self.claim}: {self.quantity} {self.relation} {self.bound:g}: {self.passed}"

    def margin(self) -> str:
        """The measured value beside its bound and the share of the tolerance it uses (machine-dependent)."""
        share = ""
        if self.bound > 0 and np.isfinite(self.value) and self.value >= 0:
            ratio = self.value / self.bound
            share = f", {ratio:.0%} of it" if ratio <= 10 else f", {ratio:.3g} times it"
        if self.relation == ">" and share:
            share = f", {self.value / self.bound:.3g} times it"
        return f"{self.claim}: {self.quantity} = {self.value:.3g} (bound {self.relation} {self.bound:g}{share})"


def all_passed(checks) -> bool:
    """True when every check in ``checks`` holds."""
    return all(c.passed for c in checks)


def verdicts(checks) -> str:
    """The checked cell's text: one :meth:`Check.verdict` per line."""
    return "\n".join(c.verdict() for c in checks)


def margins(checks) -> str:
    """The unchecked cell's text: one :meth:`Check.margin` per line."""
    return "\n".join(c.margin() for c in checks)


def abs_check(claim: str, error, tolerance: float, quantity: str = "max |error|") -> Check:
    """``max |error| < tolerance`` (``error`` may be an array; NaN fails)."""
    err = np.abs(np.asarray(error, dtype=np.float64))
    value = float(np.max(err)) if err.size else 0.0
    if np.any(np.isnan(err)):
        value = float("nan")
    return Check(claim, quantity, value, tolerance, "<")


def z_check(claim: str, estimate, target, se, bound: float = 4.5, quantity: str = "max |z|") -> Check:
    r"""The largest :math:`|\text{estimate} - \text{target}| / \text{se}` over the entries, below ``bound``."""
    estimate, target, se = (np.asarray(v, dtype=np.float64) for v in (estimate, target, se))
    diff = np.abs(estimate - target)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / se, np.where(diff == 0, 0.0, np.inf))
    return Check(claim, quantity, float(np.max(z)), bound, "<")


def sample_variance_se(samples) -> tuple[float, float]:
    r"""(sample variance :math:`s^2`, its standard error :math:`\sqrt{(\hat m_4 - s^4)/N}`) of a 1-d sample."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    c = x - x.mean()
    s2 = float(np.mean(c**2))
    m4 = float(np.mean(c**4))
    return s2, float(np.sqrt(max(m4 - s2**2, 0.0) / x.size))


def variance_check(claim: str, samples_list, variances, bound: float = 4.5,
                   quantity: str = "max |z| of the variances") -> Check:
    """Sample variances of each sample in ``samples_list`` against ``variances``, in standard errors."""
    pairs = [sample_variance_se(s) for s in samples_list]
    return z_check(claim, [p[0] for p in pairs], variances, [p[1] for p in pairs], bound, quantity)


def ks_check(claim: str, samples, cdf, level: float = 1e-3, args=()) -> Check:
    """Kolmogorov--Smirnov test of ``samples`` against ``cdf``: the p-value must exceed ``level``."""
    from scipy import stats

    return Check(claim, "KS p-value", float(stats.kstest(np.asarray(samples), cdf, args=args).pvalue), level, ">")


def chi_square_check(claim: str, counts, probs, level: float = 1e-3) -> Check:
    """Pearson's chi-square test of ``counts`` against ``probs`` (normalised): p-value above ``level``."""
    from scipy import stats

    counts = np.asarray(counts, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    expected = counts.sum() * probs / probs.sum()
    return Check(claim, "chi-square p-value", float(stats.chisquare(counts, expected).pvalue), level, ">")
