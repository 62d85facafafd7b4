"""Shared fixtures: the GPU marker skips cleanly where CuPy cannot run."""

from __future__ import annotations

import pytest

from cbagpu.backend import gpu_available
from cbagpu.backend.cupy_backend import cupy_unavailable_reason


def pytest_collection_modifyitems(config, items):
    if gpu_available():
        return
    skip = pytest.mark.skip(reason=f"GPU tests need CuPy and a GPU: {cupy_unavailable_reason()}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
