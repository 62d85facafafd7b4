"""Two-point coverage C(h) (cbagpu.measure.covariance): exact against a float64 brute force
over all voxel pairs, and statistically against closed forms for the Gaussian excursion set
Xi2 (corrected Eq. 21) and a Boolean model of balls.

Statistical tolerances: each model is realised with several fixed seeds; per lag the mean of
the estimates must lie within t * SE (+ a stated bias bound) of the reference, SE = the
across-seed standard deviation / sqrt(n_seeds), t the Student quantile with n_seeds - 1
degrees of freedom at a family-wise level of 1e-3 (Bonferroni over every compared lag).
Across-seed SEs are used because the voxels are far from independent: Xi2's Cauchy covariance
decays like 1/h^2, so the variance of any window average shrinks only like 1/n (not 1/n^3).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from cbagpu import generate, generate_components, preset
from cbagpu.backend import get_backend
from cbagpu.measure.covariance import TwoPointCoverage, two_point_coverage
from cbagpu.measure.phases import phase_mask
from cbagpu.simulate.germs import Balls
from cbagpu.simulate.raster import paint_grains
from cbagpu.theory import covariance, two_point_coverage_from_rho, two_point_coverage_grf

PAPER = preset("paper")
FAMILY_ALPHA = 1e-3


# -- references -------------------------------------------------------------------------------
def brute_force(mask: np.ndarray, L: int):  # noqa: N803
    """Numerator and pair count of every lag |h_i| <= L by a double loop over all voxel pairs
    (x, y) of the window, h = y - x, in float64: nothing shared with the FFT code, not even
    the closed-form pair count."""
    coords = np.argwhere(np.ones(mask.shape, bool))
    f = mask.ravel().astype(np.float64)
    num: dict[tuple[int, int, int], float] = {}
    den: dict[tuple[int, int, int], float] = {}
    for i, x in enumerate(coords):
        diff = coords - x
        keep = np.all(np.abs(diff) <= L, axis=1)
        prod = f[i] * f[keep]
        for h, p in zip(map(tuple, diff[keep]), prod, strict=True):
            num[h] = num.get(h, 0.0) + p
            den[h] = den.get(h, 0.0) + 1.0
    return num, den


def lattice_lags(L: int):  # noqa: N803
    lags = np.arange(-L, L + 1)
    hz, hy, hx = np.meshgrid(lags, lags, lags, indexing="ij")
    dist = np.sqrt(hz**2 + hy**2 + hx**2)
    return hz, hy, hx, dist, np.floor(dist + 0.5).astype(int)


def radial_reference(c_of_dist, shape, L: int):  # noqa: N803
    """The documented radial estimator's expectation for an isotropic C: the pair-weighted
    average of C(|h|) over the lattice lags h with round(|h|) = k."""
    hz, hy, hx, dist, b = lattice_lags(L)
    pairs = (shape[0] - abs(hz)) * (shape[1] - abs(hy)) * (shape[2] - abs(hx))
    ok = b <= L
    return np.bincount(b[ok], weights=(pairs * c_of_dist(dist))[ok]) / np.bincount(
        b[ok], weights=pairs[ok]
    )


def bin_max(values_of_dist, L: int):  # noqa: N803
    """Max over each radial bin of a function of |h|."""
    *_, dist, b = lattice_lags(L)
    ok = b <= L
    out = np.full(L + 1, -np.inf)
    np.maximum.at(out, b[ok], values_of_dist(dist)[ok])
    return out


def t_quantile(n_seeds: int, n_comparisons: int) -> float:
    return float(stats.t.ppf(1 - FAMILY_ALPHA / (2 * n_comparisons), n_seeds - 1))


def assert_mean_within(samples, reference, t, bias=0.0, what=""):
    samples = np.asarray(samples)
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
    tol = t * se + bias
    bad = np.abs(mean - reference) > tol
    assert not bad.any(), (
        f"{what}: lags {np.flatnonzero(bad)}: mean {mean[bad]}, reference {reference[bad]}, "
        f"tolerance {tol[bad]}"
    )


# -- exactness ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    mask = np.random.default_rng(7).random((7, 9, 8)) < 0.4
    return mask, brute_force(mask, 6)


@pytest.mark.parametrize("precision", ["single", "double"])
@pytest.mark.parametrize("L", [3, 6])
def test_every_lag_matches_brute_force(tiny, precision, L):  # noqa: N803
    """Axes, radial bins (pair-weighted) and radial mean lag equal the float64 brute force to
    1e-12: the normalisation by the number of pairs in the window is the unbiased one and no
    lag wraps around (L = 6 = min(n) - 1 is the largest allowed lag)."""
    mask, (num, den) = tiny
    s = 2.5
    r = two_point_coverage(mask, s, max_lag=L * s, backend="numpy", precision=precision)
    k = np.arange(L + 1)
    np.testing.assert_allclose(r.h, k * s, rtol=0, atol=1e-12)
    for i in range(3):
        lag = [tuple(kk if j == i else 0 for j in range(3)) for kk in k]
        expect = np.array([num[h] / den[h] for h in lag])
        np.testing.assert_allclose(r.axes[i], expect, rtol=0, atol=1e-12)
    rn, rd, rl = np.zeros(L + 1), np.zeros(L + 1), np.zeros(L + 1)
    for h, v in num.items():
        d = float(np.sqrt(np.dot(h, h)))
        b = int(np.floor(d + 0.5))
        if b <= L:
            rn[b] += v
            rd[b] += den[h]
            rl[b] += den[h] * d
    np.testing.assert_allclose(r.radial, rn / rd, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.radial_lag, rl / rd * s, rtol=1e-12)
    assert r.volume_fraction == mask.mean()


@pytest.fixture(scope="module")
def labels():
    """A small paper realization (40 nm voxels: the 20 nm field kernel makes tiny windows
    slow to generate)."""
    return generate(PAPER, (48, 56, 40), 40, 3, backend="numpy")


def test_pair_counts_are_exact_in_single_precision(labels):
    """Numerators are rounded pair counts: below ~2e6 phase voxels single precision gives
    exactly the double-precision result."""
    mask = labels == 0
    a = two_point_coverage(mask, 40, backend="numpy", precision="single")
    b = two_point_coverage(mask, 40, backend="numpy", precision="double")
    np.testing.assert_array_equal(a.axes, b.axes)
    np.testing.assert_array_equal(a.radial, b.radial)


@pytest.mark.parametrize("phase", ["solid", "pore", "graphite", "cbd"])
def test_c0_is_the_volume_fraction(labels, phase):
    mask = phase_mask(labels, phase)
    r = two_point_coverage(mask, 40, backend="numpy")
    assert r.volume_fraction == mask.mean()
    assert r.radial[0] == r.volume_fraction
    np.testing.assert_array_equal(r.axes[:, 0], r.volume_fraction)
    assert np.all(r.radial <= r.volume_fraction) and np.all(r.axes <= r.volume_fraction)
    np.testing.assert_allclose(r.centred, r.radial - r.volume_fraction**2, rtol=0, atol=0)
    np.testing.assert_array_equal(r.centred_axes[2], r.axis("x") - r.volume_fraction**2)


def test_arguments():
    mask = np.zeros((10, 12, 14), bool)
    mask[2:5, 3:9, 1:4] = True
    r = two_point_coverage(mask, 20, max_lag=109, backend="numpy")  # 5.45 voxels -> 5
    assert isinstance(r, TwoPointCoverage) and r.h[-1] == 100 and r.axes.shape == (3, 6)
    assert len(two_point_coverage(mask, 20, backend="numpy").h) == 10 // 2 + 1
    u8 = two_point_coverage(mask.astype(np.uint8) * 3, 20, 100, backend="numpy")
    np.testing.assert_array_equal(u8.radial, r.radial)
    with pytest.raises(ValueError, match="at most 9 voxels"):
        two_point_coverage(mask, 20, max_lag=200, backend="numpy")
    for bad in (-1, np.nan):
        with pytest.raises(ValueError, match="max_lag"):
            two_point_coverage(mask, 20, max_lag=bad, backend="numpy")
    with pytest.raises(ValueError, match="voxel_size"):
        two_point_coverage(mask, 0, backend="numpy")
    with pytest.raises(ValueError, match="3D"):
        two_point_coverage(mask[0], 20, backend="numpy")
    with pytest.raises(ValueError, match="precision"):
        two_point_coverage(mask, 20, backend="numpy", precision="half")


# -- the Gaussian excursion set Xi2 vs the corrected Eq. 21 ------------------------------------
GRF_S, GRF_N, GRF_L, GRF_SEEDS = 40.0, 80, 20, range(12)


@pytest.fixture(scope="module")
def grf_runs():
    return [
        two_point_coverage(
            generate_components(PAPER, (GRF_N,) * 3, GRF_S, seed, backend="numpy").grf,
            GRF_S,
            GRF_L * GRF_S,
            backend="numpy",
        )
        for seed in GRF_SEEDS
    ]


def grf_bias_bound(dist_vox):
    """|C(rho + d) - C(rho)| for |d| <= 1e-3: the engine's field covariance is within 1e-3 of
    Eq. 2 at every lag (tests/test_grf.py) and exactly 1 at lag 0."""
    rho = np.asarray(covariance(dist_vox * GRF_S, PAPER.eta), dtype=np.float64)
    c = two_point_coverage_from_rho(rho, PAPER.mu)
    up = two_point_coverage_from_rho(np.minimum(rho + 1e-3, 1.0), PAPER.mu)
    lo = two_point_coverage_from_rho(rho - 1e-3, PAPER.mu)
    return np.where(dist_vox == 0, 0.0, np.maximum(np.abs(up - c), np.abs(c - lo)))


def test_grf_matches_corrected_eq21(grf_runs):
    """Mean over 12 seeds of C along the axes and radially, and of C(0) - C(h) (which
    cancels most of the volume-fraction fluctuation, so it tests the shape sharply), within
    t * SE + the engine's covariance bias of Eq. 21 corrected (NOTES §4)."""
    L = GRF_L  # noqa: N806
    k = np.arange(L + 1.0)

    def c_theory(d):
        return two_point_coverage_grf(d * GRF_S, PAPER.mu, PAPER.eta)

    axes_ref = c_theory(k)
    radial_ref = radial_reference(c_theory, (GRF_N,) * 3, L)
    axes_bias = grf_bias_bound(k)
    radial_bias = bin_max(grf_bias_bound, L)
    t = t_quantile(len(grf_runs), 4 * (L + 1))
    axes = np.array([r.axes.mean(axis=0) for r in grf_runs])
    radial = np.array([r.radial for r in grf_runs])
    assert_mean_within(axes, axes_ref, t, axes_bias, "axes")
    assert_mean_within(radial, radial_ref, t, radial_bias, "radial")
    assert_mean_within(
        (axes[:, :1] - axes)[:, 1:], (axes_ref[0] - axes_ref)[1:], t, axes_bias[1:], "axes, C(0)-C"
    )
    assert_mean_within(
        (radial[:, :1] - radial)[:, 1:],
        (radial_ref[0] - radial_ref)[1:],
        t,
        radial_bias[1:],
        "radial, C(0)-C",
    )


# -- Boolean model of balls vs its closed form ------------------------------------------------
BALL_R, BALL_V, BALL_N, BALL_L, BALL_SEEDS = 8.0, 0.3, 96, 20, range(24)
BALL_VOL = 4.0 / 3.0 * np.pi * BALL_R**3
BALL_LAMBDA = -np.log(1.0 - BALL_V) / BALL_VOL  # per voxel^3


def ball_model_c(h):
    """C(h) of the union of a Boolean model of balls of radius R (intensity lambda):
    1 - 2 e^{-lambda v} + e^{-lambda (2v - gamma(h))}, gamma(h) = pi (4R + h)(2R - h)^2 / 12
    the volume of the intersection of two balls at distance h < 2R (0 beyond)."""
    h = np.minimum(np.asarray(h, np.float64), 2 * BALL_R)
    gamma = np.pi * (4 * BALL_R + h) * (2 * BALL_R - h) ** 2 / 12
    return 1 - 2 * np.exp(-BALL_LAMBDA * BALL_VOL) + np.exp(-BALL_LAMBDA * (2 * BALL_VOL - gamma))


def boolean_balls(seed: int) -> np.ndarray:
    """Poisson germs, uniform in the box of centres whose open ball can reach a voxel centre
    of the window (coordinates -R .. n-1+R). A voxel is covered iff its centre is within R of
    a germ, exactly as for the continuous model: C at lattice lags has no discretisation
    error (open vs closed balls differ on a null set)."""
    rng = np.random.default_rng(seed)
    lo, ext = -BALL_R, BALL_N - 1 + 2 * BALL_R
    count = rng.poisson(BALL_LAMBDA * ext**3)
    centres = lo + rng.random((count, 3)) * ext
    img = np.zeros((BALL_N,) * 3, np.uint8)
    paint_grains(get_backend("numpy"), img, Balls(centres, np.full(count, BALL_R)), (0, 0, 0), 1)
    return img.view(bool)


@pytest.fixture(scope="module")
def ball_runs():
    return [
        two_point_coverage(boolean_balls(seed), 10.0, BALL_L * 10.0, backend="numpy")
        for seed in BALL_SEEDS
    ]


def test_boolean_balls_match_closed_form(ball_runs):
    L = BALL_L  # noqa: N806
    k = np.arange(L + 1.0)
    axes_ref = ball_model_c(k)
    radial_ref = radial_reference(ball_model_c, (BALL_N,) * 3, L)
    t = t_quantile(len(ball_runs), 4 * (L + 1))
    axes = np.array([r.axes for r in ball_runs])
    radial = np.array([r.radial for r in ball_runs])
    for i, name in enumerate("zyx"):
        assert_mean_within(axes[:, i], axes_ref, t, what=f"axis {name}")
    assert_mean_within(radial, radial_ref, t, what="radial")
    assert_mean_within(
        (radial[:, :1] - radial)[:, 1:], (radial_ref[0] - radial_ref)[1:], t, what="C(0)-C"
    )


def test_axes_and_radial_are_consistent_for_an_isotropic_model(ball_runs):
    """For an isotropic model the three axes estimate the same function, and the radial bins
    its pair-weighted bin average: per seed, the differences axis_i - axis_j (expectation 0)
    and mean-of-axes - radial (expectation: point value minus bin average of the closed form)
    are compared; these differences cancel most of the sampling noise, so the check is
    sharper than either estimate against the model."""
    L = BALL_L  # noqa: N806
    k = np.arange(L + 1.0)
    axes = np.array([r.axes for r in ball_runs])
    radial = np.array([r.radial for r in ball_runs])
    t = t_quantile(len(ball_runs), 4 * L)
    for i, j in ((0, 1), (1, 2), (0, 2)):
        assert_mean_within((axes[:, i] - axes[:, j])[:, 1:], 0.0, t, what=f"axes {i}-{j}")
    expect = ball_model_c(k) - radial_reference(ball_model_c, (BALL_N,) * 3, L)
    assert_mean_within((axes.mean(axis=1) - radial)[:, 1:], expect[1:], t, what="axes-radial")
    # the radial lag is the pair-weighted mean |h| of its bin: within half a voxel of k
    for r in ball_runs[:1]:
        assert np.all(np.abs(r.radial_lag / r.voxel_size - k) < 0.5)
        assert r.radial_lag[0] == 0


def test_brute_force_reference_is_itself_checked():
    """The double loop counts pairs; its pair count must equal the closed form
    prod(n_i - |h_i|) (so the reference is not trivially wrong)."""
    mask = np.ones((3, 4, 5), bool)
    num, den = brute_force(mask, 2)
    for h in itertools.product(range(-2, 3), repeat=3):
        assert den[h] == num[h] == np.prod([n - abs(v) for n, v in zip((3, 4, 5), h, strict=True)])
