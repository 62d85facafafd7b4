"""Counter-based white noise: a pure function of (seed, global voxel index).

The Gaussian field (:mod:`cbagpu.simulate.grf`) convolves this noise with a fixed kernel, so
any window of one realization can be produced on its own. The noise value of voxel
``(z, y, x)`` is defined by the hash chain (all arithmetic on unsigned 32-bit words,
``mix`` = the bijective "lowbias32" finaliser)::

    hz  = mix((uint32(z) * 0x9E3779B1) ^ key)
    hzy = mix(hz + uint32(y) * 0x85EBCA77)
    h1  = mix(hzy ^ (uint32(x >> 1) * 0xC2B2AE3D))      # x >> 1: pair index (floor)
    h2  = mix(h1 + 0x27D4EB2F)
    u1  = ((h1 >> 8) + 0.5) / 2**24,  u2 = (h2 >> 8) / 2**24
    n   = sqrt(-2 log u1) * (cos(2 pi u2) if x even else sin(2 pi u2))   # Box-Muller

so each pair of voxels along x shares one Box-Muller draw (the two outputs are
independent N(0, 1)). Coordinates wrap modulo 2**32: the lattice is valid for
|z|, |y|, |x| < 2**31. The CUDA kernel ``kernels/noise.cu`` evaluates the same chain;
the two agree to float32 rounding of log/sin/cos (a few ulp).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from cbagpu.backend.base import Backend
from cbagpu.backend.kernels import launch_blocks

_M1 = np.uint32(0x7FEB352D)
_M2 = np.uint32(0x846CA68B)
_KZ = np.uint32(0x9E3779B1)
_KY = np.uint32(0x85EBCA77)
_KP = np.uint32(0xC2B2AE3D)
_K2 = np.uint32(0x27D4EB2F)
_S16 = np.uint32(16)
_S15 = np.uint32(15)
_S8 = np.uint32(8)
_TWO_PI = np.float32(2.0 * np.pi)
_INV24 = np.float32(2.0**-24)


def mix32(x: np.ndarray) -> np.ndarray:
    """The lowbias32 finaliser on a uint32 array, in place (returns ``x``)."""
    x ^= x >> _S16
    x *= _M1
    x ^= x >> _S15
    x *= _M2
    x ^= x >> _S16
    return x


def _mix32_int(v: int) -> int:
    return int(mix32(np.array([v & 0xFFFFFFFF], dtype=np.uint32))[0])


def field_key(seed: int) -> int:
    """32-bit key of the field's white noise, derived from a 64-bit ``seed``."""
    lo, hi = seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF
    return _mix32_int(_mix32_int(lo ^ 0x243F6A88) ^ hi ^ 0x13198A2E)


def _wrap_u32(a: np.ndarray) -> np.ndarray:
    return (a & 0xFFFFFFFF).astype(np.uint32)


def _noise_slab(key: int, z0: int, y0: int, x0: int, out: np.ndarray) -> None:
    nz, ny, nx = out.shape
    z = _wrap_u32(np.arange(z0, z0 + nz, dtype=np.int64))
    y = _wrap_u32(np.arange(y0, y0 + ny, dtype=np.int64))
    hz = mix32((z * _KZ) ^ np.uint32(key))
    hzy = mix32(hz[:, None] + y[None, :] * _KY)
    p0 = x0 >> 1
    p1 = (x0 + nx - 1) >> 1
    p = _wrap_u32(np.arange(p0, p1 + 1, dtype=np.int64)) * _KP
    h1 = mix32(hzy[:, :, None] ^ p[None, None, :])
    h2 = mix32(h1 + _K2)
    u1 = (h1 >> _S8).astype(np.float32)
    u1 += np.float32(0.5)
    u1 *= _INV24
    u2 = (h2 >> _S8).astype(np.float32)
    u2 *= _INV24
    r = np.log(u1)
    r *= np.float32(-2.0)
    np.sqrt(r, out=r)
    u2 *= _TWO_PI
    pair = np.empty(r.shape + (2,), np.float32)
    np.multiply(r, np.cos(u2), out=pair[..., 0])
    np.multiply(r, np.sin(u2), out=pair[..., 1])
    start = x0 - 2 * p0
    out[...] = pair.reshape(nz, ny, -1)[:, :, start : start + nx]


def white_noise_numpy(
    key: int,
    origin: tuple[int, int, int],
    shape: tuple[int, int, int],
    out: np.ndarray | None = None,
    threads: int = 2,
) -> np.ndarray:
    """NumPy twin of ``kernels/noise.cu``: noise of the box ``origin + [0, shape)``."""
    if out is None:
        out = np.empty(shape, np.float32)
    z0, y0, x0 = (int(v) for v in origin)
    nz, ny, nx = shape
    # slabs of ~2 M voxels keep the temporaries in cache-friendly sizes
    step = max(1, (1 << 18) // max(1, ny * nx))

    def job(a: int) -> None:
        b = min(a + step, nz)
        _noise_slab(key, z0 + a, y0, x0, out[a:b])

    starts = range(0, nz, step)
    if threads > 1 and nz > step:
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(job, starts))
    else:
        for a in starts:
            job(a)
    return out


def noise_kernel_args(out: Any, key: int, origin: tuple[int, int, int]) -> tuple[Any, ...]:
    """Arguments of the ``white_noise`` kernel (``kernels/noise.cu``) filling ``out``."""
    nz, ny, nx = out.shape
    return (
        out,
        np.uint32(key),
        np.int64(origin[0]),
        np.int64(origin[1]),
        np.int64(origin[2]),
        np.int32(nz),
        np.int32(ny),
        np.int32(nx),
    )


def white_noise(
    backend: Backend, key: int, origin: tuple[int, int, int], shape: tuple[int, int, int]
) -> Any:
    """White noise of the box ``origin + [0, shape)`` as a float32 array of ``backend``."""
    shape = tuple(int(v) for v in shape)
    if not backend.runs_kernels:
        return white_noise_numpy(key, origin, shape, threads=backend.workers)
    xp = backend.xp
    out = xp.empty(shape, dtype=xp.float32)
    threads = 256
    fn = backend.kernel("noise.cu", "white_noise")
    fn((launch_blocks(out.size, threads),), (threads,), noise_kernel_args(out, key, origin))
    return out
