"""GPU checks of the transport solver (skipped without CuPy and a GPU): the whole solve against
the NumPy backend (Numba kernels) on a realization of the paper's model. The CUDA kernels of
kernels/transport.cu against their array-module twins on the device: the ``cuda`` variant of
tests/test_kernels_registry.py."""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.transport import transport

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def labels():
    return generate(preset("paper"), (96, 80, 72), 40, 5, backend="numpy")


@pytest.mark.parametrize("phase", ["solid", "pore"])
def test_backends_agree(labels, phase):
    a = transport(labels, phase, tol=1e-4, backend="numpy")
    b = transport(labels, phase, tol=1e-4, backend="cupy")
    assert b.backend == "cupy" and b.converged
    assert b.tau_eff == pytest.approx(a.tau_eff, rel=2e-4)
    assert b.percolating_fraction == pytest.approx(a.percolating_fraction, abs=1e-12)
    assert b.iterations == pytest.approx(a.iterations, abs=3)


def test_uniform_block_on_gpu():
    r = transport(np.full((40, 30, 20), 2, np.uint8), "solid", backend="cupy")
    assert r.tau_eff == pytest.approx(1.0, rel=1e-5)
