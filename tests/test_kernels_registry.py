"""Every CUDA kernel of ``kernels/*.cu`` against its twin, from the kernel registry
(:mod:`cbagpu.backend.registry`).

Each registry entry's example runs on the host-compiled route (the CUDA source compiled as
host C++, :class:`~cbagpu.backend.host_kernels.HostKernelBackend`: one host thread walks the
grid-stride loops) and, where a GPU exists, on CUDA (marked ``gpu``). A kernel in a ``.cu``
file that the registry does not list fails here. The geodesic and widest-path sweep kernels
also run whole rounds to their fixed points (the exact Dijkstra distances; the per-level
labelling's bottleneck map), on both routes.
"""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.backend import get_backend
from cbagpu.backend.host_kernels import HostKernelBackend, compile_host_kernels, compiler
from cbagpu.backend.kernel_examples import KernelCheck, compare
from cbagpu.backend.kernels import kernel_files, kernel_source, launch_blocks
from cbagpu.backend.registry import (
    REGISTRY,
    entry,
    kernel_names_in_files,
    kernel_names_in_source,
    resolve,
)
from cbagpu.errors import InvalidInputError

PAPER = preset("paper")
NP = get_backend("numpy")
ROUTES = ["host", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.fixture(scope="module")
def host_route():
    if compiler() is None:
        pytest.skip("no C++ compiler to build the host kernels")
    return HostKernelBackend(libs=compile_host_kernels())


@pytest.fixture(params=ROUTES)
def route(request):
    """A backend that launches the kernels: host-compiled, or CUDA."""
    if request.param == "cuda":
        return get_backend("cupy")
    return request.getfixturevalue("host_route")


def _outputs(x):
    return x if isinstance(x, tuple) else (x,)


# ------------------------------------------------------------------------ the registry
@pytest.mark.parametrize("kernel", REGISTRY, ids=lambda e: e.name)
def test_kernel_matches_its_twin(route, kernel):
    check = kernel.run_example(route)
    compare(check)
    for out in _outputs(check.twin):  # the example is not vacuous: it computed something
        assert np.unique(np.asarray(out)).size > 1


@pytest.mark.parametrize("kernel", REGISTRY, ids=lambda e: e.name)
def test_entry_names_resolve(kernel):
    for path in (kernel.twin, kernel.args, kernel.example):
        assert callable(resolve(path)), path
    assert kernel.name in kernel_names_in_source(kernel_source(kernel.file))
    assert entry(kernel.name) is kernel


def test_every_kernel_in_the_sources_is_registered():
    found = kernel_names_in_files()
    listed = {e.name: e.file for e in REGISTRY}
    assert len(listed) == len(REGISTRY), "a kernel is listed twice"
    assert found == listed
    assert {p.name for p in kernel_files()} == set(listed.values())


def test_parser_finds_a_kernel_in_a_made_up_source(tmp_path):
    src = """
    // extern "C" __global__ void commented_out(float* a)
    /* extern "C" __global__ void also_commented(float* a) */
    __device__ float helper(float x) { return x; }
    template <typename T> __global__ void not_exported(T* a) {}
    extern "C" __global__ void made_up_kernel(float* __restrict__ out,
                                              const int n)
    { }
    extern "C"  __global__
    void second_one(const unsigned long long* c) {}
    """
    assert kernel_names_in_source(src) == ["made_up_kernel", "second_one"]
    path = tmp_path / "made_up.cu"
    path.write_text(src)
    names = kernel_names_in_files([path])
    assert names == {"made_up_kernel": "made_up.cu", "second_one": "made_up.cu"}
    # a registry missing these kernels is what test_every_kernel_... would report
    assert set(names) - {e.name for e in REGISTRY} == {"made_up_kernel", "second_one"}


def test_compare_fails_on_a_mismatch():
    a = np.arange(6.0)
    b = a.copy()
    b[3] += 1e-3
    with pytest.raises(AssertionError):
        compare(KernelCheck(a, b, "exact"))
    with pytest.raises(AssertionError):
        compare(KernelCheck((a, a), (a, b), (1e-5, 1e-5)))
    compare(KernelCheck(a, b, (0.0, 2e-3)))


def test_examples_need_a_backend_that_launches_kernels():
    with pytest.raises(InvalidInputError, match="does not launch kernels"):
        REGISTRY[0].run_example(NP)
    with pytest.raises(InvalidInputError, match="no kernel"):
        entry("no_such_kernel")
    with pytest.raises(InvalidInputError, match="module:attribute"):
        resolve("cbagpu.simulate.noise")


# -------------------------------------------------------------- geodesic sweep rounds
def preset_labels():
    """A small paper realization at 20 nm (both phases percolate along z)."""
    return generate(PAPER, (24, 30, 28), 20, 5, backend="numpy")


def _geodesic_sweep(be, dtype, per_launch):
    """The geodesic sweep by launches of the kernel on ``be``, ``per_launch`` planes each;
    checks each sweep's count, and with one plane per launch that the sweep equals the
    twin's exactly."""
    from cbagpu.measure.geodesic import _sweep_twin, sweep_args, sweep_launches

    name = "cba_geodesic_sweep_f64" if dtype == np.float64 else "cba_geodesic_sweep_f32"
    fn = be.kernel("geodesic.cu", name)

    def sweep(d, axis, sign, changed):
        before = be.to_host(d).copy()
        start = int(be.to_host(changed)[0])
        others = [n for a, n in enumerate(d.shape) if a != axis]
        blocks = launch_blocks((others[0] - 2) * (others[1] - 2), 256)
        for first, count in sweep_launches(d.shape[axis], sign, per_launch):
            fn((blocks,), (256,), sweep_args(d, axis, sign, first, count, changed))
        after = be.to_host(d)
        lowered = after < before  # NaN compares False: obstacles stay
        assert int(be.to_host(changed)[0]) - start == int(np.count_nonzero(lowered))
        assert np.array_equal(np.isnan(after), np.isnan(before))
        assert np.all(np.where(np.isnan(after), 0, after)
                      <= np.where(np.isnan(before), 0, before))
        if per_launch == 1:
            twin = before.copy()
            _sweep_twin(np, twin, axis, sign, np.zeros(1, np.uint64))
            np.testing.assert_array_equal(after, twin)

    return sweep


@pytest.mark.parametrize("per_launch", [1, 5, 1000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_geodesic_sweep_kernel_reaches_the_dijkstra_distances(route, dtype, per_launch):
    """Rounds of the sweep kernel until a round lowers nothing: the exact graph distances
    of SciPy's Dijkstra, on random images along every axis and on both phases of a paper
    realization. With one plane per launch every sweep equals the twin's; with more (5, or
    the whole sweep in one launch) the host's one thread walks each column through the
    launch's planes before the next column, an order unlike the twin's (stale reads of the
    neighbouring columns, as across GPU blocks), which must reach the same distances."""
    from cbagpu.measure import geodesic
    from cbagpu.measure.phases import phase_mask
    from tests.test_measure_geodesic import assert_same_map, dijkstra_map, random_mask

    sweep = _geodesic_sweep(route, dtype, per_launch)
    labels = preset_labels()
    cases = [(random_mask((12, 14, 15), fill, 3), axis)
             for fill in (0.25, 0.5, 0.8) for axis in (0, 1, 2)]
    cases += [(phase_mask(labels, phase), 0) for phase in ("pore", "solid")]
    for mask, axis in cases:
        m, _ = geodesic._flow_first(route, route.asarray(mask), axis)
        d = route.to_host(geodesic._geodesic_padded_rounds(route, m, np.dtype(dtype), sweep))
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


# ------------------------------------------------------------ widest-path sweep rounds
@pytest.mark.parametrize("levels", ["uint8", "uint16"])
def test_widest_path_sweep_kernel_equals_twin_sweep_by_sweep(route, levels):
    """Each launch of the widest-path kernel gives exactly the twin's array and count
    (columns are independent, so the order does not matter); the rounds reach the
    per-level labelling's bottleneck map."""
    from cbagpu.measure import cpsd as cpsd_mod
    from cbagpu.measure import intrusion as intrusion_mod
    from cbagpu.measure import widest_path as wp
    from cbagpu.measure.phases import phase_mask

    fn = route.kernel("bottleneck.cu", f"cba_widest_sweep_{'u16' if levels == 'uint16' else 'u8'}")
    labels = preset_labels()
    radii = np.sqrt(np.arange(1, 300)) if levels == "uint16" else None
    for phase in ("pore", "solid"):
        F, _, _, _ = cpsd_mod._levels(NP, phase_mask(labels, phase), radii)
        assert F.dtype == np.dtype(levels)
        for axis, side in ((0, "low"), (2, "high"), (1, "low")):

            def sweep(Fo, W, a, sgn, changed):
                twin = route.to_host(W).copy()
                count = np.zeros(1, np.uint64)
                wp.sweep_twin(np, route.to_host(Fo), twin, a, sgn, count)
                start = int(route.to_host(changed)[0])
                others = [n for i, n in enumerate(W.shape) if i != a]
                fn((launch_blocks(others[0] * others[1], 256),), (256,),
                   wp.sweep_args(Fo, W, a, sgn, changed))
                np.testing.assert_array_equal(route.to_host(W), twin)
                assert int(route.to_host(changed)[0]) - start == int(count[0])

            got = wp.widest_path_levels(route, route.asarray(F), axis, side, sweep)
            np.testing.assert_array_equal(
                route.to_host(got), intrusion_mod.bottleneck_levels(NP, F, axis, side))
