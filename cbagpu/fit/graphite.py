"""Calibration of the graphite Boolean model Ξ1 (paper Section 3.2.1, Eqs. 6–17, Table 1).

1. The densities V̂1, Ŝ1, K̂1, N̂1 of the graphite phase (label 2) are estimated with the
   edge-corrected 2×2×2 configuration-counting estimator
   :func:`cbagpu.measure.minkowski.intrinsic_volumes` (Eqs. 6–9; 26-adjacency).
2. (λ_X, α1, α2, γ) minimise Eq. 17,

       (V1 − V̂1)² + ℓ²(S1 − Ŝ1)² + (ℓ²)²(K1 − K̂1)² + (ℓ³)²(N1 − N̂1)²,   ℓ = 20 nm,

   with V1, S1, K1, N1 from Miles' formulas (Eqs. 10–13) and the grain functionals
   V̄, S̄, K̄ (Eqs. 14–16) computed deterministically by quadrature
   (:func:`cbagpu.theory.graphite_densities`, which applies the gamma convention of NOTES §3
   at the image's voxel size), instead of the paper's 10 000-sample Monte Carlo means.
   Nelder–Mead (``scipy.optimize.minimize``) runs on log λ_X, log α1, log α2, log γ from
   several starts (each restarted once from its end point); the best end point wins.

Identifiability (measured, ``tests/test_fit_graphite.py``): with Eq. 17's weights K1 and N1
contribute ~1e-8 of the objective, so only V1 and S1 are fitted; the end points of the
different starts reproduce V1 and S1 to < 1e-6 but differ in λ_X and in the mean half-axes
α1/γ, α2/γ by large factors (a two-dimensional family of solutions). ``weights="relative"``
(relative residuals of all four densities, equal weights) matches all four densities; it is
meant for exact (theoretical) targets: K̂1 and N̂1 of digital images are strongly biased
(NOTES §5, README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import optimize

from cbagpu.backend import Backend
from cbagpu.errors import InvalidInputError
from cbagpu.params import CBAParams
from cbagpu.theory import GraphiteDensities, graphite_densities

__all__ = [
    "EQ17_LENGTH",
    "GraphiteFit",
    "eq17_objective",
    "estimate_graphite_densities",
    "fit_graphite",
]

#: The length (nm) of the weights of Eq. 17: (20 nm)^k for S1, K1, N1.
EQ17_LENGTH = 20.0
_NAMES = ("V1", "S1", "K1", "N1")
_UNITS = ("-", "nm^-1", "nm^-2", "nm^-3")
# placeholders for μ, η, θ, λ_Y while Ξ1 is fitted (they do not enter graphite_densities)
_DUMMY = {"mu": 0.0, "eta": 1.0, "theta": 1.0, "lambda_y": 0.0}


def estimate_graphite_densities(
    mask: Any, voxel_size: float, backend: str | Backend = "auto"
) -> GraphiteDensities:
    """V̂1, Ŝ1 [nm⁻¹], K̂1 [nm⁻²], N̂1 [nm⁻³] of a graphite mask (Eqs. 6–9, Table 1 row 1).

    Edge-corrected 2×2×2 configuration counting, foreground 26-adjacency
    (:func:`cbagpu.measure.minkowski.intrinsic_volumes`).
    """
    from cbagpu.measure.minkowski import intrinsic_volumes

    iv = intrinsic_volumes(mask, voxel_size, backend)
    return GraphiteDensities(iv.V_V, iv.S_V, iv.M_V, iv.chi_V)


def _params(x: np.ndarray) -> CBAParams:
    lam, a1, a2, g = (float(v) for v in np.exp(x))
    return CBAParams(lambda_x=lam, alpha1=a1, alpha2=a2, gamma=g, **_DUMMY)


def _scales(
    target: GraphiteDensities, weights: str, length: float
) -> np.ndarray:
    if weights == "paper":
        return 1.0 / np.array([1.0, length, length**2, length**3])
    if weights == "relative":
        t = np.abs(np.asarray(target, dtype=np.float64))
        return np.where(t > 0.0, t, 1.0)
    raise InvalidInputError(f"weights must be 'paper' or 'relative', got {weights!r}")


def eq17_objective(
    model: GraphiteDensities,
    target: GraphiteDensities,
    length: float = EQ17_LENGTH,
    weights: Literal["paper", "relative"] = "paper",
) -> float:
    """Objective of Eq. 17 (``weights="paper"``) or the sum of squared relative residuals."""
    r = (np.asarray(model) - np.asarray(target)) / _scales(target, weights, length)
    return float(r @ r)


@dataclass(frozen=True)
class GraphiteFit:
    """Result of the Ξ1 fit (Table 1 layout: ``target`` = image, ``model`` = fitted).

    ``starts`` lists every start's end point as a dict (objective, lambda_x, alpha1,
    alpha2, gamma, mean half-axes a_mean = α1/γ and c_mean = α2/γ in nm, densities).
    """

    lambda_x: float
    alpha1: float
    alpha2: float
    gamma: float
    target: GraphiteDensities
    model: GraphiteDensities
    objective: float
    weights: str
    voxel_size: float
    nfev: int
    starts: tuple[dict[str, Any], ...] = field(default=())

    def residuals(self) -> dict[str, dict[str, float]]:
        """Per density: target, model, model − target and the relative residual."""
        out = {}
        for n, u, t, m in zip(_NAMES, _UNITS, self.target, self.model, strict=True):
            rel = (m - t) / abs(t) if t != 0 else math.nan
            out[n] = {"unit": u, "image": t, "model": m, "residual": m - t, "relative": rel}
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "lambda_x": self.lambda_x,
            "alpha1": self.alpha1,
            "alpha2": self.alpha2,
            "gamma": self.gamma,
            "mean_half_axes_nm": [self.alpha1 / self.gamma, self.alpha2 / self.gamma],
            "table1": self.residuals(),
            "objective": self.objective,
            "weights": self.weights,
            "eq17_length_nm": EQ17_LENGTH,
            "voxel_size": self.voxel_size,
            "nfev": self.nfev,
            "starts": [dict(s) for s in self.starts],
        }


def _default_starts(target: GraphiteDensities, voxel_size: float) -> list[np.ndarray]:
    """Starts spanning aspect ratios and spreads; λ_X of each start matches V̂1 (Eq. 10).

    For a Boolean model S̄/V̄ = S1 / (−(1 − V1) log(1 − V1)); for a flat spheroid
    S̄/V̄ ≈ 1.5/r, which gives the mean half-thickness r of the starts.
    """
    v1, s1 = float(target.V1), float(target.S1)
    v1 = min(max(v1, 1e-6), 0.95)
    if s1 > 0:
        ratio = s1 / (-(1.0 - v1) * math.log1p(-v1))  # S̄/V̄
        r = 1.5 / ratio
    else:
        r = 5.0 * voxel_size
    r = max(r, 0.5 * voxel_size)
    starts = []
    for aspect in (3.0, 10.0, 30.0):
        for g in (1.0, 4.0):
            a1, a2 = g * r, g * r * aspect
            p = CBAParams(lambda_x=1.0, alpha1=a1, alpha2=a2, gamma=g, **_DUMMY)
            from cbagpu.theory import spheroid_functionals

            vbar = spheroid_functionals(p, voxel_size)[0]
            lam = -math.log1p(-v1) / vbar
            starts.append(np.log([lam, a1, a2, g]))
    return starts


def fit_graphite(
    target: GraphiteDensities,
    voxel_size: float,
    *,
    weights: Literal["paper", "relative"] = "paper",
    starts: list[CBAParams] | None = None,
    length: float = EQ17_LENGTH,
    maxfev: int = 2000,
    xatol: float = 1e-6,
    fatol: float = 1e-15,
) -> GraphiteFit:
    """Fit (λ_X, α1, α2, γ) to target densities by Nelder–Mead on Eq. 17 (Section 3.2.1).

    Parameters
    ----------
    target : GraphiteDensities
        V̂1, Ŝ1, K̂1, N̂1 (nm units), e.g. from :func:`estimate_graphite_densities`.
    voxel_size : float
        Voxel size s [nm] of the image: the model densities use the gamma convention at s.
    weights : "paper" (Eq. 17, default) or "relative"
    starts : list of CBAParams, optional
        Start points (only λ_X, α1, α2, γ are used); default six starts (aspect ratios 3,
        10, 30 × γ = 1, 4, mean thickness from Ŝ1/V̂1, λ_X matching V̂1).
    length : float
        ℓ of Eq. 17's weights (nm), 20 nm as in the paper.
    maxfev, xatol, fatol
        Nelder–Mead stopping rules per run (``fatol`` relative to V̂1² with the paper's
        weights, absolute with relative weights).
    """
    target = GraphiteDensities(*(float(v) for v in target))
    if not 0.0 < target.V1 < 1.0:
        raise InvalidInputError(f"graphite volume fraction must be in (0, 1), got {target.V1!r}")
    scales = _scales(target, weights, length)
    if weights == "paper":  # normalise to O(1) so that fatol is relative (argmin unchanged)
        scales = scales * target.V1
    t = np.asarray(target, dtype=np.float64)

    def objective(x: np.ndarray) -> float:
        if not np.all(np.abs(x) < 700):
            return math.inf
        try:
            d = graphite_densities(_params(x), voxel_size)
        except (ValueError, OverflowError, ZeroDivisionError):
            return math.inf
        r = (np.asarray(d) - t) / scales
        v = float(r @ r)
        return v if math.isfinite(v) else math.inf

    x0s = (
        _default_starts(target, voxel_size)
        if starts is None
        else [np.log([p.lambda_x, p.alpha1, p.alpha2, p.gamma]) for p in starts]
    )
    nfev = 0
    ends = []
    opts = {"xatol": xatol, "fatol": fatol, "maxfev": maxfev}
    for x0 in x0s:
        res = optimize.minimize(objective, x0, method="Nelder-Mead", options=opts)
        nfev += res.nfev
        res2 = optimize.minimize(objective, res.x, method="Nelder-Mead", options=opts)
        nfev += res2.nfev
        best = res2 if res2.fun <= res.fun else res
        ends.append((float(best.fun), best.x))
    norm = target.V1**2 if weights == "paper" else 1.0
    ends = [(f * norm, x) for f, x in ends]
    ends.sort(key=lambda e: e[0])
    start_rows = []
    for fun, x in ends:
        p = _params(x)
        d = graphite_densities(p, voxel_size)
        start_rows.append(
            {
                "objective": fun,
                "lambda_x": p.lambda_x,
                "alpha1": p.alpha1,
                "alpha2": p.alpha2,
                "gamma": p.gamma,
                "a_mean": p.alpha1 / p.gamma,
                "c_mean": p.alpha2 / p.gamma,
                "V1": d.V1,
                "S1": d.S1,
                "K1": d.K1,
                "N1": d.N1,
            }
        )
    best_fun, best_x = ends[0]
    p = _params(best_x)
    return GraphiteFit(
        lambda_x=p.lambda_x,
        alpha1=p.alpha1,
        alpha2=p.alpha2,
        gamma=p.gamma,
        target=target,
        model=graphite_densities(p, voxel_size),
        objective=best_fun,
        weights=weights,
        voxel_size=float(voxel_size),
        nfev=nfev,
        starts=tuple(start_rows),
    )
