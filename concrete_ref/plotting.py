"""One plotting style for every chapter: sizes, a colour-blind-safe palette, light/dark-safe figures.

Figures are drawn on an opaque white background (so they read on the book's dark theme too),
with the Okabe-Ito palette (distinguishable under the common colour-vision deficiencies).
Importing this module imports matplotlib; the numerical core does not.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt

__all__ = ["PALETTE", "SEQUENTIAL_CMAP", "use_book_style", "new_figure"]

#: Okabe & Ito (2008) colour-blind-safe palette, in the order chapters use it.
PALETTE = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
}

#: Perceptually uniform colour map for densities (readable in grey scale too).
SEQUENTIAL_CMAP = "viridis"


def use_book_style() -> None:
    """Set matplotlib's rcParams for the book (call once at the top of a chapter)."""
    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "figure.facecolor": "white",
            "axes.facecolor": "white",
            "savefig.facecolor": "white",
            "savefig.transparent": False,
            "font.size": 11,
            "axes.titlesize": 12,
            "axes.labelsize": 11,
            "legend.fontsize": 10,
            "xtick.labelsize": 10,
            "ytick.labelsize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.prop_cycle": mpl.cycler(color=list(PALETTE.values())),
            "image.cmap": SEQUENTIAL_CMAP,
            "figure.constrained_layout.use": True,
        }
    )


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.0, height: float = 3.2, **kwargs):
    """``plt.subplots`` with panel sizes in inches per panel, in the book's style."""
    use_book_style()
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **kwargs)


def plain_log_ticks(ax, axis: str = "y") -> None:
    """Label a log-scaled axis with plain numbers (0.1, 1, 10 or 55, 60, 65) instead of powers of ten.

    Over less than a decade a log axis has at most one major tick (a power of ten) and matplotlib
    labels minor ticks as ``7.2 x 10^1``; there the ticks are placed by ``MaxNLocator`` at round values.
    Over one to three decades the ticks are 1, 2 and 5 times powers of ten; over more, the default
    decade ticks are kept and only their labels change.
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    if lo > 0 and hi / lo < 10:
        target.set_major_locator(MaxNLocator(nbins=6))
    elif lo > 0 and hi / lo < 1000:
        target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())
