"""OME-Zarr (OME-NGFF 0.4) output (cbagpu.io.ngff, issue 17 item 1).

References: ome-zarr's own reader (every level's shape, scale and translation, the label
colours and names), a brute-force per-block mode for the down-sampling rule, and for
block-wise stores the pyramid of the whole image computed in memory.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

pytest.importorskip("ome_zarr")
zarr = pytest.importorskip("zarr")

from ome_zarr.io import parse_url  # noqa: E402
from ome_zarr.reader import Reader  # noqa: E402

from cbagpu import generate, preset  # noqa: E402
from cbagpu.cli import main  # noqa: E402
from cbagpu.io import (  # noqa: E402
    image_metadata,
    ngff,  # noqa: E402
    read_image,
    write_image,
)
from cbagpu.phases import PHASE_COLORS  # noqa: E402
from cbagpu.studies.volume import generate_zarr  # noqa: E402

VOXEL = 80.0  # cheap generation on the 2-core CPU (as in test_studies_volume)
PARAMS = preset("paper")


def brute_mode(a: np.ndarray) -> np.ndarray:
    """Per-block mode by loops: edge-repeated padding, ties to the larger label."""
    a = np.pad(a, [(0, n % 2) for n in a.shape], mode="edge")
    out = np.empty(tuple(n // 2 for n in a.shape), np.uint8)
    for idx in itertools.product(*(range(n) for n in out.shape)):
        block = a[tuple(slice(2 * i, 2 * i + 2) for i in idx)].ravel()
        counts = [int((block == v).sum()) for v in range(3)]
        out[idx] = max(range(3), key=lambda v: (counts[v], v))
    return out


@pytest.mark.parametrize("shape", [(6, 4, 8), (7, 5, 3), (1, 2, 9)])
def test_downsample_mode_equals_brute_force(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.choice(3, size=shape, p=[0.5, 0.3, 0.2]).astype(np.uint8)
    got = ngff.downsample_mode(a)
    assert got.shape == tuple(math.ceil(n / 2) for n in shape)
    np.testing.assert_array_equal(got, brute_mode(a))


def test_tie_goes_to_the_larger_label():
    a = np.zeros((2, 2, 2), np.uint8)
    a[0] = 1  # four pore, four CBD
    assert ngff.downsample_mode(a)[0, 0, 0] == 1


def test_pyramid_shapes(monkeypatch):
    assert ngff.pyramid_shapes((200, 64, 30)) == [(200, 64, 30), (100, 32, 15), (50, 16, 8)]
    assert ngff.pyramid_shapes((7, 7, 7), levels=3) == [(7, 7, 7), (4, 4, 4), (2, 2, 2)]
    with pytest.raises(ValueError):
        ngff.pyramid_shapes((8, 8, 8), levels=0)


def read_with_ome_zarr(path):
    nodes = list(Reader(parse_url(str(path)))())
    assert nodes, "ome-zarr's reader found no image"
    return nodes[0]


def check_levels(node, shape, voxel, origin):
    """Every level: shape (ceil halving), scale s 2^l, translation of the block centres."""
    shapes = ngff.pyramid_shapes(shape)
    assert [tuple(d.shape) for d in node.data] == shapes
    assert len(shapes) >= 3
    for lvl, transforms in enumerate(node.metadata["coordinateTransformations"]):
        kinds = {t["type"]: t for t in transforms}
        assert kinds["scale"]["scale"] == pytest.approx([voxel * 2**lvl] * 3)
        f = 2**lvl
        assert kinds["translation"]["translation"] == pytest.approx(
            [(o + (f - 1) / 2) * voxel for o in origin])
    assert [a["unit"] for a in node.metadata["axes"]] == ["nanometer"] * 3


def test_write_image_ome_zarr_read_by_ome_zarr_and_read_image(tmp_path, monkeypatch):
    monkeypatch.setattr(ngff, "MIN_LEVEL_EDGE", 6)
    rng = np.random.default_rng(3)
    a = rng.choice(3, size=(21, 14, 9), p=[0.6, 0.3, 0.1]).astype(np.uint8)
    meta = image_metadata({"mu": 0.1}, 11, 20.0, (4, -2, 0), "numpy")
    path = write_image(tmp_path / "x.ome.zarr", a, meta)
    node = read_with_ome_zarr(path)
    check_levels(node, a.shape, 20.0, (4, -2, 0))
    level = a
    for data in node.data[1:]:  # each level the mode of the previous one
        level = brute_mode(level)
        np.testing.assert_array_equal(np.asarray(data), level)
    assert node.metadata["color"][1] == pytest.approx([c / 255 for c in PHASE_COLORS[1]])
    assert node.metadata["color"][0][3] == 0  # pore transparent
    assert {k: v["name"] for k, v in node.metadata["properties"].items()} == {
        0: "pore", 1: "CBD", 2: "graphite"}
    back, m = read_image(path)
    np.testing.assert_array_equal(back, a)
    assert back.dtype == np.uint8
    for key in ("params", "seed", "voxel_size", "origin", "version", "backend"):
        assert m[key] == json.loads(json.dumps(meta[key]))


def test_foreign_ome_zarr_voxel_size_from_scale(tmp_path):
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image as ome_write

    a = np.zeros((8, 8, 8), np.uint8)
    group = zarr.open_group(str(tmp_path / "f.ome.zarr"), mode="w", zarr_format=2)
    ome_write(a, group, axes="zyx", axes_units=dict.fromkeys("zyx", "micrometer"),
              fmt=FormatV04(), scale_factors=[], scale=dict.fromkeys("zyx", 0.02))
    back, m = read_image(tmp_path / "f.ome.zarr")
    assert back.shape == (8, 8, 8)
    assert m["voxel_size"] == pytest.approx(20.0)


def test_damaged_level0_detected(tmp_path):
    a = np.ones((10, 10, 10), np.uint8)
    path = write_image(tmp_path / "d.ome.zarr", a, image_metadata({}, 0, 20.0, (0, 0, 0), "numpy"))
    zarr.open_array(str(path / "0"), mode="r+")[0, 0, 0] = 2
    with pytest.raises(ValueError, match="damaged"):
        read_image(path)


def test_generate_zarr_ome_equals_whole_window_pyramid(tmp_path, monkeypatch):
    """Block-wise OME-Zarr (odd chunks): level 0 = generate of the whole window, and every
    level = the pyramid of the whole window computed in memory."""
    monkeypatch.setattr(ngff, "MIN_LEVEL_EDGE", 5)
    shape, origin = (24, 20, 18), (3, -4, 5)
    ref = generate(PARAMS, shape, VOXEL, 5, origin=origin, backend="numpy")
    path = tmp_path / "g.ome.zarr"
    seen = []
    r = generate_zarr(PARAMS, shape, VOXEL, 5, path, chunks=(10, 20, 7), origin=origin,
                      backend="numpy", workers=1,
                      pyramid_progress=lambda *a: seen.append(a))
    assert r.tasks_total == 9 + r.field_blocks  # every chunk crosses the block border y = 0
    node = read_with_ome_zarr(path)
    check_levels(node, shape, VOXEL, origin)
    level = ref
    np.testing.assert_array_equal(np.asarray(node.data[0]), ref)
    for data in node.data[1:]:
        level = ngff.downsample_mode(level)
        np.testing.assert_array_equal(np.asarray(data), level)
    assert seen[-1] == ("pyramid level", len(node.data) - 1, len(node.data) - 1)
    back, m = read_image(path)
    np.testing.assert_array_equal(back, ref)
    assert m["seed"] == 5 and m["origin"] == list(origin) and m["backend"] == "numpy"
    assert m["generator"] == "cbagpu.studies.generate_zarr"

    # a store interrupted while its pyramid was built: unreadable, finished by a rerun
    attrs = json.loads((path / ".zattrs").read_text())
    (path / ".zattrs").write_text("{}")
    with pytest.raises(ValueError, match="unfinished"):
        read_image(path)
    r2 = generate_zarr(PARAMS, shape, VOXEL, 5, path, chunks=(10, 20, 7), origin=origin,
                       backend="numpy", workers=1)
    assert r2.tasks_computed == 0
    assert json.loads((path / ".zattrs").read_text())["multiscales"] == attrs["multiscales"]


@pytest.mark.parametrize("chunks", [None, ["--chunks", "12", "--workers", "1"]])
def test_cli_generate_ome_zarr(tmp_path, chunks, capsys):
    out = tmp_path / "c.ome.zarr"
    argv = ["generate", "--voxel-size", "80", "--shape", "70", "20", "16", "--seed", "2",
            "--backend", "numpy", "--out", str(out), "--quiet"] + (chunks or [])
    assert main(argv) == 0
    node = read_with_ome_zarr(out)
    assert [tuple(d.shape) for d in node.data] == [(70, 20, 16), (35, 10, 8)]
    back, m = read_image(out)
    assert back.shape == (70, 20, 16) and m["seed"] == 2 and m["voxel_size"] == 80.0


def test_cli_prepare_ome_zarr(tmp_path, capsys, monkeypatch):
    """``prepare --out X.ome.zarr``: the label image as OME-Zarr with its metadata."""
    monkeypatch.setattr(ngff, "MIN_LEVEL_EDGE", 12)
    solid = np.zeros((24, 48, 48), np.uint8)
    solid[4:20, 6:42, 6:42] = 255
    prob = np.full(solid.shape, 0.1, np.float32)
    prob[9:15, 10:38, 10:38] = 0.9
    write_image(tmp_path / "solid.tif", solid, {})
    write_image(tmp_path / "prob.tif", prob, {})
    out = tmp_path / "p.ome.zarr"
    assert main(["prepare", "--solid", str(tmp_path / "solid.tif"), "--graphite-prob",
                 str(tmp_path / "prob.tif"), "--voxel-size", "20", "10", "10",
                 "--min-graphite-volume", "1e6", "--closing-radius", "40", "--quiet",
                 "--out", str(out)]) == 0
    node = read_with_ome_zarr(out)
    assert [tuple(d.shape) for d in node.data] == [(24, 24, 24), (12, 12, 12)]
    scales = [t[0]["scale"] for t in node.metadata["coordinateTransformations"]]
    assert scales == [[20.0] * 3, [40.0] * 3]
    labels, meta = read_image(out)
    assert labels.shape == (24, 24, 24) and meta["prepare"]["closing_radius"] == 40.0
    assert set(np.unique(labels)) == {0, 1, 2}
