"""GPU checks of cbagpu.measure.minkowski (skipped without CuPy and a GPU): the CuPy path
gives the same configuration histogram, hence the same densities, as NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.backend import get_backend
from cbagpu.measure import minkowski as mk
from cbagpu.measure.minkowski import configuration_histogram, intrinsic_volumes
from cbagpu.measure.phases import phase_mask

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def labels():
    return generate(preset("paper"), (96, 112, 128), 20.0, 3, backend="numpy")


@pytest.mark.parametrize("phase", ["solid", "pore", "graphite"])
def test_histograms_and_densities_match_numpy(labels, phase):
    cp_be = get_backend("cupy")
    mask = phase_mask(labels, phase)
    h_np = configuration_histogram(mask, "numpy")
    h_cp = configuration_histogram(cp_be.asarray(mask), cp_be)
    np.testing.assert_array_equal(h_cp, h_np)
    for conn in (26, 6):
        a = intrinsic_volumes(mask, 20.0, "numpy", conn)
        b = intrinsic_volumes(cp_be.asarray(mask), 20.0, cp_be, conn)
        assert b == a


def test_streamed_slabs_match_on_gpu(labels, monkeypatch):
    cp_be = get_backend("cupy")
    mask = cp_be.asarray(phase_mask(labels, "pore"))
    whole = configuration_histogram(mask, cp_be)
    monkeypatch.setattr(mk, "_SLAB_CELLS", 1000)
    np.testing.assert_array_equal(configuration_histogram(mask, cp_be), whole)
    # uint8 0/1 input and a host array handed to the CuPy backend
    np.testing.assert_array_equal(
        configuration_histogram(cp_be.to_host(mask).astype(np.uint8), cp_be), whole
    )
