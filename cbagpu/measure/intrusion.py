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
  (non-increasing; the per-radius intrusion can differ on a tiny set of voxels).
* ``value[0]`` (r = 0) is the fraction of the phase connected to the inlet at all. When
  less than half of the phase is ever intruded (for instance a phase that does not touch
  the inlet, where every value is 0), ``r_min = 0`` and ``beta = 0``: there is no radius
  at which half of the phase is reachable. It is not an error.

Algorithm
---------
One EDT gives the eroded sets E_i (:func:`cbagpu.measure.cpsd._levels`). Going down the
grid, the components of E_i that touch the inlet (``Backend.label``, faces) give the
nested sets K_i and the map B(x) = 1 + the largest i with x in K_i. The dilations of all
K_i are then one call of :func:`cbagpu.measure.cpsd.cover_index` on B, the exact ball-cover
transform also used for the CPSD.

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
from cbagpu.measure.cpsd import (
    CPSD,
    _curve,
    _levels,
    _prepare,
    cover_index,
    crossing,
    radius_grid,
)

__all__ = ["Constrictivity", "Intrusion", "constrictivity", "intrusion"]

_AXES = {"z": 0, "y": 1, "x": 2, 0: 0, 1: 1, 2: 2}


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


def _inlet(axis: int | str, side: str) -> tuple[int, tuple[Any, ...]]:
    if axis not in _AXES:
        raise ValueError(f"axis must be 0, 1, 2 or 'z', 'y', 'x', got {axis!r}")
    if side not in ("low", "high"):
        raise ValueError(f"side must be 'low' or 'high', got {side!r}")
    ax = _AXES[axis]
    sl: list[Any] = [slice(None)] * 3
    sl[ax] = 0 if side == "low" else -1
    return ax, tuple(sl)


def bottleneck_levels(be: Backend, F: Any, inlet: tuple[Any, ...]) -> Any:
    """B(x) = 1 + the largest i such that x is in a face-connected component of
    E_i = {F > i} that meets the ``inlet`` slice (0 if none), same dtype as ``F``."""
    xp = be.xp
    B = xp.zeros_like(F)
    top = int(xp.max(F[inlet])) if F[inlet].size else 0  # no level above reaches the inlet
    for i in range(top - 1, -1, -1):
        E = F > i
        lab, n = be.label(E, 1)
        hit = xp.unique(lab[inlet])
        lut = xp.zeros(n + 1, dtype=bool)
        lut[hit] = True
        lut[0] = False
        K = lut[lab]
        del lab
        B[K & (B == 0)] = i + 1
    return B


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
    inlet: tuple[Any, ...],
) -> Intrusion:
    B = bottleneck_levels(be, F, inlet)
    C = cover_index(be, B, mg)
    value = _curve(be, C, m, len(mg), inv)
    rm, rg = crossing(grid, value)
    return Intrusion(grid * voxel_size, value, rm * voxel_size, rg * voxel_size, ax, side)


def intrusion(
    mask: Any,
    voxel_size: float,
    axis: int | str = 0,
    side: str = "low",
    backend: str | Backend = "auto",
    radii: Any = None,
) -> Intrusion:
    """Simulated intrusion of the phase ``mask`` from one face (NOTES §6) and r_min.

    Parameters
    ----------
    mask : array (bool, (z, y, x)), NumPy or CuPy
    voxel_size : float
        Voxel edge length in nm.
    axis : 0, 1, 2 or "z", "y", "x"
        Axis normal to the inlet face.
    side : "low" | "high"
        Inlet at the first or the last slice along ``axis``.
    backend : "auto" | "numpy" | "cupy" | Backend
    radii : array-like, optional
        Radius grid in nm (0 always added); default every integer number of voxels.

    Returns
    -------
    Intrusion
        See the module docstring for the conventions; ``r_min = 0`` (not an error) when
        less than half of the phase can be reached, e.g. when it does not touch the inlet.

    References
    ----------
    Paper Section 3.3; Neumann et al. (2019); Münch & Holzer (2008).
    """
    if not voxel_size > 0:
        raise ValueError("voxel_size must be > 0")
    ax, inlet = _inlet(axis, side)
    be, m = _prepare(mask, backend)
    radii_vox = None if radii is None else np.asarray(radii, np.float64) / voxel_size
    if not bool(m.any()) or bool(m.all()):
        grid = radius_grid(0, radii_vox) if radii_vox is not None else np.zeros(1)
        fill = math.nan if not bool(m.any()) else 1.0
        r = math.nan if not bool(m.any()) else math.inf
        return Intrusion(grid * voxel_size, np.full(len(grid), fill), r, r, ax, side)
    F, grid, mg, inv = _levels(be, m, radii_vox)
    return _intrusion_from(be, m, F, grid, mg, inv, voxel_size, ax, side, inlet)


def constrictivity(
    mask: Any,
    voxel_size: float,
    axis: int | str = 0,
    side: str = "low",
    backend: str | Backend = "auto",
    radii: Any = None,
) -> Constrictivity:
    """Constrictivity ``beta = (r_min / r_max)^2`` of the phase ``mask`` (Section 3.3).

    ``r_max = CPSD^{-1}(0.5)`` (:func:`cbagpu.measure.cpsd.cpsd`) and ``r_min`` from the
    intrusion through the inlet face (:func:`intrusion`), both from one EDT and on the
    same radius grid. Since the intruded set is contained in the opening at every radius,
    ``r_min <= r_max`` and beta lies in [0, 1]; beta = 0 when less than half of the phase
    is reachable from the inlet.

    References
    ----------
    Paper Section 3.3 (beta = r_min^2 / r_max^2); Neumann et al. (2019).
    """
    if not voxel_size > 0:
        raise ValueError("voxel_size must be > 0")
    ax, inlet = _inlet(axis, side)
    be, m = _prepare(mask, backend)
    radii_vox = None if radii is None else np.asarray(radii, np.float64) / voxel_size
    if not bool(m.any()) or bool(m.all()):
        from cbagpu.measure.cpsd import cpsd as _cpsd

        c = _cpsd(m, voxel_size, be, radii)
        i = intrusion(m, voxel_size, ax, side, be, radii)
        return Constrictivity(i.r_min, c.r_max, math.nan, c, i)
    F, grid, mg, inv = _levels(be, m, radii_vox)
    CT = cover_index(be, F, mg)
    value = _curve(be, CT, m, len(mg), inv)
    del CT
    rm, rg = crossing(grid, value)
    c = CPSD(grid * voxel_size, value, rm * voxel_size, rg * voxel_size)
    i = _intrusion_from(be, m, F, grid, mg, inv, voxel_size, ax, side, inlet)
    beta = (i.r_min / c.r_max) ** 2 if c.r_max > 0 else math.nan
    return Constrictivity(i.r_min, c.r_max, float(beta), c, i)
