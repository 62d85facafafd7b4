"""Fused CPU kernels of the conduction operator (Numba, parallel over axis 0).

Each function computes exactly what its array-module twin in
:mod:`cbagpu.transport.operator` computes (``Level.apply``, ``Level.gauss_seidel``,
``Level.residual_restricted``, ``Level.add_prolonged``); the twins are the reference in
``tests/test_transport.py``.  Fusing the stencil into one pass per sweep is what makes the
CPU solver memory-bound instead of temporary-bound (one NumPy expression per term costs
about ten passes over the data).

Storage conventions are the ones of :class:`~cbagpu.transport.operator.Level`:
``gk[..., i, ...]`` is the conductance of the face between ``i`` and ``i + 1`` along
axis ``k`` (zero in the last layer), ``g_in``/``g_out`` the Dirichlet conductances of the
first/last layer along axis 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from cbagpu.backend.numba_variants import parallel_and_serial


@njit(inline="always", cache=True)
def _add(s, d, g, z):  # noqa: ANN001, ANN202
    for k in range(s.shape[0]):
        s[k] += g[k] * z[k]
        d[k] += g[k]


@njit(inline="always", cache=True)
def _row(g0, g1, g2, gin, gout, z, i, j, s, d):  # noqa: ANN001, ANN202
    """Fill ``s`` with ``sum_j g_ij z_j`` and ``d`` with the diagonal along row (i, j)."""
    n0, n1, n2 = z.shape
    zr = z[i, j]
    gr = g2[i, j]
    for k in range(n2):
        s[k] = 0.0
        d[k] = 0.0
    for k in range(n2 - 1):
        s[k] += gr[k] * zr[k + 1]
        d[k] += gr[k]
    for k in range(1, n2):
        s[k] += gr[k - 1] * zr[k - 1]
        d[k] += gr[k - 1]
    if j > 0:
        _add(s, d, g1[i, j - 1], z[i, j - 1])
    if j < n1 - 1:
        _add(s, d, g1[i, j], z[i, j + 1])
    if i > 0:
        _add(s, d, g0[i - 1, j], z[i - 1, j])
    else:
        for k in range(n2):
            d[k] += gin[j, k]
    if i < n0 - 1:
        _add(s, d, g0[i, j], z[i + 1, j])
    else:
        for k in range(n2):
            d[k] += gout[j, k]


def _apply_body(g0, g1, g2, gin, gout, z, out):  # noqa: ANN001, ANN201
    """``out = A z``."""
    n0, n1, n2 = z.shape
    for i in prange(n0):
        s = np.empty(n2, z.dtype)
        d = np.empty(n2, z.dtype)
        for j in range(n1):
            _row(g0, g1, g2, gin, gout, z, i, j, s, d)
            zr = z[i, j]
            o = out[i, j]
            for k in range(n2):
                o[k] = d[k] * zr[k] - s[k]
    return out


def _gauss_seidel_body(g0, g1, g2, gin, gout, r, z, color):  # noqa: ANN001, ANN201
    """One half-sweep of red-black Gauss-Seidel for ``A z = r``, in place: every voxel
    with ``(i + j + k) % 2 == color`` and a non-zero diagonal gets ``(r + s) / D``.

    The sums are formed for the whole row (contiguous, vectorised loops) before any
    voxel of the row changes; only voxels of the other colour enter them."""
    n0, n1, n2 = z.shape
    for i in prange(n0):
        s = np.empty(n2, z.dtype)
        d = np.empty(n2, z.dtype)
        for j in range(n1):
            _row(g0, g1, g2, gin, gout, z, i, j, s, d)
            zr = z[i, j]
            rr = r[i, j]
            for k in range((i + j + color) % 2, n2, 2):
                if d[k] > 0:
                    zr[k] = (rr[k] + s[k]) / d[k]
    return z


def _residual_restricted_body(g0, g1, g2, gin, gout, r, z, rc):  # noqa: ANN001, ANN201
    """``rc = R (r - A z)``: residuals summed over 2x2x2 blocks."""
    n0, n1, n2 = z.shape
    c0 = rc.shape[0]
    for ic in prange(c0):
        s = np.empty(n2, z.dtype)
        d = np.empty(n2, z.dtype)
        rc[ic] = 0.0
        for i in range(2 * ic, min(2 * ic + 2, n0)):
            for j in range(n1):
                _row(g0, g1, g2, gin, gout, z, i, j, s, d)
                zr = z[i, j]
                rr = r[i, j]
                out = rc[ic, j // 2]
                for k in range(n2):
                    out[k // 2] += rr[k] - (d[k] * zr[k] - s[k])
    return rc


def _add_prolonged_body(z, ec):  # noqa: ANN001, ANN201
    """``z += P ec``: every voxel gets the value of its 2x2x2 parent."""
    n0, n1, n2 = z.shape
    for i in prange(n0):
        for j in range(n1):
            e = ec[i // 2, j // 2]
            zr = z[i, j]
            for k in range(n2):
                zr[k] += e[k // 2]
    return z




apply_par, apply_ser = parallel_and_serial(_apply_body)
gauss_seidel_par, gauss_seidel_ser = parallel_and_serial(_gauss_seidel_body)
residual_restricted_par, residual_restricted_ser = parallel_and_serial(_residual_restricted_body)
add_prolonged_par, add_prolonged_ser = parallel_and_serial(_add_prolonged_body)

#: Grids of at least this many voxels use the parallel kernels.
PARALLEL_MIN_VOXELS = 1 << 18


def _pick(par, ser, n):  # noqa: ANN001, ANN202
    return par if n >= PARALLEL_MIN_VOXELS else ser


def apply(g0, g1, g2, gin, gout, z, out):  # noqa: ANN001, ANN201
    """``out = A z``."""
    return _pick(apply_par, apply_ser, z.size)(g0, g1, g2, gin, gout, z, out)


def gauss_seidel(g0, g1, g2, gin, gout, r, z, color):  # noqa: ANN001, ANN201
    """Half a red-black Gauss-Seidel sweep in place (see ``_gauss_seidel_body``)."""
    return _pick(gauss_seidel_par, gauss_seidel_ser, z.size)(g0, g1, g2, gin, gout, r, z,
                                                             color)


def residual_restricted(g0, g1, g2, gin, gout, r, z, rc):  # noqa: ANN001, ANN201
    """``rc = R (r - A z)``."""
    return _pick(residual_restricted_par, residual_restricted_ser, z.size)(
        g0, g1, g2, gin, gout, r, z, rc)


def add_prolonged(z, ec):  # noqa: ANN001, ANN201
    """``z += P ec``."""
    return _pick(add_prolonged_par, add_prolonged_ser, z.size)(z, ec)


def warm_up() -> None:
    """Compile every variant the solver uses (cached on disk by Numba afterwards)."""
    g = np.ones((2, 2, 2), np.float32)
    f = np.ones((2, 2), np.float32)
    z = np.ones((2, 2, 2), np.float32)
    e = np.ones((1, 1, 1), np.float32)
    for ap, gs, rr, ap2 in ((apply_par, gauss_seidel_par, residual_restricted_par,
                             add_prolonged_par),
                            (apply_ser, gauss_seidel_ser, residual_restricted_ser,
                             add_prolonged_ser)):
        ap(g, g, g, f, f, z.astype(np.float64), np.empty_like(z))
        ap(g, g, g, f, f, z, np.empty_like(z))
        gs(g, g, g, f, f, z, z.copy(), 0)
        rr(g, g, g, f, f, z, z, e.copy())
        ap2(z.copy(), e)


class NumbaKernels:
    """The kernels above behind the interface of ``Level.kern``."""

    name = "numba"

    def apply(self, lev, z, out):  # noqa: ANN001, ANN201, D102
        return apply(*lev.g, lev.g_in, lev.g_out, z, out)

    def gauss_seidel(self, lev, r, z, color):  # noqa: ANN001, ANN201, D102
        return gauss_seidel(*lev.g, lev.g_in, lev.g_out, r, z, color)

    def residual_restricted(self, lev, r, z, rc):  # noqa: ANN001, ANN201, D102
        return residual_restricted(*lev.g, lev.g_in, lev.g_out, r, z, rc)

    def add_prolonged(self, lev, z, ec):  # noqa: ANN001, ANN201, D102
        return add_prolonged(z, ec)
