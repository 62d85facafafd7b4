"""The calibration report: Table 1 (Ξ1 densities), Figure 4 (ρ̂ vs fitted ρ), Figure A2 (CPSD
of the image vs realizations for every θ tried), Table 2 (fitted parameters with units) and
the seconds spent per stage."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from cbagpu.params import PARAM_NAMES, CBAParams

from .graphite import GraphiteFit
from .grf import GRFFit
from .pores import PoreFit
from .uncertainty import ParameterUncertainty
from .whole import WholeFit

__all__ = ["PARAM_UNITS", "FitReport"]

#: Units of Table 2.
PARAM_UNITS: dict[str, str] = {
    "lambda_x": "nm^-3",
    "alpha1": "nm",
    "alpha2": "nm",
    "gamma": "-",
    "mu": "-",
    "eta": "nm^-1",
    "theta": "nm^-1",
    "lambda_y": "nm^-3",
}


@dataclass(frozen=True)
class FitReport:
    """Everything the calibration measured and chose (see :func:`cbagpu.fit.fit`).

    ``graphite`` is None when the image has no graphite; ``method`` is "whole" (then
    ``whole`` holds the Ξ2/Ξ3 fit and ``grf``, ``pores`` are None) or "roi" (``grf`` and
    ``pores``; ``whole`` None); ``seconds`` maps each stage (``graphite``, ``whole`` or
    ``grf`` and ``pores``, ``bootstrap``, ``total``) to wall seconds; ``notes`` are the
    warnings issued during the fit; ``image`` holds shape, voxel size and phase fractions;
    ``uncertainty`` the parametric bootstrap per parameter (None unless asked for).
    """

    params: CBAParams
    graphite: GraphiteFit | None
    grf: GRFFit | None
    pores: PoreFit | None
    seconds: dict[str, float]
    image: dict[str, Any]
    backend: str
    notes: tuple[str, ...] = field(default=())
    method: str = "roi"
    whole: WholeFit | None = None
    uncertainty: dict[str, ParameterUncertainty] | None = None

    def table2(self) -> list[dict[str, Any]]:
        """Fitted parameters with the units of Table 2 (and the component they belong to)."""
        comp = {"lambda_x": "Xi1", "alpha1": "Xi1", "alpha2": "Xi1", "gamma": "Xi1",
                "mu": "Xi2", "eta": "Xi2", "theta": "Xi3", "lambda_y": "Xi3"}
        rows = []
        for n in PARAM_NAMES:
            row: dict[str, Any] = {"name": n, "component": comp[n],
                                   "value": getattr(self.params, n), "unit": PARAM_UNITS[n]}
            if self.uncertainty is not None and n in self.uncertainty:
                u = self.uncertainty[n]
                row.update(se=u.se, ci95=[u.low, u.high])
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN → None)."""
        return _clean({
            "image": self.image,
            "backend": self.backend,
            "table2": self.table2(),
            "table1": None if self.graphite is None else self.graphite.residuals(),
            "graphite": None if self.graphite is None else self.graphite.to_dict(),
            "method": self.method,
            "grf": None if self.grf is None else self.grf.to_dict(),
            "pores": None if self.pores is None else self.pores.to_dict(),
            "whole": None if self.whole is None else self.whole.to_dict(),
            "uncertainty": None if self.uncertainty is None else
            {k: u.to_dict() for k, u in self.uncertainty.items()},
            "seconds": dict(self.seconds),
            "notes": list(self.notes),
        })

    def text(self) -> str:
        """Plain-text summary: Table 1, ROI and Ξ2 fit, θ search, Table 2, timings."""
        lines = []
        im = self.image
        lines.append(
            f"image {'x'.join(map(str, im['shape']))} voxels at {im['voxel_size']:g} nm; "
            f"pore {im['pore']:.4f}, CBD {im['cbd']:.4f}, graphite {im['graphite']:.4f}"
        )
        if self.graphite is not None:
            lines.append("Table 1 (graphite, Xi1): image vs calibrated Boolean model")
            lines.append(f"  {'':12s}{'image':>13s}{'model':>13s}{'rel. resid.':>13s}")
            for n, r in self.graphite.residuals().items():
                rel = r["relative"]
                lines.append(f"  {n + ' [' + r['unit'] + ']':12s}"
                             + f"{r['image']:13.5g}{r['model']:13.5g}"
                             + (f"{rel:13.2e}" if math.isfinite(rel) else f"{'-':>13s}"))
        else:
            lines.append("graphite: none in the image (Xi1 not fitted)")
        g = self.grf
        w = self.whole
        if w is not None:
            lines.append(
                f"Xi2, Xi3 from the whole image (method 'whole'): CBD fraction of the "
                f"non-graphite voxels {w.V_D:.4f} = V2 (1 - V3) = {w.V2:.4f} x "
                f"(1 - {w.V3:.4f}); LS over {len(w.h) - 1} lags, rmse {w.rmse:.3g}")
        if g is not None:
            lines.append(
                f"Xi2 ROI ({g.roi_source}): {', '.join(map(str, g.boxes))} "
                f"({g.roi_voxels} voxels); V2 = {g.V2:.4f}, mu = {g.mu:.4f}, "
                f"eta = {g.eta:.5g} nm^-1 (LS over {g.n_fit_lags} lags, rmse {g.rmse:.3g})"
            )
        if g is not None and math.isfinite(g.large_pore_radius):
            lines.append(f"  large pores: pore voxels in balls of radius >= "
                         f"{g.large_pore_radius:g} nm "
                         f"(forbidden {100 * g.forbidden_fraction:.1f} %)")
            if g.small_pore_correction != 1.0:
                lines.append(f"  V2 corrected by x{g.small_pore_correction:.4f} for the "
                             "large-pore balls smaller than that left in the ROI")
        p = self.pores
        if p is not None and len(p.thetas):
            tried = ", ".join(f"{t:.5g}: {d:.3g}" for t, d in zip(p.thetas, p.distances,
                                                                    strict=True))
            lines.append(f"Xi3: V3 = {p.V3:.4f}; L1 CPSD distance (nm) per theta: {tried}")
        u = self.uncertainty
        lines.append("Table 2 (fitted parameters)" + (
            "" if u is None else f"; se and 95 % interval from {next(iter(u.values())).k} "
            "bootstrap refits"))
        for row in self.table2():
            extra = ""
            if "se" in row:
                extra = (f"  se {row['se']:.3g}  [{row['ci95'][0]:.5g}, "
                         f"{row['ci95'][1]:.5g}]")
            lines.append(f"  {row['name']:9s} {row['value']:12.5g} {row['unit']:6s}{extra}")
        sec = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        lines.append(f"time: {sec}")
        for n in self.notes:
            lines.append(f"note: {n}")
        return "\n".join(lines)


def _clean(o: Any) -> Any:
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if hasattr(o, "_asdict"):
        return _clean(o._asdict())
    return o
