"""Germs and marks of the two Boolean models, drawn per cell of a fixed global grid.

Space (voxel units, voxel i has its centre at coordinate i) is cut into cubic cells whose
edge L is a function of the component's intensity only (:func:`cell_size`: the smallest
power of two >= 32 with lambda L^3 >= 64, at most 1024; 512 for graphite and 128 for large
pores with Table 2 at 20 nm). The germs of cell (i, j, l) of component c (1 = graphite Xi1,
3 = large pores Xi3) come from NumPy's counter-based Philox generator keyed by
(seed, c, i, j, l): a Poisson number with mean lambda L^3, positions uniform in the cell,
then the marks. A germ therefore does not depend on which window asked for it, and both
backends place the same grains (germs and marks are always drawn on the host).

Grain extents are capped at their (1 - :data:`EXTENT_TAIL`) quantile (per grain, the half
axes A, C of a spheroid and the radius of a ball are clipped to it), so that a window needs
only the germs of the window dilated by that cap. With EXTENT_TAIL = 1e-9 and the paper's
parameters at 20 nm, about 5e-7 graphite grains and 7.5e-5 large pores per 1000^3 voxels
are clipped (expected numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.stats

from cbagpu.errors import InvalidInputError
from cbagpu.params import VoxelParams

#: Smallest and largest edge of the germ cells (voxels) and the target germs per cell.
MIN_CELL, MAX_CELL, GERMS_PER_CELL = 32, 1024, 64
#: Per-grain probability that the grain extent is clipped (see module docstring).
EXTENT_TAIL = 1e-9
GRAPHITE = 1
LARGE_PORES = 3
_CELL_BITS = 20
_CELL_LIMIT = 1 << (_CELL_BITS - 1)


@dataclass(frozen=True)
class Spheroids:
    """Oblate spheroids of Xi1 (voxel units, axis order z, y, x).

    ``centers`` (n, 3), ``axes`` (n, 3) unit symmetry axes u, half axes ``a``, ``c`` (n,);
    the half-length along u is r = min(a, c), the radius perpendicular to u is R = max(a, c).
    """

    centers: np.ndarray
    axes: np.ndarray
    a: np.ndarray
    c: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    @property
    def r(self) -> np.ndarray:
        return np.minimum(self.a, self.c)

    @property
    def R(self) -> np.ndarray:  # noqa: N802 - the paper's symbol
        return np.maximum(self.a, self.c)

    def extents(self) -> np.ndarray:
        """Half-widths (n, 3) of the axis-aligned bounding boxes."""
        r, R = self.r, self.R
        return np.sqrt(R[:, None] ** 2 + (r[:, None] ** 2 - R[:, None] ** 2) * self.axes**2)

    def select(self, keep: np.ndarray) -> Spheroids:
        return Spheroids(self.centers[keep], self.axes[keep], self.a[keep], self.c[keep])


@dataclass(frozen=True)
class Balls:
    """Open balls of Xi3 (voxel units): ``centers`` (n, 3), ``radii`` (n,)."""

    centers: np.ndarray
    radii: np.ndarray

    def __len__(self) -> int:
        return len(self.radii)

    def extents(self) -> np.ndarray:
        return np.repeat(self.radii[:, None], 3, axis=1)

    def select(self, keep: np.ndarray) -> Balls:
        return Balls(self.centers[keep], self.radii[keep])


def graphite_extent_cap(vp: VoxelParams) -> float:
    """Cap (voxels) on the half axes of the spheroids: their (1 - EXTENT_TAIL) quantile."""
    isf = scipy.stats.gamma.isf
    q = max(isf(EXTENT_TAIL, vp.shape1), isf(EXTENT_TAIL, vp.shape2))
    return float(q / vp.gamma)


def pore_extent_cap(vp: VoxelParams) -> float:
    """Cap (voxels) on the radii of the large pores: their (1 - EXTENT_TAIL) quantile."""
    return float(-math.log(EXTENT_TAIL) / vp.theta)


def cell_size(intensity: float) -> int:
    """Edge (voxels) of the germ cells for ``intensity`` germs per voxel."""
    cell = MIN_CELL
    while cell < MAX_CELL and intensity * cell**3 < GERMS_PER_CELL:
        cell *= 2
    return cell


def _zigzag(v: int) -> int:
    return (v << 1) if v >= 0 else ((-v << 1) - 1)


def cell_generator(seed: int, component: int, cell: tuple[int, int, int]) -> np.random.Generator:
    """The counter-based generator of one cell of one component."""
    if any(abs(c) >= _CELL_LIMIT for c in cell):
        raise InvalidInputError(
            f"window too far from the origin: germ cell {cell} outside +-{_CELL_LIMIT} cells"
        )
    k1 = component << 60
    for i, c in enumerate(cell):
        k1 |= _zigzag(int(c)) << (_CELL_BITS * (2 - i))
    return np.random.Generator(np.random.Philox(key=np.array([seed, k1], dtype=np.uint64)))


def _cells(lo: np.ndarray, hi: np.ndarray, size: int) -> list[tuple[int, int, int]]:
    a = np.floor(lo / size).astype(np.int64)
    b = np.floor((hi - 1e-9) / size).astype(np.int64)
    return [
        (i, j, k)
        for i in range(a[0], b[0] + 1)
        for j in range(a[1], b[1] + 1)
        for k in range(a[2], b[2] + 1)
    ]


def _in_box(centers: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.all((centers >= lo) & (centers < hi), axis=1)


def draw_spheroids(vp: VoxelParams, seed: int, lo: np.ndarray, hi: np.ndarray) -> Spheroids:
    """Germs and marks of Xi1 whose centres lie in the box [lo, hi) (voxel coordinates)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    size = cell_size(vp.lambda_x)
    mean = vp.lambda_x * size**3
    cap = graphite_extent_cap(vp)
    scale = 1.0 / vp.gamma
    parts: list[tuple[np.ndarray, ...]] = []
    for cell in _cells(lo, hi, size):
        rng = cell_generator(seed, GRAPHITE, cell)
        n = int(rng.poisson(mean))
        if n == 0:
            continue
        centers = (rng.random((n, 3)) + np.asarray(cell, float)) * size
        a = rng.gamma(vp.shape1, scale, n)
        c = rng.gamma(vp.shape2, scale, n)
        u = rng.standard_normal((n, 3))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        parts.append((centers, u, np.minimum(a, cap), np.minimum(c, cap)))
    if not parts:
        e = np.empty((0, 3))
        return Spheroids(e, e.copy(), np.empty(0), np.empty(0))
    s = Spheroids(*(np.concatenate(p) for p in zip(*parts, strict=True)))
    return s.select(_in_box(s.centers, lo, hi))


def draw_balls(vp: VoxelParams, seed: int, lo: np.ndarray, hi: np.ndarray) -> Balls:
    """Germs and radii of Xi3 whose centres lie in the box [lo, hi) (voxel coordinates)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    if vp.lambda_y == 0:
        return Balls(np.empty((0, 3)), np.empty(0))
    size = cell_size(vp.lambda_y)
    mean = vp.lambda_y * size**3
    cap = pore_extent_cap(vp)
    scale = 1.0 / vp.theta
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for cell in _cells(lo, hi, size):
        rng = cell_generator(seed, LARGE_PORES, cell)
        n = int(rng.poisson(mean))
        if n == 0:
            continue
        centers = (rng.random((n, 3)) + np.asarray(cell, float)) * size
        parts.append((centers, np.minimum(rng.exponential(scale, n), cap)))
    if not parts:
        return Balls(np.empty((0, 3)), np.empty(0))
    b = Balls(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return b.select(_in_box(b.centers, lo, hi))


def _touching(grains: Spheroids | Balls, origin: np.ndarray, shape: np.ndarray):
    """Keep the grains whose bounding box meets the voxel centres of the window."""
    if len(grains) == 0:
        return grains
    ext = grains.extents()
    lo = grains.centers - ext
    hi = grains.centers + ext
    keep = np.all((hi >= origin - 1e-6) & (lo <= origin + shape - 1 + 1e-6), axis=1)
    return grains.select(keep)


def window_spheroids(
    vp: VoxelParams, seed: int, origin: tuple[int, ...], shape: tuple[int, ...]
) -> Spheroids:
    """The grains of Xi1 that reach into the window (germs from the window dilated by the
    extent cap)."""
    o, s = np.asarray(origin, float), np.asarray(shape, float)
    cap = graphite_extent_cap(vp) + 1.0
    return _touching(draw_spheroids(vp, seed, o - cap, o + s + cap), o, s)


def window_balls(
    vp: VoxelParams, seed: int, origin: tuple[int, ...], shape: tuple[int, ...]
) -> Balls:
    """The grains of Xi3 that reach into the window."""
    o, s = np.asarray(origin, float), np.asarray(shape, float)
    cap = pore_extent_cap(vp) + 1.0
    return _touching(draw_balls(vp, seed, o - cap, o + s + cap), o, s)
