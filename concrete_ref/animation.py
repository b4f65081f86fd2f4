r"""One Gumbel draw, many temperatures: the path of a Concrete sample from the centroid to a vertex.

Fix the noise :math:`G` and let the temperature fall.  Eq. (10) gives a curve in the simplex,

.. math:: X(\lambda) = \operatorname{softmax}\big((\log\alpha + G)/\lambda\big), \qquad \lambda \in (0, \infty),

which starts at the centroid :math:`(1/n, \dots, 1/n)` as :math:`\lambda \to \infty` (the softmax of
a vector near 0) and ends at the vertex :math:`e_k` of :math:`k = \arg\max_i (\log\alpha_i + G_i)` as
:math:`\lambda \to 0` (the Gumbel-max sample).  In log-ratio coordinates
:math:`w_k = \log(X_k/X_n) = (Z_k - Z_n)/\lambda`, with :math:`Z = \log\alpha + G`, the curve is a
straight ray from the origin traversed at speed :math:`1/\lambda`; on the triangle it is a curve, and
its largest coordinate is the same at every temperature (Proposition 1b).

:func:`temperature_path` computes the curve (in log space, through
:func:`~concrete_ref.exp_concrete_transform`); :func:`draw_paths` draws the paths of several draws up
to a temperature on the triangle of :mod:`concrete_ref.simplex`; :func:`path_animation` turns them
into a :class:`matplotlib.animation.FuncAnimation` (for ``to_jshtml``: small figure, few frames, low
dpi, so that the frames embedded in a notebook stay small).  Matplotlib is imported inside the drawing
functions, so ``import concrete_ref.animation`` needs NumPy only.
"""

from __future__ import annotations

import re

import numpy as np

from . import simplex

__all__ = ["temperature_path", "path_checks", "draw_paths", "path_animation", "DEFAULT_COLORS"]

#: One colour per vertex of the triangle (Okabe-Ito blue, orange, green): a path is drawn in the colour
#: of the vertex it ends at.
DEFAULT_COLORS = ("#0072B2", "#E69F00", "#009E73")


def temperature_path(logits, gumbels, temperatures) -> np.ndarray:
    r""":math:`X(\lambda) = \operatorname{softmax}((\log\alpha + G)/\lambda)` for each temperature.

    Parameters
    ----------
    logits : array_like, shape (n,)
        :math:`\log\alpha`.
    gumbels : array_like, shape (..., n)
        Fixed Gumbel noise, one row per draw.
    temperatures : array_like, shape (T,)
        Positive temperatures (any order).

    Returns
    -------
    ndarray, shape (T, ..., n): the point of the simplex of each draw at each temperature.
    """
    from .concrete import exp_concrete_transform

    g = np.asarray(gumbels, dtype=np.float64)
    return np.stack([np.exp(exp_concrete_transform(logits, float(lam), g)) for lam in np.asarray(temperatures)])


def path_checks(logits, gumbels, temperatures, *, path=temperature_path):
    r"""The two facts the picture shows, as :class:`~concrete_ref.checks.Check`\ s.

    1. The largest coordinate of :math:`X(\lambda)` is the same at every temperature and is the
       Gumbel-max sample :math:`\arg\max_k (\log\alpha_k + G_k)` (mismatches == 0).
    2. The path is a straight ray in log-ratio coordinates: :math:`\lambda \log(X_k/X_n) = Z_k - Z_n`
       at every temperature (largest absolute difference < 1e-9).

    ``path`` computes the paths (default :func:`temperature_path`); pass another to see a check fail.
    """
    from .checks import Check

    logits = np.asarray(logits, dtype=np.float64)
    g = np.asarray(gumbels, dtype=np.float64)
    lam = np.asarray(temperatures, dtype=np.float64)
    paths = path(logits, g, lam)
    z = logits + g
    mismatches = int(np.count_nonzero(paths.argmax(-1) != z.argmax(-1)[None]))
    ray = lam.reshape((-1,) + (1,) * (paths.ndim - 1)) * (np.log(paths[..., :-1]) - np.log(paths[..., -1:]))
    ray_error = float(np.max(np.abs(ray - (z[..., :-1] - z[..., -1:])[None])))
    cases = paths.shape[0] * int(np.prod(paths.shape[1:-1]))
    return [
        Check("largest coordinate of X(lambda) = Gumbel-max sample, at every lambda", "mismatches", mismatches, 0,
              "==", cases=cases),
        Check("straight ray in log-ratios: lambda log(X_k/X_n) = Z_k - Z_n", "max |difference|", ray_error, 1e-9,
              cases=cases),
    ]


def draw_paths(ax, paths, upto, *, colors=DEFAULT_COLORS, trail_width=1.4, marker_size=6.0,
               labels=simplex.DEFAULT_LABELS, frame=True):
    r"""Draw the paths of several draws on the triangle, from their start to frame ``upto``.

    ``paths`` is the output of :func:`temperature_path` for ``n = 3``, shape ``(T, D, 3)``.  Each draw's
    trail is a line in the colour of the vertex it ends at (its largest coordinate at the last frame);
    its position at frame ``upto`` a dot; a cross marks the centroid.  ``frame=False`` leaves out the
    triangle and its labels (when a density is drawn underneath with
    :func:`~concrete_ref.simplex.draw_simplex_density`).  Returns the list of artists.
    """
    paths = np.asarray(paths, dtype=np.float64)
    if paths.ndim != 3 or paths.shape[-1] != 3:
        raise ValueError(f"paths must have shape (T, D, 3); got {paths.shape}")
    if frame:
        simplex.draw_simplex_frame(ax, labels=labels)
    ax.plot(*simplex.to_plane(np.full(3, 1 / 3)), marker="+", color="0.4", ms=8, zorder=1)
    artists = []
    ends = paths[-1].argmax(-1)
    for d in range(paths.shape[1]):
        xy = simplex.to_plane(paths[: upto + 1, d])
        color = colors[ends[d]]
        artists += ax.plot(xy[:, 0], xy[:, 1], color=color, lw=trail_width, alpha=0.8, zorder=2)
        artists += ax.plot(xy[-1, 0], xy[-1, 1], "o", color=color, ms=marker_size, mec="black", mew=0.6, zorder=3)
    return artists


def _palette_savefig(fig, colors):
    """Wrap ``fig.savefig`` so that PNG frames are written at the figure's own dpi with a small palette.

    ``Animation.to_jshtml`` saves every frame with ``savefig(format="png", dpi=rcParams["savefig.dpi"])``
    and embeds it in base64.  Line drawings need few colours: quantised to ``colors`` colours (8-bit
    palette PNG) a frame takes a fifth of the bytes, so an animation of a few dozen frames stays well
    under 200 kB in the notebook.  Other formats are saved unchanged.
    """
    import io

    original = fig.savefig

    def savefig(fname, *args, **kwargs):
        if kwargs.get("format") != "png" or colors is None:
            return original(fname, *args, **kwargs)
        from PIL import Image

        kwargs["dpi"] = fig.dpi
        buffer = io.BytesIO()
        original(buffer, *args, **kwargs)
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
        image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(fname, format="png", optimize=True)

    fig.savefig = savefig


def path_animation(paths, temperatures, *, size=(2.6, 2.5), dpi=90, interval=200, colors=DEFAULT_COLORS,
                   palette=32):
    r"""An animation of :func:`draw_paths` over the temperatures, one frame per temperature.

    ``size`` is the figure size in inches and ``dpi`` its resolution (2.6 x 2.5 inches at 90 dpi is
    234 x 225 pixels per frame, whatever ``savefig.dpi`` says); ``interval`` is the delay between frames
    in milliseconds; PNG frames are quantised to ``palette`` colours (``None``: full colour).  Returns the
    :class:`~matplotlib.animation.FuncAnimation` (its figure is closed, so it is not shown a second time
    as a still); display it with ``IPython.display.HTML(animation.to_jshtml())``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    temperatures = np.asarray(temperatures, dtype=np.float64)
    paths = np.asarray(paths, dtype=np.float64)
    if paths.shape[0] != temperatures.size:
        raise ValueError(f"paths has {paths.shape[0]} frames but there are {temperatures.size} temperatures")
    fig, ax = plt.subplots(figsize=size, dpi=dpi, layout="constrained")
    _palette_savefig(fig, palette)

    def frame(i):
        ax.clear()
        draw_paths(ax, paths, i, colors=colors, trail_width=1.2, marker_size=5.0)
        ax.set_title(rf"$\lambda = {temperatures[i]:.3g}$", fontsize=10)
        return []

    anim = FuncAnimation(fig, frame, frames=temperatures.size, interval=interval, blit=False)
    plt.close(fig)
    return anim


_FONT_AWESOME_CDN = re.compile(r'<link[^>]*font-awesome[^>]*>')


def offline_jshtml(anim, **kwargs) -> str:
    """``anim.to_jshtml(**kwargs)`` without matplotlib's font-awesome 4.4 stylesheet from a CDN (a failed
    request, a console error, on a page read offline); the book's theme ships its own icon font."""
    return _FONT_AWESOME_CDN.sub("", anim.to_jshtml(**kwargs))
