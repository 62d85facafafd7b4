"""GPU checks of the image preparation (skipped without CuPy and a GPU): every step on the
CuPy backend (cupyx.scipy.ndimage closing, cuCIM/cupyx EDT, cupyx labels, cupy.quantile)
must reproduce the NumPy backend voxel for voxel on a realization of the paper's model."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from cbagpu import generate, preset
from cbagpu.backend import get_backend
from cbagpu.prepare import (
    clean_solid,
    close_with_ball,
    graphite_threshold,
    prepare,
    remove_small_components,
    segment_graphite,
)

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def case():
    truth = generate(preset("paper"), (64, 72, 80), 20, 3, backend="numpy")
    rng = np.random.default_rng(0)
    solid = (truth > 0) ^ (rng.random(truth.shape) < 0.02)
    prob = np.clip(0.7 * ndi.gaussian_filter((truth == 2).astype(np.float32), 1) + 0.15
                   + rng.normal(0, 0.1, truth.shape), 0, 1).astype(np.float32)
    return truth, solid, prob


@pytest.mark.parametrize("element", ["cube", "cross"])
@pytest.mark.parametrize("conn", [6, 18, 26])
def test_clean_solid_matches_numpy(case, element, conn):
    cp = get_backend("cupy")
    _, solid, _ = case
    a = clean_solid(solid, element, conn, backend="numpy", max_hole_voxels=3)
    b = clean_solid(cp.asarray(solid), element, conn, backend=cp, max_hole_voxels=3)
    np.testing.assert_array_equal(b.mask, a.mask)
    assert b.to_dict() == a.to_dict()


@pytest.mark.parametrize("radius", [20.0, 50.0, 200.0])
def test_ball_closing_and_size_filter_match_numpy(case, radius):
    cp = get_backend("cupy")
    g = case[0] == 2
    np.testing.assert_array_equal(close_with_ball(cp.asarray(g), radius, 20.0, backend=cp),
                                  close_with_ball(g, radius, 20.0, backend="numpy"))
    np.testing.assert_array_equal(
        remove_small_components(cp.asarray(g), 300 * 20.0**3, 20.0, 6, backend=cp),
        remove_small_components(g, 300 * 20.0**3, 20.0, 6, backend="numpy"))


def test_segment_graphite_and_prepare_match_numpy(case):
    cp = get_backend("cupy")
    _, solid, prob = case
    ta = graphite_threshold(prob, 0.85, backend="numpy")
    tb = graphite_threshold(cp.asarray(prob), 0.85, backend=cp)
    assert tb == pytest.approx(ta, rel=1e-6)
    # a fixed threshold keeps the labels independent of the last bit of the quantile
    a = segment_graphite(solid, prob, 20.0, threshold=ta, min_volume=500 * 20.0**3,
                         backend="numpy")
    b = segment_graphite(cp.asarray(solid), cp.asarray(prob), 20.0, threshold=ta,
                         min_volume=500 * 20.0**3, backend=cp)
    np.testing.assert_array_equal(b.labels, a.labels)
    assert b.to_dict() == a.to_dict()
    up = np.repeat(solid, 2, axis=2)
    pu = np.repeat(prob, 2, axis=2)
    ra = prepare(up, pu, (20, 20, 10), 20, threshold=ta, backend="numpy")
    rb = prepare(up, pu, (20, 20, 10), 20, threshold=ta, backend="cupy")
    np.testing.assert_array_equal(rb.labels, ra.labels)
    assert rb.steps == ra.steps and rb.backend == "cupy"
    # the default quantile rule too (thresholds equal to float32 rounding)
    da = prepare(up, pu, (20, 20, 10), 20, backend="numpy")
    db = prepare(up, pu, (20, 20, 10), 20, backend="cupy")
    assert db.threshold == pytest.approx(da.threshold, rel=1e-6)
    assert np.count_nonzero(db.labels != da.labels) <= 1e-4 * da.labels.size
