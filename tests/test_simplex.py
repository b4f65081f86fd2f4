"""Simplex geometry helpers: lattice and cells, cell lookup, the plane map, midpoint-rule integration, drawing."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln

import concrete_ref as cr
from concrete_ref import simplex as sx

ALPHA3 = np.log([2.0, 0.5, 1.0])  # the paper's Figure 2 location


@pytest.mark.parametrize("r", [1, 2, 5, 17])
def test_lattice_points_on_simplex(r):
    pts = sx.lattice_points(r)
    assert pts.shape == ((r + 1) * (r + 2) // 2, 3)
    np.testing.assert_allclose(pts.sum(-1), 1.0, atol=1e-15)
    assert np.all(pts >= 0)
    np.testing.assert_allclose(pts * r, np.round(pts * r), atol=1e-12)  # on the lattice
    assert len({tuple(np.round(p * r).astype(int)) for p in pts}) == len(pts)  # no duplicates
    inner = sx.lattice_points(r, interior=True)
    assert inner.shape == (max(r - 1, 0) * max(r - 2, 0) // 2, 3)
    assert np.all(inner > 0)


def _chart_area(tri_xy):
    a, b, c = tri_xy[..., 0, :], tri_xy[..., 1, :], tri_xy[..., 2, :]
    return 0.5 * ((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
                  - (c[..., 0] - a[..., 0]) * (b[..., 1] - a[..., 1]))


@pytest.mark.parametrize("r", [1, 2, 3, 10, 40])
def test_cells_partition_the_simplex(r):
    centroids, triangles = sx.triangle_cells(r)
    pts = sx.lattice_points(r)
    assert centroids.shape == (r * r, 3) and triangles.shape == (r * r, 3)
    assert triangles.min() >= 0 and triangles.max() < len(pts)
    np.testing.assert_allclose(centroids.sum(-1), 1.0, atol=1e-14)
    assert centroids.min() >= 1.0 / (3 * r) - 1e-14  # strictly inside, away from the boundary
    # each centroid is the mean of its cell's corners
    np.testing.assert_allclose(pts[triangles].mean(axis=1), centroids, atol=1e-14)
    # every cell has signed chart area +1/(2 r^2) (counter-clockwise), and they add up to 1/2
    areas = _chart_area(pts[triangles][..., :2])
    np.testing.assert_allclose(areas, sx.cell_area(r), rtol=1e-10)
    assert areas.sum() == pytest.approx(0.5, rel=1e-12)
    # no two cells are the same
    assert len({tuple(sorted(t)) for t in triangles.tolist()}) == r * r
    # each centroid is found in its own cell
    np.testing.assert_array_equal(sx.cell_index(centroids, r), np.arange(r * r))


@pytest.mark.parametrize("r", [1, 3, 8])
def test_cell_index_contains_the_point(r):
    rng = np.random.default_rng(0)
    x = rng.dirichlet([0.5, 1.0, 2.0], size=5000)
    x = np.vstack([x, np.eye(3), sx.lattice_points(r)])  # vertices and lattice points are edge cases
    idx = sx.cell_index(x, r)
    assert idx.min() >= 0 and idx.max() < r * r
    corners = sx.lattice_points(r)[sx.triangle_cells(r)[1][idx]]  # (M, 3 corners, 3 coords)
    # barycentric coordinates of x with respect to its cell: all >= 0 (up to rounding)
    local = np.linalg.solve(np.swapaxes(corners, -1, -2), x[..., None])[..., 0]
    assert local.min() > -1e-9
    np.testing.assert_allclose(local.sum(-1), 1.0, atol=1e-9)


def test_cell_index_histogram_matches_uniform():
    """Uniform points on the simplex (Dirichlet(1,1,1)) fall in each of the r^2 equal-area cells
    with probability 1/r^2: chi-square goodness of fit at level 1e-3."""
    r, n = 6, 200_000
    x = np.random.default_rng(1).dirichlet(np.ones(3), size=n)
    counts = np.bincount(sx.cell_index(x, r), minlength=r * r)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_cell_index_rejects_points_outside():
    with pytest.raises(ValueError, match="simplex"):
        sx.cell_index(np.array([0.7, 0.7, -0.4]), 4)
    with pytest.raises(ValueError, match="3 barycentric"):
        sx.cell_index(np.array([0.5, 0.5]), 4)
    with pytest.raises(ValueError, match="resolution"):
        sx.triangle_cells(0)


def test_plane_map_vertices_and_inverse():
    np.testing.assert_allclose(sx.to_plane(np.eye(3)), sx.CORNERS, atol=1e-15)
    np.testing.assert_allclose(sx.to_plane(np.full(3, 1 / 3)), sx.CORNERS.mean(0), atol=1e-15)
    x = np.random.default_rng(2).dirichlet([1.0, 2.0, 3.0], size=(4, 50))
    back = sx.from_plane(sx.to_plane(x))
    np.testing.assert_allclose(back, x, atol=1e-13)
    np.testing.assert_allclose(back.sum(-1), 1.0, atol=1e-13)
    # equilateral with unit sides
    d = np.linalg.norm(sx.CORNERS[:, None] - sx.CORNERS[None], axis=-1)
    np.testing.assert_allclose(d[~np.eye(3, dtype=bool)], 1.0, atol=1e-15)
    # custom corners
    corners = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    np.testing.assert_allclose(sx.to_plane(np.eye(3), corners), corners)
    np.testing.assert_allclose(sx.from_plane(sx.to_plane(x, corners), corners), x, atol=1e-13)


def test_plane_map_preserves_area_ratios():
    r = 7
    pts, (_, triangles) = sx.lattice_points(r), sx.triangle_cells(r)
    planar = _chart_area(sx.to_plane(pts)[triangles])
    np.testing.assert_allclose(planar, (np.sqrt(3) / 4) / r**2, rtol=1e-10)  # equilateral, side 1/r


def test_midpoint_rule_exact_for_affine_functions():
    # the uniform density on the simplex is 2 in the chart; an affine function integrates exactly
    assert sx.integrate_on_grid(lambda x: np.full(len(x), 2.0), 3) == pytest.approx(1.0, abs=1e-14)
    f = lambda x: 3.0 * x[:, 0] - 2.0 * x[:, 1] + 5.0 * x[:, 2]  # mean over simplex = (3 - 2 + 5) / 3
    assert sx.integrate_on_grid(f, 5) == pytest.approx(0.5 * 2.0, abs=1e-13)


def _dirichlet_density(a):
    a = np.asarray(a, float)
    log_norm = gammaln(a.sum()) - gammaln(a).sum()
    return lambda x: np.exp(log_norm + ((a - 1) * np.log(x)).sum(-1))


def test_midpoint_rule_converges_at_second_order():
    """A smooth density (Dirichlet(2, 3, 4)): integral 1, error O(r^-2)."""
    f = _dirichlet_density([2.0, 3.0, 4.0])
    errors = [abs(sx.integrate_on_grid(f, r) - 1.0) for r in (25, 50, 100)]
    assert errors[-1] < 2e-4
    assert 3.0 < errors[0] / errors[1] < 5.0 and 3.0 < errors[1] / errors[2] < 5.0


def test_concrete_density_integrates_on_grid():
    """Eq. 11 at lambda = 2 (bounded on the simplex, paper's alpha) integrates to 1 by the midpoint rule."""
    f = lambda x: np.exp(cr.concrete_log_density(x, ALPHA3, 2.0))
    assert sx.integrate_on_grid(f, 200) == pytest.approx(1.0, abs=1e-3)


def test_import_is_numpy_only():
    code = "import sys, concrete_ref.simplex; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_drawing_functions():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3)
    f = lambda x: np.exp(cr.concrete_log_density(x, ALPHA3, 1.0))
    mesh = sx.draw_simplex_density(axes[0], f, resolution=20, clip_quantile=0.95)
    assert mesh.get_array().size == 400
    centroids, _ = sx.triangle_cells(20)
    values = f(centroids)
    assert mesh.get_clim() == (0.0, pytest.approx(np.quantile(values, 0.95)))
    mesh = sx.draw_simplex_density(axes[1], values)  # cell values; resolution inferred
    np.testing.assert_allclose(mesh.get_array(), values)
    with pytest.raises(ValueError, match="one value per cell"):
        sx.draw_simplex_density(axes[1], values[:-1])
    circles = sx.draw_vertex_masses(axes[2], [2 / 3.5, 0.5 / 3.5, 1 / 3.5], max_radius=0.1)
    radii = np.array([c.get_radius() for c in circles])
    np.testing.assert_allclose(radii**2 / (radii**2).sum(), [2 / 3.5, 0.5 / 3.5, 1 / 3.5])  # area ∝ mass
    lo, hi = axes[2].get_xlim()
    assert lo <= sx.CORNERS[:, 0].min() - radii.max() and hi >= sx.CORNERS[:, 0].max() + radii.max()  # not clipped
    assert axes[2].get_ylim()[1] >= sx.CORNERS[:, 1].max() + radii.max()
    with pytest.raises(ValueError, match="masses"):
        sx.draw_vertex_masses(axes[2], [1.0, -1.0, 0.5])
    plt.close(fig)
