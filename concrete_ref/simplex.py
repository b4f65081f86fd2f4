r"""Geometry of the 2-simplex: barycentric grids, the triangle in the plane, and drawing densities on it.

The Concrete density (paper Eq. 11) on :math:`\Delta^2 = \{x \in [0,1]^3 : x_1 + x_2 + x_3 = 1\}` is a
density with respect to Lebesgue measure on the first two coordinates (the *chart*
:math:`(x_1, x_2)`, with :math:`x_3 = 1 - x_1 - x_2`), in which :math:`\Delta^2` is the right triangle
:math:`\{x_1, x_2 \ge 0,\ x_1 + x_2 \le 1\}` of area :math:`1/2`.

**Grid.**  For a resolution :math:`r`, the lattice points :math:`(i, j, k)/r` with :math:`i + j + k = r`
cut :math:`\Delta^2` into :math:`r^2` congruent small triangles ("cells"), each of area
:math:`1/(2r^2)` in the chart: in the chart square :math:`[i, i+1] \times [j, j+1]` (scaled by
:math:`1/r`) there is a lower cell (always, for :math:`i + j \le r - 1`) and an upper cell (for
:math:`i + j \le r - 2`).  :func:`triangle_cells` returns the cells and their centroids;
:func:`cell_index` says which cell contains a point, so sample counts per cell (a histogram on the
simplex) and density values at the centroids (the midpoint rule, :func:`integrate_on_grid`) line up.
The midpoint rule is exact for affine functions and has error :math:`O(r^{-2})` for smooth ones; it
converges slowly for densities that are singular at the vertices (the Concrete density at
:math:`\lambda \le 1`, where :math:`p \sim \rho^{\lambda - 2}` at distance :math:`\rho` from a vertex).

**Plane.**  :func:`to_plane` maps barycentric coordinates to a point of an equilateral triangle,
:math:`x \mapsto \sum_k x_k c_k` with corners :math:`c_k` (default :data:`CORNERS`: :math:`e_1` bottom
left, :math:`e_2` bottom right, :math:`e_3` top); :func:`from_plane` inverts it.  The map is affine,
so it sends cells to congruent equilateral triangles and preserves ratios of areas.

**Log-ratio coordinates.**  :func:`to_log_ratios` and :func:`from_log_ratios` map the open simplex
:math:`\Delta^{n-1}` onto :math:`\mathbb{R}^{n-1}` and back: :math:`w_k = \log(x_k/x_n)`,
:math:`x = \operatorname{softmax}(w_1, \dots, w_{n-1}, 0)`.  The Jacobian determinant of
:math:`w \mapsto (x_1, \dots, x_{n-1})` is :math:`\prod_{k=1}^n x_k`, so a density :math:`p(x)` on the
simplex becomes :math:`p(x) \prod_k x_k` in :math:`w`, smooth where :math:`p` is singular at the vertices.

**Drawing** (:func:`draw_simplex_density`, :func:`draw_vertex_masses`, :func:`draw_simplex_frame`)
imports matplotlib inside the function, so ``import concrete_ref.simplex`` needs NumPy only.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CORNERS",
    "lattice_points",
    "triangle_cells",
    "cell_area",
    "cell_index",
    "to_plane",
    "from_plane",
    "integrate_on_grid",
    "draw_simplex_density",
    "draw_vertex_masses",
    "from_log_ratios",
    "to_log_ratios",
    "draw_simplex_frame",
]

#: Corners of the equilateral triangle that the vertices e_1, e_2, e_3 of the simplex map to.
CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3.0) / 2.0]])


def _check_resolution(resolution) -> int:
    r = int(resolution)
    if r != resolution or r < 1:
        raise ValueError(f"resolution must be a positive integer; got {resolution!r}")
    return r


def _lattice_ij(r: int):
    """Chart coordinates (i, j), i + j <= r, in the order of :func:`lattice_points`, and a lookup table."""
    i, j = np.meshgrid(np.arange(r + 1), np.arange(r + 1), indexing="ij")
    keep = i + j <= r
    i, j = i[keep], j[keep]
    lookup = np.full((r + 1, r + 1), -1, dtype=np.int64)
    lookup[i, j] = np.arange(i.size)
    return i, j, lookup


def lattice_points(resolution, interior: bool = False) -> np.ndarray:
    r"""The barycentric lattice :math:`\{(i, j, k)/r : i, j, k \in \mathbb{N},\ i + j + k = r\}`.

    Returns an array of shape ``(M, 3)``, ``M = (r+1)(r+2)/2`` (or ``(r-1)(r-2)/2`` points with every
    coordinate positive when ``interior=True``), ordered by ``i`` then ``j``.  Rows sum to 1.
    """
    r = _check_resolution(resolution)
    i, j, _ = _lattice_ij(r)
    k = r - i - j
    pts = np.stack([i, j, k], axis=-1).astype(np.float64) / r
    if interior:
        pts = pts[(i > 0) & (j > 0) & (k > 0)]
    return pts


def _cells_ij(r: int):
    """(i, j, upper) of every cell, in the order of :func:`triangle_cells`, and an (r, r, 2) lookup."""
    i, j = np.meshgrid(np.arange(r), np.arange(r), indexing="ij")
    lower = (i + j <= r - 1)
    upper = (i + j <= r - 2)
    ci = np.concatenate([i[lower], i[upper]])
    cj = np.concatenate([j[lower], j[upper]])
    cu = np.concatenate([np.zeros(int(lower.sum()), bool), np.ones(int(upper.sum()), bool)])
    lookup = np.full((r, r, 2), -1, dtype=np.int64)
    lookup[ci, cj, cu.astype(np.int64)] = np.arange(ci.size)
    return ci, cj, cu, lookup


def triangle_cells(resolution):
    r"""The :math:`r^2` cells of the resolution-``r`` subdivision of :math:`\Delta^2`.

    Returns
    -------
    centroids : ndarray, shape (r**2, 3)
        Barycentric centroids of the cells: every coordinate is at least ``1/(3r)``, so a density that
        is undefined on the boundary of the simplex can be evaluated there.
    triangles : ndarray of int, shape (r**2, 3)
        For each cell, the indices of its three corners in ``lattice_points(r)`` (counter-clockwise
        in the plane of :func:`to_plane`), as :class:`matplotlib.tri.Triangulation` expects.

    Lower cells (corners ``(i,j), (i+1,j), (i,j+1)`` in the scaled chart) come first, then upper
    cells (``(i+1,j), (i+1,j+1), (i,j+1)``); each has chart area ``1/(2 r**2)`` (:func:`cell_area`).
    """
    r = _check_resolution(resolution)
    _, _, lat = _lattice_ij(r)
    ci, cj, cu, _ = _cells_ij(r)
    tri_lower = np.stack([lat[ci, cj], lat[ci + 1, cj], lat[ci, cj + 1]], axis=-1)
    tri_upper = np.stack([lat[ci + 1, cj], lat[np.minimum(ci + 1, r), np.minimum(cj + 1, r)],
                          lat[ci, cj + 1]], axis=-1)
    triangles = np.where(cu[:, None], tri_upper, tri_lower)
    third = np.where(cu, 2.0, 1.0) / 3.0
    x1 = (ci + third) / r
    x2 = (cj + third) / r
    centroids = np.stack([x1, x2, 1.0 - x1 - x2], axis=-1)
    return centroids, triangles


def cell_area(resolution) -> float:
    """Area of one cell in the chart (x1, x2): the simplex has area 1/2, split into r**2 equal cells."""
    r = _check_resolution(resolution)
    return 0.5 / r**2


def cell_index(x, resolution) -> np.ndarray:
    r"""Index (into :func:`triangle_cells`) of the cell that contains each point ``x`` of the simplex.

    ``x`` has shape ``(..., 3)``; only ``x_1, x_2`` are used (the chart), so rows need not sum to 1
    exactly.  Points on a shared edge go to one of the cells that share it; points outside the
    triangle raise ``ValueError`` (beyond a rounding tolerance of 1e-9).
    """
    r = _check_resolution(resolution)
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1:] != (3,):
        raise ValueError(f"x must have 3 barycentric coordinates on its last axis; got shape {x.shape}")
    s1, s2 = r * x[..., 0], r * x[..., 1]
    tol = 1e-9 * r
    if np.any(s1 < -tol) or np.any(s2 < -tol) or np.any(s1 + s2 > r + tol) or not np.all(np.isfinite(x)):
        raise ValueError("x must lie in the simplex: x1, x2 >= 0 and x1 + x2 <= 1")
    i = np.clip(np.floor(s1), 0, r - 1).astype(np.int64)
    j = np.clip(np.floor(s2), 0, r - 1).astype(np.int64)
    j = np.minimum(j, r - 1 - i)  # a point rounded just past the hypotenuse stays in the last cell
    upper = ((s1 - i) + (s2 - j) > 1.0) & (i + j <= r - 2)
    _, _, _, lookup = _cells_ij(r)
    return lookup[i, j, upper.astype(np.int64)]


def to_plane(x, corners=None) -> np.ndarray:
    r"""Barycentric coordinates ``(..., 3)`` to points ``(..., 2)`` of the triangle: :math:`\sum_k x_k c_k`."""
    c = CORNERS if corners is None else np.asarray(corners, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1:] != (3,) or c.shape != (3, 2):
        raise ValueError(f"x must have shape (..., 3) and corners shape (3, 2); got {x.shape}, {c.shape}")
    return x @ c


def from_plane(p, corners=None) -> np.ndarray:
    """Inverse of :func:`to_plane`: points ``(..., 2)`` to barycentric coordinates ``(..., 3)`` (rows sum to 1)."""
    c = CORNERS if corners is None else np.asarray(corners, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if p.shape[-1:] != (2,):
        raise ValueError(f"p must have shape (..., 2); got {p.shape}")
    system = np.vstack([c.T, np.ones(3)])  # columns: corners with a row of ones
    rhs = np.concatenate([p, np.ones(p.shape[:-1] + (1,))], axis=-1)
    return np.linalg.solve(system, rhs[..., None])[..., 0]


def integrate_on_grid(density, resolution) -> float:
    r"""Midpoint rule :math:`\int_{\Delta^2} f \,dx_1 dx_2 \approx \frac{1}{2r^2}\sum_{\text{cells}} f(\text{centroid})`.

    ``density`` maps an array of barycentric points ``(M, 3)`` to values ``(M,)`` (a density with
    respect to the chart measure :math:`dx_1\,dx_2`, like the Concrete density of Eq. 11).
    """
    centroids, _ = triangle_cells(resolution)
    values = np.asarray(density(centroids), dtype=np.float64)
    if values.shape != (centroids.shape[0],):
        raise ValueError(f"density must return shape ({centroids.shape[0]},); got {values.shape}")
    return float(values.sum() * cell_area(resolution))


def _frame(ax, corners, labels, label_pad=0.06, pad=0.12):
    closed = np.vstack([corners, corners[:1]])
    ax.plot(closed[:, 0], closed[:, 1], color="black", lw=1.0)
    if labels is not None:
        centre = corners.mean(axis=0)
        for corner, label in zip(corners, labels):
            away = corner - centre
            pos = corner + label_pad * away / np.linalg.norm(away)
            ax.text(pos[0], pos[1], label, ha="center", va="center")
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_xlim(corners[:, 0].min() - pad, corners[:, 0].max() + pad)
    ax.set_ylim(corners[:, 1].min() - pad, corners[:, 1].max() + pad)


DEFAULT_LABELS = ("$e_1$", "$e_2$", "$e_3$")


def draw_simplex_density(ax, density, resolution=None, *, cmap="viridis", vmin=0.0, vmax=None,
                         clip_quantile=None, labels=DEFAULT_LABELS, corners=None, pad=0.12):
    r"""Shade the triangle by a function on :math:`\Delta^2`, one flat colour per cell.

    Parameters
    ----------
    ax : matplotlib Axes
    density : callable or array_like
        Either a function from barycentric points ``(M, 3)`` to values ``(M,)``, evaluated at the
        cell centroids of :func:`triangle_cells`, or the ``r**2`` cell values themselves (for example
        a histogram: counts per :func:`cell_index` divided by ``N * cell_area(r)``).
    resolution : int
        Cells per edge ``r``; inferred from the length of ``density`` when it is an array, else 60.
    vmin, vmax : float
        Colour limits.  ``vmax=None`` uses the largest value, or the ``clip_quantile`` quantile of
        the values when given (the Concrete density is unbounded at the vertices for
        :math:`\lambda \le 1`, so a colour scale up to its maximum cell would show one bright corner).
    labels : sequence of 3 str or None
        Vertex labels.
    corners : array (3, 2), optional
        Where the vertices go in the plane (default :data:`CORNERS`).
    pad : float
        Margin around the triangle in plane units (use the same value in panels that sit side by side).

    Returns
    -------
    The :class:`matplotlib.collections.PolyCollection` (pass it to ``colorbar``).
    """
    from matplotlib.tri import Triangulation

    if callable(density):
        r = 60 if resolution is None else _check_resolution(resolution)
        centroids, triangles = triangle_cells(r)
        values = np.asarray(density(centroids), dtype=np.float64)
    else:
        values = np.asarray(density, dtype=np.float64)
        r = int(round(np.sqrt(values.size))) if resolution is None else _check_resolution(resolution)
        centroids, triangles = triangle_cells(r)
    if values.shape != (r * r,):
        raise ValueError(f"need one value per cell, shape ({r * r},) for resolution {r}; got {values.shape}")
    c = CORNERS if corners is None else np.asarray(corners, dtype=np.float64)
    xy = to_plane(lattice_points(r), c)
    if vmax is None:
        finite = values[np.isfinite(values)]
        vmax = float(np.quantile(finite, clip_quantile) if clip_quantile is not None else finite.max())
    mesh = ax.tripcolor(Triangulation(xy[:, 0], xy[:, 1], triangles), facecolors=values,
                        cmap=cmap, vmin=vmin, vmax=vmax, shading="flat", edgecolors="none")
    _frame(ax, c, labels, pad=pad)
    return mesh


def draw_vertex_masses(ax, masses, *, max_radius=0.12, facecolor="white", edgecolor="black",
                       labels=DEFAULT_LABELS, corners=None, pad=None):
    r"""The :math:`\lambda = 0` panel: a circle at each vertex with area proportional to its mass.

    ``masses`` are the probabilities :math:`\alpha_k / \sum_i \alpha_i` (any non-negative weights;
    they are scaled so the largest circle has radius ``max_radius`` in plane units).  ``pad`` is the
    margin around the triangle (default ``0.12 + max_radius``, so that the circles are not clipped).
    """
    from matplotlib.patches import Circle

    m = np.asarray(masses, dtype=np.float64)
    if m.shape != (3,) or np.any(m < 0) or not np.all(np.isfinite(m)) or m.max() <= 0:
        raise ValueError(f"masses must be 3 non-negative finite numbers, not all 0; got {masses!r}")
    c = CORNERS if corners is None else np.asarray(corners, dtype=np.float64)
    radii = max_radius * np.sqrt(m / m.max())
    patches = []
    for corner, radius in zip(c, radii):
        circle = Circle(corner, radius, facecolor=facecolor, edgecolor=edgecolor, lw=1.2, zorder=3)
        ax.add_patch(circle)
        patches.append(circle)
    _frame(ax, c, labels, label_pad=0.06 + max_radius, pad=0.12 + max_radius if pad is None else pad)
    return patches


def from_log_ratios(w):
    r"""Log-ratio coordinates ``(..., n-1)`` to the simplex ``(..., n)``: :math:`x = \operatorname{softmax}(w, 0)`.

    Normalised by division after subtracting :math:`\max(0, \max_k w_k)`, so no coordinate overflows;
    autograd-traceable.  Inverse of :func:`to_log_ratios`.
    """
    import autograd.numpy as anp

    zeros = np.zeros(np.shape(w)[:-1] + (1,))
    full = anp.concatenate([w, zeros], axis=-1)
    e = anp.exp(full - anp.maximum(anp.max(w, axis=-1, keepdims=True), 0.0))
    return e / anp.sum(e, axis=-1, keepdims=True)


def to_log_ratios(x) -> np.ndarray:
    r"""Points of the open simplex ``(..., n)`` to log-ratio coordinates :math:`w_k = \log(x_k / x_n)`, ``(..., n-1)``."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] < 2:
        raise ValueError(f"x must have at least 2 coordinates on its last axis; got shape {x.shape}")
    return np.log(x[..., :-1]) - np.log(x[..., -1:])


def draw_simplex_frame(ax, *, labels=DEFAULT_LABELS, corners=None, pad=0.12):
    r"""The empty triangle with its vertex labels (for drawing points or paths on :math:`\Delta^2`)."""
    c = CORNERS if corners is None else np.asarray(corners, dtype=np.float64)
    _frame(ax, c, labels, pad=pad)
    return ax
