"""All descriptors of the phases of a label image in one call (paper Section 3.3, Figures
5-7): volume fraction, intrinsic volume densities, CPSD and r_max, intrusion and r_min,
constrictivity, mean geodesic tortuosity, two-point coverage."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cbagpu._deprecation import moved
from cbagpu.backend import Backend, get_backend
from cbagpu.errors import InvalidInputError
from cbagpu.measure.covariance import two_point_coverage
from cbagpu.measure.geodesic import check_method as check_geodesic_method
from cbagpu.measure.geodesic import geodesic_tortuosity
from cbagpu.measure.intrusion import check_method as check_intrusion_method
from cbagpu.measure.intrusion import constrictivity
from cbagpu.measure.minkowski import check_connectivity as check_minkowski_connectivity
from cbagpu.measure.minkowski import check_euler_method, intrinsic_volumes
from cbagpu.measure.phases import PHASES, phase_mask
from cbagpu.validation import check_axis, check_labels, check_mask_3d, check_voxel_size

DEFAULT_PHASES = ("solid", "pore", "graphite")

#: The one window convention of :func:`describe` (issue 18). The image samples space at the
#: voxel centres i*s (NOTES §1), so the region it observes is the box they span, of edge
#: (n-1) s per axis. Every density refers to that box: ``volume_fraction`` is the fraction
#: of its n^3 lattice points (the voxels) in the phase -- the point-count estimator of the
#: box's volume fraction -- and S_V, M_V, chi_V are the edge-corrected totals inside it
#: (2x2x2 cells between the centres, :mod:`cbagpu.measure.minkowski`) over its volume
#: ``(nz-1)(ny-1)(nx-1) s^3``. (The minkowski module's own V_V weights the box's face,
#: edge and corner points by 1/2, 1/4, 1/8; both are unbiased point counts of the same
#: box and differ by less than the share of the boundary points.)
WINDOW_CONVENTION = (
    "densities refer to the box spanned by the voxel centres, (n-1)*s per axis: "
    "volume_fraction is the fraction of its n^3 lattice points (the voxels) in the phase; "
    "S_V, M_V, chi_V are the edge-corrected totals inside it divided by its volume "
    "(nz-1)(ny-1)(nx-1)*s^3"
)


def _finite(v: float) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


@dataclass(frozen=True)
class PhaseDescription:
    """Every descriptor of one phase (nm units)."""

    phase: str
    volume_fraction: float
    S_V: float  # noqa: N815 - the paper's symbols
    M_V: float  # noqa: N815
    chi_V: float  # noqa: N815
    r_max: float
    r_min: float
    constrictivity: float
    geodesic_tortuosity: float
    fraction_connected: float
    cpsd_r: np.ndarray
    cpsd_value: np.ndarray
    intrusion_r: np.ndarray
    intrusion_value: np.ndarray
    covariance_h: np.ndarray
    covariance_value: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def covariance_centred(self) -> np.ndarray:
        """C(h) - V^2 (Figure 7)."""
        return self.covariance_value - self.volume_fraction**2

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become null)."""
        return {
            "volume_fraction": float(self.volume_fraction),
            "S_V": float(self.S_V),
            "M_V": float(self.M_V),
            "chi_V": float(self.chi_V),
            "r_max": _finite(self.r_max),
            "r_min": _finite(self.r_min),
            "constrictivity": _finite(self.constrictivity),
            "geodesic_tortuosity": _finite(self.geodesic_tortuosity),
            "fraction_connected": float(self.fraction_connected),
            "cpsd": {"r": self.cpsd_r.tolist(), "value": self.cpsd_value.tolist()},
            "intrusion": {"r": self.intrusion_r.tolist(), "value": self.intrusion_value.tolist()},
            "covariance": {
                "h": self.covariance_h.tolist(),
                "value": self.covariance_value.tolist(),
                "centred": self.covariance_centred.tolist(),
            },
            "seconds": dict(self.seconds),
        }


@dataclass(frozen=True)
class Description:
    """Descriptors of several phases of one image."""

    voxel_size: float
    axis: int
    shape: tuple[int, int, int]
    phases: dict[str, PhaseDescription]
    backend: str
    connectivity: int = 26
    euler: str = "direct"

    @property
    def window_volume(self) -> float:
        """Volume [nm^3] of the window every density refers to: the box spanned by the
        voxel centres, ``(nz-1)(ny-1)(nx-1) s^3`` (see :data:`WINDOW_CONVENTION`)."""
        return float(np.prod([n - 1 for n in self.shape])) * self.voxel_size**3

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: p.to_dict() for name, p in self.phases.items()}
        out["meta"] = {
            "voxel_size": self.voxel_size,
            "axis": "zyx"[self.axis],
            "shape": list(self.shape),
            "backend": self.backend,
            "units": "nm",
            "connectivity": self.connectivity,
            "euler": self.euler,
            "window": {
                "extent": [(n - 1) * self.voxel_size for n in self.shape],
                "volume": self.window_volume,
                "convention": WINDOW_CONVENTION,
            },
        }
        return out


#: The descriptor groups of :func:`describe_phase`, in the order they are computed.
DESCRIPTOR_STEPS = ("intrinsic_volumes", "cpsd_intrusion", "geodesic", "covariance")


def describe_phase(
    mask: Any,
    voxel_size: float,
    axis: int | str = 0,
    backend: str | Backend = "auto",
    phase: str = "phase",
    max_lag: float | None = None,
    *,
    intrusion_method: str = "auto",
    geodesic_method: str = "auto",
    connectivity: int = 26,
    euler: str = "direct",
    progress: Callable[[str, int, int], None] | None = None,
) -> PhaseDescription:
    """Every descriptor of one binary phase ``mask``.

    ``intrusion_method`` is the ``method=`` of :func:`~cbagpu.measure.intrusion.constrictivity`
    and ``geodesic_method`` that of
    :func:`~cbagpu.measure.geodesic.geodesic_tortuosity` (``"auto"``: each backend's
    default); both are checked before any work. ``progress(descriptor, done, 4)`` is
    called after each of the four descriptor groups (:data:`DESCRIPTOR_STEPS`).
    """
    ax = check_axis(axis)
    voxel_size = check_voxel_size(voxel_size)
    check_intrusion_method(intrusion_method)
    check_geodesic_method(geodesic_method)
    conn = check_minkowski_connectivity(connectivity)
    euler = check_euler_method(euler)
    be = get_backend(backend)
    mask = check_mask_3d(mask, be.xp).astype(bool)
    sec: dict[str, float] = {}

    def timed(key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = fn(mask, voxel_size, *args, backend=be, **kwargs)
        sec[key] = time.perf_counter() - t
        if progress is not None:
            progress(key, len(sec), len(DESCRIPTOR_STEPS))
        return out

    iv = timed("intrinsic_volumes", intrinsic_volumes, connectivity=conn, euler=euler)
    con = timed("cpsd_intrusion", constrictivity, axis=ax, method=intrusion_method)
    geo = timed("geodesic", geodesic_tortuosity, axis=ax, method=geodesic_method)
    cov = timed("covariance", two_point_coverage, max_lag=max_lag)
    return PhaseDescription(
        phase=phase,
        volume_fraction=float(cov.volume_fraction),
        S_V=iv.S_V,
        M_V=iv.M_V,
        chi_V=iv.chi_V,
        r_max=con.r_max,
        r_min=con.r_min,
        constrictivity=con.beta,
        geodesic_tortuosity=geo.tau,
        fraction_connected=geo.fraction_connected,
        cpsd_r=np.asarray(con.cpsd.r),
        cpsd_value=np.asarray(con.cpsd.value),
        intrusion_r=np.asarray(con.intrusion.r),
        intrusion_value=np.asarray(con.intrusion.value),
        covariance_h=np.asarray(cov.h),
        covariance_value=np.asarray(cov.radial),
        seconds=sec,
    )


def check_options(axis: Any, phases: Sequence[str], connectivity: Any,
                  intrusion_method: str, geodesic_method: str, euler: str = "direct"
                  ) -> tuple[int, int]:
    """Check the options of :func:`describe` (and of
    :func:`cbagpu.measure.chunked.describe_chunked`) before any work; returns the axis and
    the connectivity as ints."""
    ax = check_axis(axis)
    check_intrusion_method(intrusion_method)
    check_geodesic_method(geodesic_method)
    conn = check_minkowski_connectivity(connectivity)
    check_euler_method(euler)
    for p in phases:
        if p not in PHASES:
            raise InvalidInputError(f"unknown phase {p!r}; choose among {', '.join(PHASES)}")
    return ax, conn


def describe(
    labels: Any,
    voxel_size: float,
    phases: Sequence[str] = DEFAULT_PHASES,
    axis: int | str = 0,
    backend: str | Backend = "auto",
    max_lag: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    *,
    intrusion_method: str = "auto",
    geodesic_method: str = "auto",
    connectivity: int = 26,
    euler: str = "direct",
) -> Description:
    """Descriptors of the ``phases`` of a label image (0 pore, 1 CBD, 2 graphite).

    Parameters
    ----------
    labels : uint8 array (z, y, x), NumPy or CuPy.
    voxel_size : float
        Voxel edge length (nm); every result is in nm units.
    phases : names among "solid" (1 and 2), "pore" (0), "graphite" (2), "cbd" (1).
    axis : 0/1/2, -3..-1 or "z"/"y"/"x"; inlet face (low side) of the intrusion and the
        geodesic tortuosity.
    backend : "auto" | "numpy" | "cupy" | Backend
    max_lag : float, optional
        Largest lag (nm) of the two-point coverage.
    progress : callable, optional
        Called as ``progress("<phase>: <descriptor>", done, total)`` after each descriptor
        group of each phase (``total`` = 4 x the number of phases; the groups are
        :data:`DESCRIPTOR_STEPS`).
    intrusion_method, geodesic_method : str
        Algorithms of the intrusion (``"auto"``, ``"flood"``, ``"sweeps"``, ``"labels"``)
        and of the geodesic distances (``"auto"``, ``"rounds"``, ``"boxes"``); ``"auto"``
        picks each backend's default (see :func:`describe_phase`).
    connectivity : 26 (default) or 6
        Foreground adjacency of M_V and chi_V (:func:`~cbagpu.measure.minkowski.intrinsic_volumes`):
        26 for thin platelets (the paper's graphite), 6 for unions of thick convex grains,
        where it has about a third of 26's chi error (README, "Accuracy of the
        descriptors").
    euler : "direct" (default) or "closing"
        Estimator of chi_V (:func:`~cbagpu.measure.minkowski.intrinsic_volumes`):
        "closing" removes the digitisation's spurious tunnels and cavities along the
        intersection curves of grains, with an error that falls with resolution.

    Returns
    -------
    Description

    Notes
    -----
    One window convention for every density (:data:`WINDOW_CONVENTION`): the window is the
    box spanned by the voxel centres, ``(n-1) s`` per axis; the volume fraction counts its
    ``n^3`` lattice points (the voxels), S_V, M_V and chi_V are its edge-corrected totals
    per its volume (recorded as ``meta.window`` in :meth:`Description.to_dict`).
    """
    voxel_size = check_voxel_size(voxel_size)
    ax, _ = check_options(axis, phases, connectivity, intrusion_method, geodesic_method,
                          euler)
    be = get_backend(backend)
    lab = check_labels(labels, be.xp)
    out: dict[str, PhaseDescription] = {}
    steps = len(DESCRIPTOR_STEPS)
    for i, p in enumerate(phases):
        step = None if progress is None else (
            lambda key, done, _n, p=p, i=i: progress(f"{p}: {key}", i * steps + done,
                                                     steps * len(phases)))
        out[p] = describe_phase(phase_mask(lab, p), voxel_size, ax, be, p, max_lag,
                                connectivity=connectivity, euler=euler,
                                intrusion_method=intrusion_method,
                                geodesic_method=geodesic_method, progress=step)
    return Description(float(voxel_size), ax, tuple(int(n) for n in lab.shape), out, be.name,
                       int(connectivity), euler)



# plot_description moved to cbagpu.plots (deprecated alias, kept for one release)
__getattr__ = moved(__name__, "cbagpu.plots", ("plot_description",))
