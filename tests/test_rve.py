"""``cbagpu.rve`` / ``cbagpu rve``: the spread of descriptors between sub-windows, the
integral range and the window needed (issue 18, item 2).

References: brute force per tile (voxel counts, :func:`intrinsic_volumes` and
:func:`transport` on each sub-window), the closed form of independent voxels (σ² =
p(1 − p)/n, integral range one voxel), exact synthetic power laws, and the model's closed
form σ²(V_V; W) of :func:`cbagpu.theory_covariance.volume_fraction_variance` against the
spread between the tiles of independent realizations.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cbagpu import InvalidInputError, preset, rve
from cbagpu.cli import main
from cbagpu.io import write_image
from cbagpu.measure.minkowski import (
    configuration_histogram,
    intrinsic_volumes,
    tile_configuration_histograms,
)
from cbagpu.measure.phases import phase_mask
from cbagpu.studies.rve import power_law_fit


def _strict(text: str) -> dict:
    def bad(c: str) -> None:
        raise AssertionError(f"non-strict JSON constant {c}")

    return json.loads(text, parse_constant=bad)


def _labels(shape=(24, 20, 28), seed=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=shape, p=[0.5, 0.3, 0.2])


@pytest.mark.parametrize("edge", [2, 3, 5, 8])
def test_tile_histograms_equal_one_histogram_per_tile(edge):
    m = np.random.default_rng(edge).random((17, 13, 19)) < 0.45
    h = tile_configuration_histograms(m, edge, "numpy")
    tiles = [(i, j, k) for i in range(17 // edge) for j in range(13 // edge)
             for k in range(19 // edge)]
    assert h.shape == (len(tiles), 256)
    for t, (i, j, k) in enumerate(tiles):
        sub = m[i * edge:(i + 1) * edge, j * edge:(j + 1) * edge, k * edge:(k + 1) * edge]
        np.testing.assert_array_equal(h[t], configuration_histogram(sub, "numpy"))


def test_tile_histograms_refuse_a_tile_that_does_not_fit():
    with pytest.raises(InvalidInputError, match="tile edge"):
        tile_configuration_histograms(np.zeros((4, 4, 4), bool), 5, "numpy")
    with pytest.raises(InvalidInputError, match="tile edge"):
        tile_configuration_histograms(np.zeros((4, 4, 4), bool), 1, "numpy")


def test_image_stats_equal_brute_force_per_tile():
    lab = _labels()
    s = 20.0
    res = rve(lab, s, edges=(4, 8), descriptors=("volume_fraction", "S_V", "chi_V"),
              backend="numpy")
    assert res.source == "image" and res.edges == (4, 8) and res.seed is None
    for e in (4, 8):
        tiles = [lab[i:i + e, j:j + e, k:k + e]
                 for i in range(0, 24 - e + 1, e) for j in range(0, 20 - e + 1, e)
                 for k in range(0, 28 - e + 1, e)]
        for ph in ("solid", "pore", "graphite", "cbd"):
            v = np.array([phase_mask(t, ph).mean() for t in tiles])
            st = res.stat("volume_fraction", ph, e)
            assert st.n_windows == len(tiles)
            assert st.mean == pytest.approx(v.mean(), rel=1e-12)
            assert st.sd == pytest.approx(v.std(ddof=1), rel=1e-9)
            assert st.se_mean == pytest.approx(v.std(ddof=1) / math.sqrt(len(v)), rel=1e-9)
            lo, hi = st.sd_interval
            assert lo < st.sd < hi
        for ph in ("solid", "pore", "graphite"):
            iv = [intrinsic_volumes(phase_mask(t, ph), s, "numpy") for t in tiles]
            for d, attr in (("S_V", "S_V"), ("chi_V", "chi_V")):
                v = np.array([getattr(x, attr) for x in iv])
                st = res.stat(d, ph, e)
                assert st.mean == pytest.approx(v.mean(), rel=1e-9, abs=1e-15)
                assert st.sd == pytest.approx(v.std(ddof=1), rel=1e-9, abs=1e-15)
    _strict(json.dumps(res.to_dict()))
    meta = res.to_dict()["meta"]
    assert meta["voxel_size"] == s and meta["version"] and meta["backend"] == "numpy"


def test_independent_voxels_have_an_integral_range_of_one_voxel():
    """Bernoulli(p) voxels: σ²(W) = p(1 − p)/n exactly, so α = 1 and the integral range
    is one voxel, s³. A(W) per edge is s²·|W|/(p̂(1 − p̂)) whose relative sampling sd is
    √(2/(N − 1)) for N tiles; the checks use 4 of those."""
    rng = np.random.default_rng(11)
    lab = (rng.random((96, 96, 96)) < 0.3).astype(np.uint8)  # 1 = CBD, else pore
    s = 10.0
    res = rve(lab, s, edges=(4, 8, 16), descriptors=("volume_fraction",), backend="numpy")
    for e in (4, 8, 16):
        st = res.stat("volume_fraction", "cbd", e)
        tol = 4 * math.sqrt(2 / (st.n_windows - 1))
        assert st.integral_range / s**3 == pytest.approx(1.0, abs=tol)
    fit = res.fit("volume_fraction", "cbd")
    assert abs(fit.alpha - 1.0) < 4 * fit.alpha_se
    assert fit.integral_range / s**3 == pytest.approx(1.0, abs=0.2)
    # the window for a 2 % relative error: p(1-p)/(n p^2) = 0.02^2 -> n = (1-p)/(p 0.02^2)
    n_needed = (1 - 0.3) / (0.3 * 0.02**2)
    assert fit.edge_needed_nm / s == pytest.approx(n_needed ** (1 / 3), rel=0.1)
    assert fit.extrapolated


@pytest.mark.parametrize("box", [False, True])
def test_power_law_fit_recovers_a_known_law(box):
    alpha, k = 0.7, 3.0e4
    vols = np.array([8.0, 64.0, 512.0, 4096.0]) ** 1.0 * 1e3
    n = np.array([4096, 512, 64, 8])
    t = 3.2768e7
    y = k * vols ** (-alpha)
    if box:
        y = n / (n - 1) * (y - k * t ** (-alpha) / 2)
    got = power_law_fit(vols, y, n, box_volume=[t] * 4 if box else None, realizations=2)
    assert got is not None
    assert got[0] == pytest.approx(alpha, rel=1e-6)
    assert got[2] == pytest.approx(k, rel=1e-5)
    assert power_law_fit(vols[:1], y[:1], n[:1]) is None


def test_m_factor_on_a_subset_of_sub_windows():
    from cbagpu.transport import transport

    lab = _labels((16, 16, 16), seed=5)
    lab[:, :, :] = np.where(lab == 2, 1, lab)  # two phases, both percolating
    res = rve(lab, 40.0, edges=(8,), descriptors=("M",), max_windows=3, backend="numpy")
    st = res.stat("M", "solid", 8)
    assert st.n_windows == 3
    pick = [0, 4, 7]  # 3 of 8 tiles spread evenly
    tiles = [(i, j, k) for i in (0, 8) for j in (0, 8) for k in (0, 8)]
    vals = [transport(lab[i:i + 8, j:j + 8, k:k + 8], "solid", 0, backend="numpy").M
            for i, j, k in (tiles[t] for t in pick)]
    assert st.mean == pytest.approx(np.mean(vals), rel=1e-6)


@pytest.mark.parametrize("kw, words", [
    ({"edges": (2, 8)}, "smallest"),
    ({"edges": (16,)}, "fewer than 2"),
    ({"edges": (8, 8)}, "repeat"),
    ({"descriptors": ("tau",)}, "unknown descriptor"),
    ({"descriptors": ()}, "at least one"),
    ({"rel_error": {"M": 0.1}}, "not measured"),
    ({"rel_error": {"volume_fraction": 0.0}}, "(0, 1)"),
    ({"max_windows": 1}, "max_windows"),
    ({"shape": 16}, "model"),
])
def test_bad_input_on_an_image(kw, words):
    with pytest.raises(InvalidInputError, match=None) as exc:
        rve(_labels((16, 16, 16)), 20.0, **kw)
    assert words in str(exc.value)


def test_bad_input_on_a_model_is_refused_before_generation():
    p = preset("paper")
    with pytest.raises(InvalidInputError, match="shape"):
        rve(p, 40.0)
    with pytest.raises(InvalidInputError, match="too small"):
        rve(p, 40.0, shape=16)
    with pytest.raises(InvalidInputError, match="realizations"):
        rve(p, 40.0, shape=64, realizations=0)
    with pytest.raises(ValueError):
        rve(p, -1.0, shape=64)


def test_model_result_carries_closed_form_and_metadata():
    p = preset("paper")
    calls = []
    res = rve(p, 40.0, shape=48, seed=7, realizations=2, edges=(8, 16),
              descriptors=("volume_fraction",), backend="numpy",
              progress=lambda d, t, _left: calls.append((d, t)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    d = _strict(json.dumps(res.to_dict()))
    assert d["meta"]["seeds"] == [7, 8] and d["meta"]["params"]["mu"] == p.mu
    st = res.stat("volume_fraction", "solid", 8)
    assert st.theory_sd is not None and st.theory_spread_sd < st.theory_sd
    fit = res.fit("volume_fraction", "solid")
    assert fit.theory_edge_needed_nm is not None and fit.theory_curve
    # the closed form at the edge it names gives the relative error asked for
    from cbagpu.theory import model_theory
    from cbagpu.theory_covariance import volume_fraction_variance

    e = round(fit.theory_edge_needed_nm / 40.0)
    rel = math.sqrt(volume_fraction_variance(p, 40.0, (e, e, e))) / model_theory(p, 40.0).V
    assert rel == pytest.approx(0.02, rel=0.05)
    # same seeds, same numbers
    again = rve(p, 40.0, shape=48, seed=7, realizations=2, edges=(8, 16),
                descriptors=("volume_fraction",), backend="numpy")
    assert again.to_dict()["stats"] == d["stats"]


@pytest.mark.slow
def test_volume_fraction_spread_matches_the_closed_form():
    """Per realization (64³ at 40 nm, 16 seeds), the spread s² between its tiles has
    expectation N/(N − 1)·(σ²(W) − σ²(T)) from the closed form; the mean of s² over the
    seeds must lie within 3 standard errors (their spread / √16) of it, for every edge and
    phase."""
    p = preset("paper")
    runs = [rve(p, 40.0, shape=64, seed=100 + i, edges=(8, 16, 32),
                descriptors=("volume_fraction",), backend="numpy") for i in range(16)]
    for ph in ("solid", "graphite", "cbd"):
        for e in (8, 16, 32):
            s2 = np.array([r.stat("volume_fraction", ph, e).sd ** 2 for r in runs])
            expected = runs[0].stat("volume_fraction", ph, e).theory_spread_sd ** 2
            se = s2.std(ddof=1) / math.sqrt(len(s2))
            assert abs(s2.mean() - expected) < 3 * se, (ph, e, s2.mean(), expected, se)


def test_cli_image_json_plot_and_out(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    img = write_image(tmp_path / "img.npy", _labels((32, 32, 32)), {"voxel_size": 25.0})
    out = tmp_path / "r.json"
    png = tmp_path / "r.png"
    assert main(["rve", str(img), "--edges", "4", "8", "--quiet", "--json",
                 "--out", str(out), "--plot", str(png)]) == 0
    d = _strict(capsys.readouterr().out)
    assert d["meta"]["voxel_size"] == 25.0 and d["meta"]["source"] == "image"
    assert _strict(out.read_text()) == d
    assert png.stat().st_size > 1000


def test_cli_model_prints_the_closed_form(capsys):
    assert main(["rve", "--voxel-size", "40", "--shape", "32", "--edges", "8", "16",
                 "--descriptors", "volume_fraction", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "closed-form sd" in out and "closed form:" in out and "relative error" in out


def test_a_mean_that_drifts_with_the_window_is_named():
    from cbagpu.studies.rve import RVEStat, _fit_one

    def row(e, mean, sd, n):
        return RVEStat("M", "solid", e, e * 10.0, n, mean, sd, (sd * 0.9, sd * 1.1),
                       sd / math.sqrt(n))

    drift = [row(8, 0.03, 0.05, 64), row(16, 0.04, 0.04, 64), row(32, 0.06, 0.03, 64)]
    f = _fit_one("M", "solid", drift, 10.0, 0.05, None, None, (256, 256, 256), 1)
    assert "mean changes with the window" in f.note
    steady = [row(8, 0.05, 0.05, 64), row(16, 0.05, 0.03, 64), row(32, 0.05, 0.018, 64)]
    f = _fit_one("M", "solid", steady, 10.0, 0.05, None, None, (256, 256, 256), 1)
    assert f.note is None and 0.3 < f.alpha < 0.9
