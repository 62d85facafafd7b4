"""The transport solver's PCG loop on a backend that launches kernels (float32 fields).

The same iteration as :func:`cbagpu.transport.solver._pcg` (paper Section 3.4; NOTES §7),
arranged for a GPU: no host round trip inside an iteration and few launches
(``kernels/transport.cu``, second half):

* the V-cycle's first red half-sweep is fused with zeroing the correction
  (``cba_gs_zero_first``), the prolongation with the black half-sweep after it
  (``cba_prolong_gs``), and the last red half-sweep of the finest level with the block
  partials of ``r . z`` (``cba_gs_last``); the coarsest level is one dense product
  (``cba_dense_solve``);
* ``beta`` and the search direction in one launch (``cba_pcg_direction``), ``q = A p`` with
  the partials of ``p . q`` in one (``cba_pcg_apply_dot``), ``alpha`` and the updates of
  ``x`` and ``r`` in one (``cba_pcg_update``); the scalars stay on the device, and the
  stall test at the round-off floor runs there too (a stalled iteration changes nothing);
* the V-cycle below the finest level -- every coarser level's smoothing, restriction and
  prolongation, and the dense solve on the coarsest -- is one launch of a persistent kernel
  (``cba_vcycle_coarse``: at most one block per multiprocessor, a grid-wide barrier between
  phases), on the coarse levels packed into one buffer per field (:class:`CoarseLevels`);
* every ``check_every`` iterations one launch computes the cross-section fluxes
  (``cba_slice_flux``) and one read brings them to the host together with the scalars.

One iteration is 9 launches whatever the number of levels (the finest level's five, the
coarse V-cycle, the CG's three) and no read; a check adds one launch and one read. Results
equal the host loop's to float32 round-off (the vector updates round exactly as NumPy's;
the dot products sum in another order): the tests compare the tortuosity factors of both
routes. Each kernel has a NumPy twin here (``*_twin``), checked by
:mod:`cbagpu.backend.registry`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cbagpu.backend import Backend
from cbagpu.backend.kernels import launch_blocks
from cbagpu.transport.operator import Level, flux_spread, slice_fluxes

THREADS = 256
#: Threads per block of the persistent coarse V-cycle (one block per multiprocessor).
COARSE_THREADS = 512
#: Block partials of a reduction (the grid of the launches that produce them).
MAX_PARTS = 1024
S_RZ, S_RZ_OLD, S_PQ, S_RZ0, S_STALL, S_STALL_IT = range(6)
S_COUNT = 8


def _i(*values: int) -> tuple[np.int32, ...]:
    return tuple(np.int32(v) for v in values)


# ------------------------------------------------------------------------- argument builders
def gs_zero_first_args(lev: Level, r: Any, z: Any) -> tuple[Any, ...]:
    """Arguments of ``cba_gs_zero_first``."""
    return (*lev.g, lev.g_in, lev.g_out, r, z, *_i(*z.shape))


def prolong_gs_args(lev: Level, r: Any, z: Any, ec: Any) -> tuple[Any, ...]:
    """Arguments of ``cba_prolong_gs``."""
    return (*lev.g, lev.g_in, lev.g_out, r, z, ec, *_i(*z.shape), *_i(*ec.shape[1:]))


def gs_last_args(lev: Level, r: Any, z: Any, ec: Any, prolonged: bool, part: Any,
                 want_dot: bool) -> tuple[Any, ...]:
    """Arguments of ``cba_gs_last``."""
    return (*lev.g, lev.g_in, lev.g_out, r, z, ec, *_i(*z.shape), *_i(*ec.shape[1:]),
            np.int32(prolonged), part, np.int32(want_dot))


def dense_solve_args(inv: Any, r: Any, z: Any) -> tuple[Any, ...]:
    """Arguments of ``cba_dense_solve``."""
    return (inv, r, z, np.int32(r.size))


def direction_args(z: Any, p: Any, part: Any, nparts: int, s: Any, first: bool
                   ) -> tuple[Any, ...]:
    """Arguments of ``cba_pcg_direction``."""
    return (z, p, part, np.int32(nparts), s, np.int64(z.size), np.int32(first))


def apply_dot_args(lev: Level, p: Any, q: Any, part: Any) -> tuple[Any, ...]:
    """Arguments of ``cba_pcg_apply_dot``."""
    return (*lev.g, lev.g_in, lev.g_out, p, q, part, *_i(*p.shape))


def update_args(x: Any, r: Any, p: Any, q: Any, part: Any, nparts: int, s: Any, it: int,
                floor: float) -> tuple[Any, ...]:
    """Arguments of ``cba_pcg_update``."""
    return (x, r, p, q, part, np.int32(nparts), s, np.int64(x.size), np.int32(it),
            np.float64(floor))


def slice_flux_args(lev: Level, x: Any, out: Any) -> tuple[Any, ...]:
    """Arguments of ``cba_slice_flux``."""
    return (lev.g[0], lev.g_in, lev.g_out, x, out, *_i(*x.shape))


@dataclass(frozen=True)
class CoarseLevels:
    """The levels below the finest, packed for ``cba_vcycle_coarse``: one buffer per field
    (``g``, ``g_in``, ``g_out``, ``r``, ``z``), level ``l`` of it at ``off[2 l]`` (voxels)
    and ``off[2 l + 1]`` (layers), its shape at ``dims[3 l : 3 l + 3]``.

    ``levels`` are the coarse :class:`Level` objects whose arrays are views of the buffers,
    and ``r[l]``, ``z[l]`` the views of level ``l``'s right-hand side and correction.
    """

    levels: list[Level]
    g: tuple[Any, Any, Any]
    g_in: Any
    g_out: Any
    r_buf: Any
    z_buf: Any
    r: list[Any]
    z: list[Any]
    off: Any
    dims: Any
    bar: Any


def pack_coarse_levels(be: Backend, levels: list[Level]) -> CoarseLevels:
    """Copy the float32 coefficients of ``levels`` (the coarse ones) into one buffer per field
    and return the packing; the returned levels are views of it (the originals can go)."""
    xp = be.xp
    sizes = [int(np.prod(lev.shape)) for lev in levels]
    planes = [int(lev.shape[1] * lev.shape[2]) for lev in levels]
    voff = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    poff = np.concatenate([[0], np.cumsum(planes)]).astype(np.int64)
    g = tuple(xp.empty(int(voff[-1]), dtype=np.float32) for _ in range(3))
    g_in = xp.empty(int(poff[-1]), dtype=np.float32)
    g_out = xp.empty(int(poff[-1]), dtype=np.float32)
    r_buf = xp.zeros(int(voff[-1]), dtype=np.float32)
    z_buf = xp.zeros(int(voff[-1]), dtype=np.float32)

    def view(buf: Any, offs: Any, k: int, shape: tuple[int, ...]) -> Any:
        return buf[int(offs[k]):int(offs[k + 1])].reshape(shape)

    packed, rs, zs = [], [], []
    for k, lev in enumerate(levels):
        gv = tuple(view(g[a], voff, k, lev.shape) for a in range(3))
        for a in range(3):
            gv[a][...] = lev.g[a]
        gi = view(g_in, poff, k, lev.shape[1:])
        go = view(g_out, poff, k, lev.shape[1:])
        gi[...] = lev.g_in
        go[...] = lev.g_out
        packed.append(dataclasses.replace(lev, g=gv, g_in=gi, g_out=go))
        rs.append(view(r_buf, voff, k, lev.shape))
        zs.append(view(z_buf, voff, k, lev.shape))
    off = xp.asarray(np.stack([voff[:-1], poff[:-1]], axis=1).ravel())
    dims = xp.asarray(np.array([lev.shape for lev in levels], dtype=np.int32).ravel())
    return CoarseLevels(packed, g, g_in, g_out, r_buf, z_buf, rs, zs, off, dims,
                        xp.zeros(2, dtype=np.uint32))


def vcycle_coarse_args(coarse: CoarseLevels, inv: Any) -> tuple[Any, ...]:
    """Arguments of ``cba_vcycle_coarse`` (its right-hand side: ``coarse.r[0]``; its result:
    ``coarse.z[0]``)."""
    return (*coarse.g, coarse.g_in, coarse.g_out, coarse.r_buf, coarse.z_buf, coarse.off,
            coarse.dims, np.int32(len(coarse.levels)), inv, coarse.bar)


# ------------------------------------------------------------------------------------ twins
def gs_zero_first_twin(lev: Level, r: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``z = 0`` then the red half-sweep (the array-module level, ``kern`` None)."""
    z[...] = 0
    return lev.gauss_seidel(r, z, 0)


def prolong_gs_twin(lev: Level, r: np.ndarray, z: np.ndarray, ec: np.ndarray) -> np.ndarray:
    """``z += P ec`` then the black half-sweep (the kernel leaves the red voxels' ``P ec``
    to ``cba_gs_last``: compare the black voxels, or the pair)."""
    lev.add_prolonged(z, ec)
    return lev.gauss_seidel(r, z, 1)


def gs_last_twin(lev: Level, r: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, float]:
    """The red half-sweep and ``r . z`` (float64)."""
    lev.gauss_seidel(r, z, 0)
    return z, float(np.dot(r.ravel().astype(np.float64), z.ravel().astype(np.float64)))


def dense_solve_twin(inv: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``inv @ r`` in float64, rounded to float32."""
    return (inv @ r.ravel().astype(np.float64)).astype(np.float32).reshape(r.shape)


def vcycle_coarse_twin(levels: list[Level], inv: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``z = B r`` on ``levels`` (the coarse ones, NumPy): the phases of
    ``cba_vcycle_coarse`` by the twins of the finest level's kernels, level by level."""
    lev = levels[0]
    if len(levels) == 1:
        return dense_solve_twin(inv, r)
    z = np.empty_like(r)
    gs_zero_first_twin(lev, r, z)
    lev.gauss_seidel(r, z, 1)
    zc = vcycle_coarse_twin(levels[1:], inv, lev.residual_restricted(r, z))
    prolong_gs_twin(lev, r, z, zc)
    return gs_last_twin(lev, r, z)[0]


def direction_twin(z: np.ndarray, p: np.ndarray, rz: float, rz_old: float) -> np.ndarray:
    """``p = z + beta p`` as the host loop rounds it (``beta`` cast to float32)."""
    beta = rz / rz_old if rz_old else 0.0
    p *= beta
    p += z
    return p


def apply_dot_twin(lev: Level, p: np.ndarray) -> tuple[np.ndarray, float]:
    """``q = A p`` and ``p . q`` (float64)."""
    q = lev.apply(p)
    return q, float(np.dot(p.ravel().astype(np.float64), q.ravel().astype(np.float64)))


def update_twin(x: np.ndarray, r: np.ndarray, p: np.ndarray, q: np.ndarray, rz: float,
                pq: float) -> tuple[np.ndarray, np.ndarray]:
    """``x += alpha p``, ``r -= alpha q`` as the host loop rounds them."""
    alpha = rz / pq
    x += alpha * p
    r += -alpha * q
    return x, r


def slice_flux_twin(lev: Level, x: np.ndarray) -> np.ndarray:
    """The fluxes of :func:`cbagpu.transport.operator.slice_fluxes`."""
    return slice_fluxes(lev, x)


# ------------------------------------------------------------------------------------- loop
class DevicePCG:
    """The fused PCG iteration on ``levels`` (at least two; float32) of backend ``be``.

    The coarse levels of ``levels`` are replaced, in place, by views of their packing
    (:func:`pack_coarse_levels`), so their memory is not held twice.
    """

    def __init__(self, be: Backend, levels: list[Level], coarse_inv: Any) -> None:
        xp = be.xp
        self.be = be
        self.coarse = pack_coarse_levels(be, levels[1:])
        levels[1:] = self.coarse.levels
        self.levels = levels
        self.inv = coarse_inv
        self.fn = {name: be.kernel("transport.cu", name) for name in (
            "cba_gs_zero_first", "cba_gauss_seidel", "cba_residual_restrict", "cba_prolong_gs",
            "cba_gs_last", "cba_vcycle_coarse", "cba_pcg_direction", "cba_pcg_apply_dot",
            "cba_pcg_update", "cba_slice_flux")}
        self.coarse_blocks = launch_blocks(int(np.prod(levels[1].shape)), COARSE_THREADS,
                                           be.resident_blocks(COARSE_THREADS))
        self.part = xp.zeros(MAX_PARTS, dtype=np.float64)
        self.nparts = launch_blocks(int(np.prod(levels[0].shape)), THREADS, MAX_PARTS)

    def _launch(self, name: str, items: int, args: tuple[Any, ...], cap: int = 1 << 20
                ) -> None:
        self.fn[name]((launch_blocks(items, THREADS, cap),), (THREADS,), args)

    def vcycle(self, r: Any, z: Any) -> None:
        """``z = B r`` (one V-cycle) and the partials of ``r . z``: the finest level's five
        launches around one launch of the coarse V-cycle."""
        from cbagpu.transport.cuda_kernels import gauss_seidel_args, restrict_args

        lev = self.levels[0]
        n = int(r.size)
        rc, zc = self.coarse.r[0], self.coarse.z[0]
        self._launch("cba_gs_zero_first", n, gs_zero_first_args(lev, r, z))
        self._launch("cba_gauss_seidel", n, gauss_seidel_args(lev, r, z, 1))
        self._launch("cba_residual_restrict", int(rc.size), restrict_args(lev, r, z, rc))
        self.fn["cba_vcycle_coarse"]((self.coarse_blocks,), (COARSE_THREADS,),
                                     vcycle_coarse_args(self.coarse, self.inv))
        self._launch("cba_prolong_gs", n, prolong_gs_args(lev, r, z, zc))
        self._launch("cba_gs_last", n, gs_last_args(lev, r, z, zc, True, self.part, True),
                     cap=MAX_PARTS)

    def solve(self, x: Any, r: Any, tol: float, max_iter: int,
              progress: Callable[[int, float], None] | None, check_every: int = 2
              ) -> dict[str, Any]:
        """Iterate from ``x`` (potential) and ``r`` (its residual) until the flux spread is
        at most ``tol``, ``max_iter`` iterations, or the round-off floor; ``x`` and ``r``
        are updated in place. Returns the loop's ``info`` (see ``solver._pcg``)."""
        be, xp, fine = self.be, self.be.xp, self.levels[0]
        n0 = fine.shape[0]
        buf = xp.zeros(n0 + 1 + S_COUNT, dtype=np.float64)
        flux_dev, s = buf[: n0 + 1], buf[n0 + 1 :]
        p = xp.zeros_like(r)
        z = xp.empty_like(r)
        floor = (100 * float(np.finfo(np.float32).eps)) ** 2
        n = int(r.size)
        it = 0
        stalled = False
        while True:
            if it % check_every == 0 or it >= max_iter:
                self._launch("cba_slice_flux", n0 + 1, slice_flux_args(fine, x, flux_dev),
                             cap=MAX_PARTS)
                host = be.to_host(buf)  # the one read of the check
                if host[n0 + 1 + S_STALL]:
                    stalled = True
                    it = int(host[n0 + 1 + S_STALL_IT])
                    break
                flux = host[: n0 + 1]
                spread = flux_spread(flux)
                if progress is not None:
                    progress(it, spread)
                if spread <= tol or it >= max_iter:
                    break
            self.vcycle(r, z)
            self._launch("cba_pcg_direction", n,
                         direction_args(z, p, self.part, self.nparts, s, it == 0))
            self._launch("cba_pcg_apply_dot", n, apply_dot_args(fine, p, z, self.part),
                         cap=MAX_PARTS)
            self._launch("cba_pcg_update", n,
                         update_args(x, r, p, z, self.part, self.nparts, s, it, floor))
            it += 1
        return {"iterations": it, "stalled": stalled}
