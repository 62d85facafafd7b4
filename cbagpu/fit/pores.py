"""Calibration of the large-pore Boolean model Ξ3 (paper Section 3.2.3, Eqs. 22–26, Fig. A2).

For every θ tried, λ_Y follows from Eq. 25 so that the model's volume fraction V (Eq. 22)
equals the image's (V3 = 1 − (V − V1)/(V2(1 − V1)), the same for every θ unless μ depends on θ
through the small-pore correction of :mod:`cbagpu.fit.grf`), and θ is chosen by minimising
the L1 distance

    D(θ) = ∫ |CPSD_image(r) − mean_i CPSD_i(r; θ)| dr        (nm; Riemann sum, step s)

between the CPSD (Eq. 26, pore phase, :func:`cbagpu.measure.cpsd.cpsd`) of the image and the
mean CPSD of ``realizations`` model realizations of the image's shape at the image's voxel
size.  θ runs over the paper's grid (NOTES §8) first; if the best grid value is at an end of
the grid, the grid is extended geometrically (factor 1.25, at most 8 steps, within
mean radii 1/θ between half a voxel and an eighth of the image's shortest edge) until the
minimum is interior; then a bounded 1-D refinement (``scipy.optimize.minimize_scalar``,
bounded Brent on log θ between the neighbours of the best grid point, ≤ 6 evaluations).

**Common random numbers.**  Ξ3(θ) with λ_Y = κθ³ has the law of (1/θ)·Ξ3*(κ), where Ξ3*(κ) is
the Boolean model of open balls with Exp(1) radii and intensity κ (lengths in units of 1/θ).
For each realization i one Ξ3* of intensity κ_max is drawn (germ cells keyed by
(seed_i, cell) with the engine's counter-based Philox generator, each germ with a uniform
mark u); every θ rasterises the same germs with u < κ/κ_max (an independent thinning, so
Ξ3*(κ)) scaled by 1/(θ s) voxels.  Ξ1 and the field Z do not depend on θ: each realization's
graphite mask and field Z (``cbagpu.simulate``: ``window_spheroids`` + ``paint_grains``,
``gaussian_field``, seed_i = seed + i) are made once; a θ only moves the threshold μ (when
the small-pore correction makes μ depend on θ) and repaints the balls (Eq. 4: pore = not
graphite and (Z < μ or in a ball)).  D(θ) is then a smooth function of θ up to the
digitisation of the balls, and the differences between θ values are not swamped by
realization noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from cbagpu.backend import Backend, get_backend
from cbagpu.errors import InvalidInputError
from cbagpu.params import CBAParams
from cbagpu.theory import lambda_y_from_volume_fraction

__all__ = ["THETA_GRID", "PoreFit", "cpsd_l1", "fit_pores"]

#: The θ grid of Section 3.2.3 (NOTES §8) [nm⁻¹].
THETA_GRID: tuple[float, ...] = (0.0125, 0.0118, 0.0111, 0.0105, 0.0100, 0.0095, 0.0091)
_EXTEND = 1.25
_MAX_EXTEND = 8
_REFINE_EVALS = 6
_CAP = -math.log(1e-9)  # radius cap of the standard balls (the engine's EXTENT_TAIL)
_STD_CELL = 16.0  # edge of the germ cells of Ξ3* in units of 1/θ
_COMPONENT = 5  # germ component key of Ξ3* (the engine uses 1 and 3)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PoreFit:
    """Result of the Ξ3 fit (Figure A2: ``image_cpsd`` and ``mean_cpsd[θ]`` on ``r``).

    ``thetas`` (nm⁻¹) and ``distances`` (nm) in the order tried; ``r`` (nm) the common radius
    grid; ``mean_cpsd`` one row per θ tried; ``mu`` the μ used at the chosen θ.
    """

    theta: float
    lambda_y: float
    V3: float
    V: float
    thetas: np.ndarray
    distances: np.ndarray
    r: np.ndarray
    image_cpsd: np.ndarray
    mean_cpsd: np.ndarray
    realizations: int
    seeds: tuple[int, ...]
    shape: tuple[int, int, int]
    voxel_size: float
    mu: float = math.nan
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "theta": self.theta,
            "lambda_y": self.lambda_y,
            "V3": self.V3,
            "V": self.V,
            "mu_at_theta": self.mu,
            "tried": [
                {"theta": float(t), "l1_nm": float(d)}
                for t, d in zip(self.thetas, self.distances, strict=True)
            ],
            "r": self.r.tolist(),
            "image_cpsd": self.image_cpsd.tolist(),
            "mean_cpsd": self.mean_cpsd.tolist(),
            "realizations": self.realizations,
            "seeds": list(self.seeds),
            "shape": list(self.shape),
            "notes": list(self.notes),
        }


def cpsd_l1(a: np.ndarray, b: np.ndarray, voxel_size: float) -> float:
    """∫|a − b| dr on the integer-radius grid r = k·s (curves padded with zeros), in nm."""
    n = max(len(a), len(b))
    pa = np.zeros(n)
    pb = np.zeros(n)
    pa[: len(a)] = a
    pb[: len(b)] = b
    return float(np.abs(pa - pb).sum() * voxel_size)


class _StandardBalls:
    """Ξ3*: open balls, Exp(1) radii (capped at 20.7), intensity κ, drawn per cell."""

    def __init__(self, kappa_max: float, seed: int) -> None:
        from cbagpu.simulate.germs import cell_generator

        self.kappa = kappa_max
        self.seed = seed
        self._gen = cell_generator
        self._cells: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _cell(self, c: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        got = self._cells.get(c)
        if got is None:
            rng = self._gen(self.seed, _COMPONENT, c)
            n = int(rng.poisson(self.kappa * _STD_CELL**3))
            centres = (rng.random((n, 3)) + np.asarray(c, float)) * _STD_CELL
            radii = np.minimum(rng.exponential(1.0, n), _CAP)
            marks = rng.random(n)
            got = (centres, radii, marks)
            self._cells[c] = got
        return got

    def window(self, shape: tuple[int, int, int], t: float, kappa: float) -> Any:
        """The balls (voxel units) of (1/t)·Ξ3*(κ) that reach the window [0, shape); Ξ3*(κ)
        is the independent thinning (mark < κ/κ_max) of the drawn process."""
        from cbagpu.simulate.germs import Balls

        hi_std = np.asarray(shape, float) * t + _CAP
        a = np.floor(-_CAP / _STD_CELL).astype(int)
        b = np.floor(hi_std / _STD_CELL).astype(int)
        parts = [
            self._cell((i, j, k))
            for i in range(a, b[0] + 1)
            for j in range(a, b[1] + 1)
            for k in range(a, b[2] + 1)
        ]
        centres = np.concatenate([p[0] for p in parts]) / t
        radii = np.concatenate([p[1] for p in parts]) / t
        marks = np.concatenate([p[2] for p in parts])
        shp = np.asarray(shape, float)
        keep = np.all(
            (centres + radii[:, None] >= -1e-6) & (centres - radii[:, None] <= shp - 1 + 1e-6),
            axis=1,
        ) & (marks < kappa / self.kappa)
        return Balls(centres[keep], radii[keep])


def fit_pores(
    labels: Any,
    voxel_size: float,
    params: CBAParams,
    *,
    realizations: int = 3,
    seed: int = 0,
    theta_grid: tuple[float, ...] = THETA_GRID,
    backend: str | Backend = "auto",
    progress: Progress | None = None,
    refine: bool = True,
    xi2_for_theta: Callable[[float], tuple[float, float]] | None = None,
) -> PoreFit:
    """Fit θ and λ_Y of Ξ3 (Section 3.2.3; module docstring).

    ``params`` holds the fitted Ξ1 and Ξ2 parameters (its θ, λ_Y are ignored).  The image's
    solid fraction V (labels 1, 2) and the model's V1, V2 fix V3 by Eqs. 22–25.
    ``xi2_for_theta(θ) -> (μ, λ_Y)`` lets μ depend on θ (the small-pore correction of
    :func:`cbagpu.fit.grf.correct_for_small_pores`); default: μ = ``params.mu`` and λ_Y of
    Eq. 25.  The field Z of each realization is kept, so a θ-dependent μ only moves the
    threshold (η stays ``params.eta``); κ = λ_Y/θ³ may then vary with θ, and the balls of
    κ are an independent thinning of one Ξ3* per realization (common random numbers).

    Raises ValueError when V ≤ V1 (no room for CBD).  When V ≥ V1 + V2(1 − V1) the model
    needs no large pores: λ_Y = 0 is returned (with a note) without any realization.
    """
    from cbagpu.measure.cpsd import cpsd
    from cbagpu.simulate.germs import window_spheroids
    from cbagpu.simulate.grf import gaussian_field
    from cbagpu.simulate.raster import paint_grains
    from cbagpu.theory import graphite_densities, v2

    be = get_backend(backend)
    xp = be.xp
    s = float(voxel_size)
    lab = be.asarray(labels)
    shape = tuple(int(v) for v in lab.shape)
    V = float(xp.count_nonzero(lab > 0)) / lab.size
    V1 = graphite_densities(params, s).V1 if params.lambda_x > 1e-25 else 0.0
    V2 = float(v2(params.mu))
    x = (V - V1) / (V2 * (1.0 - V1))
    notes: list[str] = []
    if not x > 0.0:
        raise InvalidInputError(
            f"the image's solid fraction V = {V:.4f} is not above the graphite fraction "
            f"V1 = {V1:.4f}: the model has no room for CBD (Eq. 25)"
        )
    if x >= 1.0:
        notes.append(
            f"V = {V:.4f} >= V1 + V2 (1 - V1) = {V1 + V2 * (1 - V1):.4f}: no large pores "
            "are needed (lambda_y = 0; theta kept from the grid)"
        )
        th = float(np.median(theta_grid))
        return PoreFit(th, 0.0, 0.0, V, np.asarray([]), np.asarray([]), np.zeros(0),
                       np.zeros(0), np.zeros((0, 0)), 0, (), shape, s, params.mu,
                       tuple(notes))

    def default_map(theta: float) -> tuple[float, float]:
        return params.mu, float(lambda_y_from_volume_fraction(V, V1, V2, theta))

    xi2 = xi2_for_theta or default_map
    v3_0 = 1.0 - x
    kappa_max = -math.log1p(-min(0.99, max(2.0 * v3_0, v3_0 + 0.2))) / (8.0 * math.pi)
    th_lo = 1.0 / (min(shape) / 8.0 * s)  # mean radius ≤ shortest edge / 8
    th_hi = 2.0 / s  # mean radius ≥ half a voxel

    img_c = cpsd(lab == 0, s, be).value
    seeds = tuple(int(seed) + i for i in range(int(realizations)))
    vp = params.to_voxel(s)
    fields, graphite = [], []
    for i, sd in enumerate(seeds):
        fields.append(gaussian_field(vp.eta, shape, sd, backend=be))
        g = xp.zeros(shape, dtype=xp.uint8)
        if params.lambda_x > 1e-25:
            paint_grains(be, g, window_spheroids(vp, sd, (0, 0, 0), shape), (0, 0, 0), 1)
        graphite.append(g != 0)
        if progress is not None:
            progress("base realizations", i + 1, len(seeds))
    std = [_StandardBalls(kappa_max, sd) for sd in seeds]
    cache: dict[float, tuple[float, np.ndarray, float, float]] = {}
    order: list[float] = []

    def evaluate(theta: float) -> float:
        theta = float(theta)
        if theta in cache:
            return cache[theta][0]
        mu_t, lam_t = xi2(theta)
        kappa = lam_t / theta**3
        if kappa > std[0].kappa:
            notes.append("kappa above the drawn maximum: large-pore germs redrawn")
            for j, sd in enumerate(seeds):
                std[j] = _StandardBalls(2.0 * kappa, sd)
        curves = []
        for z, g, sb in zip(fields, graphite, std, strict=True):
            m = xp.zeros(shape, dtype=xp.uint8)
            if kappa > 0:
                paint_grains(be, m, sb.window(shape, theta * s, kappa), (0, 0, 0), 1)
            pore = ~g & ((z < np.float32(mu_t)) | (m != 0))
            curves.append(cpsd(pore, s, be).value)
            del m, pore
        n = max(len(c) for c in curves)
        mean = np.zeros(n)
        for c in curves:
            mean[: len(c)] += c
        mean /= len(curves)
        d = cpsd_l1(img_c, mean, s)
        cache[theta] = (d, mean, mu_t, lam_t)
        order.append(theta)
        if progress is not None:
            progress("theta", len(order), len(order))
        return d

    grid = sorted({float(t) for t in theta_grid if th_lo <= t <= th_hi})
    if not grid:
        lo, hi = min(theta_grid), max(theta_grid)
        grid = sorted({min(max(lo, th_lo), th_hi), max(min(hi, th_hi), th_lo)})
        notes.append(f"theta grid clipped to the resolvable range [{th_lo:.3g}, {th_hi:.3g}]")
    for t in grid:
        evaluate(t)
    for _ in range(_MAX_EXTEND):
        best = min(grid, key=lambda t: cache[t][0])
        if best == grid[0] and grid[0] / _EXTEND >= th_lo:
            grid.insert(0, grid[0] / _EXTEND)
            evaluate(grid[0])
        elif best == grid[-1] and grid[-1] * _EXTEND <= th_hi:
            grid.append(grid[-1] * _EXTEND)
            evaluate(grid[-1])
        else:
            break
    best = min(grid, key=lambda t: cache[t][0])
    i = grid.index(best)
    if len(grid) > 1 and best in (grid[0], grid[-1]):
        notes.append(f"the CPSD distance is smallest at the end of the theta range ({best:.4g})")
    if refine and len(grid) > 1:
        lo = grid[max(i - 1, 0)]
        hi = grid[min(i + 1, len(grid) - 1)]
        optimize.minimize_scalar(
            lambda u: evaluate(math.exp(u)),
            bounds=(math.log(lo), math.log(hi)),
            method="bounded",
            options={"maxiter": _REFINE_EVALS, "xatol": 2e-3},
        )
        best = min(cache, key=lambda t: cache[t][0])
    n = max(len(cache[t][1]) for t in order)
    curves = np.zeros((len(order), max(n, len(img_c))))
    for j, t in enumerate(order):
        curves[j, : len(cache[t][1])] = cache[t][1]
    img = np.zeros(curves.shape[1])
    img[: len(img_c)] = img_c
    _, _, mu_b, lam_b = cache[best]
    v3 = -math.expm1(-lam_b * 8.0 * math.pi / best**3)
    return PoreFit(
        theta=best,
        lambda_y=lam_b,
        V3=v3,
        V=V,
        thetas=np.asarray(order),
        distances=np.asarray([cache[t][0] for t in order]),
        r=np.arange(curves.shape[1]) * s,
        image_cpsd=img,
        mean_cpsd=curves,
        realizations=len(seeds),
        seeds=seeds,
        shape=shape,
        voxel_size=s,
        mu=mu_b,
        notes=tuple(notes),
    )
