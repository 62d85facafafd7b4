"""Descriptors of a label volume larger than memory, block by block (issue 16): the same
numbers as :func:`cbagpu.measure.describe.describe` of the whole volume, computed from a
chunked Zarr store (``cbagpu generate --chunks``) or any array Dask can wrap, one block
(plus a halo) at a time, on Dask.

Blocks are the store's chunks grouped up to :data:`DEFAULT_BLOCK` voxels per axis (or
``block=``), each one task of :func:`cbagpu.studies.tasks.run_tasks` (in this process, on
a local Dask cluster, or on a running scheduler) that reads its block plus a halo straight
from the store and returns a few numbers. Not ``dask.array.map_overlap``: the halos (up to
twice the largest inscribed radius) may span several chunks, and each block reduces to
histograms, not to an array.

What is exact and how:

* **Volume fraction, S_V, M_V, chi_V** (paper Eqs. 6-9): additive. Each block counts the
  2x2x2 configurations of the cells whose first vertex lies in it (the block read with one
  extra voxel on its high sides: blocks overlap by one voxel), so every cell of the
  ``(n-1)^3`` lattice is counted exactly once; the 256-bin histograms are summed and the
  densities are :func:`~cbagpu.measure.minkowski.densities_from_histogram` of the sum,
  the same edge-corrected window as in memory. Integer counts: equal to the in-memory
  values bit for bit.
* **Two-point coverage C(h)**, lags 0..L voxels (Eq. 20): the numerator of the unbiased
  estimator is a sum over voxel pairs (x, x+h) both in the phase; each block sums the pairs
  whose first voxel x lies in it, with a halo of L (zero outside the volume: pairs leaving
  the window do not count), by one zero-padded FFT cross-correlation of the block with its
  halo box. The per-lag counts (integers, rounded) are binned as in
  :mod:`cbagpu.measure.covariance` and summed; the denominators are the closed-form pair
  counts. Equal to the in-memory estimate (the same integers divided by the same integers).
  Default L: ``min(min(shape) // 2, 32)`` voxels (the in-memory default is min(shape) // 2,
  which would make every halo half the volume); give ``max_lag`` to choose.
* **CPSD and r_max** (Eq. 26): first the exact largest squared EDT of the phase, block by
  block: a block's EDT at x is exact whenever it does not exceed the distance from x to
  the cut faces of its halo box, otherwise the block is recomputed with twice the halo.
  With D_b the largest EDT of the blocks within the global largest EDT D of a block, every
  ball centre that can cover a voxel of the block lies within D_b of it and its EDT is
  exact with a halo of D_b more: each block is read with a halo of ``2 floor(D_b) + 4``,
  its level map clipped at ceil(D_b) (the rim's inexact EDT then makes no ball that
  reaches the block), and
  :func:`~cbagpu.measure.cpsd.cover_index` (the exact ball cover of the in-memory CPSD) is
  counted on the block. Equal counts, equal CPSD on every radius, equal r_max.
* **Intrusion, r_min, constrictivity, geodesic tortuosity** (global: a path may cross the
  whole volume) are NOT propagated across blocks here: they are computed in memory on
  non-overlapping windows of ``window`` voxels per axis tiling the volume, and reported as
  the mean over the windows with their standard deviation, under ``"global_descriptors"``
  with ``"method": "windows of about NxNxN voxels ..."``. When one window covers the volume (the
  default for volumes up to 128 per axis) they are the in-memory values and the method says
  ``"whole volume"``.

Memory: one task holds its block with the halo (uint8 labels plus a few bytes per voxel
of the EDT, the ball cover and, for C(h), the padded FFT), whatever the volume: about
``workers x (block + 2 halo)^3 x ~40 bytes``. Tasks read their boxes straight from the
store, so nothing else of the volume is ever held.

References
----------
Gräfensteiner et al., Eqs. 6-9, 20, 26 and Section 3.3; Ohser & Schladitz (2009),
ch. 4-6 (additivity of the configuration counts, the covariance estimator).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft

from cbagpu.backend import Backend, get_backend
from cbagpu.errors import InvalidInputError
from cbagpu.measure.cpsd import _curve_from_counts, cover_index, crossing, radius_grid
from cbagpu.measure.describe import (
    DEFAULT_PHASES,
    Description,
    PhaseDescription,
    check_options,
)
from cbagpu.measure.geodesic import geodesic_tortuosity
from cbagpu.measure.intrusion import constrictivity
from cbagpu.measure.minkowski import configuration_histogram, densities_from_histogram
from cbagpu.measure.phases import phase_mask
from cbagpu.validation import check_voxel_size

__all__ = ["ChunkedDescription", "describe_chunked", "open_label_store", "DEFAULT_BLOCK",
           "DEFAULT_MAX_LAG", "DEFAULT_WINDOW"]

#: Default largest lag (voxels) of C(h) on the chunked path (capped by min(shape) // 2).
DEFAULT_MAX_LAG = 32
#: Default task block edge (voxels): a store's chunks are grouped up to it, since the
#: CPSD's halo (twice the largest inscribed radius: 64 voxels for the paper's graphite at
#: 20 nm) would make smaller blocks mostly halo. Memory per task grows with its cube.
DEFAULT_BLOCK = 256
#: Default window edge (voxels) of the windowed global descriptors.
DEFAULT_WINDOW = 128
#: First halo (voxels) of the EDT-maximum pass (doubled for the blocks that need more).
_FIRST_EDT_HALO = 8
#: A task box more than this many times its block's volume draws a warning.
_HALO_WARN_RATIO = 8.0

Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


# ------------------------------------------------------------------------------ sources
_OPEN: dict[str, Any] = {}


def _open_store_array(path: str) -> Any:
    """The Zarr array at ``path`` (cached per process: tasks of one worker reuse it)."""
    arr = _OPEN.get(path)
    if arr is None:
        from cbagpu.io.zarr_store import zarr_module

        arr = zarr_module().open_array(store=path, mode="r")
        if len(_OPEN) > 8:
            _OPEN.clear()
        _OPEN[path] = arr
    return arr


@dataclass(frozen=True)
class _Reader:
    """Reads one box of the volume as a host uint8 array: from a store path (picklable, the
    tasks open the store themselves) or from an array object (NumPy, Zarr, Dask: read
    with Dask's synchronous scheduler)."""

    path: str | None = None
    array: Any = None

    def read(self, box: Box) -> np.ndarray:
        sl = tuple(slice(a, b) for a, b in box)
        src = _open_store_array(self.path) if self.path is not None else self.array
        part = src[sl]
        if hasattr(part, "compute"):
            part = part.compute(scheduler="synchronous")
        part = np.asarray(part)
        if part.dtype.kind not in "iu":
            raise InvalidInputError(f"labels must be integers 0, 1, 2, got dtype {part.dtype}")
        if part.size:
            lo, hi = int(part.min()), int(part.max())
            if lo < 0 or hi > 2:
                raise InvalidInputError(
                    f"labels must be 0 (pore), 1 (CBD), 2 (graphite); found values in "
                    f"[{lo}, {hi}] in the box {[list(b) for b in box]}")
        return part.astype(np.uint8, copy=False)


def open_label_store(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """The Zarr label array at ``path`` (level 0 of an OME-Zarr store; opened lazily,
    nothing read) and its attributes.

    Raises :class:`~cbagpu.errors.InvalidInputError` for a path that is no Zarr array, a
    store still marked ``incomplete`` by a block-wise generation, or a non-integer dtype.
    """
    arr, attrs, _ = _open_store(path)
    return arr, attrs


def _open_store(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any], Path]:
    import json

    from cbagpu.io.zarr_array import refuse_incomplete
    from cbagpu.io.zarr_store import zarr_module

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such store: {str(p)!r}")
    zarr = zarr_module()
    try:
        arr = zarr.open_array(store=str(p), mode="r")
        attrs = json.loads(json.dumps(dict(arr.attrs)))
        apath = p
    except Exception:  # noqa: BLE001 - maybe an OME-Zarr store: its level 0
        try:
            group = zarr.open_group(store=str(p), mode="r")
            arr = zarr.open_array(store=str(p / "0"), mode="r")
            attrs = {**json.loads(json.dumps(dict(group.attrs))),
                     **json.loads(json.dumps(dict(arr.attrs)))}
            apath = p / "0"
        except Exception as exc:  # noqa: BLE001 - any failure means "not a Zarr array"
            raise InvalidInputError(f"{str(p)!r} is not a Zarr label store ({exc})") from None
    refuse_incomplete(p, attrs)
    _check_dtype(np.dtype(arr.dtype), len(arr.shape))
    return arr, attrs, apath


def _check_dtype(dtype: np.dtype, ndim: int) -> None:
    if ndim != 3:
        raise InvalidInputError(f"labels must be a 3-D array (z, y, x), got {ndim} dimensions")
    if dtype == np.bool_ or dtype.kind not in "iu":
        raise InvalidInputError(
            f"labels must be integers 0 (pore), 1 (CBD), 2 (graphite), got dtype {dtype}")


def _edges(n: int, step: int) -> list[int]:
    return list(range(0, n, step)) + [n]


def _block_edges(shape: tuple[int, ...], chunks: Any, block: Any) -> list[list[int]]:
    """Per axis, the block boundaries: ``block`` (an edge or 3 edges) when given, else the
    source's chunks grouped by the smallest multiple of the chunk edge reaching
    :data:`DEFAULT_BLOCK` (Dask-style irregular chunks are kept as they are), else one
    block."""
    if block is not None:
        b = (block,) * 3 if np.isscalar(block) else tuple(block)
        if len(b) != 3 or any(isinstance(v, bool) or int(v) != v or int(v) < 1 for v in b):
            raise InvalidInputError(f"block must be an edge >= 1 or three of them, got {block!r}")
        return [_edges(n, int(v)) for n, v in zip(shape, b, strict=True)]
    if chunks is None:
        return [[0, n] for n in shape]
    if all(isinstance(c, tuple) for c in chunks):  # Dask: sizes per axis
        return [list(np.concatenate([[0], np.cumsum(c)]).astype(int)) for c in chunks]
    return [_edges(n, int(c) * max(1, -(-DEFAULT_BLOCK // int(c))))
            for n, c in zip(shape, chunks, strict=True)]


def _blocks(edges: list[list[int]]) -> list[Box]:
    out = []
    for z in range(len(edges[0]) - 1):
        for y in range(len(edges[1]) - 1):
            for x in range(len(edges[2]) - 1):
                out.append(((edges[0][z], edges[0][z + 1]), (edges[1][y], edges[1][y + 1]),
                            (edges[2][x], edges[2][x + 1])))
    return out


def _grow(core: Box, shape: tuple[int, ...], lo: Sequence[int], hi: Sequence[int]) -> Box:
    return tuple((max(a - lo[i], 0), min(b + hi[i], shape[i]))  # type: ignore[return-value]
                 for i, (a, b) in enumerate(core))


def _inner(box: Box, sub: Box) -> tuple[slice, ...]:
    """Slices of ``sub`` (absolute) inside the array read as ``box``."""
    return tuple(slice(s[0] - b[0], s[1] - b[0]) for b, s in zip(box, sub, strict=True))


# ------------------------------------------------------------------------------ per block
def _cell_histogram(be: Backend, mask: Any) -> list[int]:
    if min(mask.shape) < 2:
        return [0] * 256
    return [int(v) for v in configuration_histogram(mask, be)]


def _lag_bins(L: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: N803
    """Radial bins, weights (2 for h_z > 0) and |h| of the lags h_z in [0, L],
    h_y, h_x in [-L, L], as :mod:`cbagpu.measure.covariance` bins them."""
    lags = np.arange(-L, L + 1)
    hz = np.arange(L + 1)
    r2 = hz[:, None, None] ** 2 + lags[None, :, None] ** 2 + lags[None, None, :] ** 2
    dist = np.sqrt(r2.astype(np.float64))
    bins = np.minimum(np.floor(dist + 0.5).astype(np.int64), L + 1)
    w = np.where(hz > 0, 2.0, 1.0)[:, None, None] * np.ones_like(dist)
    return bins, w, dist


def _pair_counts(be: Backend, m_box: Any, core: tuple[slice, ...], L: int  # noqa: N803
                 ) -> list[float]:
    """Pairs (x, x+h) in the phase with x in ``core``, summed per radial bin.

    ``m_box`` holds the phase on the core grown by L on every side (clipped at the volume:
    nothing beyond it is in the window). Cross-correlation by FFT, each axis zero-padded by
    L so that no lag wraps; counts rounded to integers (single precision while the core has
    fewer than 2^21 phase voxels, as in :mod:`cbagpu.measure.covariance`, else double).
    """
    xp = be.xp
    fft, kw = be.fft, dict(be.fft_options)
    n_core = int(xp.count_nonzero(m_box[core]))
    real_t = np.float32 if n_core < (1 << 21) else np.float64
    shape = m_box.shape
    size = [scipy.fft.next_fast_len(s + L, real=True) for s in shape]
    a = xp.zeros(shape, dtype=real_t)
    a[core] = m_box[core]
    spec = fft.rfftn(a, s=size, axes=(0, 1, 2), **kw)
    del a
    spec = xp.conj(spec)
    spec *= fft.rfftn(m_box.astype(real_t), s=size, axes=(0, 1, 2), **kw)
    corr = fft.irfftn(spec, s=size, axes=(0, 1, 2), **kw)
    del spec
    lags = np.arange(-L, L + 1)
    iy = xp.asarray(lags % size[1])
    ix = xp.asarray(lags % size[2])
    c = xp.rint(corr[: L + 1][:, iy[:, None], ix[None, :]]).astype(np.float64)
    del corr
    bins, w, _ = _lag_bins(L)
    num = xp.bincount(xp.asarray(bins).ravel(), weights=(c * xp.asarray(w)).ravel(),
                      minlength=L + 2)
    return be.to_host(num)[: L + 1].tolist()


def _edt_r2_max(be: Backend, mask: Any, core: tuple[slice, ...], limit: float) -> int | None:
    """Largest squared EDT over ``core`` of the phase read with its halo, or None when it
    cannot be trusted: a value above ``limit`` (the distance to a cut face of the box) or
    no non-phase voxel in the box. 0 for a core without phase voxels."""
    xp = be.xp
    if not bool(xp.any(mask[core])):
        return 0
    if bool(xp.all(mask)):
        return None
    d = be.distance_transform_edt(mask)[core]
    dmax = float(xp.max(d))
    del d
    if dmax > limit:
        return None
    return int(round(dmax * dmax))


def _cut_limit(box: Box, core: Box, shape: tuple[int, ...]) -> float:
    """Smallest halo on a side where the box is cut inside the volume (inf: none is)."""
    lim = math.inf
    for (b0, b1), (c0, c1), n in zip(box, core, shape, strict=True):
        if b0 > 0:
            lim = min(lim, c0 - b0)
        if b1 < n:
            lim = min(lim, b1 - c1)
    return lim


def _task_block(reader: _Reader, core: Box, shape: tuple[int, ...], phases: list[str],
                max_lag: int, edt_halo: int, backend: str, edt_only: bool = False
                ) -> dict[str, Any]:
    """Pass 1 of one block: per phase the cell histogram, the phase voxels, the pair counts
    of C(h) and the largest squared EDT (None when the halo was too thin)."""
    be = get_backend(backend)
    xp = be.xp
    h = edt_halo if edt_only else max(max_lag, edt_halo, 1)
    box = _grow(core, shape, (h,) * 3, (h,) * 3)
    lab = be.asarray(reader.read(box))
    core_sl = _inner(box, core)
    edt_box = _grow(core, shape, (edt_halo,) * 3, (edt_halo,) * 3)
    edt_sl = _inner(box, edt_box)
    edt_core = _inner(edt_box, core)
    limit = _cut_limit(edt_box, core, shape)
    out: dict[str, Any] = {}
    for p in phases:
        m = phase_mask(lab, p)
        r: dict[str, Any] = {"r2": _edt_r2_max(be, m[edt_sl], edt_core, limit)}
        if not edt_only:
            cell = _inner(box, _grow(core, shape, (0,) * 3, (1,) * 3))
            r["hist"] = _cell_histogram(be, m[cell])
            r["n"] = int(xp.count_nonzero(m[core_sl]))
            cov_sl = _inner(box, _grow(core, shape, (0, max_lag, max_lag), (max_lag,) * 3))
            cov_core = _inner(_grow(core, shape, (0, max_lag, max_lag), (max_lag,) * 3), core)
            r["num"] = _pair_counts(be, m[cov_sl], cov_core, max_lag)
        out[p] = r
    return out


def _task_cover(reader: _Reader, core: Box, shape: tuple[int, ...], phase: str, r2max: int,
                r2local: int, backend: str) -> dict[str, Any]:
    """Pass 2 of one block and phase: the histogram of the exact ball-cover index over the
    block's phase voxels (integer radius grid up to the global largest EDT, ``r2max``).

    ``r2local`` bounds the squared EDT within reach of the block (the blocks within the
    global largest EDT D of it): every ball centre covering one of its voxels lies within
    D_b = sqrt(r2local) of it and has EDT <= D_b, which is exact with a halo of D_b more.
    The level map is clipped at ceil(D_b), so that the inexact EDT of the halo's rim
    makes no ball that reaches the block.
    """
    be = get_backend(backend)
    xp = be.xp
    grid = radius_grid(r2max)
    fmax = len(radius_grid(r2local)) - 1  # ceil(D_b): F = ceil(EDT) <= it within reach
    h = _cover_halo(r2local)
    box = _grow(core, shape, (h,) * 3, (h,) * 3)
    m = phase_mask(be.asarray(reader.read(box)), phase)
    core_sl = _inner(box, core)
    n_levels = len(grid)
    if not bool(xp.any(m[core_sl])):
        return {"counts": [0] * (n_levels + 1)}
    mg = np.floor(grid**2 + 1e-9).astype(np.int64)
    dtype = np.uint8 if n_levels < 255 else np.uint16
    if bool(xp.all(m)):
        F = xp.full(m.shape, fmax, dtype=dtype)  # noqa: N806 - deep inside the phase
    else:
        d = be.distance_transform_edt(m)
        F = xp.minimum(xp.ceil(d), fmax).astype(dtype)  # noqa: N806
        del d
    C = cover_index(be, F, mg)  # noqa: N806
    del F
    counts = xp.bincount(C[core_sl][m[core_sl]], minlength=n_levels + 1)
    return {"counts": [int(v) for v in be.to_host(counts)]}


def _cover_halo(r2: int) -> int:
    """Halo of the ball cover for a largest squared EDT ``r2``: 2 floor(D) + 4 >= 2 D + 2
    (module docstring)."""
    return 2 * math.isqrt(max(int(r2), 0)) + 4


def _local_r2(blocks: list[Box], r2: list[int], r2max: int) -> list[int]:
    """Per block, the largest squared EDT of the blocks within the global largest EDT of it
    (the block grown by ceil(D) on every side)."""
    reach = math.isqrt(r2max) + 1
    lo = np.array([[a for a, _ in b] for b in blocks])
    hi = np.array([[e for _, e in b] for b in blocks])
    vals = np.asarray(r2, np.int64)
    out = []
    for i in range(len(blocks)):
        near = np.all((lo < hi[i] + reach) & (hi > lo[i] - reach), axis=1)
        out.append(int(vals[near].max()))
    return out


def _finite_or_none(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _task_window(reader: _Reader, box: Box, phases: list[str], voxel_size: float, axis: int,
                 backend: str, intrusion_method: str, geodesic_method: str
                 ) -> dict[str, Any]:
    """Intrusion, r_min, constrictivity and geodesic tortuosity of one window, in memory."""
    be = get_backend(backend)
    lab = be.asarray(reader.read(box))
    out: dict[str, Any] = {}
    for p in phases:
        m = phase_mask(lab, p)
        con = constrictivity(m, voxel_size, axis=axis, backend=be, method=intrusion_method)
        geo = geodesic_tortuosity(m, voxel_size, axis=axis, backend=be, method=geodesic_method)
        out[p] = {"r_min": _finite_or_none(con.r_min), "r_max": _finite_or_none(con.r_max),
                  "beta": _finite_or_none(con.beta),
                  "intrusion": [_finite_or_none(v) for v in np.asarray(con.intrusion.value)],
                  "tau": _finite_or_none(geo.tau),
                  "fraction_connected": float(geo.fraction_connected)}
    return out


# ------------------------------------------------------------------------------ driver
@dataclass(frozen=True)
class ChunkedDescription(Description):
    """A :class:`~cbagpu.measure.describe.Description` computed block by block, with the
    chunking (blocks, halos, passes) and, per phase, how its global descriptors were
    estimated (``global_descriptors``: method, windows, mean and spread)."""

    chunking: dict[str, Any] = field(default_factory=dict)
    global_descriptors: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for p, g in self.global_descriptors.items():
            out[p]["global_descriptors"] = g
        out["meta"]["chunking"] = self.chunking
        return out


def _run(tasks: list[Any], stage: str, *, workers: int | None, scheduler: str | None,
         progress: Callable[[str, int, int], None] | None) -> dict[str, dict]:
    from cbagpu.studies.tasks import run_tasks

    cb = None
    if progress is not None:
        def cb(done: int, total: int, _left: float | None) -> None:
            progress(stage, done, total)
    return run_tasks(tasks, None, scheduler=scheduler, workers=workers, progress=cb)


def _start_cluster(tasks: list[Any], workers: int | None, scheduler: str | None,
                   on_host: bool) -> Any:
    """A local Dask cluster for all the passes (as :func:`cbagpu.studies.tasks.run_tasks`
    would start one per pass), or None: ``workers=1``, a running scheduler, or tasks on
    the GPU (run_tasks then picks dask-cuda itself)."""
    if workers == 1 or scheduler is not None or not on_host:
        return None
    import logging

    from distributed import LocalCluster

    from cbagpu.studies.tasks import local_cluster

    return local_cluster(tasks, workers, logging.ERROR, LocalCluster)


def _window_edges(shape: tuple[int, ...], window: Any) -> list[list[int]]:
    """Per axis, floor(n / w) windows of nearly equal size tiling the axis (at least one)."""
    w = (window,) * 3 if np.isscalar(window) else tuple(window)
    if len(w) != 3 or any(isinstance(v, bool) or int(v) != v or int(v) < 2 for v in w):
        raise InvalidInputError(f"window must be an edge >= 2 or three of them, got {window!r}")
    out = []
    for n, v in zip(shape, w, strict=True):
        k = max(1, n // int(v))
        out.append([round(i * n / k) for i in range(k + 1)])
    return out


def _stats(values: list[float | None]) -> dict[str, Any]:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "n": int(v.size)}


def describe_chunked(
    source: Any,
    voxel_size: float | None = None,
    *,
    phases: Sequence[str] = DEFAULT_PHASES,
    axis: int | str = 0,
    backend: str | Backend = "auto",
    max_lag: float | None = None,
    block: int | Sequence[int] | None = None,
    window: int | Sequence[int] = DEFAULT_WINDOW,
    connectivity: int = 26,
    euler: str = "direct",
    intrusion_method: str = "auto",
    geodesic_method: str = "auto",
    workers: int | None = 1,
    scheduler: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ChunkedDescription:
    """Every descriptor of :func:`~cbagpu.measure.describe.describe`, block by block.

    Parameters
    ----------
    source : path of a Zarr label store (``cbagpu generate --chunks``), or an array (Dask,
        Zarr, NumPy) of labels 0 (pore), 1 (CBD), 2 (graphite), axes (z, y, x).
    voxel_size : float, optional
        Voxel edge (nm); default: the store's ``voxel_size`` attribute.
    phases, axis, connectivity, euler, intrusion_method, geodesic_method :
        As for :func:`~cbagpu.measure.describe.describe`; ``euler`` must be ``"direct"``
        (the guarded closing of ``"closing"`` looks at whole groups of voxels, which may
        cross blocks: it runs in memory only).
    backend : "auto" | "numpy" | "cupy"
        The backend each task uses (a name, sent to the workers).
    max_lag : float, optional
        Largest lag (nm) of C(h); default ``min(min(shape) // 2, 32)`` voxels.
    block : int or 3 ints, optional
        Block shape of the tasks; default the source's chunks (a store's, a Dask array's)
        grouped up to :data:`DEFAULT_BLOCK` voxels per axis (a NumPy array is one block).
    window : int or 3 ints
        Window edge (voxels) of the windowed global descriptors (intrusion, r_min,
        constrictivity, geodesic tortuosity); ``floor(n / window)`` windows per axis, at
        least one. One window per axis gives the exact in-memory values.
    workers, scheduler :
        As for :func:`cbagpu.studies.tasks.run_tasks` (default ``workers=1``: this
        process, no Dask). Arrays that are not Dask arrays always run in this process.
    progress : callable, optional
        ``progress(stage, done, total)`` after every task of each pass.

    Returns
    -------
    ChunkedDescription
        A :class:`~cbagpu.measure.describe.Description` (the same JSON as ``describe``)
        plus ``meta.chunking`` and, per phase, ``global_descriptors`` (module docstring).

    Warns
    -----
    UserWarning
        When the halo of a pass makes its task boxes more than 8x the block volume (blocks
        too small for the halo; give ``block=`` a larger edge).
    """
    # ---- checks, before any work
    ax, conn = check_options(axis, phases, connectivity, intrusion_method, geodesic_method,
                             euler)
    if euler != "direct":
        raise InvalidInputError(f"describe_chunked computes chi_V with euler='direct' only; "
                                f"euler={euler!r} runs in memory (describe, or cbagpu "
                                "describe without --chunked)")
    phases = list(phases)
    be = get_backend(backend)
    attrs: dict[str, Any] = {}
    if isinstance(source, (str, os.PathLike)):
        arr, attrs, apath = _open_store(source)
        reader = _Reader(path=str(apath.resolve()))
        chunks: Any = tuple(arr.chunks)
        shape = tuple(int(n) for n in arr.shape)
        kind = "zarr store"
    else:
        if not hasattr(source, "shape") or not hasattr(source, "dtype"):
            source = np.asarray(source)
        shape = tuple(int(n) for n in source.shape)
        _check_dtype(np.dtype(source.dtype), len(shape))
        chunks = getattr(source, "chunks", None)
        is_dask = hasattr(source, "dask")
        kind = "dask array" if is_dask else type(source).__name__
        if not is_dask:
            workers, scheduler = 1, None
        reader = _Reader(array=source)
    if voxel_size is None:
        if "voxel_size" not in attrs:
            raise InvalidInputError("voxel_size is needed (the source records none)")
        voxel_size = attrs["voxel_size"]
    s = check_voxel_size(voxel_size)
    if min(shape) < 2:
        raise InvalidInputError(f"labels must have every edge >= 2, got shape {shape}")
    if max_lag is None:
        L = min(min(shape) // 2, DEFAULT_MAX_LAG)  # noqa: N806
    else:
        from cbagpu.measure.covariance import max_lag_voxels

        L = max_lag_voxels(max_lag, s, shape)  # noqa: N806
    edges = _block_edges(shape, chunks, block)
    blocks = _blocks(edges)
    wedges = _window_edges(shape, window)
    windows = _blocks(wedges)
    bname = be.name
    smallest = min(min(b - a for a, b in c) for c in blocks)
    _warn_halo("C(h)", L, blocks, shape)
    run = dict(workers=workers, scheduler=scheduler, progress=progress)
    from cbagpu.studies.tasks import Task

    def key(prefix: str, i: int) -> str:
        return f"{prefix}-{i}"

    # ---- pass 1: histograms, phase voxels, pair counts, EDT maxima (the EDT uses the
    # halo read for C(h) anyway)
    first_halo = max(_FIRST_EDT_HALO, L)
    tasks = [Task(key("block", i), _task_block,
                  dict(reader=reader, core=c, shape=shape, phases=phases, max_lag=L,
                       edt_halo=first_halo, backend=bname))
             for i, c in enumerate(blocks)]
    cluster = _start_cluster(tasks, workers, scheduler, bool(be.on_host))
    if cluster is not None:  # one local cluster for every pass
        run = dict(workers=None, scheduler=cluster.scheduler_address, progress=progress)
    sec: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        res = _run(tasks, "pass 1/4: configurations, C(h), EDT maxima", **run)
        first = [res[key("block", i)] for i in range(len(blocks))]
        r2: dict[str, int] = {}
        r2_blocks: dict[str, list[int]] = {}
        edt_rounds = 1
        edt_halo_used = first_halo
        for p in phases:
            vals = [b[p]["r2"] for b in first]
            halo = first_halo
            todo = [i for i, v in enumerate(vals) if v is None]
            while todo:  # blocks whose EDT needs a thicker halo
                halo *= 2
                edt_rounds += 1
                tasks = [Task(key("edt", i), _task_block,
                              dict(reader=reader, core=blocks[i], shape=shape, phases=[p],
                                   max_lag=0, edt_halo=halo, backend=bname, edt_only=True))
                         for i in todo]
                got = _run(tasks, f"pass 1/4: EDT maxima of {p}, halo {halo}", **run)
                for i in todo:
                    vals[i] = got[key("edt", i)][p]["r2"]
                todo = [i for i in todo if vals[i] is None]
                if halo >= max(shape) and todo:  # every box is the whole volume: phase fills it
                    for i in todo:
                        vals[i] = -1
                    todo = []
            edt_halo_used = max(edt_halo_used, halo)
            r2[p] = -1 if any(v == -1 for v in vals) else max(int(v) for v in vals)
            r2_blocks[p] = [int(v) for v in vals]

        sec["configurations_covariance_edt"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        # ---- pass 2: ball cover per phase (halo 2 floor(D_b) + 4 per block)
        n_total = float(np.prod(shape))
        counts: dict[str, np.ndarray] = {}
        cover_halo: dict[str, int] = {}
        for p in phases:
            n_p = sum(b[p]["n"] for b in first)
            if n_p == 0 or n_p == n_total or r2[p] <= 0:
                continue
            local = _local_r2(blocks, r2_blocks[p], r2[p])
            h = max(_cover_halo(v) for v in local)
            cover_halo[p] = h
            _warn_halo(f"CPSD of {p}", h, blocks, shape)
            tasks = [Task(key("cover", i), _task_cover,
                          dict(reader=reader, core=c, shape=shape, phase=p, r2max=r2[p],
                               r2local=local[i], backend=bname))
                     for i, c in enumerate(blocks)]
            got = _run(tasks, f"pass 2/4: CPSD of {p}, halo {h}", **run)
            counts[p] = np.sum([got[key("cover", i)]["counts"] for i in range(len(blocks))],
                               axis=0)

        sec["cpsd"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        # ---- pass 3: windowed global descriptors
        tasks = [Task(key("window", i), _task_window,
                      dict(reader=reader, box=w, phases=phases, voxel_size=s, axis=ax,
                           backend=bname, intrusion_method=intrusion_method,
                           geodesic_method=geodesic_method)) for i, w in enumerate(windows)]
        got = _run(tasks, "pass 3/4: intrusion and geodesic tortuosity per window", **run)
        win = [got[key("window", i)] for i in range(len(windows))]
        sec["windows"] = time.perf_counter() - t0

    finally:
        if cluster is not None:
            cluster.close()

    # ---- assemble (pass 4: this process)
    if progress is not None:
        progress("pass 4/4: assembling", 0, 1)
    bins, w, dist = _lag_bins(L)
    n = np.asarray(shape, np.float64)
    lags = np.arange(-L, L + 1)
    pairs = ((n[0] - np.arange(L + 1))[:, None, None]
             * np.outer(n[1] - np.abs(lags), n[2] - np.abs(lags))[None] * w)
    den_rad = np.bincount(bins.ravel(), weights=pairs.ravel(), minlength=L + 2)[: L + 1]
    k = np.arange(L + 1, dtype=np.float64)
    single = len(windows) == 1
    wshape = [wedges[i][1] - wedges[i][0] for i in range(3)]
    method = ("whole volume (exact, in memory)" if single else
              f"windows of about {'x'.join(map(str, wshape))} voxels ({len(windows)} windows "
              "tiling the volume, each computed in memory): mean over windows, spread = "
              "standard deviation")
    out: dict[str, PhaseDescription] = {}
    glob: dict[str, dict[str, Any]] = {}
    for p in phases:
        hist = np.sum([b[p]["hist"] for b in first], axis=0)
        iv = densities_from_histogram(hist, s, conn)
        n_p = sum(b[p]["n"] for b in first)
        num = np.sum([b[p]["num"] for b in first], axis=0)
        cpsd_r, cpsd_v, r_max = _cpsd_of(p, n_p, n_total, r2[p], counts.get(p), s)
        wr = [x[p] for x in win]
        curves = [np.array([np.nan if v is None else v for v in x["intrusion"]]) for x in wr]
        m = max(len(c) for c in curves)
        curve = np.mean([np.pad(c, (0, m - len(c))) for c in curves], axis=0)
        taus = [x["tau"] for x in wr]
        r_min = _stats([x["r_min"] for x in wr])
        beta = _stats([x["beta"] for x in wr])
        tau = _stats(taus)
        frac = _stats([x["fraction_connected"] for x in wr])
        glob[p] = {"method": method, "windows": len(windows), "window_shape": wshape,
                   "r_min": r_min, "constrictivity": beta, "geodesic_tortuosity": tau,
                   "fraction_connected": frac,
                   "percolating_windows": sum(t is not None for t in taus)}
        out[p] = PhaseDescription(
            phase=p,
            volume_fraction=n_p / n_total,
            S_V=iv.S_V, M_V=iv.M_V, chi_V=iv.chi_V,
            r_max=r_max,
            r_min=_mean_or(r_min, math.nan),
            constrictivity=_mean_or(beta, math.nan),
            geodesic_tortuosity=_mean_or(tau, math.inf),
            fraction_connected=_mean_or(frac, 0.0),
            cpsd_r=cpsd_r, cpsd_value=cpsd_v,
            intrusion_r=np.arange(m, dtype=np.float64) * s, intrusion_value=curve,
            covariance_h=k * s, covariance_value=num / den_rad,
        )
    chunking = {
        "source": kind, "shape": list(shape), "blocks": len(blocks),
        "block_shape": [edges[i][1] - edges[i][0] for i in range(3)],
        "smallest_block_edge": int(smallest),
        "max_lag_voxels": int(L), "covariance_halo": int(L),
        "edt_halo": int(edt_halo_used), "edt_rounds": int(edt_rounds),
        "cpsd_halo": cover_halo, "window_shape": wshape, "windows": len(windows),
        "workers": workers, "scheduler": scheduler, "seconds": sec,
    }
    if progress is not None:
        progress("pass 4/4: assembling", 1, 1)
    return ChunkedDescription(float(s), ax, shape, out, be.name, conn, euler, chunking=chunking,
                              global_descriptors=glob)


def _mean_or(st: dict[str, Any], default: float) -> float:
    return default if st["mean"] is None else float(st["mean"])


def _cpsd_of(phase: str, n_p: int, n_total: float, r2max: int, counts: np.ndarray | None,
             s: float) -> tuple[np.ndarray, np.ndarray, float]:
    """CPSD (r nm, value) and r_max of the summed cover counts, with the special cases of
    :func:`cbagpu.measure.cpsd.cpsd` (empty phase: NaN; a phase filling the window: inf)."""
    if n_p == 0:
        return np.zeros(1), np.full(1, np.nan), math.nan
    if n_p == n_total or r2max < 0:
        return np.zeros(1), np.ones(1), math.inf
    grid = radius_grid(r2max)
    value = _curve_from_counts(np.asarray(counts, np.int64), len(grid),
                               np.arange(len(grid)))
    rm, _ = crossing(grid, value)
    return grid * s, value, rm * s


def _warn_halo(what: str, halo: int, blocks: list[Box], shape: tuple[int, ...]) -> None:
    """Warn when the task boxes of a pass are mostly halo."""
    worst = 0.0
    for c in blocks:
        box = _grow(c, shape, (halo,) * 3, (halo,) * 3)
        vb = np.prod([b - a for a, b in box], dtype=np.float64)
        vc = np.prod([b - a for a, b in c], dtype=np.float64)
        worst = max(worst, vb / vc)
    if worst > _HALO_WARN_RATIO:
        edge = min(min(b - a for a, b in c) for c in blocks)
        warnings.warn(
            f"blocks too small for the halo of {what}: a halo of {halo} voxels around "
            f"blocks of edge {edge} makes a task read {worst:.0f}x its block; give a larger "
            "block (block= / --block) for less work", UserWarning, stacklevel=3)
