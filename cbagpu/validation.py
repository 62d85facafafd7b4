"""Argument checks shared by every public function (in the spirit of scikit-image's
``_shared/utils.py``): one rule per kind of argument, one wording of its error.

Every check raises :class:`~cbagpu.errors.InvalidInputError` (a ``ValueError``) naming the
argument and what was wrong, before any work starts.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from cbagpu.errors import InvalidInputError

#: The axes of a (z, y, x) volume by name.
AXIS_NAMES: tuple[str, str, str] = ("z", "y", "x")

#: Labels of the three phases (NOTES §1).
PORE, CBD, GRAPHITE = 0, 1, 2
LABEL_NAMES: dict[int, str] = {PORE: "pore", CBD: "cbd", GRAPHITE: "graphite"}


def check_int(value: Any, what: str) -> int:
    """An integer (an integral float such as ``3.0`` is accepted; bools are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{what} must be an integer, got {value!r}")
    if not isinstance(value, numbers.Integral):
        if not (math.isfinite(float(value)) and float(value).is_integer()):
            raise InvalidInputError(f"{what} must be an integer, got {value!r}")
    return int(value)


def check_axis(axis: Any, what: str = "axis") -> int:
    """The axis of a 3-D (z, y, x) volume as 0, 1 or 2.

    Accepts 0, 1, 2, the negative -3..-1 and the names ``"z"``, ``"y"``, ``"x"``
    (NumPy integers too); rejects bools, other numbers and names.
    """
    if isinstance(axis, str):
        if axis in AXIS_NAMES:
            return AXIS_NAMES.index(axis)
    elif isinstance(axis, numbers.Integral) and not isinstance(axis, (bool, np.bool_)):
        if -3 <= int(axis) <= 2:
            return int(axis) % 3
    raise InvalidInputError(
        f"{what} must be 0, 1, 2 (or -3..-1) or 'z', 'y', 'x'; got {axis!r}"
    )


def check_voxel_size(voxel_size: Any, what: str = "voxel_size") -> float:
    """A voxel edge length: a finite real number > 0 (nm)."""
    if voxel_size is None:
        raise InvalidInputError(f"the voxel size is missing: pass {what} (nm)")
    if isinstance(voxel_size, (bool, np.bool_)) or not isinstance(voxel_size, numbers.Real):
        raise InvalidInputError(f"{what} must be a number (nm), got {voxel_size!r}")
    v = float(voxel_size)
    if not (math.isfinite(v) and v > 0):
        raise InvalidInputError(f"{what} must be finite and > 0 (nm), got {voxel_size!r}")
    return v


def check_seed(seed: Any, what: str = "seed") -> int:
    """A seed: an integer in [0, 2^63)."""
    s = check_int(seed, what)
    if not 0 <= s < 2**63:
        raise InvalidInputError(f"{what} must be in [0, 2^63), got {seed!r}")
    return s


def check_window(shape: Any, origin: Any) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """A window of the unbounded realization: ``shape`` (3 positive integers) and
    ``origin`` (3 integers), within +-2^31 voxels."""
    try:
        shape_t = tuple(shape)
        origin_t = tuple(origin)
    except TypeError:
        raise InvalidInputError(
            f"shape and origin must be sequences of 3 integers, got {shape!r}, {origin!r}"
        ) from None
    if len(shape_t) != 3:
        raise InvalidInputError(f"shape must have 3 entries (z, y, x), got {shape!r}")
    if len(origin_t) != 3:
        raise InvalidInputError(f"origin must have 3 entries (z, y, x), got {origin!r}")
    s = tuple(check_int(v, "shape entry") for v in shape_t)
    o = tuple(check_int(v, "origin entry") for v in origin_t)
    if any(v <= 0 for v in s):
        raise InvalidInputError(f"shape entries must be positive, got {shape!r}")
    if any(abs(v) + n >= 2**31 for v, n in zip(o, s, strict=True)):
        raise InvalidInputError("the window must lie within +-2^31 voxels of the origin")
    return s, o  # type: ignore[return-value]


def check_mask_3d(mask: Any, xp: Any = np, *, what: str = "mask", min_edge: int = 1) -> Any:
    """A 3-D array as given (no copy), checked: three dimensions, every edge >= ``min_edge``;
    ``xp`` is the array module it should belong to (its ``asarray`` is applied)."""
    m = xp.asarray(mask)
    if m.ndim != 3:
        raise InvalidInputError(
            f"{what} must be 3D (z, y, x), got {m.ndim}-D with shape {tuple(m.shape)}"
        )
    if min(m.shape) < min_edge:
        raise InvalidInputError(
            f"every edge of {what} must be >= {min_edge} voxels, got shape {tuple(m.shape)}"
        )
    return m


def check_labels(labels: Any, xp: Any = np, *, what: str = "labels", min_edge: int = 1) -> Any:
    """A 3-D label image with the labels 0 (pore), 1 (CBD), 2 (graphite), as uint8 of the
    array module ``xp`` (no copy when it already is one)."""
    lab = check_mask_3d(labels, xp, what=what, min_edge=min_edge)
    if lab.dtype == bool:
        raise InvalidInputError(
            f"{what} must be 0 (pore), 1 (CBD), 2 (graphite), got a boolean mask"
        )
    if lab.dtype.kind not in "iu":
        raise InvalidInputError(f"{what} must be integers 0, 1, 2, got dtype {lab.dtype}")
    if lab.size:
        lo, hi = int(lab.min()), int(lab.max())
        if lo < 0 or hi > 2:
            bad = (lab < 0) | (lab > 2)
            vals = np.unique(np.asarray(_to_host(lab[bad])))[:5].tolist()
            raise InvalidInputError(
                f"{what} must be 0 (pore), 1 (CBD), 2 (graphite); found {vals}"
            )
    return lab.astype(xp.uint8, copy=False)


def _to_host(a: Any) -> Any:
    get = getattr(a, "get", None)
    return get() if callable(get) else a


__all__ = [
    "AXIS_NAMES",
    "CBD",
    "GRAPHITE",
    "LABEL_NAMES",
    "PORE",
    "check_axis",
    "check_int",
    "check_labels",
    "check_mask_3d",
    "check_seed",
    "check_voxel_size",
    "check_window",
]
