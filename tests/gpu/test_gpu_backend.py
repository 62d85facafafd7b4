"""GPU checks (skipped without CuPy and a GPU): each CUDA kernel against its NumPy twin and
the two backends against each other."""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.backend import get_backend
from cbagpu.simulate.germs import window_balls, window_spheroids
from cbagpu.simulate.grf import field_blocks, field_kernel, gaussian_field
from cbagpu.simulate.noise import field_key, white_noise, white_noise_numpy
from cbagpu.simulate.raster import paint_grains

pytestmark = pytest.mark.gpu
PAPER = preset("paper")


@pytest.fixture(scope="module")
def cp_backend():
    return get_backend("cupy")


def test_noise_kernel_matches_numpy_twin(cp_backend):
    key = field_key(123)
    origin, shape = (-37, 5, -64), (48, 40, 97)
    gpu = cp_backend.to_host(white_noise(cp_backend, key, origin, shape))
    cpu = white_noise_numpy(key, origin, shape)
    # same hash chain; float32 log/sin/cos may differ by a few ulp
    np.testing.assert_allclose(gpu, cpu, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("voxel_size", [20, 40])
def test_rasterised_grains_are_bit_identical(cp_backend, voxel_size):
    vp = PAPER.to_voxel(voxel_size)
    origin, shape = (-50, 30, 7), (90, 110, 130)
    for grains, value in (
        (window_balls(vp, 5, origin, shape), 0),
        (window_spheroids(vp, 5, origin, shape), 2),
    ):
        cpu = np.ones(shape, np.uint8)
        paint_grains(get_backend("numpy"), cpu, grains, origin, value)
        dev = cp_backend.xp.ones(shape, dtype=cp_backend.xp.uint8)
        paint_grains(cp_backend, dev, grains, origin, value)
        np.testing.assert_array_equal(cp_backend.to_host(dev), cpu)


def test_field_matches_between_backends(cp_backend):
    eta = PAPER.eta * 40
    origin, shape = (-100, 3, 50), (120, 100, 250)
    gpu = cp_backend.to_host(gaussian_field(eta, shape, 9, origin, backend=cp_backend))
    cpu = gaussian_field(eta, shape, 9, origin, backend="numpy")
    np.testing.assert_allclose(gpu, cpu, atol=1e-5)


def test_threshold_kernel_matches_twin(cp_backend):
    kernel = field_kernel(PAPER.eta * 80)
    origin, shape = (-30, 0, 100), (150, 40, 60)
    out_gpu = cp_backend.xp.full(shape, 9, dtype=cp_backend.xp.uint8)
    from cbagpu.simulate.realization import _threshold, _threshold_numpy

    for piece, block in field_blocks(cp_backend, kernel, 3, origin, shape):
        _threshold(cp_backend, block, piece, out_gpu, 0.3)
        out_cpu = np.full(shape, 9, np.uint8)
        _threshold_numpy(
            cp_backend.to_host(block), piece.field_slices, out_cpu, piece.window_slices, 0.3
        )
        ws = piece.window_slices
        np.testing.assert_array_equal(cp_backend.to_host(out_gpu)[ws], out_cpu[ws])


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
    est = estimate_memory(shape, field_kernel(PAPER.eta * 20), "cupy")
    assert pool.total_bytes() <= est.device
