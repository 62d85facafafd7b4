"""Two-point coverage on the GPU (skipped without CuPy and a GPU): the CuPy path against the
NumPy path on the same images."""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.measure.covariance import two_point_coverage
from cbagpu.measure.phases import phase_mask

pytestmark = pytest.mark.gpu
PAPER = preset("paper")


@pytest.fixture(scope="module")
def labels(cp_backend):
    return cp_backend.to_host(generate(PAPER, (96, 112, 80), 20, 4, backend=cp_backend))


@pytest.mark.parametrize("phase", ["solid", "pore", "graphite"])
@pytest.mark.parametrize("precision", ["single", "double"])
def test_backends_agree_on_small_image(cp_backend, labels, phase, precision):
    """Below ~2e6 phase voxels both backends round the FFT to the exact pair counts, so the
    results agree to the last bits of the float64 bin sums (atomics change their order)."""
    mask = phase_mask(labels, phase)
    cpu = two_point_coverage(mask, 20, backend="numpy", precision=precision)
    gpu = two_point_coverage(mask, 20, backend=cp_backend, precision=precision)
    assert gpu.volume_fraction == cpu.volume_fraction
    np.testing.assert_array_equal(gpu.axes, cpu.axes)
    np.testing.assert_allclose(gpu.radial, cpu.radial, rtol=1e-12, atol=0)
    np.testing.assert_allclose(gpu.radial_lag, cpu.radial_lag, rtol=1e-12, atol=0)


def test_device_input_and_odd_lag(cp_backend, labels):
    mask = labels == 0
    cpu = two_point_coverage(mask, 20, max_lag=37 * 20, backend="numpy")
    gpu = two_point_coverage(cp_backend.asarray(mask), 20, max_lag=37 * 20, backend=cp_backend)
    assert isinstance(gpu.radial, np.ndarray) and len(gpu.h) == 38
    np.testing.assert_array_equal(gpu.axes, cpu.axes)
    np.testing.assert_allclose(gpu.radial, cpu.radial, rtol=1e-12, atol=0)


def test_backends_agree_at_200_cubed(cp_backend):
    """200^3 (5e6 pore voxels): single-precision counts carry ~1 count of FFT error on either
    backend (C error ~1e-7); double precision is exact on both."""
    mask = cp_backend.asarray(generate(PAPER, (200,) * 3, 20, 1, backend=cp_backend) == 0)
    host = cp_backend.to_host(mask)
    for precision, atol in (("single", 1e-6), ("double", 1e-12)):
        cpu = two_point_coverage(host, 20, backend="numpy", precision=precision)
        gpu = two_point_coverage(mask, 20, backend=cp_backend, precision=precision)
        np.testing.assert_allclose(gpu.axes, cpu.axes, rtol=0, atol=atol)
        np.testing.assert_allclose(gpu.radial, cpu.radial, rtol=0, atol=atol)
