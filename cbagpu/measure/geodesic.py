"""Mean geodesic tortuosity of a binary phase along one axis (paper Section 3.3, Figures 5c,
5f and 8c; NOTES §6).

Definition
----------
X is the set of phase voxels; the *inlet* is the first layer of the image along ``axis``
(index 0), the *outlet* the last layer (index n − 1). Paths run in the 26-connected voxel
graph of X: edges join voxels of X that share a face, an edge or a corner, with the
Euclidean lengths 1, √2 and √3 (voxels) of the steps between their centres. For an inlet
voxel x of X, ℓ(x) is the length of the shortest such path from x to any outlet voxel of X
(∞ when there is none). With I_c = {inlet voxels x of X : ℓ(x) < ∞},

    τ = (1 / |I_c|) Σ_{x ∈ I_c} ℓ(x) / (n − 1),    ℓ in voxels,

the average over the inlet voxels that reach the outlet of path length / thickness.

**Thickness convention**: the thickness is (n − 1)·s, the distance between the planes
through the centres of the inlet and the outlet voxels, i.e. what a path between voxel
centres has to cover. Then τ ≥ 1 always (every step advances at most its own length
along the axis) and a straight channel gives τ = 1 exactly. With the window's outer
thickness n·s a straight channel would give τ = (n − 1)/n < 1, contradicting τ ≥ 1
(Section 3.3), a bias of −1/n (−0.5 % at n = 200).

``fraction_connected`` = |I_c| / (number of inlet voxels of X). A phase without an
inlet–outlet path has ``percolates = False``, ``fraction_connected = 0`` and ``tau = inf``
(infinitely long paths: Eq. 28, ε^a β^b / τ^c, then gives M = 0, as it should).

The graph metric overestimates the length of a straight segment by up to 12.8 % in the
worst direction (≈ (1, 0.41, 0.32); 8.2 % at 22.5° from an axis in a lattice plane) and is
exact along the 13 lattice directions; this is the discretisation NOTES §6 asks for, and
the module computes it exactly.

Algorithm
---------
All inlet lengths come from one multi-source shortest-path computation started at the
outlet: d(v) = min over outlet voxels o of dist(o, v), so ℓ = d on the inlet. d is the
fixed point of the Bellman equations

    d(v) = min(d(v), min over 26-neighbours u ∈ X of d(u) + |u − v|),   d = 0 on the outlet,

reached by label correction in two phases, written once against the array module ``xp``
(NumPy on the CPU, CuPy on the GPU):

1. **Directional plane sweeps** (Gauss–Seidel). A sweep along axis a in direction ±
   visits the planes k along a in order and relaxes all voxels of plane k at once from
   their 9 neighbours in plane k ∓ 1 (a vectorised 3 x 3 min-plus stencil with weights 1,
   √2, √3). One sweep carries a distance front across the whole image along its direction,
   so a few rounds of the six sweeps (−z from the outlet first, then ±y, ±x, +z) bring
   almost every voxel to its final value; each of the 26 edge directions belongs to two of
   the six sweeps. Each plane carries, per sweep, the bounding box of its voxels changed
   since that sweep last relaxed from it; planes with an empty box are skipped and only
   the box grown by one voxel is relaxed otherwise. The x-sweeps, whose planes are strided
   in the (z, y, x) layout, run on a transposed copy when they have much to do (copied in
   blocks of 8 planes, ~10 ms each way at 200^3 on the CPU).
2. **Sparse Bellman–Ford**. After a round of six sweeps that changed at most 2 % of the
   voxels, each voxel that did not change in that round has relaxed all its 26 out-edges
   since its last change (each of the six sweeps has run over it since), so the voxels
   changed in that round form a complete *frontier*: relax the 26 neighbours of the
   frontier (vectorised gathers; the minimum over duplicate targets by repeated masked
   assignment), make the improved neighbours the next frontier, until it is empty.

**On the GPU** the bookkeeping above would cost host round trips per plane, so the CuPy
backend runs whole sweeps instead: ``kernels/geodesic.cu`` relaxes whole planes (one thread
per column of the plane) and rounds of the six sweeps repeat until one lowers no voxel, with
one read-back per round. Each sweep is one launch of a persistent kernel whose resident
blocks meet at a grid-wide barrier after every plane, so a GPU sweep equals the twin's
(``_sweep_twin``) exactly: a paper realization needs 5 (pore) and 6 (solid) rounds at 200^3,
at 6 launches and one read per round whatever the number of planes. (The older kernel,
``cba_geodesic_sweep_*``, relaxes a given number of planes per launch; several planes per
launch without a barrier let a block read a neighbouring block's voxel before that block
lowered it, which only delays the improvement: 45 / 30 rounds at 200^3 when the blocks run
one after another.)

The final d is a fixed point of the Bellman equations whose values are lengths of actual
paths, hence the exact graph distance (unreachable voxels keep ∞). It equals
``scipy.sparse.csgraph.dijkstra`` on the same graph (tests: every voxel of small random
images) and ``skimage.graph.MCP_Geometric`` with unit costs on X and infinite costs
elsewhere (its step cost (c_u + c_v)/2 · |u − v| is then the Euclidean step length).

Precision, memory, speed
------------------------
Distances are float32 by default: each addition rounds to 2^-24 relative, so a path of h
steps carries a relative error ≲ h · 6e-8 (measured against float64 at 200^3: ≤ 1.1e-6
relative, ≤ 3e-4 voxels; τ to 3e-7); ``dtype=np.float64`` is exact to rounding (~1e-13).
Obstacles and the one-voxel border are NaN (``fmin`` ignores NaN neighbours and NaN never
compares smaller), so no mask is kept. Working memory ≈ 8 bytes per voxel besides the
caller's mask: the padded float32 distance array and its transposed copy for the x-sweeps
(float64: 8 bytes, no transposed copy, ~2.5x slower). Measured peak (traced) at 200^3:
8.5 bytes per voxel, 10 with ``return_map``.

Speed on the 2-core CPU, paper realizations at 20 nm, axis 0, side by side with the
scikit-image route (``MCP_Geometric`` with unit costs, a heap-based Dijkstra from the outlet
voxels; same τ and fraction to float32 rounding), medians of 3 at 200^3, one run at 400^3:

    200^3  pore  0.62 s vs  7.4 s (12x)    solid 0.77 s vs  3.5 s (4.6x)
    400^3  pore  6.0 s  vs 95 s   (16x)    solid 7.7 s  vs 46 s   (6.0x)

References
----------
Gräfensteiner et al., *Data-driven stochastic 3D modeling of the nanoporous binder-conductive
additive phase in battery cathodes*, Section 3.3 (mean geodesic tortuosity, τ ≥ 1), Eq. (28),
Figures 5c, 5f and 8c.
M. Neumann, C. Hirsch, J. Staněk, V. Beneš, V. Schmidt, *Estimation of geodesic tortuosity
and constrictivity in stationary random closed sets*, Scand. J. Stat. 46:848–884, 2019
(ref. [55] of the paper: τ as the mean shortest-path length from the inlet plane to the
outlet plane divided by the thickness).
R. Bellman, *On a routing problem*, Quart. Appl. Math. 16:87–90, 1958 (label correction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from cbagpu.backend import Backend, get_backend
from cbagpu.backend.kernels import launch_blocks
from cbagpu.errors import InvalidInputError
from cbagpu.validation import check_axis, check_mask_3d, check_voxel_size

__all__ = ["METHODS", "GeodesicTortuosity", "geodesic_distance_map", "geodesic_tortuosity"]

_SQRT2 = math.sqrt(2.0)
_SQRT3 = math.sqrt(3.0)
_EMPTY = 1 << 40  # lower bound of an empty box (its upper bound is -_EMPTY)
_OTHERS = {0: (1, 2), 1: (0, 2), 2: (0, 1)}
# Sweep order of one round: from the outlet (last z-layer) towards the inlet first; the two
# x-sweeps are consecutive so that one transposed copy serves both.
_SWEEPS = ((0, -1), (1, +1), (1, -1), (2, +1), (2, -1), (0, +1))
# Switch to the sparse phase after a round that changed at most this fraction of the voxels
# (or at most _SPARSE_MIN voxels); the changed voxels are recorded in a round only
# when the previous one changed fewer than _COLLECT_FACTOR times that many.
_SPARSE_FRACTION = 0.02
_SPARSE_MIN = 4096
_COLLECT_FACTOR = 10
# Run the x-sweeps on a transposed copy when their boxes cover more than this fraction
# of the volume (float32 only, to stay within ~8 bytes per voxel).
_TRANSPOSE_FRACTION = 0.05
#: Algorithms of the distance map (the same distances; see :func:`geodesic_tortuosity`).
METHODS: tuple[str, ...] = ("auto", "rounds", "boxes")
_THREADS = 256
_MAX_BLOCKS = 1 << 16
# The GPU sweep is one launch of a persistent kernel per sweep (planes in order, a grid-wide
# barrier between them: the twin's result exactly). The older kernel relaxes a given number
# of planes per launch: 1 orders the planes (one launch per plane); more planes per launch
# mean stale reads across blocks and more rounds (up to ~45 at 200^3 when blocks run one
# after another, measured with the host-compiled kernel).
_COPY_BLOCK = 8


@dataclass(frozen=True)
class GeodesicTortuosity:
    """Mean geodesic tortuosity of one phase along one axis (nm units).

    Attributes
    ----------
    tau : float
        Mean over the connected inlet voxels of (shortest path length to the outlet) /
        thickness; ``inf`` when no inlet voxel reaches the outlet.
    fraction_connected : float
        n_connected / n_inlet (0 when the phase has no inlet voxel).
    n_inlet : int
        Voxels of the phase on the inlet plane (index 0 along ``axis``).
    n_connected : int
        Those of them with a path in the phase to the outlet plane (index n − 1).
    percolates : bool
        ``n_connected > 0``.
    thickness_nm : float
        (n − 1) · voxel_size, the distance between the inlet and outlet voxel-centre planes.
    mean_path_length_nm : float
        tau · thickness_nm (``inf`` when the phase does not percolate).
    tau_std : float
        Standard deviation of the per-voxel tortuosities ℓ(x)/thickness over the connected
        inlet voxels (``nan`` when there are none).
    axis : int
        The transport axis (0 = z, 1 = y, 2 = x).
    voxel_size : float
        Voxel edge length (nm).
    path_lengths_nm : ndarray
        Shortest path lengths (nm, float64) of the connected inlet voxels, in C order of
        the inlet plane.
    distance_map : ndarray or None
        With ``return_map=True``: the geodesic distance (voxel units, float32) of every
        voxel to the outlet plane, ``inf`` outside the phase or without a path.
    """

    tau: float
    fraction_connected: float
    n_inlet: int
    n_connected: int
    percolates: bool
    thickness_nm: float
    mean_path_length_nm: float
    tau_std: float
    axis: int
    voxel_size: float
    path_lengths_nm: np.ndarray = field(repr=False, compare=False)
    distance_map: np.ndarray | None = field(default=None, repr=False, compare=False)


def geodesic_tortuosity(
    mask: Any,
    voxel_size: float,
    axis: int | str = 0,
    backend: str | Backend = "auto",
    *,
    return_map: bool = False,
    dtype: Any = np.float32,
    method: str = "auto",
) -> GeodesicTortuosity:
    """Mean geodesic tortuosity τ of the phase ``mask`` along ``axis`` (paper Section 3.3).

    Parameters
    ----------
    mask : bool array (z, y, x), NumPy or CuPy
        The phase (True voxels).
    voxel_size : float
        Voxel edge length s (nm, > 0); lengths are reported in nm.
    axis : 0, 1, 2 (or -3..-1) or "z", "y", "x"
        Transport axis (:func:`cbagpu.validation.check_axis`). The inlet is layer 0
        along it, the outlet layer n − 1 (n ≥ 2).
    backend : "auto", "numpy", "cupy" or a :class:`~cbagpu.backend.Backend`.
    return_map : bool
        Also return the geodesic distance map (host float32, voxel units).
    dtype : np.float32 (default) or np.float64
        Precision of the distances (see the module docstring).
    method : {"auto", "rounds", "boxes"}
        Algorithm of the distance map (both reach the same fixed point): ``"rounds"``
        repeats whole directional sweeps until one lowers nothing (one CUDA kernel launch
        per plane where the backend launches kernels, the kernel's NumPy twin elsewhere;
        no host round trip per plane); ``"boxes"`` tracks per-plane boxes of changed
        voxels and ends on the sparse phase (the CPU's route). ``"auto"``: rounds on the
        GPU (any backend with ``runs_kernels``), boxes on the NumPy backend.

    Returns
    -------
    GeodesicTortuosity
        τ, the fraction of inlet voxels connected to the outlet and the path lengths
        (see the module docstring for the definition and the thickness convention).

    References
    ----------
    Gräfensteiner et al., Section 3.3; Neumann et al., Scand. J. Stat. 46 (2019) 848–884.
    """
    voxel_size = check_voxel_size(voxel_size)
    check_method(method)
    be = get_backend(backend)
    m, ax = _flow_first(be, mask, axis)
    d = _geodesic_padded(be, m, dtype, method)
    n = m.shape[0]
    inlet = d[1, 1:-1, 1:-1]
    n_inlet = int(be.xp.count_nonzero(m[0]))
    lengths = be.to_host(inlet[be.xp.isfinite(inlet)]).astype(np.float64)
    n_conn = int(lengths.size)
    thickness = (n - 1) * float(voxel_size)
    if n_conn:
        ratios = lengths / (n - 1)
        tau = float(ratios.mean())
        tau_std = float(ratios.std())
    else:
        tau, tau_std = math.inf, math.nan
    dmap = _to_map(be, d, ax) if return_map else None
    return GeodesicTortuosity(
        tau=tau,
        fraction_connected=n_conn / n_inlet if n_inlet else 0.0,
        n_inlet=n_inlet,
        n_connected=n_conn,
        percolates=n_conn > 0,
        thickness_nm=thickness,
        mean_path_length_nm=tau * thickness,
        tau_std=tau_std,
        axis=ax,
        voxel_size=float(voxel_size),
        path_lengths_nm=lengths * float(voxel_size),
        distance_map=dmap,
    )


def geodesic_distance_map(
    mask: Any,
    axis: int | str = 0,
    backend: str | Backend = "auto",
    *,
    dtype: Any = np.float32,
    method: str = "auto",
) -> np.ndarray:
    """Geodesic distance (voxel units) of every voxel of ``mask`` to the outlet plane.

    The length of the shortest path inside the phase, in the 26-connected voxel graph with
    step lengths 1, √2, √3, to any phase voxel of the last layer along ``axis`` (those have
    distance 0). Voxels outside the phase, or without such a path, get ``inf``. Multiply by
    the voxel size for nm. See the module docstring for the algorithm; ``axis``,
    ``dtype`` and ``method`` as in :func:`geodesic_tortuosity`.

    Returns
    -------
    ndarray
        Host array of ``mask.shape``, float32 (or ``dtype``).

    References
    ----------
    Gräfensteiner et al., Section 3.3; Neumann et al., Scand. J. Stat. 46 (2019) 848–884.
    """
    check_method(method)
    be = get_backend(backend)
    m, ax = _flow_first(be, mask, axis)
    return _to_map(be, _geodesic_padded(be, m, dtype, method), ax)


# -- helpers -------------------------------------------------------------------------------


def _flow_first(be: Backend, mask: Any, axis: int | str) -> tuple[Any, int]:
    """The mask as a bool array of this backend with the transport axis first (a view)."""
    ax = check_axis(axis)
    m = check_mask_3d(mask, be.xp)
    if m.shape[ax] < 2:
        raise InvalidInputError(f"the image needs at least 2 layers along axis {ax}, got {m.shape}")
    if m.dtype != bool:
        m = m.astype(bool)
    return be.xp.moveaxis(m, ax, 0), ax


def _to_map(be: Backend, d: Any, ax: int) -> np.ndarray:
    """Interior of the padded distances, NaN (obstacle) -> inf, original axis order."""
    xp = be.xp
    out = d[1:-1, 1:-1, 1:-1]
    xp.copyto(out, d.dtype.type(np.inf), where=xp.isnan(out))
    return be.to_host(xp.ascontiguousarray(xp.moveaxis(out, 0, ax)))


def _copy_blocked(dst: Any, src: Any, axis: int, xp: Any) -> None:
    """``dst[...] = src`` for a transposed view ``src``, in blocks along ``axis`` of ``dst``
    (cache-friendly: 2-3x faster than one strided copy on the CPU)."""
    n = dst.shape[axis]
    for i in range(0, n, _COPY_BLOCK):
        sl = (slice(None),) * axis + (slice(i, i + _COPY_BLOCK),)
        xp.copyto(dst[sl], src[sl])


def _relax_plane(xp: Any, p: Any, cur: Any, r0: int, r1: int, c0: int, c1: int,
                 s2: Any, s3: Any, check: bool = True) -> Any:
    """Relax ``cur[r0:r1, c0:c1]`` from its 9 neighbours in the previous plane ``p``.

    Planes are padded (NaN border), so the 3 x 3 neighbourhood of every target exists.
    Updates ``cur`` in place and returns the boolean mask of the changed voxels (region
    shape), or ``None`` when nothing changed (looked at only with ``check``: it reads one
    value back). NaN (obstacle) targets never change and NaN neighbours are ignored
    (``fmin``).
    """
    pb = p[r0 - 1:r1 + 1, c0 - 1:c1 + 1]
    h = xp.fmin(pb[:, :-2], pb[:, 2:])                       # column neighbours, all rows
    e = xp.fmin(h[1:-1], xp.fmin(pb[:-2, 1:-1], pb[2:, 1:-1]))  # 4 edge neighbours
    c = xp.fmin(h[:-2], h[2:])                                # 4 corner neighbours
    e += s2
    c += s3
    xp.fmin(e, c, out=e)
    xp.add(pb[1:-1, 1:-1], 1, out=c)                          # the neighbour straight behind
    xp.fmin(e, c, out=e)
    target = cur[r0:r1, c0:c1]
    lt = xp.less(e, target)
    if check and not bool(lt.any()):
        return None
    xp.copyto(target, e, where=lt)
    return lt


def _neighbour_offsets(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Flat-index offsets and Euclidean lengths of the 26 neighbours in a C-order array."""
    st = (shape[1] * shape[2], shape[2], 1)
    offs, lens = [], []
    for dz in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dz or dy or dx:
                    offs.append(dz * st[0] + dy * st[1] + dx * st[2])
                    lens.append(math.sqrt(dz * dz + dy * dy + dx * dx))
    return np.array(offs, np.int64), np.array(lens)


def _sparse_bellman_ford(be: Backend, d: Any, frontier: Any) -> None:
    """Label correction from ``frontier`` (flat indices into the padded ``d``) to the fixed
    point: relax the 26 neighbours of the frontier, keep the improved ones as the next."""
    xp = be.xp
    offs, lens = _neighbour_offsets(d.shape)
    offs = xp.asarray(offs)
    lens = xp.asarray(lens.astype(d.dtype))
    flat = d.reshape(-1)
    while frontier.size:
        nb = (frontier[:, None] + offs[None, :]).reshape(-1)
        cand = (flat[frontier][:, None] + lens[None, :]).reshape(-1)
        better = cand < flat[nb]  # NaN (obstacle) targets compare False
        nb = nb[better]
        cand = cand[better]
        frontier = xp.unique(nb)
        # minimum over duplicate targets: a fancy assignment stores one of the duplicates,
        # so repeat with the candidates still below the stored value (<= 26 passes).
        while nb.size:
            flat[nb] = cand
            lower = cand < flat[nb]
            if not bool(lower.any()):
                break
            nb, cand = nb[lower], cand[lower]


def _initial_distances(xp: Any, m: Any, dtype: Any) -> Any:
    """The padded start array: NaN on obstacles and the border, 0 on the outlet layer of
    the phase, inf on its other voxels."""
    n = tuple(int(s) for s in m.shape)
    d = xp.full(tuple(s + 2 for s in n), xp.nan, dtype=dtype)
    xp.copyto(d[1:-1, 1:-1, 1:-1], dtype.type(np.inf), where=m)
    xp.copyto(d[n[0], 1:-1, 1:-1], dtype.type(0), where=m[-1])  # the outlet layer
    return d


def check_method(method: Any) -> str:
    """A valid ``method=`` of :func:`geodesic_tortuosity`."""
    if not isinstance(method, str) or method not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(map(repr, METHODS))}; "
                                f"got {method!r}")
    return method


def resolve_method(be: Backend, method: str) -> str:
    """What ``method="auto"`` stands for on ``be``: ``"rounds"`` where the backend launches
    kernels, else ``"boxes"``."""
    method = check_method(method)
    if method == "auto":
        return "rounds" if be.runs_kernels else "boxes"
    return method


def _geodesic_padded(be: Backend, m: Any, dtype: Any, method: str = "auto") -> Any:
    """Distances to the last layer along axis 0 of the bool mask ``m`` (transport axis first).

    Returns the padded array d of shape m.shape + 2: NaN on obstacles and the border, inf
    on unreachable phase voxels, the graph distance (voxel units) elsewhere.  Method
    ``"rounds"`` runs :func:`_geodesic_padded_rounds`, the same label correction as whole
    sweeps of the CUDA kernel (its twin where the backend launches no kernels), without
    the per-plane boxes.
    """
    xp = be.xp
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise InvalidInputError(f"dtype must be float32 or float64, got {dtype}")
    if resolve_method(be, method) == "rounds":
        sweep = _cuda_sweep(be) if be.runs_kernels else partial(_sweep_twin, xp)
        return _geodesic_padded_rounds(be, m, dtype, sweep)
    n = tuple(int(s) for s in m.shape)
    shape = tuple(s + 2 for s in n)
    d = _initial_distances(xp, m, dtype)
    strides = (shape[1] * shape[2], shape[2], 1)
    s2, s3 = dtype.type(_SQRT2), dtype.type(_SQRT3)

    # lo[a][k, dir, q], hi[...]: box (half-open, padded coordinates along axis q) of the
    # voxels of plane k (along axis a) changed since sweep (a, dir) last used the plane.
    lo = [np.full((shape[a], 2, 3), _EMPTY, np.int64) for a in range(3)]
    hi = [np.full((shape[a], 2, 3), -_EMPTY, np.int64) for a in range(3)]
    for a in range(3):
        for q in range(3):
            lo[a][1:-1, :, q] = 1
            hi[a][1:-1, :, q] = shape[q] - 1
    volume = shape[0] * shape[1] * shape[2]
    threshold = max(_SPARSE_FRACTION * m.size, _SPARSE_MIN)
    transposed = None
    in_copy = False
    previous = math.inf
    while True:
        busy = False
        count = 0
        collect = previous < _COLLECT_FACTOR * threshold
        changed: list[Any] = []
        for a, sgn in _SWEEPS:
            di = 0 if sgn > 0 else 1
            b, c = _OTHERS[a]
            la, ha = lo[a], hi[a]
            used = slice(1, shape[a] - 2) if sgn > 0 else slice(2, shape[a] - 1)
            area = ((ha[used, di, b] - la[used, di, b]).clip(0)
                    * (ha[used, di, c] - la[used, di, c]).clip(0))
            if not area.any():
                continue
            if a == 2 and dtype.itemsize == 4 and area.sum() > _TRANSPOSE_FRACTION * volume:
                if transposed is None:
                    transposed = xp.empty((shape[2], shape[0], shape[1]), dtype=dtype)
                if not in_copy:  # the x-sweeps are consecutive: one copy serves both
                    _copy_blocked(transposed, d.transpose(2, 0, 1), 1, xp)
                    in_copy = True
                planes = transposed
            else:
                if in_copy:
                    _copy_blocked(d, transposed.transpose(1, 2, 0), 0, xp)
                    in_copy = False
                planes = xp.moveaxis(d, a, 0)
            ks = range(2, shape[a] - 1) if sgn > 0 else range(shape[a] - 3, 0, -1)
            for k in ks:
                kp = k - sgn
                lb, lc = int(la[kp, di, b]), int(la[kp, di, c])
                hb, hc = int(ha[kp, di, b]), int(ha[kp, di, c])
                if hb <= lb or hc <= lc:
                    continue
                la[kp, di] = _EMPTY
                ha[kp, di] = -_EMPTY
                busy = True
                r0, r1 = max(lb - 1, 1), min(hb + 1, shape[b] - 1)
                c0, c1 = max(lc - 1, 1), min(hc + 1, shape[c] - 1)
                lt = _relax_plane(xp, planes[kp], planes[k], r0, r1, c0, c1, s2, s3)
                if lt is None:
                    continue
                if collect:
                    ii, jj = xp.nonzero(lt)
                    count += int(ii.size)
                    changed.append(k * strides[a] + (ii + r0) * strides[b]
                                   + (jj + c0) * strides[c])
                    if count > threshold:
                        collect = False
                        changed = []
                else:
                    count += int(xp.count_nonzero(lt))
                rows = np.flatnonzero(be.to_host(lt.any(axis=1)))
                cols = np.flatnonzero(be.to_host(lt.any(axis=0)))
                rr0, rr1 = int(rows[0]) + r0, int(rows[-1]) + r0 + 1
                cc0, cc1 = int(cols[0]) + c0, int(cols[-1]) + c0 + 1
                _grow(la[k], ha[k], b, rr0, rr1, c, cc0, cc1)
                _grow(lo[b][rr0:rr1], hi[b][rr0:rr1], a, k, k + 1, c, cc0, cc1)
                _grow(lo[c][cc0:cc1], hi[c][cc0:cc1], a, k, k + 1, b, rr0, rr1)
        if in_copy:
            _copy_blocked(d, transposed.transpose(1, 2, 0), 0, xp)
            in_copy = False
        if not busy:
            break
        if collect and count <= threshold:
            frontier = (xp.unique(xp.concatenate(changed)) if changed
                        else xp.zeros(0, dtype=xp.int64))
            _sparse_bellman_ford(be, d, frontier)
            break
        previous = count
    return d


def sweep_args(d: Any, axis: int, sign: int, first: int, count: int,
               changed: Any) -> tuple[Any, ...]:
    """Arguments of ``cba_geodesic_sweep_f32`` / ``_f64`` (kernels/geodesic.cu) for the
    ``count`` planes of a sweep from plane ``first`` on; shared by the CuPy launch and the
    host-compiled kernel test."""
    return (d, *(np.int32(s) for s in d.shape), np.int32(axis), np.int32(sign),
            np.int32(first), np.int32(count), changed)


def sweep_launches(n: int, sign: int, per_launch: int) -> list[tuple[int, int]]:
    """(first plane, number of planes) of each launch of a sweep in direction ``sign`` along
    an axis of padded length ``n``: planes 2 .. n-2 (sign +1) or n-3 .. 1 (sign -1)."""
    total = n - 3
    first = 2 if sign > 0 else n - 3
    per = max(1, int(per_launch))
    return [(first + i * sign, min(per, total - i)) for i in range(0, total, per)]


def _sweep_twin(xp: Any, d: Any, axis: int, sign: int, changed: Any) -> None:
    """NumPy twin of the CUDA sweep (kernels/geodesic.cu): relax every interior plane along
    ``axis``, in direction ``sign``, from its 9 neighbours in the previous plane; add the
    number of lowered voxels to ``changed[0]``."""
    shape = d.shape
    planes = xp.moveaxis(d, axis, 0)
    b, c = _OTHERS[axis]
    s2, s3 = d.dtype.type(_SQRT2), d.dtype.type(_SQRT3)
    ks = range(2, shape[axis] - 1) if sign > 0 else range(shape[axis] - 3, 0, -1)
    for k in ks:
        lt = _relax_plane(xp, planes[k - sign], planes[k], 1, shape[b] - 1, 1, shape[c] - 1,
                          s2, s3, check=False)
        changed[0] += xp.count_nonzero(lt)


def sweep_all_args(d: Any, axis: int, sign: int, changed: Any, bar: Any) -> tuple[Any, ...]:
    """Arguments of ``cba_geodesic_sweep_all_f32`` / ``_f64`` (the whole sweep in one
    launch)."""
    return (d, *(np.int32(s) for s in d.shape), np.int32(axis), np.int32(sign), changed, bar)


def _cuda_sweep(be: Backend, per_launch: int | None = None) -> Any:
    """The sweep as launches of kernels/geodesic.cu. Default: one launch of the persistent
    kernel ``cba_geodesic_sweep_all_*`` per sweep (all planes, in order, with a grid-wide
    barrier between planes: at most :meth:`~cbagpu.backend.base.Backend.resident_blocks`
    blocks); with ``per_launch``, launches of ``cba_geodesic_sweep_*`` of that many planes
    each (one thread per column of the plane)."""
    bar = be.xp.zeros(2, dtype=be.xp.uint32)

    def sweep_all(d: Any, axis: int, sign: int, changed: Any) -> None:
        name = ("cba_geodesic_sweep_all_f64" if d.dtype == np.float64
                else "cba_geodesic_sweep_all_f32")
        b, c = _OTHERS[axis]
        columns = (d.shape[b] - 2) * (d.shape[c] - 2)
        blocks = launch_blocks(columns, _THREADS, be.resident_blocks(_THREADS))
        be.kernel("geodesic.cu", name)((blocks,), (_THREADS,),
                                       sweep_all_args(d, axis, sign, changed, bar))

    def sweep(d: Any, axis: int, sign: int, changed: Any) -> None:
        name = "cba_geodesic_sweep_f64" if d.dtype == np.float64 else "cba_geodesic_sweep_f32"
        fn = be.kernel("geodesic.cu", name)
        b, c = _OTHERS[axis]
        columns = (d.shape[b] - 2) * (d.shape[c] - 2)
        blocks = launch_blocks(columns, _THREADS, _MAX_BLOCKS)
        for first, count in sweep_launches(d.shape[axis], sign, per_launch):
            fn((blocks,), (_THREADS,), sweep_args(d, axis, sign, first, count, changed))

    return sweep_all if per_launch is None else sweep


def _geodesic_padded_rounds(be: Backend, m: Any, dtype: Any, sweep: Any) -> Any:
    """The label correction of :func:`_geodesic_padded` as whole sweeps, for the GPU: rounds
    of the six sweeps ``sweep(d, axis, sign, changed)`` (the CUDA kernel, or its twin) until
    a round lowers no voxel. No per-plane bookkeeping and no sparse phase: one read-back per
    round (the count of lowered voxels). Every stored value is the length of a real path and
    a clean round means every voxel satisfies the Bellman equations for all its 26
    neighbours (each edge direction belongs to two of the six sweeps), so the result is the
    exact graph distance, whatever the order of the relaxations (tests: Dijkstra)."""
    xp = be.xp
    d = _initial_distances(xp, m, dtype)
    changed = xp.zeros(1, dtype=xp.uint64)
    while True:
        changed[...] = 0
        for a, sgn in _SWEEPS:
            sweep(d, a, sgn, changed)
        if int(changed[0]) == 0:
            return d


def _grow(lo: np.ndarray, hi: np.ndarray, p: int, p0: int, p1: int,
          q: int, q0: int, q1: int) -> None:
    """Grow the boxes ``lo``/``hi`` (shape (..., 2 directions, 3 axes), host) to contain
    [p0, p1) along axis p and [q0, q1) along axis q (empty boxes become exactly that)."""
    for ax, v0, v1 in ((p, p0, p1), (q, q0, q1)):
        view = lo[..., ax]
        np.minimum(view, v0, out=view)
        view = hi[..., ax]
        np.maximum(view, v1, out=view)
