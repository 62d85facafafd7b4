"""Two-point coverage of the model and the variance of a window's volume fraction
(paper Eqs. 4, 20-24; issue 18, item 2).

For Ξ = Ξ1 ∪ (Ξ2 ∩ Ξ3ᶜ) with Ξ1, Ξ2, Ξ3 independent (NOTES §2) every two-point probability
follows from the components':

* Ξ1 (graphite, Boolean model of isotropic oblate spheroids): the probability that two
  points x, x+h both miss Ξ1 is ``Q1(h) = exp(−λ_X (2 V̄ − γ̄(h)))`` with γ̄ the mean
  covariogram of the random grain (Matheron; Chiu et al. 2013, Eq. 3.8);
* Ξ3 (large pores, Boolean model of balls with radii ~ Exp(θ)):
  ``Q3(h) = exp(−λ_Y (2 V̄3 − γ̄3(h)))``, V̄3 = 8π/θ³, γ̄3 in closed form;
* Ξ2 (excursion set of the Gaussian field with the Cauchy covariance of Eq. 2): C2(h) by
  the bivariate normal (Eq. 21 with the factor 1/(2π),
  :func:`cbagpu.theory.two_point_coverage_grf`).

With B = Ξ2 ∖ Ξ3, C_B = C2·Q3, V_B = V2(1−V3), the labels' two-point coverages are

* pore (Ξᶜ):       C(h) = Q1(h) (1 − 2 V_B + C_B(h));
* solid (Ξ):       C(h) = 1 − 2(1 − V) + C_pore(h);
* graphite (Ξ1):   C(h) = 1 − 2(1 − V1) + Q1(h);
* CBD (B ∖ Ξ1):    C(h) = C_B(h) Q1(h).

The mean covariogram of the spheroid (half-axes r ≤ R, axis u uniform on the sphere) uses
the affine map T = diag(R, R, r) of the unit ball onto the grain:
γ_K(h) = R² r · γ_B(|T⁻¹h|), γ_B(d) = (4π/3)(1 − 3d/4 + d³/16) for d ≤ 2 (the unit ball's
covariogram), |T⁻¹h|² = |h|² (c²/r² + (1 − c²)/R²) with c = cos∠(h, u) uniform on [0, 1].
The c-integral is done by Gauss–Legendre on [0, c_max] (c_max where |T⁻¹h| = 2: the
integrand is smooth there), the expectation over the half-axes A, C (independent gammas,
the paper's convention NOTES §3) by Gauss–Legendre in probability (nodes F⁻¹(p_i)).
γ̄(0) equals V̄ of :func:`cbagpu.theory.spheroid_functionals` to ~1e-6 and −γ̄'(0) = S̄/4
to ~1e-4 (tests).

The variance of the volume fraction of a phase in a box window W of n_z × n_y × n_x
voxels, i.e. of the average of the indicator over the voxel centres (as the realizations
are sampled), is

    σ²(V_V; W) = |W|⁻² Σ_{x, y ∈ W} (C(x − y) − V²)
               = |W|⁻² Σ_h (C(h) − V²) Π_i (n_i − |h_i|),

summed over the lattice lags ("lattice"); for large windows the sum is replaced by the
integral ∫ (C(h) − V²) Π_i (n_i − |h_i|)₊ dh in spherical coordinates with the box's
direction-averaged covariogram ("continuous"; Lantuéjoul 1991, Matheron 1989).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import linalg, special

from cbagpu.errors import InvalidInputError
from cbagpu.params import CBAParams

__all__ = [
    "PHASES",
    "ball_covariogram",
    "component_two_point",
    "spheroid_covariogram",
    "two_point_coverage",
    "volume_fraction_variance",
    "volume_fraction_variances",
]

#: Phases of the label image whose C(h) is known (NOTES §1).
PHASES = ("solid", "pore", "graphite", "cbd")
#: Lattice sums are used up to this many lags (octant), the radial integral beyond.
LATTICE_LIMIT = 1 << 24

_N_AXES = 32  # generalised Gauss-Laguerre nodes for each half-axis
_N_COS = 24  # Gauss-Legendre nodes in cos(angle)
_UNIT_BALL = 4.0 / 3.0 * math.pi


def _gl(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


def _check_h(h: npt.ArrayLike) -> np.ndarray:
    a = np.asarray(h, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise InvalidInputError("lags h must be finite distances >= 0 (nm)")
    return a


def _check_params(params: CBAParams) -> None:
    if not isinstance(params, CBAParams):
        raise InvalidInputError(f"params must be a CBAParams, got {type(params).__name__}")


def gamma_nodes(shape: float, n: int = _N_AXES) -> tuple[np.ndarray, np.ndarray]:
    """Gauss rule for E f(X), X ~ Gamma(shape, rate 1): generalised Gauss–Laguerre nodes and
    normalised weights by Golub–Welsch (the Jacobi matrix's eigenvalues and first
    eigenvector components; no Γ(shape) is formed, so huge shapes do not overflow).
    Exact for polynomials of degree < 2n."""
    i = np.arange(n, dtype=np.float64)
    diag = 2.0 * i + shape
    off = np.sqrt((i[1:]) * (i[1:] + shape - 1.0))
    x, v = linalg.eigh_tridiagonal(diag, off)
    return x, v[0] ** 2


def _half_axis_nodes(params: CBAParams, voxel_size: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes (r, R) in nm and weights of E over the two independent gamma half-axes."""
    vp = params.to_voxel(voxel_size)
    xa, wa = gamma_nodes(vp.shape1)
    xc, wc = gamma_nodes(vp.shape2)
    a = xa / vp.gamma * vp.voxel_size
    c = xc / vp.gamma * vp.voxel_size
    aa, cc = np.meshgrid(a, c, indexing="ij")
    ww = np.outer(wa, wc)
    return np.minimum(aa, cc).ravel(), np.maximum(aa, cc).ravel(), ww.ravel()


def _unit_ball_covariogram(d: np.ndarray) -> np.ndarray:
    return np.where(d < 2.0, _UNIT_BALL * (1.0 - 0.75 * d + d**3 / 16.0), 0.0)


def spheroid_covariogram(params: CBAParams, voxel_size: float, h: npt.ArrayLike
                         ) -> np.ndarray:
    """Mean covariogram γ̄(h) = E vol(K ∩ (K + h)) [nm³] of the random graphite grain.

    K is the oblate spheroid of NOTES §2 with half-axes A ~ Gamma(α1/s, γ),
    C ~ Gamma(α2/s, γ) in voxels (the paper's convention at voxel size s), isotropic axis.
    γ̄(0) = V̄ (Eq. 14) and −γ̄'(0) = S̄/4 (Eq. 15).

    Parameters
    ----------
    params : CBAParams
        The model (Table 2 units).
    voxel_size : float
        Voxel size s [nm] fixing the half-axis law.
    h : array_like
        Distances [nm], >= 0.

    Returns
    -------
    ndarray
        γ̄ at ``h`` (shape of ``h``), nm³.
    """
    _check_params(params)
    hh = _check_h(h)
    r, big_r, w = _half_axis_nodes(params, voxel_size)
    xc, wc = _gl(_N_COS)
    flat = hh.ravel()
    out = np.zeros(hh.size)
    inside = np.flatnonzero(flat < 2.0 * float(big_r.max()))  # K ∩ (K + h) empty beyond
    flat = flat[inside]
    a = 1.0 / r**2 - 1.0 / big_r**2  # coefficient of c² in |T⁻¹h|²/|h|²
    b = 1.0 / big_r**2
    vol = big_r**2 * r
    step = max(1, (1 << 22) // (len(r) * _N_COS))
    for i0 in range(0, flat.size, step):
        hs = flat[i0:i0 + step, None]
        # c where |T⁻¹h| = 2: c² = (4/h² − b)/a (clipped to [0, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            c2 = np.where(hs > 0, (4.0 / np.where(hs > 0, hs, 1.0) ** 2 - b) / a, 1.0)
        cmax = np.sqrt(np.clip(np.nan_to_num(c2, nan=1.0, posinf=1.0), 0.0, 1.0))
        c = cmax[..., None] * xc  # (nh, nodes, ncos)
        d = hs[..., None] * np.sqrt(a[:, None] * c * c + b[:, None])
        g = _unit_ball_covariogram(d) @ wc * cmax  # (nh, nodes)
        out[inside[i0:i0 + step]] = (g * vol) @ w
    return out.reshape(hh.shape)


def ball_covariogram(theta: float, h: npt.ArrayLike) -> np.ndarray:
    """Mean covariogram E vol(B_R ∩ (B_R + h)) [nm³] of a ball with radius R ~ Exp(θ).

    γ(h; R) = (4π/3)(R³ − 3hR²/4 + h³/16) for R ≥ h/2, so with a = h/2 and
    ∫_a^∞ R^k θ e^{−θR} dR = Γ(k+1, θa)/θ^k (upper incomplete gamma):
    γ̄(h) = (4π/3)[Γ(4, θa)/θ³ − (3h/4) Γ(3, θa)/θ² + (h³/16) e^{−θa}].  γ̄(0) = 8π/θ³.
    """
    th = float(theta)
    if not (math.isfinite(th) and th > 0):
        raise InvalidInputError(f"theta must be finite and > 0, got {theta!r}")
    hh = _check_h(h)
    x = th * hh / 2.0
    g4 = special.gammaincc(4, x) * 6.0
    g3 = special.gammaincc(3, x) * 2.0
    return _UNIT_BALL * (g4 / th**3 - 0.75 * hh * g3 / th**2 + hh**3 / 16.0 * np.exp(-x))


def component_two_point(params: CBAParams, voxel_size: float, h: npt.ArrayLike
                        ) -> dict[str, np.ndarray]:
    """The components' two-point probabilities at distances ``h`` [nm].

    Returns ``{"Q1", "C2", "Q3"}``: P(x, x+h ∉ Ξ1), P(x, x+h ∈ Ξ2), P(x, x+h ∉ Ξ3).
    """
    from cbagpu.theory import spheroid_functionals, two_point_coverage_grf

    _check_params(params)
    hh = _check_h(h)
    vbar = spheroid_functionals(params, voxel_size)[0]
    q1 = np.exp(-params.lambda_x * (2.0 * vbar - spheroid_covariogram(params, voxel_size, hh)))
    if params.lambda_y > 0:
        v3bar = 8.0 * math.pi / params.theta**3
        q3 = np.exp(-params.lambda_y * (2.0 * v3bar - ball_covariogram(params.theta, hh)))
    else:
        q3 = np.ones_like(hh)
    c2 = np.asarray(two_point_coverage_grf(hh, params.mu, params.eta), dtype=np.float64)
    return {"Q1": q1, "C2": c2.reshape(hh.shape), "Q3": q3}


def _check_phase(phase: str) -> str:
    if phase not in PHASES:
        raise InvalidInputError(f"unknown phase {phase!r}; choose one of: {', '.join(PHASES)}")
    return phase


def _combine(parts: dict[str, np.ndarray], params: CBAParams, voxel_size: float,
             phase: str) -> np.ndarray:
    from cbagpu.theory import model_theory

    t = model_theory(params, voxel_size)
    q1, c2, q3 = parts["Q1"], parts["C2"], parts["Q3"]
    c_b = c2 * q3
    if phase == "graphite":
        return 1.0 - 2.0 * (1.0 - t.V1) + q1
    if phase == "cbd":
        return c_b * q1
    pore = q1 * (1.0 - 2.0 * t.V2 * (1.0 - t.V3) + c_b)
    if phase == "pore":
        return pore
    return 1.0 - 2.0 * (1.0 - t.V) + pore


def two_point_coverage(params: CBAParams, voxel_size: float, h: npt.ArrayLike, *,
                       phase: str = "solid") -> np.ndarray:
    """Two-point coverage C(h) = P(x ∈ X, x + h ∈ X) of a phase X of the model (Eq. 20).

    Parameters
    ----------
    params : CBAParams
        The model (Table 2 units).
    voxel_size : float
        Voxel size s [nm] (the graphite half-axis law depends on it, NOTES §3).
    h : array_like
        Distances [nm], >= 0 (the model is isotropic).
    phase : {"solid", "pore", "graphite", "cbd"}
        solid = Ξ (labels 1, 2), pore = Ξᶜ, graphite = Ξ1, cbd = Ξ2 ∖ Ξ3 ∖ Ξ1.

    Returns
    -------
    ndarray
        C at ``h``; C(0) = the phase's volume fraction (Eq. 22), C(∞) = its square.

    Notes
    -----
    Inclusion–exclusion over the independent components (module docstring): graphite's
    mean spheroid covariogram by quadrature, the excursion set's bivariate normal
    (Eq. 21, corrected), the exponential balls' covariogram in closed form.
    """
    _check_phase(phase)
    return _combine(component_two_point(params, voxel_size, h), params, voxel_size, phase)


# ---------------------------------------------------------------------- window variance
def _window(shape: object) -> tuple[int, int, int]:
    try:
        n = tuple(int(v) for v in shape)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise InvalidInputError(f"window_shape must be 3 integers, got {shape!r}") from None
    if len(n) != 3 or min(n) < 1:
        raise InvalidInputError(f"window_shape must be 3 integers >= 1, got {shape!r}")
    return n  # type: ignore[return-value]


def _radial_grid(r_max: float) -> np.ndarray:
    """Distances in voxels: fine near 0 (the kink of C), 1/2 voxel beyond."""
    fine = np.linspace(0.0, min(16.0, r_max), 257)
    return np.unique(np.concatenate([fine, np.arange(16.0, r_max + 1.0, 0.5)]))


def _lattice_sum(cf: np.ndarray, grid: np.ndarray, n: tuple[int, int, int]) -> float:
    """Σ_h c(|h|) Π(n_i − |h_i|) over the lattice lags (octant with weights 2 per nonzero)."""
    hz, hy, hx = (np.arange(m, dtype=np.float64) for m in n)
    wz, wy, wx = ((m - k) * np.where(k > 0, 2.0, 1.0) for m, k in zip(n, (hz, hy, hx),
                                                                     strict=True))
    r2_yx = hy[:, None] ** 2 + hx[None, :] ** 2
    w_yx = wy[:, None] * wx[None, :]
    total = 0.0
    for k in range(n[0]):
        r = np.sqrt(hz[k] ** 2 + r2_yx)
        total += wz[k] * float(np.sum(np.interp(r, grid, cf) * w_yx))
    return total


def _box_direction_average(n: tuple[int, int, int], r: np.ndarray) -> np.ndarray:
    """r² ∫_{S²} Π_i (n_i − r|u_i|)₊ du (voxel units), by Gauss–Legendre on the octant."""
    zc, zw = _gl(64)
    ph, pw = _gl(64)
    ph = ph * (math.pi / 2.0)
    pw = pw * (math.pi / 2.0)
    uz = zc[:, None]
    sz = np.sqrt(1.0 - zc**2)[:, None]
    uy = sz * np.sin(ph)[None, :]
    ux = sz * np.cos(ph)[None, :]
    w = (zw[:, None] * pw[None, :]).ravel() * 8.0
    u = np.stack([uz * np.ones_like(uy), uy, ux]).reshape(3, -1)
    out = np.empty(r.size)
    for i, ri in enumerate(r):
        prod = np.ones(u.shape[1])
        for j in range(3):
            prod *= np.maximum(n[j] - ri * u[j], 0.0)
        out[i] = ri * ri * float(prod @ w)
    return out


def volume_fraction_variance(params: CBAParams, voxel_size: float,
                             window_shape: tuple[int, int, int], *, phase: str = "solid",
                             method: Literal["auto", "lattice", "continuous"] = "auto"
                             ) -> float:
    """Variance of the volume fraction of ``phase`` in a box window of the model.

    σ²(V_V; W) = |W|⁻² ∫∫_{W×W} (C(x − y) − V²) dx dy, with C of
    :func:`two_point_coverage`, for the window of ``window_shape`` voxels (z, y, x) at
    ``voxel_size``, the volume fraction being the fraction of voxel centres in the phase.

    Parameters
    ----------
    params, voxel_size : the model and the voxel size s [nm].
    window_shape : (int, int, int)
        The window in voxels.
    phase : {"solid", "pore", "graphite", "cbd"}
    method : {"auto", "lattice", "continuous"}
        ``"lattice"``: the exact sum over voxel-centre pairs, Σ_h (C(h) − V²) Π(n_i − |h_i|)
        (C interpolated linearly in |h| from a grid of 1/16 voxel below 16 voxels and 1/2
        voxel beyond); ``"continuous"``: the integral over the box, ∫ (C(|h|) − V²)
        r² ∫_{S²} Π(n_i − r|u_i|)₊ du dr (for windows where the lattice sum is too long);
        ``"auto"``: lattice up to :data:`LATTICE_LIMIT` lags.

    Returns
    -------
    float
        σ² (dimensionless). The standard deviation of the volume fraction of one window.
    """
    _check_phase(phase)
    return volume_fraction_variances(params, voxel_size, window_shape, phases=(phase,),
                                     method=method)[phase]


def volume_fraction_variances(params: CBAParams, voxel_size: float,
                              window_shape: tuple[int, int, int], *,
                              phases: tuple[str, ...] = PHASES,
                              method: Literal["auto", "lattice", "continuous"] = "auto"
                              ) -> dict[str, float]:
    """:func:`volume_fraction_variance` of several phases at once (the components' C(h)
    computed once): ``{phase: σ²}``."""
    _check_params(params)
    for ph in phases:
        _check_phase(ph)
    n = _window(window_shape)
    if method not in ("auto", "lattice", "continuous"):
        raise InvalidInputError(f"method must be 'auto', 'lattice' or 'continuous', got "
                                f"{method!r}")
    if method == "auto":
        method = "lattice" if math.prod(n) <= LATTICE_LIMIT else "continuous"
    s = float(voxel_size)
    r_max = math.sqrt(sum(m * m for m in n))
    grid = _radial_grid(r_max)
    parts = component_two_point(params, s, grid * s)
    vol = float(math.prod(n))
    dens = None if method == "lattice" else _box_direction_average(n, grid)
    out = {}
    for ph in phases:
        c = _combine(parts, params, s, ph)
        cf = c - c[0] ** 2  # C(0) = V
        if dens is None:
            out[ph] = _lattice_sum(cf, grid, n) / vol**2
        else:
            out[ph] = float(np.trapezoid(cf * dens, grid)) / vol**2
    return out
