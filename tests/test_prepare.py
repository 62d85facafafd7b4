"""Image preparation (paper Section 2.3): each step against hand-built cases with known
answers and against independent brute-force references; the composition check of
Section 2.3.3 against the paper's numbers. The CPU backend runs here; the CuPy backend is
compared with it in tests/gpu/test_prepare.py."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.ndimage as ndi

from cbagpu.backend import get_backend
from cbagpu.prepare import (
    check_composition,
    clean_solid,
    close_solid,
    close_with_ball,
    expected_volume_fractions,
    graphite_threshold,
    keep_main_network,
    prepare,
    remove_small_components,
    resample,
    resample_factors,
    segment_graphite,
)
from cbagpu.prepare._morph import dilate_ball, erode_ball

BE = "numpy"


# --------------------------------------------------------------------------- resampling
def test_resample_factors_and_slice_removal():
    assert resample_factors((20, 10, 10), 20) == (1, 2, 2)
    assert resample_factors((10, 10, 20), 20) == (2, 2, 1)
    assert resample_factors(20, 80) == (4, 4, 4)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 3, (7, 10, 9), dtype=np.uint8)
    out = resample(img, (20, 10, 5), 20)
    # every 1st z, every 2nd y, every 4th x slice, starting at the first: ceil(n / k)
    assert out.shape == (7, 5, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    for z, y, x in itertools.product(range(7), range(5), range(3)):
        assert out[z, y, x] == img[z, 2 * y, 4 * x]
    assert resample(img, 20, 20) is img


@pytest.mark.parametrize(
    "sizes,to,axis,suggest",
    [((10, 10, 20), 25, "z", "20 or 40 nm"), ((20, 10, 15), 40, "x", "60 nm"),
     ((20, 20, 20), 30, "z", "20 or 40 nm")],
)
def test_resample_non_integer_factor_names_axis_and_suggests(sizes, to, axis, suggest):
    with pytest.raises(ValueError, match=f"along {axis} .*not an integer.*{suggest}"):
        resample_factors(sizes, to)


def test_resample_refuses_upsampling_and_bad_sizes():
    with pytest.raises(ValueError, match="finer than the 20 nm voxels along x"):
        resample_factors((10, 10, 20), 10)
    with pytest.raises(ValueError, match="along y must be finite and > 0"):
        resample_factors((10, -1, 10), 20)
    with pytest.raises(ValueError, match="one value .* or three"):
        resample_factors((10, 10), 20)
    with pytest.raises(ValueError, match="3D"):
        resample(np.zeros((4, 4)), 10, 20)


# ------------------------------------------------------------------------------ clean-up
def _closing_brute_force(mask: np.ndarray, element: np.ndarray) -> np.ndarray:
    """Definition of the window convention, voxel by voxel: x is in the closing iff every
    translate B + y containing x with y inside the image meets X (B symmetric)."""
    offs = np.argwhere(element) - 1
    shape = np.array(mask.shape)
    out = np.zeros_like(mask)
    for x in itertools.product(*map(range, mask.shape)):
        ok = True
        for b in offs:
            y = np.array(x) + b
            if np.any(y < 0) or np.any(y >= shape):
                continue
            pts = y + offs
            inside = np.all((pts >= 0) & (pts < shape), axis=1)
            if not mask[tuple(pts[inside].T)].any():
                ok = False
                break
        out[x] = ok
    return out


@pytest.mark.parametrize("element", ["cube", "cross"])
def test_closing_matches_definition(element):
    rng = np.random.default_rng(3)
    mask = rng.random((9, 10, 8)) < 0.45
    got = close_solid(mask, element, backend=BE)
    ref = np.ones((3, 3, 3), bool) if element == "cube" else ndi.generate_binary_structure(3, 1)
    np.testing.assert_array_equal(got, _closing_brute_force(mask, ref))
    assert np.all(got >= mask)  # extensive


def test_cleanup_hand_case_hole_closed_speck_removed_faces_kept():
    solid = np.zeros((12, 12, 12), bool)
    solid[:, 2:9, 2:9] = True          # slab touching the z faces
    solid[5, 5, 5] = False             # one-voxel hole
    solid[6, 8, 8] = False             # a pore voxel at the slab's edge (a notch)
    solid[6, 11, 11] = True            # isolated speck, touches nothing
    solid[0, 0, 0] = True              # isolated speck in a corner of the window
    r = clean_solid(solid, "cube", 26, backend=BE)
    expected = np.zeros_like(solid)
    expected[:, 2:9, 2:9] = True
    np.testing.assert_array_equal(r.mask, expected)
    assert (r.solid_in, r.filled, r.removed, r.n_components) == (solid.sum(), 2, 2, 3)
    d = r.to_dict()
    assert "mask" not in d and d["filled"] == 2


def test_main_network_connectivity_6_18_26():
    solid = np.zeros((10, 10, 10), bool)
    solid[:4] = True                   # main network: a slab ...
    solid[4:7, 2, 2] = True            # ... with a column up to z = 6
    solid[4:6, 6, 6] = True            # ... and one up to z = 5
    face, edge, corner = (4, 9, 9), (6, 3, 3), (6, 7, 7)
    solid[face] = True                 # face neighbour of the slab voxel (3, 9, 9)
    solid[edge] = True                 # edge neighbour of (6, 2, 2) only
    solid[corner] = True               # corner neighbour of (5, 6, 6) only
    for conn, keep_edge, keep_corner in [(6, False, False), (18, True, False), (26, True, True)]:
        m = keep_main_network(solid, conn, backend=BE)
        assert m[edge] == keep_edge and m[corner] == keep_corner
        assert m[face] and m[:4].all() and m[4:7, 2, 2].all()
        assert m.sum() == solid.sum() - (not keep_edge) - (not keep_corner)
    with pytest.raises(ValueError, match="6, 18 or 26"):
        keep_main_network(solid, 8, backend=BE)
    with pytest.raises(ValueError, match="closing element"):
        close_solid(solid, "ball", backend=BE)


def test_hole_filling_option_fills_only_small_pore_components():
    solid = np.ones((10, 10, 10), bool)
    solid[2, 2, 2] = False                       # 1-voxel hole
    solid[6:8, 6:8, 6] = False                   # 4-voxel hole
    solid[:, 0, :] = False                       # big pore region (a face layer)
    r = clean_solid(solid, "none", 26, backend=BE, max_hole_voxels=2)
    assert r.mask[2, 2, 2] and not r.mask[6, 6, 6] and not r.mask[:, 0, :].any()
    assert (r.filled, r.holes_filled) == (0, 1)


# ------------------------------------------------------------------------- ball closing
def _ball(r: float) -> np.ndarray:
    k = int(np.floor(r))
    g = np.mgrid[-k:k + 1, -k:k + 1, -k:k + 1]
    return (g**2).sum(0).astype(np.float64) <= r * r


@pytest.mark.parametrize("radius", [1.0, 2.0, 2.5, np.sqrt(5.0), 3.0, 4.2])
def test_ball_dilation_erosion_closing_match_structuring_element(radius):
    be = get_backend(BE)
    rng = np.random.default_rng(int(radius * 10))
    mask = rng.random((22, 24, 20)) < 0.03
    mask[5:15, 4:9, 6:16] = True
    b = _ball(radius)
    dil = ndi.binary_dilation(mask, b, border_value=0)
    np.testing.assert_array_equal(dilate_ball(mask, radius, be), dil)
    ero = ndi.binary_erosion(dil, b, border_value=1)
    np.testing.assert_array_equal(erode_ball(dil, radius, be), ero)
    np.testing.assert_array_equal(close_with_ball(mask, radius * 20, 20, backend=BE), ero)


def test_ball_closing_hand_case_gap_and_hole():
    # two flakes 3 voxels thick; a gap of 4 voxels between them (< 2r + 1 for r = 3 voxels
    # of 20 nm = 60 nm) is filled, the same flakes 8 voxels apart are not; a hole inside a
    # flake is closed.
    m = np.zeros((30, 30, 30), bool)
    m[5:8, 5:25, 5:25] = True
    m[12:15, 5:25, 5:25] = True        # gap rows 8..11 (4 voxels)
    m[6, 15, 15] = False               # hole
    closed = close_with_ball(m, 60.0, 20.0, backend=BE)
    assert closed[6, 15, 15] and closed[8:12, 10:20, 10:20].all()
    m2 = np.zeros_like(m)
    m2[5:8, 5:25, 5:25] = True
    m2[16:19, 5:25, 5:25] = True       # gap of 8 voxels
    closed2 = close_with_ball(m2, 60.0, 20.0, backend=BE)
    assert not closed2[9:15].any()
    np.testing.assert_array_equal(closed2, m2)  # convex plates are closed already


# --------------------------------------------------------------------- graphite labelling
def test_remove_small_components_volume_in_nm3():
    m = np.zeros((12, 12, 12), bool)
    m[1, 1, 1:5] = True                # 4 voxels
    m[5, 5, 2:7] = True                # 5 voxels: kept (>= min)
    m[9, 2:12, 9] = True               # 10 voxels
    out = remove_small_components(m, 5 * 10.0**3, 10.0, backend=BE)
    assert not out[1].any() and out[5, 5, 2:7].all() and out[9, 2:12, 9].all()
    # the same in nm^3 at 20 nm voxels: 5 voxels = 5 * 8000 nm^3
    out20 = remove_small_components(m, 5 * 20.0**3 + 1, 20.0, backend=BE)
    assert out20.sum() == 10


def test_graphite_threshold_quantile_over_all_or_solid():
    rng = np.random.default_rng(5)
    p = rng.random((10, 11, 12)).astype(np.float32)
    solid = rng.random(p.shape) < 0.3
    assert graphite_threshold(p, 0.85, backend=BE) == pytest.approx(np.quantile(p, 0.85))
    assert graphite_threshold(p, 0.85, solid, backend=BE) == pytest.approx(
        np.quantile(p[solid], 0.85))


def _flake_case():
    """A solid slab (CBD) holding a graphite flake; a pore pocket inside the flake region
    with graphite-like probability; a small graphite speck; the flake's probability map
    has a hole and a ragged rim."""
    shape = (40, 40, 40)
    solid = np.zeros(shape, bool)
    solid[5:35, 5:35, 5:35] = True
    solid[18:22, 18:22, 18:22] = False                 # pore pocket inside the flake
    truth = np.zeros(shape, bool)
    truth[16:24, 8:32, 8:32] = True                    # flake 8 x 24 x 24 voxels
    p = np.full(shape, 0.1, np.float32)
    p[truth] = 0.9
    p[18:22, 18:22, 18:22] = 0.95                      # pore reads as graphite
    p[18, 12, 12] = 0.2                                # hole in the flake's map
    p[30, 30, 30] = p[30, 30, 31] = 0.9                # two-voxel speck in the CBD
    return solid, truth, p


def test_segment_graphite_hand_case():
    solid, truth, p = _flake_case()
    r = segment_graphite(solid, p, 20.0, threshold=0.5, min_volume=10 * 20.0**3,
                         closing_radius=40.0, backend=BE)
    lab = r.labels
    assert lab.dtype == np.uint8
    expected = solid.astype(np.uint8)
    expected[truth & solid] = 2
    np.testing.assert_array_equal(lab, expected)       # hole closed, speck removed
    assert (lab[18:22, 18:22, 18:22] == 0).all()       # pore stays pore
    # candidates: the flake less its map's hole, plus the speck; 64 of them are pore
    assert r.candidates == truth.sum() - 1 + 2 and r.candidates_solid == r.candidates - 64
    assert r.components == 2 and r.components_removed == 1
    assert r.graphite == (truth & solid).sum()
    # the closing fills the 4^3 pocket (a radius-2 ball does not fit in it): put back to pore
    assert r.after_closing - r.graphite == r.pore_corrected == 64


def test_segment_graphite_defaults_quantile_and_errors():
    solid, truth, p = _flake_case()
    r = segment_graphite(solid, p, 20.0, backend=BE)    # 0.85 quantile over all voxels
    assert r.threshold == pytest.approx(np.quantile(p, 0.85))
    assert r.settings["quantile_over"] == "all" and r.settings["closing_radius"] == 200.0
    # the flake has < 5000 voxels: the paper's default volume removes it
    assert r.graphite == 0 and r.components_removed == r.components
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        segment_graphite(solid, p * 2, 20.0, backend=BE)
    bad = p.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        segment_graphite(solid, bad, 20.0, backend=BE)
    with pytest.raises(ValueError, match="shape mismatch"):
        segment_graphite(solid, p[1:], 20.0, backend=BE)
    with pytest.raises(ValueError, match="quantile_over"):
        segment_graphite(solid, p, 20.0, quantile_over="pore", backend=BE)


# --------------------------------------------------------------------------- composition
def test_composition_reproduces_paper_section_2_3_3():
    wt = {"am": 87, "graphite": 5, "carbon_black": 4, "binder": 4}
    rho = {"am": 4.77, "graphite": 2.3, "carbon_black": 1.9, "binder": 1.8}
    c = expected_volume_fractions(wt, rho, 0.6686)
    got = {k: 100 * v for k, v in c.volume_fractions.items()}
    # the paper prints two decimals: agreement to 0.01 % (half a unit of the last digit)
    assert abs(got["graphite"] - 11.08) < 0.005
    assert abs(got["carbon_black"] - 10.73) < 0.005
    assert abs(got["binder"] - 11.33) < 0.005
    assert set(got) == {"graphite", "carbon_black", "binder"}
    assert c.solid + c.porosity == pytest.approx(1.0)
    assert c.graphite + c.cbd == pytest.approx(c.solid)
    # weight fractions as fractions, not %: same answer; the AM's density is not needed
    c2 = expected_volume_fractions({k: v / 100 for k, v in wt.items()},
                                   {k: v for k, v in rho.items() if k != "am"}, 0.6686)
    assert c2.volume_fractions == pytest.approx(c.volume_fractions, rel=1e-12)


def test_composition_errors_and_label_check():
    rho = {"graphite": 2.3, "binder": 1.8}
    with pytest.raises(ValueError, match="no density given for carbon_black"):
        expected_volume_fractions({"graphite": 5, "carbon_black": 4, "binder": 4}, rho, 0.6)
    with pytest.raises(ValueError, match="porosity must be a fraction"):
        expected_volume_fractions({"graphite": 5, "binder": 4}, rho, 66.86)
    with pytest.raises(ValueError, match="must be finite and > 0"):
        expected_volume_fractions({"graphite": 5, "binder": 4}, {"graphite": 0, "binder": 1},
                                  0.5)
    labels = np.zeros((10, 10, 10), np.uint8)
    labels.flat[:100] = 2
    labels.flat[100:300] = 1
    chk = check_composition(labels, {"graphite": 1, "binder": 2}, {"graphite": 1, "binder": 1})
    assert chk.measured == pytest.approx({"pore": 0.7, "cbd": 0.2, "graphite": 0.1})
    assert chk.expected.graphite == pytest.approx(0.1) and chk.expected.cbd == pytest.approx(0.2)
    assert chk.difference["graphite"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="labels must be 0"):
        check_composition(labels + 1, {"graphite": 1}, {"graphite": 1})


# ------------------------------------------------------------------------------ pipeline
def test_prepare_hand_case_anisotropic_input():
    solid, truth, p = _flake_case()
    # the 20 nm case up-sampled to 20 x 10 x 10 nm voxels (z, y, x) by repetition;
    # slice removal must give it back exactly; add a one-voxel hole and a speck at the
    # fine resolution (cleaned before the down-sampling, as in the paper)
    up = np.repeat(np.repeat(solid, 2, 1), 2, 2).astype(np.uint8) * 255
    pu = np.repeat(np.repeat(p, 2, 1), 2, 2)
    up[10, 21, 21] = 0                                 # hole inside the slab
    up[2, 75, 20] = 255                                # speck in the pore
    r = prepare(up, pu, (20, 10, 10), 20, threshold=0.5, min_graphite_volume=10 * 20.0**3,
                closing_radius=40.0, backend=BE)
    expected = solid.astype(np.uint8)
    expected[truth & solid] = 2
    np.testing.assert_array_equal(r.labels, expected)
    assert r.factors == (1, 2, 2) and r.voxel_size == 20.0
    steps = {s["step"]: s for s in r.steps}
    # default: the hole is filled as a pore inclusion (<= 27 voxels), no closing
    assert steps["closing"]["filled"] == 0 and steps["fill_holes"]["filled"] == 1
    assert steps["main_component"]["removed"] == 1
    assert steps["resample"]["solid"] == solid.sum()
    # the paper's closing (3x3x3 cube) fills it instead
    rc = prepare(up, pu, (20, 10, 10), 20, threshold=0.5, min_graphite_volume=10 * 20.0**3,
                 closing_radius=40.0, closing_element="cube", max_hole_volume=0, backend=BE)
    np.testing.assert_array_equal(rc.labels, expected)
    assert {s["step"]: s for s in rc.steps}["closing"]["filled"] == 1
    assert steps["pore_correction"]["graphite"] == (truth & solid).sum()
    assert r.fractions["graphite"] == pytest.approx((expected == 2).mean())
    # a probability map already at the target shape is accepted as is
    r2 = prepare(up, p, (20, 10, 10), 20, threshold=0.5, min_graphite_volume=10 * 20.0**3,
                 closing_radius=40.0, backend=BE)
    np.testing.assert_array_equal(r2.labels, r.labels)
    meta = r.metadata(inputs={"solid": "s.tif"})
    assert meta["voxel_size"] == 20.0 and meta["prepare"]["closing_radius"] == 40.0
    assert meta["inputs"]["solid"] == "s.tif" and len(meta["prepare"]["steps"]) == len(r.steps)


def test_prepare_bad_input():
    solid, _, p = _flake_case()
    with pytest.raises(ValueError, match="shape mismatch"):
        prepare(solid, p[:, :, :-1], 20, 20, backend=BE)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        prepare(solid, p - 0.5, 20, 20, backend=BE)
    with pytest.raises(ValueError, match="along y .*not an integer"):
        prepare(solid, p, (20, 15, 10), 20, backend=BE)
    three = solid.astype(np.uint8)
    three[0, 0, 0] = 2
    with pytest.raises(ValueError, match="must be binary"):
        prepare(three, p, 20, 20, backend=BE)
    with pytest.raises(ValueError, match="3D"):
        prepare(solid[0], p, 20, 20, backend=BE)
    with pytest.raises(ValueError, match="solid connectivity"):
        prepare(solid, p, 20, 20, solid_connectivity=4, backend=BE)
