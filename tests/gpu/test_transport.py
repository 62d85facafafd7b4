"""GPU checks of the transport solver (skipped without CuPy and a GPU): the CUDA kernels of
kernels/transport.cu against their array-module twins on the device, and the whole solve
against the NumPy backend (Numba kernels) on a realization of the paper's model."""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.backend import get_backend
from cbagpu.transport import transport
from cbagpu.transport.conductance import fine_level
from cbagpu.transport.cuda_kernels import CudaKernels
from cbagpu.transport.operator import Level

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def labels():
    return generate(preset("paper"), (96, 80, 72), 40, 5, backend="numpy")


def test_cuda_kernels_match_array_twins_on_device():
    cp = get_backend("cupy")
    xp = cp.xp
    rng = np.random.default_rng(3)
    shape = (33, 18, 25)
    s = (rng.random(shape) * (rng.random(shape) > 0.3)).astype(np.float32)
    twin = fine_level(xp, xp.asarray(s), 0.5)
    fast = Level(xp, twin.g, twin.g_in, twin.g_out, CudaKernels(cp))
    z = xp.asarray(rng.random(shape).astype(np.float32))
    r = xp.asarray(rng.random(shape).astype(np.float32))
    xp.testing.assert_allclose(fast.apply(z), twin.apply(z), rtol=1e-5, atol=1e-5)
    for color in (0, 1):
        xp.testing.assert_allclose(fast.gauss_seidel(r, z.copy(), color),
                                   twin.gauss_seidel(r, z.copy(), color), rtol=1e-5, atol=1e-6)
    xp.testing.assert_allclose(fast.residual_restricted(r, z), twin.residual_restricted(r, z),
                               rtol=1e-4, atol=1e-5)


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
