"""Ξ3 calibration (paper Section 3.2.3): Eq. 25, the CPSD distance, common random numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cbagpu import CBAParams, generate
from cbagpu.backend import get_backend
from cbagpu.fit.pores import _StandardBalls, cpsd_l1, fit_pores
from cbagpu.simulate.raster import paint_grains
from cbagpu.theory import lambda_y_from_volume_fraction, v2

P = CBAParams(lambda_x=3e-10, alpha1=800.0, alpha2=2400.0, gamma=4.0, mu=0.2, eta=0.02,
              theta=0.0125, lambda_y=-math.log(0.85) * 0.0125**3 / (8 * math.pi))


def test_cpsd_l1() -> None:
    assert cpsd_l1(np.array([1.0, 0.5, 0.0]), np.array([1.0, 0.25]), 40.0) == pytest.approx(10.0)
    assert cpsd_l1(np.ones(3), np.ones(3), 20.0) == 0.0


def test_standard_balls_are_scaled_copies() -> None:
    # common random numbers: the balls at t1 < t2 are those at t2, in units of 1/θ
    sb = _StandardBalls(0.01, 7)
    a = sb.window((40, 40, 40), 0.3, 0.01)
    b = sb.window((40, 40, 40), 0.5, 0.01)
    sa = {tuple(np.round(np.r_[c * 0.3, r * 0.3], 9)) for c, r in zip(a.centers, a.radii,
                                                                      strict=True)}
    sb_ = {tuple(np.round(np.r_[c * 0.5, r * 0.5], 9)) for c, r in zip(b.centers, b.radii,
                                                                       strict=True)}
    assert sa and sa <= sb_
    # thinning keeps a subset
    c = sb.window((40, 40, 40), 0.5, 0.005)
    assert 0 < len(c) < len(b)


@pytest.mark.parametrize("kappa_frac", [1.0, 0.5])
def test_standard_balls_volume_fraction(kappa_frac: float) -> None:
    # coverage of (1/t)·Ξ3*(κ) painted at t = 0.5 (mean radius 2 voxels) on 128^3 against
    # Eq. 24, V3 = 1 − exp(−8πκ).  Sampling sd of the coverage of a Boolean model in a window W:
    # ≈ (1 − V3) sqrt(κ E[|B_R|²]/|W|) = 0.016 (std units: |W| = 64³, E[|B_R|²] = (4π/3)² 720);
    # tolerance 4 sd = 0.064 (measured deviations < 0.01).
    kappa_max = -math.log(0.8) / (8 * math.pi)
    kappa = kappa_frac * kappa_max
    sb = _StandardBalls(kappa_max, 3)
    m = np.zeros((128, 128, 128), np.uint8)
    paint_grains(get_backend("numpy"), m, sb.window(m.shape, 0.5, kappa), (0, 0, 0), 1)
    want = -math.expm1(-8 * math.pi * kappa)
    assert abs(m.mean() - want) < 0.064


def test_fit_pores_eq25_and_determinism() -> None:
    lab = generate(P, (64, 64, 64), 40.0, 1, backend="numpy")
    kw = dict(realizations=1, seed=3, theta_grid=(0.0125, 0.0105), backend="numpy",
              refine=False)
    f = fit_pores(lab, 40.0, P, **kw)
    # the grid first, then (minimum at an end) geometric extension by 1.25
    assert list(f.thetas[:2]) == [0.0105, 0.0125]
    assert np.allclose(f.thetas[2:3], [0.0125 * 1.25]) or np.allclose(f.thetas[2:3],
                                                                      [0.0105 / 1.25])
    assert f.mean_cpsd.shape == (len(f.thetas), len(f.r)) and np.all(np.isfinite(f.distances))
    V = float(np.mean(lab > 0))
    from cbagpu.theory import graphite_densities

    V1 = graphite_densities(P, 40.0).V1
    assert f.V == pytest.approx(V)
    assert f.lambda_y == pytest.approx(
        float(lambda_y_from_volume_fraction(V, V1, v2(P.mu), f.theta)), rel=1e-12
    )
    assert f.theta == f.thetas[int(np.argmin(f.distances))]
    g = fit_pores(lab, 40.0, P, **kw)
    np.testing.assert_array_equal(f.distances, g.distances)  # same seeds, same numbers


def test_fit_pores_without_large_pores_and_without_cbd_room() -> None:
    lab = np.ones((48, 48, 48), np.uint8)  # all CBD: V = 1 > V1 + V2 (1 - V1)
    f = fit_pores(lab, 40.0, P, backend="numpy")
    assert f.lambda_y == 0.0 and f.V3 == 0.0 and "no large pores" in f.notes[0]
    lab[:] = 0
    lab[:4] = 2
    with pytest.raises(ValueError, match="no room for CBD"):
        fit_pores(lab, 40.0, P.replace(lambda_x=3e-9), backend="numpy")
