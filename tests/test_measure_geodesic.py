"""Mean geodesic tortuosity (cbagpu.measure.geodesic): the distance map against independent
shortest-path codes on the same 26-connected graph (SciPy's Dijkstra on an explicit sparse
graph, scikit-image's MCP_Geometric), and tau / fraction_connected against hand-computed
values on images with known paths.

Tolerances: the float64 mode must equal the float64 Dijkstra to 1e-9 voxels (sums of a few
dozen steps, exact up to ~1e-14). The default float32 mode rounds each of the h <= d steps of
a path of length d to 2^-24 relative, and the weights sqrt(2), sqrt(3) to 2^-24, so it may
differ from the exact length by at most 2^-24 * (d + 2) * d (derived in float32_bound).
Integer lengths (straight channels) are exact in float32, so tau = 1 is tested exactly.
"""

from __future__ import annotations

import itertools
import math
import tracemalloc

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from cbagpu import generate, preset
from cbagpu.measure import geodesic
from cbagpu.measure.geodesic import (
    GeodesicTortuosity,
    geodesic_distance_map,
    geodesic_tortuosity,
)
from cbagpu.measure.phases import phase_mask

OFFSETS = [o for o in itertools.product((-1, 0, 1), repeat=3) if o != (0, 0, 0)]
HALF = [o for o in OFFSETS if o > (0, 0, 0)]  # one of each pair +-o: 13 undirected edges


# -- references -------------------------------------------------------------------------------
def _pair_slices(o: tuple[int, int, int], shape: tuple[int, ...]):
    src = tuple(slice(max(0, -k), n - max(0, k)) for k, n in zip(o, shape, strict=True))
    dst = tuple(slice(max(0, k), n - max(0, -k)) for k, n in zip(o, shape, strict=True))
    return src, dst


def dijkstra_map(mask: np.ndarray, axis: int = 0) -> np.ndarray:
    """Float64 distances to the last layer along ``axis``: scipy's Dijkstra on an explicit
    CSR graph of the phase voxels with the 13 x 2 neighbour edges of Euclidean length, all
    outlet voxels as sources (min_only=True). inf outside the phase and where unreachable."""
    m = np.moveaxis(mask.astype(bool), axis, 0)
    idx = np.full(m.shape, -1, np.int64)
    idx[m] = np.arange(int(m.sum()))
    rows, cols, wts = [], [], []
    for o in HALF:
        src, dst = _pair_slices(o, m.shape)
        a, b = idx[src], idx[dst]
        ok = (a >= 0) & (b >= 0)
        rows.append(a[ok])
        cols.append(b[ok])
        wts.append(np.full(int(ok.sum()), math.sqrt(sum(k * k for k in o))))
    n = int(m.sum())
    graph = csr_matrix(
        (np.concatenate(wts), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    sources = idx[-1][m[-1]]
    out = np.full(m.shape, np.inf)
    if sources.size:
        out[m] = dijkstra(graph, directed=False, indices=sources, min_only=True)
    return np.moveaxis(out, 0, axis)


def float32_bound(d: np.ndarray) -> np.ndarray:
    """Largest rounding error of a float32 path sum of exact length d (see module doc)."""
    return 2.0**-24 * (d + 2.0) * d + 1e-12


def assert_same_map(got: np.ndarray, ref: np.ndarray, exact: bool) -> None:
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(ref))
    assert np.all(np.isinf(got[~np.isfinite(ref)]))
    fin = np.isfinite(ref)
    err = np.abs(got[fin].astype(np.float64) - ref[fin])
    tol = 1e-9 if exact else float32_bound(ref[fin])
    assert np.all(err <= tol), f"max error {err.max():.3g}"


def random_mask(shape, fill, seed):
    return np.random.default_rng(seed).random(shape) < fill


@pytest.fixture(scope="module")
def paper_labels():
    """One 96^3 paper realization at 20 nm (crops of it are realizations too)."""
    return generate(preset("paper"), (96, 96, 96), 20, 3, backend="numpy")


@pytest.fixture(params=["default", "dense_only", "sparse_early", "rounds"])
def mode(request, monkeypatch):
    """The two phases of the algorithm on their own and together: never switch to the sparse
    Bellman-Ford (sweeps to convergence), switch after the first round, or the default;
    "rounds": the GPU's variant (whole sweeps of kernels/geodesic.cu until a round changes
    nothing), run here with the kernel's NumPy twin. Returns the ``method=`` to pass."""
    if request.param == "dense_only":
        monkeypatch.setattr(geodesic, "_SPARSE_FRACTION", 0.0)
        monkeypatch.setattr(geodesic, "_SPARSE_MIN", 0)
    elif request.param == "sparse_early":
        monkeypatch.setattr(geodesic, "_SPARSE_FRACTION", 1.0)
        monkeypatch.setattr(geodesic, "_COLLECT_FACTOR", math.inf)
    return "rounds" if request.param == "rounds" else "boxes"


# -- against independent shortest-path codes -------------------------------------------------
@pytest.mark.parametrize("fill", [0.15, 0.35, 0.6, 0.85])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distance_map_equals_scipy_dijkstra(fill, seed, mode):
    mask = random_mask((12, 14, 15), fill, seed)
    ref = dijkstra_map(mask)
    assert_same_map(geodesic_distance_map(mask, 0, "numpy", method=mode, dtype=np.float64), ref,
                    exact=True)
    assert_same_map(geodesic_distance_map(mask, 0, "numpy", method=mode), ref, exact=False)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_distance_map_equals_dijkstra_along_every_axis(axis, mode):
    mask = random_mask((13, 11, 16), 0.45, 10 + axis)
    ref = dijkstra_map(mask, axis)
    got = geodesic_distance_map(mask, axis, "numpy", method=mode, dtype=np.float64)
    assert got.shape == mask.shape
    assert_same_map(got, ref, exact=True)


def test_paper_realization_equals_dijkstra_and_mcp(mode, paper_labels):
    """A 40^3 paper realization (both phases): the sweeps with transposed x-planes, the
    bounding boxes and the sparse phase all run; compare with Dijkstra and with
    skimage.graph.MCP_Geometric (unit cost in the phase: step cost = Euclidean length)."""
    from skimage.graph import MCP_Geometric

    labels = paper_labels[:40, 20:60, 56:]
    for phase in ("pore", "solid"):
        mask = phase_mask(labels, phase)
        ref = dijkstra_map(mask)
        assert_same_map(geodesic_distance_map(mask, 0, "numpy", method=mode, dtype=np.float64),
                        ref, True)
        assert_same_map(geodesic_distance_map(mask, 0, "numpy", method=mode), ref, exact=False)
        mcp = MCP_Geometric(np.where(mask, 1.0, np.inf), fully_connected=True)
        cum, _ = mcp.find_costs([(39, int(y), int(x)) for y, x in np.argwhere(mask[-1])])
        fin = np.isfinite(ref)
        np.testing.assert_allclose(cum[fin], ref[fin], rtol=0, atol=1e-9)


@pytest.mark.parametrize("fill", [0.2, 0.5, 0.8])
def test_sparse_bellman_ford_alone_equals_dijkstra(fill):
    """The second phase on its own, started from the outlet (no sweeps): a plain vectorised
    Bellman-Ford that must reach the exact distances by itself."""
    from cbagpu.backend import get_backend

    mask = random_mask((12, 14, 15), fill, 20)
    d = np.full((14, 16, 17), np.nan)
    d[1:-1, 1:-1, 1:-1][mask] = np.inf
    d[12][np.isinf(d[12])] = 0.0
    frontier = np.flatnonzero(d == 0.0)
    geodesic._sparse_bellman_ford(get_backend("numpy"), d, frontier)
    got = d[1:-1, 1:-1, 1:-1]
    got[np.isnan(got)] = np.inf
    assert_same_map(got, dijkstra_map(mask), exact=True)


# -- known geometries ------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_straight_channel_gives_tau_one_exactly(axis):
    shape = [9, 9, 9]
    shape[axis] = 21
    mask = np.zeros(shape, bool)
    sl = [slice(3, 6)] * 3
    sl[axis] = slice(None)
    mask[tuple(sl)] = True
    res = geodesic_tortuosity(mask, 20.0, axis=axis, backend="numpy", return_map=True)
    assert res.tau == 1.0
    assert res.percolates and res.fraction_connected == 1.0
    assert res.n_inlet == res.n_connected == 9
    assert res.thickness_nm == 20.0 * 20 and res.mean_path_length_nm == 400.0
    assert res.tau_std == 0.0 and res.axis == axis
    np.testing.assert_array_equal(res.path_lengths_nm, np.full(9, 400.0))
    # inside the channel the distance is the number of layers to the outlet
    layer = np.arange(21).reshape([-1 if a == axis else 1 for a in range(3)])
    expect = np.where(mask, 20 - layer, np.inf)
    np.testing.assert_array_equal(res.distance_map, expect)


def test_full_image_gives_tau_one():
    res = geodesic_tortuosity(np.ones((15, 7, 8), bool), 10.0, backend="numpy")
    assert res.tau == 1.0 and res.n_inlet == 56 and res.fraction_connected == 1.0


def test_no_inlet_outlet_path_says_so():
    mask = np.ones((20, 10, 10), bool)
    mask[9] = False  # a wall across the whole image
    res = geodesic_tortuosity(mask, 20.0, backend="numpy", return_map=True)
    assert not res.percolates
    assert res.tau == math.inf and res.mean_path_length_nm == math.inf
    assert res.fraction_connected == 0.0 and res.n_connected == 0 and res.n_inlet == 100
    assert res.path_lengths_nm.size == 0 and math.isnan(res.tau_std)
    d = res.distance_map
    assert np.all(np.isinf(d[:10]))  # in front of the wall, and the wall itself
    np.testing.assert_array_equal(d[10:], np.broadcast_to(
        (19 - np.arange(10, 20))[:, None, None], (10, 10, 10)).astype(np.float32))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_thin_images(axis):
    """Two layers only, and lines of voxels: the sweeps over planes of one voxel."""
    shape = [3, 1, 1]
    shape[axis] = 2
    res = geodesic_tortuosity(np.ones(shape, bool), 4.0, axis=axis, backend="numpy")
    assert res.tau == 1.0 and res.thickness_nm == 4.0
    assert res.n_inlet == res.n_connected == math.prod(shape) // 2
    two = np.zeros((3, 3, 3), bool)
    two[0, 0, 0] = two[1, 1, 1] = True  # one corner step between the two layers
    two = np.moveaxis(two[:2], 0, axis)
    res = geodesic_tortuosity(two, 1.0, axis=axis, backend="numpy")
    assert res.tau == pytest.approx(math.sqrt(3), rel=1e-7) and res.n_inlet == 1
    line = np.ones([1 if a != axis else 17 for a in range(3)], bool)
    assert geodesic_tortuosity(line, 1.0, axis=axis, backend="numpy").tau == 1.0


def test_phase_absent_from_inlet():
    mask = np.ones((10, 6, 6), bool)
    mask[0] = False
    res = geodesic_tortuosity(mask, 1.0, backend="numpy")
    assert res.n_inlet == 0 and res.fraction_connected == 0.0
    assert not res.percolates and res.tau == math.inf


def test_z_shaped_channel_hand_computed():
    """A one-voxel channel: z = 0..4 at y = 1, then y = 1..7 at z = 4, then z = 4..10 at
    y = 7 (x = 2). The shortest path cuts both corners diagonally, (3,1) -> (4,2) and
    (4,6) -> (5,7): 8 axial z-steps, 4 axial y-steps and 2 steps of length sqrt(2)."""
    mask = np.zeros((11, 9, 5), bool)
    mask[0:5, 1, 2] = True
    mask[4, 1:8, 2] = True
    mask[4:11, 7, 2] = True
    length = 12 + 2 * math.sqrt(2)
    for dtype in (np.float32, np.float64):
        res = geodesic_tortuosity(mask, 5.0, backend="numpy", dtype=dtype)
        assert res.n_inlet == 1 and res.n_connected == 1
        np.testing.assert_allclose(res.tau, length / 10, rtol=float32_bound(length) / length)
        np.testing.assert_allclose(res.path_lengths_nm, [5.0 * length], rtol=1e-6)
    d = geodesic_distance_map(mask, 0, "numpy", dtype=np.float64)
    assert d[4, 4, 2] == pytest.approx(7 + math.sqrt(2), abs=1e-12)  # 2 + sqrt(2) + 5
    assert d[2, 1, 2] == pytest.approx(length - 2, abs=1e-12)


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
def test_winding_diagonal_channel_needs_a_second_round(mode, perm):
    """A one-voxel channel whose last leg can only be found in the second round of sweeps,
    where the boxes are restricted: from the outlet (15, 0) at x = 1 it runs diagonally
    down to (5, 10) (found by the -z sweep), up to (12, 17) (+y sweep), straight along x to
    x = 5 (only the +x sweep, which comes after the -z and -y sweeps of round 1) and
    diagonally down to the inlet (0, 5) at x = 5: the edges (-1, -1, 0) of that leg belong
    only to the -z and -y sweeps, and each reaches a diagonal neighbour just outside the box
    of the voxels changed before. The shortest path cuts the corners of the crossing,
    (11,16,1) -> (12,17,2) and (12,17,4) -> (11,16,5) (sqrt(3) each); the rest are 2 axial
    steps and 10 + 6 + 11 steps of sqrt(2). The image is also rotated (axes permuted, the
    transport axis with them), so that every sweep plays every role."""
    mask = np.zeros((16, 19, 7), bool)
    t = np.arange(18)
    mask[15 - t[:11], t[:11], 1] = True  # (15, 0) -> (5, 10)
    mask[5 + t[:8], 10 + t[:8], 1] = True  # -> (12, 17)
    mask[12, 17, 1:6] = True  # x = 1 -> 5
    mask[12 - t[:13], 17 - t[:13], 5] = True  # (12, 17) -> inlet (0, 5)
    length = 27 * math.sqrt(2) + 2 * math.sqrt(3) + 2
    mask = np.transpose(mask, perm)
    axis = perm.index(0)
    d = geodesic_distance_map(mask, axis, "numpy", method=mode, dtype=np.float64)
    assert_same_map(d, dijkstra_map(mask, axis), exact=True)
    assert np.transpose(d, np.argsort(perm))[0, 5, 5] == pytest.approx(length, abs=1e-12)
    res = geodesic_tortuosity(mask, 20.0, axis=axis, backend="numpy", method=mode)
    np.testing.assert_allclose(res.tau, length / 15, rtol=float32_bound(length) / length)
    assert res.n_inlet == res.n_connected == 1


def test_diagonal_leg_across_the_transport_axis_needs_a_second_round(mode):
    """A one-voxel channel with a leg diagonal in (y, x) that can only be found in the second
    round: down from the outlet (15, 2, 2) to z = 8, diagonally to (8, 8, 8) in the plane
    z = 8, up to z = 12 (only the +z sweep, the last of round 1), diagonally to (12, 3, 13)
    in the plane z = 12 (edges (0, -1, +1): the y- and x-sweeps, which see them in round 2
    just outside the boxes of the changed voxels, in the column direction of their planes),
    and down to the inlet (0, 3, 13). The shortest path cuts each of the four corners with
    a step of sqrt(3): 6 + 2 + 11 axial steps, 4 + 3 steps of sqrt(2), 4 of sqrt(3)."""
    mask = np.zeros((16, 11, 16), bool)
    t = np.arange(7)
    mask[8:16, 2, 2] = True
    mask[8, 2 + t, 2 + t] = True
    mask[8:13, 8, 8] = True
    mask[12, 8 - t[:6], 8 + t[:6]] = True
    mask[0:13, 3, 13] = True
    length = 19 + 7 * math.sqrt(2) + 4 * math.sqrt(3)
    d = geodesic_distance_map(mask, 0, "numpy", method=mode, dtype=np.float64)
    assert_same_map(d, dijkstra_map(mask), exact=True)
    assert d[0, 3, 13] == pytest.approx(length, abs=1e-12)
    res = geodesic_tortuosity(mask, 20.0, backend="numpy", method=mode)
    np.testing.assert_allclose(res.tau, length / 15, rtol=float32_bound(length) / length)
    assert res.n_inlet == res.n_connected == 1


@pytest.mark.parametrize("kind", ["edge", "corner"])
def test_diagonal_staircase(kind):
    """Voxels (k, k, 0) (edge-diagonal steps, sqrt(2)) or (k, k, k) (corner steps, sqrt(3)):
    the only path has n - 1 diagonal steps, tau = sqrt(2) or sqrt(3)."""
    n = 17
    mask = np.zeros((n, n, n), bool)
    k = np.arange(n)
    mask[k, k, k if kind == "corner" else 0] = True
    step = math.sqrt(3) if kind == "corner" else math.sqrt(2)
    res = geodesic_tortuosity(mask, 1.0, backend="numpy")
    length = (n - 1) * step
    np.testing.assert_allclose(res.tau, step, rtol=float32_bound(length) / length)
    assert res.n_inlet == res.n_connected == 1


def test_fraction_connected_on_two_part_image():
    """y < 4: an open slab through the whole image (tau = 1); y = 4: a wall separating it
    from y > 4, which is closed by a wall at z = 5: 32 of the 56 inlet voxels reach the
    outlet."""
    mask = np.ones((10, 8, 8), bool)
    mask[:, 4, :] = False
    mask[5, 5:, :] = False
    res = geodesic_tortuosity(mask, 20.0, backend="numpy")
    assert res.n_inlet == 56 and res.n_connected == 32
    assert res.fraction_connected == pytest.approx(32 / 56, abs=1e-15)
    assert res.percolates and res.tau == 1.0


# -- conventions and API ---------------------------------------------------------------------
def test_axis_is_a_relabelling_of_the_image():
    mask = random_mask((14, 12, 10), 0.5, 7)
    for axis in (1, 2, -1):
        a = geodesic_tortuosity(mask, 20.0, axis=axis, backend="numpy", return_map=True)
        b = geodesic_tortuosity(np.moveaxis(mask, axis, 0), 20.0, axis=0, backend="numpy",
                                return_map=True)
        assert (a.tau, a.n_inlet, a.n_connected) == (b.tau, b.n_inlet, b.n_connected)
        assert a.axis == axis % 3 and b.axis == 0
        np.testing.assert_array_equal(np.moveaxis(a.distance_map, axis, 0), b.distance_map)


def test_result_fields_are_consistent(paper_labels):
    mask = phase_mask(paper_labels[-32:, :32, -32:], "pore")
    res = geodesic_tortuosity(mask, 20.0, backend="numpy", return_map=True)
    assert isinstance(res, GeodesicTortuosity)
    d = res.distance_map
    assert d.dtype == np.float32 and d.shape == mask.shape
    np.testing.assert_array_equal(d, geodesic_distance_map(mask, 0, "numpy"))
    inlet = d[0][mask[0]]
    assert res.n_inlet == mask[0].sum() and res.n_connected == np.isfinite(inlet).sum()
    np.testing.assert_allclose(res.path_lengths_nm, 20.0 * inlet[np.isfinite(inlet)], rtol=1e-7)
    assert res.tau == pytest.approx(res.path_lengths_nm.mean() / res.thickness_nm, rel=1e-12)
    assert res.tau >= 1.0
    # every finite distance is at least the number of layers to the outlet
    layers = 31 - np.arange(32)[:, None, None]
    assert np.all(d[np.isfinite(d)] >= np.broadcast_to(layers, d.shape)[np.isfinite(d)])
    # a 0/1 uint8 mask is the same phase
    same = geodesic_tortuosity(mask.astype(np.uint8), 20.0, backend="numpy")
    assert same.tau == res.tau and same.n_connected == res.n_connected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"voxel_size": 0.0}, "voxel_size"),
        ({"voxel_size": -1.0}, "voxel_size"),
        ({"voxel_size": float("nan")}, "voxel_size"),
        ({"axis": 3}, "axis"),
        ({"axis": 1.0}, "axis"),
        ({"dtype": np.float16}, "dtype"),
    ],
)
def test_invalid_arguments(kwargs, message):
    args = {"voxel_size": 20.0, "axis": 0, "backend": "numpy"} | kwargs
    with pytest.raises(ValueError, match=message):
        geodesic_tortuosity(np.ones((4, 4, 4), bool), **args)


def test_invalid_shapes():
    with pytest.raises(ValueError, match="3D"):
        geodesic_distance_map(np.ones((4, 4), bool), 0, "numpy")
    with pytest.raises(ValueError, match="2 layers"):
        geodesic_distance_map(np.ones((4, 1, 4), bool), 1, "numpy")


def test_working_memory_is_within_twelve_bytes_per_voxel(paper_labels):
    """Traced NumPy allocations (distance array, transposed copy, boxes, temporaries) of a
    96^3 pore phase stay below 12 bytes per voxel beyond the caller's mask (expected ~8)."""
    mask = phase_mask(paper_labels, "pore")
    tracemalloc.start()
    try:
        geodesic_tortuosity(mask, 20.0, backend="numpy")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak / mask.size < 12.0


# -- method= -------------------------------------------------------------------------------
def test_method_auto_follows_the_backend_capabilities():
    from cbagpu.backend import NumPyBackend

    class Kernels(NumPyBackend):  # a backend that launches kernels: rounds
        runs_kernels = True

    assert geodesic.resolve_method(NumPyBackend(), "auto") == "boxes"
    assert geodesic.resolve_method(Kernels(), "auto") == "rounds"
    assert geodesic.resolve_method(Kernels(), "boxes") == "boxes"
    assert geodesic.resolve_method(NumPyBackend(), "rounds") == "rounds"


@pytest.mark.parametrize("method", ["fast", None, 1, "Rounds"])
def test_bad_method_is_refused_before_work(method):
    from cbagpu.errors import InvalidInputError

    mask = random_mask((6, 6, 6), 0.6, 1)
    with pytest.raises(InvalidInputError, match="method"):
        geodesic_tortuosity(mask, 1.0, method=method)
    with pytest.raises(InvalidInputError, match="method"):
        geodesic_distance_map(mask, method=method)
