"""The finite-volume conduction operator of one grid level, applied slab by slab.

The unknowns are the potentials at voxel centres.  Neighbouring voxels ``i`` and ``j``
exchange the flux ``g_ij (phi_i - phi_j)`` through their shared face; the flow axis is
array axis 0, whose first and last layers also exchange flux with the Dirichlet values
(``phi = 1`` before layer 0, ``phi = 0`` after the last layer) through the boundary
conductances ``g_in`` and ``g_out``.  Row ``i`` of the operator is therefore::

    (A phi)_i = sum_j g_ij (phi_i - phi_j) + g_in,i phi_i [layer 0] + g_out,i phi_i [last]

which is symmetric and positive definite on every set of voxels connected to a Dirichlet
face.  Voxels with no conducting face at all have an all-zero row; the solver keeps them
out of the system (their diagonal is zero and every update leaves them at zero).

Storage is ``g0, g1, g2`` (float32, the shape of the level): ``gk[..., i, ...]`` is the
conductance of the face between ``i`` and ``i + 1`` along axis ``k`` (the last layer of
each holds zeros), plus ``g_in`` and ``g_out`` of shape ``shape[1:]``.  The diagonal is
recomputed per slab instead of stored, which keeps the finest level at 12 bytes per voxel
of coefficients.  Every operation runs over slabs of a few layers along axis 0 so that
temporaries stay small (the memory bound of the solver) and hot in cache on the CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

SLAB_VOXELS = 1 << 16  # voxels per slab on the CPU: work buffers stay in cache


@dataclass
class Level:
    """Coefficients of the operator on one grid level (see the module docstring)."""

    xp: Any
    g: tuple[Any, Any, Any]
    g_in: Any
    g_out: Any
    #: Fused kernels (``NumbaKernels`` on the CPU, ``CudaKernels`` on the GPU) used instead
    #: of the array-module code below, which is their reference twin; None = the twin.
    kern: Any = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.g[0].shape)  # type: ignore[return-value]

    @property
    def dtype(self) -> Any:
        return self.g[0].dtype

    def slabs(self, even: bool = False) -> list[tuple[int, int]]:
        """``(a, b)`` layer ranges along axis 0 covering the level (even ``a`` if asked)."""
        n0, n1, n2 = self.shape
        step = max(2, SLAB_VOXELS // max(1, n1 * n2))
        if even:
            step += step % 2
        return [(a, min(a + step, n0)) for a in range(0, n0, step)]

    # -- one slab ----------------------------------------------------------------------
    def _buffers(self, shape: tuple[int, ...], dtype: Any) -> tuple[Any, Any, Any]:
        key = (shape, np.dtype(dtype).str)
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = tuple(self.xp.empty(shape, dtype=dtype) for _ in range(3))
        return cache[key]

    def apply_slab(
        self, z: Any, a: int, b: int, prev: Any = None, want_diag: bool = False
    ) -> tuple[Any, Any]:
        """Rows ``a:b`` of ``A z`` and, when ``want_diag``, of the diagonal of ``A``.

        ``prev`` replaces ``z[a - 1]`` (the old values, for in-place sweeps).  The
        returned arrays are work buffers of this level: use them before the next call.
        """
        xp = self.xp
        n0 = self.shape[0]
        g0, g1, g2 = self.g
        zc = z[a:b]
        out, t, d = self._buffers(zc.shape, zc.dtype)
        out[...] = 0
        if want_diag:
            d[...] = 0
        for ax, g in ((1, g1), (2, g2)):
            lo = (slice(None),) * ax + (slice(None, -1),)
            hi = (slice(None),) * ax + (slice(1, None),)
            gs = g[a:b][lo]
            tl = t[lo]
            xp.subtract(zc[hi], zc[lo], out=tl)
            xp.multiply(tl, gs, out=tl)
            xp.subtract(out[lo], tl, out=out[lo])
            xp.add(out[hi], tl, out=out[hi])
            if want_diag:
                xp.add(d[lo], gs, out=d[lo])
                xp.add(d[hi], gs, out=d[hi])
        # faces along axis 0 inside the slab: between i and i + 1 for i in a .. b-2
        if b - a > 1:
            gs = g0[a : b - 1]
            tl = t[:-1]
            xp.subtract(zc[1:], zc[:-1], out=tl)
            xp.multiply(tl, gs, out=tl)
            xp.subtract(out[:-1], tl, out=out[:-1])
            xp.add(out[1:], tl, out=out[1:])
            if want_diag:
                xp.add(d[:-1], gs, out=d[:-1])
                xp.add(d[1:], gs, out=d[1:])
        if a > 0:  # face between a - 1 and a
            gs = g0[a - 1]
            zp = z[a - 1] if prev is None else prev
            out[0] += gs * (zc[0] - zp)
            if want_diag:
                d[0] += gs
        if b < n0:  # face between b - 1 and b
            gs = g0[b - 1]
            out[-1] += gs * (zc[-1] - z[b])
            if want_diag:
                d[-1] += gs
        if a == 0:
            out[0] += self.g_in * zc[0]
            if want_diag:
                d[0] += self.g_in
        if b == n0:
            out[-1] += self.g_out * zc[-1]
            if want_diag:
                d[-1] += self.g_out
        return out, (d if want_diag else None)

    def diag_slab(self, a: int, b: int) -> Any:
        """Rows ``a:b`` of the diagonal of ``A`` (a new array)."""
        n0 = self.shape[0]
        g0, g1, g2 = self.g
        d = g0[a:b] + g1[a:b] + g2[a:b]
        d[:, 1:] += g1[a:b, :-1]
        d[:, :, 1:] += g2[a:b, :, :-1]
        if a > 0:
            d += g0[a - 1 : b - 1]
        elif b > 1:
            d[1:] += g0[: b - 1]
        if a == 0:
            d[0] += self.g_in
        if b == n0:
            d[-1] += self.g_out
        return d

    # -- whole-level operations ----------------------------------------------------------
    def apply(self, z: Any, out: Any = None) -> Any:
        """``A z`` (into ``out`` when given)."""
        if out is None:
            out = self.xp.empty_like(z)
        if self.kern is not None:
            return self.kern.apply(self, z, out)
        for a, b in self.slabs():
            out[a:b] = self.apply_slab(z, a, b)[0]
        return out

    def diagonal(self) -> Any:
        """The diagonal of ``A`` (a new array)."""
        d = self.xp.empty(self.shape, dtype=self.dtype)
        for a, b in self.slabs():
            d[a:b] = self.diag_slab(a, b)
        return d

    def gauss_seidel(self, r: Any, z: Any, color: int) -> Any:
        """Half a red-black Gauss-Seidel sweep for ``A z = r`` in place: every voxel with
        ``(i + j + k) % 2 == color`` and a non-zero diagonal becomes
        ``z + (r - A z) / D`` (= ``(r + sum_j g_ij z_j) / D``).  Voxels of one colour only
        couple to the other colour, so updating slab by slab in place is exact."""
        if self.kern is not None:
            return self.kern.gauss_seidel(self, r, z, color)
        xp = self.xp
        n0, n1, n2 = self.shape
        jk = xp.arange(n1)[:, None] + xp.arange(n2)[None, :]
        for a, b in self.slabs():
            az, d = self.apply_slab(z, a, b, want_diag=True)
            _invert_diagonal(xp, d, 1.0)
            xp.subtract(r[a:b], az, out=az)
            xp.multiply(az, d, out=az)
            on = ((xp.arange(a, b)[:, None, None] + jk[None]) % 2) == color
            az *= on
            z[a:b] += az
        return z

    def residual_restricted(self, r: Any, z: Any) -> Any:
        """``R (r - A z)``: the residual summed over 2x2x2 blocks (the coarse grid)."""
        xp = self.xp
        n0, n1, n2 = self.shape
        c = coarse_shape(self.shape)
        rc = xp.zeros(c, dtype=self.dtype)
        if self.kern is not None:
            return self.kern.residual_restricted(self, r, z, rc)
        for a, b in self.slabs(even=True):
            az = self.apply_slab(z, a, b)[0]
            xp.subtract(r[a:b], az, out=az)
            rc[a // 2 : (b + 1) // 2] = block_sum(xp, az)
        return rc

    def add_prolonged(self, z: Any, ec: Any) -> Any:
        """``z += P ec``: coarse values copied to their 2x2x2 children."""
        n0, n1, n2 = self.shape
        if self.kern is not None:
            return self.kern.add_prolonged(self, z, ec)
        for a, b in self.slabs(even=True):
            e = ec[a // 2 : (b + 1) // 2]
            e = e.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
            z[a:b] += e[: b - a, :n1, :n2]
        return z


def _invert_diagonal(xp: Any, d: Any, omega: float) -> None:
    """``d <- omega / d`` in place, 0 where ``d == 0`` (voxels outside the system)."""
    nz = d > 0
    d += ~nz
    xp.divide(omega, d, out=d)
    d *= nz


def coarse_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Shape of the next coarser level: every dimension halved, rounded up."""
    return tuple((n + 1) // 2 for n in shape)  # type: ignore[return-value]


def _pad_even(xp: Any, a: Any) -> Any:
    pad = [(0, n % 2) for n in a.shape]
    if any(p[1] for p in pad):
        a = xp.pad(a, pad)
    return a


def block_sum(xp: Any, a: Any) -> Any:
    """Sums over 2x2x2 blocks (odd dimensions padded with zeros)."""
    a = _pad_even(xp, a)
    n0, n1, n2 = a.shape
    return a.reshape(n0 // 2, 2, n1 // 2, 2, n2 // 2, 2).sum(axis=(1, 3, 5))


#: 1.0 makes every coarse operator the Galerkin product P^T A P of the finer one (P the
#: piecewise-constant prolongation), so the V-cycle is symmetric positive definite, as
#: conjugate gradients needs; 0.5 (re-discretisation) saved ~20 % of the iterations on
#: paper realizations but can make the preconditioner indefinite.
COARSE_SCALE = 1.0


def coarsen(level: Level, scale: float | None = None) -> Level:
    """The next coarser level on 2x2x2 aggregates (cell-centred multigrid).

    A coarse face between two aggregates gathers the 2x2 fine faces on their interface and
    the coarse conductance is ``scale`` (default :data:`COARSE_SCALE` = 1) times their sum;
    the boundary conductances gather the same way.  With scale 1 this is exactly the
    Galerkin operator ``P^T A P`` for the piecewise-constant prolongation ``P`` (the faces
    inside an aggregate cancel); scale 1/2 would be the re-discretisation of a uniform
    medium (area x4, length x2).
    """
    xp = level.xp
    h = COARSE_SCALE if scale is None else scale
    g0, g1, g2 = (_pad_even(xp, g) for g in level.g)
    n0, n1, n2 = g0.shape
    c0, c1, c2 = n0 // 2, n1 // 2, n2 // 2
    G0 = h * g0[1::2].reshape(c0, c1, 2, c2, 2).sum(axis=(2, 4))
    G1 = h * g1[:, 1::2].reshape(c0, 2, c1, c2, 2).sum(axis=(1, 4))
    G2 = h * g2[:, :, 1::2].reshape(c0, 2, c1, 2, c2).sum(axis=(1, 3))

    def face(gb: Any) -> Any:
        gb = _pad_even(xp, gb)
        return h * gb.reshape(c1, 2, c2, 2).sum(axis=(1, 3))

    dt = level.dtype
    return Level(
        xp,
        (_c(xp, G0, dt), _c(xp, G1, dt), _c(xp, G2, dt)),
        _c(xp, face(level.g_in), dt),
        _c(xp, face(level.g_out), dt),
        level.kern,
    )


def _c(xp: Any, a: Any, dt: Any) -> Any:
    return xp.ascontiguousarray(a, dtype=dt)



def assemble_dense(level: Level) -> np.ndarray:
    """The operator of a (small) level as a dense float64 host matrix.

    Rows with a zero diagonal (no conducting face) get a one on the diagonal, so the
    matrix is non-singular and those unknowns stay zero.
    """
    g0, g1, g2 = (np.asarray(_host(level.xp, g), dtype=np.float64) for g in level.g)
    shape = g0.shape
    n = int(np.prod(shape))
    idx = np.arange(n).reshape(shape)
    A = np.zeros((n, n))
    for ax, g in ((0, g0), (1, g1), (2, g2)):
        lo = (slice(None),) * ax + (slice(None, -1),)
        hi = (slice(None),) * ax + (slice(1, None),)
        i, j, w = idx[lo].ravel(), idx[hi].ravel(), g[lo].ravel()
        np.add.at(A, (i, i), w)
        np.add.at(A, (j, j), w)
        np.add.at(A, (i, j), -w)
        np.add.at(A, (j, i), -w)
    first = idx[0].ravel()
    last = idx[-1].ravel()
    np.add.at(A, (first, first), np.asarray(_host(level.xp, level.g_in), np.float64).ravel())
    np.add.at(A, (last, last), np.asarray(_host(level.xp, level.g_out), np.float64).ravel())
    d = np.diag(A).copy()
    A[np.diag_indices(n)] = np.where(d > 0, d, 1.0)
    return A


def _host(xp: Any, a: Any) -> Any:
    return a.get() if hasattr(a, "get") else a


def flux_spread(flux: np.ndarray) -> float:
    """Relative spread ``(max - min) / mean`` of the slice fluxes: the convergence measure
    of the transport solves (``inf`` when the mean flux is not positive)."""
    mean = flux.mean()
    return float((flux.max() - flux.min()) / mean) if mean > 0 else math.inf


def slice_fluxes(level: Level, x: Any, backend: Any = None) -> np.ndarray:
    """Flux through the inlet, each face layer along axis 0 and the outlet (float64).

    ``backend`` holds ``level``'s arrays (default: the NumPy backend).
    """
    if backend is None:
        from cbagpu.backend import get_backend

        backend = get_backend("numpy")
    be = backend
    g0 = level.g[0]
    n0 = x.shape[0]
    out = np.empty(n0 + 1)
    out[0] = float((level.g_in * (1 - x[0])).sum(dtype=np.float64))
    step = max(1, be.slab_elements() // max(1, x[0].size))
    for a in range(0, n0 - 1, step):
        b = min(a + step, n0 - 1)
        # rows first, then the layer (a reduction to few values is one block on CuPy)
        f = (g0[a:b] * (x[a:b] - x[a + 1 : b + 1])).sum(axis=2, dtype=np.float64).sum(axis=1)
        out[a + 1 : b + 1] = be.to_host(f)
    out[n0] = float((level.g_out * x[-1]).sum(dtype=np.float64))
    return out
