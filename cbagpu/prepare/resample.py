"""Resampling to cubic voxels by slice removal (paper Sections 2.3.1 and 3.3, NOTES §8).

The paper turns its 10 x 10 x 20 nm FIB-SEM voxels into 20 nm cubes and later goes on to
40 and 80 nm by *removing slices*: a factor k along an axis keeps every k-th slice
(``img[::k]``, starting with the first). Labels stay exact (no interpolation, no majority
vote), and a probability map is sub-sampled the same way, so the two stay aligned.

Only integer factors are possible by slice removal. A target voxel size that is not an
integer multiple of every axis' voxel size is refused with a ``ValueError`` that names the
axis and suggests the nearest targets that work; up-sampling (a factor below one) is
refused as well (it would invent detail).

Axis order everywhere in cbagpu is ``(z, y, x)``: ``voxel_size=(20, 10, 10)`` is a stack
of 10 x 10 nm SEM images taken every 20 nm along z.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cbagpu.errors import InvalidInputError
from cbagpu.validation import AXIS_NAMES, check_voxel_size

__all__ = ["AXES", "as_voxel_sizes", "resample", "resample_factors", "resampled_shape"]

#: Deprecated alias of :data:`cbagpu.validation.AXIS_NAMES` (kept for one release).
AXES = AXIS_NAMES
_REL_TOL = 1e-6


def as_voxel_sizes(voxel_size: float | Sequence[float]) -> tuple[float, float, float]:
    """``voxel_size`` as three positive finite floats ``(z, y, x)`` in nm (a scalar means
    cubic voxels)."""
    if isinstance(voxel_size, (int, float)) and not isinstance(voxel_size, bool):
        sizes = (float(voxel_size),) * 3
    else:
        try:
            sizes = tuple(float(v) for v in voxel_size)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"voxel_size must be a number or three numbers (z, y, x) in nm, "
                f"got {voxel_size!r}"
            ) from None
        if len(sizes) == 1:
            sizes = sizes * 3
        if len(sizes) != 3:
            raise InvalidInputError(
                f"voxel_size needs one value (cubic) or three values (z, y, x), got {len(sizes)}"
            )
    for ax, s in zip(AXIS_NAMES, sizes, strict=True):
        check_voxel_size(s, f"voxel size along {ax}")
    return sizes  # type: ignore[return-value]


def _is_integer(q: float) -> bool:
    return abs(q - round(q)) <= _REL_TOL * max(1.0, abs(q))


def _allowed_targets(sizes: Sequence[float], near: float) -> list[float]:
    """The nearest target voxel sizes (below and above ``near``) that are integer multiples
    of every entry of ``sizes``; searched over multiples of the largest size."""
    base = max(sizes)
    found: list[float] = []
    k_hi = max(1, math.ceil(near / base))
    for k in range(1, 100_001):
        t = k * base
        if all(_is_integer(t / s) for s in sizes):
            found.append(t)
            if k >= k_hi:
                break
    below = [t for t in found if t <= near]
    above = [t for t in found if t > near]
    return ([below[-1]] if below else []) + ([above[0]] if above else [])


def resample_factors(
    voxel_size: float | Sequence[float], to_voxel_size: float
) -> tuple[int, int, int]:
    """Integer slice-removal factors ``(kz, ky, kx)`` taking ``voxel_size`` to cubic voxels
    of edge ``to_voxel_size`` (nm): ``k = to_voxel_size / voxel_size`` per axis.

    Raises ``ValueError`` for a factor below one (up-sampling) or a non-integer factor,
    naming the axis and suggesting the nearest target that every axis allows.
    """
    sizes = as_voxel_sizes(voxel_size)
    to = check_voxel_size(to_voxel_size, "to_voxel_size")
    factors = []
    for ax, s in zip(AXIS_NAMES, sizes, strict=True):
        q = to / s
        if q < 1 - _REL_TOL:
            raise InvalidInputError(
                f"to_voxel_size {to:g} nm is finer than the {s:g} nm voxels along {ax}: "
                f"slice removal can only coarsen (use a target >= {max(sizes):g} nm)"
            )
        if not _is_integer(q):
            options = _allowed_targets(sizes, to)
            hint = (" or ".join(f"{t:g}" for t in options) + " nm") if options else "none found"
            raise InvalidInputError(
                f"cannot resample by slice removal: along {ax} the factor "
                f"{to:g} nm / {s:g} nm = {q:.4g} is not an integer; nearest target voxel size that "
                f"every axis allows: {hint}"
            )
        factors.append(int(round(q)))
    return tuple(factors)  # type: ignore[return-value]


def resampled_shape(shape: Sequence[int], factors: Sequence[int]) -> tuple[int, int, int]:
    """Shape of ``image[::kz, ::ky, ::kx]`` (``ceil(n / k)`` per axis)."""
    return tuple(-(-int(n) // int(k)) for n, k in zip(shape, factors, strict=True))  # type: ignore[return-value]


def resample(
    image: Any, voxel_size: float | Sequence[float], to_voxel_size: float = 20.0
) -> Any:
    """Down-sample a 3D image ``(z, y, x)`` to cubic voxels by slice removal.

    Keeps every k-th slice along each axis, starting with the first (``image[::kz, ::ky,
    ::kx]``; NOTES §8), with the factors of :func:`resample_factors`. Works on NumPy and
    CuPy arrays alike and returns a C-contiguous copy of the same kind and dtype (the input
    itself when every factor is 1); values are picked, never interpolated (labels stay
    labels).
    """
    if getattr(image, "ndim", None) != 3:
        raise InvalidInputError(f"a 3D image (z, y, x) is needed, got shape "
                         f"{getattr(image, 'shape', None)}")
    kz, ky, kx = resample_factors(voxel_size, to_voxel_size)
    if (kz, ky, kx) == (1, 1, 1):
        return image
    return image[::kz, ::ky, ::kx].copy()
