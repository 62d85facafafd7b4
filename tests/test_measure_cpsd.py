"""CPSD (paper Eq. 26), local thickness, simulated intrusion, r_min and constrictivity
(Section 3.3, NOTES §6).

Every comparison here is exact except the ones against PoreSpy, which uses open balls
(``edt(~seeds) < r`` with seeds ``dt >= r``) where cbagpu uses closed ones (``|d| <= r``
with centres ``EDT > r``): on the same images
* with every distinct radius (PoreSpy's ``method='legacy', sizes=None``) the two local
  thickness maps obey T_closed^2 = T_open^2 - 1 voxel by voxel (so they differ by at most
  one voxel everywhere);
* with integer radii (PoreSpy's defaults) the radius at which each curve falls below a
  given fraction differs by at most one voxel (that is what we compare).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import scipy.ndimage as ndi

from cbagpu import generate, preset
from cbagpu.backend import get_backend
from cbagpu.measure import cpsd as cpsd_mod
from cbagpu.measure import intrusion as intrusion_mod
from cbagpu.measure.cpsd import CPSD, cpsd, crossing, local_thickness
from cbagpu.measure.intrusion import Constrictivity, Intrusion, constrictivity, intrusion
from cbagpu.measure.phases import phase_mask
from cbagpu.simulate.germs import Balls
from cbagpu.simulate.raster import paint_grains

NP = get_backend("numpy")
FACES = ndi.generate_binary_structure(3, 1)


# ------------------------------------------------------------------------------ images
def boolean_balls(shape, n, mean_radius, seed) -> np.ndarray:
    """Union of n open balls (uniform centres, radii 1 + Exp(mean_radius)), as a mask."""
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint8)
    centers = rng.uniform(-3, np.array(shape) + 3, (n, 3))
    radii = 1.0 + rng.exponential(mean_radius, n)
    paint_grains(NP, lab, Balls(centers, radii), (0, 0, 0), 1)
    return lab == 1


def images():
    """(name, mask) pairs: pore and solid phases of small Boolean models of balls."""
    a = boolean_balls((34, 30, 41), 25, 4.0, 1)
    b = boolean_balls((28, 37, 33), 60, 2.5, 2)
    return [("balls", a), ("balls-complement", ~a), ("dense-balls", b), ("pores", ~b)]


IMAGES = images()


@functools.lru_cache(maxsize=1)
def model_labels() -> np.ndarray:
    """A small realization of the paper's model (20 nm voxels), generated once."""
    return generate(preset("paper"), (56, 60, 64), 20, 5, backend="numpy")


def model_mask(phase: str) -> np.ndarray:
    return phase_mask(model_labels(), phase)


# ---------------------------------------------------- independent float64 references
def ref_levels(mask, radii):
    """Squared EDT (SciPy, float64) and the distinct lattice balls of the radius grid."""
    d = ndi.distance_transform_edt(mask)
    k = np.rint(d * d)
    if radii is None:
        grid = np.arange(0, math.isqrt(int(k.max()) - 1) + 2, dtype=float)
    else:
        grid = np.unique(np.concatenate([[0.0], radii]))
    return k, np.unique(np.floor(grid**2 + 1e-9).astype(int))


def ref_dilate(S, m):
    """S (+) {|d|^2 <= m} from SciPy's exact EDT of the complement."""
    if m == 0 or not S.any():
        return S.copy()
    dd = ndi.distance_transform_edt(~S)
    return np.rint(dd * dd) <= m


def ref_thickness_index(mask, radii=None):
    """1 + largest j with y in the opening by ball m_j (0 outside the phase)."""
    k, mg = ref_levels(mask, radii)
    out = np.where(mask, 1, 0)
    for j in range(1, len(mg)):
        opened = ref_dilate(k > mg[j], mg[j])
        out[opened] = np.maximum(out[opened], j + 1)
    return out, mg


def ref_intrusion_index(mask, axis, side, radii=None):
    """Per radius: erode, keep the face-connected components meeting the inlet slice,
    dilate; 1 + largest such j covering y."""
    k, mg = ref_levels(mask, radii)
    inlet = [slice(None)] * 3
    inlet[axis] = 0 if side == "low" else -1
    out = np.zeros(mask.shape, int)
    for j in range(len(mg)):
        lab, _ = ndi.label(k > mg[j], FACES)
        hit = np.unique(lab[tuple(inlet)])
        K = np.isin(lab, hit[hit > 0])
        opened = ref_dilate(K, mg[j])
        out[opened] = np.maximum(out[opened], j + 1)
    return out, mg


def index_curve(index, mask, n):
    return np.array([(index[mask] >= j + 1).mean() for j in range(n)])


@pytest.fixture(params=["dense", "sparse"])
def path(request, monkeypatch):
    """Force every level of the ball-cover transform through one of its two paths."""
    if request.param == "dense":
        monkeypatch.setattr(cpsd_mod, "_COST_WORD", 0.0)
    else:
        monkeypatch.setattr(cpsd_mod, "_COST_WORD", 1.0)
        monkeypatch.setattr(cpsd_mod, "_COST_INTERVAL", 0.0)
        monkeypatch.setattr(cpsd_mod, "_COST_SPARSE_LEVEL", 0.0)
    return request.param


# ------------------------------------------------------------ exactness vs references
@pytest.mark.parametrize("name,mask", IMAGES[:3], ids=[n for n, _ in IMAGES[:3]])
@pytest.mark.parametrize("radii", [None, (0.7, 1.5, 2.2, 3.0, 4.6, 6.1, 9.9)])
def test_thickness_equals_reference_openings(name, mask, radii, path):
    F, grid, mg, inv = cpsd_mod._levels(NP, mask, None if radii is None else np.array(radii))
    got = cpsd_mod.cover_index(NP, F, mg).astype(int)
    want, mg_ref = ref_thickness_index(mask, radii)
    np.testing.assert_array_equal(mg, mg_ref)
    np.testing.assert_array_equal(got, want)
    res = cpsd(mask, 1.0, backend="numpy", radii=radii)
    np.testing.assert_allclose(res.value, index_curve(want, mask, len(mg))[inv], rtol=0, atol=0)


@pytest.mark.parametrize("name,mask", IMAGES[1:], ids=[n for n, _ in IMAGES[1:]])
@pytest.mark.parametrize("axis,side", [(0, "low"), (1, "high"), (2, "low")])
@pytest.mark.parametrize("labels", ["volume", "graph"])
def test_intrusion_equals_reference(name, mask, axis, side, labels, path, monkeypatch):
    # eroded sets labelled as whole volumes (Backend.label) or as voxel graphs (csgraph) by
    # method="labels"; the NumPy backend's default (the Numba flood) too
    monkeypatch.setattr(intrusion_mod, "_SPARSE_FRACTION", 0.0 if labels == "volume" else 1.0)
    want, mg = ref_intrusion_index(mask, axis, side)
    for method in ("labels", "auto"):
        res = intrusion(mask, 1.0, axis=axis, side=side, backend="numpy", method=method)
        np.testing.assert_allclose(res.value, index_curve(want, mask, len(mg)), rtol=0, atol=0)


def test_large_radii_multiword_rows(path):
    """Balls wider than a 64-bit word (radius 33) in both paths, custom grid."""
    z, y, x = np.indices((72, 75, 140))
    mask = (z - 36) ** 2 + (y - 37) ** 2 + (x - 70) ** 2 < 34.2**2
    mask |= boolean_balls(mask.shape, 30, 5.0, 7)
    radii = (1.0, 2.5, 7.0, 16.0, 31.5, 33.0)
    F, grid, mg, inv = cpsd_mod._levels(NP, mask, np.array(radii))
    got = cpsd_mod.cover_index(NP, F, mg).astype(int)
    want, _ = ref_thickness_index(mask, radii)
    np.testing.assert_array_equal(got, want)


def test_union_of_openings_identity():
    """CPSD uses U_r = union of the openings O_s at grid radii s >= r (monotone in r):
    check U_r = {T >= r} is exactly that union and contains O_r. (On these small Boolean
    models U_r and O_r differ on at most ~1.5 % of the phase at some radius, on a 64^3
    model on <= 0.8 %: digital balls are not a granulometry.)"""
    for _, mask in IMAGES:
        T = local_thickness(mask, backend="numpy")
        k, mg = ref_levels(mask, None)
        union = np.zeros(mask.shape, bool)
        for r in range(len(mg) - 1, 0, -1):
            opened = ref_dilate(k > r * r, r * r)
            union |= opened
            np.testing.assert_array_equal(T >= r, union)
            assert not (opened & ~(T >= r)).any()


# ----------------------------------------------------------------------- vs PoreSpy
@pytest.fixture(scope="module")
def ps():
    """PoreSpy, the peer (each test that needs it skips without it)."""
    porespy = pytest.importorskip("porespy")
    porespy.settings.tqdm["disable"] = True
    return porespy


@pytest.mark.parametrize("name,mask", IMAGES[:2], ids=[n for n, _ in IMAGES[:2]])
def test_local_thickness_per_voxel_vs_porespy_all_radii(name, mask, ps):
    """Every distinct radius: T_closed^2 = T_open^2 - 1 exactly on every phase voxel.
    (The distinct EDT values are passed explicitly: PoreSpy 3.2's ``sizes=None`` legacy
    branch runs them in ascending order and returns 1 everywhere.)"""
    dt = ps.tools.get_edt()(mask)  # PoreSpy's own float32 EDT: consistent comparisons
    t_open = ps.filters.local_thickness(mask, method="legacy", sizes=np.unique(dt[mask]))
    kmax = int(np.rint(float(dt.max()) ** 2))
    t_closed = local_thickness(mask, backend="numpy", radii=np.sqrt(np.arange(kmax + 1)))
    np.testing.assert_array_equal(
        np.rint(t_closed[mask].astype(np.float64) ** 2),
        np.rint(t_open[mask].astype(np.float64) ** 2) - 1,
    )
    # T_open - sqrt(T_open^2 - 1) <= 1, with equality only where T_open = 1 (T_closed = 0)
    assert np.abs(t_closed[mask] - t_open[mask]).max() <= 1.0


def _ps_curve(size_map, mask, r):
    return np.array([1.0] + [(size_map[mask] >= v).mean() for v in r[1:]])


FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@pytest.mark.parametrize(
    "name", [n for n, _ in IMAGES] + ["model-pore", "model-solid"]
)
def test_cpsd_radii_vs_porespy_local_thickness(name, ps):
    mask = model_mask(name[6:]) if name.startswith("model") else dict(IMAGES)[name]
    res = cpsd(mask, 1.0, backend="numpy")
    lt = ps.filters.local_thickness(mask)  # integer radii, open balls
    r = np.arange(0, int(lt.max()) + 2, dtype=float)
    ref = _ps_curve(lt, mask, r)
    for f in FRACTIONS:
        assert abs(crossing(res.r, res.value, f)[0] - crossing(r, ref, f)[0]) <= 1.0, f


@pytest.mark.parametrize("name", ["balls-complement", "dense-balls", "model-pore", "model-solid"])
def test_intrusion_radii_vs_porespy_porosimetry(name, ps):
    mask = model_mask(name[6:]) if name.startswith("model") else dict(IMAGES)[name]
    inlets = np.zeros_like(mask)
    inlets[0] = True
    res = intrusion(mask, 1.0, axis=0, side="low", backend="numpy")
    rmax = int(np.floor(ndi.distance_transform_edt(mask).max()))
    size = ps.filters.porosimetry(mask, inlets=inlets, sizes=np.arange(rmax, 0, -1))
    r = np.arange(0, rmax + 2, dtype=float)
    ref = _ps_curve(size, mask, r)
    ref[0] = (size[mask] > 0).mean()  # reached at all
    for f in FRACTIONS:
        if ref[0] >= f and res.value[0] >= f:
            assert abs(crossing(res.r, res.value, f)[0] - crossing(r, ref, f)[0]) <= 1.0, f
    assert abs(res.r_min - crossing(r, ref)[0]) <= 1.0


# ------------------------------------------------------------------ known geometries
@pytest.mark.parametrize("R", [6.5, 9.5, 12.2])
def test_single_ball(R):
    """A lattice-centred digital ball {|y - c| < R} is the closed ball of radius
    rho = sqrt(m*) (m* the largest integer < R^2), which fits: CPSD = 1 up to rho, 0 above."""
    n = int(2 * R) + 7
    c = n // 2
    z, y, x = np.indices((n, n, n))
    mask = (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 < R * R
    rho = math.sqrt(math.ceil(R * R) - 1)
    grid = np.sqrt(np.arange(0, int(R * R) + 6))
    res = cpsd(mask, 2.0, backend="numpy", radii=2.0 * grid)  # radii in nm
    assert np.all(res.value[res.r <= 2.0 * rho + 1e-9] == 1.0)
    assert np.all(res.value[res.r > 2.0 * rho + 1e-9] == 0.0)
    assert res.r_max_grid == pytest.approx(2.0 * rho)
    default = cpsd(mask, 1.0, backend="numpy")  # integer radii
    assert default.value[0] == 1.0 and np.all(default.value[default.r > rho] == 0.0)
    assert abs(default.r_max - R) <= 1.0


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("k", [0, 2, 5])
def test_slab(axis, k):
    """A slab 2k+1 voxels thick with background on both sides, spanning the window in the
    other two directions (the outside of the window counts as phase, so it is an infinite
    slab): the largest inscribed digital ball has radius k, CPSD(k) = 1, CPSD(k+1) = 0,
    r_max_grid = k and the interpolated r_max = k + 1/2 (the half-thickness of the voxels)."""
    shape = [23, 26, 70]
    shape[axis] = 2 * k + 5
    mask = np.zeros(shape, bool)
    sl = [slice(None)] * 3
    sl[axis] = slice(2, 2 + 2 * k + 1)
    mask[tuple(sl)] = True
    res = cpsd(mask, 1.0, backend="numpy")
    assert np.all(res.value[res.r <= k] == 1.0)
    assert np.all(res.value[res.r >= k + 1] == 0.0)
    assert res.r_max_grid == k
    assert res.r_max == pytest.approx(k + 0.5)
    np.testing.assert_array_equal(local_thickness(mask, backend="numpy")[mask], k)


def channel_image(rho):
    """A box chamber reachable from the z = 0 face only through a straight channel
    {dy^2 + dx^2 <= rho^2} along z. The channel holds ~1 % of the phase."""
    mask = np.zeros((64, 60, 60), bool)
    mask[22:62, 6:54, 6:54] = True
    z, y, x = np.indices(mask.shape)
    mask |= ((y - 30) ** 2 + (x - 30) ** 2 <= rho * rho) & (z < 23)
    return mask


@pytest.mark.parametrize("rho", [2, 4])
def test_channel_gives_r_min(rho, ps):
    """Closed balls of radius rho pass the channel (its axis has EDT = sqrt(rho^2 + 1)),
    radius rho + 1 does not: r_min_grid = rho and r_min within one voxel of rho; the
    chamber alone would give a large r_max, so beta is small."""
    mask = channel_image(rho)
    res = intrusion(mask, 1.0, axis="z", side="low", backend="numpy")
    assert res.r_min_grid == rho
    assert rho <= res.r_min < rho + 1
    assert res.value[rho] > 0.95 and res.value[rho + 1] < 0.03
    c = constrictivity(mask, 1.0, axis=0, backend="numpy")
    assert c.r_min == res.r_min and c.r_max > 15 and 0 < c.beta < ((rho + 1) / 15) ** 2
    inlets = np.zeros_like(mask)
    inlets[0] = True
    size = ps.filters.porosimetry(mask, inlets=inlets, sizes=np.arange(25, 0, -1))
    r = np.arange(0, 27, dtype=float)
    assert abs(res.r_min - crossing(r, _ps_curve(size, mask, r))[0]) <= 1.0


@pytest.mark.parametrize("name,mask", IMAGES, ids=[n for n, _ in IMAGES])
def test_beta_in_unit_interval(name, mask):
    for axis, side in ((0, "low"), ("y", "high"), ("x", "low")):
        c = constrictivity(mask, 20.0, axis=axis, side=side, backend="numpy")
        assert isinstance(c, Constrictivity)
        assert 0.0 <= c.r_min <= c.r_max
        assert 0.0 <= c.beta <= 1.0
        assert c.beta == pytest.approx((c.r_min / c.r_max) ** 2)
        assert np.all(c.intrusion.value <= c.cpsd.value + 1e-12)


def test_phase_not_touching_inlet():
    """No phase voxel on the inlet slice: nothing is ever intruded, r_min = 0, beta = 0
    (a documented result, not an error)."""
    z, y, x = np.indices((30, 30, 30))
    mask = (z - 15) ** 2 + (y - 15) ** 2 + (x - 15) ** 2 < 8.3**2
    res = intrusion(mask, 20.0, axis=1, side="high", backend="numpy")
    assert np.all(res.value == 0.0) and res.r_min == 0.0 and res.r_min_grid == 0.0
    c = constrictivity(mask, 20.0, axis=1, side="high", backend="numpy")
    assert c.beta == 0.0 and c.r_max > 0
    # a phase half of which is cut off from the inlet: value[0] is the connected part
    mask2 = np.zeros((20, 20, 20), bool)
    mask2[:, :, :6] = True
    mask2[4:16, 4:16, 10:20] = True  # not connected to the slab
    res2 = intrusion(mask2, 1.0, axis=0, backend="numpy")
    assert res2.value[0] == pytest.approx(mask2[:, :, :6].sum() / mask2.sum())


# ------------------------------------------------------------------------ API details
def test_units_axes_and_sides():
    mask = IMAGES[0][1]
    a = cpsd(mask, 1.0, backend="numpy")
    b = cpsd(mask, 20.0, backend="numpy")
    assert isinstance(b, CPSD)
    np.testing.assert_allclose(b.r, 20.0 * a.r)
    np.testing.assert_array_equal(a.value, b.value)
    assert b.r_max == pytest.approx(20.0 * a.r_max)
    c = cpsd(mask, 20.0, backend="numpy", radii=20.0 * a.r[1:])
    np.testing.assert_array_equal(c.value, a.value)
    for axis, name in ((0, "z"), (1, "y"), (2, "x")):
        i1 = intrusion(mask, 1.0, axis=axis, side="high", backend="numpy")
        i2 = intrusion(np.flip(mask, axis), 1.0, axis=name, side="low", backend="numpy")
        assert isinstance(i1, Intrusion) and i1.axis == axis and i2.axis == axis
        np.testing.assert_array_equal(i1.value, i2.value)
    with pytest.raises(ValueError):
        intrusion(mask, 1.0, axis=3)
    with pytest.raises(ValueError):
        intrusion(mask, 1.0, side="top")
    with pytest.raises(ValueError):
        cpsd(mask, 0.0)


def test_empty_and_full_phase():
    empty = np.zeros((8, 9, 10), bool)
    assert math.isnan(cpsd(empty, 1.0, backend="numpy").r_max)
    assert math.isnan(constrictivity(empty, 1.0, backend="numpy").beta)
    full = np.ones((8, 9, 10), bool)
    assert cpsd(full, 1.0, backend="numpy").r_max == math.inf
    assert np.all(np.isinf(local_thickness(full, backend="numpy")))
    assert math.isnan(constrictivity(full, 1.0, backend="numpy").beta)
