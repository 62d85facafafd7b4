"""One window convention for every density that ``describe`` reports (issue 18, item 1)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cbagpu.measure.describe import WINDOW_CONVENTION, describe
from cbagpu.measure.minkowski import configuration_histogram, configuration_weights


def test_every_density_refers_to_the_box_of_the_voxel_centres():
    """Labels 20x22x24 at 40 nm: meta.window is the box (n-1)*s; volume_fraction is the
    voxel (lattice point) count; S_V, M_V, chi_V times the box volume are the cell totals
    computed here from the histogram (an independent sum, not through the densities)."""
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 3, (20, 22, 24)).astype(np.uint8)
    s = 40.0
    d = describe(lab, s, phases=("pore", "solid"), backend="numpy")
    js = json.loads(json.dumps(d.to_dict()))
    win = js["meta"]["window"]
    assert win["extent"] == [19 * s, 21 * s, 23 * s]
    assert win["volume"] == pytest.approx(19 * 21 * 23 * s**3) == d.window_volume
    assert win["convention"] == WINDOW_CONVENTION
    for name, mask in (("pore", lab == 0), ("solid", lab > 0)):
        p = d.phases[name]
        assert p.volume_fraction == pytest.approx(mask.mean(), abs=1e-12)
        h = configuration_histogram(mask, "numpy")
        w = configuration_weights(s, 26)
        totals = w @ h
        assert p.S_V * win["volume"] == pytest.approx(totals[1], rel=1e-12)
        assert p.M_V * win["volume"] == pytest.approx(totals[2], rel=1e-12, abs=1e-9)
        assert p.chi_V * win["volume"] == pytest.approx(totals[3], rel=1e-12, abs=1e-9)
        # the two point counts of the same box differ by less than its boundary share
        boundary = 1 - np.prod([(n - 2) / n for n in lab.shape])
        assert abs(totals[0] / win["volume"] - p.volume_fraction) < boundary


def test_connectivity_is_passed_on_and_recorded():
    rng = np.random.default_rng(1)
    lab = rng.integers(0, 3, (12, 13, 14)).astype(np.uint8)
    d6 = describe(lab, 20.0, phases=("solid",), backend="numpy", connectivity=6)
    h = configuration_histogram(lab > 0, "numpy")
    chi6 = (configuration_weights(20.0, 6) @ h)[3] / d6.window_volume
    assert d6.phases["solid"].chi_V == pytest.approx(chi6, rel=1e-12, abs=1e-18)
    assert d6.to_dict()["meta"]["connectivity"] == 6
    with pytest.raises(ValueError, match="connectivity"):
        describe(lab, 20.0, phases=("solid",), backend="numpy", connectivity=18)
