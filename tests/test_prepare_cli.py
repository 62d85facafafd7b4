"""``cbagpu prepare`` / ``cbagpu composition`` through ``cbagpu.cli.main`` (one-line error,
exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cbagpu.cli import main
from cbagpu.cli.composition import parse_mapping
from cbagpu.io import read_image, write_image

PAPER = ["--wt", "am=87,graphite=5,carbon_black=4,binder=4",
         "--density", "am=4.77,graphite=2.3,carbon_black=1.9,binder=1.8"]


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = int(exc.code)
    out, err = capsys.readouterr()
    return code, out, err


def _inputs(tmp_path):
    """A 20 x 10 x 10 nm (z, y, x) solid/probability pair: a slab with a graphite flake."""
    solid = np.zeros((24, 48, 48), np.uint8)
    solid[4:20, 6:42, 6:42] = 255
    prob = np.full(solid.shape, 0.1, np.float32)
    prob[9:15, 10:38, 10:38] = 0.9
    write_image(tmp_path / "solid.tif", solid, {})
    write_image(tmp_path / "prob.tif", prob, {})
    return solid, prob


def test_composition_json_paper_numbers(capsys):
    code, out, err = cli(["composition", *PAPER, "--porosity", "0.6686", "--json"], capsys)
    assert code == 0, err
    d = json.loads(out)
    assert abs(100 * d["graphite"] - 11.08) < 0.005
    assert abs(100 * d["carbon_black"] - 10.73) < 0.005
    assert abs(100 * d["binder"] - 11.33) < 0.005
    assert d["porosity"] == 0.6686 and "am" not in {k for k in d if isinstance(d[k], float)}


def test_composition_text_and_labels(tmp_path, capsys):
    code, out, _ = cli(["composition", *PAPER, "--porosity", "0.6686"], capsys)
    assert code == 0 and "11.08" in out and "10.73" in out and "11.33" in out
    labels = np.zeros((10, 10, 10), np.uint8)
    labels.flat[:100] = 2
    labels.flat[100:300] = 1
    write_image(tmp_path / "lab.npy", labels, {"voxel_size": 20.0})
    code, out, err = cli(["composition", *PAPER, "--labels", str(tmp_path / "lab.npy"),
                          "--json"], capsys)
    assert code == 0, err
    d = json.loads(out)
    assert d["porosity"] == pytest.approx(0.7)
    assert d["measured"] == pytest.approx({"pore": 0.7, "cbd": 0.2, "graphite": 0.1})


@pytest.mark.parametrize("argv,msg", [
    (["--porosity", "66.86"], "fraction in [0, 1)"),
    ([], "give --porosity"),
])
def test_composition_errors(argv, msg, capsys):
    code, _, err = cli(["composition", *PAPER, *argv], capsys)
    assert code == 2 and msg in err and err.count("\n") == 1


def test_parse_mapping():
    assert parse_mapping("am=87, graphite=5", "--wt") == {"am": 87.0, "graphite": 5.0}
    for bad, msg in [("am", "NAME=VALUE"), ("am=x", "not a number"), ("a=1,a=2", "twice")]:
        with pytest.raises(ValueError, match=msg):
            parse_mapping(bad, "--wt")


def test_prepare_writes_labels_with_metadata(tmp_path, capsys):
    _inputs(tmp_path)
    out_path = tmp_path / "labels.tif"
    code, out, err = cli(["prepare", "--solid", str(tmp_path / "solid.tif"),
                          "--graphite-prob", str(tmp_path / "prob.tif"),
                          "--voxel-size", "20", "10", "10", "--to-voxel-size", "20",
                          "--min-graphite-volume", "1e6", "--closing-radius", "40",
                          "--out", str(out_path), "--json"], capsys)
    assert code == 0, err
    d = json.loads(out)
    assert d["factors"] == [1, 2, 2] and d["shape"] == [24, 24, 24]
    labels, meta = read_image(out_path)
    assert labels.dtype == np.uint8 and labels.shape == (24, 24, 24)
    assert meta["voxel_size"] == 20.0
    assert meta["prepare"]["closing_radius"] == 40.0
    assert meta["prepare"]["input_voxel_size"] == [20.0, 10.0, 10.0]
    assert meta["inputs"]["graphite_prob"].endswith("prob.tif")
    # the flake: z 9..14, y, x 5..18 on the 20 nm grid, inside the solid
    expected = np.zeros((24, 24, 24), np.uint8)
    expected[4:20, 3:21, 3:21] = 1
    expected[9:15, 5:19, 5:19] = 2
    np.testing.assert_array_equal(labels, expected)
    assert d["fractions"]["graphite"] == pytest.approx((expected == 2).mean())


@pytest.mark.parametrize("change,msg", [
    ({"--voxel-size": ["20", "15", "10"]}, "along y the factor"),
    ({"--to-voxel-size": ["30"]}, "nearest target voxel size"),
    ({"--graphite-prob": "bad"}, "in [0, 1]"),
    ({"--graphite-prob": "short"}, "shape mismatch"),
    ({"--solid": "missing"}, "not found"),
    ({"--voxel-size": ["20", "10"]}, "one value or three"),
])
def test_prepare_errors(tmp_path, capsys, change, msg):
    solid, prob = _inputs(tmp_path)
    write_image(tmp_path / "bad.tif", prob * 2, {})
    write_image(tmp_path / "short.tif", prob[:, :, :-2], {})
    opts = {"--solid": str(tmp_path / "solid.tif"), "--graphite-prob": str(tmp_path / "prob.tif"),
            "--voxel-size": ["20", "10", "10"], "--out": str(tmp_path / "o.tif")}
    for k, v in change.items():
        opts[k] = v if isinstance(v, list) else str(tmp_path / f"{v}.tif")
    argv = ["prepare", "--quiet"]
    for k, v in opts.items():
        argv += [k, *v] if isinstance(v, list) else [k, v]
    code, out, err = cli(argv, capsys)
    assert code == 2 and msg in err and err.count("\n") == 1
    assert not (tmp_path / "o.tif").exists()  # nothing written


# ---- the same through main() directly
def test_main_composition_json(capsys):
    assert main(["composition", *PAPER, "--porosity", "0.6686", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert round(100 * d["graphite"], 2) == 11.08 and round(100 * d["binder"], 2) == 11.33


def test_main_prepare_error_exit_2(tmp_path, capsys):
    _inputs(tmp_path)
    code = main(["prepare", "--solid", str(tmp_path / "solid.tif"), "--graphite-prob",
                 str(tmp_path / "prob.tif"), "--voxel-size", "20", "10", "10",
                 "--to-voxel-size", "25", "--out", str(tmp_path / "o.tif")])
    err = capsys.readouterr().err
    assert code == 2 and "not an integer" in err and err.count("\n") == 1
