"""Rasterisation equals a float64 brute-force point-in-grain test, voxel for voxel."""

from __future__ import annotations

import numpy as np

from cbagpu.backend import get_backend
from cbagpu.simulate.germs import Balls, Spheroids
from cbagpu.simulate.raster import paint_grains

NP = get_backend("numpy")


def _centres(origin, shape):
    z, y, x = np.meshgrid(
        *[np.arange(n) + o for n, o in zip(shape, origin, strict=True)], indexing="ij"
    )
    return np.stack([z, y, x], -1).astype(np.float64)


def brute_spheroids(s: Spheroids, origin, shape) -> np.ndarray:
    """NOTES §2 definition, evaluated independently at every voxel centre."""
    p = _centres(origin, shape)
    out = np.zeros(shape, bool)
    for i in range(len(s)):
        d = p - s.centers[i]
        du = d @ s.axes[i]
        d2 = np.einsum("...i,...i->...", d, d)
        r, R = min(s.a[i], s.c[i]), max(s.a[i], s.c[i])
        out |= du**2 / r**2 + (d2 - du**2) / R**2 <= 1
    return out


def brute_balls(b: Balls, origin, shape) -> np.ndarray:
    p = _centres(origin, shape)
    out = np.zeros(shape, bool)
    for i in range(len(b)):
        d = p - b.centers[i]
        out |= np.einsum("...i,...i->...", d, d) < b.radii[i] ** 2  # open balls
    return out


def _random_spheroids(rng, n, origin, shape):
    o, s = np.asarray(origin, float), np.asarray(shape, float)
    centers = o - 8 + rng.random((n, 3)) * (s + 16)
    u = rng.standard_normal((n, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    a = rng.uniform(0.3, 6, n)
    c = rng.uniform(2, 15, n)
    return Spheroids(centers, u, a, c)


def test_random_spheroids_match_brute_force_exactly():
    rng = np.random.default_rng(12)
    for origin, shape in [((0, 0, 0), (24, 31, 37)), ((-40, 17, -5), (19, 22, 41))]:
        s = _random_spheroids(rng, 40, origin, shape)
        lab = np.zeros(shape, np.uint8)
        paint_grains(NP, lab, s, origin, 2)
        ref = brute_spheroids(s, origin, shape)
        assert ref.sum() > 100
        np.testing.assert_array_equal(lab == 2, ref)
        assert set(np.unique(lab)) <= {0, 2}


def test_boundary_voxels_of_closed_spheroids_and_open_balls():
    """Grains with integer centres and radii put voxel centres exactly on the boundary:
    spheroids are closed (boundary in), balls are open (boundary out)."""
    shape = (21, 21, 21)
    s = Spheroids(
        np.array([[10.0, 10, 10]]), np.array([[1.0, 0, 0]]), np.array([3.0]), np.array([5.0])
    )
    lab = np.zeros(shape, np.uint8)
    paint_grains(NP, lab, s, (0, 0, 0), 1)
    assert lab[13, 10, 10] == 1 and lab[10, 10, 15] == 1 and lab[10, 15, 10] == 1
    assert lab[14, 10, 10] == 0 and lab[10, 10, 16] == 0
    np.testing.assert_array_equal(lab == 1, brute_spheroids(s, (0, 0, 0), shape))
    b = Balls(np.array([[10.0, 10, 10]]), np.array([5.0]))
    lab = np.zeros(shape, np.uint8)
    paint_grains(NP, lab, b, (0, 0, 0), 1)
    assert lab[15, 10, 10] == 0 and lab[14, 10, 10] == 1 and lab[13, 14, 10] == 0  # 9+16=25
    np.testing.assert_array_equal(lab == 1, brute_balls(b, (0, 0, 0), shape))


def test_random_balls_match_brute_force_exactly():
    rng = np.random.default_rng(5)
    origin, shape = (-7, 3, 11), (30, 26, 33)
    centers = np.asarray(origin) - 6 + rng.random((60, 3)) * (np.asarray(shape) + 12)
    # half of the radii on a lattice of 0.5 to hit boundaries exactly
    radii = np.where(rng.random(60) < 0.5, rng.integers(1, 16, 60) / 2, rng.uniform(0.2, 8, 60))
    centers[:30] = np.round(centers[:30])
    b = Balls(centers, radii)
    lab = np.full(shape, 7, np.uint8)
    paint_grains(NP, lab, b, origin, 0)
    np.testing.assert_array_equal(lab == 0, brute_balls(b, origin, shape))
    assert (lab[lab != 0] == 7).all()


def test_paint_writes_only_inside_and_keeps_other_labels():
    rng = np.random.default_rng(1)
    s = _random_spheroids(rng, 10, (0, 0, 0), (20, 20, 20))
    lab = rng.integers(0, 2, (20, 20, 20)).astype(np.uint8)
    before = lab.copy()
    paint_grains(NP, lab, s, (0, 0, 0), 2)
    inside = brute_spheroids(s, (0, 0, 0), (20, 20, 20))
    np.testing.assert_array_equal(lab[~inside], before[~inside])
    assert (lab[inside] == 2).all()
