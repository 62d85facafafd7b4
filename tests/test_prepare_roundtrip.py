"""Round trip of the issue: a realization of the paper's model (20 nm, 112^3, seed 7),
up-sampled to FIB-SEM-like 20 x 10 x 10 nm voxels (z, y, x) and degraded the ways a
Weka/ilastik segmentation goes wrong, is restored by ``prepare`` (slice removal back to
20 nm). Measured on the 2-core machine (NumPy backend), in % of the truth:

    settings                                    pore      graphite
    defaults (inclusions <= 27 voxels filled)   +0.3      +0.1
    paper's closing (3x3x3 cube, no filling)    -4.1      +2.5
    suited (inclusions <= 2 voxels filled,      +0.3      -0.3     (higher IoU)
            threshold 0.5, 60 nm ball)

The paper's literal solid closing misses the issue's 2 % on the pore fraction, and that
is the closing, not the degradation: the closing of the *undegraded* solid alone lowers
the porosity by ~2 % (the model has pore gaps one 20 nm voxel wide; the closing cannot tell
them from noise). So the default fills the small pore inclusions the closing is meant to
remove (paper Section 2.3.1) without closing, and the cube stays one option away. On
another window (seed 1, 128^3, 8.9 % graphite) the defaults give +0.3 % pore and +7.4 %
graphite (the paper's closing: -4.2 % and +15 %): the 0.85 quantile of the whole map takes
15 % of the voxels as candidates, so it presumes a graphite fraction near the paper's
~10-15 %.

The tolerances are the issue's (2 % pore, 10 % graphite, relative); everything is
deterministic (fixed seeds), so no sampling error enters.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from cbagpu import generate, preset
from cbagpu.prepare import clean_solid, prepare

SUITED = {"closing_element": "none", "max_hole_volume": 2 * 20 * 10 * 10.0,
          "threshold": 0.5, "closing_radius": 60.0}


def degrade(labels: np.ndarray, seed: int, p_boundary: float = 0.05, p_speck: float = 0.002,
            p_hole: float = 0.002, noise: float = 0.1, n_gspeck: int = 300):
    """Up-sample to 20 x 10 x 10 nm and degrade: boundary voxels flipped (both ways) with
    probability ``p_boundary``, isolated solid specks in the pores, one-voxel pore holes in
    the solid interior; a noisy graphite probability map (smoothed truth * 0.7 + 0.15 +
    N(0, noise), clipped) with ``n_gspeck`` small spurious graphite balls in the CBD."""
    rng = np.random.default_rng(seed)
    up = np.repeat(np.repeat(labels, 2, axis=1), 2, axis=2)
    solid, g = up > 0, up == 2
    cross, cube = ndi.generate_binary_structure(3, 1), np.ones((3, 3, 3), bool)
    boundary = (ndi.binary_dilation(solid, cross) & ~solid) | (
        solid & ~ndi.binary_erosion(solid, cross, border_value=1))
    s = solid ^ (boundary & (rng.random(solid.shape) < p_boundary))
    s[ndi.binary_erosion(solid, cube, border_value=1) & (rng.random(s.shape) < p_hole)] = False
    s[~ndi.binary_dilation(solid, cube) & (rng.random(s.shape) < p_speck)] = True
    p = (0.7 * ndi.gaussian_filter(g.astype(np.float32), (0.5, 1, 1)) + 0.15
         + rng.normal(0, noise, g.shape).astype(np.float32))
    cbd = np.argwhere(up == 1)
    zz, yy, xx = np.ogrid[: up.shape[0], : up.shape[1], : up.shape[2]]
    speck = np.zeros(up.shape, bool)
    for z, y, x in cbd[rng.choice(len(cbd), n_gspeck, replace=False)]:
        r = rng.uniform(1, 3)
        sl = tuple(slice(max(0, c - 4), c + 5) for c in (z, y, x))
        speck[sl] |= (((zz[sl[0]] - z) * 2) ** 2 + (yy[:, sl[1]] - y) ** 2
                      + (xx[:, :, sl[2]] - x) ** 2) <= (2 * r) ** 2
    p[speck] = np.maximum(p[speck], 0.9)
    return s.astype(np.uint8) * 255, np.clip(p, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def case():
    truth = generate(preset("paper"), (112, 112, 112), 20.0, 7, backend="numpy")
    solid, prob = degrade(truth, 1)
    return truth, solid, prob


@pytest.fixture(scope="module")
def defaults(case):
    _, solid, prob = case
    return prepare(solid, prob, (20, 10, 10), 20, backend="numpy")


@pytest.fixture(scope="module")
def paper_closing(case):
    _, solid, prob = case
    return prepare(solid, prob, (20, 10, 10), 20, backend="numpy", closing_element="cube",
                   max_hole_volume=0.0)


@pytest.fixture(scope="module")
def suited(case):
    _, solid, prob = case
    return prepare(solid, prob, (20, 10, 10), 20, backend="numpy", **SUITED)


def _rel(r, truth):
    return ((r.labels == 0).mean() / (truth == 0).mean() - 1,
            (r.labels == 2).mean() / (truth == 2).mean() - 1)


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_round_trip_defaults_within_the_issue_tolerances(case, defaults):
    truth = case[0]
    assert defaults.labels.shape == truth.shape and defaults.factors == (1, 2, 2)
    pore, graphite = _rel(defaults, truth)
    assert abs(pore) < 0.02, pore          # measured +0.3 %
    assert abs(graphite) < 0.10, graphite  # measured +0.1 %
    steps = {s["step"]: s for s in defaults.steps}
    assert steps["closing"]["filled"] == 0 and steps["fill_holes"]["filled"] > 0
    assert steps["fill_holes"]["max_hole_voxels"] == 27


def test_paper_closing_lowers_the_pore_fraction(case, paper_closing):
    """The paper's 3x3x3 closing, selectable, always errs downwards (closing only adds
    solid); measured -4.1 %."""
    pore, graphite = _rel(paper_closing, case[0])
    assert -0.06 < pore < -0.02, pore
    assert abs(graphite) < 0.10, graphite


def test_closing_bias_of_the_clean_solid(case):
    truth = case[0]
    up = np.repeat(np.repeat(truth > 0, 2, axis=1), 2, axis=2)
    r = clean_solid(up, "cube", 26, backend="numpy")
    pore = 1 - r.mask[:, ::2, ::2].mean()
    rel = pore / (truth == 0).mean() - 1
    assert -0.03 < rel < -0.01, rel   # measured -1.8 % (seed 7), -1.9 % (seed 1, 128^3)
    assert r.filled > 0


def test_round_trip_suited_settings_closer(case, defaults, suited):
    truth = case[0]
    pore, graphite = _rel(suited, truth)
    assert abs(pore) < 0.02 and abs(graphite) < 0.10
    # the defaults already restore both fractions to < 0.5 %: "closer" is voxel-wise, the
    # suited settings put more voxels back where they were
    assert _iou(suited.labels == 2, truth == 2) > _iou(defaults.labels == 2, truth == 2)
    assert _iou(suited.labels > 0, truth > 0) >= _iou(defaults.labels > 0, truth > 0)
    steps = {s["step"]: s for s in suited.steps}
    assert steps["fill_holes"]["filled"] > 0 and steps["closing"]["filled"] == 0


def test_round_trip_report_is_consistent(case, defaults):
    truth, solid, _ = case
    st = {s["step"]: s for s in defaults.steps}
    assert st["input"]["solid"] == np.count_nonzero(solid)
    main, size = st["main_component"], st["size_filter"]
    assert st["fill_holes"]["solid"] == st["closing"]["solid"] + st["fill_holes"]["filled"]
    assert main["solid"] == st["fill_holes"]["solid"] - main["removed"]
    assert size["graphite"] == st["threshold"]["graphite"] - size["removed"]
    assert st["pore_correction"]["graphite"] == (defaults.labels == 2).sum()
    assert st["resample"]["solid"] == (defaults.labels > 0).sum()
    # the 0.85 quantile over all voxels: 15 % of the (down-sampled) map are candidates
    assert st["threshold"]["candidates"] / truth.size == pytest.approx(0.15, abs=1e-3)
