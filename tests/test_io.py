"""Tests of cbagpu.io: round trips, ImageJ calibration, atomic writes and error handling."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from cbagpu._version import __version__
from cbagpu.io import (
    SUPPORTED_SUFFIXES,
    check_writable,
    image_metadata,
    read_image,
    sidecar_path,
    write_image,
)
from cbagpu.io import formats as cio

FILE_SUFFIXES = [".tif", ".tiff", ".npy", ".raw"]


def _has_zarr() -> bool:
    try:
        import zarr  # noqa: F401
    except ImportError:
        return False
    return True


ALL_SUFFIXES = FILE_SUFFIXES + [
    pytest.param(".zarr", marks=pytest.mark.skipif(not _has_zarr(), reason="zarr missing"))
]


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(7)
    # Odd sizes, and an X extent of 3 that must not be mistaken for RGB samples.
    return rng.integers(0, 3, size=(5, 7, 3), dtype=np.uint8)


@pytest.fixture
def metadata() -> dict[str, Any]:
    params = {"lambda_x": 6.355e-11, "alpha": [1.5, 2.0], "nested": {"gamma": 1.971, "k": 3}}
    return image_metadata(
        params,
        seed=42,
        voxel_size=12.5,
        origin=[-3, 0, -17],
        backend="numpy",
        preset="paper",
        note="Gräfensteiner µ",
    )


def _listing(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def _expected_files(path: Path) -> set[str]:
    names = {path.name}
    side = sidecar_path(path)
    if side is not None:
        names.add(side.name)
    return names


# --------------------------------------------------------------------------- metadata


def test_image_metadata_fields(metadata: dict[str, Any]) -> None:
    assert metadata["seed"] == 42
    assert metadata["voxel_size"] == 12.5
    assert metadata["origin"] == [-3, 0, -17]
    assert metadata["version"] == __version__
    assert metadata["backend"] == "numpy"
    assert metadata["labels"] == {"0": "pore", "1": "cbd", "2": "graphite"}
    assert metadata["axes"] == "zyx"
    assert metadata["units"] == "nm"
    assert metadata["created"].endswith("+00:00")
    assert metadata["preset"] == "paper"
    json.dumps(metadata)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"voxel_size": 0.0},
        {"origin": [1, 2]},
        {"origin": [1.5, 0, 0]},
        {"backend": "torch"},
    ],
)
def test_image_metadata_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "params": {},
        "seed": 1,
        "voxel_size": 1.0,
        "origin": [0, 0, 0],
        "backend": "numpy",
    }
    args.update(kwargs)
    with pytest.raises(ValueError):
        image_metadata(**args)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
def test_round_trip(
    tmp_path: Path, image: np.ndarray, metadata: dict[str, Any], suffix: str
) -> None:
    path = tmp_path / f"real{suffix}"
    out = write_image(path, image, metadata)
    assert out == path.absolute()
    assert _listing(tmp_path) == _expected_files(path)
    data, meta = read_image(path)
    assert data.dtype == np.uint8
    assert data.shape == image.shape
    assert data.tobytes() == image.tobytes()
    assert meta == metadata
    assert meta["origin"] == [-3, 0, -17]
    assert meta["params"]["nested"] == {"gamma": 1.971, "k": 3}


@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
def test_round_trip_single_slice_and_numpy_scalars(tmp_path: Path, suffix: str) -> None:
    image = np.array([[[0, 1, 2, 1]]], dtype=np.uint8)  # shape (1, 1, 4)
    meta_in = {"voxel_size": np.float32(2.0), "seed": np.int64(5), "arr": np.arange(3)}
    path = tmp_path / f"one{suffix}"
    write_image(path, image, meta_in)
    data, meta = read_image(path)
    assert data.shape == (1, 1, 4)
    assert np.array_equal(data, image)
    assert meta == {"voxel_size": 2.0, "seed": 5, "arr": [0, 1, 2]}


def test_sidecar_names(tmp_path: Path) -> None:
    assert sidecar_path(tmp_path / "real.npy") == tmp_path / "real.npy.json"
    assert sidecar_path(tmp_path / "real.raw") == tmp_path / "real.json"
    assert sidecar_path(tmp_path / "real.tif") is None
    assert sidecar_path(tmp_path / "real.zarr") is None


def test_raw_sidecar_layout(tmp_path: Path, image: np.ndarray, metadata: dict[str, Any]) -> None:
    path = tmp_path / "real.raw"
    write_image(path, image, metadata)
    side = json.loads((tmp_path / "real.json").read_text())
    assert side["shape"] == list(image.shape)
    assert side["dtype"] == "uint8"
    assert side["byte_order"] == "little"
    assert side["order"] == "C"
    assert side["axes"] == "zyx"
    assert side["voxel_size"] == 12.5
    assert side["metadata"] == metadata
    assert path.read_bytes() == image.tobytes(order="C")


def test_raw_needs_sidecar(tmp_path: Path, image: np.ndarray) -> None:
    path = tmp_path / "real.raw"
    write_image(path, image, {})
    (tmp_path / "real.json").unlink()
    with pytest.raises(FileNotFoundError, match="sidecar"):
        read_image(path)


def test_npy_without_sidecar(tmp_path: Path, image: np.ndarray) -> None:
    path = tmp_path / "plain.npy"
    np.save(path, image)
    data, meta = read_image(path)
    assert np.array_equal(data, image)
    assert meta == {}


def test_tif_is_calibrated_imagej(
    tmp_path: Path, image: np.ndarray, metadata: dict[str, Any]
) -> None:
    path = tmp_path / "real.tif"
    write_image(path, image, metadata)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        assert not tif.is_bigtiff
        series = tif.series[0]
        assert series.axes == "ZYX"
        assert series.shape == image.shape
        ij = tif.imagej_metadata
        assert ij is not None
        assert ij["spacing"] == pytest.approx(12.5)
        assert ij["unit"] == "nm"
        assert ij["slices"] == image.shape[0]
        assert (ij["min"], ij["max"]) == (0, 2)
        assert json.loads(ij["Info"]) == metadata
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(12.5)
        num, den = tif.pages[0].tags["YResolution"].value
        assert den / num == pytest.approx(12.5)


def test_tif_force_bigtiff_round_trip(
    tmp_path: Path, image: np.ndarray, metadata: dict[str, Any]
) -> None:
    path = tmp_path / "big.tif"
    write_image(path, image, metadata, bigtiff=True)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_bigtiff and tif.is_imagej
    data, meta = read_image(path)
    assert np.array_equal(data, image)
    assert meta == metadata


def test_tif_without_cbagpu_metadata(tmp_path: Path, image: np.ndarray) -> None:
    ij_path = tmp_path / "fiji.tif"
    tifffile.imwrite(
        ij_path,
        image,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"spacing": 0.5, "unit": "um", "axes": "ZYX"},
    )
    data, meta = read_image(ij_path)
    assert np.array_equal(data, image)
    assert meta == {"voxel_size": pytest.approx(500.0), "units": "nm"}

    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, image)
    data, meta = read_image(plain)
    assert np.array_equal(data, image)
    assert meta == {}


def test_tif_default_bigtiff_threshold(
    tmp_path: Path, image: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cio, "BIGTIFF_THRESHOLD", image.nbytes - 1)
    path = tmp_path / "auto.tif"
    write_image(path, image, {"voxel_size": 1.0})
    with tifffile.TiffFile(path) as tif:
        assert tif.is_bigtiff
    assert np.array_equal(read_image(path)[0], image)


def test_zarr_chunks_and_attrs(
    tmp_path: Path, metadata: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    zarr = pytest.importorskip("zarr")
    monkeypatch.setattr(cio, "ZARR_CHUNK", 4)
    image = np.arange(6 * 5 * 9, dtype=np.uint8).reshape(6, 5, 9) % 3
    path = tmp_path / "real.zarr"
    write_image(path, image, metadata)
    arr = zarr.open_array(store=str(path), mode="r")
    assert arr.chunks == (4, 4, 4)
    attrs = dict(arr.attrs)
    counts = attrs.pop("_cbagpu_label_counts")  # voxels per label: a reader's damage check
    assert attrs == metadata
    assert list(counts.values()) == np.bincount(image.ravel(), minlength=3).tolist()
    assert np.array_equal(arr[...], image)


def test_zarr_missing_gives_install_hint(
    tmp_path: Path, image: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "zarr" or name.startswith("zarr."):
            raise ImportError("No module named 'zarr'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install cbagpu\[zarr\]"):
        write_image(tmp_path / "x.zarr", image, {})
    assert _listing(tmp_path) == set()


def test_cupy_like_input(tmp_path: Path, image: np.ndarray) -> None:
    class FakeDeviceArray:
        __cuda_array_interface__: dict[str, Any] = {}

        def get(self) -> np.ndarray:
            return image

    path = tmp_path / "dev.npy"
    write_image(path, FakeDeviceArray(), {})  # type: ignore[arg-type]
    assert np.array_equal(read_image(path)[0], image)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
def test_overwrite(
    tmp_path: Path, image: np.ndarray, metadata: dict[str, Any], suffix: str
) -> None:
    path = tmp_path / f"real{suffix}"
    write_image(path, image, metadata)
    before = _listing(tmp_path)
    with pytest.raises(FileExistsError):
        write_image(path, np.zeros_like(image), metadata, overwrite=False)
    with pytest.raises(FileExistsError):
        check_writable(path, overwrite=False)
    assert _listing(tmp_path) == before
    assert np.array_equal(read_image(path)[0], image)

    new = (image + 1) % 3
    write_image(path, new, {**metadata, "seed": 43}, overwrite=True)
    assert _listing(tmp_path) == before
    data, meta = read_image(path)
    assert np.array_equal(data, new)
    assert meta["seed"] == 43


def test_overwrite_false_refuses_existing_sidecar(tmp_path: Path, image: np.ndarray) -> None:
    (tmp_path / "real.json").write_text("{}")
    with pytest.raises(FileExistsError, match="real.json"):
        write_image(tmp_path / "real.raw", image, {}, overwrite=False)
    assert _listing(tmp_path) == {"real.json"}


def test_unknown_suffix(tmp_path: Path, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"\.tif.*\.npy.*\.raw.*\.zarr"):
        write_image(tmp_path / "real.png", image, {})
    with pytest.raises(ValueError, match="supported suffixes"):
        check_writable(tmp_path / "real")
    with pytest.raises(ValueError, match="supported suffixes"):
        read_image(tmp_path / "real.h5")
    assert _listing(tmp_path) == set()
    assert ".tif" in SUPPORTED_SUFFIXES


def test_upper_case_suffix(tmp_path: Path, image: np.ndarray) -> None:
    path = tmp_path / "REAL.TIF"
    write_image(path, image, {"a": 1})
    data, meta = read_image(path)
    assert np.array_equal(data, image)
    assert meta == {"a": 1}


def test_not_3d(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="3D"):
        write_image(tmp_path / "x.npy", np.zeros((3, 3), np.uint8), {})
    assert _listing(tmp_path) == set()


def test_metadata_not_serialisable(tmp_path: Path, image: np.ndarray) -> None:
    with pytest.raises(TypeError, match="JSON"):
        write_image(tmp_path / "x.npy", image, {"f": object()})
    assert _listing(tmp_path) == set()


@pytest.mark.parametrize("suffix", FILE_SUFFIXES)
def test_missing_directory(tmp_path: Path, image: np.ndarray, suffix: str) -> None:
    path = tmp_path / "nope" / f"real{suffix}"
    with pytest.raises(FileNotFoundError, match="nope"):
        check_writable(path)
    with pytest.raises(FileNotFoundError, match="nope"):
        write_image(path, image, {})
    assert _listing(tmp_path) == set()


def test_parent_is_a_file(tmp_path: Path, image: np.ndarray) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    path = blocker / "real.tif"
    with pytest.raises(NotADirectoryError, match="file.txt"):
        check_writable(path)
    with pytest.raises(OSError, match="file.txt"):
        write_image(path, image, {})
    assert _listing(tmp_path) == {"file.txt"}


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores directory permissions"
)
def test_unwritable_directory(tmp_path: Path, image: np.ndarray) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="locked"):
            check_writable(locked / "real.npy")
        with pytest.raises(PermissionError, match="locked"):
            write_image(locked / "real.npy", image, {})
        assert _listing(locked) == set()
    finally:
        locked.chmod(0o700)


def test_unwritable_directory_check_as_any_user(
    tmp_path: Path, image: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The up-front permission check (root bypasses chmod, so simulate os.access)."""
    monkeypatch.setattr(cio.os, "access", lambda *args, **kwargs: False)
    with pytest.raises(PermissionError, match=str(tmp_path)):
        write_image(tmp_path / "real.raw", image, {})
    assert _listing(tmp_path) == set()


def test_directory_in_the_way(tmp_path: Path, image: np.ndarray) -> None:
    (tmp_path / "real.npy").mkdir()
    with pytest.raises(IsADirectoryError):
        write_image(tmp_path / "real.npy", image, {})
    (tmp_path / "real.zarr").write_text("not a store")
    with pytest.raises(FileExistsError):
        check_writable(tmp_path / "real.zarr")


# --------------------------------------------------------------------------- atomicity


def _fail_midway(exc: BaseException):  # type: ignore[no-untyped-def]
    """Return a writer stand-in that writes some bytes, then raises ``exc``."""

    def writer(target: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(target, str | os.PathLike):
            Path(target).mkdir(exist_ok=True)
            (Path(target) / "partial").write_bytes(b"partial")
        else:
            target.write(b"partial data")
        raise exc

    return writer


def _patch_writer(monkeypatch: pytest.MonkeyPatch, suffix: str, exc: BaseException) -> None:
    if suffix in (".tif", ".tiff"):
        monkeypatch.setattr(tifffile, "imwrite", _fail_midway(exc))
    elif suffix == ".npy":
        monkeypatch.setattr(np, "save", _fail_midway(exc))
    elif suffix == ".raw":
        monkeypatch.setattr(cio, "_write_raw_bytes", _fail_midway(exc))
    else:
        monkeypatch.setattr(cio, "_write_zarr", _fail_midway(exc))


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
def test_failure_leaves_nothing_new(
    tmp_path: Path,
    image: np.ndarray,
    metadata: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
    exc: BaseException,
) -> None:
    path = tmp_path / f"real{suffix}"
    write_image(path, image, metadata)
    before = _listing(tmp_path)
    side = sidecar_path(path)
    old_side = side.read_bytes() if side is not None else None
    old_data = path.read_bytes() if path.is_file() else None

    _patch_writer(monkeypatch, suffix, exc)
    with pytest.raises(type(exc)):
        write_image(path, np.zeros_like(image), {**metadata, "seed": 0})
    with pytest.raises(type(exc)):
        write_image(tmp_path / f"fresh{suffix}", image, metadata)
    monkeypatch.undo()

    assert _listing(tmp_path) == before
    if old_data is not None:
        assert path.read_bytes() == old_data
    if side is not None:
        assert side.read_bytes() == old_side
    data, meta = read_image(path)
    assert np.array_equal(data, image)
    assert meta == metadata


@pytest.mark.parametrize("suffix", [".npy", ".raw"])
def test_failed_data_rename_restores_sidecar(
    tmp_path: Path,
    image: np.ndarray,
    metadata: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
) -> None:
    path = tmp_path / f"real{suffix}"
    write_image(path, image, metadata)
    side = sidecar_path(path)
    assert side is not None
    before = _listing(tmp_path)
    old_side, old_data = side.read_bytes(), path.read_bytes()

    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(dst).name == path.name:
            raise OSError("simulated rename failure")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="simulated"):
        write_image(path, np.zeros_like(image), {**metadata, "seed": 0})
    monkeypatch.undo()

    assert _listing(tmp_path) == before
    assert side.read_bytes() == old_side
    assert path.read_bytes() == old_data


@pytest.mark.parametrize("suffix", [".npy", ".raw"])
def test_failed_data_rename_removes_new_sidecar(
    tmp_path: Path, image: np.ndarray, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    path = tmp_path / f"real{suffix}"

    def link(src: Any, dst: Any) -> None:
        if Path(dst).name == path.name:
            raise FileExistsError(17, "simulated race", str(dst))
        os.rename(src, dst)  # stands in for the hard link (src is unlinked afterwards)
        Path(src).touch()

    monkeypatch.setattr(os, "link", link)
    with pytest.raises(FileExistsError):
        write_image(path, image, {}, overwrite=False)
    monkeypatch.undo()
    assert _listing(tmp_path) == set()


def test_zarr_replace_failure_restores_old_store(
    tmp_path: Path, image: np.ndarray, metadata: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("zarr")
    path = tmp_path / "real.zarr"
    write_image(path, image, metadata)
    real_rename = os.rename

    def rename(src: Any, dst: Any) -> None:
        if Path(dst).name == path.name and Path(src).name.startswith(".real.zarr."):
            if ".old" not in Path(src).name:
                raise OSError("simulated rename failure")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="simulated"):
        write_image(path, np.zeros_like(image), metadata)
    monkeypatch.undo()
    assert _listing(tmp_path) == {"real.zarr"}
    data, meta = read_image(path)
    assert np.array_equal(data, image)
    assert meta == metadata


def test_written_file_mode_follows_umask(tmp_path: Path, image: np.ndarray) -> None:
    old = os.umask(0o022)
    try:
        path = write_image(tmp_path / "real.tif", image, {})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
