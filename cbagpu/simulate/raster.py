"""Rasterisation of the grains of Xi1 (spheroids) and Xi3 (open balls) into a label window.

Voxel ``(z, y, x)`` of the window belongs to a grain when its centre does (NOTES §1: voxel
i has its centre at coordinate i). The work is split into *rows* (lines of voxels along x):
for each grain and each row of its bounding box, the span of voxel centres inside the grain
is found from the roots of the grain's quadratic along the row, then both ends are corrected
with the exact float64 point-in-grain test. The result equals a brute-force float64 test of
every voxel centre::

    spheroid: du = d.u, d2 = |d|^2, (du^2) / r^2 + (d2 - du^2) / R^2 <= 1   (closed)
    ball:     |d|^2 < R^2                                                   (open, Eq. 3)

with d = voxel centre - germ, computed in GLOBAL voxel coordinates (the integer index is
converted exactly to float64 and the germ's global centre subtracted), so a voxel gets the
same answer whichever window paints it. ``kernels/raster.cu`` does the same on the GPU
with one thread per row; this module's NumPy twin evaluates the same float64 expressions in
the same order (the kernels are compiled without FMA contraction), so both backends paint
identical voxels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cbagpu.backend.base import Backend
from cbagpu.backend.kernels import launch_blocks
from cbagpu.simulate.germs import Balls, Spheroids

_ROWS_PER_CHUNK = 1 << 20
_VOXELS_PER_CHUNK = 1 << 24


def grain_rows(
    centers: np.ndarray, extents: np.ndarray, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the window that each grain's bounding box covers.

    ``centers`` are window-local. Returns ``(keep, rows, row_offset)``: the grains with at
    least one row, ``rows`` (n, 3) int64 = first z, first y, number of y rows, and
    ``row_offset`` (n + 1,) the cumulative row counts.
    """
    nz, ny, _ = shape
    lo = np.ceil(centers - extents - 1e-6)
    hi = np.floor(centers + extents + 1e-6)
    z0 = np.maximum(lo[:, 0], 0).astype(np.int64)
    z1 = np.minimum(hi[:, 0], nz - 1).astype(np.int64)
    y0 = np.maximum(lo[:, 1], 0).astype(np.int64)
    y1 = np.minimum(hi[:, 1], ny - 1).astype(np.int64)
    nzr = z1 - z0 + 1
    nyr = y1 - y0 + 1
    keep = (nzr > 0) & (nyr > 0) & (hi[:, 2] >= 0) & (lo[:, 2] <= shape[2] - 1)
    rows = np.stack([z0[keep], y0[keep], nyr[keep]], axis=1)
    count = nzr[keep] * nyr[keep]
    offset = np.zeros(len(count) + 1, np.int64)
    np.cumsum(count, out=offset[1:])
    return keep, rows, offset


def spheroid_table(s: Spheroids) -> np.ndarray:
    """(n, 8) float64: cz cy cx uz uy ux 1/r^2 1/R^2 (global centres)."""
    r, R = s.r, s.R
    return np.column_stack([s.centers, s.axes, 1.0 / (r * r), 1.0 / (R * R)])


def ball_table(b: Balls) -> np.ndarray:
    """(n, 4) float64: cz cy cx R^2 (global centres)."""
    return np.column_stack([b.centers, b.radii * b.radii])


# ----------------------------------------------------------------------------- NumPy twin
def _in_spheroid(x, dz, dy, q):
    dx = x - q[:, 2]
    du = dz * q[:, 3] + dy * q[:, 4] + dx * q[:, 5]
    d2 = dz * dz + dy * dy + dx * dx
    return du * du * q[:, 6] + (d2 - du * du) * q[:, 7] <= 1.0


def _in_ball(x, b0, q):
    dx = x - q[:, 2]
    return b0 + dx * dx < q[:, 3]


def _adjust(lo, hi, inside):
    for _ in range(2):
        down = inside(lo - 1.0)
        lo = np.where(down, lo - 1.0, np.where(inside(lo), lo, lo + 1.0))
    for _ in range(2):
        up = inside(hi + 1.0)
        hi = np.where(up, hi + 1.0, np.where(inside(hi), hi, hi - 1.0))
    return lo, hi


def _spans_spheroid(q, zi, yi):
    dz = zi - q[:, 0]
    dy = yi - q[:, 1]
    uz, uy, ux, ir2, iR2 = q[:, 3], q[:, 4], q[:, 5], q[:, 6], q[:, 7]
    a0 = dz * uz + dy * uy
    b0 = dz * dz + dy * dy
    p = ir2 - iR2
    A = p * ux * ux + iR2
    B = 2.0 * p * a0 * ux
    C = p * a0 * a0 + iR2 * b0 - 1.0
    disc = B * B - 4.0 * A * C
    sq = np.sqrt(np.maximum(disc, 0.0))
    neg = disc < 0.0
    t0 = np.where(neg, -B / (2.0 * A), (-B - sq) / (2.0 * A))
    t1 = np.where(neg, t0, (-B + sq) / (2.0 * A))
    lo = np.ceil(q[:, 2] + t0)
    hi = np.floor(q[:, 2] + t1)
    return _adjust(lo, hi, lambda x: _in_spheroid(x, dz, dy, q))


def _spans_ball(q, zi, yi):
    dz = zi - q[:, 0]
    dy = yi - q[:, 1]
    b0 = dz * dz + dy * dy
    rem = q[:, 3] - b0
    sq = np.sqrt(np.maximum(rem, 0.0))
    t0 = np.where(rem > 0.0, -sq, 0.0)
    t1 = np.where(rem > 0.0, sq, 0.0)
    lo = np.ceil(q[:, 2] + t0)
    hi = np.floor(q[:, 2] + t1)
    return _adjust(lo, hi, lambda x: _in_ball(x, b0, q))


def _fill_spans(flat: np.ndarray, start: np.ndarray, length: np.ndarray, value: int) -> None:
    """flat[start_i : start_i + length_i] = value for every span (vectorised)."""
    if len(length) == 0:
        return
    ends = np.cumsum(length)
    cut = 0
    while cut < len(length):
        base = ends[cut - 1] if cut else 0
        stop = int(np.searchsorted(ends, base + _VOXELS_PER_CHUNK, side="right"))
        stop = max(stop, cut + 1)
        ln = length[cut:stop]
        total = int(ln.sum())
        first = np.cumsum(ln) - ln
        idx = np.repeat(start[cut:stop] - first, ln) + np.arange(total, dtype=np.int64)
        flat[idx] = value
        cut = stop


def paint_rows_numpy(
    labels: np.ndarray,
    origin: tuple[int, int, int],
    table: np.ndarray,
    rows: np.ndarray,
    offset: np.ndarray,
    value: int,
    kind: str,
) -> None:
    """NumPy twin of ``paint_spheroid_rows`` / ``paint_ball_rows`` (``kind`` 'spheroid'
    or 'ball'); ``rows`` are window-local, ``table`` and ``origin`` global."""
    oz, oy, ox = (int(v) for v in origin)
    nz, ny, nx = labels.shape
    flat = labels.reshape(-1)
    spans = _spans_spheroid if kind == "spheroid" else _spans_ball
    n = len(rows)
    g0 = 0
    while g0 < n:
        g1 = int(np.searchsorted(offset, offset[g0] + _ROWS_PER_CHUNK, side="right")) - 1
        g1 = min(max(g1, g0 + 1), n)
        counts = np.diff(offset[g0 : g1 + 1])
        g = np.repeat(np.arange(g0, g1), counts)
        r = np.arange(offset[g0], offset[g1], dtype=np.int64) - offset[g]
        nyr = rows[g, 2]
        zi = rows[g, 0] + r // nyr
        yi = rows[g, 1] + r % nyr
        lo, hi = spans(table[g], (zi + oz).astype(np.float64), (yi + oy).astype(np.float64))
        lo = np.maximum(lo.astype(np.int64) - ox, 0)
        hi = np.minimum(hi.astype(np.int64) - ox, nx - 1)
        ok = hi >= lo
        start = (zi[ok] * ny + yi[ok]) * nx + lo[ok]
        _fill_spans(flat, start, (hi - lo + 1)[ok], value)
        g0 = g1


# ------------------------------------------------------------------------------ dispatch
def paint_grains(
    backend: Backend,
    labels: Any,
    grains: Spheroids | Balls,
    origin: tuple[int, int, int],
    value: int,
) -> None:
    """Write ``value`` into every voxel of ``labels`` (a window at ``origin``) whose centre
    lies in one of ``grains``."""
    if len(grains) == 0:
        return
    o = np.asarray(origin, np.float64)
    kind = "spheroid" if isinstance(grains, Spheroids) else "ball"
    table = spheroid_table(grains) if kind == "spheroid" else ball_table(grains)
    keep, rows, offset = grain_rows(grains.centers - o, grains.extents(), labels.shape)
    table = np.ascontiguousarray(table[keep])
    if len(rows) == 0:
        return
    if not backend.runs_kernels:
        paint_rows_numpy(labels, origin, table, rows, offset, value, kind)
        return
    nrows = int(offset[-1])
    threads = 128
    blocks = launch_blocks(nrows, threads)
    fn = backend.kernel("raster.cu", f"paint_{kind}_rows")
    fn(
        (blocks,),
        (threads,),
        paint_kernel_args(labels, origin, table, rows, offset, value, backend.xp.asarray),
    )


def paint_kernel_args(
    labels: Any,
    origin: tuple[int, int, int],
    table: np.ndarray,
    rows: np.ndarray,
    offset: np.ndarray,
    value: int,
    asarray: Any = np.asarray,
) -> tuple[Any, ...]:
    """Arguments of ``paint_spheroid_rows`` / ``paint_ball_rows`` (``kernels/raster.cu``);
    ``asarray`` moves the host tables to the labels' device."""
    nz, ny, nx = labels.shape
    return (
        labels,
        np.int32(nz),
        np.int32(ny),
        np.int32(nx),
        np.int64(origin[0]),
        np.int64(origin[1]),
        np.int64(origin[2]),
        asarray(np.ascontiguousarray(table, dtype=np.float64)),
        asarray(np.ascontiguousarray(rows, dtype=np.int64)),
        asarray(np.ascontiguousarray(offset, dtype=np.int64)),
        np.int32(len(rows)),
        np.int64(offset[-1]),
        np.uint8(value),
    )
