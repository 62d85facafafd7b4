"""GPU checks of the intrusion's CPU kernels (skipped without CuPy and a GPU): the CuPy
path (cuCIM / cupyx EDT; one cupyx labelling per level, and the CUDA widest-path sweeps
that the GPU runs by default) and the Numba path of the NumPy
backend (int32 squared EDT, bucket flood) must give the same level map F and the same
bottleneck map B voxel by voxel on a realization of the paper's model, for both phases.
(tests/gpu/test_measure_cpsd.py compares the resulting curves.)"""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu.backend import get_backend
from cbagpu.measure import _intrusion_kernels as K
from cbagpu.measure import cpsd as cpsd_mod
from cbagpu.measure import intrusion as intrusion_mod
from cbagpu.measure.phases import phase_mask

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def labels(paper_window):
    return paper_window((72, 80, 96), 20, 3)


@pytest.mark.parametrize("phase", ["pore", "solid"])
@pytest.mark.parametrize("axis,side", [(0, "low"), (2, "high")])
def test_levels_and_bottleneck_match_cupy(labels, phase, axis, side):
    cp = get_backend("cupy")
    npb = get_backend("numpy")
    mask = phase_mask(labels, phase)
    F_np, grid_np, mg_np, _ = intrusion_mod._levels_any(npb, mask, None, "flood")
    F_cp, grid_cp, mg_cp, _ = cpsd_mod._levels(cp, cp.asarray(mask), None)
    np.testing.assert_array_equal(grid_np, grid_cp)
    np.testing.assert_array_equal(mg_np, mg_cp)
    np.testing.assert_array_equal(F_np, cp.to_host(F_cp))
    B_np = K.bottleneck_flood(F_np, axis, side)
    B_cp = intrusion_mod.bottleneck_levels(cp, F_cp, axis, side)
    np.testing.assert_array_equal(B_np, cp.to_host(B_cp))


@pytest.mark.parametrize("phase", ["pore", "solid"])
def test_widest_path_sweeps_equal_labelling_on_the_gpu(labels, phase):
    """The GPU's default bottleneck route (CUDA widest-path sweeps) against the per-level
    cupyx labelling on the same level map, voxel by voxel."""
    from cbagpu.measure.widest_path import widest_path_levels

    cp = get_backend("cupy")
    F_cp, _, _, _ = cpsd_mod._levels(cp, cp.asarray(phase_mask(labels, phase)), None)
    for axis, side in ((0, "low"), (2, "high")):
        got = widest_path_levels(cp, F_cp, axis, side)
        ref = intrusion_mod.bottleneck_levels(cp, F_cp, axis, side)
        np.testing.assert_array_equal(cp.to_host(got), cp.to_host(ref))
