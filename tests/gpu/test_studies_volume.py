"""GPU checks of block-wise Zarr generation (skipped without CuPy and a GPU).

On the CuPy backend the chunked store must equal ``generate(..., backend="cupy")`` of the
whole window byte for byte, in-process, by default (one worker per GPU with dask-cuda, else
in-process) and through 2 Dask processes sharing the GPU; it may differ from the NumPy
backend's store only where the field lies within float32 rounding of mu (same bound as
tests/gpu/test_gpu_backend.py). The window crosses field-block boundaries (blocks of 216
voxels at 40 nm start at global multiples of 216) and the chunks do not divide it.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("zarr", reason="block-wise generation writes .zarr (pip install cbagpu[dask])")
pytest.importorskip("distributed", reason="needs dask.distributed (pip install cbagpu[dask])")

from cbagpu import generate, preset
from cbagpu.backend import get_backend
from cbagpu.io import read_image
from cbagpu.memory import InsufficientMemoryError
from cbagpu.studies.volume import generate_zarr

pytestmark = pytest.mark.gpu

SHAPE = (160, 144, 128)
ORIGIN = (-50, 150, 7)
VOXEL = 40.0
SEED = 11
CHUNKS = (64, 64, 48)
PARAMS = preset("paper")


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return generate(PARAMS, SHAPE, VOXEL, SEED, origin=ORIGIN, backend="cupy")


def _make(path, **kw):
    return generate_zarr(PARAMS, SHAPE, VOXEL, SEED, path, chunks=CHUNKS, origin=ORIGIN, **kw)


@pytest.mark.parametrize("workers", [1, None, 2])
def test_cupy_store_equals_whole_window(tmp_path, reference, workers):
    r = _make(tmp_path / "g.zarr", backend="cupy", workers=workers)
    # 4 field blocks (borders z = 0, y = 216); 12 of the 27 chunks lie inside one block
    assert r.backend == "cupy" and r.tasks_computed == r.tasks_total == 4 + 15
    assert r.field_blocks == 4
    data, meta = read_image(r.path)
    assert meta["backend"] == "cupy"
    assert data.tobytes() == reference.tobytes()


def test_auto_is_cupy_and_a_numpy_rerun_is_refused(tmp_path, reference):
    r = _make(tmp_path / "a.zarr", backend="auto", workers=1)
    assert r.backend == "cupy"
    with pytest.raises(ValueError, match="other settings: backend"):
        _make(tmp_path / "a.zarr", backend="numpy", workers=1)


def test_numpy_store_differs_only_at_rounding(tmp_path, reference):
    r = _make(tmp_path / "n.zarr", backend="numpy", workers=1)
    data, _ = read_image(r.path)
    diff = data != reference
    assert diff.mean() <= 1e-5
    # where they differ it is CBD vs pore (the threshold Z >= mu), never graphite
    assert set(np.unique(data[diff]).tolist()) <= {0, 1}


def test_chunk_too_large_for_the_gpu_refused(tmp_path, monkeypatch):
    be = get_backend("cupy")
    monkeypatch.setattr(be, "available_memory", lambda: 32 << 20)
    with pytest.raises(InsufficientMemoryError, match="GPU memory"):
        _make(tmp_path / "m.zarr", backend="cupy", workers=1)
    assert not (tmp_path / "m.zarr").exists()
