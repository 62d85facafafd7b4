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
* every ``check_every`` iterations one launch computes the cross-section fluxes
  (``cba_slice_flux``) and one read brings them to the host together with the scalars.

One iteration on ``L`` levels is ``5 L - 1`` launches and no read; a check adds one launch
and one read. Results equal the host loop's to float32 round-off (the vector updates round
exactly as NumPy's; the dot products sum in another order): the tests compare the
tortuosity factors of both routes.

Each kernel has a NumPy twin here (``*_twin``), checked by :mod:`cbagpu.backend.registry`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cbagpu.backend import Backend
from cbagpu.backend.kernels import launch_blocks
from cbagpu.transport.operator import Level, flux_spread, slice_fluxes

THREADS = 256
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
    """The fused PCG iteration on ``levels`` (at least two; float32) of backend ``be``."""

    def __init__(self, be: Backend, levels: list[Level], coarse_inv: Any) -> None:
        xp = be.xp
        self.be = be
        self.levels = levels
        self.inv = coarse_inv
        self.fn = {name: be.kernel("transport.cu", name) for name in (
            "cba_gs_zero_first", "cba_gauss_seidel", "cba_residual_restrict", "cba_prolong_gs",
            "cba_gs_last", "cba_dense_solve", "cba_pcg_direction", "cba_pcg_apply_dot",
            "cba_pcg_update", "cba_slice_flux")}
        # per coarser level: its right-hand side (the restricted residual) and its correction
        self.rc = [xp.empty(lev.shape, dtype=np.float32) for lev in levels[1:]]
        self.zc = [xp.empty(lev.shape, dtype=np.float32) for lev in levels[1:]]
        self.part = xp.zeros(MAX_PARTS, dtype=np.float64)
        self.nparts = launch_blocks(int(np.prod(levels[0].shape)), THREADS, MAX_PARTS)

    def _launch(self, name: str, items: int, args: tuple[Any, ...], cap: int = 1 << 20
                ) -> None:
        self.fn[name]((launch_blocks(items, THREADS, cap),), (THREADS,), args)

    def vcycle(self, k: int, r: Any, z: Any) -> None:
        """``z = B r`` from level ``k``; at the finest level also the partials of ``r . z``."""
        lev = self.levels[k]
        n = int(r.size)
        if k == len(self.levels) - 1:
            self._launch("cba_dense_solve", n, dense_solve_args(self.inv, r, z))
            return
        from cbagpu.transport.cuda_kernels import gauss_seidel_args, restrict_args

        rc, zc = self.rc[k], self.zc[k]
        self._launch("cba_gs_zero_first", n, gs_zero_first_args(lev, r, z))
        self._launch("cba_gauss_seidel", n, gauss_seidel_args(lev, r, z, 1))
        self._launch("cba_residual_restrict", int(rc.size), restrict_args(lev, r, z, rc))
        self.vcycle(k + 1, rc, zc)
        self._launch("cba_prolong_gs", n, prolong_gs_args(lev, r, z, zc))
        self._launch("cba_gs_last", n, gs_last_args(lev, r, z, zc, True, self.part, k == 0),
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
            self.vcycle(0, r, z)
            self._launch("cba_pcg_direction", n,
                         direction_args(z, p, self.part, self.nparts, s, it == 0))
            self._launch("cba_pcg_apply_dot", n, apply_dot_args(fine, p, z, self.part),
                         cap=MAX_PARTS)
            self._launch("cba_pcg_update", n,
                         update_args(x, r, p, z, self.part, self.nparts, s, it, floor))
            it += 1
        return {"iterations": it, "stalled": stalled}
