"""Simulated intrusion from one face, r_min, and constrictivity (paper Section 3.3, NOTES §6).

For each radius r of the grid the phase is eroded by the ball B_r, only the parts of the
eroded set that are connected to the inlet face are kept, and these are dilated by B_r
again: the result is the part of the phase that a ball of radius r reaches from the inlet
through the phase (simulated mercury intrusion). ``r_min`` is the largest r such that at
least half of the phase is intruded, ``r_max = CPSD^{-1}(0.5)`` (:mod:`cbagpu.measure.cpsd`)
and the constrictivity is ``beta = (r_min / r_max)^2`` in [0, 1].

Conventions (same lattice, window, grid and interpolation rules as :mod:`.cpsd`)
------------------------------------------------------------------------------------
* Closed digital balls ``|d| <= r``; erosion ``{EDT > r}``; voxels outside the window
  count as phase (the EDT ignores them).
* **Inlet**: the first (``side="low"``) or last (``side="high"``) slice of the window along
  ``axis`` (0/"z", 1/"y", 2/"x"). A component of the eroded set is connected to the inlet
  when it contains a voxel of that slice (the ball's centre is then on the inlet plane).
  Connectivity is by **faces** (6-neighbourhood), the ball-centre paths of the continuum
  problem and PoreSpy's ``conn='min'``.
* Union over radii: ``intruded(r) = |union of the intrusions at all grid radii >= r| / |P|``
  (non-increasing; like the CPSD's opening, the plain per-radius intrusion can be smaller
  on a small set of voxels because digital balls are not a granulometry).
* ``value[0]`` (r = 0) is the fraction of the phase connected to the inlet at all. When
  less than half of the phase is ever intruded (for instance a phase that does not touch
  the inlet, where every value is 0), ``r_min = 0`` and ``beta = 0``: there is no radius
  at which half of the phase is reachable. It is not an error.

Algorithm
---------
One EDT gives the level map F and the eroded sets E_i = {F > i}
(:func:`cbagpu.measure.cpsd._levels`). The components of E_i that touch the inlet are nested
sets K_i, summarised by the bottleneck map B(x) = 1 + the largest i with x in K_i. Since x
is in K_i iff some face-connected path from the inlet slice to x has F > i everywhere, B is
the max-min ("widest path") value of F from the inlet slice: a grey-level reconstruction by
dilation of the inlet slice under F. The dilations of all K_i are then one call of
:func:`cbagpu.measure.cpsd.cover_index` on B, the exact ball-cover transform also used for
the CPSD, and the curve is a histogram of its result. ``constrictivity`` shares the EDT.

Three implementations give identical results (``tests/test_measure_intrusion.py``):

* ``method="labels"`` (the reference; the default off the host where no kernels run): the
  EDT of the backend, then B by one ``Backend.label`` (faces) per level
  (:func:`bottleneck_levels`);
* ``method="sweeps"`` (the default where the backend launches kernels: the GPU): the
  EDT of the backend, then B by widest-path sweeps (:mod:`cbagpu.measure.widest_path`,
  the NumPy twin where no kernels run; one launch of ``kernels/bottleneck.cu`` per sweep,
  rounds until one raises nothing: ~30 rounds on a 200^3 paper realization, counted with
  the NumPy twin; not yet timed on a GPU);
* ``method="flood"`` (the default on the NumPy backend; :mod:`._intrusion_kernels`,
  Numba, host arrays only): an exact int32 squared EDT (separable; brute-force lower
  envelopes where distances are short, the parabola envelope elsewhere) and B in one O(N)
  bucket-queue flood from the top level down, instead of one labelling per level, and the
  curve's histogram. On a 200^3 paper realization (2-core CPU, under load) "labels" takes
  1.48 s (pore) and 0.87 s (solid): EDT and level map 32 % / 41 %, labellings 49 % / 39 %,
  ball cover 16 % / 17 %. "flood" takes 0.60 s and 0.38 s: EDT 27 % / 30 %, flood
  29 % / 24 %, ball cover (shared with the CPSD, unchanged) 38 % / 39 %.

References
----------
Gräfensteiner et al., Section 3.3 (r_min, r_max, beta = r_min^2 / r_max^2).
Neumann, M. et al. (2019). Estimation of geodesic tortuosity and constrictivity in
stationary random closed sets. Scand. J. Stat. 46, 848-884 (ref. [55] of the paper).
Münch, B. & Holzer, L. (2008). J. Am. Ceram. Soc. 91, 4059-4067 (simulated intrusion).
Gostick, J. et al. (2019). PoreSpy. JOSS 4, 1296 (``porespy.filters.porosimetry``, the peer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cbagpu.backend import Backend
from cbagpu.errors import InvalidInputError
from cbagpu.measure.cpsd import (
    CPSD,
    _curve,
    _lattice_r2,
    _levels,
    _prepare,
    _zchunks,
    cover_index,
    cpsd,
    crossing,
    radius_grid,
)
from cbagpu.validation import check_axis, check_voxel_size

__all__ = ["METHODS", "Constrictivity", "Intrusion", "constrictivity", "intrusion"]

#: Algorithms for the bottleneck map B (the same result; see :func:`intrusion`).
METHODS: tuple[str, ...] = ("auto", "flood", "sweeps", "labels")


@dataclass(frozen=True)
class Intrusion:
    """Simulated intrusion curve of one phase from one face.

    Attributes
    ----------
    r : ndarray
        Radii (nm), ascending, starting at 0.
    value : ndarray
        Fraction of the phase reached by balls of radius >= r entering from the inlet
        (non-increasing; ``value[0]`` = fraction connected to the inlet at all).
    r_min : float
        Largest radius (nm) with value >= 0.5, linear between the bracketing grid radii;
        0 when less than half of the phase is ever reached.
    r_min_grid : float
        The largest grid radius (nm) with value >= 0.5 (0 if none).
    axis : int
        Inlet axis (0 = z, 1 = y, 2 = x).
    side : str
        ``"low"`` (first slice) or ``"high"`` (last slice).
    """

    r: np.ndarray
    value: np.ndarray
    r_min: float
    r_min_grid: float
    axis: int
    side: str


@dataclass(frozen=True)
class Constrictivity:
    """Constrictivity beta = (r_min / r_max)^2 of one phase (paper Section 3.3).

    ``r_min``, ``r_max`` in nm; ``beta`` in [0, 1] (NaN for an empty phase or one that
    fills the window); ``cpsd`` and ``intrusion`` are the curves they come from.
    """

    r_min: float
    r_max: float
    beta: float
    cpsd: CPSD
    intrusion: Intrusion


def _inlet(axis: int | str, side: str) -> int:
    """Validated inlet axis (0 = z, 1 = y, 2 = x) and side."""
    ax = check_axis(axis)
    if side not in ("low", "high"):
        raise InvalidInputError(f"side must be 'low' or 'high', got {side!r}")
    return ax


# eroded sets with at most this fraction of the window are labelled as sparse graphs
# (method "labels" on host arrays)
_SPARSE_FRACTION = 0.04


def check_method(method: Any) -> str:
    """A valid ``method=`` of :func:`intrusion` / :func:`constrictivity`."""
    if not isinstance(method, str) or method not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(map(repr, METHODS))}; "
                                f"got {method!r}")
    return method


def resolve_method(be: Backend, method: str, shape: tuple[int, ...]) -> str:
    """The algorithm ``method="auto"`` stands for on ``be``: ``"sweeps"`` where the backend
    launches kernels (the GPU), ``"flood"`` where its arrays are on the host (Numba; edges
    up to ``_intrusion_kernels.MAX_EDGE``), else ``"labels"``. An explicit ``"flood"``
    needs host arrays."""
    method = check_method(method)
    if method == "auto":
        if be.runs_kernels:
            return "sweeps"
        return "flood" if _flood_fits(be, shape) else "labels"
    if method == "flood" and not _flood_fits(be, shape):
        raise InvalidInputError(
            "method='flood' runs Numba kernels on host arrays with edges <= "
            f"{_max_flood_edge()}; {be!r} with shape {tuple(shape)} cannot: use 'sweeps' or "
            "'labels'"
        )
    return method


def _flood_fits(be: Backend, shape: tuple[int, ...]) -> bool:
    """Whether the Numba flood can run: host arrays, every edge <= ``MAX_EDGE``."""
    return be.on_host and max(shape, default=0) <= _max_flood_edge()


def _max_flood_edge() -> int:
    """``_intrusion_kernels.MAX_EDGE`` (imported here: Numba loads only when used)."""
    from cbagpu.measure._intrusion_kernels import MAX_EDGE

    return MAX_EDGE


def _cpu_kernels(method: str) -> Any:
    """The Numba kernel module for ``method == "flood"`` (imported here: Numba loads only
    when used), else None."""
    if method != "flood":
        return None
    from cbagpu.measure import _intrusion_kernels

    return _intrusion_kernels


def _levels_any(
    be: Backend, m: Any, radii_vox: Any, method: str
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """(F, grid, m, inv) of :func:`cbagpu.measure.cpsd._levels`, with the Numba squared
    EDT on the CPU (identical values: F counts the lattice balls m_j < EDT^2)."""
    K = _cpu_kernels(method)
    if K is None:
        return _levels(be, m, radii_vox)
    d2 = K.squared_edt(m)
    r2max = int(d2.max()) if d2.size else 0  # finite: the phase does not fill the window
    grid = radius_grid(r2max, radii_vox)
    mg, inv = np.unique(_lattice_r2(grid), return_inverse=True)
    dtype = np.uint8 if len(mg) < 255 else np.uint16
    lut = np.searchsorted(mg, np.arange(r2max + 1), side="left").astype(dtype)
    F = K.level_map(d2, lut)
    return F, grid, mg, inv


def _curve_any(be: Backend, C: Any, m: Any, n_unique: int, inv: np.ndarray,
               method: str) -> np.ndarray:
    """:func:`cbagpu.measure.cpsd._curve`, with a Numba histogram for ``"flood"``."""
    K = _cpu_kernels(method)
    if K is None:
        return _curve(be, C, m, n_unique, inv)
    counts = K.count_levels(C, m, n_unique + 1)
    tail = np.cumsum(counts[::-1])[::-1].astype(np.float64)  # tail[j] = #(C >= j)
    frac = tail[1:] / tail[0] if tail[0] > 0 else np.full(n_unique, np.nan)
    return frac[inv]


def _bottleneck(be: Backend, F: Any, axis: int, side: str, method: str) -> Any:
    """B of :func:`bottleneck_levels` by ``method``: ``"flood"`` the Numba bucket-queue
    flood (one O(N) pass), ``"sweeps"`` widest-path sweeps
    (:mod:`cbagpu.measure.widest_path`: the CUDA kernel where the backend launches
    kernels, its twin elsewhere), ``"labels"`` one labelling per radius."""
    if method == "flood":
        return _cpu_kernels(method).bottleneck_flood(F, axis, side)
    if method == "sweeps":
        from cbagpu.measure.widest_path import widest_path_levels

        return widest_path_levels(be, F, axis, side)
    return bottleneck_levels(be, F, axis, side)


def bottleneck_levels(be: Backend, F: Any, axis: int, side: str) -> Any:
    """B(x) = 1 + the largest i such that x is in a face-connected component of
    E_i = {F > i} that meets the inlet slice (0 if none), same dtype as ``F``.

    The sets K_i (components touching the inlet) are nested, so B = sum_i [x in K_i]. The
    volume is oriented so that the inlet is the first z-slice. Large eroded sets are
    labelled with ``Backend.label`` (faces): a raster-order labelling (SciPy's) numbers
    the components that touch the first slice 1..n0, so K_i is a comparison; other
    labellings fall back to a lookup table. On the CPU, eroded sets smaller than
    ``_SPARSE_FRACTION`` of the window are labelled as graphs of their voxels
    (:func:`_sparse_levels`), which costs time in proportion to their size.
    """
    xp = be.xp
    Fo = xp.moveaxis(F, axis, 0)
    if side == "high":
        Fo = Fo[::-1]
    Fo = xp.ascontiguousarray(Fo)
    B = xp.zeros_like(Fo)
    top = int(xp.max(Fo[0])) if Fo[0].size else 0  # no level above reaches the inlet
    low = top
    if be.on_host and top > 0:
        counts = np.zeros(int(Fo.max()) + 1, np.int64)
        for sl in _zchunks(Fo.shape):  # chunks: bincount casts to intp
            counts += np.bincount(Fo[sl].reshape(-1), minlength=len(counts))
        sizes = np.cumsum(counts[::-1])[::-1]
        # sizes[j] = #(F >= j) = |E_{j-1}|
        small = np.nonzero(sizes[1 : top + 1] <= _SPARSE_FRACTION * Fo.size)[0]
        low = int(small[0]) if small.size else top
        if low < top:
            _sparse_levels(Fo, B, low, top)
    for i in range(low - 1, -1, -1):
        E = Fo > i
        lab, n = be.label(E, 1)
        del E
        hit = xp.unique(lab[0])
        hit = hit[hit > 0]
        n0 = int(hit.size)
        if n0 and int(hit[-1]) == n0 and lab.dtype == xp.int32:  # inlet components 1..n0
            lab -= 1  # background -> -1, i.e. 2^32 - 1 as unsigned
            K = lab.view(xp.uint32) < n0
        else:
            lut = xp.zeros(n + 1, dtype=bool)
            lut[hit] = True
            K = lut[lab]
        del lab
        B += K
        del K
    if side == "high":
        B = B[::-1]
    B = xp.moveaxis(B, 0, axis)
    return xp.ascontiguousarray(B)


def _sparse_levels(Fo: np.ndarray, B: np.ndarray, low: int, top: int) -> None:
    """B += sum over low <= i < top of [x in K_i], labelling each E_i as the graph of its
    voxels and face adjacencies (SciPy csgraph); the inlet is the first z-slice."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    Z, Y, X = Fo.shape
    idx = np.flatnonzero(Fo > low)
    f = Fo.reshape(-1)[idx]
    order = np.argsort(np.iinfo(f.dtype).max - f, kind="stable")  # by level, descending
    rank = np.empty(len(idx), np.int64)
    rank[order] = np.arange(len(idx))
    heads, tails, weights = [], [], []
    xs = idx % X
    ys = (idx // X) % Y
    for off, ok in ((1, xs < X - 1), (X, ys < Y - 1), (X * Y, None)):
        t = idx + off
        j = np.searchsorted(idx, t)
        jc = np.minimum(j, len(idx) - 1)
        hit = (j < len(idx)) & (idx[jc] == t)
        if ok is not None:
            hit &= ok
        src = np.nonzero(hit)[0]
        dst = jc[hit]
        heads.append(rank[src])
        tails.append(rank[dst])
        weights.append(np.minimum(f[src], f[dst]))
    a = np.concatenate(heads)
    b = np.concatenate(tails)
    w = np.concatenate(weights)
    eorder = np.argsort(np.iinfo(w.dtype).max - w, kind="stable")
    a, b, w = a[eorder], b[eorder], w[eorder]
    fs = f[order]  # descending
    inlet = np.sort(rank[idx < X * Y])
    acc = np.zeros(len(idx), np.int64)
    for i in range(top - 1, low - 1, -1):
        ni = int(np.searchsorted(-fs.astype(np.int64), -i, side="left"))  # #(f > i)
        ei = int(np.searchsorted(-w.astype(np.int64), -i, side="left"))  # #(w > i)
        inl = inlet[: int(np.searchsorted(inlet, ni))]
        if ni == 0 or inl.size == 0:
            continue
        graph = csr_matrix(
            (np.ones(ei, np.int8), (a[:ei], b[:ei])), shape=(ni, ni)
        )
        _, comp = connected_components(graph, directed=False)
        touched = np.zeros(int(comp.max()) + 1, bool)
        touched[comp[inl]] = True
        acc[:ni] += touched[comp]
    Bf = B.reshape(-1)
    Bf[idx[order]] += acc.astype(B.dtype)


def _intrusion_from(
    be: Backend,
    m: Any,
    F: Any,
    grid: np.ndarray,
    mg: np.ndarray,
    inv: np.ndarray,
    voxel_size: float,
    ax: int,
    side: str,
    method: str,
) -> Intrusion:
    B = _bottleneck(be, F, ax, side, method)
    C = cover_index(be, B, mg)
    del B
    value = _curve_any(be, C, m, len(mg), inv, method)
    rm, rg = crossing(grid, value)
    return Intrusion(grid * voxel_size, value, rm * voxel_size, rg * voxel_size, ax, side)


def intrusion(
    mask: Any,
    voxel_size: float,
    axis: int | str = 0,
    side: str = "low",
    backend: str | Backend = "auto",
    radii: Any = None,
    *,
    method: str = "auto",
) -> Intrusion:
    """Simulated intrusion of the phase ``mask`` from one face (NOTES §6) and r_min.

    Parameters
    ----------
    mask : array (bool, (z, y, x)), NumPy or CuPy
    voxel_size : float
        Voxel edge length in nm.
    axis : 0, 1, 2 (or -3..-1) or "z", "y", "x"
        Axis normal to the inlet face (:func:`cbagpu.validation.check_axis`).
    side : "low" | "high"
        Inlet at the first or the last slice along ``axis``.
    backend : "auto" | "numpy" | "cupy" | Backend
    radii : array-like, optional
        Radius grid in nm (0 always added); default every integer number of voxels.
    method : {"auto", "flood", "sweeps", "labels"}
        Algorithm of the bottleneck map (all give the same curve): ``"flood"`` a Numba
        bucket-queue flood on host arrays, ``"sweeps"`` widest-path sweeps (one CUDA kernel
        launch per sweep where the backend launches kernels, the NumPy twin elsewhere),
        ``"labels"`` one connected-component labelling per radius. ``"auto"``: sweeps on
        the GPU (any backend with ``runs_kernels``), flood on the NumPy backend (host
        arrays), labels elsewhere. The Numba EDT and histogram go with ``"flood"``. A bad
        name raises :class:`~cbagpu.errors.InvalidInputError` before any work.

    Returns
    -------
    Intrusion
        See the module docstring for the conventions; ``r_min = 0`` (not an error) when
        less than half of the phase can be reached, e.g. when it does not touch the inlet.

    References
    ----------
    Paper Section 3.3; Neumann et al. (2019); Münch & Holzer (2008).
    """
    voxel_size = check_voxel_size(voxel_size)
    ax = _inlet(axis, side)
    check_method(method)
    be, m = _prepare(mask, backend)
    method = resolve_method(be, method, m.shape)
    radii_vox = None if radii is None else np.asarray(radii, np.float64) / voxel_size
    if not bool(m.any()) or bool(m.all()):
        grid = radius_grid(0, radii_vox) if radii_vox is not None else np.zeros(1)
        fill = math.nan if not bool(m.any()) else 1.0
        r = math.nan if not bool(m.any()) else math.inf
        return Intrusion(grid * voxel_size, np.full(len(grid), fill), r, r, ax, side)
    F, grid, mg, inv = _levels_any(be, m, radii_vox, method)
    return _intrusion_from(be, m, F, grid, mg, inv, voxel_size, ax, side, method)


def constrictivity(
    mask: Any,
    voxel_size: float,
    axis: int | str = 0,
    side: str = "low",
    backend: str | Backend = "auto",
    radii: Any = None,
    *,
    method: str = "auto",
) -> Constrictivity:
    """Constrictivity ``beta = (r_min / r_max)^2`` of the phase ``mask`` (Section 3.3).

    ``r_max = CPSD^{-1}(0.5)`` (:func:`cbagpu.measure.cpsd.cpsd`) and ``r_min`` from the
    intrusion through the inlet face (:func:`intrusion`), both from one EDT and on the
    same radius grid. Since the intruded set is contained in the opening at every radius,
    ``r_min <= r_max`` and beta lies in [0, 1]; beta = 0 when less than half of the phase
    is reachable from the inlet. The parameters are those of :func:`intrusion`
    (``method`` included: the same default per backend).

    References
    ----------
    Paper Section 3.3 (beta = r_min^2 / r_max^2); Neumann et al. (2019).
    """
    voxel_size = check_voxel_size(voxel_size)
    ax = _inlet(axis, side)
    check_method(method)
    be, m = _prepare(mask, backend)
    method = resolve_method(be, method, m.shape)
    radii_vox = None if radii is None else np.asarray(radii, np.float64) / voxel_size
    if not bool(m.any()) or bool(m.all()):
        c = cpsd(m, voxel_size, be, radii)
        i = intrusion(m, voxel_size, ax, side, be, radii, method=method)
        return Constrictivity(i.r_min, c.r_max, math.nan, c, i)
    F, grid, mg, inv = _levels_any(be, m, radii_vox, method)
    CT = cover_index(be, F, mg)
    value = _curve_any(be, CT, m, len(mg), inv, method)
    del CT
    rm, rg = crossing(grid, value)
    c = CPSD(grid * voxel_size, value, rm * voxel_size, rg * voxel_size)
    i = _intrusion_from(be, m, F, grid, mg, inv, voxel_size, ax, side, method)
    beta = (i.r_min / c.r_max) ** 2 if c.r_max > 0 else math.nan
    return Constrictivity(i.r_min, c.r_max, float(beta), c, i)
