"""Fixtures shared by the GPU tests. Every test in this folder is marked ``gpu`` (the root
conftest skips those cleanly where CuPy cannot run)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).parent == HERE:
            item.add_marker(pytest.mark.gpu)


@pytest.fixture(scope="session")
def cp_backend():
    """The CuPy backend (only built when a GPU test runs)."""
    from cbagpu.backend import get_backend

    return get_backend("cupy")


@cache
def _paper_window(shape: tuple[int, int, int], voxel_size: float, seed: int) -> np.ndarray:
    from cbagpu import generate, preset

    labels = generate(preset("paper"), shape, voxel_size, seed, backend="numpy")
    labels.setflags(write=False)
    return labels


@pytest.fixture(scope="session")
def paper_window():
    """``paper_window(shape, voxel_size, seed)``: a read-only host realization with the
    paper's parameters, generated once per session (NumPy backend, the reference)."""
    return lambda shape, voxel_size, seed: _paper_window(tuple(shape), float(voxel_size),
                                                         int(seed))
