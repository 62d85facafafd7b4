"""The CUDA kernels, compiled as host C++ (tests/support/cuda_host_shim.h) and called through
ctypes with the same argument builders as the CuPy launches, against their NumPy twins.

This exercises the kernels' logic, indexing and argument order without a GPU; the real GPU
runs are in tests/gpu/. The last section runs the GPU route's Python code itself (every
``backend.name == "cupy"`` branch that launches kernels: generation, geodesic sweeps,
intrusion sweeps, transport) on a NumPy backend named "cupy" whose ``kernel()`` returns the
host-compiled functions, against the NumPy backend's own route.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.backend import get_backend
from cbagpu.backend.kernels import kernel_dir, kernel_files
from cbagpu.backend.numpy_backend import NumPyBackend
from cbagpu.simulate.germs import window_balls, window_spheroids
from cbagpu.simulate.grf import field_blocks, field_kernel
from cbagpu.simulate.noise import field_key, noise_kernel_args, white_noise_numpy
from cbagpu.simulate.raster import (
    ball_table,
    grain_rows,
    paint_grains,
    paint_kernel_args,
    spheroid_table,
)
from cbagpu.simulate.realization import _threshold_numpy, threshold_kernel_args

CXX = shutil.which("g++") or shutil.which("c++")
SHIM = Path(__file__).parent / "support" / "cuda_host_shim.h"
PAPER = preset("paper")
NP = get_backend("numpy")

_CTYPES = {
    np.dtype(np.int32): ctypes.c_int32,
    np.dtype(np.int64): ctypes.c_int64,
    np.dtype(np.uint8): ctypes.c_uint8,
    np.dtype(np.uint32): ctypes.c_uint32,
    np.dtype(np.float32): ctypes.c_float,
    np.dtype(np.float64): ctypes.c_double,
}


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    if CXX is None:
        pytest.skip("no C++ compiler")
    out = tmp_path_factory.mktemp("kernels")
    libs = {}
    for name in [p.stem for p in kernel_files()]:
        src = out / f"{name}.cpp"
        src.write_text(f'#include "{SHIM}"\n' + (kernel_dir() / f"{name}.cu").read_text())
        lib = out / f"lib{name}.so"
        res = subprocess.run(
            [
                CXX,
                "-O2",
                "-ffp-contract=off",
                "-fno-fast-math",
                "-shared",
                "-fPIC",
                "-o",
                str(lib),
                str(src),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
        libs[name] = ctypes.CDLL(str(lib))
    return libs


def call(fn, args):
    """Call a host-compiled kernel with the argument tuple a CuPy launch would get."""
    cargs = []
    for a in args:
        if isinstance(a, np.ndarray):
            assert a.flags.c_contiguous
            cargs.append(ctypes.c_void_p(a.ctypes.data))
        else:
            cargs.append(_CTYPES[np.asarray(a).dtype](a))
    fn.restype = None
    fn(*cargs)


def test_noise_kernel_logic(host_kernels):
    key = field_key(77)
    origin, shape = (-9, 4, -33), (12, 17, 41)
    out = np.empty(shape, np.float32)
    call(host_kernels["noise"].white_noise, noise_kernel_args(out, key, origin))
    ref = white_noise_numpy(key, origin, shape)
    # same hash chain and uniforms; libm vs NumPy float32 log/sin/cos differ by a few ulp
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("voxel_size", [20, 40])
def test_raster_kernels_bit_identical_to_twin(host_kernels, voxel_size):
    vp = PAPER.to_voxel(voxel_size)
    origin, shape = (-70, 1000, 33), (60, 70, 90)
    for grains, kind, table_fn in (
        (window_spheroids(vp, 3, origin, shape), "spheroid", spheroid_table),
        (window_balls(vp, 3, origin, shape), "ball", ball_table),
    ):
        assert len(grains) > 0
        keep, rows, offset = grain_rows(
            grains.centers - np.asarray(origin, float), grains.extents(), shape
        )
        table = table_fn(grains)[keep]
        host = np.full(shape, 5, np.uint8)
        call(
            getattr(host_kernels["raster"], f"paint_{kind}_rows"),
            paint_kernel_args(host, origin, table, rows, offset, 9),
        )
        twin = np.full(shape, 5, np.uint8)
        paint_grains(NP, twin, grains, origin, 9)
        np.testing.assert_array_equal(host, twin)
        assert (twin == 9).any()


def test_threshold_kernel_matches_twin(host_kernels):
    kernel = field_kernel(PAPER.eta * 80)
    origin, shape = (-30, 0, 100), (150, 40, 60)
    host = np.full(shape, 7, np.uint8)
    twin = np.full(shape, 7, np.uint8)
    for piece, block in field_blocks(NP, kernel, 3, origin, shape):
        block = np.ascontiguousarray(block)
        call(
            host_kernels["combine"].threshold_into_labels,
            threshold_kernel_args(block, piece, host, 0.3),
        )
        _threshold_numpy(block, piece.field_slices, twin, piece.window_slices, 0.3)
    np.testing.assert_array_equal(host, twin)
    assert set(np.unique(twin)) == {0, 1}


def test_transport_kernels_match_twins(host_kernels):
    from cbagpu.transport import cuda_kernels as ck
    from cbagpu.transport.conductance import fine_level

    lib = host_kernels["transport"]
    rng = np.random.default_rng(11)
    shape = (9, 7, 11)  # odd sizes: partial 2x2x2 blocks
    s = (rng.random(shape) * (rng.random(shape) > 0.3)).astype(np.float32)
    lev = fine_level(np, s, 0.5)  # kern None: the array-module twins
    z = rng.random(shape).astype(np.float32)
    r = rng.random(shape).astype(np.float32)
    out = np.empty(shape, np.float32)
    call(lib.cba_apply_f32, ck.apply_args(lev, z, out))
    np.testing.assert_allclose(out, lev.apply(z), rtol=1e-5, atol=1e-5)
    z64 = z.astype(np.float64)
    call(lib.cba_apply_f64, ck.apply_args(lev, z64, out))
    np.testing.assert_allclose(out, lev.apply(z64), rtol=1e-5, atol=1e-5)
    for color in (0, 1):
        host = z.copy()
        call(lib.cba_gauss_seidel, ck.gauss_seidel_args(lev, r, host, color))
        np.testing.assert_allclose(host, lev.gauss_seidel(r, z.copy(), color), rtol=1e-5,
                                   atol=1e-6)
    rc = np.empty((5, 4, 6), np.float32)
    call(lib.cba_residual_restrict, ck.restrict_args(lev, r, z, rc))
    np.testing.assert_allclose(rc, lev.residual_restricted(r, z), rtol=1e-4, atol=1e-5)
    host = z.copy()
    call(lib.cba_add_prolonged, ck.prolong_args(host, rc))
    np.testing.assert_array_equal(host, lev.add_prolonged(z.copy(), rc))


def preset_labels():
    """A small paper realization at 20 nm (both phases percolate along z)."""
    return generate(PAPER, (24, 30, 28), 20, 5, backend="numpy")


def _host_sweep(lib, dtype, per_launch):
    """The geodesic sweep by launches of the host-compiled kernel, ``per_launch`` planes
    each; checks each sweep's count, and with one plane per launch that the sweep equals
    the twin's exactly."""
    from cbagpu.measure.geodesic import _sweep_twin, sweep_args, sweep_launches

    fn = lib.cba_geodesic_sweep_f64 if dtype == np.float64 else lib.cba_geodesic_sweep_f32

    def sweep(d, axis, sign, changed):
        before = d.copy()
        start = int(changed[0])
        for first, count in sweep_launches(d.shape[axis], sign, per_launch):
            call(fn, sweep_args(d, axis, sign, first, count, changed))
        lowered = d < before  # NaN compares False: obstacles stay
        assert int(changed[0]) - start == int(np.count_nonzero(lowered))
        assert np.array_equal(np.isnan(d), np.isnan(before))
        assert np.all(np.where(np.isnan(d), 0, d) <= np.where(np.isnan(before), 0, before))
        if per_launch == 1:
            twin = before.copy()
            _sweep_twin(np, twin, axis, sign, np.zeros(1, np.uint64))
            np.testing.assert_array_equal(d, twin)

    return sweep


@pytest.mark.parametrize("per_launch", [1, 5, 1000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_geodesic_sweep_kernel_reaches_the_dijkstra_distances(host_kernels, dtype, per_launch):
    """Rounds of the host-compiled sweep kernel until a round lowers nothing: the exact graph
    distances of SciPy's Dijkstra, on random images along every axis and on both phases of
    a paper realization. With one plane per launch every sweep equals the twin's; with more
    (5, or the whole sweep in one launch) the one host thread walks each column through the
    launch's planes before the next column, an order unlike the twin's (stale reads of the
    neighbouring columns, as across GPU blocks), which must reach the same distances."""
    from cbagpu.measure import geodesic
    from cbagpu.measure.phases import phase_mask
    from tests.test_measure_geodesic import assert_same_map, dijkstra_map, random_mask

    sweep = _host_sweep(host_kernels["geodesic"], dtype, per_launch)
    labels = preset_labels()
    cases = [(random_mask((12, 14, 15), fill, 3), axis)
             for fill in (0.25, 0.5, 0.8) for axis in (0, 1, 2)]
    cases += [(phase_mask(labels, phase), 0) for phase in ("pore", "solid")]
    for mask, axis in cases:
        m, _ = geodesic._flow_first(NP, mask, axis)
        d = geodesic._geodesic_padded_rounds(NP, m, np.dtype(dtype), sweep)
        got = d[1:-1, 1:-1, 1:-1].copy()
        got[np.isnan(got)] = np.inf
        assert_same_map(np.moveaxis(got, 0, axis), dijkstra_map(mask, axis),
                        exact=dtype == np.float64)


def test_sweep_launches_cover_each_plane_once():
    from cbagpu.measure.geodesic import sweep_launches

    for n in (3, 4, 9, 30):
        for sign in (1, -1):
            for per in (1, 4, 100):
                planes = [f + i * sign for f, c in sweep_launches(n, sign, per)
                          for i in range(c)]
                assert planes == (list(range(2, n - 1)) if sign > 0
                                  else list(range(n - 3, 0, -1)))


@pytest.mark.parametrize("levels", ["uint8", "uint16"])
def test_widest_path_sweep_kernel_equals_twin_sweep_by_sweep(host_kernels, levels):
    """Each launch of the host-compiled widest-path kernel gives exactly the twin's array
    and count (columns are independent, so the order does not matter); the rounds reach
    the per-level labelling's bottleneck map."""
    from cbagpu.measure import cpsd as cpsd_mod
    from cbagpu.measure import intrusion as intrusion_mod
    from cbagpu.measure import widest_path as wp
    from cbagpu.measure.phases import phase_mask

    lib = host_kernels["bottleneck"]
    fn = lib.cba_widest_sweep_u16 if levels == "uint16" else lib.cba_widest_sweep_u8
    labels = preset_labels()
    radii = np.sqrt(np.arange(1, 300)) if levels == "uint16" else None
    for phase in ("pore", "solid"):
        F, _, _, _ = cpsd_mod._levels(NP, phase_mask(labels, phase), radii)
        assert F.dtype == np.dtype(levels)
        for axis, side in ((0, "low"), (2, "high"), (1, "low")):

            def sweep(Fo, W, a, sgn, changed):
                twin = W.copy()
                count = np.zeros(1, np.uint64)
                wp.sweep_twin(np, Fo, twin, a, sgn, count)
                start = int(changed[0])
                call(fn, wp.sweep_args(Fo, W, a, sgn, changed))
                np.testing.assert_array_equal(W, twin)
                assert int(changed[0]) - start == int(count[0])

            got = wp.widest_path_levels(NP, F, axis, side, sweep)
            np.testing.assert_array_equal(got, intrusion_mod.bottleneck_levels(NP, F, axis,
                                                                              side))


# ---------------------------------------------------------------- the GPU route on the host
class _HostCudaBackend(NumPyBackend):
    """NumPy arrays, but named "cupy" so that the GPU branches run; their kernel launches go
    to the host-compiled kernels (one host thread: the grid and block sizes are ignored)."""

    name = "cupy"

    def __init__(self, libs):
        super().__init__()
        self.libs = libs

    def kernel(self, filename, name):
        fn = getattr(self.libs[Path(filename).stem], name)

        def launch(grid, block, args, **kwargs):
            call(fn, args)

        return launch


@pytest.fixture(scope="module")
def host_gpu(host_kernels):
    return _HostCudaBackend(host_kernels)


def test_gpu_route_generates_the_same_image(host_gpu):
    """At 80 and 40 nm (at 20 nm the Gaussian field's padded block takes ~15 s through the
    one-thread host noise kernel)."""
    for shape, voxel_size in (((20, 26, 30), 80), ((20, 26, 30), 40)):
        np.testing.assert_array_equal(
            generate(PAPER, shape, voxel_size, 1, backend=host_gpu),
            generate(PAPER, shape, voxel_size, 1, backend="numpy"))


@pytest.mark.parametrize("phase", ["pore", "solid"])
def test_gpu_route_descriptors_equal_the_cpu_route(host_gpu, phase):
    """Geodesic tortuosity (rounds of the CUDA sweep kernel vs box-tracked sweeps and the
    sparse phase) and constrictivity (widest-path sweeps vs the Numba flood)."""
    from cbagpu.measure.geodesic import geodesic_distance_map, geodesic_tortuosity
    from cbagpu.measure.intrusion import constrictivity
    from cbagpu.measure.phases import phase_mask
    from tests.test_measure_geodesic import assert_same_map, dijkstra_map

    mask = phase_mask(preset_labels(), phase)
    for axis in (0, 2):
        ref = dijkstra_map(mask, axis)
        assert_same_map(geodesic_distance_map(mask, axis, host_gpu, dtype=np.float64), ref,
                        exact=True)
        assert_same_map(geodesic_distance_map(mask, axis, host_gpu), ref, exact=False)
        a = geodesic_tortuosity(mask, 20.0, axis, host_gpu)
        b = geodesic_tortuosity(mask, 20.0, axis, "numpy")
        assert (a.n_inlet, a.n_connected) == (b.n_inlet, b.n_connected)
        # float32 path sums in another order: ~ steps * 2^-24 relative
        assert a.tau == pytest.approx(b.tau, rel=1e-5)
        for side in ("low", "high"):
            c = constrictivity(mask, 20.0, axis, side, backend=host_gpu)
            d = constrictivity(mask, 20.0, axis, side, backend="numpy")
            np.testing.assert_array_equal(c.cpsd.value, d.cpsd.value)
            np.testing.assert_array_equal(c.intrusion.value, d.intrusion.value)
            assert (c.r_min, c.r_max, c.beta) == (d.r_min, d.r_max, d.beta)


@pytest.mark.parametrize("phase", ["pore", "solid"])
def test_gpu_route_transport_agrees_with_the_cpu_route(host_gpu, phase):
    """The CUDA transport kernels behind the solver (float32 fields) vs the Numba kernels:
    both stop at a flux spread <= tol, and the exact flux lies within each solution's range
    of slice fluxes, so the two tau_eff differ by at most ~tol relative."""
    from cbagpu.transport import DEFAULT_TOL, transport

    labels = generate(PAPER, (32, 30, 28), 40, 4, backend="numpy")
    a = transport(labels, phase, 0, backend=host_gpu)
    b = transport(labels, phase, 0, backend="numpy")
    assert a.converged and b.converged
    assert a.tau_eff == pytest.approx(b.tau_eff, rel=DEFAULT_TOL)
    assert a.epsilon == b.epsilon


def test_gpu_route_precise_transport_runs_in_float64(host_gpu):
    """Below PRECISE_TOL the GPU solves in float64 on the array-module twins (the CUDA
    kernels take float32 fields): the route that stalled on an H200 before it existed."""
    from cbagpu.transport import transport

    labels = generate(PAPER, (48, 40, 36), 40, 5, backend="numpy")
    for phase in ("pore", "solid"):
        a = transport(labels, phase, 0, tol=1e-6, backend=host_gpu)
        b = transport(labels, phase, 0, tol=1e-6, backend="numpy")
        assert a.converged and a.flux_spread <= 1e-6, a.message
        assert a.tau_eff == pytest.approx(b.tau_eff, rel=2e-6)


def test_gpu_route_high_contrast_solid_meets_the_tolerance(host_gpu):
    """The sweep realization whose float32 solid solve stalls on the Numba kernels at the
    round-off floor above the tolerance (tests/test_transport.py; tau ~ 120). The CUDA
    kernels accumulate in float64 and converge in float32 here (68 iterations, spread
    3e-3); either way the answer must meet the documented 5e-3 against float64."""
    from cbagpu.transport import effective_conductivity, transport
    from cbagpu.transport.conductance import PHASE_SIGMA

    labels = generate(PAPER.replace(lambda_x=3.55e-11), (100, 100, 100), 40.0, 2,
                      backend="numpy")
    a = transport(labels, "solid", backend=host_gpu)
    assert a.converged and a.flux_spread <= 1e-2, a.message
    ref = effective_conductivity(labels, PHASE_SIGMA["solid"], tol=1e-6, dtype=np.float64)
    assert a.tau_eff == pytest.approx(ref.tau_eff, rel=5e-3)
