"""Launches of ``kernels/transport.cu`` (CuPy RawModule) and their argument builders.

The argument builders are shared by every backend that launches kernels (CuPy, and
:class:`~cbagpu.backend.host_kernels.HostKernelBackend`, which runs the same CUDA source
compiled as host C++); the kernel registry (:mod:`cbagpu.backend.registry`) checks each
kernel against its array-module twin in :mod:`cbagpu.transport.operator`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cbagpu.backend.kernels import launch_blocks

THREADS = 256


def _dims(shape: tuple[int, ...]) -> tuple[np.int32, ...]:
    return tuple(np.int32(n) for n in shape)


def apply_args(lev: Any, z: Any, out: Any) -> tuple[Any, ...]:
    """Arguments of ``cba_apply_f32`` / ``cba_apply_f64``."""
    return (*lev.g, lev.g_in, lev.g_out, z, out, *_dims(z.shape))


def gauss_seidel_args(lev: Any, r: Any, z: Any, color: int) -> tuple[Any, ...]:
    """Arguments of ``cba_gauss_seidel``."""
    return (*lev.g, lev.g_in, lev.g_out, r, z, *_dims(z.shape), np.int32(color))


def restrict_args(lev: Any, r: Any, z: Any, rc: Any) -> tuple[Any, ...]:
    """Arguments of ``cba_residual_restrict``."""
    return (*lev.g, lev.g_in, lev.g_out, r, z, rc, *_dims(z.shape), *_dims(rc.shape))


def prolong_args(z: Any, ec: Any) -> tuple[Any, ...]:
    """Arguments of ``cba_add_prolonged``."""
    return (z, ec, *_dims(z.shape), *_dims(ec.shape[1:]))


class CudaKernels:
    """The CUDA kernels behind the interface of ``Level.kern`` (float32 fields)."""

    name = "cuda"

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def _launch(self, name: str, n: int, args: tuple[Any, ...]) -> None:
        fn = self.backend.kernel("transport.cu", name)
        blocks = launch_blocks(n, THREADS)
        fn((blocks,), (THREADS,), args)

    def apply(self, lev: Any, z: Any, out: Any) -> Any:  # noqa: D102
        name = "cba_apply_f64" if z.dtype == np.float64 else "cba_apply_f32"
        self._launch(name, z.size, apply_args(lev, z, out))
        return out

    def gauss_seidel(self, lev: Any, r: Any, z: Any, color: int) -> Any:  # noqa: D102
        self._launch("cba_gauss_seidel", z.size, gauss_seidel_args(lev, r, z, color))
        return z

    def residual_restricted(self, lev: Any, r: Any, z: Any, rc: Any) -> Any:  # noqa: D102
        self._launch("cba_residual_restrict", rc.size, restrict_args(lev, r, z, rc))
        return rc

    def add_prolonged(self, lev: Any, z: Any, ec: Any) -> Any:  # noqa: D102
        self._launch("cba_add_prolonged", z.size, prolong_args(z, ec))
        return z
