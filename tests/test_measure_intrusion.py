"""CPU kernels of the simulated intrusion (cbagpu/measure/_intrusion_kernels.py) against
their array-module twins and independent float64 / SciPy references, voxel by voxel:

* the int32 squared EDT vs SciPy's float64 EDT (and the backend's ``edt``), both line
  algorithms (brute force within a budget, lower envelope of parabolas) vs a brute minimum;
* the level map vs :func:`cbagpu.measure.cpsd._levels` (integer and custom radius grids,
  uint8 and uint16 maps);
* the bucket flood vs :func:`cbagpu.measure.intrusion.bottleneck_levels` (both labelling
  paths) and vs a per-level SciPy labelling written here;
* the GPU's widest-path sweeps (:mod:`cbagpu.measure.widest_path`, run here with the NumPy
  twin of their kernel) vs the same per-level labelling;
* the whole intrusion / constrictivity with and without the kernels.

All comparisons are exact (integers). The per-level reference and the brute-force line
minimum are O(levels * N) and O(n^2): the images are small.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi

from cbagpu import generate, preset
from cbagpu.backend import get_backend
from cbagpu.measure import _intrusion_kernels as K
from cbagpu.measure import cpsd as cpsd_mod
from cbagpu.measure import intrusion as intrusion_mod
from cbagpu.measure.intrusion import constrictivity, intrusion
from cbagpu.measure.phases import phase_mask

NP = get_backend("numpy")
FACES = ndi.generate_binary_structure(3, 1)
INF = int(K.INF)


# ------------------------------------------------------------------------------ images
def random_mask(shape, p, seed, smooth=0.0):
    """A random mask with about a fraction p of True voxels (smoothed noise when smooth > 0,
    so that the phase has pores several voxels wide)."""
    rng = np.random.default_rng(seed)
    a = rng.random(shape)
    if smooth:
        a = ndi.gaussian_filter(a, smooth, mode="wrap")
    return a < np.quantile(a, p)


def single_hole(shape, where):
    """All True but one False voxel: long distances (the envelope path of the EDT)."""
    m = np.ones(shape, bool)
    m[where] = False
    return m


def slab_with_gap(shape):
    """True except a plane at z = 3 and a box: lines along x and y with no False voxel."""
    m = np.ones(shape, bool)
    m[3] = False
    m[-4:, 2:5, 1:3] = False
    return m


MODEL = generate(preset("paper"), (40, 44, 48), 20, 7, backend="numpy")

EDT_IMAGES = {
    "sparse": random_mask((23, 29, 31), 0.3, 1),
    "dense": random_mask((30, 21, 26), 0.85, 2),
    "smooth": random_mask((33, 35, 37), 0.7, 3, smooth=2.5),
    "hole": single_hole((37, 41, 44), (5, 30, 11)),
    "hole-corner": single_hole((25, 26, 90), (0, 0, 0)),
    "slab-gap": slab_with_gap((12, 50, 47)),
    "thin": random_mask((1, 40, 37), 0.8, 4),
    "line": random_mask((60, 1, 1), 0.8, 5),
    "model-pore": phase_mask(MODEL, "pore"),
    "model-solid": phase_mask(MODEL, "solid"),
}


def ref_sq_edt(mask):
    """SciPy's float64 EDT (outside the window counts as phase), squared and rounded."""
    return np.rint(ndi.distance_transform_edt(mask) ** 2).astype(np.int64)


# ------------------------------------------------------------------- squared EDT
def brute_line(g):
    """min over p with g[p] < INF of g[p] + (q - p)^2, INF when there is none."""
    n = len(g)
    q = np.arange(n)
    fin = g < INF
    if not fin.any():
        return np.full(n, INF, np.int64)
    c = g[None, fin].astype(np.int64) + (q[:, None] - q[None, fin]) ** 2
    return c.min(axis=1)


def line_cases():
    rng = np.random.default_rng(11)
    out = []
    for n in (1, 2, 3, 7, 64, 300):
        for kind in ("small", "large", "inf", "one-site", "none"):
            if kind == "small":
                g = rng.integers(0, 30, n)
            elif kind == "large":
                g = rng.integers(0, 4 * n * n, n)
            elif kind == "inf":
                g = np.where(rng.random(n) < 0.7, INF, rng.integers(0, 50, n))
            elif kind == "one-site":  # long brute-force searches: exceeds the step budget
                g = np.full(n, INF)
                g[rng.integers(n)] = int(rng.integers(0, 5))
            else:
                g = np.full(n, INF)
            out.append(g.astype(np.int32))
    return out


@pytest.mark.parametrize("fn", ["envelope", "line"])
def test_line_minimum_equals_brute_force(fn):
    for g in line_cases():
        n = len(g)
        out = np.empty(n, np.int32)
        v = np.empty(n, np.int64)
        zb = np.empty(n + 1, np.float64)
        kern = K._envelope if fn == "envelope" else K._line
        kern(g.copy(), n, out, v, zb)
        np.testing.assert_array_equal(out, brute_line(g))


@pytest.mark.parametrize("name", list(EDT_IMAGES))
def test_squared_edt_equals_scipy(name):
    mask = EDT_IMAGES[name]
    got = K.squared_edt(mask)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, ref_sq_edt(mask))
    # and the backend's EDT (the ``edt`` package), which the array-module path uses
    d = NP.distance_transform_edt(mask).astype(np.float64)
    np.testing.assert_array_equal(got, np.rint(d * d))


def test_squared_edt_serial_and_parallel_agree(monkeypatch):
    mask = EDT_IMAGES["smooth"]
    par = K.squared_edt(mask)
    monkeypatch.setattr(K, "PARALLEL_MIN_VOXELS", 1 << 62)
    np.testing.assert_array_equal(K.squared_edt(mask), par)


def test_squared_edt_all_phase_and_bad_input():
    np.testing.assert_array_equal(K.squared_edt(np.ones((3, 4, 5), bool)), INF)
    with pytest.raises(ValueError):
        K.squared_edt(np.ones((4, 4), bool))


# -------------------------------------------------------------------------- level map
@pytest.mark.parametrize("name", ["sparse", "smooth", "hole", "model-pore", "model-solid"])
@pytest.mark.parametrize("radii", ["integer", "custom", "many"])
def test_levels_equal_cpsd_levels(name, radii):
    mask = EDT_IMAGES[name]
    radii_vox = {
        "integer": None,
        "custom": np.array([0.7, 1.5, 2.2, 3.0, 4.6, 6.1, 9.9]),
        "many": np.sqrt(np.arange(1, 400)),  # ~400 distinct lattice balls: a uint16 map
    }[radii]
    F, grid, mg, inv = intrusion_mod._levels_any(NP, mask, radii_vox, "flood")
    F0, grid0, mg0, inv0 = cpsd_mod._levels(NP, mask, radii_vox)
    assert F.dtype == F0.dtype
    if radii == "many":
        assert F.dtype == np.uint16
    np.testing.assert_array_equal(F, F0)
    np.testing.assert_array_equal(grid, grid0)
    np.testing.assert_array_equal(mg, mg0)
    np.testing.assert_array_equal(inv, inv0)


def test_count_levels():
    rng = np.random.default_rng(3)
    C = rng.integers(0, 9, (17, 18, 19)).astype(np.uint8)
    mask = rng.random(C.shape) < 0.6
    np.testing.assert_array_equal(K.count_levels(C, mask, 9), np.bincount(C[mask], minlength=9))
    with pytest.raises(ValueError):
        K.count_levels(C, mask, 8)


# ------------------------------------------------------------------------- the flood
def ref_bottleneck(F, axis, side):
    """1 + largest i with x in a face-connected component of {F > i} meeting the inlet
    slice: one SciPy labelling per level."""
    inlet = [slice(None)] * 3
    inlet[axis] = 0 if side == "low" else -1
    B = np.zeros(F.shape, np.int64)
    for i in range(int(F.max()) if F.size else 0):
        lab, _ = ndi.label(F > i, FACES)
        hit = np.unique(lab[tuple(inlet)])
        B += np.isin(lab, hit[hit > 0])
    return B


FLOOD_IMAGES = ["sparse", "dense", "smooth", "slab-gap", "thin", "line", "model-pore",
                "model-solid"]


@pytest.mark.parametrize("name", FLOOD_IMAGES)
@pytest.mark.parametrize("axis,side", [(0, "low"), (1, "high"), (2, "low"), (2, "high")])
def test_flood_equals_per_level_labelling(name, axis, side, monkeypatch):
    mask = EDT_IMAGES[name]
    F, _, _, _ = cpsd_mod._levels(NP, mask, None)
    got = K.bottleneck_flood(F, axis, side)
    assert got.dtype == F.dtype and got.shape == F.shape
    np.testing.assert_array_equal(got, ref_bottleneck(F, axis, side))
    # the array-module twin, with both of its labelling paths
    for frac in (0.0, 1.0):
        monkeypatch.setattr(intrusion_mod, "_SPARSE_FRACTION", frac)
        np.testing.assert_array_equal(intrusion_mod.bottleneck_levels(NP, F, axis, side), got)


def test_flood_uint16_levels_and_unreachable_parts():
    """A uint16 level map (many radii) with a part cut off from the inlet: B = 0 there."""
    mask = EDT_IMAGES["hole"].copy()
    mask[:, 20, :] = False  # a wall: the y > 20 half cannot be reached from y = 0
    F, _, _, _ = cpsd_mod._levels(NP, mask, np.sqrt(np.arange(1, 300)))
    assert F.dtype == np.uint16 and int(F.max()) > 255
    got = K.bottleneck_flood(F, 1, "low")
    np.testing.assert_array_equal(got, ref_bottleneck(F, 1, "low"))
    assert not got[:, 20:].any() and got[:, :20][mask[:, :20]].min() > 0


def test_flood_no_phase_on_inlet():
    F = np.zeros((6, 7, 8), np.uint8)
    F[2:5, 2:5, 2:5] = 3
    np.testing.assert_array_equal(K.bottleneck_flood(F, 0, "low"), 0)
    assert K.bottleneck_flood(F[:, :, :0], 0, "low").shape == (6, 7, 0)


@pytest.mark.parametrize("name", FLOOD_IMAGES)
@pytest.mark.parametrize("axis,side", [(0, "low"), (1, "high"), (2, "low"), (2, "high")])
def test_widest_path_sweeps_equal_per_level_labelling(name, axis, side):
    from cbagpu.measure.widest_path import widest_path_levels

    F, _, _, _ = cpsd_mod._levels(NP, EDT_IMAGES[name], None)
    got = widest_path_levels(NP, F, axis, side)
    assert got.dtype == F.dtype and got.shape == F.shape
    np.testing.assert_array_equal(got, ref_bottleneck(F, axis, side))


def test_widest_path_sweeps_uint16_winding_and_unreachable():
    """uint16 levels, a part cut off from the inlet (B = 0 there), and a corridor that
    winds back towards the inlet several times (one round of sweeps per reversal)."""
    from cbagpu.measure.widest_path import widest_path_levels

    mask = EDT_IMAGES["hole"].copy()
    mask[:, 20, :] = False
    F, _, _, _ = cpsd_mod._levels(NP, mask, np.sqrt(np.arange(1, 300)))
    assert F.dtype == np.uint16
    got = widest_path_levels(NP, F, 1, "low")
    np.testing.assert_array_equal(got, ref_bottleneck(F, 1, "low"))
    assert not got[:, 20:].any()
    snake = np.zeros((21, 9, 9), np.uint8)  # walls at z = 4, 8, ... with alternating gaps
    snake[:, 1:-1, 1:-1] = 5
    for i, z in enumerate(range(4, 20, 4)):
        snake[z] = 0
        snake[z, 1:-1, (1 if i % 2 else 6):(3 if i % 2 else 8)] = 2  # a narrow gap
    snake[0, 4, 4] = 7  # a wide inlet voxel: the rest is capped by the gaps
    got = widest_path_levels(NP, snake, 0, "low")
    np.testing.assert_array_equal(got, ref_bottleneck(snake, 0, "low"))
    assert got[20, 4, 4] == 2 and got[0, 4, 4] == 7


def test_warm_up_compiles():
    K.warm_up()


# ------------------------------------------------------------------------ end to end
def both_paths(fn, *args, **kw):
    """The Numba flood and the array-module labelling route (method="labels")."""
    return fn(*args, method="flood", **kw), fn(*args, method="labels", **kw)


@pytest.mark.parametrize("phase", ["pore", "solid"])
@pytest.mark.parametrize("axis,side", [(0, "low"), ("y", "high"), ("x", "low")])
def test_intrusion_kernels_equal_array_module_path(phase, axis, side):
    mask = phase_mask(MODEL, phase)
    a, b = both_paths(intrusion, mask, 20.0, axis=axis, side=side,
                      backend="numpy")
    np.testing.assert_array_equal(a.r, b.r)
    np.testing.assert_array_equal(a.value, b.value)
    assert a.r_min == b.r_min and a.r_min_grid == b.r_min_grid
    ca, cb = both_paths(constrictivity, mask, 20.0, axis=axis, side=side,
                        backend="numpy")
    np.testing.assert_array_equal(ca.cpsd.value, cb.cpsd.value)
    np.testing.assert_array_equal(ca.intrusion.value, cb.intrusion.value)
    assert ca.beta == cb.beta and ca.r_max == cb.r_max


@pytest.mark.parametrize("phase", ["pore", "solid"])
def test_intrusion_by_widest_path_sweeps_equals_kernels(phase):
    """The GPU's route (EDT of the backend, widest-path sweeps) run on the CPU with the
    sweeps' NumPy twin: the same intrusion curve and r_min as the Numba kernels."""
    mask = phase_mask(MODEL, phase)
    a = intrusion(mask, 20.0, axis="x", side="high", backend="numpy")
    b = intrusion(mask, 20.0, axis="x", side="high", backend="numpy", method="sweeps")
    np.testing.assert_array_equal(a.value, b.value)
    assert a.r_min == b.r_min


def test_intrusion_custom_radii_and_tiny_windows():
    mask = phase_mask(MODEL, "pore")
    radii = 20.0 * np.array([0.5, 1.0, 1.5, 2.3, 3.1, 4.0, 5.5, 8.0])
    a, b = both_paths(intrusion, mask, 20.0, axis=2, backend="numpy", radii=radii)
    np.testing.assert_array_equal(a.value, b.value)
    for shape in ((1, 9, 11), (7, 1, 1), (2, 2, 2)):
        m = random_mask(shape, 0.7, 9)
        for axis in (0, 1, 2):
            a, b = both_paths(intrusion, m, 1.0, axis=axis, backend="numpy")
            np.testing.assert_array_equal(a.value, b.value)


def test_long_channel_r_min():
    """A straight channel of radius rho = 3 (axis EDT sqrt(10)) from the inlet into a big
    chamber 120 voxels away: r_min_grid = 3 exactly, with a window where the EDT's lines
    are long (the envelope path)."""
    rho = 3
    mask = np.zeros((160, 40, 40), bool)
    mask[120:158, 2:38, 2:38] = True
    z, y, x = np.indices(mask.shape)
    mask |= ((y - 20) ** 2 + (x - 20) ** 2 <= rho * rho) & (z < 121)
    res = intrusion(mask, 1.0, axis=0, backend="numpy")
    assert res.r_min_grid == rho
    assert res.value[rho + 1] < 0.03 < 0.95 < res.value[rho]
    assert math.isclose(res.value[0], 1.0)


def test_method_auto_follows_the_backend_capabilities():
    from cbagpu.backend import NumPyBackend
    from cbagpu.backend.base import Backend

    class Device(NumPyBackend):  # arrays off the host, no kernels: labels
        on_host = False

    class Kernels(NumPyBackend):  # a backend that launches kernels: sweeps
        runs_kernels = True

    shape = (4, 5, 6)
    assert intrusion_mod.resolve_method(NumPyBackend(), "auto", shape) == "flood"
    assert intrusion_mod.resolve_method(Device(), "auto", shape) == "labels"
    assert intrusion_mod.resolve_method(Kernels(), "auto", shape) == "sweeps"
    assert intrusion_mod.resolve_method(NumPyBackend(), "labels", shape) == "labels"
    with pytest.raises(ValueError, match="flood"):
        intrusion_mod.resolve_method(Device(), "flood", shape)
    assert issubclass(Device, Backend)


@pytest.mark.parametrize("method", ["fast", None, 1, "Flood"])
def test_bad_method_is_refused_before_work(method):
    from cbagpu.errors import InvalidInputError

    mask = random_mask((6, 6, 6), 0.6, 1)
    for fn in (intrusion, constrictivity):
        with pytest.raises(InvalidInputError, match="method"):
            fn(mask, 1.0, method=method)
