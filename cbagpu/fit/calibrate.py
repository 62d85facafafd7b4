"""``fit``: calibrate the eight model parameters to a segmented image (paper Section 3.2).

Stages: Ξ1 (:mod:`cbagpu.fit.graphite`, Section 3.2.1), then Ξ2 and Ξ3 by one of two
methods: ``"whole"`` (default; μ, η, θ, λ_Y jointly from the whole image's CBD coverage,
:mod:`cbagpu.fit.whole`) or ``"roi"`` (the paper's: Ξ2 on a region without large pores,
:mod:`cbagpu.fit.grf`, 3.2.2, then Ξ3 by the CPSD, :mod:`cbagpu.fit.pores`, 3.2.3).  The ROI
method's μ is biased low (README "Calibration accuracy").  Optional parametric bootstrap
(:mod:`cbagpu.fit.uncertainty`).  The backend is chosen once here and passed down.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cbagpu.backend import Backend, get_backend
from cbagpu.errors import InvalidInputError
from cbagpu.params import CBAParams, preset
from cbagpu.theory import graphite_densities, lambda_y_from_volume_fraction, v2
from cbagpu.validation import check_labels, check_voxel_size

from .graphite import estimate_graphite_densities, fit_graphite
from .grf import Box, GRFFit, correct_for_small_pores, fit_grf
from .pores import THETA_GRID, fit_pores
from .report import FitReport

__all__ = ["METHODS", "MIN_EDGE", "NO_GRAPHITE_LAMBDA_X", "FitResult", "FitWarning", "fit"]

#: Methods of the Ξ2/Ξ3 stage (the first is the default).
METHODS: tuple[str, ...] = ("whole", "roi")

#: Smallest image edge (voxels) accepted by :func:`fit`.
MIN_EDGE = 48
#: λ_X written for an image without graphite (no grain is ever drawn).
NO_GRAPHITE_LAMBDA_X = 1e-30

Progress = Callable[[str, int, int], None]


class FitWarning(UserWarning):
    """A fit that ran but needs the user's attention (missing phase, edge of a range...)."""


@dataclass(frozen=True)
class FitResult:
    """The fitted parameters and the report (see :class:`~cbagpu.fit.report.FitReport`)."""

    params: CBAParams
    report: FitReport

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params.to_dict(), "report": self.report.to_dict()}


def _check_labels(labels: Any, be: Backend) -> Any:
    lab = check_labels(labels, be.xp)
    if min(lab.shape) < MIN_EDGE:
        raise InvalidInputError(
            f"image {'x'.join(map(str, lab.shape))} is too small for a stable fit: every edge "
            f"must be at least {MIN_EDGE} voxels (the Gaussian-field ROI needs boxes of >= 16 "
            "voxels and the CPSD needs many large pores; >= 128^3 is recommended)"
        )
    return lab


def _xi2_map(
    grf: GRFFit, V: float, v1: float, iterations: int = 100
) -> Callable[[float], tuple[float, float]]:
    """θ ↦ (μ, λ_Y): μ corrected for the Ξ3 balls smaller than r* left in an automatic ROI
    (V̂2/q1, :func:`cbagpu.fit.grf.small_ball_factors`) and λ_Y of Eq. 25, solved together
    by fixed-point iteration (a contraction: q1 depends on λ_Y only through the small balls).
    Without r* (user ROI) μ = μ̂ and λ_Y of Eq. 25."""
    from scipy import special

    from .grf import small_ball_factors

    def lam_of(mu: float, theta: float) -> float:
        x = (V - v1) / (float(v2(mu)) * (1.0 - v1))
        if not x > 0.0:
            raise InvalidInputError(
                f"V = {V:.4f} is not above V1 = {v1:.4f}: no room for CBD (Eq. 25)"
            )
        return float(lambda_y_from_volume_fraction(V, v1, v2(mu), theta)) if x < 1.0 else 0.0

    def xi2(theta: float) -> tuple[float, float]:
        mu = grf.mu
        lam = lam_of(mu, theta)
        if not math.isfinite(grf.large_pore_radius):
            return mu, lam
        for _ in range(iterations):
            q1, _ = small_ball_factors(np.zeros(1), grf.large_pore_radius, theta, lam)
            v2c = min(grf.V2 / q1, 1.0 - 1e-12)
            mu = float(-special.ndtri(v2c))
            new = lam_of(mu, theta)
            done = abs(new - lam) <= 1e-12 * max(lam, 1e-300)
            lam = new
            if done:
                break
        return mu, lam

    return xi2


def fit(
    labels: Any,
    voxel_size: float,
    *,
    realizations: int = 3,
    seed: int = 0,
    grf_roi: str | Box | list[Box] | None = None,
    backend: str | Backend = "auto",
    progress: Progress | None = None,
    theta_grid: tuple[float, ...] = THETA_GRID,
    method: str | None = None,
    bootstrap: int = 0,
) -> FitResult:
    """Calibrate (λ_X, α1, α2, γ, μ, η, θ, λ_Y) to a label image (paper Section 3.2).

    Parameters
    ----------
    labels : uint8 array (z, y, x)
        0 = pore, 1 = CBD, 2 = graphite (NumPy or CuPy).
    voxel_size : float
        Voxel edge length s [nm]; the fitted parameters use the gamma convention at s and
        record it as ``calibrated_voxel_size``.
    realizations : int
        Model realizations (image-sized) per θ in the Ξ3 stage (paper: 3).
    seed : int
        Seeds seed, seed + 1, … of those realizations (common to every θ).
    grf_roi : "z0:z1,y0:y1,x0:x1", Box or list of Box, optional
        ROI of the Ξ2 stage of ``method="roi"``; default: chosen automatically
        (:mod:`cbagpu.fit.grf`).
    backend : "auto", "numpy", "cupy" or Backend
    progress : callable, optional
        ``progress(stage, done, total)``; stages "graphite", "grf", "base realizations",
        "theta".
    theta_grid : tuple of float
        θ values [nm⁻¹] tried first by ``method="roi"`` (default: the paper's grid, NOTES §8).
    method : {"whole", "roi"}, optional
        How Ξ2 and Ξ3 are fitted (default: ``"roi"`` when ``grf_roi`` is given, else
        ``"whole"``): ``"whole"`` μ, η, θ, λ_Y jointly from the CBD
        phase's fraction and two-point coverage over the whole image
        (:func:`cbagpu.fit.whole.fit_whole`); ``"roi"`` the paper's Section 3.2.2–3.2.3
        (μ, η on a region without large pores, θ by the CPSD), whose μ is biased low on
        realizations of known parameters (README "Calibration accuracy").
    bootstrap : int
        k ≥ 2: parametric-bootstrap uncertainty of every parameter from k realizations of the
        fitted model, of the image's shape, refitted by the same method
        (:func:`cbagpu.fit.uncertainty.bootstrap`, seeds seed + 1000 …): in
        ``report.uncertainty``.  Costs k generations and k fits; 0 (default): none.

    Returns
    -------
    FitResult
        ``params`` (CBAParams) and ``report`` (FitReport).

    Raises
    ------
    ValueError
        Labels outside {0, 1, 2}, not 3-D, smaller than :data:`MIN_EDGE` per edge, missing or
        invalid voxel size, no usable Ξ2 ROI, no CBD at all, an unknown ``method``, a
        ``grf_roi`` with ``method="whole"`` or ``bootstrap`` not 0 or an integer ≥ 2.

    Warns
    -----
    FitWarning
        No graphite in the image (Ξ1 not fitted: λ_X = 1e-30, α1, α2, γ of the paper as
        placeholders), and the notes of the stages.
    """
    t_start = time.perf_counter()
    s = check_voxel_size(voxel_size)
    if isinstance(realizations, bool) or int(realizations) != realizations or realizations < 1:
        raise InvalidInputError(f"realizations must be an integer >= 1, got {realizations!r}")
    if method is None:
        method = "whole" if grf_roi is None else "roi"
    if method not in METHODS:
        raise InvalidInputError(f"unknown fit method {method!r}; choose one of: "
                                + ", ".join(METHODS))
    if (isinstance(bootstrap, bool) or int(bootstrap) != bootstrap or bootstrap < 0
            or bootstrap == 1):
        raise InvalidInputError(f"bootstrap must be 0 or an integer >= 2, got {bootstrap!r}")
    if grf_roi is not None and method != "roi":
        raise InvalidInputError("grf_roi (--grf-roi) applies to method 'roi' only")
    be = get_backend(backend)
    lab = _check_labels(labels, be)
    n = lab.size
    counts = [int(be.xp.count_nonzero(lab == k)) for k in (0, 1, 2)]
    image = {
        "shape": [int(v) for v in lab.shape],
        "voxel_size": s,
        "pore": counts[0] / n,
        "cbd": counts[1] / n,
        "graphite": counts[2] / n,
        "solid": (counts[1] + counts[2]) / n,
    }
    if counts[1] == 0:
        raise InvalidInputError(
            "the image has no CBD voxels (label 1): the Gaussian field cannot be fitted"
        )
    if isinstance(grf_roi, str):  # checked before any fitting (the Ξ2 stage comes second)
        from .grf import parse_roi

        grf_roi = parse_roi(grf_roi, tuple(int(v) for v in lab.shape))
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not 0 <= seed < 2**63):
        raise InvalidInputError(f"seed must be an integer in [0, 2^63), got {seed!r}")
    notes: list[str] = []
    seconds: dict[str, float] = {}

    # ---------------------------------------------------------------- Ξ1
    t = time.perf_counter()
    if counts[2] == 0:
        notes.append(
            "no graphite in the image: Xi1 not fitted (lambda_x = 1e-30, alpha1, alpha2, gamma "
            "are the paper's placeholders); fitted Xi2 and Xi3 only"
        )
        gfit = None
        paper = preset("paper")
        g_params = {"lambda_x": NO_GRAPHITE_LAMBDA_X, "alpha1": paper.alpha1,
                    "alpha2": paper.alpha2, "gamma": paper.gamma}
    else:
        target = estimate_graphite_densities(lab == 2, s, be)
        gfit = fit_graphite(target, s)
        g_params = {"lambda_x": gfit.lambda_x, "alpha1": gfit.alpha1, "alpha2": gfit.alpha2,
                    "gamma": gfit.gamma}
    seconds["graphite"] = time.perf_counter() - t
    if progress is not None:
        progress("graphite", 1, 1)

    if method == "whole":
        t = time.perf_counter()
        from .whole import fit_whole

        p1 = CBAParams(**g_params, mu=0.0, eta=1.0, theta=1.0, lambda_y=0.0,
                       calibrated_voxel_size=s)
        v1 = graphite_densities(p1, s).V1 if counts[2] else 0.0
        if not image["solid"] > v1:
            raise InvalidInputError(
                f"V = {image['solid']:.4f} is not above V1 = {v1:.4f}: no room for CBD (Eq. 25)")
        whole = fit_whole(lab, s, be, cbd_fraction=(image["solid"] - v1) / (1.0 - v1))
        notes.extend(whole.notes)
        params = p1.replace(mu=whole.mu, eta=whole.eta, theta=whole.theta,
                            lambda_y=whole.lambda_y)
        seconds["whole"] = time.perf_counter() - t
        if progress is not None:
            progress("whole", 1, 1)
        grf, pores = None, None
    else:
        whole = None
        params, grf, pores = _roi_stages(lab, s, be, g_params, counts, image, grf_roi, seed,
                                         realizations, theta_grid, progress, notes, seconds)
    uncertainty = None
    if bootstrap:
        t = time.perf_counter()
        from .uncertainty import bootstrap as run_bootstrap

        def refit(sample: Any) -> dict[str, float]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = fit(sample, s, realizations=realizations, seed=seed, backend=be,
                        theta_grid=theta_grid, method=method, grf_roi=grf_roi)
            return r.params.to_dict()

        from cbagpu.params import PARAM_NAMES

        uncertainty = run_bootstrap(params, tuple(image["shape"]), s, refit, k=int(bootstrap),
                                    seed=(seed + 1000) % 2**62, backend=be, names=PARAM_NAMES,
                                    progress=progress)
        seconds["bootstrap"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_start
    for msg in notes:
        warnings.warn(msg, FitWarning, stacklevel=2)
    report = FitReport(params, gfit, grf, pores, seconds, image, be.name, tuple(notes),
                       method=method, whole=whole, uncertainty=uncertainty)
    return FitResult(params, report)


def _roi_stages(lab: Any, s: float, be: Backend, g_params: dict[str, float], counts: list[int],
                image: dict[str, Any], grf_roi: Any, seed: int, realizations: int,
                theta_grid: tuple[float, ...], progress: Progress | None, notes: list[str],
                seconds: dict[str, float]) -> tuple[CBAParams, Any, Any]:
    """The paper's Ξ2 (ROI, Section 3.2.2) and Ξ3 (CPSD, 3.2.3) stages."""
    # ---------------------------------------------------------------- Ξ2
    t = time.perf_counter()
    grf = fit_grf(lab, s, be, roi=grf_roi, seed=seed)
    notes.extend(grf.notes)
    seconds["grf"] = time.perf_counter() - t
    if progress is not None:
        progress("grf", 1, 1)

    # ---------------------------------------------------------------- Ξ3
    t = time.perf_counter()
    p12 = CBAParams(**g_params, mu=grf.mu, eta=grf.eta, theta=1.0, lambda_y=0.0,
                    calibrated_voxel_size=s)
    v1 = graphite_densities(p12, s).V1 if counts[2] else 0.0
    xi2 = _xi2_map(grf, image["solid"], v1)
    pores = fit_pores(lab, s, p12, realizations=int(realizations), seed=seed,
                      theta_grid=theta_grid, backend=be, progress=progress, xi2_for_theta=xi2)
    notes.extend(pores.notes)
    if pores.lambda_y > 0:
        grf = correct_for_small_pores(grf, pores.theta, pores.lambda_y)
    seconds["pores"] = time.perf_counter() - t
    params = p12.replace(mu=grf.mu, eta=grf.eta, theta=pores.theta, lambda_y=pores.lambda_y)
    return params, grf, pores
