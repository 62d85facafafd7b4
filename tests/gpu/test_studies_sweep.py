"""GPU checks of the sweep (skipped without CuPy and a GPU).

The CuPy sweep must match the NumPy sweep of the same settings: labels may differ where the
Gaussian field lies within float32 rounding of mu (a handful of voxels, see
tests/gpu/test_gpu_backend.py), so volume fractions agree to 1e-4 (26 voxels of 64^3 at
most), tortuosities and M to a few per cent (transport stops at a flux spread of 1e-2, so
each backend's tau_eff is within ~1e-3 of the converged one; constrictivity moves on the
radius grid when r_min's level changes). Then the default Dask path (LocalCUDACluster with
dask-cuda, else a LocalCluster) gives the same table as the in-process loop on the GPU.
"""

from __future__ import annotations

import math

import pytest

from cbagpu import preset
from cbagpu.studies.sweep import sweep

pytestmark = pytest.mark.gpu

KW = dict(realizations=2, shape=(64, 64, 64), voxel_size=40.0, seed=5, plot=False)
VARY = {"lambda_x": [2.21e-11, 1.09e-10]}


def _close(a: float, b: float, rel: float, abs_: float = 0.0) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_)


@pytest.fixture(scope="module")
def gpu_rows():
    return sweep(preset("paper"), VARY, **KW, backend="cupy", workers=1).rows


def test_cupy_sweep_matches_numpy(gpu_rows):
    cpu = sweep(preset("paper"), VARY, **KW, backend="numpy", workers=1).rows
    assert len(cpu) == len(gpu_rows) == 8
    for c, g in zip(cpu, gpu_rows, strict=True):
        assert (c["lambda_x"], c["seed"], c["phase"]) == (g["lambda_x"], g["seed"], g["phase"])
        assert _close(c["epsilon"], g["epsilon"], 0, 1e-4)
        assert _close(c["geodesic_tortuosity"], g["geodesic_tortuosity"], 1e-2)
        assert _close(c["M"], g["M"], 3e-2, 1e-6)
        assert _close(c["constrictivity"], g["constrictivity"], 0.1, 0.02)


def test_default_dask_path_on_gpu(gpu_rows, tmp_path):
    res = sweep(preset("paper"), VARY, **KW, backend="cupy", out_dir=tmp_path)
    for a, b in zip(res.rows, gpu_rows, strict=True):
        for k in ("epsilon", "constrictivity", "geodesic_tortuosity"):
            assert a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k]))
        assert _close(a["M"], b["M"], 1e-5)
