"""The GPU route's Python code on a machine without a GPU.

:class:`~cbagpu.backend.host_kernels.HostKernelBackend` holds NumPy arrays but says
``runs_kernels = True``, and its kernel launches go to the CUDA sources compiled as host C++:
every branch that launches kernels (generation, geodesic sweeps, intrusion sweeps, the
transport solver's fused kernels) runs here against the NumPy backend's own route. The
kernels one by one are checked against their twins in tests/test_kernels_registry.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.backend.host_kernels import HostKernelBackend, compile_host_kernels, compiler

PAPER = preset("paper")


@pytest.fixture(scope="module")
def host_gpu():
    if compiler() is None:
        pytest.skip("no C++ compiler to build the host kernels")
    be = HostKernelBackend(libs=compile_host_kernels())
    assert be.runs_kernels and be.on_host
    return be


def preset_labels():
    """A small paper realization at 20 nm (both phases percolate along z)."""
    return generate(PAPER, (24, 30, 28), 20, 5, backend="numpy")


def test_gpu_route_generates_the_same_image(host_gpu):
    """At 80 and 40 nm (at 20 nm the Gaussian field's padded block takes ~15 s through the
    one-thread host noise kernel)."""
    for shape, voxel_size in (((20, 26, 30), 80), ((20, 26, 30), 40)):
        np.testing.assert_array_equal(
            generate(PAPER, shape, voxel_size, 1, backend=host_gpu),
            generate(PAPER, shape, voxel_size, 1, backend="numpy"))


@pytest.fixture
def launched(monkeypatch) -> list[str]:
    """Names of the kernels launched through HostKernelBackend while the test runs."""
    names: list[str] = []
    kernel = HostKernelBackend.kernel

    def spy(self, filename, name):
        names.append(name)
        return kernel(self, filename, name)

    monkeypatch.setattr(HostKernelBackend, "kernel", spy)
    return names


def test_gpu_route_launches_the_kernels(host_gpu, launched):
    """The route above really is the kernel route: generation launches the noise,
    threshold and raster kernels, and the transport solver the transport kernels."""
    from cbagpu.transport import transport

    labels = generate(PAPER, (20, 26, 30), 80, 1, backend=host_gpu)
    assert {"white_noise", "threshold_into_labels", "paint_spheroid_rows",
            "paint_ball_rows"} <= set(launched)
    launched.clear()
    transport(labels, "pore", 0, backend=host_gpu)
    assert {"cba_apply_f32", "cba_gauss_seidel", "cba_residual_restrict", "cba_gs_zero_first",
            "cba_prolong_gs", "cba_gs_last", "cba_vcycle_coarse", "cba_pcg_direction",
            "cba_pcg_apply_dot", "cba_pcg_update", "cba_slice_flux"} <= set(launched)


def test_gpu_route_descriptors_launch_the_sweep_kernels(host_gpu, launched):
    """With a backend that launches kernels, the descriptors' default methods are the
    kernel routes: rounds of the geodesic sweep kernel, widest-path sweeps for intrusion."""
    from cbagpu.measure.geodesic import geodesic_tortuosity
    from cbagpu.measure.intrusion import constrictivity
    from cbagpu.measure.phases import phase_mask

    mask = phase_mask(preset_labels(), "pore")
    geodesic_tortuosity(mask, 20.0, 0, host_gpu)
    assert "cba_geodesic_sweep_all_f32" in launched  # one persistent launch per sweep
    constrictivity(mask, 20.0, 0, "low", backend=host_gpu)
    assert "cba_widest_sweep_u8" in launched


@pytest.mark.parametrize("phase", ["pore", "solid"])
def test_gpu_route_descriptors_equal_the_cpu_route(host_gpu, phase):
    """Geodesic tortuosity (rounds of the CUDA sweep kernel vs box-tracked sweeps and the
    sparse phase) and constrictivity (widest-path sweeps vs the Numba flood), with the
    methods named: the kernel route on the host-kernel backend, the CPU route on NumPy."""
    from cbagpu.measure.geodesic import geodesic_distance_map, geodesic_tortuosity
    from cbagpu.measure.intrusion import constrictivity
    from cbagpu.measure.phases import phase_mask
    from tests.test_measure_geodesic import assert_same_map, dijkstra_map

    mask = phase_mask(preset_labels(), phase)
    for axis in (0, 2):
        ref = dijkstra_map(mask, axis)
        assert_same_map(geodesic_distance_map(mask, axis, host_gpu, dtype=np.float64,
                                              method="rounds"), ref, exact=True)
        assert_same_map(geodesic_distance_map(mask, axis, host_gpu, method="rounds"), ref,
                        exact=False)
        a = geodesic_tortuosity(mask, 20.0, axis, host_gpu, method="rounds")
        b = geodesic_tortuosity(mask, 20.0, axis, "numpy", method="boxes")
        assert (a.n_inlet, a.n_connected) == (b.n_inlet, b.n_connected)
        # float32 path sums in another order: ~ steps * 2^-24 relative
        assert a.tau == pytest.approx(b.tau, rel=1e-5)
        for side in ("low", "high"):
            c = constrictivity(mask, 20.0, axis, side, backend=host_gpu, method="sweeps")
            d = constrictivity(mask, 20.0, axis, side, backend="numpy", method="flood")
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
    from cbagpu.transport.solver import _fused_kernels

    assert _fused_kernels(host_gpu, np.float64) is None
    labels = generate(PAPER, (48, 40, 36), 40, 5, backend="numpy")
    for phase in ("pore", "solid"):
        a = transport(labels, phase, 0, tol=1e-6, backend=host_gpu)
        b = transport(labels, phase, 0, tol=1e-6, backend="numpy")
        assert a.converged and a.flux_spread <= 1e-6, a.message
        assert a.tau_eff == pytest.approx(b.tau_eff, rel=2e-6)


@pytest.mark.slow
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


def test_persistent_geodesic_sweep_equals_one_launch_per_plane(host_gpu):
    """The default GPU sweep (all planes in one launch, barrier between planes) and the
    older kernel with one plane per launch give the same distance map, in the same rounds."""
    from cbagpu.measure import geodesic
    from cbagpu.measure.phases import phase_mask

    m = phase_mask(preset_labels(), "pore")
    maps, rounds = [], []
    for per in (None, 1):
        sweep = geodesic._cuda_sweep(host_gpu, per)
        count = []

        def counted(d, axis, sign, changed, sweep=sweep, count=count):
            count.append(1)
            sweep(d, axis, sign, changed)

        maps.append(geodesic._geodesic_padded_rounds(host_gpu, m, np.dtype(np.float32), counted))
        rounds.append(len(count) // 6)
    np.testing.assert_array_equal(maps[0], maps[1])
    assert rounds[0] == rounds[1] >= 2
