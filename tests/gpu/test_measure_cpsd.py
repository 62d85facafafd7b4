"""GPU checks of the CPSD / local thickness / intrusion / constrictivity module (skipped
without CuPy and a GPU): the CuPy backend (dense bit-plane path, cuCIM EDT, cupyx labels)
must reproduce the NumPy backend (hybrid dense/sparse path, edt, SciPy labels) exactly on
a realization of the paper's model, for both phases."""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu.backend import get_backend
from cbagpu.measure.cpsd import cpsd, local_thickness
from cbagpu.measure.intrusion import constrictivity, intrusion
from cbagpu.measure.phases import phase_mask

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def labels(paper_window):
    return paper_window((72, 80, 96), 20, 3)


@pytest.mark.parametrize("phase", ["pore", "solid"])
def test_local_thickness_and_cpsd_match_numpy(labels, phase):
    cp = get_backend("cupy")
    mask = phase_mask(labels, phase)
    t_np = local_thickness(mask, backend="numpy")
    t_cp = local_thickness(cp.asarray(mask), backend=cp)
    np.testing.assert_array_equal(t_cp, t_np)
    a = cpsd(mask, 20.0, backend="numpy")
    b = cpsd(cp.asarray(mask), 20.0, backend=cp)
    np.testing.assert_array_equal(b.r, a.r)
    np.testing.assert_array_equal(b.value, a.value)
    assert b.r_max == a.r_max and b.r_max_grid == a.r_max_grid


@pytest.mark.parametrize("phase", ["pore", "solid"])
@pytest.mark.parametrize("axis,side", [(0, "low"), ("x", "high")])
@pytest.mark.parametrize("method", ["auto", "labels"])
def test_intrusion_and_constrictivity_match_numpy(labels, phase, axis, side, method):
    """The GPU's default (CUDA widest-path sweeps) and its per-level labelling against the
    NumPy backend's default (the Numba flood)."""
    cp = get_backend("cupy")
    mask = phase_mask(labels, phase)
    a = intrusion(mask, 20.0, axis=axis, side=side, backend="numpy")
    b = intrusion(cp.asarray(mask), 20.0, axis=axis, side=side, backend=cp, method=method)
    np.testing.assert_array_equal(b.value, a.value)
    assert b.r_min == a.r_min
    ca = constrictivity(mask, 20.0, axis=axis, side=side, backend="numpy")
    cb = constrictivity(cp.asarray(mask), 20.0, axis=axis, side=side, backend=cp,
                        method=method)
    assert cb.beta == ca.beta and cb.r_max == ca.r_max and cb.r_min == ca.r_min
