"""Germs and marks: Poisson counts, mark distributions, isotropy, independence of the window."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from cbagpu.params import preset
from cbagpu.simulate.germs import (
    cell_generator,
    cell_size,
    draw_balls,
    draw_spheroids,
    graphite_extent_cap,
    pore_extent_cap,
    window_spheroids,
)

VP = preset("paper").to_voxel(40)


@pytest.mark.parametrize("component", ["large_pores", "graphite"])
def test_germ_counts_follow_the_poisson_law(component):
    """Germs in a box that straddles cells, over 300 seeds: mean within 4 SE of lambda V,
    dispersion consistent with Poisson (chi-square on the variance), and the Poisson pmf
    (chi-square goodness of fit)."""
    if component == "large_pores":
        lo, hi = np.array([-37.5, 10.0, 100.2]), np.array([20.0, 90.0, 150.0])
        lam, draw = VP.lambda_y, draw_balls
    else:
        lo, hi = np.array([-137.5, 10.0, 200.2]), np.array([120.0, 290.0, 450.0])
        lam, draw = VP.lambda_x, draw_spheroids
    vol = np.prod(hi - lo)
    mean = lam * vol
    counts = np.array([len(draw(VP, s, lo, hi)) for s in range(300)])
    n = len(counts)
    assert abs(counts.mean() - mean) < 4 * np.sqrt(mean / n)
    stat = (n - 1) * counts.var(ddof=1) / mean
    p = scipy.stats.chi2.sf(stat, n - 1)
    assert 1e-3 < p < 1 - 1e-3
    # and against the Poisson pmf directly (chi-square goodness of fit on pooled bins)
    k = np.arange(counts.max() + 1)
    obs = np.bincount(counts, minlength=len(k))
    exp = scipy.stats.poisson.pmf(k, mean) * n
    keep = exp >= 5
    o = np.r_[obs[keep], obs[~keep].sum()]
    e = np.r_[exp[keep], n - exp[keep].sum()]
    assert scipy.stats.chisquare(o, e).pvalue > 1e-3


def test_germ_positions_uniform():
    b = draw_balls(VP, 3, np.array([0.0, 0, 0]), np.array([200.0, 200, 200]))
    for ax in range(3):
        assert scipy.stats.kstest(b.centers[:, ax] / 200.0, "uniform").pvalue > 1e-3


def test_spheroid_axes_are_isotropic_and_half_axes_gamma():
    s = draw_spheroids(VP, 5, np.array([-2000.0, -2000, -2000]), np.array([2000.0, 2000, 2000]))
    assert len(s) > 500
    np.testing.assert_allclose(np.linalg.norm(s.axes, axis=1), 1.0, atol=1e-12)
    # uniform on the sphere <=> each coordinate uniform on [-1, 1]
    for ax in range(3):
        assert scipy.stats.kstest(s.axes[:, ax], "uniform", args=(-1, 2)).pvalue > 1e-3
    # uniform azimuth around z
    phi = np.arctan2(s.axes[:, 1], s.axes[:, 2])
    assert scipy.stats.kstest(phi, "uniform", args=(-np.pi, 2 * np.pi)).pvalue > 1e-3
    # half axes: Gamma(shape = alpha/s, rate = gamma) in voxels (NOTES §3)
    for x, k in ((s.a, VP.shape1), (s.c, VP.shape2)):
        assert scipy.stats.kstest(x, "gamma", args=(k, 0, 1 / VP.gamma)).pvalue > 1e-3


def test_pore_radii_exponential():
    b = draw_balls(VP, 9, np.array([0.0, 0, 0]), np.array([300.0, 300, 300]))
    assert scipy.stats.kstest(b.radii, "expon", args=(0, 1 / VP.theta)).pvalue > 1e-3


def test_germs_do_not_depend_on_the_query_box():
    big = draw_spheroids(VP, 2, np.array([-300.0, -300, -300]), np.array([300.0, 300, 300]))
    lo, hi = np.array([-70.0, 13.0, -200.0]), np.array([100.0, 250.0, 5.0])
    small = draw_spheroids(VP, 2, lo, hi)
    inside = np.all((big.centers >= lo) & (big.centers < hi), axis=1)
    np.testing.assert_array_equal(small.centers, big.centers[inside])
    np.testing.assert_array_equal(small.axes, big.axes[inside])
    np.testing.assert_array_equal(small.a, big.a[inside])
    other = draw_spheroids(VP, 3, lo, hi)
    assert len(other) != len(small) or not np.array_equal(other.centers, small.centers)


def test_window_germs_include_grains_centred_outside():
    cap = graphite_extent_cap(VP)
    s = window_spheroids(VP, 1, (0, 0, 0), (50, 50, 50))
    outside = np.any((s.centers < 0) | (s.centers >= 50), axis=1)
    assert outside.any()
    assert np.all(s.centers > -cap - 1) and np.all(s.centers < 50 + cap + 1)


def test_extent_caps_are_far_tail_quantiles():
    g = graphite_extent_cap(VP)
    assert scipy.stats.gamma.sf(g * VP.gamma, VP.shape2) == pytest.approx(1e-9, rel=1e-3)
    p = pore_extent_cap(VP)
    assert np.exp(-VP.theta * p) == pytest.approx(1e-9, rel=1e-9)


def test_cell_generators_are_independent_streams():
    a = cell_generator(1, 1, (0, 0, 0)).random(4)
    b = cell_generator(1, 1, (0, 0, 1)).random(4)
    c = cell_generator(1, 3, (0, 0, 0)).random(4)
    d = cell_generator(2, 1, (0, 0, 0)).random(4)
    e = cell_generator(1, 1, (0, 0, -1)).random(4)
    rows = [tuple(x) for x in (a, b, c, d, e)]
    assert len(set(rows)) == 5
    np.testing.assert_array_equal(a, cell_generator(1, 1, (0, 0, 0)).random(4))
    with pytest.raises(ValueError, match="too far"):
        cell_generator(1, 1, (1 << 19, 0, 0))


def test_cell_size_depends_on_intensity_only():
    vp20 = preset("paper").to_voxel(20)
    assert cell_size(vp20.lambda_x) == 512 and cell_size(vp20.lambda_y) == 128
    assert cell_size(1.0) == 32 and cell_size(1e-30) == 1024
    for lam in (1e-3, 1e-5, 1e-7):
        c = cell_size(lam)
        assert lam * c**3 >= 64 and (c == 32 or lam * (c // 2) ** 3 < 64)
