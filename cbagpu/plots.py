"""Every figure of cbagpu, drawn on :class:`matplotlib.figure.Figure` with
``FigureCanvasAgg``: the global matplotlib backend (``matplotlib.use``) and ``pyplot`` are
never touched, so a notebook user's backend stays as it was. PNGs are written atomically.

The science returns results (:func:`cbagpu.describe`, :func:`cbagpu.fit.fit`,
:func:`cbagpu.studies.validate.validate`, :func:`cbagpu.studies.sweep.sweep`); these
functions draw them. The command line calls them for ``--plot``.

* :func:`plot_description` -- CPSD / intrusion curves and the centred C(h) of ``describe``
  (paper Figures 6, 7 for one image).
* :func:`plot_fit_report` -- Figure 4 (covariance of Z), Figure A2 (pore CPSD) and the
  Table 1 residuals of a fit.
* :func:`plot_validation` (:func:`plot_figure5`, :func:`plot_figure6`,
  :func:`plot_figure7`) -- Figures 5-7 of a validation across resolutions.
* :func:`plot_sweep` -- a Figure-8-like summary of a parameter sweep (Eqs. 28, 29).

matplotlib is optional (``pip install "cbagpu[plot]"``): without it every function raises
an :class:`ImportError` that names the extra.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cbagpu.io.atomic import save_figure_atomic
from cbagpu.studies.regression import predict_eq28

if TYPE_CHECKING:  # pragma: no cover
    from cbagpu.fit.report import FitReport
    from cbagpu.measure.describe import Description
    from cbagpu.studies.rve import RVEResult
    from cbagpu.studies.sweep import SweepResult
    from cbagpu.studies.validate import ValidationResult

__all__ = [
    "FIGURE_FILES",
    "plot_description",
    "plot_figure5",
    "plot_figure6",
    "plot_figure7",
    "plot_fit_report",
    "plot_rve",
    "plot_sweep",
    "plot_validation",
    "require_matplotlib",
]

#: Files written by :func:`plot_validation`.
FIGURE_FILES = ("figure5.png", "figure6.png", "figure7.png")

#: Colours of the two transport phases.
_PHASE_COLOURS = {"solid": "tab:blue", "pore": "tab:red"}


def require_matplotlib() -> None:
    """Raise :class:`ImportError` naming the ``plot`` extra when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"plots need matplotlib, which cannot be imported ({exc}); install the plot "
            "extra (pip install \"cbagpu[plot]\") or leave out --plot"
        ) from None


def new_figure(ncols: int, nrows: int, width: float, height: float) -> tuple[Any, Any]:
    """A :class:`~matplotlib.figure.Figure` on its own Agg canvas and its (nrows, ncols)
    array of axes."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig: Any, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Save as PNG atomically (temporary file in the same folder, then rename)."""
    return save_figure_atomic(fig, path, dpi=dpi)


# ------------------------------------------------------------------------------ describe
def plot_description(desc: Description, path: str | os.PathLike[str]) -> Path:
    """CPSD and intrusion curves and the centred C(h) of every phase of a
    :class:`~cbagpu.measure.describe.Description` (cf. paper Figures 6, 7)."""
    fig, axes = new_figure(2, 1, 10.0, 4.0)
    a, b = axes[0]
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
    return _save(fig, path)


# ----------------------------------------------------------------------------------- fit
def plot_fit_report(report: FitReport, path: str | os.PathLike[str]) -> Path:
    """Figure 4 (rho-hat and the fitted rho), Figure A2 (CPSD of the image and the mean
    CPSD of the realizations for each theta) and the Table 1 relative residuals."""
    from matplotlib import colormaps

    fig, axes = new_figure(3, 1, 15.0, 4.5)
    ax = axes[0]
    g = report.grf
    if g is not None:
        ax[0].plot(g.h, g.rho_hat, "o", ms=3, label="non-parametric (Eq. 21 inverted)")
        ax[0].plot(g.h, g.rho_fit, "-", label=f"Eq. 2, eta = {g.eta:.4g} nm$^{{-1}}$")
        ax[0].set_ylabel("rho(h)")
        ax[0].set_title("Figure 4: covariance of Z")
    elif report.whole is not None:  # method "whole": C of the CBD phase, image vs fit
        w = report.whole
        ax[0].plot(w.h, w.C, "o", ms=3, label="image (non-graphite voxels)")
        ax[0].plot(w.h, w.C_fit, "-", label="C2(h) q2(h), fitted")
        ax[0].set_ylabel("C_D(h)")
        ax[0].set_title("two-point coverage of Xi2 minus Xi3")
    ax[0].set_xlabel("h [nm]")
    ax[0].legend()
    p = report.pores
    if p is not None and len(p.thetas):
        order = np.argsort(p.thetas)
        cmap = colormaps["viridis"]
        for j, i in enumerate(order):
            ax[1].plot(p.r, p.mean_cpsd[i], color=cmap(j / max(1, len(order) - 1)), lw=1,
                       label=f"theta {p.thetas[i]:.4g}")
        ax[1].plot(p.r, p.image_cpsd, "k--", lw=2, label="image")
        ax[1].legend(fontsize=6)
    ax[1].set_xlabel("r [nm]")
    ax[1].set_ylabel("CPSD(r)")
    ax[1].set_title("Figure A2: pore CPSD, image vs realizations")
    if report.graphite is not None:
        res = report.graphite.residuals()
        names = list(res)
        ax[2].bar(names, [res[n]["relative"] for n in names])
        ax[2].axhline(0, color="k", lw=0.5)
        ax[2].set_ylabel("(model - image) / |image|")
        ax[2].set_title("Table 1: graphite densities")
    else:
        ax[2].text(0.5, 0.5, "no graphite", ha="center")
        ax[2].set_axis_off()
    fig.tight_layout()
    return _save(fig, path)


# ---------------------------------------------------------------------------- validation
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
    fig, axes = new_figure(3, 2, 12.0, 6.8)
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
    fig, axes = new_figure(n, len(phases), 4.0 * n, 3.3 * len(phases))
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


def plot_validation(result: ValidationResult, out_dir: str | os.PathLike[str], *,
                    paths: Sequence[str | os.PathLike[str]] | None = None) -> list[Path]:
    """Write Figures 5, 6, 7 as ``figure5.png``, ``figure6.png``, ``figure7.png`` into
    ``out_dir`` (or to the three ``paths``)."""
    require_matplotlib()
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    p5, p6, p7 = paths if paths is not None else [d / name for name in FIGURE_FILES]
    return [plot_figure5(result, p5), plot_figure6(result, p6), plot_figure7(result, p7)]


# --------------------------------------------------------------------------------- sweep
SWEEP_PHASES: tuple[str, ...] = ("solid", "pore")


def _x_axis(rows: Sequence[Mapping[str, Any]], vary_names: Sequence[str]) -> tuple[str, str]:
    if len({r["V1"] for r in rows}) > 1:
        return "V1", "volume fraction V1 of graphite (model, Eq. 10)"
    if vary_names:
        return vary_names[0], vary_names[0]
    return "seed", "seed"


def _coef_text(fit: Mapping[str, Any], name: str) -> str:
    c = fit[name]
    lo, hi = c["ci"]
    if lo is None:
        return f"{name}={c['value']:.3g}"
    return f"{name}={c['value']:.3g} [{lo:.3g}, {hi:.3g}]"


def plot_sweep(result: SweepResult, path: str | os.PathLike[str], *,
               title: str | None = None) -> Path:
    """Figure-8-like summary of a :class:`~cbagpu.studies.sweep.SweepResult`: epsilon,
    constrictivity, tortuosity and M against the varied parameter (mean, min..max), the
    Eq. 28 prediction against M, and the fitted coefficients."""
    return _plot_sweep(path, result.rows, result.fits, list(result.vary),
                       title or f"sweep of {', '.join(result.vary) or 'nothing'}")


def _plot_sweep(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]],
                fits: Mapping[str, Any], vary_names: Sequence[str], title: str) -> Path:
    xkey, xlabel = _x_axis(rows, vary_names)
    colours = _PHASE_COLOURS
    fig, axes = new_figure(3, 2, 14.0, 8.0)
    panels = [("epsilon", "volume fraction ε"), ("constrictivity", "constrictivity β"),
              ("geodesic_tortuosity", "mean geodesic tortuosity τ"), ("M", "M-factor M")]
    for ax, (col, lab) in zip(axes.ravel()[:4], panels, strict=True):
        for ph in SWEEP_PHASES:
            rs = [r for r in rows if r["phase"] == ph]
            xs = sorted({r[xkey] for r in rs})
            vals = [[r[col] for r in rs if r[xkey] == x and math.isfinite(r[col])] for x in xs]
            keep = [i for i, v in enumerate(vals) if v]
            if not keep:
                continue
            x = np.array([xs[i] for i in keep])
            mean = np.array([np.mean(vals[i]) for i in keep])
            lo = mean - np.array([np.min(vals[i]) for i in keep])
            hi = np.array([np.max(vals[i]) for i in keep]) - mean
            ax.errorbar(x, mean, yerr=[lo, hi], marker="o", ms=4, capsize=3,
                        color=colours[ph], label=f"{ph} M" if col == "M" else ph)
            if col == "M":
                f28 = fits[ph]["eq28"]
                if "error" not in f28:
                    mh = predict_eq28(f28, rs)
                    mm = [np.mean([m for r, m in zip(rs, mh, strict=True) if r[xkey] == xv
                                   and math.isfinite(m)] or [np.nan]) for xv in x]
                    ax.plot(x, mm, "--", color=colours[ph], label=f"{ph} M̂ (Eq. 28)")
                f29 = fits[ph].get("eq29", {})
                if "error" not in f29 and xkey == "V1":
                    ax.plot(x, f29["c1"]["value"] * x + f29["c0"]["value"], ":",
                            color=colours[ph], label=f"{ph} M̃ (Eq. 29)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(lab)
        ax.legend(fontsize=7)
    ax = axes.ravel()[4]
    for ph in SWEEP_PHASES:
        rs = [r for r in rows if r["phase"] == ph]
        f28 = fits[ph]["eq28"]
        if "error" in f28:
            continue
        mh = predict_eq28(f28, rs)
        ax.scatter([r["M"] for r in rs], mh, s=12, color=colours[ph],
                   label=f"{ph}: a={f28['a']['value']:.3g}, b={f28['b']['value']:.3g}, "
                         f"c={f28['c']['value']:.3g}, R²={f28['r2']:.3f}")
    pos = [r["M"] for r in rows if math.isfinite(r["M"]) and r["M"] > 0]
    if pos:  # log axes: the solid phase's M is ~100x below the pore phase's
        lim = [min(pos) / 1.5, max(pos) * 1.5]
        ax.set_xscale("log")
        ax.set_yscale("log")
    else:
        lim = [0.0, 1e-3]
    ax.plot(lim, lim, color="0.5", lw=0.8)
    ax.set_xlabel("M (transport, Eq. 27)")
    ax.set_ylabel("M̂ (Eq. 28)")
    ax.set_title("regression of Eq. 28")
    ax.legend(fontsize=7)
    ax = axes.ravel()[5]
    ax.axis("off")
    lines = []
    for ph in (*SWEEP_PHASES, "both"):
        f = fits[ph]
        e28 = f["eq28"]
        lines.append(f"{ph}: {f['n_rows']} rows, {f['non_percolating']} not percolating")
        lines.append("  Eq. 28: " + (e28["error"][:60] if "error" in e28 else
                     ", ".join(_coef_text(e28, k) for k in "abc")))
        if "eq29" in f:
            e29 = f["eq29"]
            lines.append("  Eq. 29: " + (e29["error"][:60] if "error" in e29 else
                         ", ".join(_coef_text(e29, k) for k in ("c1", "c0"))))
    ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=7,
            transform=ax.transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path, dpi=100)


# ----------------------------------------------------------------------------------- rve
def plot_rve(result: RVEResult, path: str | os.PathLike[str]) -> Path:
    """Relative spread σ(W)/|mean| against the window edge, one panel per descriptor of an
    :class:`~cbagpu.studies.rve.RVEResult`: the measured spread with its chi-square 95 %
    interval, the fitted power law, the closed form of the volume fraction (model) and the
    target relative error."""
    from matplotlib.ticker import NullFormatter

    descs = list(dict.fromkeys(s.descriptor for s in result.stats))
    fig, axes = new_figure(len(descs), 1, 4.2 * len(descs), 3.8)
    s_nm = result.voxel_size
    for ax, d in zip(axes[0], descs, strict=True):
        phases = list(dict.fromkeys(s.phase for s in result.stats if s.descriptor == d))
        for i, ph in enumerate(phases):
            rows = [s for s in result.stats if (s.descriptor, s.phase) == (d, ph)]
            fit = result.fit(d, ph)
            m = abs(fit.mean) if fit.mean else np.nan
            x = np.array([r.edge_nm for r in rows])
            y = np.array([r.sd for r in rows]) / m
            lo = np.array([r.sd_interval[0] for r in rows]) / m
            hi = np.array([r.sd_interval[1] for r in rows]) / m
            c = f"C{i}"
            ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", color=c, ms=4, capsize=2,
                        label=ph)
            if math.isfinite(fit.alpha):  # drawn to the edge needed, at most 100x further
                x_end = min(max(x[-1], fit.edge_needed_nm or x[-1]), 100 * x[-1])
                xx = np.geomspace(x[0], x_end, 50)
                ax.plot(xx, np.sqrt(fit.K * xx ** (-3 * fit.alpha)) / m, "--", color=c,
                        lw=1)
            th = [(r.edge_nm, r.theory_sd) for r in rows if r.theory_sd is not None]
            th += list(fit.theory_curve[1:])
            if th:
                ax.plot([e for e, _ in th], np.array([v for _, v in th]) / m, ":", color=c,
                        lw=1.5)
        ax.axhline(result.rel_error[d], color="0.5", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("window edge [nm]")
        ax.set_ylabel("sigma(W) / |mean|")
        ax.set_title(d)
        ax.legend(fontsize=7)
    fig.suptitle(f"{result.source}, {'x'.join(map(str, result.shape))} voxels at {s_nm:g} nm;"
                 " dashed: power-law fit, dotted: closed form, line: target", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
