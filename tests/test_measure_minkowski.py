"""Intrinsic volume densities by 2x2x2 configuration counting (cbagpu.measure.minkowski).

References used here, all independent of the module's weight tables: closed forms for
balls, spheroids, half balls and planes (cbagpu.theory); scikit-image's Euler number; a
brute-force loop over the cells; a Monte-Carlo Voronoi assignment on the sphere; Miles'
formulas for Boolean models (cbagpu.theory.miles / graphite_densities).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from skimage.measure import euler_number

from cbagpu import generate_components, preset
from cbagpu.backend import get_backend
from cbagpu.measure import minkowski as mk
from cbagpu.measure.minkowski import (
    IntrinsicVolumes,
    configuration_histogram,
    configuration_weights,
    densities_from_histogram,
    direction_weights,
    intrinsic_volumes,
    lattice_directions,
)
from cbagpu.simulate.germs import Balls, Spheroids, window_spheroids
from cbagpu.simulate.raster import paint_grains
from cbagpu.theory import (
    graphite_densities,
    miles,
    spheroid_mean_curvature_integral,
    spheroid_surface,
    spheroid_volume,
)

NP = get_backend("numpy")
CONNS = (26, 6)


def _paint(shape, grains) -> np.ndarray:
    lab = np.zeros(shape, np.uint8)
    paint_grains(NP, lab, grains, (0, 0, 0), 1)
    return lab.view(bool)


def _totals(mask, voxel_size=1.0, connectivity=26) -> np.ndarray:
    """Edge-corrected totals V, S, M, chi (density times the cells' volume)."""
    iv = intrinsic_volumes(mask, voxel_size, "numpy", connectivity)
    return np.array([iv.V_V, iv.S_V, iv.M_V, iv.chi_V]) * iv.volume


# ------------------------------------------------------------------ histogram and weights
def test_histogram_matches_brute_force_loop_and_streaming(monkeypatch):
    rng = np.random.default_rng(1)
    img = rng.random((6, 7, 9)) < 0.45
    ref = np.zeros(256, np.int64)
    for z, y, x in itertools.product(range(5), range(6), range(8)):
        code = 0
        for dz, dy, dx in itertools.product((0, 1), repeat=3):
            code |= int(img[z + dz, y + dy, x + dx]) << (4 * dz + 2 * dy + dx)
        ref[code] += 1
    np.testing.assert_array_equal(configuration_histogram(img, "numpy"), ref)
    # 0/1 integers and a non-contiguous view give the same; one plane per slab too
    np.testing.assert_array_equal(configuration_histogram(img.astype(np.uint8), "numpy"), ref)
    big = np.zeros((6, 7, 18), bool)
    big[:, :, ::2] = img
    np.testing.assert_array_equal(configuration_histogram(big[:, :, ::2], "numpy"), ref)
    monkeypatch.setattr(mk, "_SLAB_CELLS", 1)
    np.testing.assert_array_equal(configuration_histogram(img, "numpy"), ref)


def test_direction_weights_are_spherical_voronoi_areas():
    dirs, w = direction_weights()
    assert dirs.shape == (13, 3) and len({tuple(d) for d in dirs} | {tuple(-d) for d in dirs}) == 26
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    # literature values per direction of +-d (Schladitz, Ohser & Nagel 2006)
    per_class = {1: 2 * 0.0457779, 2: 2 * 0.0369806, 3: 2 * 0.0351956}
    for d, wd in zip(dirs, w, strict=True):
        assert wd == pytest.approx(per_class[int(np.abs(d).sum())], abs=2e-7)
    # independent: nearest-direction assignment of 400k quasi-uniform points (Fibonacci)
    n = 400_000
    k = np.arange(n) + 0.5
    zc = 1 - 2 * k / n
    phi = math.pi * (1 + 5**0.5) * k
    pts = np.stack([zc, np.sqrt(1 - zc**2) * np.cos(phi), np.sqrt(1 - zc**2) * np.sin(phi)], 1)
    both = np.concatenate([dirs, -dirs]).astype(float)
    both /= np.linalg.norm(both, axis=1, keepdims=True)
    owner = np.argmax(pts @ both.T, axis=1) % 13
    np.testing.assert_allclose(np.bincount(owner, minlength=13) / n, w, atol=5e-4)


def test_weights_scale_with_voxel_size_and_validate():
    w1 = configuration_weights(1.0, 26)
    w3 = configuration_weights(3.0, 26)
    np.testing.assert_allclose(w3, w1 * np.array([27.0, 9.0, 3.0, 1.0])[:, None])
    assert not np.array_equal(configuration_weights(1.0, 6)[2], w1[2])
    np.testing.assert_array_equal(configuration_weights(1.0, 6)[:2], w1[:2])
    with pytest.raises(ValueError):
        configuration_weights(1.0, 18)
    with pytest.raises(ValueError):
        intrinsic_volumes(np.ones((4, 4, 4), bool), 0.0, "numpy")
    with pytest.raises(ValueError):
        intrinsic_volumes(np.ones((4, 1, 4), bool), 1.0, "numpy")
    with pytest.raises(ValueError):
        intrinsic_volumes(np.ones((4, 4), bool), 1.0, "numpy")
    with pytest.raises(ValueError):
        densities_from_histogram(np.zeros(256), 1.0)
    assert len(lattice_directions()) == 13


@pytest.mark.parametrize("conn, sk_conn", [(26, 3), (6, 1)])
def test_euler_number_equals_scikit_image(conn, sk_conn):
    """Padded with background the cells cover the whole object, so chi_V * volume is its
    Euler number; scikit-image pads internally and counts the same adjacency exactly."""
    rng = np.random.default_rng(7)
    for trial in range(30):
        shape = tuple(rng.integers(3, 12, 3))
        img = rng.random(shape) < rng.uniform(0.1, 0.9)
        chi = _totals(np.pad(img, 1), 1.0, conn)[3]
        assert chi == pytest.approx(euler_number(img, connectivity=sk_conn), abs=1e-9), trial


def test_duality_of_the_adjacency_pairs():
    """chi_V(X, 26) = chi_V(X^c, 6), M_V(X, 26) = -M_V(X^c, 6), equal S_V, complementary
    V_V -- exactly, on random images (3-D duality; module docstring)."""
    rng = np.random.default_rng(3)
    for _ in range(10):
        img = rng.random((9, 10, 11)) < rng.uniform(0.2, 0.8)
        a = intrinsic_volumes(img, 1.5, "numpy", 26)
        b = intrinsic_volumes(~img, 1.5, "numpy", 6)
        assert a.V_V + b.V_V == pytest.approx(1.0, abs=1e-12)
        assert a.S_V == pytest.approx(b.S_V, rel=1e-12)
        assert a.M_V == pytest.approx(-b.M_V, rel=1e-12, abs=1e-15)
        assert a.chi_V == pytest.approx(b.chi_V, rel=1e-12, abs=1e-15)


# ------------------------------------------------------------------ single shapes
@pytest.mark.parametrize("radius", [10.0, 13.7, 20.0])
def test_digitised_balls(radius):
    """Issue 3: V, S within 2 %, M within 5 %, chi exact, for each of 6 balls with random
    sub-voxel centres, at both adjacencies (measured: |dV|, |dS| < 0.8 %, |dM| < 1 %)."""
    rng = np.random.default_rng(int(radius * 10))
    n = int(2 * radius + 6)
    s = 20.0
    r = radius * s
    exact = np.array([spheroid_volume(r, r), spheroid_surface(r, r),
                      spheroid_mean_curvature_integral(r, r)])
    assert exact[2] == pytest.approx(4 * math.pi * r)
    for _ in range(6):
        c = np.full(3, n / 2) + rng.random(3)
        mask = _paint((n, n, n), Balls(c[None], np.array([radius])))
        for conn in CONNS:
            t = _totals(mask, s, conn)
            np.testing.assert_allclose(t[:2], exact[:2], rtol=0.02)
            np.testing.assert_allclose(t[2], exact[2], rtol=0.05)
            assert t[3] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("r, big_r", [(10.0, 20.0), (12.0, 30.0), (10.0, 10.5)])
def test_digitised_spheroids(r, big_r):
    """Oblate spheroids, random axes and sub-voxel centres; closed forms of Eqs. 14-16."""
    rng = np.random.default_rng(int(r * big_r))
    n = int(2 * big_r + 6)
    exact = np.array([spheroid_volume(r, big_r), spheroid_surface(r, big_r),
                      spheroid_mean_curvature_integral(r, big_r)])
    for _ in range(5):
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        c = np.full(3, n / 2) + rng.random(3)
        mask = _paint((n, n, n), Spheroids(c[None], u[None], np.array([r]), np.array([big_r])))
        for conn in CONNS:
            t = _totals(mask, 1.0, conn)
            np.testing.assert_allclose(t[:2], exact[:2], rtol=0.02)
            np.testing.assert_allclose(t[2], exact[2], rtol=0.05)
            assert t[3] == pytest.approx(1.0, abs=1e-9)


def _grid(n):
    return np.meshgrid(*[np.arange(n, dtype=float)] * 3, indexing="ij")


@pytest.mark.parametrize("conn", CONNS)
def test_euler_number_of_topologies(conn):
    n = 60
    z, y, x = _grid(n)
    c = n / 2 + 0.3
    rho = np.hypot(y - c, x - c)
    shapes = {
        "torus": ((rho - 16.0) ** 2 + (z - c) ** 2 < 6.0**2, 0),
        "hollow ball": (((z - c) ** 2 + rho**2 < 20.0**2) & ((z - c) ** 2 + rho**2 >= 12.0**2), 2),
        "solid cube": ((np.abs(z - c) < 15) & (np.abs(y - c) < 15) & (np.abs(x - c) < 15), 1),
        "two balls": (((z - 15) ** 2 + (y - c) ** 2 + (x - c) ** 2 < 10.0**2)
                      | ((z - 40) ** 2 + (y - c) ** 2 + (x - c) ** 2 < 10.0**2), 2),
    }
    cube_tunnel = shapes["solid cube"][0] & ~((rho < 6.0) & (np.abs(z - c) < 20))
    shapes["cube with a tunnel"] = (cube_tunnel, 0)
    two_tori = ((np.hypot(y - c, x - c + 15.0) - 9.0) ** 2 + (z - c) ** 2 < 4.0**2) | (
        (np.hypot(y - c, x - c - 14.0) - 9.0) ** 2 + (z - c) ** 2 < 4.0**2
    )
    bar = (np.abs(x - c + 0.5) < 5) & (np.abs(y - c) < 3) & (np.abs(z - c) < 3)
    shapes["two tori joined by a bar"] = (two_tori | bar, -1)
    for name, (mask, chi) in shapes.items():
        assert not mask[0].any() and not mask[-1].any(), name
        assert _totals(mask, 1.0, conn)[3] == pytest.approx(chi, abs=1e-9), name
        assert euler_number(mask, connectivity=3 if conn == 26 else 1) == chi, name


# ------------------------------------------------------------------ edge correction
def test_window_faces_are_not_counted():
    for conn in CONNS:
        iv = intrinsic_volumes(np.ones((8, 9, 10), bool), 20.0, "numpy", conn)
        assert (iv.V_V, iv.S_V, iv.M_V, iv.chi_V) == (1.0, 0.0, 0.0, 0.0)
        assert iv.volume == pytest.approx(7 * 8 * 9 * 20.0**3)
        assert isinstance(iv, IntrinsicVolumes) and iv.connectivity == conn


def _plane_response(normal) -> float:
    """The estimator's S for a unit area of plane with this normal: 2 sum_d c_d |d.n|/|d|."""
    dirs, w = direction_weights()
    u = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    return float(2 * np.sum(w * np.abs(u @ normal)))


def test_half_space_touching_the_window_counts_only_its_interface():
    """mask = x < k: the only surface is the plane x = k - 1/2, area (nz-1)(ny-1) s^2
    inside the cells; S_V is exactly its estimator response over the cells' volume, M_V and
    chi_V vanish. Counting the window faces would add ~2 (nz-1)(ny-1) s^2 per face pair."""
    s = 20.0
    nz, ny, nx = 12, 14, 30
    mask = np.zeros((nz, ny, nx), bool)
    mask[:, :, :11] = True
    resp = _plane_response(np.array([0.0, 0.0, 1.0]))
    assert resp == pytest.approx(0.9266, abs=1e-4)  # axis planes are under-counted 7.3 %
    for conn in CONNS:
        iv = intrinsic_volumes(mask, s, "numpy", conn)
        assert iv.S_V == pytest.approx(resp / ((nx - 1) * s), rel=1e-12)
        assert iv.V_V == pytest.approx(10.5 / 29, rel=1e-12)
        assert iv.M_V * iv.volume == pytest.approx(0.0, abs=1e-9)
        assert iv.chi_V == 0.0


def test_oblique_half_space():
    """A plane with normal n crossing every x-line of the window: area (nz-1)(ny-1)/|n_x|;
    S_V equals the plane response within 0.2 % (measured: < 0.05 %), and within the
    estimator's anisotropy (0.927 .. 1.023, module docstring) of the true value; |M|, |chi|
    stay at the boundary-noise level."""
    rng = np.random.default_rng(5)
    nz = ny = 40
    nx = 60
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    for _ in range(4):
        n = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 1.0])
        n /= np.linalg.norm(n)
        t = n @ np.array([nz / 2, ny / 2, nx / 2]) + rng.random()
        mask = z * n[0] + y * n[1] + x * n[2] < t
        area = (nz - 1) * (ny - 1) / abs(n[2])
        for conn in CONNS:
            tot = _totals(mask, 1.0, conn)
            assert tot[1] == pytest.approx(_plane_response(n) * area, rel=2e-3)
            assert 0.92 < tot[1] / area < 1.03
            assert abs(tot[2]) < 1.0 and abs(tot[3]) < 0.5  # a ball of radius 1/(4 pi) has M 1


def test_half_ball_on_a_window_face():
    """A ball centred on the face z = 0: the cells see half of it. V, S, M of the curved
    half (the cut disk and its rim are window, not surface) and chi = 1/2."""
    rng = np.random.default_rng(11)
    s = 2.0
    for radius in (10.0, 15.0):
        m = int(2 * radius + 8)
        r = radius * s
        for _ in range(3):
            c = np.array([0.0, m / 2 + rng.random(), m / 2 + rng.random()])
            mask = _paint((int(radius) + 4, m, m), Balls(c[None], np.array([radius])))
            for conn in CONNS:
                t = _totals(mask, s, conn)
                assert t[0] == pytest.approx(2 / 3 * math.pi * r**3, rel=0.02)
                assert t[1] == pytest.approx(2 * math.pi * r**2, rel=0.02)
                assert t[2] == pytest.approx(2 * math.pi * r, rel=0.05)
                assert t[3] == pytest.approx(0.5, abs=1e-9)


# ------------------------------------------------------------------ Boolean models vs Miles
# Tolerances. For each density d the test takes n independent windows and asserts
#     |mean(d) - (1 + b) * Miles| <= 3 * sqrt(sd^2 / n + (se_b * Miles)^2)
# sd = the across-window standard deviation of this test's windows (sampling error), b the
# relative discretisation bias of the digital estimator for this model and resolution and
# se_b its standard error, both MEASURED once on other seeds (1000 + i) with the same
# code -- many more windows than here -- and stated next to each model. Single grains of
# these sizes are unbiased to < 1 % (tests above); the biases below come from grains
# that (nearly) touch: gaps thinner than a voxel are bridged, sharp re-entrant wedges along
# the intersection curves of overlapping grains are mis-digitised. They hit chi_V hardest
# (it is a small difference of component and handle counts) and hardly shrink when the
# grains are digitised finer (the wedge angles are scale-free; checked offline against
# exact Euler numbers from the nerve of the balls on a torus: per 64^3 torus, chi error
# -2.7 / -2.7 / -3.0 under 6 and -7.1 / -5.5 / -5.4 under 26 at 1x / 2x / 3x resolution,
# 30 configurations), so they are stated, not hidden.
def _check(values: np.ndarray, theory: np.ndarray, bias: dict, what: str) -> None:
    n = len(values)
    mean = values.mean(axis=0)
    sd = values.std(axis=0, ddof=1)
    for k, name in enumerate(("V_V", "S_V", "M_V", "chi_V")):
        b, se_b = bias.get(name, (0.0, 0.0))
        expected = (1.0 + b) * theory[k]
        tol = 3.0 * math.sqrt(sd[k] ** 2 / n + (se_b * theory[k]) ** 2)
        assert abs(mean[k] - expected) <= tol, (
            f"{what} {name}: mean {mean[k]:.6g}, Miles {theory[k]:.6g}, bias {b:+.3f} -> "
            f"expected {expected:.6g} +- {tol:.3g}"
        )


def _densities(hists, voxel_size, conn) -> np.ndarray:
    out = []
    for h in hists:
        d = densities_from_histogram(h, voxel_size, conn)
        out.append([d.V_V, d.S_V, d.M_V, d.chi_V])
    return np.array(out)


# Boolean model of balls, radii uniform on [8, 12] voxels, V = 0.2, windows of 128^3.
# Measured on 400 windows (seeds 1000..1399): relative bias (se) -- V -0.003 (0.004),
# S -0.013 (0.004), M -0.093 (0.003) [26] / -0.046 (0.003) [6],
# chi -0.862 (0.022) [26] / -0.293 (0.013) [6]. Per-window sd: V 9 %, S 7 %, M 6 %,
# chi 43 % [26] / 26 % [6].
BALL_BIAS = {
    26: {"S_V": (-0.013, 0.004), "M_V": (-0.093, 0.003), "chi_V": (-0.862, 0.022)},
    6: {"S_V": (-0.013, 0.004), "M_V": (-0.046, 0.003), "chi_V": (-0.293, 0.013)},
}


def _boolean_balls(seed: int, n: int, lam: float, r0: float, r1: float) -> np.ndarray:
    """Poisson germs in the window dilated by r1 (every ball that reaches the window)."""
    rng = np.random.default_rng(seed)
    lo, hi = -r1 - 1.0, n + r1 + 1.0
    k = rng.poisson(lam * (hi - lo) ** 3)
    centers = rng.uniform(lo, hi, (k, 3))
    radii = rng.uniform(r0, r1, k)
    return _paint((n, n, n), Balls(centers, radii))


def test_boolean_balls_vs_miles():
    r0, r1, s = 8.0, 12.0, 20.0
    e_r = (r0 + r1) / 2
    e_r2 = (r1**3 - r0**3) / (3 * (r1 - r0))
    e_r3 = (r1**4 - r0**4) / (4 * (r1 - r0))
    vbar, sbar, kbar = 4 / 3 * math.pi * e_r3, 4 * math.pi * e_r2, 4 * math.pi * e_r
    lam = -math.log(1 - 0.2) / vbar
    # Miles in nm: V-bar ~ s^3, S-bar ~ s^2, K-bar ~ s, lambda ~ s^-3
    theory = np.array(miles(lam / s**3, vbar * s**3, sbar * s**2, kbar * s))
    hists = [configuration_histogram(_boolean_balls(seed, 128, lam, r0, r1), "numpy")
             for seed in range(32)]
    for conn in CONNS:
        _check(_densities(hists, s, conn), theory, BALL_BIAS[conn], f"balls [{conn}]")


# Boolean model of fat spheroids from the engine (paper preset with alpha1 = 1280 nm,
# alpha2 = 2240 nm, gamma = 4, lambda_x = 3.8e-10 nm^-3: half-axes ~ 8 and 14 voxels at
# 40 nm, V1 = 0.15), windows of 128^3 at 40 nm. Measured on 300 windows (seeds 1000..1299):
# V +0.007 (0.008), S -0.000 (0.007), M -0.061 (0.005) [26] / -0.025 (0.005) [6],
# chi -0.612 (0.028) [26] / -0.210 (0.015) [6].
FAT = {"alpha1": 1280.0, "alpha2": 2240.0, "gamma": 4.0, "lambda_x": 3.8e-10}
FAT_BIAS = {
    26: {"M_V": (-0.061, 0.005), "chi_V": (-0.612, 0.028)},
    6: {"M_V": (-0.025, 0.005), "chi_V": (-0.210, 0.015)},
}


def _engine_graphite(params, seed: int, n: int, voxel_size: float) -> np.ndarray:
    """Xi1 of the engine's realization: the same grains and rasteriser that
    generate_components(...).graphite uses (checked in test_engine_graphite_is_components),
    without computing the Gaussian field."""
    vp = params.to_voxel(voxel_size)
    shape = (n, n, n)
    return _paint(shape, window_spheroids(vp, seed, (0, 0, 0), shape))


def test_engine_graphite_is_components():
    params = preset("paper")
    comp = generate_components(params, (48, 48, 48), 80.0, 4, backend="numpy")
    np.testing.assert_array_equal(_engine_graphite(params, 4, 48, 80.0), comp.graphite)


def test_boolean_fat_spheroids_vs_miles():
    params = preset("paper").replace(**FAT)
    s = 40.0
    theory = np.array(graphite_densities(params, s))
    hists = [configuration_histogram(_engine_graphite(params, seed, 128, s), "numpy")
             for seed in range(32)]
    for conn in CONNS:
        _check(_densities(hists, s, conn), theory, FAT_BIAS[conn], f"fat spheroids [{conn}]")


# The paper's graphite (Table 2) at 40 nm: platelets with half-thickness r ~ 2.6 voxels and
# radius R ~ 50 voxels. V and S are resolved (single grains of this law: S -1.9 %), but the
# platelets' rims are thinner than a voxel and their overlaps make thin wedges, so the
# digital M and chi are dominated by the discretisation -- the reason Table 1's K1, N1
# (estimated from images) differ from Miles (NOTES §5). Measured on 60 windows of 200^3
# (seeds 1000..1059), connectivity 26: V -0.023 (0.020), S -0.046 (0.015),
# M +0.74 (0.064), chi +9.6 (0.8) (i.e. 10.6 x the Miles value). These M, chi biases are a
# regression guard for the digitisation of this model, not a validation.
PAPER_BIAS = {"S_V": (-0.046, 0.015), "M_V": (0.74, 0.064), "chi_V": (9.6, 0.8)}


def test_boolean_paper_spheroids_40nm_vs_miles():
    params = preset("paper")
    s = 40.0
    theory = np.array(graphite_densities(params, s))
    hists = [configuration_histogram(_engine_graphite(params, seed, 200, s), "numpy")
             for seed in range(12)]
    _check(_densities(hists, s, 26), theory, PAPER_BIAS, "paper spheroids 40 nm [26]")
