"""describe(): every descriptor of every phase in one call, the JSON layout, and the
`cbagpu describe` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.cli import main
from cbagpu.io import image_metadata, write_image
from cbagpu.measure.covariance import two_point_coverage
from cbagpu.measure.describe import describe, describe_phase
from cbagpu.measure.geodesic import geodesic_tortuosity
from cbagpu.measure.intrusion import constrictivity
from cbagpu.measure.minkowski import intrinsic_volumes
from cbagpu.measure.phases import phase_mask

KEYS = (
    "volume_fraction",
    "S_V",
    "M_V",
    "chi_V",
    "r_max",
    "r_min",
    "constrictivity",
    "geodesic_tortuosity",
)


@pytest.fixture(scope="module")
def labels():
    return generate(preset("paper"), (48, 56, 64), 40, seed=3, backend="numpy")


def test_describe_matches_the_individual_descriptors(labels):
    d = describe(labels, 40.0, axis="z", backend="numpy")
    assert list(d.phases) == ["solid", "pore", "graphite"]
    for name, p in d.phases.items():
        m = phase_mask(labels, name)
        assert p.volume_fraction == pytest.approx(m.mean(), abs=1e-12)
        iv = intrinsic_volumes(m, 40.0, backend="numpy")
        assert (p.S_V, p.M_V, p.chi_V) == (iv.S_V, iv.M_V, iv.chi_V)
        c = constrictivity(m, 40.0, axis=0, backend="numpy")
        assert (p.r_max, p.r_min) == (c.r_max, c.r_min)
        g = geodesic_tortuosity(m, 40.0, axis=0, backend="numpy")
        assert p.geodesic_tortuosity == g.tau or (
            np.isinf(g.tau) and np.isinf(p.geodesic_tortuosity)
        )
        cov = two_point_coverage(m, 40.0, backend="numpy")
        np.testing.assert_array_equal(p.covariance_value, cov.radial)
    # complementary phases share the surface density (same interface)
    assert d.phases["solid"].S_V == pytest.approx(d.phases["pore"].S_V, rel=1e-12)
    assert d.phases["solid"].volume_fraction + d.phases["pore"].volume_fraction == pytest.approx(1)


def test_describe_rejects_bad_input(labels):
    with pytest.raises(ValueError, match="phase"):
        describe(labels, 40.0, phases=("nope",))
    with pytest.raises(ValueError, match="voxel_size"):
        describe(labels, -1.0)
    with pytest.raises(ValueError, match="axis"):
        describe(labels, 40.0, axis="w")
    with pytest.raises(ValueError, match="3D"):
        describe(labels[0], 40.0)
    with pytest.raises(ValueError, match=r"found \[3\]"):
        describe(labels + 1, 40.0)
    with pytest.raises(ValueError, match="method"):
        describe(labels, 40.0, intrusion_method="fast")
    with pytest.raises(ValueError, match="method"):
        describe_phase(labels == 0, 40.0, geodesic_method="fast")


def test_describe_passes_the_methods_through(labels):
    """The explicit CPU-side alternatives give the same descriptors as the defaults."""
    small = labels[:24, :28, :32]
    a = describe(small, 40.0, phases=("pore",), backend="numpy")
    b = describe(small, 40.0, phases=("pore",), backend="numpy", intrusion_method="labels",
                 geodesic_method="rounds")
    pa, pb = a.phases["pore"], b.phases["pore"]
    np.testing.assert_array_equal(pa.intrusion_value, pb.intrusion_value)
    assert (pa.r_min, pa.r_max, pa.fraction_connected) == (pb.r_min, pb.r_max,
                                                           pb.fraction_connected)
    assert pa.geodesic_tortuosity == pytest.approx(pb.geodesic_tortuosity, rel=1e-5)


def test_cli_describe_json_and_plot(tmp_path, labels, capsys):
    img = tmp_path / "lab.tif"
    write_image(img, labels, image_metadata({}, 3, 40.0, (0, 0, 0), "numpy"))
    png = tmp_path / "fig.png"
    code = main(
        ["describe", str(img), "--json", "--plot", str(png), "--quiet", "--backend", "numpy"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and png.stat().st_size > 1000
    assert {"solid", "pore", "graphite"} <= set(out)
    for phase in ("solid", "pore", "graphite"):
        for k in KEYS:
            assert k in out[phase]
        assert len(out[phase]["cpsd"]["r"]) == len(out[phase]["cpsd"]["value"])
        assert len(out[phase]["covariance"]["h"]) == len(out[phase]["covariance"]["value"])
    assert out["meta"]["voxel_size"] == 40.0  # from the file's metadata
    ref = describe(labels, 40.0, backend="numpy").phases["pore"]
    assert out["pore"]["S_V"] == pytest.approx(ref.S_V)


def test_cli_describe_errors(tmp_path, labels, capsys):
    npy = tmp_path / "plain.npy"
    np.save(npy, labels)  # no sidecar: no voxel size
    assert main(["describe", str(npy), "--quiet"]) == 2
    assert "voxel size" in capsys.readouterr().err
    bad = labels.copy()
    bad[0, 0, 0] = 7
    write_image(tmp_path / "bad.npy", bad, image_metadata({}, 1, 40.0, (0, 0, 0), "numpy"))
    assert main(["describe", str(tmp_path / "bad.npy"), "--quiet"]) == 2
    assert "labels" in capsys.readouterr().err
    assert main(["describe", str(tmp_path / "missing.tif")]) == 2
    code = main(
        [
            "describe",
            str(npy),
            "--voxel-size",
            "40",
            "--phase",
            "pore",
            "--quiet",
            "--backend",
            "numpy",
        ]
    )
    assert code == 0 and "pore" in capsys.readouterr().out
