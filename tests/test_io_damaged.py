"""Damaged files give no wrong answer (issue 14, item 1): a reader checks that it got every
slice the file's own metadata announces and refuses otherwise, naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.cli import main
from cbagpu.errors import InvalidInputError
from cbagpu.io import image_metadata, read_image, write_image

LABELS = generate(preset("paper"), (16, 48, 40), 40, 1, backend="numpy")
META = image_metadata({}, 1, 40.0, (0, 0, 0), "numpy", shape=list(LABELS.shape))


def _cut(src, dst, fraction):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.92])  # the pixel data end at 93 %
def test_truncated_imagej_tiff_is_refused(tmp_path, fraction):
    whole = write_image(tmp_path / "t.tif", LABELS, META)
    assert read_image(whole)[0].shape == LABELS.shape  # the intact file reads
    cut = _cut(whole, tmp_path / "cut.tif", fraction)
    with pytest.raises(InvalidInputError, match=r"cut\.tif.*(damaged|truncated)"):
        read_image(cut)


def test_truncated_tiff_without_cbagpu_metadata_is_refused(tmp_path):
    """ImageJ's own 'images=' is enough: a TIFF written with plain metadata."""
    whole = write_image(tmp_path / "t.tif", LABELS, {"voxel_size": 40.0})
    with pytest.raises(InvalidInputError, match="announces 16 images"):
        read_image(_cut(whole, tmp_path / "cut.tif", 0.6))


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.5, 0.999])
def test_empty_or_truncated_npy_is_refused(tmp_path, fraction):
    whole = write_image(tmp_path / "a.npy", LABELS, META)
    cut = _cut(whole, tmp_path / "cut.npy", fraction)
    with pytest.raises(InvalidInputError, match=r"cut\.npy.*not a readable \.npy"):
        read_image(cut)


def test_npy_whose_sidecar_announces_another_shape_is_refused(tmp_path):
    path = write_image(tmp_path / "a.npy", LABELS, META)
    np.save(path, LABELS[:8])  # the data replaced, the sidecar left as it was
    with pytest.raises(InvalidInputError, match=r"announces shape \(16, 48, 40\)"):
        read_image(path)


def test_raw_shorter_than_its_sidecar_is_refused(tmp_path):
    path = write_image(tmp_path / "a.raw", LABELS, META)
    _cut(path, path, 0.5)
    with pytest.raises(InvalidInputError, match="bytes but its sidecar describes"):
        read_image(path)


@pytest.mark.parametrize("argv", [["transport", "{f}", "--axis", "y", "--quiet"],
                                  ["composition", "--wt", "am=87,graphite=5,carbon_black=4,"
                                   "binder=4", "--density", "am=4.77,graphite=2.3,"
                                   "carbon_black=1.9,binder=1.8", "--labels", "{f}"],
                                  ["describe", "{f}", "--quiet"]])
def test_cli_refuses_a_truncated_tiff_with_one_line(tmp_path, capsys, argv):
    whole = write_image(tmp_path / "t.tif", LABELS, META)
    cut = _cut(whole, tmp_path / "cut.tif", 0.5)
    code = main([a.replace("{f}", str(cut)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and "truncated" in err and err.count("\n") == 1, err


def test_strict_json_from_describe(tmp_path, capsys):
    """An empty phase gives undefined values: they are null, never bare NaN/Infinity."""
    lab = np.zeros((12, 12, 12), np.uint8)  # no solid at all
    path = write_image(tmp_path / "p.npy", lab, META | {"shape": [12, 12, 12]})
    assert main(["describe", str(path), "--json", "--quiet", "--phase", "solid"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}"))


def test_zarr_with_a_missing_chunk_is_refused(tmp_path, monkeypatch):
    """A label store records its voxels per label; a chunk lost afterwards reads as fill
    value (pore) and is caught by the count."""
    pytest.importorskip("zarr")
    from cbagpu.io import formats

    monkeypatch.setattr(formats, "ZARR_CHUNK", 8)
    store = write_image(tmp_path / "a.zarr", LABELS, META)
    data, meta = read_image(store)
    assert data.tobytes() == LABELS.tobytes() and "_cbagpu_label_counts" not in meta
    chunk = next(p for p in sorted(store.rglob("*")) if p.is_file() and p.name[0].isdigit()
                 and "0.0.0" not in p.name)
    chunk.unlink()
    with pytest.raises(InvalidInputError, match=r"a\.zarr.*damaged"):
        read_image(store)
