"""``cbagpu crop`` / ``cbagpu resample`` and the transport refusal (issue 16, items 2-3).

References: NumPy slicing of the same voxels (``img[o:o+s]``, ``img[::k, ::k, ::k]``) and
``generate`` of the cropped window at its own origin (window consistency); the metadata
carried over; stores written chunk by chunk equal the in-memory result for chunk edges that
do not divide the shape.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from cbagpu import generate, preset
from cbagpu.cli import main
from cbagpu.errors import InsufficientMemoryError, InvalidInputError
from cbagpu.io import create_zarr_array, image_metadata, read_image, write_image
from cbagpu.io.crop_resample import crop_image, resample_image
from cbagpu.io.lazy import open_image_lazy
from cbagpu.studies.volume import generate_zarr
from cbagpu.transport import check_transport_fits, largest_solvable_edge, transport_memory

PARAMS = preset("paper")


@pytest.fixture(scope="module")
def labels():
    rng = np.random.default_rng(3)
    return rng.integers(0, 3, (37, 41, 29), dtype=np.uint8)


@pytest.fixture(scope="module")
def store(labels, tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    meta = image_metadata(PARAMS.to_dict(), 11, 40.0, (5, -6, 7), "numpy")
    return write_image(d / "src.zarr", labels, meta)


@pytest.mark.parametrize("chunks", [None, 7, (5, 41, 3)])
def test_crop_equals_slicing_and_carries_the_metadata(store, labels, tmp_path, chunks):
    r = crop_image(store, tmp_path / "c.zarr", origin=(3, 4, 5), shape=(10, 20, 11),
                   chunks=chunks)
    got, meta = read_image(tmp_path / "c.zarr")
    want = labels[3:13, 4:24, 5:16]
    np.testing.assert_array_equal(got, want)
    assert meta["origin"] == [8, -2, 12]  # the source's origin + the crop's
    assert meta["seed"] == 11 and meta["voxel_size"] == 40.0
    assert meta["params"] == PARAMS.to_dict()
    assert meta["derived_from"][-1]["operation"] == "crop"
    counts = np.bincount(want.ravel(), minlength=3)
    assert r.label_counts == {"pore": counts[0], "cbd": counts[1], "graphite": counts[2]}
    if chunks == 7:
        assert zarr.open_array(str(tmp_path / "c.zarr"), mode="r").chunks == (7, 7, 7)


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("suffix", [".zarr", ".ome.zarr", ".npy", ".tif"])
def test_resample_is_slice_removal(store, labels, tmp_path, k, suffix):
    out = tmp_path / f"r{suffix}"
    r = resample_image(store, out, factor=k)
    got, meta = read_image(out)
    np.testing.assert_array_equal(got, labels[::k, ::k, ::k])
    assert meta["voxel_size"] == pytest.approx(40.0 * k)
    assert r.shape == labels[::k, ::k, ::k].shape
    step = meta["derived_from"][-1]
    assert step["factor"] == k and step["source_voxel_size"] == 40.0
    assert step["source_origin"] == [5, -6, 7]


def test_crop_then_resample_keeps_the_chain(store, labels, tmp_path):
    crop_image(store, tmp_path / "c.ome.zarr", origin=(1, 2, 3), shape=(30, 30, 20))
    resample_image(tmp_path / "c.ome.zarr", tmp_path / "r.zarr", factor=2)
    got, meta = read_image(tmp_path / "r.zarr")
    np.testing.assert_array_equal(got, labels[1:31, 2:32, 3:23][::2, ::2, ::2])
    assert [s["operation"] for s in meta["derived_from"]] == ["crop", "resample"]


def test_a_crop_of_a_blockwise_store_is_the_generated_window(tmp_path):
    """Window consistency end to end: crop of a block-wise store == generate at the crop's
    global origin."""
    generate_zarr(PARAMS, (40, 36, 32), 80.0, 5, tmp_path / "g.zarr", chunks=(16, 20, 12),
                  backend="numpy", workers=1)
    crop_image(tmp_path / "g.zarr", tmp_path / "c.zarr", origin=(7, 3, 10), shape=(20, 25, 9))
    got, meta = read_image(tmp_path / "c.zarr")
    want = np.asarray(generate(PARAMS, (20, 25, 9), 80.0, 5, origin=tuple(meta["origin"]),
                               backend="numpy"))
    assert meta["origin"] == [7, 3, 10]
    np.testing.assert_array_equal(got, want)


def test_bad_stores_are_refused_before_any_work(tmp_path):
    inc = tmp_path / "inc.zarr"
    create_zarr_array(inc, (8, 8, 8), (4, 4, 4), np.uint8, {"incomplete": True})
    with pytest.raises(InvalidInputError, match="incomplete"):
        crop_image(inc, tmp_path / "o.zarr", origin=(0, 0, 0), shape=4)
    flt = tmp_path / "f.zarr"
    create_zarr_array(flt, (8, 8, 8), (4, 4, 4), np.float32, {})
    with pytest.raises(InvalidInputError, match="float32 voxels, not labels"):
        resample_image(flt, tmp_path / "o.zarr", factor=2)
    with pytest.raises(InvalidInputError, match="factor"):
        resample_image(flt, tmp_path / "o.zarr", factor=2.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.zarr", "inc.zarr"]


def test_labels_above_2_in_a_store_leave_nothing_behind(tmp_path):
    bad = tmp_path / "b.zarr"
    arr = create_zarr_array(bad, (8, 8, 8), (4, 4, 4), np.uint8, {})
    arr[...] = 3
    with pytest.raises(InvalidInputError, match="labels above 2"):
        crop_image(bad, tmp_path / "o.zarr", origin=(0, 0, 0), shape=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.zarr"]


def test_cli_crop_and_resample(store, labels, tmp_path, capsys):
    assert main(["crop", str(store), "--origin", "0", "1", "2", "--shape", "9", "--out",
                 str(tmp_path / "c.zarr"), "--quiet"]) == 0
    assert "9x9x9 voxels at 40 nm" in capsys.readouterr().out
    assert main(["resample", str(tmp_path / "c.zarr"), "--factor", "2", "--out",
                 str(tmp_path / "r.npy"), "--json", "--quiet"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["shape"] == [5, 5, 5] and d["voxel_size"] == 80.0
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), labels[0:9, 1:10, 2:11][::2,
                                                                                       ::2,
                                                                                       ::2])


def test_open_image_lazy_reads_no_voxels(tmp_path, monkeypatch):
    p = tmp_path / "huge.zarr"
    create_zarr_array(p, (4096, 4096, 4096), (256, 256, 256), np.uint8, {"voxel_size": 20.0})
    lazy = open_image_lazy(p)
    assert lazy.shape == (4096,) * 3 and lazy.chunked and lazy.metadata["voxel_size"] == 20.0


def test_transport_memory_and_largest_edge():
    assert transport_memory((10, 10, 10)) == 1000 * 34
    assert transport_memory((10, 10, 10), dtype=np.float64) == 1000 * 66
    for avail in (10**6, 3 * 10**9, 141 * 10**9):
        n = largest_solvable_edge(avail)
        assert transport_memory((n,) * 3) <= avail < transport_memory((n + 1,) * 3)


def test_transport_of_a_store_too_large_is_refused_before_reading(tmp_path, capsys):
    """A 4096^3 store (no chunk written: reading it would allocate 64 GiB) is refused with
    the estimate and the largest solvable sizes, before a voxel is read."""
    p = tmp_path / "huge.zarr"
    create_zarr_array(p, (4096, 4096, 4096), (256, 256, 256), np.uint8, {"voxel_size": 20.0})
    with pytest.raises(InsufficientMemoryError, match="largest cube that fits here"):
        check_transport_fits((4096,) * 3, backend="numpy")
    assert main(["transport", str(p), "--backend", "numpy"]) == 2
    err = capsys.readouterr().err
    assert "4096x4096x4096" in err and "2.1 TiB" in err and "H200" in err
    assert err.count("\n") == 1
