"""GPU checks (skipped without CuPy and a GPU): the two backends against each other (field,
labels, windows, memory). Each CUDA kernel against its twin on the device: the ``cuda``
variant of tests/test_kernels_registry.py."""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.simulate.grf import field_kernel, gaussian_field

pytestmark = pytest.mark.gpu
PAPER = preset("paper")


def test_field_matches_between_backends(cp_backend):
    eta = PAPER.eta * 40
    origin, shape = (-100, 3, 50), (120, 100, 250)
    gpu = cp_backend.to_host(gaussian_field(eta, shape, 9, origin, backend=cp_backend))
    cpu = gaussian_field(eta, shape, 9, origin, backend="numpy")
    np.testing.assert_allclose(gpu, cpu, atol=1e-5)


@pytest.mark.parametrize("voxel_size", [20, 40, 80])
def test_labels_agree_between_backends(cp_backend, voxel_size):
    """Same grains, same noise: labels differ only where Z lies within float rounding of mu
    (at most 1e-5 of the voxels)."""
    shape, origin = (160, 150, 170), (-20, 40, 0)
    gpu = generate(PAPER, shape, voxel_size, 4, origin, backend="cupy")
    cpu = generate(PAPER, shape, voxel_size, 4, origin, backend="numpy")
    diff = gpu != cpu
    assert diff.mean() <= 1e-5
    if diff.any():
        z = gaussian_field(PAPER.eta * voxel_size, shape, 4, origin, backend="numpy")
        assert np.all(np.abs(z[diff] - PAPER.mu) < 1e-5)


def test_gpu_windows_are_bit_identical():
    big = generate(PAPER, (200, 180, 260), 40, 8, (-90, 10, -10), backend="cupy")
    for origin, shape in [
        ((-90, 10, -10), (30, 30, 30)),
        ((0, 60, 100), (110, 130, 150)),
        ((-45, 100, 211), (1, 2, 3)),
    ]:
        sub = generate(PAPER, shape, 40, 8, origin, backend="cupy")
        sl = tuple(
            slice(o - b, o - b + s) for o, b, s in zip(origin, (-90, 10, -10), shape, strict=True)
        )
        np.testing.assert_array_equal(sub, big[sl])


def test_gpu_memory_estimate_is_an_upper_bound(cp_backend):
    from cbagpu.simulate.realization import estimate_memory

    xp = cp_backend.xp
    pool = xp.get_default_memory_pool()
    pool.free_all_blocks()
    shape = (400, 400, 400)
    generate(PAPER, shape, 20, 1, backend="cupy")
    est = estimate_memory(shape, field_kernel(PAPER.eta * 20), cp_backend)
    assert pool.total_bytes() <= est.device
