"""Tests of cbagpu.theory against the paper's tables and independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from cbagpu.params import TABLE3_LAMBDA_X, TABLE3_V1, CBAParams, preset
from cbagpu.theory import (
    GraphiteDensities,
    ModelTheory,
    covariance,
    graphite_densities,
    lambda_y_from_volume_fraction,
    miles,
    model_surface_density,
    model_theory,
    rho_from_two_point_coverage,
    s2,
    s3,
    spheroid_functionals,
    spheroid_mean_curvature_integral,
    spheroid_surface,
    spheroid_volume,
    total_volume_fraction,
    two_point_coverage_from_rho,
    two_point_coverage_grf,
    v2,
    v3,
)

PAPER = preset("paper")


# ---------------------------------------------------------------- paper tables
@pytest.mark.parametrize("i", range(7))
def test_table3_v1(i: int) -> None:
    p = preset(f"table3-{i + 1}")
    assert p.lambda_x == TABLE3_LAMBDA_X[i]
    v1 = graphite_densities(p, voxel_size=20).V1
    assert abs(v1 - TABLE3_V1[i]) / TABLE3_V1[i] < 0.005


def test_table2_values() -> None:
    t = model_theory(PAPER, 20.0)
    assert isinstance(t, ModelTheory)
    assert abs(t.V - 0.331) < 0.001
    assert t.V1 == pytest.approx(0.1054, rel=0.01)
    assert t.S1 == pytest.approx(1.45e-3, rel=0.01)
    assert abs(t.V2 - 0.3089) < 1e-4
    assert abs(t.V3 - 0.1835) < 1e-3
    # NOTES §5: Eqs. 12-13 with Table 2 give K1 ≈ 4.0e-7 nm^-2 and N1 ≈ -6e-11 nm^-3
    assert t.K1 == pytest.approx(4.0e-7, rel=0.02)
    assert t.N1 == pytest.approx(-6e-11, rel=0.1)
    assert t.pore + t.cbd + t.graphite == pytest.approx(1.0, abs=1e-15)
    assert t.graphite == t.V1 and t.pore == pytest.approx(1.0 - t.V, abs=1e-15)
    d = t.as_dict()
    assert set(d) >= {"V1", "S1", "K1", "N1", "V2", "S2", "V3", "S3", "V", "S_V"}
    assert d["Vbar"] == t.Vbar


def test_only_graphite_depends_on_voxel_size() -> None:
    a = model_theory(PAPER, 20.0)
    b = model_theory(PAPER, 40.0)
    assert a.V2 == b.V2 and a.S2 == b.S2 and a.V3 == b.V3 and a.S3 == b.S3
    assert a.Vbar != b.Vbar


# ---------------------------------------------------------------- spheroids
def _monte_carlo_check(params: CBAParams, s: float, seed: int) -> None:
    vp = params.to_voxel(s)
    rng = np.random.default_rng(seed)
    n = 1_000_000
    a = rng.gamma(vp.shape1, 1.0 / vp.gamma, n) * s  # half-axes in nm
    c = rng.gamma(vp.shape2, 1.0 / vp.gamma, n) * s
    exact = spheroid_functionals(params, s)
    samples = (
        spheroid_volume(a, c),
        spheroid_surface(a, c),
        spheroid_mean_curvature_integral(a, c),
    )
    for value, x in zip(exact, samples, strict=True):
        se = x.std(ddof=1) / math.sqrt(n)
        assert abs(value - x.mean()) < 4.0 * se, (value, x.mean(), se)


def test_functionals_vs_monte_carlo_paper() -> None:
    _monte_carlo_check(PAPER, 20.0, seed=12345)


def test_functionals_vs_monte_carlo_similar_shapes() -> None:
    p = PAPER.replace(alpha1=100.0, alpha2=120.0, gamma=0.5)
    _monte_carlo_check(p, 20.0, seed=2024)


def test_functionals_vs_monte_carlo_small_shapes() -> None:
    # shape parameters below 1 (Beta law singular at both ends)
    p = PAPER.replace(alpha1=10.0, alpha2=14.0, gamma=0.3)
    _monte_carlo_check(p, 20.0, seed=7)


def test_functionals_vs_monte_carlo_extreme_shapes() -> None:
    # k1 = 3, k2 = 1e5: nearly flat disks, Beta law far in one tail
    _monte_carlo_check(PAPER.replace(alpha1=60.0, alpha2=2e6, gamma=1.0), 20.0, seed=11)
    # k1 = 0.5, k2 = 5e4: skewed law with a singular density at 0
    _monte_carlo_check(PAPER.replace(alpha1=10.0, alpha2=1e6, gamma=1.0), 20.0, seed=12)


def test_functionals_reject_bad_voxel_size() -> None:
    with pytest.raises(ValueError, match="voxel_size"):
        spheroid_functionals(PAPER, 0.0)


def test_functionals_scale_with_gamma_rate() -> None:
    # half-axes scale as 1/γ: V̄ ∝ γ^-3, S̄ ∝ γ^-2, K̄ ∝ γ^-1
    a = spheroid_functionals(PAPER, 20.0)
    b = spheroid_functionals(PAPER.replace(gamma=2 * PAPER.gamma), 20.0)
    for x, y, d in zip(a, b, (3, 2, 1), strict=True):
        assert y == pytest.approx(x / 2**d, rel=1e-12)


def test_functionals_sphere_limit() -> None:
    # huge equal shapes: A ≈ C ≈ k/γ voxels, i.e. nearly a ball of radius α/γ nm
    p = PAPER.replace(alpha1=2e12, alpha2=2e12, gamma=1e6)
    r = 2e6
    vbar, sbar, kbar = spheroid_functionals(p, 1.0)
    assert vbar == pytest.approx(4 / 3 * math.pi * r**3, rel=1e-5)
    assert sbar == pytest.approx(4 * math.pi * r**2, rel=1e-5)
    assert kbar == pytest.approx(4 * math.pi * r, rel=1e-5)


def test_ball_limits_exact() -> None:
    r = np.array([1e-3, 0.5, 1.0, 7.25, 1e4])
    np.testing.assert_allclose(spheroid_volume(r, r), 4 / 3 * np.pi * r**3, rtol=1e-12)
    np.testing.assert_allclose(spheroid_surface(r, r), 4 * np.pi * r**2, rtol=1e-12)
    np.testing.assert_allclose(spheroid_mean_curvature_integral(r, r), 4 * np.pi * r, rtol=1e-12)
    # nearly a ball: continuous, no 0/0
    assert spheroid_surface(1 - 1e-12, 1.0) == pytest.approx(4 * math.pi, rel=1e-11)
    assert spheroid_mean_curvature_integral(1 - 1e-12, 1.0) == pytest.approx(4 * math.pi, rel=1e-11)
    assert spheroid_surface(3.0, 3.0) == pytest.approx(36 * math.pi, rel=1e-15)


def test_disk_limits() -> None:
    assert spheroid_volume(0.0, 2.0) == 0.0
    assert spheroid_surface(0.0, 2.0) == pytest.approx(2 * math.pi * 4, rel=1e-15)
    assert spheroid_mean_curvature_integral(0.0, 2.0) == pytest.approx(math.pi**2 * 2, rel=1e-15)


@pytest.mark.parametrize("delta", [1e-6, 0.01, 0.3, 0.7, 0.99, 0.999999])
def test_spheroid_vs_printed_equations(delta: float) -> None:
    big_r = 3.0
    e = math.sqrt(1 - delta**2)
    eq15 = 2 * math.pi * delta * big_r**2 * (1 / delta - delta / e * math.log((1 - e) / delta))
    eq16 = 2 * math.pi * big_r * (delta + math.asin(e) / e)
    eq14 = 4 / 3 * math.pi * delta * big_r**3
    # arguments in either order; the printed forms lose digits to cancellation near
    # δ = 0 and δ = 1, hence rel=1e-8 for Eqs. 15-16
    assert spheroid_volume(big_r, delta * big_r) == pytest.approx(eq14, rel=1e-13)
    assert spheroid_surface(delta * big_r, big_r) == pytest.approx(eq15, rel=1e-8)
    assert spheroid_mean_curvature_integral(big_r, delta * big_r) == pytest.approx(eq16, rel=1e-8)


def test_spheroid_vectorised_broadcast() -> None:
    out = spheroid_surface(np.array([[1.0], [2.0]]), np.array([2.0, 3.0, 4.0]))
    assert isinstance(out, np.ndarray) and out.shape == (2, 3)
    assert isinstance(spheroid_surface(1.0, 2.0), float)
    with pytest.raises(ValueError):
        spheroid_volume(-1.0, 1.0)


# ---------------------------------------------------------------- Miles
def test_miles_hand_computed() -> None:
    lam, vbar, sbar, kbar = 1e-3, 100.0, 50.0, 20.0
    # hand: V = 1 - e^-0.1; λ(1-V) = 1e-3 e^-0.1 = 9.048374180359595e-4
    # K = 9.048374180359595e-4 * (20 - π² 1e-3 2500 / 32) = 9.048374180359595e-4 * 19.2289...
    # N = 9.048374180359595e-4 * (1 - 1e-3*20*50/(4π) + π 1e-6 125000/384)
    g = miles(lam, vbar, sbar, kbar)
    assert isinstance(g, GraphiteDensities)
    assert g.V1 == pytest.approx(0.09516258196404043, rel=1e-14)
    assert g.S1 == pytest.approx(0.04524187090179797, rel=1e-14)
    assert g.K1 == pytest.approx(9.048374180359595e-4 * 19.228937156164893, rel=1e-13)
    assert g.N1 == pytest.approx(9.048374180359595e-4 * 0.9214451823126428, rel=1e-13)


def test_graphite_densities_consistent_with_functionals() -> None:
    vbar, sbar, kbar = spheroid_functionals(PAPER, 20.0)
    g = graphite_densities(PAPER, 20.0)
    assert g.V1 == pytest.approx(1 - math.exp(-PAPER.lambda_x * vbar), rel=1e-14)
    assert g.S1 == pytest.approx(PAPER.lambda_x * (1 - g.V1) * sbar, rel=1e-14)
    v1, s1, k1, n1 = g  # unpackable
    assert (v1, s1, k1, n1) == (g.V1, g.S1, g.K1, g.N1)


# ---------------------------------------------------------------- Ξ2, Ξ3
def test_v2_s2_v3_s3_values() -> None:
    assert v2(0.0) == 0.5
    assert v2(0.499) == pytest.approx(stats.norm.sf(0.499), rel=1e-14)
    np.testing.assert_allclose(v2([-1.0, 1.0]), [stats.norm.cdf(1.0), stats.norm.sf(1.0)])
    assert s2(0.0, 1.0) == pytest.approx(2 * math.sqrt(2) / math.pi, rel=1e-15)
    assert s2(1.0, 0.5) == pytest.approx(math.sqrt(2) / math.pi * math.exp(-0.5), rel=1e-15)
    assert v3(0.0, 0.01) == 0.0
    assert v3(1e-6, 0.1) == pytest.approx(1 - math.exp(-1e-6 * 8 * math.pi / 1e-3), rel=1e-14)
    assert s3(1e-6, 0.1) == pytest.approx(
        1e-6 * math.exp(-1e-6 * 8 * math.pi / 1e-3) * 8 * math.pi / 0.01, rel=1e-14
    )


def test_covariance() -> None:
    np.testing.assert_allclose(covariance([0.0, 1.0, 2.0], 0.5), [1.0, 0.8, 0.5], rtol=1e-15)
    assert covariance(0.0, 0.0127) == 1.0


def test_whole_model_surface_density_rules() -> None:
    # no large pores: S = S1 (1 - V2) + S2 (1 - V1)
    assert model_surface_density(0.1, 0.2, 0.3, 0.4, 0.0, 0.0) == pytest.approx(
        0.2 * 0.7 + 0.4 * 0.9, rel=1e-15
    )
    # no graphite: surface of Ξ2 ∩ Ξ3ᶜ = S2 (1 - V3) + S3 V2
    assert model_surface_density(0.0, 0.0, 0.3, 0.4, 0.2, 0.05) == pytest.approx(
        0.4 * 0.8 + 0.05 * 0.3, rel=1e-15
    )
    t = model_theory(PAPER, 20.0)
    vb = t.V2 * (1 - t.V3)
    sb = t.S2 * (1 - t.V3) + t.S3 * t.V2
    assert t.S_V == pytest.approx(t.S1 * (1 - vb) + sb * (1 - t.V1), rel=1e-14)


# ---------------------------------------------------------------- two-point coverage
def _eq21_quad(rho: float, mu: float) -> float:
    val, _ = integrate.quad(
        lambda t: math.exp(-(mu**2) / (1 + t)) / math.sqrt(1 - t * t),
        0.0,
        rho,
        epsabs=1e-14,
        epsrel=1e-13,
        limit=200,
    )
    return stats.norm.sf(mu) ** 2 + val / (2 * math.pi)


@pytest.mark.parametrize("mu", [-1.0, 0.0, 0.499, 2.0])
def test_two_point_coverage_limits(mu: float) -> None:
    v = stats.norm.sf(mu)
    assert two_point_coverage_grf(0.0, mu, 0.0127) == pytest.approx(v, abs=1e-10)
    assert abs(two_point_coverage_grf(1e5 / 0.0127, mu, 0.0127) - v**2) < 1e-8


@pytest.mark.parametrize("mu", [-1.0, 0.0, 0.499, 2.0])
def test_two_point_coverage_vs_quad(mu: float) -> None:
    eta = 0.0127
    h = np.array([1.0, 10.0, 50.0, 100.0, 400.0, 3000.0])
    got = two_point_coverage_grf(h, mu, eta)
    assert isinstance(got, np.ndarray) and got.shape == h.shape
    for hi, gi in zip(h, got, strict=True):
        rho = 1.0 / (1.0 + (eta * hi) ** 2)
        assert abs(gi - _eq21_quad(rho, mu)) < 1e-10


def test_two_point_coverage_negative_rho_vs_quad() -> None:
    for rho in (-0.3, -0.8):
        assert abs(two_point_coverage_from_rho(rho, 0.7) - _eq21_quad(rho, 0.7)) < 1e-10


@pytest.mark.parametrize("h", [30.0, 120.0])
def test_two_point_coverage_vs_bivariate_normal(h: float) -> None:
    mu, eta = 0.499, 0.0127
    rho = 1.0 / (1.0 + (eta * h) ** 2)
    cov = [[1.0, rho], [rho, 1.0]]
    # P(Z1 >= mu, Z2 >= mu) = P(-Z1 <= -mu, -Z2 <= -mu)
    ref = stats.multivariate_normal.cdf(
        [-mu, -mu], mean=[0.0, 0.0], cov=cov, abseps=1e-9, releps=1e-9
    )
    got = two_point_coverage_grf(h, mu, eta)
    assert abs(got - ref) < 1e-6
    # direct sampling
    rng = np.random.default_rng(99)
    n = 1_000_000
    z1 = rng.standard_normal(n)
    z2 = rho * z1 + math.sqrt(1 - rho**2) * rng.standard_normal(n)
    hit = (z1 >= mu) & (z2 >= mu)
    se = math.sqrt(got * (1 - got) / n)
    assert abs(hit.mean() - got) < 4 * se


@pytest.mark.parametrize("mu", [-0.5, 0.499, 1.5])
def test_rho_inverse(mu: float) -> None:
    rho = np.array([0.0, 0.01, 0.2, 0.5, 0.8, 0.95, 0.999, 1.0])
    c = two_point_coverage_from_rho(rho, mu)
    back = rho_from_two_point_coverage(c, mu)
    np.testing.assert_allclose(back, rho, rtol=0, atol=1e-9)
    h = np.array([5.0, 50.0, 500.0])
    eta = 0.0127
    back_h = rho_from_two_point_coverage(two_point_coverage_grf(h, mu, eta), mu)
    np.testing.assert_allclose(back_h, covariance(h, eta), rtol=0, atol=1e-9)


def test_rho_inverse_out_of_range() -> None:
    mu = 0.499
    v = stats.norm.sf(mu)
    out = rho_from_two_point_coverage([v + 1e-3, -1e-3, math.nan], mu)
    assert np.all(np.isnan(out))
    clipped = rho_from_two_point_coverage([v + 1e-3, -1e-3], mu, out_of_range="clip")
    np.testing.assert_array_equal(clipped, [1.0, -1.0])
    # within tol of the range: the bound
    assert rho_from_two_point_coverage(v + 1e-13, mu) == pytest.approx(1.0, abs=1e-12)
    assert isinstance(rho_from_two_point_coverage(0.2, mu), float)
    with pytest.raises(ValueError, match="out_of_range"):
        rho_from_two_point_coverage(0.2, mu, out_of_range="raise")  # type: ignore[arg-type]


# ---------------------------------------------------------------- Eqs. 22, 24, 25
def test_total_volume_fraction() -> None:
    assert total_volume_fraction(0.1, 0.3, 0.2) == pytest.approx(0.1 + 0.3 * 0.9 * 0.8, rel=1e-15)


@pytest.mark.parametrize("theta", [0.0091, 0.0105, 0.0125])
@pytest.mark.parametrize("lambda_y", [1e-10, 9.34e-9, 5e-8])
def test_eq25_inverts_eq22_eq24(theta: float, lambda_y: float) -> None:
    v1 = graphite_densities(PAPER, 20.0).V1
    vol2 = v2(PAPER.mu)
    vol = total_volume_fraction(v1, vol2, v3(lambda_y, theta))
    back = lambda_y_from_volume_fraction(vol, v1, vol2, theta)
    assert back == pytest.approx(lambda_y, rel=1e-12)


def test_eq25_paper() -> None:
    t = model_theory(PAPER, 20.0)
    back = lambda_y_from_volume_fraction(t.V, t.V1, t.V2, PAPER.theta)
    assert back == pytest.approx(PAPER.lambda_y, rel=1e-12)
    # V = V1 + V2 (1 - V1) means no large pores
    assert lambda_y_from_volume_fraction(0.1 + 0.3 * 0.9, 0.1, 0.3, 0.01) == pytest.approx(
        0.0, abs=1e-20
    )


@pytest.mark.parametrize("vol", [0.05, 0.1, 0.5])
def test_eq25_out_of_range(vol: float) -> None:
    with pytest.raises(ValueError, match=r"0 < \(V - V1\)/\(V2 \(1 - V1\)\) <= 1"):
        lambda_y_from_volume_fraction(vol, 0.1, 0.3, 0.01)
