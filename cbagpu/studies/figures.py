"""Figures of the validation study (paper Figures 5, 6 and 7), written atomically as PNG.

* Figure 5: scalar descriptors vs voxel size, image (bar) and model (bar = mean over the
  realizations, error bar = min..max): (a) volume fraction of the solid phase,
  (b) constrictivity β solid, (c) mean geodesic tortuosity τ solid, (d) specific surface
  area S_V, (e) β pore, (f) τ pore.
* Figure 6: CPSD curves (Eq. 26) per voxel size, pore phase (top row, the paper's figure)
  and solid phase (bottom row): image curve and model mean with its min..max band.
* Figure 7: centred two-point coverage C(h) − V² of the solid phase Ξ per voxel size (the
  pore phase's is the same function in theory; its estimate differs only by edge terms).

matplotlib is optional: :func:`require_matplotlib` raises an ImportError with an install
hint. Only the object-oriented API (``Figure`` + Agg canvas) is used, so plotting never
switches the backend of a running pyplot session.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cbagpu.studies.validate import ValidationResult

__all__ = ["plot_figure5", "plot_figure6", "plot_figure7", "plot_validation",
           "require_matplotlib"]

FIGURE_FILES = ("figure5.png", "figure6.png", "figure7.png")


def require_matplotlib() -> None:
    """Raise ImportError with an install hint when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"plots need matplotlib, which cannot be imported ({exc}); "
            "install it with 'pip install matplotlib' or leave out --plot"
        ) from None


def _new_figure(ncols: int, nrows: int, width: float, height: float) -> tuple[Any, Any]:
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save as PNG via a temporary file in the same directory and os.replace."""
    from cbagpu.atomic import save_figure_atomic

    return save_figure_atomic(fig, path, dpi=110)


_FIG5_PANELS = (
    ("(a) volume fraction (solid)", "solid", "volume_fraction", ""),
    ("(b) constrictivity (solid)", "solid", "constrictivity", ""),
    ("(c) mean geodesic tortuosity (solid)", "solid", "geodesic_tortuosity", ""),
    ("(d) specific surface area", "solid", "S_V", "S_V [1/µm]"),
    ("(e) constrictivity (pore)", "pore", "constrictivity", ""),
    ("(f) mean geodesic tortuosity (pore)", "pore", "geodesic_tortuosity", ""),
)


def plot_figure5(result: ValidationResult, path: str | os.PathLike[str]) -> Path:
    """Figure 5: descriptors of image and model (mean, min..max) per voxel size."""
    fig, axes = _new_figure(3, 2, 12.0, 6.8)
    idx = np.arange(len(result.factors))
    w = 0.38
    for ax, (title, phase, name, ylabel) in zip(axes.ravel(), _FIG5_PANELS, strict=True):
        scale = 1000.0 if name == "S_V" else 1.0  # nm^-1 -> µm^-1
        rows = [result.scalar(f, phase, name) for f in result.factors]
        img = np.array([r.image for r in rows]) * scale
        mean = np.array([r.model_mean for r in rows]) * scale
        lo = np.maximum(mean - np.array([r.model_min for r in rows]) * scale, 0.0)
        hi = np.maximum(np.array([r.model_max for r in rows]) * scale - mean, 0.0)
        ax.bar(idx - w / 2, img, w, color="0.55", label="image data")
        ax.bar(idx + w / 2, mean, w, color="C0", label=f"model ({result.realizations} real.)",
               yerr=np.vstack([lo, hi]), capsize=3, ecolor="k")
        ax.set_xticks(idx, [f"{f * result.voxel_size:g} nm" for f in result.factors])
        ax.set_title(title, fontsize=10)
        if ylabel:
            ax.set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Image data vs model realizations at varying voxel sizes (cf. paper Fig. 5)")
    fig.tight_layout()
    return _save(fig, path)


def _curve_grid(result: ValidationResult, path: str | os.PathLike[str], curve: str,
                phases: tuple[str, ...], xlabel: str, ylabel: str, title: str) -> Path:
    n = len(result.factors)
    fig, axes = _new_figure(n, len(phases), 4.0 * n, 3.3 * len(phases))
    for i, phase in enumerate(phases):
        for j, f in enumerate(result.factors):
            ax = axes[i, j]
            c = result.curve(f, phase, curve)
            ax.fill_between(c.x, c.model_min, c.model_max, color="C0", alpha=0.25, lw=0,
                            label="model min..max")
            ax.plot(c.x, c.model_mean, color="C0", label="model mean")
            ax.plot(c.x, c.image, color="k", ls="--", label="image data")
            if curve == "covariance_centred":
                ax.axhline(0.0, color="0.6", lw=0.8)
            ax.set_title(f"{phase}, {f * result.voxel_size:g} nm voxels", fontsize=10)
            ax.set_xlabel(xlabel)
            if j == 0:
                ax.set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_figure6(result: ValidationResult, path: str | os.PathLike[str]) -> Path:
    """Figure 6: CPSD of the pore (top) and solid (bottom) phase per voxel size."""
    return _curve_grid(result, path, "cpsd", ("pore", "solid"), "r [nm]", "CPSD(r)",
                       "Continuous pore size distributions (cf. paper Fig. 6)")


def plot_figure7(result: ValidationResult, path: str | os.PathLike[str]) -> Path:
    """Figure 7: centred two-point coverage C(h) − V² of the solid phase per voxel size."""
    return _curve_grid(result, path, "covariance_centred", ("solid",), "h [nm]",
                       "C(h) - V²", "Centred two-point coverage (cf. paper Fig. 7)")


def plot_validation(result: ValidationResult, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``figure5.png``, ``figure6.png`` and ``figure7.png`` into ``out_dir``."""
    require_matplotlib()
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    return [plot_figure5(result, d / FIGURE_FILES[0]), plot_figure6(result, d / FIGURE_FILES[1]),
            plot_figure7(result, d / FIGURE_FILES[2])]
