"""Realizations: window consistency, reproducibility, phase fractions vs theory, errors."""

from __future__ import annotations

import numpy as np
import pytest

import cbagpu.simulate.realization as realize_mod
from cbagpu import (
    BackendUnavailableError,
    InsufficientMemoryError,
    generate,
    generate_components,
    gpu_available,
    model_theory,
    preset,
    realize,
)

PAPER = preset("paper")


@pytest.mark.parametrize("voxel_size", [80, 40])
def test_sub_windows_are_bit_identical(voxel_size):
    big_origin, big_shape = (-60, 20, -130), (150, 120, 230)
    big = generate(PAPER, big_shape, voxel_size, seed=3, origin=big_origin, backend="numpy")
    windows = [
        ((-60, 20, -130), (7, 9, 11)),
        ((-1, 30, -2), (60, 50, 90)),
        ((50, 100, 40), (40, 40, 60)),
        ((-23, 77, -111), (1, 1, 1)),
        ((-60, 20, -130), (150, 120, 230)),
    ]
    for origin, shape in windows:
        sub = generate(PAPER, shape, voxel_size, seed=3, origin=origin, backend="numpy")
        sl = tuple(
            slice(o - b, o - b + s) for o, b, s in zip(origin, big_origin, shape, strict=True)
        )
        np.testing.assert_array_equal(sub, big[sl], err_msg=f"window {origin} {shape}")
    assert set(np.unique(big)) == {0, 1, 2}


def test_reproducible_and_seed_dependent():
    a = generate(PAPER, (40, 50, 60), 80, seed=11, backend="numpy")
    b = generate(PAPER, (40, 50, 60), 80, seed=11, backend="numpy")
    c = generate(PAPER, (40, 50, 60), 80, seed=12, backend="numpy")
    assert a.dtype == np.uint8 and a.shape == (40, 50, 60)
    assert a.tobytes() == b.tobytes()
    assert (a != c).mean() > 0.1


def test_components_combine_to_the_labels():
    comps = generate_components(PAPER, (50, 60, 70), 80, seed=2, origin=(-5, 0, 9), backend="numpy")
    lab = generate(PAPER, (50, 60, 70), 80, seed=2, origin=(-5, 0, 9), backend="numpy")
    np.testing.assert_array_equal(comps.labels(), lab)
    assert comps.graphite.dtype == bool


def test_phase_fractions_match_theory():
    """Volume fractions of Xi1, Xi2, Xi3 and of the three labels over 16 realizations (80 nm,
    100^3 voxels = 8 um cubes) lie within 3 standard errors (across-realization SE) of the
    closed forms. Point counting is unbiased for stationary sets, so no discretisation term
    enters; the extent caps change the expectation by < 1e-9."""
    s = 80
    th = model_theory(PAPER, s)
    rows = []
    for seed in range(16):
        c = generate_components(PAPER, (100, 100, 100), s, seed=100 + seed, backend="numpy")
        lab = c.labels()
        rows.append(
            [
                c.graphite.mean(),
                c.grf.mean(),
                c.large_pores.mean(),
                (lab == 0).mean(),
                (lab == 1).mean(),
                (lab == 2).mean(),
            ]
        )
    rows = np.array(rows)
    mean = rows.mean(0)
    se = rows.std(0, ddof=1) / np.sqrt(len(rows))
    expect = np.array([th.V1, th.V2, th.V3, th.pore, th.cbd, th.graphite])
    for name, m, e, t in zip(
        ["V1", "V2", "V3", "pore", "cbd", "graphite"], mean, se, expect, strict=True
    ):
        assert abs(m - t) < 3 * e, f"{name}: {m:.4f} vs theory {t:.4f} (SE {e:.4f})"


def test_realization_metadata_and_timings():
    r = realize(PAPER, (30, 30, 30), 80, seed=1, origin=(-3, 4, 5), backend="numpy")
    md = r.metadata()
    assert md["seed"] == 1 and md["voxel_size"] == 80.0 and md["origin"] == [-3, 4, 5]
    assert md["backend"] == "numpy" and md["params"]["lambda_x"] == PAPER.lambda_x
    assert md["version"] and md["field_kernel_radius"] == r.field_kernel_radius > 0
    assert {"germs", "field", "grains", "total"} <= set(r.timings)


def test_progress_is_reported():
    calls = []
    generate(
        PAPER,
        (20, 20, 20),
        80,
        seed=1,
        backend="numpy",
        progress=lambda stage, done, total: calls.append((stage, done, total)),
    )
    stages = [c[0] for c in calls]
    assert "germs" in stages and "field" in stages and "grains" in stages


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": (0, 10, 10)}, "positive"),
        ({"shape": (10, 10)}, "3 entries"),
        ({"shape": (10.5, 10, 10)}, "integer"),
        ({"origin": (0, 0)}, "3 entries"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "integer"),
        ({"voxel_size": float("nan")}, "voxel_size"),
        ({"voxel_size": -20}, "voxel_size"),
        ({"backend": "tpu"}, "unknown backend"),
    ],
)
def test_bad_input_is_refused(kwargs, match):
    args = {
        "shape": (10, 10, 10),
        "voxel_size": 80,
        "seed": 1,
        "origin": (0, 0, 0),
        "backend": "numpy",
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        generate(PAPER, **args)


def test_params_type_checked():
    with pytest.raises(TypeError, match="CBAParams"):
        generate({"lambda_x": 1}, (10, 10, 10), 80, seed=1)


@pytest.mark.skipif(gpu_available(), reason="a GPU is present")
def test_cupy_without_gpu_is_a_clear_error():
    with pytest.raises(BackendUnavailableError, match="cupy"):
        generate(PAPER, (10, 10, 10), 80, seed=1, backend="cupy")


def test_too_large_is_refused_before_allocating(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("allocated")

    monkeypatch.setattr(realize_mod, "window_spheroids", boom)
    with pytest.raises(InsufficientMemoryError, match=r"needs about .* GiB"):
        generate(PAPER, (20000, 20000, 20000), 20, seed=1, backend="numpy")
    monkeypatch.setattr(realize_mod, "host_available_memory", lambda: 1 << 20)
    with pytest.raises(InsufficientMemoryError, match="host"):
        generate(PAPER, (10, 10, 10), 80, seed=1, backend="numpy")


def test_device_memory_is_checked_where_the_arrays_are_not_on_the_host():
    """A backend whose arrays live off the host gets its own memory checked, by its
    ``memory_name`` (no backend name is asked)."""
    from cbagpu.backend.numpy_backend import NumPyBackend

    class SmallDevice(NumPyBackend):
        on_host = False
        memory_name = "GPU"

        def available_memory(self) -> int:
            return 1 << 20

    with pytest.raises(InsufficientMemoryError, match="of GPU memory"):
        generate(PAPER, (10, 10, 10), 80, seed=1, backend=SmallDevice())


def test_memory_estimate_scales_with_the_window():
    from cbagpu.simulate.grf import field_kernel

    k = field_kernel(PAPER.eta * 20)
    small = realize_mod.estimate_memory((100, 100, 100), k, "numpy")
    big = realize_mod.estimate_memory((800, 800, 800), k, "numpy")
    assert big.host - small.host == 800**3 - 100**3
    gpu = realize_mod.estimate_memory((1024,) * 3, k, "cupy")
    assert gpu.device / 1024**3 < 16  # the target: <= 16 bytes of device memory per voxel


def test_memory_estimate_asks_where_the_arrays_live():
    """A backend (by its ``on_host``), a backend's name (its class, not constructed: "cupy"
    works without a GPU) or a bool ``device`` give the same estimate."""
    from cbagpu.backend import get_backend
    from cbagpu.backend.host_kernels import HostKernelBackend
    from cbagpu.simulate.grf import field_kernel

    k = field_kernel(PAPER.eta * 40)
    shape = (200, 100, 50)
    host = realize_mod.estimate_memory(shape, k, "numpy")
    assert host.device == 0 and host.host > 200 * 100 * 50
    assert realize_mod.estimate_memory(shape, k, get_backend("numpy")) == host
    assert realize_mod.estimate_memory(shape, k, False) == host
    # runs the kernels, but on host arrays: no device memory
    assert realize_mod.estimate_memory(shape, k, HostKernelBackend(libs={})) == host
    dev = realize_mod.estimate_memory(shape, k, "cupy")
    assert dev.device > 0 and dev.host < host.host
    assert realize_mod.estimate_memory(shape, k, True) == dev
    assert realize_mod.estimate_memory(shape, k, "numpy", 3).host == host.host + 2 * 200 * 100 * 50
    with pytest.raises(ValueError, match="unknown backend"):
        realize_mod.estimate_memory(shape, k, "tpu")


def test_windows_far_from_the_origin_are_consistent():
    """Global coordinates of ~1e6 voxels: grains are tested in global coordinates, so a
    voxel gets the same label in every window (no rounding of window-local centres)."""
    base = (1_000_003, -2_000_001, 777_777)
    big = generate(PAPER, (90, 80, 120), 80, seed=6, origin=base, backend="numpy")
    for off, shape in [
        ((0, 0, 0), (9, 8, 7)),
        ((41, 17, 66), (49, 63, 54)),
        ((5, 70, 3), (1, 1, 117)),
    ]:
        origin = tuple(b + o for b, o in zip(base, off, strict=True))
        sub = generate(PAPER, shape, 80, seed=6, origin=origin, backend="numpy")
        sl = tuple(slice(o, o + s) for o, s in zip(off, shape, strict=True))
        np.testing.assert_array_equal(sub, big[sl])
    assert len(np.unique(big)) == 3
