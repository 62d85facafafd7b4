"""Geodesic tortuosity on the GPU (skipped without CuPy and a GPU): the CuPy backend runs
rounds of the CUDA sweep kernel (kernels/geodesic.cu) until one lowers nothing, the CPU the
box-tracked sweeps and the sparse Bellman-Ford. Both reach the same fixed point, the exact
graph distance, so the distance maps must agree to float32 rounding of differently ordered
path sums (and exactly in float64 up to ~1e-12) and tau, n_inlet, n_connected must agree."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.measure import geodesic
from cbagpu.measure.geodesic import geodesic_distance_map, geodesic_tortuosity
from cbagpu.measure.phases import phase_mask

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def labels():
    return generate(preset("paper"), (64, 72, 80), 20, 4, backend="numpy")


def _same_map(gpu: np.ndarray, cpu: np.ndarray, rtol: float) -> None:
    assert isinstance(gpu, np.ndarray) and gpu.dtype == cpu.dtype
    np.testing.assert_array_equal(np.isfinite(gpu), np.isfinite(cpu))
    fin = np.isfinite(cpu)
    np.testing.assert_allclose(gpu[fin], cpu[fin], rtol=rtol, atol=0)


@pytest.mark.parametrize("phase", ["pore", "solid"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_backends_agree_on_a_paper_realization(labels, phase, axis):
    import cupy

    mask = phase_mask(labels, phase)
    cpu = geodesic_tortuosity(mask, 20.0, axis, "numpy", return_map=True)
    gpu = geodesic_tortuosity(cupy.asarray(mask), 20.0, axis, "cupy", return_map=True)
    # float32 sums of up to ~150 steps: relative rounding <= 150 * 2^-24 ~ 1e-5
    _same_map(gpu.distance_map, cpu.distance_map, rtol=1e-5)
    assert (gpu.n_inlet, gpu.n_connected, gpu.percolates) == (
        cpu.n_inlet, cpu.n_connected, cpu.percolates)
    assert gpu.tau == pytest.approx(cpu.tau, rel=1e-6)
    assert isinstance(gpu.path_lengths_nm, np.ndarray)


@pytest.mark.parametrize("mode", ["dense_only", "sparse_early"])
def test_backends_agree_in_each_phase_of_the_algorithm(labels, mode, monkeypatch):
    if mode == "dense_only":
        monkeypatch.setattr(geodesic, "_SPARSE_FRACTION", 0.0)
        monkeypatch.setattr(geodesic, "_SPARSE_MIN", 0)
    else:
        monkeypatch.setattr(geodesic, "_SPARSE_FRACTION", 1.0)
        monkeypatch.setattr(geodesic, "_COLLECT_FACTOR", math.inf)
    mask = phase_mask(labels[:40, :40, :40], "solid")
    cpu = geodesic_distance_map(mask, 0, "numpy", dtype=np.float64)
    gpu = geodesic_distance_map(mask, 0, "cupy", dtype=np.float64)
    _same_map(gpu, cpu, rtol=1e-12)


@pytest.mark.parametrize("fill", [0.2, 0.5, 0.8])
def test_backends_agree_on_random_images(fill):
    mask = np.random.default_rng(7).random((12, 14, 15)) < fill
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        _same_map(geodesic_distance_map(mask, 0, "cupy", dtype=dtype),
                  geodesic_distance_map(mask, 0, "numpy", dtype=dtype), rtol)


def test_no_path_on_the_gpu():
    mask = np.ones((12, 8, 8), bool)
    mask[6] = False
    res = geodesic_tortuosity(mask, 20.0, backend="cupy")
    assert not res.percolates and res.tau == math.inf and res.fraction_connected == 0.0


@pytest.mark.parametrize("per_launch", [1, 16, 10**6])
def test_kernel_sweep_counts_what_it_lowers(per_launch):
    """Launches of the CUDA sweep: the count equals the voxels lowered, obstacles stay NaN
    and nothing rises (the contract the round driver relies on); with one plane per launch
    each sweep equals the twin's exactly; every launch size reaches the CPU's distances."""
    import cupy

    from cbagpu.backend import get_backend
    from cbagpu.measure import geodesic
    from cbagpu.measure.geodesic import _cuda_sweep, _initial_distances, _sweep_twin

    be = get_backend("cupy")
    host_mask = np.random.default_rng(3).random((30, 40, 50)) < 0.6
    mask = cupy.asarray(host_mask)
    for dtype in (np.float32, np.float64):
        d = _initial_distances(cupy, mask, np.dtype(dtype))
        sweep = _cuda_sweep(be, per_launch)
        counts = []
        for axis, sign in ((0, -1), (1, 1), (2, -1), (0, 1)):
            before = d.copy()
            changed = cupy.zeros(1, dtype=cupy.uint64)
            sweep(d, axis, sign, changed)
            lowered = int(cupy.count_nonzero(d < before))
            assert int(changed[0]) == lowered
            counts.append(lowered)
            assert bool(cupy.array_equal(cupy.isnan(d), cupy.isnan(before)))
            if per_launch == 1:
                twin = before.copy()
                _sweep_twin(cupy, twin, axis, sign, cupy.zeros(1, dtype=cupy.uint64))
                assert bool(cupy.array_equal(cupy.nan_to_num(d, nan=-1.0),
                                             cupy.nan_to_num(twin, nan=-1.0)))
        assert counts[0] > 0  # the first sweep, from the outlet, reaches the phase
        m, _ = geodesic._flow_first(be, mask, 0)
        got = geodesic._geodesic_padded_rounds(be, m, np.dtype(dtype), sweep)
        got = cupy.asnumpy(got[1:-1, 1:-1, 1:-1])
        got[np.isnan(got)] = np.inf
        ref = geodesic_distance_map(host_mask, 0, "numpy", dtype=dtype)
        _same_map(got, ref, rtol=1e-12 if dtype == np.float64 else 1e-5)
