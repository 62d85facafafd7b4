"""Two-point coverage C(h) of the model (cbagpu.theory_covariance) against independent
references: the grain functionals of Eqs. 14-15, brute-force quadrature and Monte Carlo of
the covariograms, realizations of the components and of the whole model (20 and 40 nm),
and a brute-force pair sum for the window variance. Statistical tolerances are Student-t
quantiles of the spread over fixed seeds (family-wise error 1e-3 over the comparisons)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from cbagpu import InvalidInputError, generate, preset
from cbagpu.backend import get_backend
from cbagpu.measure.covariance import two_point_coverage as measured
from cbagpu.simulate.germs import window_balls, window_spheroids
from cbagpu.simulate.raster import paint_grains
from cbagpu.theory import model_theory, spheroid_functionals
from cbagpu.theory_covariance import (
    ball_covariogram,
    component_two_point,
    gamma_nodes,
    spheroid_covariogram,
    two_point_coverage,
    volume_fraction_variance,
)

PAPER = preset("paper")


def t_tolerance(n_seeds: int, n_comparisons: int, alpha: float = 1e-3) -> float:
    """Two-sided Student-t quantile for a family-wise error ``alpha`` (Bonferroni)."""
    return float(stats.t.ppf(1.0 - alpha / (2 * n_comparisons), n_seeds - 1))


def assert_within_sampling_error(samples: np.ndarray, expected: np.ndarray) -> None:
    """Mean over seeds (axis 0) within t * SE of ``expected`` at every entry."""
    k = samples.shape[0]
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / math.sqrt(k)
    tol = t_tolerance(k, samples.shape[1]) * se
    bad = np.abs(mean - expected) > tol
    assert not bad.any(), (mean[bad], expected[bad], tol[bad])


# ------------------------------------------------------------------------ covariograms
@pytest.mark.parametrize("s", [10.0, 20.0, 40.0, 80.0])
def test_spheroid_covariogram_at_zero_gives_mean_volume_and_surface(s):
    vbar, sbar, _ = spheroid_functionals(PAPER, s)
    g = spheroid_covariogram(PAPER, s, [0.0, 1e-3])
    assert g[0] == pytest.approx(vbar, rel=1e-12)
    # isotropic grain: -gamma'(0) = S/4 (Matheron)
    assert (g[0] - g[1]) / 1e-3 == pytest.approx(sbar / 4.0, rel=1e-6)


def test_gamma_nodes_moments():
    for k in (0.5, 5.125, 197.2, 2000.0):
        x, w = gamma_nodes(k)
        for m in range(1, 6):
            assert w @ x**m == pytest.approx(math.prod(k + i for i in range(m)), rel=1e-10)


def test_spheroid_covariogram_against_monte_carlo():
    """E vol(K ∩ (K+h)) = E[vol(K) P(x + h ∈ K)], x uniform in K (isotropic axis)."""
    s = 40.0
    vp = PAPER.to_voxel(s)
    rng = np.random.default_rng(7)
    n = 200_000
    a = rng.gamma(vp.shape1, 1.0 / vp.gamma, n) * s
    c = rng.gamma(vp.shape2, 1.0 / vp.gamma, n) * s
    r, big_r = np.minimum(a, c), np.maximum(a, c)
    u = rng.normal(size=(n, 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    # uniform point in the unit ball, mapped into the grain: x = R p_perp + r p_par u
    p = rng.normal(size=(n, 3))
    p *= (rng.random(n) ** (1 / 3) / np.linalg.norm(p, axis=1))[:, None]
    par = np.sum(p * u, axis=1)
    x = big_r[:, None] * (p - par[:, None] * u) + (r * par)[:, None] * u
    vol = 4.0 / 3.0 * math.pi * r * big_r**2
    for h in (50.0, 200.0, 1000.0, 3000.0):
        y = x + np.array([h, 0.0, 0.0])
        du = np.sum(y * u, axis=1)
        d2 = np.sum(y * y, axis=1)
        inside = du**2 / r**2 + (d2 - du**2) / big_r**2 <= 1.0
        samples = vol * inside
        mean, se = samples.mean(), samples.std(ddof=1) / math.sqrt(n)
        expect = spheroid_covariogram(PAPER, s, h)
        assert abs(mean - expect) < 4.0 * se, (h, mean, expect, se)


def test_ball_covariogram_against_quadrature():
    theta = 0.0105

    def one(h, big_r):
        if big_r < h / 2:
            return 0.0
        return 4 / 3 * math.pi * (big_r**3 - 0.75 * h * big_r**2 + h**3 / 16)

    for h in (0.0, 30.0, 150.0, 600.0):
        ref = integrate.quad(lambda rr, h=h: one(h, rr) * theta * math.exp(-theta * rr),
                             h / 2, np.inf, epsrel=1e-12)[0]
        assert ball_covariogram(theta, h) == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("s", [20.0, 40.0])
def test_coverage_limits(s):
    t = model_theory(PAPER, s)
    for phase, v in (("solid", t.V), ("pore", t.pore), ("graphite", t.graphite),
                     ("cbd", t.cbd)):
        c = two_point_coverage(PAPER, s, [0.0, 1e7], phase=phase)
        assert c[0] == pytest.approx(v, rel=1e-12)
        assert c[1] == pytest.approx(v * v, abs=1e-9)


def test_bad_input():
    with pytest.raises(InvalidInputError, match="phase"):
        two_point_coverage(PAPER, 20.0, [0.0], phase="foam")
    with pytest.raises(InvalidInputError, match="h must"):
        two_point_coverage(PAPER, 20.0, [-1.0])
    with pytest.raises(InvalidInputError, match="window_shape"):
        volume_fraction_variance(PAPER, 20.0, (4, 4))
    with pytest.raises(InvalidInputError, match="method"):
        volume_fraction_variance(PAPER, 20.0, (4, 4, 4), method="exact")
    with pytest.raises(InvalidInputError, match="CBAParams"):
        two_point_coverage({"mu": 0.5}, 20.0, [0.0])


# ------------------------------------------------------------------- window variance
def test_variance_lattice_equals_brute_force_pair_sum():
    s, shape = 40.0, (3, 4, 5)
    idx = np.indices(shape).reshape(3, -1).T.astype(float)
    d = np.sqrt(((idx[:, None, :] - idx[None, :, :]) ** 2).sum(-1)) * s
    c = two_point_coverage(PAPER, s, d.ravel(), phase="pore").reshape(d.shape)
    v = c[0, 0]
    ref = float((c - v * v).sum()) / idx.shape[0] ** 2
    got = volume_fraction_variance(PAPER, s, shape, phase="pore", method="lattice")
    assert got == pytest.approx(ref, rel=2e-3)  # linear interpolation of C in |h|


def test_variance_lattice_and_continuous_agree_for_large_windows():
    a = volume_fraction_variance(PAPER, 40.0, (64, 64, 64), method="lattice")
    b = volume_fraction_variance(PAPER, 40.0, (64, 64, 64), method="continuous")
    assert b == pytest.approx(a, rel=2e-3)


# ----------------------------------------------------------------------- realizations
def test_components_against_boolean_realizations_20nm():
    """Xi1 and Xi3 painted alone (the generator's own germs) on 160^3 windows at 20 nm."""
    s, n, k, lags = 20.0, 160, 6, np.arange(0, 41, 5)
    vp = PAPER.to_voxel(s)
    be = get_backend("numpy")
    g_rows, b_rows = [], []
    for seed in range(k):
        lab = np.zeros((n, n, n), np.uint8)
        paint_grains(be, lab, window_spheroids(vp, seed, (0, 0, 0), (n, n, n)), (0, 0, 0), 1)
        g_rows.append(measured(lab > 0, s, 40 * s, backend=be).axes.mean(0)[lags])
        lab[:] = 0
        paint_grains(be, lab, window_balls(vp, seed, (0, 0, 0), (n, n, n)), (0, 0, 0), 1)
        b_rows.append(measured(lab > 0, s, 40 * s, backend=be).axes.mean(0)[lags])
    t = model_theory(PAPER, s)
    c = component_two_point(PAPER, s, lags * s)
    assert_within_sampling_error(np.array(g_rows), 1 - 2 * (1 - t.V1) + c["Q1"])
    assert_within_sampling_error(np.array(b_rows), 1 - 2 * (1 - t.V3) + c["Q3"])


def _model_rows(s: float, n: int, k: int, lags: np.ndarray) -> dict[str, np.ndarray]:
    rows: dict[str, list] = {p: [] for p in ("solid", "pore", "graphite", "cbd")}
    for seed in range(k):
        lab = generate(PAPER, (n, n, n), s, seed, backend="numpy")
        for phase, m in (("solid", lab > 0), ("pore", lab == 0), ("graphite", lab == 2),
                         ("cbd", lab == 1)):
            rows[phase].append(measured(m, s, int(lags[-1]) * s, backend="numpy")
                               .axes.mean(0)[lags])
    return {p: np.array(v) for p, v in rows.items()}


def _check_model(s: float, n: int, k: int) -> None:
    lags = np.array([0, 1, 2, 4, 8, 16])
    rows = _model_rows(s, n, k, lags)
    for phase, v in rows.items():
        expect = two_point_coverage(PAPER, s, lags * s, phase=phase)
        assert_within_sampling_error(v, expect)
        # the short-range part C(0) - C(h) (sharper: the window's own V cancels)
        assert_within_sampling_error(v[:, :1] - v[:, 1:], expect[0] - expect[1:])


def test_model_coverage_against_realizations_40nm():
    _check_model(40.0, 80, 8)


@pytest.mark.slow
def test_model_coverage_against_realizations_20nm():
    _check_model(20.0, 160, 4)
