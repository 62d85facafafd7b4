"""The picture of a volume (cbagpu.viz.show, ``cbagpu show``, ``generate --preview``;
issue 17 item 3): the pixels of a known image have the documented colours."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from cbagpu.cli import main  # noqa: E402
from cbagpu.io import image_metadata, write_image  # noqa: E402
from cbagpu.phases import PHASE_COLORS  # noqa: E402
from cbagpu.viz import show  # noqa: E402

WHITE = (255, 255, 255)
CBD = PHASE_COLORS[1][:3]
GRAPHITE = PHASE_COLORS[2][:3]


@pytest.fixture
def known() -> np.ndarray:
    """Two bars through z: CBD at y 10..19, x 5..14; graphite at y 10..19, x 25..34."""
    a = np.zeros((20, 30, 40), np.uint8)
    a[:, 10:20, 5:15] = 1
    a[:, 10:20, 25:35] = 2
    return a


def pixel(png: np.ndarray, box, u: float, v: float, width: int, height: int):
    """RGB (0-255) of the panel ``box`` at data voxel coordinates (u right, v up)."""
    left, top, right, bottom = box
    col = int(left + (u + 0.5) / width * (right - left))
    row = int(bottom - (v + 0.5) / height * (bottom - top))
    return tuple(int(round(c * 255)) for c in png[row, col, :3])


def test_known_image_has_the_documented_colours(tmp_path, known):
    r = show(known, tmp_path / "v.png", voxel_size=20.0)
    png = imread(r.path)
    assert png.shape[:2] == (r.size_px[1], r.size_px[0])
    xy, xz, yz = r.panels["xy"], r.panels["xz"], r.panels["yz"]
    assert pixel(png, xy, 10, 15, 40, 30) == CBD
    assert pixel(png, xy, 30, 15, 40, 30) == GRAPHITE
    assert pixel(png, xy, 20, 25, 40, 30) == WHITE  # pore: transparent on white
    assert pixel(png, xy, 10, 25, 40, 30) == WHITE
    # x-z slice at y = 15 crosses both bars at every z; y-z slice at x = 20 is all pore
    assert pixel(png, xz, 10, 12, 40, 20) == CBD
    assert pixel(png, xz, 30, 12, 40, 20) == GRAPHITE
    assert pixel(png, yz, 15, 12, 30, 20) == WHITE
    # the 3D view shows both phases (faces shaded by a factor <= 1 of the same colours)
    left, top, right, bottom = r.panels["3d"]
    view = np.round(png[top:bottom, left:right, :3] * 255).astype(int).reshape(-1, 3)
    for colour in (CBD, GRAPHITE):
        base = np.asarray(colour)
        hits = [np.abs(view - np.round(base * f)).max(axis=1) <= 2 for f in (1.0, 0.78, 0.62)]
        assert np.any(hits), f"no face of colour {colour} in the 3D view"
    assert r.fractions == pytest.approx({"pore": 10 / 12, "cbd": 1 / 12, "graphite": 1 / 12})


def test_sub_cube_is_down_sampled_to_max_edge(tmp_path):
    a = np.ones((50, 50, 50), np.uint8)
    r = show(a, tmp_path / "c.png", voxel_size=10.0, max_edge=16)
    assert r.cube_edge == (50, 50, 50) and r.cube_step == 4  # 50 -> 25 -> 13


def test_bad_input_refused(tmp_path):
    with pytest.raises(ValueError, match="labels"):
        show(np.full((4, 4, 4), 7, np.uint8), tmp_path / "x.png", voxel_size=10.0)
    with pytest.raises(ValueError, match="png"):
        show(np.zeros((4, 4, 4), np.uint8), tmp_path / "x.jpg", voxel_size=10.0)
    assert list(tmp_path.iterdir()) == []


def test_cli_show_of_an_ome_zarr(tmp_path, known, capsys):
    pytest.importorskip("ome_zarr")
    img = write_image(tmp_path / "k.ome.zarr", known,
                      image_metadata({}, 9, 20.0, (0, 0, 0), "numpy"))
    assert main(["show", str(img), "--out", str(tmp_path / "k.png"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fractions"]["cbd"] == pytest.approx(1 / 12) and out["voxel_size"] == 20.0
    assert imread(tmp_path / "k.png").shape[2] == 4


def test_generate_preview(tmp_path, capsys):
    out = tmp_path / "g.npy"
    argv = ["generate", "--voxel-size", "80", "--shape", "20", "16", "12", "--seed", "1",
            "--backend", "numpy", "--out", str(out), "--quiet", "--preview",
            str(tmp_path / "g.png")]
    assert main(argv) == 0
    assert "preview" in capsys.readouterr().out
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(argv[:-1] + [str(tmp_path / "g.jpg")]) == 2  # refused before any work


def test_generate_chunks_preview_reads_the_store_lazily(tmp_path, capsys):
    pytest.importorskip("zarr")
    argv = ["generate", "--voxel-size", "80", "--shape", "24", "20", "16", "--seed", "2",
            "--backend", "numpy", "--out", str(tmp_path / "c.zarr"), "--chunks", "12",
            "--workers", "1", "--quiet", "--json", "--preview", str(tmp_path / "c.png")]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["preview"] == str(tmp_path / "c.png")
    assert imread(tmp_path / "c.png").shape[2] == 4
