"""Whole-image calibration of Ξ2 and Ξ3 (``method="whole"``): μ, η, θ, λ_Y jointly from the
CBD phase's volume fraction and two-point coverage over the whole image (issue 18, item 5).

Why not the paper's ROI (Section 3.2.2)?  An ROI chosen because it shows no large pores in
the *observed* image is a region where the field Z is high: with the long-range Cauchy
covariance ρ(h) = 1/(1 + (ηh)²) of Eq. 2 (whose integral range diverges) the CBD fraction of
such a region is biased upwards, hence μ̂ downwards (``benchmarks`` suite ``fit-accuracy``,
README "Calibration accuracy").  The whole image has no selection.

Closed forms (NOTES §2: Ξ1, Ξ2, Ξ3 independent; graphite = Ξ1, CBD = Ξ2 ∖ Ξ3 ∖ Ξ1).
Write D = Ξ2 ∖ Ξ3.  Graphite hides D but is independent of it, so on the non-graphite voxels

* V_D = P(o ∈ D) = V2(μ) · q1,                    V2(μ) = 1 − Φ(μ) (Eq. 18),
* C_D(h) = P(o, h ∈ D) = C2(h; μ, η) · q2(h),      C2 of Eq. 21 (corrected, NOTES §4),

with q1 = P(o ∉ Ξ3) = exp(−λ_Y E|B_R|) = 1 − V3 (Eq. 24, E|B_R| = 8π/θ³) and
q2(h) = P(o ∉ Ξ3, h ∉ Ξ3) = exp(−λ_Y E|B_R ∪ (B_R + h)|) (R ~ Exp(θ);
:func:`cbagpu.fit.grf.small_ball_factors` with no radius cut).  They are estimated by the
masked window estimators V̂_D = #CBD / #non-graphite and
Ĉ_D(h) = #pairs both CBD / #pairs both non-graphite at the axis lags h = k·s, k = 1 … L
(pooled over the three axes; :func:`cbagpu.fit.grf._pooled_coverage`).

Fit: V_D is matched exactly (it is Eq. 25: V = V1 + V2(1 − V1)(1 − V3) says
V2 q1 = (V − V1)/(1 − V1)), so for given (η, θ, V3) μ = Φ⁻¹(1 − V̂_D/(1 − V3)) and
λ_Y = −θ³ log(1 − V3)/(8π) (Eq. 24); (log η, log θ, V3 ∈ (0, 1 − V̂_D)) minimise
Σ_k (Ĉ_D(h_k) − C_D(h_k))² (``scipy.optimize.least_squares``, several starts).
The ball part of C_D has the scale 1/θ (exponential radii), the field part the Cauchy
scale 1/η with a ~1/h² tail, which is what separates them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, special

from cbagpu.backend import Backend, get_backend
from cbagpu.errors import InvalidInputError
from cbagpu.theory import two_point_coverage_grf

__all__ = ["WholeFit", "ball_pair_miss", "fit_whole", "masked_cbd_coverage", "model_cbd_coverage"]

#: Default largest lag (voxels) of the least squares, capped at a quarter of the shortest edge.
MAX_LAG_VOXELS = 24
_NODES = 256


@dataclass(frozen=True)
class WholeFit:
    """Result of the whole-image Ξ2/Ξ3 fit (module docstring).

    ``h`` (nm) the lags 0 … L·s, ``C`` the measured Ĉ_D(h) (``C[0]`` = V̂_D), ``C_fit`` the
    fitted model; ``rmse`` the RMS residual over lags 1 … L.  V2, V3 of the fitted model.
    """

    mu: float
    eta: float
    theta: float
    lambda_y: float
    V_D: float
    V2: float
    V3: float
    h: np.ndarray
    C: np.ndarray
    C_fit: np.ndarray
    rmse: float
    voxel_size: float
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "mu": self.mu, "eta": self.eta, "theta": self.theta, "lambda_y": self.lambda_y,
            "V_D": self.V_D, "V2": self.V2, "V3": self.V3,
            "h": [float(v) for v in self.h], "C": [float(v) for v in self.C],
            "C_fit": [float(v) for v in self.C_fit], "rmse": self.rmse,
            "notes": list(self.notes),
        }


def ball_pair_miss(h: np.ndarray, theta: float, lambda_y: float,
                   nodes: int = _NODES) -> tuple[float, np.ndarray]:
    """q1 = P(o ∉ Ξ3) and q2(h) = P(o ∉ Ξ3, h ∉ Ξ3) of the Boolean model of balls with
    R ~ Exp(θ), intensity λ_Y (nm units): q1 = exp(−λ_Y 8π/θ³) exactly, q2 by Gauss–Legendre
    over R ∈ [0, 40/θ] of |B_R ∪ (B_R + h)| = 2|B_R| − π(4R + h)(2R − h)²/12 (h < 2R)."""
    from .grf import small_ball_factors

    _, q2 = small_ball_factors(np.asarray(h, np.float64), 40.0 / theta, theta, lambda_y,
                               nodes)
    q1 = math.exp(-lambda_y * 8.0 * math.pi / theta**3)
    return q1, np.asarray(q2, np.float64)


def model_cbd_coverage(h: np.ndarray, mu: float, eta: float, theta: float,
                       lambda_y: float) -> np.ndarray:
    """C_D(h) = C2(h; μ, η) · q2(h; θ, λ_Y): two-point coverage of Ξ2 ∖ Ξ3 (module docstring)."""
    _, q2 = ball_pair_miss(h, theta, lambda_y)
    return np.asarray(two_point_coverage_grf(h, mu, eta), np.float64) * q2


def masked_cbd_coverage(labels: Any, voxel_size: float, max_lag: int,
                        backend: str | Backend = "auto") -> np.ndarray:
    """Ĉ_D(k·s), k = 0 … max_lag, of the whole image: pairs both CBD / pairs both
    non-graphite, pooled over the three axes (``[0]`` = V̂_D)."""
    from .grf import _pooled_coverage

    be = get_backend(backend)
    lab = be.asarray(labels)
    gr = bool(be.xp.any(lab == 2))
    return _pooled_coverage(be, [(lab == 1, (lab != 2) if gr else None)], float(voxel_size),
                            int(max_lag))


def _mu_of(vd: float, q1: float) -> float:
    v2 = min(vd / q1, 1.0 - 1e-12)
    return float(-special.ndtri(v2))


def fit_coverage(c: np.ndarray, voxel_size: float) -> WholeFit:
    """Fit (μ, η, θ, λ_Y) to a measured Ĉ_D(k·s), k = 0 … L (``c[0]`` = V̂_D)."""
    s = float(voxel_size)
    c = np.asarray(c, np.float64)
    vd = float(c[0])
    if not 0.0 < vd < 1.0:
        raise InvalidInputError(
            f"the CBD fraction of the non-graphite voxels is {vd:.4g}: cannot fit mu")
    L = len(c) - 1
    h = np.arange(L + 1) * s
    hk, ck = h[1:], c[1:]

    def unpack(x: np.ndarray) -> tuple[float, float, float, float]:
        eta, theta = math.exp(float(x[0])), math.exp(float(x[1]))
        v3 = float(x[2])  # V3 = 1 − q1 (Eq. 24); μ from V̂_D = V2(μ)(1 − V3) exactly
        lam = -math.log1p(-v3) * theta**3 / (8.0 * math.pi)
        return _mu_of(vd, 1.0 - v3), eta, theta, lam

    def resid(x: np.ndarray) -> np.ndarray:
        mu, eta, theta, lam = unpack(x)
        return model_cbd_coverage(hk, mu, eta, theta, lam) - ck

    best = None
    v3_max = 1.0 - vd - 1e-6
    lo = np.array([math.log(1e-3 / s), math.log(1e-2 / s), 1e-9])
    hi = np.array([math.log(20.0 / s), math.log(20.0 / s), v3_max])
    for eta0 in (0.25 / s, 0.6 / s):
        for theta0 in (0.2 / s, 0.5 / s):
            for v3 in (0.05, 0.25):
                x0 = np.clip(np.array([math.log(eta0), math.log(theta0), v3]),
                             lo + 1e-6, hi - 1e-6)
                r = optimize.least_squares(resid, x0, bounds=(lo, hi), x_scale=1.0,
                                           xtol=1e-10, ftol=1e-12, gtol=1e-12)
                if best is None or r.cost < best.cost:
                    best = r
    assert best is not None
    mu, eta, theta, lam = unpack(best.x)
    notes: list[str] = []
    q1 = math.exp(-lam * 8.0 * math.pi / theta**3)
    if np.any(np.abs(best.x - lo) < 1e-3) or np.any(np.abs(best.x - hi) < 1e-3):
        notes.append("the whole-image fit ended at a bound of (eta, theta, lambda_y)")
    c_fit = np.concatenate([[vd], model_cbd_coverage(hk, mu, eta, theta, lam)])
    return WholeFit(mu=mu, eta=eta, theta=theta, lambda_y=lam, V_D=vd,
                    V2=float(special.ndtr(-mu)), V3=1.0 - q1, h=h, C=c, C_fit=c_fit,
                    rmse=float(np.sqrt(np.mean(best.fun**2))), voxel_size=s,
                    notes=tuple(notes))


def fit_whole(labels: Any, voxel_size: float, backend: str | Backend = "auto", *,
              max_lag: int | None = None, cbd_fraction: float | None = None) -> WholeFit:
    """Fit μ, η (Ξ2) and θ, λ_Y (Ξ3) from the whole label image (module docstring).

    ``max_lag`` (voxels): the largest lag L (default min(:data:`MAX_LAG_VOXELS`, shortest
    edge // 4)).  ``cbd_fraction``: the V_D to match exactly instead of the measured V̂_D
    (``cbagpu.fit.fit`` passes (V − V1)/(1 − V1) with the fitted V1, so that the model's
    V equals the image's, Eq. 25).
    """
    be = get_backend(backend)
    lab = be.asarray(labels)
    L = min(MAX_LAG_VOXELS, min(lab.shape) // 4) if max_lag is None else int(max_lag)
    if L < 4:
        raise InvalidInputError(f"the whole-image fit needs at least 4 lags, got {L}")
    c = masked_cbd_coverage(lab, voxel_size, L, be)
    if cbd_fraction is not None:
        c[0] = float(cbd_fraction)
    return fit_coverage(c, voxel_size)
