"""Ξ2 calibration (paper Section 3.2.2): Eq. 21 inversion, η least squares, ROI search."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import integrate, special

from cbagpu import CBAParams, generate
from cbagpu.fit.grf import (
    Box,
    _fit_mu_eta,
    auto_roi,
    fit_grf,
    fit_grf_boxes,
    large_pore_mask,
    largest_free_box,
    parse_roi,
    small_ball_factors,
)
from cbagpu.theory import covariance, rho_from_two_point_coverage

MUS = (-1.0, 0.0, 0.499, 1.2, 2.0)


def _c_quad(rho: float, mu: float) -> float:
    """Independent reference: corrected Eq. 21 by adaptive quadrature in t (NOTES §4)."""
    v2 = special.ndtr(-mu)
    f = lambda t: math.exp(-mu * mu / (1 + t)) / math.sqrt(1 - t * t)  # noqa: E731
    with warnings.catch_warnings():  # quad may report round-off at this tight tolerance
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        val = integrate.quad(f, 0.0, rho, epsabs=0, epsrel=1e-13, limit=200)[0]
    return v2 * v2 + val / (2 * math.pi)


@pytest.mark.parametrize("mu", MUS)
def test_eq21_inversion_exact_on_theoretical_coverage(mu: float) -> None:
    # C(h) of Eq. 21 (quadrature reference) at the lags of a 40 nm grid, Cauchy ρ (Eq. 2)
    eta, s = 0.0127, 40.0
    h = np.arange(0, 60) * s
    rho = np.asarray(covariance(h, eta))
    c = np.array([_c_quad(r, mu) for r in rho])
    got = np.asarray(rho_from_two_point_coverage(c, mu))
    # exact up to the conditioning dρ/dC = 2π√(1−ρ²)·exp(μ²/(1+ρ)) times the quadrature error
    cond = 2 * math.pi * np.exp(mu * mu / (1 + rho))
    assert np.all(np.abs(got - rho) <= 1e-13 * cond + 1e-14)
    # and η is recovered exactly by the least squares of Eq. 2 on those values
    mu_hat, eta_hat, rho_hat, n, rmse, _ = _fit_mu_eta(float(special.ndtr(-mu)), c, s)
    assert abs(mu_hat - mu) < 1e-9
    assert abs(eta_hat / eta - 1) < 1e-9 and rmse < 1e-12 and n >= 2


def test_eq21_inversion_negative_rho_and_vectorised() -> None:
    rho = np.linspace(-0.5, 1.0, 301)
    mu = np.array([0.3])[:, None] * np.ones((1, rho.size))
    c = np.array([[_c_quad(r, 0.3) for r in rho]])
    got = rho_from_two_point_coverage(c, mu)
    assert got.shape == (1, rho.size)
    assert np.max(np.abs(got - rho)) < 1e-12
    # out of range -> NaN
    assert np.isnan(rho_from_two_point_coverage(special.ndtr(-0.3) + 1e-3, 0.3))


def test_parse_roi() -> None:
    b = parse_roi("1:5,2:10,0:7", (10, 10, 10))
    assert b == Box(1, 5, 2, 10, 0, 7) and b.shape == (4, 8, 7) and str(b) == "1:5,2:10,0:7"
    for bad in ("1:5,2:10", "a:5,0:1,0:1", "5:1,0:2,0:2", "0:5,0:5,0:11"):
        with pytest.raises(ValueError):
            parse_roi(bad, (10, 10, 10))


def test_largest_free_box_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    for trial in range(6):
        f = rng.random((6, 7, 5)) < 0.12
        m = 1 + trial % 2
        best = 0
        for z0, y0, x0 in itertools.product(range(6), range(7), range(5)):
            for z1, y1, x1 in itertools.product(
                range(z0 + m, 7), range(y0 + m, 8), range(x0 + m, 6)
            ):
                if not f[z0:z1, y0:y1, x0:x1].any():
                    best = max(best, (z1 - z0) * (y1 - y0) * (x1 - x0))
        got = largest_free_box(f, m)
        assert (got[0] if got else 0) == best
        if got:
            z0, z1, y0, y1, x0, x1 = got[1]
            assert not f[z0:z1, y0:y1, x0:x1].any()
            assert min(z1 - z0, y1 - y0, x1 - x0) >= m


def test_small_ball_factors_closed_forms() -> None:
    theta, lam, r_star = 0.01, 2e-8, 250.0
    h = np.array([0.0, 100.0, 2 * r_star + 1])
    q1, q2 = small_ball_factors(h, r_star, theta, lam)
    # E[R^3; R < r*] = 6/θ³ P(Gamma(4, θ) < r*)
    want = math.exp(-lam * 4 / 3 * math.pi * 6 / theta**3 * special.gammainc(4, theta * r_star))
    assert math.isclose(q1, want, rel_tol=1e-10)
    assert math.isclose(q2[0], q1, rel_tol=1e-10)  # h = 0: one point
    assert math.isclose(q2[2], q1 * q1, rel_tol=1e-10)  # h > 2r*: independent points
    assert q1 * q1 < q2[1] < q1


def test_large_pore_mask_is_an_opening() -> None:
    pore = np.zeros((30, 30, 30), bool)
    z, y, x = np.ogrid[:30, :30, :30]
    pore |= (z - 15) ** 2 + (y - 15) ** 2 + (x - 15) ** 2 <= 36  # ball r = 6
    pore[2:4, 2:28, 2:28] = True  # slab 2 voxels thick
    big = large_pore_mask(pore, 3.0, "numpy")
    assert big[15, 15, 15] and big[15, 15, 21] and not big[3, 5, 5]
    assert not (big & ~pore).any()


def _pure_field(mu: float, eta: float, n: int, s: float, seed: int) -> np.ndarray:
    p = CBAParams(lambda_x=1e-30, alpha1=200.0, alpha2=2000.0, gamma=2.0, mu=mu, eta=eta,
                  theta=0.01, lambda_y=0.0)
    return generate(p, (n, n, n), s, seed, backend="numpy")


def test_fit_on_pure_field_whole_window() -> None:
    # Pure excursion set, the whole 96^3 window as ROI.  Sampling error of V̂2 for the
    # Cauchy covariance (long range: Var ≈ 4π φ(μ)²/((ηs)² L²) for a cube of L voxels) gives
    # sd(μ̂) ≈ √(4π)/(η s L) = 0.046 at η s = 0.8, L = 96: tolerance 3 sd = 0.14; η: the
    # first lags carry the fit, measured within 2 % at several seeds: tolerance 10 %.
    mu, eta, s = 0.4, 0.02, 40.0
    lab = _pure_field(mu, eta, 96, s, 4)
    f = fit_grf(lab, s, "numpy", roi="0:96,0:96,0:96")
    assert f.roi_source == "user" and f.boxes == (Box(0, 96, 0, 96, 0, 96),)
    assert abs(f.mu - mu) < 0.14
    assert abs(f.eta / eta - 1) < 0.10
    assert f.V2 == pytest.approx(np.mean(lab == 1))
    d = f.to_dict()
    assert d["roi_voxels"] == 96**3 and len(d["rho_hat"]) == len(d["h"])


def test_auto_roi_never_contains_graphite() -> None:
    rng = np.random.default_rng(0)
    # random graphite slabs and blobs over a field-like background
    for trial in range(3):
        lab = (rng.random((64, 72, 80)) < 0.4).astype(np.uint8)
        for _ in range(6 + 3 * trial):
            z0, y0, x0 = rng.integers(0, 60), rng.integers(0, 68), rng.integers(0, 76)
            lab[z0 : z0 + rng.integers(1, 5), y0 : y0 + 30, x0 : x0 + 25] = 2
        boxes, _, _ = auto_roi(lab, 40.0, "numpy")
        assert boxes
        for b in boxes:
            assert not (lab[b.slices] == 2).any()
            assert min(b.shape) >= 16
        # boxes are disjoint
        cover = np.zeros(lab.shape, np.int32)
        for b in boxes:
            cover[b.slices] += 1
        assert cover.max() == 1


def test_auto_roi_on_realization_excludes_graphite_and_large_pores() -> None:
    p = CBAParams(lambda_x=3e-10, alpha1=800.0, alpha2=2400.0, gamma=4.0, mu=0.2, eta=0.02,
                  theta=0.006, lambda_y=-math.log(0.85) * 0.006**3 / (8 * math.pi))
    lab = generate(p, (96, 96, 96), 40.0, 2, backend="numpy")
    f = fit_grf(lab, 40.0, "numpy")
    assert f.roi_source == "auto" and math.isfinite(f.large_pore_radius)
    big = large_pore_mask(lab == 0, f.large_pore_radius / 40.0, "numpy")
    for b in f.boxes:
        assert not (lab[b.slices] == 2).any()
        assert not big[b.slices].any()


def test_bad_roi() -> None:
    lab = np.zeros((20, 20, 20), np.uint8)
    with pytest.raises(ValueError, match="no CBD"):
        fit_grf_boxes(lab, 40.0, [Box(0, 20, 0, 20, 0, 20)], "numpy")
    lab[:] = 2
    with pytest.raises(ValueError, match="free of"):
        auto_roi(lab, 40.0, "numpy")


def test_user_roi_with_graphite_is_masked() -> None:
    # Ξ2 is independent of Ξ1: hiding part of a pure field under "graphite" must leave the
    # masked estimates (V2 = CBD / non-graphite, C = CBD pairs / non-graphite pairs) close to
    # those of the full field (the same field, fewer voxels).
    lab = _pure_field(0.3, 0.02, 64, 40.0, 6)
    full = fit_grf_boxes(lab, 40.0, [Box(0, 64, 0, 64, 0, 64)], "numpy")
    hidden = lab.copy()
    hidden[20:26, :, :] = 2
    hidden[:, 40:44, :] = 2
    part = fit_grf_boxes(hidden, 40.0, [Box(0, 64, 0, 64, 0, 64)], "numpy")
    keep = hidden != 2
    assert part.V2 == pytest.approx(np.mean(lab[keep] == 1))
    assert "masked" in part.notes[0]
    assert abs(part.mu - full.mu) < 0.03 and abs(part.eta / full.eta - 1) < 0.03
