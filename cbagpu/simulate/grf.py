"""The Gaussian random field Z of Xi2 (Section 3.1.2), window by window.

Z is the convolution of the counter-based white noise of :mod:`cbagpu.simulate.noise`
with a fixed kernel ``k`` whose discrete autocorrelation is the covariance
rho(h) = 1 / (1 + (eta h)^2) of Eq. (2) (eta in voxel units):

* ``k`` = inverse DFT of sqrt(lambda), lambda the DFT of rho sampled on a periodic grid of
  edge M = 4 R + 4 (computed on one octant with DCT-I, float64). lambda has a few tiny
  negative values at the highest frequencies (Cauchy covariance sampled on a lattice): they
  are clipped to 0 (:attr:`FieldKernel.clipped` counts them).
* ``k`` is truncated to the ball |x| <= R with ``R = ceil(TRUNCATION_FACTOR / eta)`` and
  rescaled so that sum k^2 = 1 (unit variance exactly). With ``TRUNCATION_FACTOR = 26`` the
  covariance of the truncated kernel differs from rho by less than 1e-3 at every lag
  (measured: 8.8e-4 at eta = 0.254, 0.508, 1.016, i.e. the paper's eta at 20/40/80 nm; the
  worst lag is just beyond R; see :func:`kernel_covariance_error` and its test). A sharp cut
  needs eta R ~ 26 for 1e-3 because rho(h) ~ 1/(eta h)^2 is still 1.5e-3 at h = R; smooth
  tapers were measured to do worse.
* The convolution is evaluated by FFT on the blocks of a FIXED global block grid: block
  ``b`` covers ``[b B, (b+1) B)`` along each axis, is computed from the noise on the block
  dilated by the halo R (an FFT of edge N = B + 2 R) and only its valid part is kept
  (overlap-save). Every voxel's value is therefore computed by the same arithmetic whatever
  window asks for it, which makes windows of one realization bit-identical on one backend.
  N depends only on R (even, 5-smooth, about 6 R, at most 768 unless 2 R + 64 is larger).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.fft

from cbagpu.backend.base import Backend
from cbagpu.errors import InvalidInputError
from cbagpu.simulate.noise import field_key, white_noise

#: eta * R for the kernel truncation radius R (voxel units), see the module docstring.
TRUNCATION_FACTOR = 26.0
#: Largest FFT block edge chosen by default (bounds the working set: ~4.5 bytes * N^3 * 3).
MAX_BLOCK_FFT = 768


def _is_smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def _next_even_smooth(n: int) -> int:
    n = max(2, int(n))
    n += n % 2
    while not _is_smooth(n):
        n += 2
    return n


def truncation_radius(eta_vox: float) -> int:
    """Kernel truncation radius R (voxels) for eta in voxel units."""
    r = TRUNCATION_FACTOR / eta_vox
    if not math.isfinite(r) or r >= 2**31:
        raise InvalidInputError(
            f"the Gaussian field's kernel would reach {r:.3g} voxels (eta = {eta_vox:.3g} per "
            "voxel): more than the 2^31-voxel window limit; use a larger voxel size"
        )
    return max(4, math.ceil(r))


def kernel_build_bytes(radius: int) -> int:
    """Peak host bytes of :func:`field_kernel` for a truncation radius R: a few float64
    arrays of (2R + 3)^3 values (distances, the DCT of the covariance, its root)."""
    return 28 * (2 * int(radius) + 3) ** 3  # 1.75 GB peak RSS measured at R = 205


def block_fft_size(radius: int) -> int:
    """Edge N of the FFT blocks (block edge B = N - 2 R) for a kernel radius R."""
    return _next_even_smooth(max(2 * radius + 64, min(6 * radius, MAX_BLOCK_FFT)))


@dataclass(frozen=True)
class FieldKernel:
    """The truncated convolution kernel of the field and its block geometry.

    Attributes
    ----------
    eta : float
        eta in voxel units (eta_nm * voxel_size).
    radius : int
        Truncation radius R (voxels); the halo of each block.
    fft_size : int
        FFT block edge N.
    octant : ndarray, float64, shape (R+1, R+1, R+1)
        k(i, j, l) for i, j, l >= 0 (the kernel is even in each axis), zero outside |x| <= R.
    clipped : int
        Number of negative DFT values of the sampled covariance clipped to 0.
    """

    eta: float
    radius: int
    fft_size: int
    octant: np.ndarray
    clipped: int

    @property
    def block(self) -> int:
        """Edge B of the valid part of a block (the global block grid spacing)."""
        return self.fft_size - 2 * self.radius

    def full(self) -> np.ndarray:
        """The kernel on [-R, R]^3 (float64), centre at index R."""
        o = self.octant
        a = np.concatenate([o[:0:-1], o], axis=0)
        a = np.concatenate([a[:, :0:-1], a], axis=1)
        return np.concatenate([a[:, :, :0:-1], a], axis=2)


def _octant_weights(n: int) -> np.ndarray:
    """Multiplicity of an octant entry in the full even array (2 per nonzero index)."""
    w = np.where(np.arange(n) == 0, 1.0, 2.0)
    return w[:, None, None] * w[None, :, None] * w[None, None, :]


@lru_cache(maxsize=8)
def field_kernel(eta_vox: float, radius: int | None = None) -> FieldKernel:
    """Build the truncated kernel for ``eta_vox`` (eta in voxel units)."""
    if not (math.isfinite(eta_vox) and eta_vox > 0):
        raise InvalidInputError(f"eta in voxel units must be finite and > 0, got {eta_vox!r}")
    R = truncation_radius(eta_vox) if radius is None else int(radius)
    half = 2 * R + 2  # M / 2 with M = 4 R + 4
    i = np.arange(half + 1, dtype=np.float64)
    h2 = i[:, None, None] ** 2 + i[None, :, None] ** 2 + i[None, None, :] ** 2
    rho = 1.0 / (1.0 + eta_vox * eta_vox * h2)
    lam = scipy.fft.dctn(rho, type=1)  # = DFT of the even extension (length M per axis)
    del rho
    clipped = int(np.count_nonzero(lam < 0))
    np.clip(lam, 0.0, None, out=lam)
    np.sqrt(lam, out=lam)
    k = scipy.fft.idctn(lam, type=1)[: R + 1, : R + 1, : R + 1]
    del lam
    r2 = h2[: R + 1, : R + 1, : R + 1]
    k = np.where(r2 <= R * R, k, 0.0)
    k /= math.sqrt(float(np.sum(_octant_weights(R + 1) * k * k)))
    return FieldKernel(float(eta_vox), R, block_fft_size(R), k, clipped)


def kernel_spectrum(kernel: FieldKernel, n: int | None = None) -> np.ndarray:
    """Real spectrum of the kernel on the N^3 FFT grid in ``rfftn`` layout (float32).

    The kernel is even, so its DFT is real; it is computed from the octant with DCT-I.
    """
    n = kernel.fft_size if n is None else int(n)
    if n % 2 or n < 2 * kernel.radius + 1:
        raise InvalidInputError("FFT size must be even and hold the kernel")
    half = n // 2
    oct_ = np.zeros((half + 1,) * 3, np.float32)
    r = kernel.radius
    oct_[: r + 1, : r + 1, : r + 1] = kernel.octant
    # float32 DCT-I: relative error ~1e-7 of the spectrum's maximum, far below the
    # kernel truncation error, and 5x faster than float64 at N = 640
    spec = scipy.fft.dctn(oct_, type=1, workers=-1)
    del oct_
    out = np.empty((n, n, half + 1), np.float32)
    out[: half + 1, : half + 1] = spec
    out[: half + 1, half + 1 :] = spec[:, half - 1 : 0 : -1]
    out[half + 1 :] = out[half - 1 : 0 : -1]
    return out


def kernel_covariance_error(kernel: FieldKernel) -> tuple[float, float]:
    """Exact covariance of the field made with ``kernel`` vs Eq. (2), at every lattice lag.

    Returns ``(max |cov(h) - rho(h)|, lag of the maximum)``; cov is the autocorrelation of
    the truncated kernel (float64 FFT on a grid that holds it without wrap-around), so the
    error covers all lags, including those beyond 2 R where cov is exactly 0.
    """
    full = kernel.full()
    m = _next_even_smooth(2 * full.shape[0])
    g = np.zeros((m, m, m))
    r = kernel.radius
    idx = np.r_[0 : r + 1, m - r : m]
    order = np.r_[r : 2 * r + 1, 0:r]
    g[np.ix_(idx, idx, idx)] = full[np.ix_(order, order, order)]
    spec = scipy.fft.rfftn(g, workers=-1)
    cov = scipy.fft.irfftn(spec.real**2 + spec.imag**2, s=g.shape, workers=-1)
    f = np.minimum(np.arange(m), m - np.arange(m)).astype(np.float64)
    h = np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + f[None, None, :] ** 2)
    err = np.abs(cov - 1.0 / (1.0 + (kernel.eta * h) ** 2))
    i = np.unravel_index(int(np.argmax(err)), err.shape)
    return float(err[i]), float(h[i])


def block_range(start: int, stop: int, block: int) -> range:
    """Indices of the global blocks of edge ``block`` meeting ``[start, stop)``."""
    return range(start // block, (stop - 1) // block + 1)


@dataclass(frozen=True)
class BlockPiece:
    """One block of the global grid and where its valid part lands in the window."""

    index: tuple[int, int, int]
    field_slices: tuple[slice, slice, slice]  # into the N^3 block result
    window_slices: tuple[slice, slice, slice]  # into the window


def window_blocks(
    origin: tuple[int, int, int], shape: tuple[int, int, int], kernel: FieldKernel
) -> list[BlockPiece]:
    """The global blocks that a window needs, with the copy geometry of each."""
    B, R = kernel.block, kernel.radius
    ranges = [block_range(o, o + s, B) for o, s in zip(origin, shape, strict=True)]
    pieces = []
    for bz in ranges[0]:
        for by in ranges[1]:
            for bx in ranges[2]:
                fs, ws = [], []
                for b, o, s in zip((bz, by, bx), origin, shape, strict=True):
                    lo = max(b * B, o)
                    hi = min((b + 1) * B, o + s)
                    fs.append(slice(R + lo - b * B, R + hi - b * B))
                    ws.append(slice(lo - o, hi - o))
                pieces.append(BlockPiece((bz, by, bx), tuple(fs), tuple(ws)))
    return pieces


class _SpectrumCache:
    """Keeps the last kernel spectrum (it is large: ~N^3 * 2 bytes) with the backend object
    whose array it is."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._value: Any = None

    def get(self, backend: Backend, kernel: FieldKernel) -> Any:
        key = (backend, kernel.eta, kernel.radius, kernel.fft_size)  # backends: by identity
        if key != self._key:
            self._value = None
            self._value = backend.asarray(kernel_spectrum(kernel))
            self._key = key
        return self._value


_spectra = _SpectrumCache()


def field_blocks(
    backend: Backend,
    kernel: FieldKernel,
    seed: int,
    origin: tuple[int, int, int],
    shape: tuple[int, int, int],
) -> Iterator[tuple[BlockPiece, Any]]:
    """Yield ``(piece, block)``: the full N^3 field block (float32, backend array) for every
    global block meeting the window; ``block[piece.field_slices]`` is its part of the
    window."""
    spectrum = _spectra.get(backend, kernel)
    key = field_key(seed)
    B, R, N = kernel.block, kernel.radius, kernel.fft_size
    for piece in window_blocks(origin, shape, kernel):
        corner = tuple(b * B - R for b in piece.index)
        noise = white_noise(backend, key, corner, (N, N, N))
        spec = backend.rfftn(noise)
        del noise
        spec *= spectrum
        block = backend.irfftn(spec, (N, N, N))
        del spec
        yield piece, block
        del block  # release before the next block's noise is allocated


def gaussian_field(
    eta_vox: float,
    shape: tuple[int, int, int],
    seed: int,
    origin: tuple[int, int, int] = (0, 0, 0),
    backend: Backend | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """The field Z (mean 0, variance 1, covariance Eq. 2) on ``origin + [0, shape)``.

    ``eta_vox`` is eta in voxel units (eta_nm * voxel_size). Returns a float32 array of the
    backend (NumPy when ``backend`` is None).
    """
    from cbagpu.backend import get_backend

    be = get_backend("numpy" if backend is None else backend)
    kernel = field_kernel(float(eta_vox))
    out = be.xp.empty(tuple(shape), dtype=be.xp.float32)
    pieces = window_blocks(origin, shape, kernel)
    for i, (piece, block) in enumerate(field_blocks(be, kernel, seed, origin, shape)):
        out[piece.window_slices] = block[piece.field_slices]
        if progress is not None:
            progress(i + 1, len(pieces))
    return out
