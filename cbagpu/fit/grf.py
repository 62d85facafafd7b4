"""Calibration of the excursion set Ξ2 = {Z ≥ μ} (paper Section 3.2.2, Eqs. 2, 18–21, Fig. 4).

From a region of interest (ROI) of the image without graphite and without large pores:

* V̂2 = the fraction of CBD (label 1) voxels of the ROI; μ̂ = Φ⁻¹(1 − V̂2) (Eq. 19);
* Ĉ2(h) at the lattice lags h = k·s along the three axes
  (:func:`cbagpu.measure.covariance.two_point_coverage`, the unbiased window estimator),
  pooled over the three axes and over the boxes of the ROI by pair counts (numerators and
  denominators summed, i.e. every pair counts once).  Axis lags are used, not the radial
  bins, because the field is sampled at the voxel centres: C at a lattice lag is the
  continuum C(h) at exactly that |h|, while a radial bin mixes several |h|;
* ρ̂(h) by inverting the corrected Eq. 21 (NOTES §4) at every lag
  (:func:`cbagpu.theory.rho_from_two_point_coverage`, vectorised bisection; lags whose Ĉ
  falls outside the attainable range give NaN and are dropped);
* η̂ by least squares of ρ̂(h_k) − 1/(1 + (η h_k)²) over the lags k = 1 … K, K the last lag
  before ρ̂ first drops below :data:`RHO_FIT_MIN` (the noise floor of the tail), at most the
  ROI's largest lag.

**Automatic ROI** (default).  "Large pores" are defined relative to the fitted field itself:
a pore voxel belongs to a large pore when a closed ball of radius r* inside the pore phase
covers it (the opening of the pore phase by B(r*), the CPSD construction of Eq. 26), where
r* is the smallest integer radius (voxels) at which the CPSD of the pore phase of a pure
excursion-set realization {Z < μ̂} with the current (μ̂, η̂) (a 96³ window at the image's
voxel size, fixed seed) is below :data:`LARGE_PORE_LEVEL` = 1e-3: the field alone puts
balls of radius r* in less than 0.1 % of its pore space, so a box avoiding such balls is
(almost) not selected on the field's own pores.  Forbidden = graphite ∪ large pores.
The image is cut into blocks of b voxels (b = ⌈max(shape)/48⌉); the largest box of
forbidden-free blocks whose every edge is at least ``min_edge`` voxels
(max(16, ⌈6/(η̂ s)⌉): half of it reaches ρ = 0.1, the end of the fitted lags) is found
exhaustively (3-D prefix sums, longest free run along x for every z and y range); up to
:data:`MAX_BOXES` − 1 further boxes are added greedily (each the largest box disjoint from
the previous ones, at least min_edge in every direction and at least 1/16 of the first one's
volume).  Two passes: pass 1 uses only the graphite mask and gives a first (μ̂, η̂), pass 2
excludes the large pores defined with them.

Ξ3 balls smaller than r* cannot be told from the field's pores and stay in an automatic ROI:
it shows Ξ2 ∖ Ξ3', Ξ3' the small balls, so V̂2 estimates V2·P(o ∉ Ξ3').  Once θ and λ_Y
are fitted, :func:`correct_for_small_pores` divides V̂2 and Ĉ(h) by the closed-form
probabilities that one point / two points at distance h miss Ξ3' and refits μ, η.
``cbagpu.fit.fit`` solves this correction together with Eq. 25 (fixed point) for every θ
tried in the Ξ3 stage, so θ, λ_Y and μ are chosen consistently.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, special

from cbagpu.backend import Backend, get_backend
from cbagpu.errors import InvalidInputError
from cbagpu.theory import covariance, rho_from_two_point_coverage

__all__ = [
    "Box",
    "GRFFit",
    "LARGE_PORE_LEVEL",
    "MAX_BOXES",
    "RHO_FIT_MIN",
    "auto_roi",
    "correct_for_small_pores",
    "fit_grf",
    "fit_grf_boxes",
    "large_pore_mask",
    "large_pore_radius",
    "largest_free_box",
    "parse_roi",
    "small_ball_factors",
]

#: CPSD level of a pure excursion set's pore phase that defines the large-pore radius r*.
LARGE_PORE_LEVEL = 1e-3
#: The least-squares fit of η uses lags until ρ̂ first drops below this value.
RHO_FIT_MIN = 0.1
#: Most boxes in an automatic ROI.
MAX_BOXES = 16
#: Smallest edge (voxels) of an automatic ROI box.
MIN_ROI_EDGE = 16
_GRID = 48  # blocks along the longest axis for the box search
_SIM_EDGE = 96  # edge of the pure-field realization that defines r*


@dataclass(frozen=True)
class Box:
    """A box [z0, z1) × [y0, y1) × [x0, x1) of voxels."""

    z0: int
    z1: int
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return slice(self.z0, self.z1), slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.z1 - self.z0, self.y1 - self.y0, self.x1 - self.x0)

    @property
    def volume(self) -> int:
        return int(np.prod(self.shape))

    def __str__(self) -> str:
        return f"{self.z0}:{self.z1},{self.y0}:{self.y1},{self.x0}:{self.x1}"

    def to_dict(self) -> dict[str, Any]:
        return {"roi": str(self), "shape": list(self.shape)}


def parse_roi(text: str, shape: tuple[int, ...] | None = None) -> Box:
    """Parse ``"z0:z1,y0:y1,x0:x1"`` (voxel indices, half-open) into a :class:`Box`.

    Raises ValueError for malformed text, empty ranges or ranges outside ``shape``.
    """
    parts = str(text).split(",")
    if len(parts) != 3:
        raise InvalidInputError(f"ROI must be 'z0:z1,y0:y1,x0:x1', got {text!r}")
    vals: list[int] = []
    for i, part in enumerate(parts):
        ab = part.split(":")
        if len(ab) != 2:
            raise InvalidInputError(f"ROI must be 'z0:z1,y0:y1,x0:x1', got {text!r}")
        try:
            a, b = int(ab[0]), int(ab[1])
        except ValueError:
            raise InvalidInputError(f"ROI bounds must be integers, got {text!r}") from None
        if not 0 <= a < b:
            raise InvalidInputError(f"ROI range {part!r} must satisfy 0 <= start < stop")
        if shape is not None and b > shape[i]:
            raise InvalidInputError(
                f"ROI range {part!r} exceeds the image's {'zyx'[i]} size {shape[i]}"
            )
        vals += [a, b]
    return Box(*vals)


@dataclass(frozen=True)
class GRFFit:
    """Result of the Ξ2 fit (Section 3.2.2; Figure 4: ``rho_hat`` vs ``rho_fit`` at ``h``).

    Attributes
    ----------
    mu, eta : the fitted μ̂ [-] (Eq. 19) and η̂ [nm⁻¹] (Eq. 2).
    V2 : V̂2, the CBD fraction of the ROI.
    boxes : the ROI's boxes; ``roi_source`` "user" or "auto".
    h : lags (nm), k·s for k = 0 … L.  ``C`` pooled Ĉ2(h); ``rho_hat`` ρ̂(h) (NaN where Ĉ is
        outside the attainable range); ``rho_fit`` = ρ(h; η̂) of Eq. 2.
    n_fit_lags : K, the lags 1 … K used in the least squares; ``rmse`` their RMS residual.
    large_pore_radius : r* (nm) of the automatic ROI (NaN for a user ROI).
    forbidden_fraction : fraction of the image that is graphite or large pore (auto ROI).
    small_pore_correction : 1/q1, the factor applied to the ROI's CBD fraction for the small
        Ξ3 balls left in it (:func:`correct_for_small_pores`; 1 = none).
    """

    mu: float
    eta: float
    V2: float
    boxes: tuple[Box, ...]
    roi_source: str
    h: np.ndarray
    C: np.ndarray
    rho_hat: np.ndarray
    rho_fit: np.ndarray
    n_fit_lags: int
    rmse: float
    voxel_size: float
    large_pore_radius: float = math.nan
    forbidden_fraction: float = math.nan
    notes: tuple[str, ...] = field(default=())
    small_pore_correction: float = 1.0

    @property
    def roi_voxels(self) -> int:
        return int(sum(b.volume for b in self.boxes))

    def to_dict(self) -> dict[str, Any]:
        def fl(a: np.ndarray) -> list[float | None]:
            return [None if not math.isfinite(v) else float(v) for v in a]

        return {
            "mu": self.mu,
            "eta": self.eta,
            "V2": self.V2,
            "roi_source": self.roi_source,
            "boxes": [b.to_dict() for b in self.boxes],
            "roi_voxels": self.roi_voxels,
            "large_pore_radius_nm": None
            if not math.isfinite(self.large_pore_radius)
            else self.large_pore_radius,
            "forbidden_fraction": None
            if not math.isfinite(self.forbidden_fraction)
            else self.forbidden_fraction,
            "h": fl(self.h),
            "C": fl(self.C),
            "rho_hat": fl(self.rho_hat),
            "rho_fit": fl(self.rho_fit),
            "n_fit_lags": self.n_fit_lags,
            "rmse": self.rmse,
            "small_pore_correction": self.small_pore_correction,
            "notes": list(self.notes),
        }


# ------------------------------------------------------------------------------ estimation
def _pooled_coverage(
    be: Backend, masks: list[tuple[Any, Any]], voxel_size: float, max_lag: int
) -> np.ndarray:
    """Pooled C(k), k = 0..max_lag, over the axis lags of all boxes.

    ``masks`` holds (CBD, valid) pairs; ``valid`` is None (the whole box) or the
    non-graphite voxels: then C(k) = #pairs both CBD / #pairs both valid (graphite hides
    Ξ2, which is independent of Ξ1, so the masked ratio estimates the same C)."""
    from cbagpu.measure.covariance import two_point_coverage

    num = np.zeros(max_lag + 1)
    den = np.zeros(max_lag + 1)
    k = np.arange(max_lag + 1, dtype=np.float64)
    lag = max_lag * voxel_size
    for m, valid in masks:
        tpc = two_point_coverage(m, voxel_size, lag, be, precision="double")
        tv = None if valid is None else two_point_coverage(valid, voxel_size, lag, be,
                                                           precision="double")
        n = np.asarray(m.shape, np.float64)
        for i in range(3):
            d = (n[i] - k) * np.prod(np.delete(n, i))
            num += tpc.axes[i] * d
            den += d if tv is None else tv.axes[i] * d
    return num / den


def fit_grf_boxes(
    labels: Any,
    voxel_size: float,
    boxes: list[Box] | tuple[Box, ...],
    backend: str | Backend = "auto",
    *,
    roi_source: str = "user",
    max_lag: int | None = None,
) -> GRFFit:
    """Fit μ and η of Ξ2 on the given boxes of a label image (see the module docstring).

    Graphite voxels in a box (a user ROI) are left out: V̂2 = CBD / non-graphite voxels and
    Ĉ(h) = pairs both CBD / pairs both non-graphite.

    Raises ValueError when the ROI holds graphite, has no CBD or no pore voxel, or is
    smaller than 4 voxels along an axis.
    """
    be = get_backend(backend)
    s = float(voxel_size)
    boxes = tuple(boxes)
    lab = be.asarray(labels)
    masks = []
    n_cbd = n_tot = n_gr = 0
    for b in boxes:
        sub = lab[b.slices]
        if min(sub.shape) < 4:
            raise InvalidInputError(f"ROI box {b} is too small: every edge must be >= 4 voxels")
        gr = int(be.xp.count_nonzero(sub == 2))
        n_gr += gr
        m = sub == 1
        n_cbd += int(be.xp.count_nonzero(m))
        n_tot += int(m.size) - gr
        masks.append((m, (sub != 2) if gr else None))
    notes: list[str] = []
    if n_gr:
        notes.append(f"the ROI contains {n_gr} graphite voxels: they are left out of V2 and "
                     "C(h) (masked estimator)")
    if n_cbd == 0 or n_cbd == n_tot:
        raise InvalidInputError(
            f"the Gaussian-field ROI {', '.join(map(str, boxes))} has "
            f"{'no CBD' if n_cbd == 0 else 'no pore'} voxels: cannot estimate mu"
        )
    v2 = n_cbd / n_tot
    L = min(min(b.shape) - 1 for b in boxes)
    if max_lag is not None:
        L = min(L, int(max_lag))
    c = _pooled_coverage(be, masks, s, L)
    mu, eta, rho_hat, n_lags, rmse, more = _fit_mu_eta(v2, c, s)
    notes.extend(more)
    h = np.arange(L + 1) * s
    return GRFFit(
        mu=mu,
        eta=eta,
        V2=v2,
        boxes=boxes,
        roi_source=roi_source,
        h=h,
        C=c,
        rho_hat=rho_hat,
        rho_fit=np.asarray(covariance(h, eta), dtype=np.float64),
        n_fit_lags=n_lags,
        rmse=rmse,
        voxel_size=s,
        notes=tuple(notes),
    )


def _fit_mu_eta(
    v2: float, c: np.ndarray, s: float
) -> tuple[float, float, np.ndarray, int, float, list[str]]:
    """μ̂ (Eq. 19), ρ̂ (Eq. 21 inverted) and η̂ (least squares on Eq. 2) from V̂2 and Ĉ(k·s)."""
    notes: list[str] = []
    mu = float(-special.ndtri(v2))  # Φ⁻¹(1 − V̂2), Eq. 19
    L = len(c) - 1
    rho_hat = np.asarray(rho_from_two_point_coverage(c, mu), dtype=np.float64)
    rho_hat[0] = 1.0
    h = np.arange(L + 1) * s
    below = np.flatnonzero(~(rho_hat[1:] >= RHO_FIT_MIN))
    K = int(below[0]) if below.size else L  # lags 1..K
    if K < 2:
        K = min(2, L)
        notes.append("rho falls below 0.1 within two lags: eta is poorly resolved at this s")
    hk, rk = h[1 : K + 1], rho_hat[1 : K + 1]
    ok = np.isfinite(rk)
    hk, rk = hk[ok], rk[ok]
    if hk.size == 0:
        raise InvalidInputError("no lag of the ROI gives a usable rho estimate: cannot fit eta")
    # start: ρ = 1/(1 + (ηh)²) at the first lag
    r0 = float(np.clip(rk[0], 0.05, 0.99))
    eta0 = math.sqrt(1.0 / r0 - 1.0) / hk[0]

    def resid(x: np.ndarray) -> np.ndarray:
        return rk - np.asarray(covariance(hk, math.exp(float(x[0]))))

    res = optimize.least_squares(resid, [math.log(eta0)], method="lm", xtol=1e-12)
    eta = math.exp(float(res.x[0]))
    rmse = float(np.sqrt(np.mean(res.fun**2)))
    return mu, eta, rho_hat, int(hk.size), rmse, notes


@functools.lru_cache(maxsize=4)
def _leggauss(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def small_ball_factors(
    h: np.ndarray, r_star: float, theta: float, lambda_y: float, nodes: int = 256
) -> tuple[float, np.ndarray]:
    """q1 = P(o ∉ Ξ3') and q2(h) = P(o, h ∉ Ξ3') for Ξ3' = the balls of Ξ3 with R < r*.

    Ξ3' is the Boolean model of the balls of radius R < r* (intensity λ_Y, R ~ Exp(θ)
    restricted): q1 = exp(−λ_Y E[|B_R|; R < r*]), q2(h) = exp(−λ_Y E[|B_R ∪ (B_R + h)|; R < r*])
    with |B_R ∪ (B_R + h)| = 2|B_R| − π(4R + h)(2R − h)²/12 for h < 2R (Gauss–Legendre in R).
    All lengths in nm.
    """
    x, w = _leggauss(nodes)
    r = 0.5 * r_star * (x + 1.0)
    wr = 0.5 * r_star * w * theta * np.exp(-theta * r)  # density of Exp(θ) times the weights
    vol = 4.0 / 3.0 * math.pi * r**3
    q1 = math.exp(-lambda_y * float(wr @ vol))
    hh = np.asarray(h, dtype=np.float64)[:, None]
    lens = np.where(hh < 2 * r, math.pi * (4 * r + hh) * (2 * r - hh) ** 2 / 12.0, 0.0)
    union = 2 * vol - lens
    q2 = np.exp(-lambda_y * (union @ wr))
    return q1, q2


def correct_for_small_pores(fit: GRFFit, theta: float, lambda_y: float) -> GRFFit:
    """Refit μ, η after removing the bias of the Ξ3 balls smaller than r* left in the ROI.

    In an automatic ROI the balls of Ξ3 with radius ≥ r* are excluded but the smaller ones
    remain: the ROI shows Ξ2 ∖ Ξ3', so V̂2 = V2·q1 and Ĉ(h) = C2(h)·q2(h)
    (:func:`small_ball_factors`, with the fitted θ, λ_Y).  Returns the fit of
    V̂2/q1 and Ĉ/q2.  A user ROI (no r*) is returned unchanged.
    """
    if not math.isfinite(fit.large_pore_radius) or lambda_y <= 0:
        return fit
    q1, q2 = small_ball_factors(fit.h, fit.large_pore_radius, theta, lambda_y)
    v2 = fit.V2 / q1
    c = fit.C / q2
    c[0] = v2
    mu, eta, rho_hat, n_lags, rmse, notes = _fit_mu_eta(v2, c, fit.voxel_size)
    return GRFFit(
        mu=mu, eta=eta, V2=v2, boxes=fit.boxes, roi_source=fit.roi_source, h=fit.h, C=c,
        rho_hat=rho_hat, rho_fit=np.asarray(covariance(fit.h, eta), dtype=np.float64),
        n_fit_lags=n_lags, rmse=rmse, voxel_size=fit.voxel_size,
        large_pore_radius=fit.large_pore_radius, forbidden_fraction=fit.forbidden_fraction,
        notes=(*fit.notes, *notes), small_pore_correction=1.0 / q1,
    )


# ----------------------------------------------------------------------------- large pores
def large_pore_mask(pore: Any, radius_vox: float, backend: str | Backend = "auto") -> Any:
    """Opening of the pore phase by the closed ball of radius r (voxels): the pore voxels
    covered by a ball of radius r inside the pore phase (Eq. 26's construction; erosion
    {EDT > r}, dilation {distance to the eroded set ≤ r})."""
    be = get_backend(backend)
    p = be.asarray(pore).astype(bool, copy=False)
    if not bool(p.any()):
        return be.xp.zeros(p.shape, dtype=bool)
    eroded = be.distance_transform_edt(p) > radius_vox
    if not bool(eroded.any()):
        return be.xp.zeros(p.shape, dtype=bool)
    if bool(eroded.all()):
        return p.copy()
    d = be.distance_transform_edt(~eroded)
    return (d <= radius_vox) & p


def large_pore_radius(
    mu: float, eta: float, voxel_size: float, backend: str | Backend = "auto", seed: int = 0
) -> float:
    """r* (voxels): smallest integer radius at which the CPSD of the pore phase {Z < μ} of a
    pure excursion set (96³ voxels, η at ``voxel_size``) is below :data:`LARGE_PORE_LEVEL`."""
    from cbagpu.measure.cpsd import cpsd
    from cbagpu.simulate.grf import gaussian_field

    be = get_backend(backend)
    z = gaussian_field(eta * voxel_size, (_SIM_EDGE,) * 3, seed, backend=be)
    c = cpsd(z < mu, 1.0, be)
    above = np.flatnonzero(c.value >= LARGE_PORE_LEVEL)
    return float(c.r[above[-1]] + 1.0) if above.size else 1.0


# ------------------------------------------------------------------------------ box search
def largest_free_box(
    forbidden: np.ndarray, min_edge: int = 1
) -> tuple[int, tuple[int, int, int, int, int, int]] | None:
    """The largest axis-aligned box of False cells of a 3-D boolean array, every edge ≥
    ``min_edge`` cells: ``(volume, (z0, z1, y0, y1, x0, x1))`` or None.

    Exhaustive over z and y ranges (prefix sums over z and y), the longest free run along x
    for each; ties go to the first found.
    """
    f = np.asarray(forbidden, dtype=bool)
    nz, ny, nx = f.shape
    q = np.zeros((nz + 1, ny + 1, nx), np.int32)
    q[1:, 1:] = f.cumsum(0).cumsum(1)
    y0s, y1s = np.triu_indices(ny + 1, k=min_edge)
    ar1 = np.arange(1, nx + 1, dtype=np.int32)[None, :]
    best: tuple[int, tuple[int, int, int, int, int, int]] | None = None
    for z0 in range(nz):
        for z1 in range(z0 + min_edge, nz + 1):
            if best is not None and (z1 - z0) * ny * nx <= best[0]:
                continue
            cnt = q[z1, y1s] - q[z0, y1s] - q[z1, y0s] + q[z0, y0s]  # (pairs, nx)
            # longest run of free cells along x ending at each x: x + 1 − (last blocked + 1)
            last = np.maximum.accumulate(np.where(cnt == 0, 0, ar1), axis=1)
            run = ar1 - last
            end = np.argmax(run, axis=1)
            best_run = run[np.arange(len(y0s)), end]
            best_end = end + 1
            vol = (z1 - z0) * (y1s - y0s) * best_run
            vol = np.where(best_run >= min_edge, vol, 0)
            i = int(np.argmax(vol))
            if vol[i] > 0 and (best is None or vol[i] > best[0]):
                x1 = int(best_end[i])
                best = (
                    int(vol[i]),
                    (z0, z1, int(y0s[i]), int(y1s[i]), x1 - int(best_run[i]), x1),
                )
    return best


def _free_boxes(forbidden: Any, be: Backend, min_edge: int) -> tuple[list[Box], int]:
    """Greedy largest forbidden-free boxes on a block grid (see module docstring)."""
    shape = tuple(int(v) for v in forbidden.shape)
    b = max(1, math.ceil(max(shape) / _GRID))
    nb = tuple(math.ceil(n / b) for n in shape)
    xp = be.xp
    pad = [(0, nb[i] * b - shape[i]) for i in range(3)]
    f = xp.pad(forbidden, pad, constant_values=True) if any(p[1] for p in pad) else forbidden
    blocks = f.reshape(nb[0], b, nb[1], b, nb[2], b).any(axis=(1, 3, 5))
    blocks = np.asarray(be.to_host(blocks))
    min_blocks = max(1, math.ceil(min_edge / b))
    boxes: list[Box] = []
    first = 0
    for _ in range(MAX_BOXES):
        found = largest_free_box(blocks, min_blocks)
        if found is None:
            break
        vol, (z0, z1, y0, y1, x0, x1) = found
        box = Box(
            z0 * b, min(z1 * b, shape[0]), y0 * b, min(y1 * b, shape[1]),
            x0 * b, min(x1 * b, shape[2]),
        )
        if min(box.shape) < min_edge:
            break
        if boxes and box.volume * 16 < first:
            break
        if not boxes:
            first = box.volume
        boxes.append(box)
        blocks[z0:z1, y0:y1, x0:x1] = True
    return boxes, b


def auto_roi(
    labels: Any,
    voxel_size: float,
    backend: str | Backend = "auto",
    *,
    mu: float | None = None,
    eta: float | None = None,
    seed: int = 0,
) -> tuple[list[Box], float, float]:
    """Boxes free of graphite and (when μ, η are given) of large pores.

    Returns ``(boxes, r_star_vox, forbidden_fraction)``; r* is NaN when μ, η are None.
    Raises ValueError (saying what size is needed) when no box of the minimum edge exists.
    """
    be = get_backend(backend)
    lab = be.asarray(labels)
    forbidden = lab == 2
    r_star = math.nan
    min_edge = MIN_ROI_EDGE
    if mu is not None and eta is not None:
        r_star = large_pore_radius(mu, eta, voxel_size, be, seed)
        forbidden = forbidden | large_pore_mask(lab == 0, r_star, be)
        min_edge = max(MIN_ROI_EDGE, math.ceil(6.0 / (eta * voxel_size)))
    frac = float(be.xp.count_nonzero(forbidden)) / forbidden.size
    boxes, _ = _free_boxes(forbidden, be, min_edge)
    if not boxes:
        what = "graphite" + (" and large pores" if mu is not None else "")
        raise InvalidInputError(
            f"no box of at least {min_edge}^3 voxels ({min_edge * voxel_size:g} nm edge) free of "
            f"{what} found in the {'x'.join(map(str, lab.shape))} image "
            f"({100 * frac:.1f} % forbidden); supply a larger image or a --grf-roi"
        )
    return boxes, r_star, frac


def fit_grf(
    labels: Any,
    voxel_size: float,
    backend: str | Backend = "auto",
    *,
    roi: str | Box | list[Box] | None = None,
    seed: int = 0,
) -> GRFFit:
    """Fit Ξ2 (μ, η) from a user ROI or the automatic ROI (two passes; module docstring)."""
    be = get_backend(backend)
    lab = be.asarray(labels)
    if roi is not None:
        if isinstance(roi, str):
            boxes = [parse_roi(roi, tuple(lab.shape))]
        elif isinstance(roi, Box):
            boxes = [roi]
        else:
            boxes = list(roi)
        return fit_grf_boxes(lab, voxel_size, boxes, be, roi_source="user")
    boxes, _, _ = auto_roi(lab, voxel_size, be)
    first = fit_grf_boxes(lab, voxel_size, boxes, be, roi_source="auto")
    boxes, r_star, frac = auto_roi(lab, voxel_size, be, mu=first.mu, eta=first.eta, seed=seed)
    fit = fit_grf_boxes(lab, voxel_size, boxes, be, roi_source="auto")
    return GRFFit(
        **{
            **{k: getattr(fit, k) for k in fit.__dataclass_fields__},
            "large_pore_radius": r_star * float(voxel_size),
            "forbidden_fraction": frac,
        }
    )
