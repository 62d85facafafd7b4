"""Bottleneck levels of the simulated intrusion as a widest-path problem, solved by directional
sweeps (the GPU's route; paper Section 3.3, NOTES §6).

With F(x) = the number of grid balls that fit at x (0 outside the phase; the eroded sets are
E_i = {F > i}, :func:`cbagpu.measure.cpsd._levels`), the intrusion needs
B(x) = 1 + the largest i such that x lies in a face-connected component of E_i meeting the
inlet layer (0 if none). x is in such a component exactly when some face-connected path
from the inlet to x keeps F > i all along, so B is the *widest-path* (maximin) value

    B(x) = max over face paths P from the inlet to x of min over y in P of F(y),

the fixed point of W(x) = max(W(x), min(F(x), W(y))) over the face neighbours y, from
W = F on the inlet layer and 0 elsewhere. Every stored value is the bottleneck of a real
path (a lower bound of B) and a round of the six directional sweeps (±z, ±y, ±x; each face
direction belongs to one of them) that raises nothing leaves every voxel satisfying the
equation for all six neighbours, which makes W = B.

Each sweep scans every column along its axis once (a 1D recurrence per column, independent
columns): one launch of ``kernels/bottleneck.cu`` on the GPU, one vectorised pass per plane
in the NumPy twin :func:`sweep_twin`; both give the same array after every sweep. This
replaces one connected-component labelling per radius on the GPU (``bottleneck_levels`` in
:mod:`cbagpu.measure.intrusion`, kept as the reference); the CPU runs the Numba flood of
:mod:`cbagpu.measure._intrusion_kernels`.

References
----------
Gräfensteiner et al., Section 3.3 (r_min, constrictivity); Münch & Holzer (2008) (simulated
intrusion); T. C. Hu, *The maximum capacity route problem*, Oper. Res. 9:898-900, 1961
(widest paths).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cbagpu.backend import Backend
from cbagpu.backend.kernels import launch_blocks
from cbagpu.errors import InvalidInputError

__all__ = ["sweep_args", "sweep_twin", "widest_path_levels"]

_OTHERS = {0: (1, 2), 1: (0, 2), 2: (0, 1)}
# From the inlet (first layer along axis 0) outwards first, then across, then back.
_SWEEPS = ((0, +1), (1, +1), (1, -1), (2, +1), (2, -1), (0, -1))
_THREADS = 256
_MAX_BLOCKS = 1 << 16


def sweep_args(F: Any, W: Any, axis: int, sign: int, changed: Any) -> tuple[Any, ...]:
    """Arguments of ``cba_widest_sweep_u8`` / ``_u16`` (kernels/bottleneck.cu), shared by the
    CuPy launch and the host-compiled kernel test."""
    return (F, W, *(np.int32(s) for s in W.shape), np.int32(axis), np.int32(sign), changed)


def sweep_twin(xp: Any, F: Any, W: Any, axis: int, sign: int, changed: Any) -> None:
    """NumPy twin of the CUDA sweep: W[k] = max(W[k], min(F[k], W[k - sign])) for the planes
    k along ``axis`` in order; adds the number of raised voxels to ``changed[0]``."""
    Fa = xp.moveaxis(F, axis, 0)
    Wa = xp.moveaxis(W, axis, 0)
    n = Wa.shape[0]
    ks = range(1, n) if sign > 0 else range(n - 2, -1, -1)
    for k in ks:
        cand = xp.minimum(Fa[k], Wa[k - sign])
        up = cand > Wa[k]
        changed[0] += xp.count_nonzero(up)
        xp.copyto(Wa[k], cand, where=up)


def _cuda_sweep(be: Backend) -> Callable[..., None]:
    """The sweep as one launch of kernels/bottleneck.cu (one thread per column)."""

    def sweep(F: Any, W: Any, axis: int, sign: int, changed: Any) -> None:
        name = "cba_widest_sweep_u16" if W.dtype == np.uint16 else "cba_widest_sweep_u8"
        b, c = _OTHERS[axis]
        columns = W.shape[b] * W.shape[c]
        blocks = launch_blocks(columns, _THREADS, _MAX_BLOCKS)
        be.kernel("bottleneck.cu", name)((blocks,), (_THREADS,),
                                        sweep_args(F, W, axis, sign, changed))

    return sweep


def widest_path_levels(be: Backend, F: Any, axis: int, side: str,
                       sweep: Callable[..., None] | None = None) -> Any:
    """B of :func:`cbagpu.measure.intrusion.bottleneck_levels` by widest-path sweeps.

    ``F``: uint8/uint16 level map (C order) of this backend; ``axis``/``side``: the inlet
    layer (index 0 along ``axis`` for "low", the last for "high"). ``sweep`` defaults to
    the CUDA kernel where ``be.runs_kernels`` and the NumPy twin otherwise. Rounds of six
    sweeps run until one raises nothing (one read-back per round). Returns B, same shape
    and dtype as F.
    """
    xp = be.xp
    if F.dtype not in (np.uint8, np.uint16):
        raise InvalidInputError(f"F must be uint8 or uint16, got {F.dtype}")
    if sweep is None:
        sweep = _cuda_sweep(be) if be.runs_kernels else (lambda *a: sweep_twin(xp, *a))
    Fo = xp.moveaxis(F, axis, 0)
    if side == "high":
        Fo = Fo[::-1]
    Fo = xp.ascontiguousarray(Fo)
    W = xp.zeros_like(Fo)
    W[0] = Fo[0]
    changed = xp.zeros(1, dtype=xp.uint64)
    while True:
        changed[...] = 0
        for a, sgn in _SWEEPS:
            sweep(Fo, W, a, sgn, changed)
        if int(changed[0]) == 0:
            break
    del Fo
    if side == "high":
        W = W[::-1]
    return xp.ascontiguousarray(xp.moveaxis(W, 0, axis))
