"""All descriptors of the phases of a label image in one call (paper Section 3.3, Figures
5-7): volume fraction, intrinsic volume densities, CPSD and r_max, intrusion and r_min,
constrictivity, mean geodesic tortuosity, two-point coverage."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cbagpu.atomic import save_figure_atomic
from cbagpu.backend import Backend, get_backend
from cbagpu.errors import InvalidInputError
from cbagpu.measure.covariance import two_point_coverage
from cbagpu.measure.geodesic import geodesic_tortuosity
from cbagpu.measure.intrusion import constrictivity
from cbagpu.measure.minkowski import intrinsic_volumes
from cbagpu.measure.phases import PHASES, phase_mask

AXES = {"z": 0, "y": 1, "x": 2, 0: 0, 1: 1, 2: 2}
DEFAULT_PHASES = ("solid", "pore", "graphite")


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

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: p.to_dict() for name, p in self.phases.items()}
        out["meta"] = {
            "voxel_size": self.voxel_size,
            "axis": "zyx"[self.axis],
            "shape": list(self.shape),
            "backend": self.backend,
            "units": "nm",
        }
        return out


def describe_phase(
    mask: Any,
    voxel_size: float,
    axis: int | str = 0,
    backend: str | Backend = "auto",
    phase: str = "phase",
    max_lag: float | None = None,
) -> PhaseDescription:
    """Every descriptor of one binary phase ``mask``."""
    be = get_backend(backend)
    ax = AXES[axis]
    mask = be.asarray(mask).astype(bool)
    sec: dict[str, float] = {}

    def timed(key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = fn(mask, voxel_size, *args, backend=be, **kwargs)
        sec[key] = time.perf_counter() - t
        return out

    iv = timed("intrinsic_volumes", intrinsic_volumes)
    con = timed("cpsd_intrusion", constrictivity, axis=ax)
    geo = timed("geodesic", geodesic_tortuosity, axis=ax)
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


def describe(
    labels: Any,
    voxel_size: float,
    phases: Sequence[str] = DEFAULT_PHASES,
    axis: int | str = 0,
    backend: str | Backend = "auto",
    max_lag: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Description:
    """Descriptors of the ``phases`` of a label image (0 pore, 1 CBD, 2 graphite).

    Parameters
    ----------
    labels : uint8 array (z, y, x), NumPy or CuPy.
    voxel_size : float
        Voxel edge length (nm); every result is in nm units.
    phases : names among "solid" (1 and 2), "pore" (0), "graphite" (2), "cbd" (1).
    axis : 0/1/2 or "z"/"y"/"x"; inlet face (low side) of the intrusion and the geodesic
        tortuosity.
    """
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise InvalidInputError(f"voxel_size must be finite and > 0 (nm), got {voxel_size!r}")
    if axis not in AXES:
        raise InvalidInputError(f"axis must be 0, 1, 2, 'z', 'y' or 'x', got {axis!r}")
    for p in phases:
        if p not in PHASES:
            raise InvalidInputError(f"unknown phase {p!r}; choose among {', '.join(PHASES)}")
    be = get_backend(backend)
    lab = be.asarray(labels)
    if lab.ndim != 3:
        raise InvalidInputError(f"a 3D label image is needed, got shape {tuple(lab.shape)}")
    out: dict[str, PhaseDescription] = {}
    for i, p in enumerate(phases):
        out[p] = describe_phase(phase_mask(lab, p), voxel_size, axis, be, p, max_lag)
        if progress is not None:
            progress(p, i + 1, len(phases))
    return Description(
        float(voxel_size), AXES[axis], tuple(int(n) for n in lab.shape), out, be.name
    )


def plot_description(desc: Description, path: str) -> None:
    """CPSD curves and centred C(h) of every phase (Figures 6, 7), written atomically."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for i, (name, p) in enumerate(desc.phases.items()):
        colour = f"C{i}"
        a.plot(p.cpsd_r, p.cpsd_value, color=colour, label=f"{name} CPSD")
        a.plot(p.intrusion_r, p.intrusion_value, "--", color=colour, label=f"{name} intrusion")
        b.plot(p.covariance_h, p.covariance_centred, color=colour, label=name)
    a.axhline(0.5, color="0.6", lw=0.8)
    a.set_xlabel("r [nm]")
    a.set_ylabel("fraction of the phase")
    a.set_title("CPSD (Eq. 26) and simulated intrusion")
    a.legend(fontsize=8)
    b.axhline(0.0, color="0.6", lw=0.8)
    b.set_xlabel("h [nm]")
    b.set_ylabel("C(h) - V^2")
    b.set_title("centred two-point coverage")
    b.legend(fontsize=8)
    fig.suptitle(f"voxel size {desc.voxel_size:g} nm, shape {desc.shape}")
    fig.tight_layout()
    try:
        save_figure_atomic(fig, path, dpi=110)
    finally:
        plt.close(fig)
