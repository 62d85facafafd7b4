"""Sampling error and representative window size: :func:`rve` (issue 18, item 2).

A descriptor measured on one window W is a random variable; its spread σ(W) between
windows of one size tells how far one measurement may be from the model's (or the
material's) value, and how large a window must be for a chosen relative error. :func:`rve`
tiles large windows -- model realizations (window-consistent, seeds ``seed ..
seed + realizations − 1``) or a label image -- into non-overlapping cubic sub-windows of
several edges and reports, per descriptor, phase and edge,

* the mean over the sub-windows, their standard deviation s(W) (ddof = 1) with a
  chi-square 95 % interval (n − 1 degrees of freedom, as if the sub-windows were
  independent: a lower bound where neighbours are correlated), and the standard error of
  the mean s/√n;
* for the volume fraction, the integral range A(W) = s²(W) |W| / (V(1 − V)) (Lantuéjoul
  1991; Kanit et al. 2003): σ² ≈ V(1 − V) A / |W| once |W| ≫ A;
* for a model, the closed form of the volume fraction's σ(W) (Eq. 20's C(h) of the phase,
  :func:`cbagpu.theory_covariance.volume_fraction_variance`,
  σ²(V_V; W) = |W|⁻² ∫∫_{W×W} (C(x − y) − V²) dx dy) and the spread expected between the
  tiles, E s² = N/(N − 1) · (σ²(W) − σ²(T)/k): N sub-windows pooled over k realizations,
  each tiling a box T whose tile mean is its own volume fraction.

and, per descriptor and phase, a power law σ²(W) = K |W|^(−α) fitted to s²(W) over the
three largest edges (:data:`FIT_EDGES`; the exponent grows with the window where the
covariance has a short-range part, so the local one extrapolates best) with that same
finite-box correction (s² is fitted by
N/(N − 1) · K (|W|^(−α) − |T|^(−α)/k), weighted least squares on log s², weights (N − 1)/2,
the inverse variance of log s² for N independent values), and the edge at which
σ(W)/|mean| equals a chosen relative error. α = 1 is the finite-integral-range regime; the
model's covariance decays like the Cauchy field's, C(h) − V² ∝ |h|⁻², whose integral
diverges, so for the volume fraction σ² falls like |W|^(−2/3) for very large windows and
the integral range is not defined (reported as null where α < 0.9).

Descriptors (:data:`DESCRIPTOR_PHASES`): ``volume_fraction`` (voxel counts: solid, pore,
graphite, CBD); ``S_V``, ``M_V``, ``chi_V`` (the 2×2×2 configuration estimators of
:mod:`cbagpu.measure.minkowski`, Eqs. 6–9, on every sub-window at once from
:func:`~cbagpu.measure.minkowski.tile_configuration_histograms`); ``M`` (the M-factor of
Eq. 27, a transport solve along z per sub-window, on at most ``max_windows`` of them per
edge, and only on request).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats

from cbagpu.errors import InvalidInputError
from cbagpu.params import CBAParams
from cbagpu.validation import check_int, check_labels, check_seed, check_voxel_size

__all__ = [
    "DEFAULT_REL_ERROR",
    "DESCRIPTOR_PHASES",
    "RVEFit",
    "RVEResult",
    "RVEStat",
    "rve",
]

#: Descriptors and the phases each is measured on.
DESCRIPTOR_PHASES: dict[str, tuple[str, ...]] = {
    "volume_fraction": ("solid", "pore", "graphite", "cbd"),
    "S_V": ("solid", "pore", "graphite"),
    "M_V": ("solid", "pore", "graphite"),
    "chi_V": ("solid", "pore", "graphite"),
    "M": ("solid", "pore"),
}
#: Units of the descriptors (lengths in nm).
UNITS: dict[str, str] = {"volume_fraction": "", "S_V": "nm^-1", "M_V": "nm^-2",
                         "chi_V": "nm^-3", "M": ""}
DEFAULT_DESCRIPTORS: tuple[str, ...] = ("volume_fraction", "S_V")
#: Default target relative error σ(W)/|mean| of one window, per descriptor.
DEFAULT_REL_ERROR: dict[str, float] = {"volume_fraction": 0.02, "S_V": 0.02, "M_V": 0.05,
                                       "chi_V": 0.10, "M": 0.05}
#: At most this many sub-windows per edge get a transport solve (descriptor ``M``).
DEFAULT_MAX_WINDOWS = 16
#: Smallest sub-window edge in voxels.
MIN_EDGE = 4
#: The power law is fitted to this many of the largest edges (the local exponent there).
FIT_EDGES = 3
#: Below this fitted exponent the integral range is reported as undefined.
ALPHA_INTEGRAL_RANGE = 0.9
_MINKOWSKI = ("S_V", "M_V", "chi_V")

Progress = Callable[[int, int, "float | None"], None]


def _num(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class RVEStat:
    """One descriptor of one phase over the sub-windows of one edge.

    ``sd``: spread s(W) between sub-windows (ddof = 1); ``se_mean`` = s/√n;
    ``integral_range`` [nm³] (volume fraction only); ``theory_sd``: the closed-form σ(W) of
    the volume fraction (model only); ``theory_spread_sd``: the s expected between the
    tiles, which is below σ(W) because each tiled box's mean is its own.
    """

    descriptor: str
    phase: str
    edge: int
    edge_nm: float
    n_windows: int
    mean: float
    sd: float
    sd_interval: tuple[float, float]
    se_mean: float
    integral_range: float | None = None
    theory_sd: float | None = None
    theory_spread_sd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers as null)."""
        return {
            "descriptor": self.descriptor, "phase": self.phase, "edge": self.edge,
            "edge_nm": self.edge_nm, "n_windows": self.n_windows, "mean": _num(self.mean),
            "sd": _num(self.sd), "sd_interval": [_num(v) for v in self.sd_interval],
            "se_mean": _num(self.se_mean), "integral_range": _num(self.integral_range),
            "theory_sd": _num(self.theory_sd),
            "theory_spread_sd": _num(self.theory_spread_sd),
        }


@dataclass(frozen=True)
class RVEFit:
    """σ²(W) = K |W|^(−α) of one descriptor and phase, and the window edge it implies.

    ``K`` in the descriptor's unit squared times nm^(3α); ``edge_needed_nm``: the cube edge
    with σ(W)/|mean| = ``rel_error`` (``extrapolated`` when outside the edges measured);
    ``theory_edge_needed_nm``: the same from the closed form (volume fraction of a model);
    ``theory_curve``: the closed-form (edge [nm], σ) at doublings of the largest edge up to
    it.
    """

    descriptor: str
    phase: str
    alpha: float
    alpha_se: float
    K: float
    integral_range: float | None
    mean: float
    rel_error: float | None
    edge_needed_nm: float | None
    extrapolated: bool
    theory_edge_needed_nm: float | None = None
    theory_curve: tuple[tuple[float, float], ...] = ()
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers as null)."""
        return {
            "descriptor": self.descriptor, "phase": self.phase, "alpha": _num(self.alpha),
            "alpha_se": _num(self.alpha_se), "K": _num(self.K),
            "integral_range": _num(self.integral_range), "mean": _num(self.mean),
            "rel_error": self.rel_error, "edge_needed_nm": _num(self.edge_needed_nm),
            "extrapolated": self.extrapolated,
            "theory_edge_needed_nm": _num(self.theory_edge_needed_nm),
            "theory_curve": {"edge_nm": [e for e, _ in self.theory_curve],
                             "sd": [_num(v) for _, v in self.theory_curve]},
            "note": self.note,
        }


@dataclass(frozen=True)
class RVEResult:
    """What :func:`rve` measured, with the settings that define it."""

    source: str
    shape: tuple[int, int, int]
    voxel_size: float
    edges: tuple[int, ...]
    realizations: int
    seed: int | None
    params: dict[str, float] | None
    backend: str
    stats: tuple[RVEStat, ...]
    fits: tuple[RVEFit, ...]
    rel_error: dict[str, float]
    max_windows: int
    extra: dict[str, Any] = field(default_factory=dict)

    def stat(self, descriptor: str, phase: str, edge: int) -> RVEStat:
        """The :class:`RVEStat` of ``descriptor`` of ``phase`` at ``edge`` (KeyError if absent)."""
        for s in self.stats:
            if (s.descriptor, s.phase, s.edge) == (descriptor, phase, edge):
                return s
        raise KeyError((descriptor, phase, edge))

    def fit(self, descriptor: str, phase: str) -> RVEFit:
        """The :class:`RVEFit` of ``descriptor`` of ``phase`` (KeyError if absent)."""
        for f in self.fits:
            if (f.descriptor, f.phase) == (descriptor, phase):
                return f
        raise KeyError((descriptor, phase))

    def meta(self) -> dict[str, Any]:
        """Settings, provenance and the meaning of the columns."""
        from cbagpu._version import __version__

        seeds = (None if self.seed is None
                 else list(range(self.seed, self.seed + self.realizations)))
        return {"source": self.source, "shape": list(self.shape),
                "voxel_size": self.voxel_size, "edges": list(self.edges),
                "edges_nm": [e * self.voxel_size for e in self.edges],
                "realizations": self.realizations, "seeds": seeds, "params": self.params,
                "backend": self.backend, "rel_error": dict(self.rel_error),
                "max_windows": self.max_windows, "version": __version__, "units": "nm",
                "descriptor_units": {d: UNITS[d] for d in self.rel_error},
                "sd": "standard deviation of the descriptor between sub-windows of one "
                      "edge (ddof=1); sd_interval: chi-square 95% interval as if the "
                      "sub-windows were independent; se_mean = sd/sqrt(n_windows)",
                "fit": "sigma^2(W) = K |W|^-alpha (|W| in nm^3), fitted to sd^2 with the "
                       "finite-box correction N/(N-1) (|W|^-alpha - |T|^-alpha/k)",
                **self.extra}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``meta``, ``stats`` (one per descriptor, phase, edge), ``fits``."""
        return {"meta": self.meta(), "stats": [s.to_dict() for s in self.stats],
                "fits": [f.to_dict() for f in self.fits]}


# ----------------------------------------------------------------------------- checks
def _check_edges(edges: Sequence[int] | None, shape: tuple[int, int, int]) -> tuple[int, ...]:
    if edges is None:
        out = []
        e = 8
        while math.prod(n // e for n in shape) >= 8:
            out.append(e)
            e *= 2
        if len(out) < 2:
            raise InvalidInputError(
                f"the window {'x'.join(map(str, shape))} is too small for the default "
                "edges (8, 16, ... while 8 sub-windows fit): give edges or a window of at "
                "least 32 voxels per side")
        return tuple(out)
    if isinstance(edges, (int, np.integer)):
        edges = [int(edges)]
    try:
        vals = [check_int(e, "edge") for e in edges]
    except TypeError:
        raise InvalidInputError(f"edges must be integers, got {edges!r}") from None
    if not vals:
        raise InvalidInputError("edges must name at least one sub-window edge")
    for e in vals:
        if e < MIN_EDGE:
            raise InvalidInputError(f"edge {e} is below the smallest sub-window edge "
                                    f"{MIN_EDGE} voxels")
        if math.prod(n // e for n in shape) < 2:
            raise InvalidInputError(
                f"edge {e} leaves fewer than 2 sub-windows in the "
                f"{'x'.join(map(str, shape))} window (a spread needs at least 2): use "
                "smaller edges or a larger window")
    if len(set(vals)) != len(vals):
        raise InvalidInputError(f"edges repeat: {vals}")
    return tuple(sorted(vals))


def _check_descriptors(descriptors: Sequence[str] | str) -> tuple[str, ...]:
    out = (descriptors,) if isinstance(descriptors, str) else tuple(descriptors)
    if not out:
        raise InvalidInputError("descriptors must name at least one descriptor")
    for d in out:
        if d not in DESCRIPTOR_PHASES:
            raise InvalidInputError(f"unknown descriptor {d!r}; choose among "
                                    f"{', '.join(DESCRIPTOR_PHASES)}")
    if len(set(out)) != len(out):
        raise InvalidInputError(f"descriptors repeat: {list(out)}")
    return out


def _check_rel_error(rel_error: Mapping[str, float] | None, descriptors: Sequence[str]
                     ) -> dict[str, float]:
    out = {d: DEFAULT_REL_ERROR[d] for d in descriptors}
    if rel_error is None:
        return out
    if not isinstance(rel_error, Mapping):
        raise InvalidInputError("rel_error must map descriptor names to relative errors")
    for k, v in rel_error.items():
        if k not in DESCRIPTOR_PHASES:
            raise InvalidInputError(f"rel_error: unknown descriptor {k!r}; choose among "
                                    f"{', '.join(DESCRIPTOR_PHASES)}")
        if k not in descriptors:
            raise InvalidInputError(f"rel_error names {k!r}, which is not measured "
                                    f"(descriptors: {', '.join(descriptors)})")
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not (0.0 < float(v) < 1.0):
            raise InvalidInputError(f"rel_error[{k!r}] must be a number in (0, 1), got {v!r}")
        out[k] = float(v)
    return out


def _check_shape(shape: Any) -> tuple[int, int, int]:
    vals = [shape] if isinstance(shape, (int, np.integer)) else list(shape)
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise InvalidInputError(f"shape must be 1 or 3 integers, got {shape!r}")
    shp = tuple(check_int(v, "shape") for v in vals)
    if min(shp) < MIN_EDGE:
        raise InvalidInputError(f"shape must be at least {MIN_EDGE} voxels per axis, got "
                                f"{shape!r}")
    return shp  # type: ignore[return-value]


# ------------------------------------------------------------------------- measuring
def _tile_counts(be: Any, labels: Any, e: int) -> dict[str, np.ndarray]:
    """Volume fractions of the four phases in every tile of edge ``e`` (raster order)."""
    xp = be.xp
    c = [n // e for n in labels.shape]
    blocks = labels[: c[0] * e, : c[1] * e, : c[2] * e].reshape(c[0], e, c[1], e, c[2], e)
    vol = float(e**3)
    out = {}
    for name, value in (("pore", 0), ("cbd", 1), ("graphite", 2)):
        n = (blocks == value).sum(axis=(1, 3, 5), dtype=xp.int64).ravel()
        out[name] = be.to_host(n).astype(np.float64) / vol
    out["solid"] = 1.0 - out["pore"]
    return out


def _subset(n: int, m: int) -> np.ndarray:
    """``m`` of ``n`` indices spread evenly (all when n <= m)."""
    if n <= m:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, m).round().astype(int))


def _measure(be: Any, labels: Any, s: float, e: int, descriptors: Sequence[str],
             max_windows: int) -> dict[tuple[str, str], np.ndarray]:
    """Every requested descriptor of every phase on the tiles of edge ``e``."""
    from cbagpu.measure.minkowski import configuration_weights, tile_configuration_histograms
    from cbagpu.measure.phases import phase_mask

    out: dict[tuple[str, str], np.ndarray] = {}
    if "volume_fraction" in descriptors:
        for ph, v in _tile_counts(be, labels, e).items():
            out[("volume_fraction", ph)] = v
    mink = [d for d in descriptors if d in _MINKOWSKI]
    if mink:
        w = configuration_weights(s)  # rows V_V, S_V, M_V, chi_V
        row = {"S_V": 1, "M_V": 2, "chi_V": 3}
        vol = float((e - 1) ** 3) * s**3
        for ph in DESCRIPTOR_PHASES["S_V"]:
            dens = tile_configuration_histograms(phase_mask(labels, ph), e, be) @ w.T / vol
            for d in mink:
                out[(d, ph)] = dens[:, row[d]]
    if "M" in descriptors:
        from cbagpu.transport import transport

        c = [n // e for n in labels.shape]
        tiles = [(i, j, k) for i in range(c[0]) for j in range(c[1]) for k in range(c[2])]
        pick = _subset(len(tiles), max_windows)
        for ph in DESCRIPTOR_PHASES["M"]:
            vals = []
            for t in pick:
                i, j, k = tiles[t]
                sub = labels[i * e:(i + 1) * e, j * e:(j + 1) * e, k * e:(k + 1) * e]
                vals.append(transport(sub, ph, 0, backend=be).M)
            out[("M", ph)] = np.asarray(vals, dtype=np.float64)
    return out


# --------------------------------------------------------------------------- reducing
def _chi2_interval(sd: float, n: int) -> tuple[float, float]:
    if n < 2 or not math.isfinite(sd):
        return (math.nan, math.nan)
    dof = n - 1
    return (sd * math.sqrt(dof / stats.chi2.ppf(0.975, dof)),
            sd * math.sqrt(dof / stats.chi2.ppf(0.025, dof)))


def power_law_fit(volumes: Sequence[float], variances: Sequence[float],
                  counts: Sequence[int], *, box_volume: Sequence[float] | None = None,
                  realizations: int = 1) -> tuple[float, float, float] | None:
    """Fit σ²(W) = K |W|^(−α) to spreads s² measured between tiles.

    Parameters
    ----------
    volumes, variances, counts : per edge: |W|, s²(W) (ddof = 1), number N of tiles.
    box_volume : per edge, the volume |T| of the box each realization's tiles cover; with
        it, s² is fitted by N/(N − 1) · K (|W|^(−α) − |T|^(−α)/k) (the tiles of a box
        average to the box's own value, so their spread misses σ²(T)/k), else by
        K |W|^(−α).
    realizations : k, the number of tiled boxes pooled.

    Returns
    -------
    (alpha, alpha_se, K) or None when fewer than 2 edges have a positive spread.
    Weighted least squares on log s² with weights (N − 1)/2 (the inverse variance of
    log s² for N independent values); α within (0.05, 4).
    """
    v = np.asarray(volumes, dtype=np.float64)
    y = np.asarray(variances, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    tb = None if box_volume is None else np.asarray(box_volume, dtype=np.float64)
    ok = np.isfinite(y) & (y > 0) & (n >= 2)
    if ok.sum() < 2:
        return None
    v, y, n = v[ok], y[ok], n[ok]
    tb = None if tb is None else tb[ok]
    x = np.log(v)
    w = np.sqrt((n - 1.0) / 2.0)
    slope, icpt = np.polyfit(x, np.log(y), 1, w=w)
    a0 = float(np.clip(-slope, 0.06, 3.9))
    k0 = float(icpt)

    def model(p: np.ndarray) -> np.ndarray:
        a, lk = p
        t = np.exp(-a * x)
        if tb is not None:
            t = n / (n - 1.0) * (t - tb ** (-a) / realizations)
        return lk + np.log(np.maximum(t, 1e-300))

    def resid(p: np.ndarray) -> np.ndarray:
        return w * (model(p) - np.log(y))

    sol = optimize.least_squares(resid, x0=[a0, k0], bounds=([0.05, -np.inf], [4.0, np.inf]))
    alpha, log_k = (float(q) for q in sol.x)
    dof = max(1, int(ok.sum()) - 2)
    j = sol.jac
    try:
        cov = np.linalg.inv(j.T @ j) * max(1.0, 2.0 * sol.cost / dof)
        alpha_se = float(math.sqrt(max(cov[0, 0], 0.0)))
    except np.linalg.LinAlgError:
        alpha_se = math.nan
    if ok.sum() == 2:
        alpha_se = math.nan  # two points fix the line: no residual to judge it by
    return alpha, alpha_se, float(math.exp(log_k))


@functools.lru_cache(maxsize=128)
def _vf_variances(params: CBAParams, s: float, shape: tuple[int, int, int]
                  ) -> dict[str, float]:
    from cbagpu.theory_covariance import volume_fraction_variances

    return volume_fraction_variances(params, s, shape)


def _vf_variance(params: CBAParams, s: float, shape: tuple[int, int, int], phase: str
                 ) -> float:
    return _vf_variances(params, s, shape)[phase]


@functools.lru_cache(maxsize=64)
def _theory_edge(params: CBAParams, s: float, phase: str, eps: float, v: float,
                 e_start: int) -> tuple[float | None, tuple[tuple[float, float], ...]]:
    """Cube edge [nm] where the closed-form σ(W)/V equals ``eps`` (log-log interpolation
    between doublings of the edge from ``e_start``; None beyond 2^15 voxels), and the
    (edge [nm], σ) points computed on the way."""

    def sd(e: int) -> float:
        return math.sqrt(_vf_variance(params, s, (e, e, e), phase))

    lo = e_start
    pts = [(lo * s, sd(lo))]
    if pts[-1][1] / v <= eps:
        return None, tuple(pts)
    hi = lo
    while True:
        hi *= 2
        if hi > 1 << 15:
            return None, tuple(pts)
        pts.append((hi * s, sd(hi)))
        if pts[-1][1] / v <= eps:
            break
        lo = hi
    r_lo, r_hi = pts[-2][1] / v, pts[-1][1] / v
    t = math.log(r_lo / eps) / math.log(r_lo / r_hi)
    return float(math.exp(math.log(lo) + t * math.log(hi / lo)) * s), tuple(pts)


def _reduce(values: Mapping[tuple[str, str, int], list[np.ndarray]], s: float,
            edges: Sequence[int], descriptors: Sequence[str], rel_error: Mapping[str, float],
            params: CBAParams | None, shape: tuple[int, int, int], k: int
            ) -> tuple[list[RVEStat], list[RVEFit]]:
    from cbagpu.theory import model_theory

    fractions = None
    if params is not None:
        th = model_theory(params, s)
        fractions = {"solid": th.V, "pore": th.pore, "graphite": th.graphite, "cbd": th.cbd}
    stats_out: list[RVEStat] = []
    fits: list[RVEFit] = []
    for d in descriptors:
        for ph in DESCRIPTOR_PHASES[d]:
            rows = []
            for e in edges:
                v = np.concatenate(values[(d, ph, e)])
                v = v[np.isfinite(v)]
                n = int(v.size)
                mean = float(v.mean()) if n else math.nan
                sd = float(v.std(ddof=1)) if n >= 2 else math.nan
                ir = t_sd = t_spread = None
                if d == "volume_fraction":
                    if 0.0 < mean < 1.0 and n >= 2:
                        ir = sd * sd * float(e**3) * s**3 / (mean * (1.0 - mean))
                    if params is not None:
                        var_e = _vf_variance(params, s, (e, e, e), ph)
                        var_t = _vf_variance(params, s, tuple((m // e) * e for m in shape), ph)
                        t_sd = math.sqrt(var_e)
                        if n >= 2:
                            t_spread = math.sqrt(max(0.0, n / (n - 1) * (var_e - var_t / k)))
                rows.append(RVEStat(d, ph, e, e * s, n, mean, sd, _chi2_interval(sd, n),
                                    sd / math.sqrt(n) if n >= 2 else math.nan,
                                    ir, t_sd, t_spread))
            stats_out.extend(rows)
            v_th = None if fractions is None or d != "volume_fraction" else fractions[ph]
            fits.append(_fit_one(d, ph, rows, s, rel_error[d], params, v_th, shape, k))
    return stats_out, fits


def _integral_range(rows: Sequence[RVEStat], box: Sequence[float], k: int, mean: float
                    ) -> float | None:
    """A with σ²(W) = V(1 − V) A/|W| (α = 1), from every edge's spread corrected for the
    finite box (E s² = N/(N − 1) · V(1 − V) A (1/|W| − 1/(k|T|))), combined as a geometric mean
    weighted by N − 1."""
    logs, wts = [], []
    for r, t in zip(rows, box, strict=True):
        n, w = r.n_windows, r.edge_nm**3
        if n < 2 or not r.sd > 0 or not 1.0 / w > 1.0 / (k * t):
            continue
        a = r.sd**2 * (n - 1) / n / (1.0 / w - 1.0 / (k * t)) / (mean * (1.0 - mean))
        logs.append(math.log(a))
        wts.append(n - 1.0)
    return float(math.exp(np.average(logs, weights=wts))) if logs else None


def _fit_one(d: str, ph: str, rows: Sequence[RVEStat], s: float, eps: float,
             params: CBAParams | None, v_theory: float | None,
             shape: tuple[int, int, int], k: int) -> RVEFit:
    weights = [r.n_windows * r.edge**3 for r in rows if math.isfinite(r.mean)]
    means = [r.mean for r in rows if math.isfinite(r.mean)]
    mean = float(np.average(means, weights=weights)) if means else math.nan
    theory_edge = None
    curve: tuple[tuple[float, float], ...] = ()
    if v_theory is not None and params is not None and v_theory > 0:
        theory_edge, curve = _theory_edge(params, s, ph, eps, v_theory, rows[-1].edge)
    box = None
    if d != "M":  # additive descriptors: the tiles average to the box's own value
        box = [float(math.prod((m // r.edge) * r.edge for m in shape)) * s**3 for r in rows]
    top = slice(-FIT_EDGES, None)  # the local exponent at the largest sizes measured
    fit = power_law_fit([r.edge_nm**3 for r in rows][top], [r.sd**2 for r in rows][top],
                        [r.n_windows for r in rows][top],
                        box_volume=None if box is None else box[top], realizations=k)
    if fit is None:
        return RVEFit(d, ph, math.nan, math.nan, math.nan, None, mean, eps, None, False,
                      theory_edge, curve, "fewer than 2 edges with a positive spread")
    alpha, alpha_se, kk = fit
    note = None
    ir = None
    if d == "volume_fraction" and 0.0 < mean < 1.0:
        if alpha >= ALPHA_INTEGRAL_RANGE and box is not None:
            ir = _integral_range(rows[top], box[top], k, mean)
        else:
            note = (f"the spread falls like |W|^-{alpha:.2f}, slower than 1/|W|: no finite "
                    "integral range at these sizes (long-range covariance)")
    notes = [note] if note else []
    first, last = rows[0], rows[-1]
    se = math.hypot(first.se_mean, last.se_mean)
    if math.isfinite(se) and abs(last.mean - first.mean) > 3 * se:
        notes.append(f"the mean changes with the window ({first.mean:.4g} at "
                     f"{first.edge_nm:g} nm, {last.mean:.4g} at {last.edge_nm:g} nm; more "
                     "than 3 standard errors): small windows are biased, not only noisy")
    if alpha <= 0.06:
        notes.append("the spread hardly falls with the window: the edge needed is not "
                     "meaningful")
    note = "; ".join(notes) or None
    needed = None
    extrapolated = False
    if alpha > 0 and mean != 0 and math.isfinite(mean):
        needed = ((kk / (eps * abs(mean)) ** 2) ** (1.0 / alpha)) ** (1.0 / 3.0)
        extrapolated = not (rows[0].edge_nm <= needed <= rows[-1].edge_nm)
    return RVEFit(d, ph, alpha, alpha_se, kk, ir, mean, eps, needed, extrapolated,
                  theory_edge, curve, note)


# ------------------------------------------------------------------------------ rve
def rve(
    source: CBAParams | Any,
    voxel_size: float,
    *,
    shape: int | Sequence[int] | None = None,
    seed: int = 0,
    realizations: int = 1,
    edges: Sequence[int] | None = None,
    descriptors: Sequence[str] = DEFAULT_DESCRIPTORS,
    rel_error: Mapping[str, float] | None = None,
    max_windows: int = DEFAULT_MAX_WINDOWS,
    backend: str = "auto",
    progress: Progress | None = None,
) -> RVEResult:
    """Spread of descriptors between sub-windows, integral range and the window needed.

    Parameters
    ----------
    source : CBAParams or array
        A model (realizations ``seed .. seed + realizations − 1``, each a window of
        ``shape`` voxels made by :func:`cbagpu.generate`), or a 3-D label image (0 pore,
        1 CBD, 2 graphite; NumPy or the backend's arrays).
    voxel_size : float
        Voxel edge length s [nm] (of the image; of the realizations).
    shape : int or (int, int, int), optional
        Window of each realization in voxels (model only; required there).
    seed, realizations : int
        First seed and number of independent realizations (model only); their tiles are
        pooled.
    edges : sequence of int, optional
        Sub-window edges in voxels (default 8, 16, 32, ... while at least 8 sub-windows
        fit). Each must leave at least 2 sub-windows; the fit needs 2 edges.
    descriptors : sequence of {"volume_fraction", "S_V", "M_V", "chi_V", "M"}
        Default volume fraction and S_V. ``M`` solves the transport problem (Eq. 27) on at
        most ``max_windows`` sub-windows per edge.
    rel_error : mapping, optional
        Target relative error σ(W)/|mean| of one window per descriptor (defaults
        :data:`DEFAULT_REL_ERROR`: 2 % volume fraction and S_V, 5 % M_V and M, 10 % χ_V).
    max_windows : int
        Sub-windows per edge that get a transport solve (``M``), spread evenly.
    backend : {"auto", "numpy", "cupy"}
        Where generation and the descriptors run.
    progress : callable, optional
        ``progress(done, total, seconds_left)`` after each realization and edge.

    Returns
    -------
    RVEResult
        :class:`RVEStat` per descriptor, phase and edge; :class:`RVEFit` per descriptor
        and phase; for a model also the closed-form σ of the volume fraction and the edge
        it implies.

    Raises
    ------
    InvalidInputError
        Bad source, voxel size, shape, edges, descriptors or relative errors, all before
        any work. InsufficientMemoryError for a realization that would not fit.

    Examples
    --------
    >>> from cbagpu import preset
    >>> from cbagpu.studies.rve import rve
    >>> res = rve(preset("paper"), 40.0, shape=64, edges=(8, 16, 32))  # doctest: +SKIP
    >>> res.fit("volume_fraction", "solid").edge_needed_nm  # doctest: +SKIP
    """
    from cbagpu.backend import get_backend

    s = check_voxel_size(voxel_size)
    descs = _check_descriptors(descriptors)
    eps = _check_rel_error(rel_error, descs)
    mw = check_int(max_windows, "max_windows")
    if mw < 2:
        raise InvalidInputError(f"max_windows must be >= 2, got {max_windows!r}")
    is_model = isinstance(source, CBAParams)
    if is_model:
        if shape is None:
            raise InvalidInputError("a model needs shape (the window of each realization "
                                    "in voxels)")
        from cbagpu.simulate.realization import check_voxel_model

        shp = _check_shape(shape)
        seed = check_seed(seed)
        k = check_int(realizations, "realizations")
        if k < 1:
            raise InvalidInputError(f"realizations must be >= 1, got {realizations!r}")
        check_voxel_model(source, s)
    else:
        if shape is not None or realizations != 1:
            raise InvalidInputError("shape and realizations apply to a model, not to an "
                                    "image")
        be = get_backend(backend)
        lab = be.asarray(check_labels(source, np if isinstance(source, np.ndarray)
                                      else be.xp, what="image", min_edge=MIN_EDGE))
        shp = tuple(int(n) for n in lab.shape)  # type: ignore[assignment]
        k = 1
    edge_list = _check_edges(edges, shp)
    if is_model:
        be = get_backend(backend)

    values: dict[tuple[str, str, int], list[np.ndarray]] = {}
    total = k * len(edge_list)
    done = 0
    for j in range(k):
        if is_model:
            from cbagpu.simulate import generate

            lab = generate(source, shp, s, seed + j, backend=be)
        for e in edge_list:
            for (d, ph), v in _measure(be, lab, s, e, descs, mw).items():
                values.setdefault((d, ph, e), []).append(v)
            done += 1
            if progress is not None:
                progress(done, total, None)
    params = source if is_model else None
    st, fits = _reduce(values, s, edge_list, descs, eps, params, shp, k)
    return RVEResult(
        source="model" if is_model else "image", shape=shp, voxel_size=s,
        edges=edge_list, realizations=k, seed=seed if is_model else None,
        params=source.to_dict() if is_model else None, backend=be.name,
        stats=tuple(st), fits=tuple(fits), rel_error=eps, max_windows=mw)
