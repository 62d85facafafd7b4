"""Reading and writing 3D label images together with their metadata.

Label images are ``numpy.uint8`` arrays with axis order ``(z, y, x)``
(0 = pore, 1 = CBD, 2 = graphite) on a grid of cubic voxels with edge length
``voxel_size`` in nm.  Every file written here carries a JSON-serialisable metadata
dict (see :func:`image_metadata`).

Supported formats (chosen by the path suffix, case-insensitive):

``.tif`` / ``.tiff``
    ImageJ hyperstack (axes ``ZYX``) written with :mod:`tifffile`.  The voxel size is
    written as ImageJ calibration (``spacing``, ``unit`` and the X/Y resolution tags),
    so Fiji shows calibrated lengths; the full metadata dict is stored as JSON in the
    ImageJ ``Info`` property (*Image > Show Info* in Fiji).  ImageJ's display range is
    set to the label range so the labels are visible.

    Size limits: classic TIFF uses 32-bit offsets.  When the pixel data exceed
    :data:`BIGTIFF_THRESHOLD` bytes (4 GiB less 32 MiB of headroom for the header), a
    BigTIFF is written by default (``bigtiff=None``).  BigTIFF with an ImageJ
    description is non-standard ("nonconformant BigTIFF ImageJ" in tifffile's words):
    tifffile and Bio-Formats (Fiji's *Bio-Formats Importer*) read it, but ImageJ's
    built-in TIFF opener may not.  ``bigtiff=False`` instead writes ImageJ's own layout
    for stacks > 4 GB: a classic TIFF with a single IFD followed by all slices stored
    contiguously; ImageJ, Bio-Formats and tifffile read the whole stack from its
    ``images=`` description entry, generic TIFF readers (libtiff) see the first slice
    only.  Both layouts round-trip through :func:`read_image`.  Only the dtypes ImageJ
    supports (uint8, uint16, float32, ...) can be written as ``.tif``.

``.npy``
    :func:`numpy.save` data file plus a JSON sidecar ``<path>.json``
    (``real.npy`` -> ``real.npy.json``) holding the metadata dict.

``.raw``
    Headerless C-order little-endian bytes plus a JSON sidecar ``<stem>.json``
    (``real.raw`` -> ``real.json``).  The sidecar holds the layout at top level, so
    any tool can read the bytes (``shape``, ``dtype``, ``byte_order`` = ``"little"``,
    ``order`` = ``"C"``, ``axes`` = ``"zyx"``, plus ``voxel_size`` and ``units`` when
    known), and the full metadata dict under the key ``"metadata"``.

``.ome.zarr``
    OME-Zarr (OME-NGFF 0.4) label image with a multiscale pyramid, physical voxel size,
    label colours and names, and the metadata dict under the root attribute ``cbagpu``
    (:mod:`cbagpu.io.ngff`; ``pip install cbagpu[ome]``). :func:`read_image` returns the
    full-resolution level.

``.zarr``
    Zarr directory store holding one array, chunked in blocks of up to
    :data:`ZARR_CHUNK` voxels per axis, metadata in the array's ``.attrs``.  Needs the
    optional dependency (``pip install cbagpu[zarr]``); works with zarr-python 2.x and
    3.x.  The store is written in Zarr format :data:`ZARR_FORMAT` (v2), which both
    zarr-python major versions (and most other Zarr readers) can open.

Atomicity: data are always written to temporaries (hidden names starting with
``.<name>.`` and ending in ``.cbagpu-tmp``) in the destination directory and then
renamed into place, so nothing half-written ever appears under the final name (files
are fsynced before the rename; the many chunk files of a Zarr store are not).
Temporaries are removed on any error, ``KeyboardInterrupt`` included.  For the formats
with a sidecar, the sidecar is renamed into place *first* and the data file
*second*; a data file therefore never appears without its metadata.  If renaming the
data file fails, the previous sidecar (if any) is restored.  While an existing pair is
being replaced, there is a short window in which the new sidecar sits next to the old
data file.  Replacing an existing ``.zarr`` store (a directory, which cannot be renamed
over a non-empty directory) moves the old store aside, renames the new one into place
and then deletes the old one; if the second rename fails, the old store is moved back.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from cbagpu._version import __version__
from cbagpu.errors import InvalidInputError
from cbagpu.io.atomic import (
    Staging as _Staging,
)
from cbagpu.io.atomic import (
    commit_dir as _commit_dir,
)
from cbagpu.io.atomic import (
    commit_file as _commit_file,
)
from cbagpu.io.atomic import (
    commit_pair as _commit_pair,
)
from cbagpu.io.atomic import json_safe
from cbagpu.io.atomic import (
    open_synced as _open_synced,
)
from cbagpu.io.ngff import (
    is_ome_zarr,
    is_ome_zarr_path,
    ome_modules,
    read_ome_zarr,
    write_ome_zarr,
)
from cbagpu.io.zarr_array import (
    _COUNTS_ATTR,
    ZARR_CHUNK,
    ZARR_FORMAT,
    _zarr_module,
    create_zarr_array,
    label_counts,
    refuse_incomplete,
)
from cbagpu.phases import LABELS

__all__ = [
    "BIGTIFF_THRESHOLD",
    "LABELS",
    "SUPPORTED_SUFFIXES",
    "ZARR_CHUNK",
    "ZARR_FORMAT",
    "check_writable",
    "format_of_path",
    "image_metadata",
    "read_image",
    "sidecar_path",
    "write_image",
]

#: Path suffixes understood by :func:`write_image` and :func:`read_image`.
SUPPORTED_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".npy", ".raw", ".zarr", ".ome.zarr")

#: Pixel data larger than this (bytes) are written as BigTIFF by default.
BIGTIFF_THRESHOLD: int = 2**32 - 2**25

_SIDECAR_FORMATS = ("npy", "raw")
_RAW_LAYOUT_KEYS = ("shape", "dtype", "byte_order", "order", "axes")
# Lengths in nm of the units ImageJ files commonly use.
_UNIT_IN_NM = {
    "nm": 1.0,
    "nanometer": 1.0,
    "um": 1e3,
    "\u00b5m": 1e3,
    "\u03bcm": 1e3,
    "micron": 1e3,
    "microns": 1e3,
    "micrometer": 1e3,
    "mm": 1e6,
    "cm": 1e7,
    "m": 1e9,
}


# --------------------------------------------------------------------------- metadata


def image_metadata(
    params: Mapping[str, Any],
    seed: int,
    voxel_size: float,
    origin: Sequence[int],
    backend: str,
    **extra: Any,
) -> dict[str, Any]:
    """Build the standard metadata dict stored with every image.

    Args:
        params: Model parameters (must be JSON-serialisable; NumPy scalars and arrays
            are converted when written).
        seed: Random seed used to generate the image.
        voxel_size: Voxel edge length in nm (> 0).
        origin: Position ``(z, y, x)`` of voxel ``[0, 0, 0]`` in the global grid, in
            voxel units (may be negative).
        backend: Array backend that produced the image, ``"numpy"`` or ``"cupy"``.
        **extra: Further JSON-serialisable items; they are added last and may
            override the defaults ``version``, ``created``, ``labels``, ``axes`` and
            ``units``.

    Returns:
        A new dict with keys ``params``, ``seed``, ``voxel_size``, ``origin``,
        ``version``, ``backend``, ``created`` (UTC, ISO 8601), ``labels``, ``axes``
        (``"zyx"``), ``units`` (``"nm"``) and the ``extra`` items.

    Raises:
        ValueError: For a non-positive/non-finite voxel size, an origin that is not
            three integers, or an unknown backend.
    """
    vs = float(voxel_size)
    if not math.isfinite(vs) or vs <= 0:
        raise InvalidInputError(f"voxel_size must be a positive finite number, got {voxel_size!r}")
    origin_list = list(origin)
    if len(origin_list) != 3 or not all(
        isinstance(o, int | np.integer) and not isinstance(o, bool) for o in origin_list
    ):
        raise InvalidInputError(f"origin must be three integers (z, y, x), got {origin!r}")
    if backend not in ("numpy", "cupy"):
        raise InvalidInputError(f"backend must be 'numpy' or 'cupy', got {backend!r}")
    metadata: dict[str, Any] = {
        "params": dict(params),
        "seed": int(seed),
        "voxel_size": vs,
        "origin": [int(o) for o in origin_list],
        "version": __version__,
        "backend": backend,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "labels": dict(LABELS),
        "axes": "zyx",
        "units": "nm",
    }
    metadata.update(extra)
    return metadata


def _json_default(obj: Any) -> Any:
    """Convert NumPy scalars/arrays and paths for :func:`json.dumps`."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def _dumps(obj: Any, *, indent: int | None = None) -> str:
    """Serialise ``obj`` to strict 7-bit ASCII JSON (NumPy types converted; undefined and
    infinite numbers as null, :func:`cbagpu.io.atomic.json_safe`)."""
    separators = None if indent else (",", ":")
    return json.dumps(json_safe(obj), default=_json_default, indent=indent,
                      separators=separators, allow_nan=False)


def _normalise_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Return the JSON round-tripped copy of ``metadata`` (validates it up front)."""
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        return json.loads(_dumps(dict(metadata)))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata is not JSON-serialisable: {exc}") from exc


# --------------------------------------------------------------------------- paths


def format_of_path(path: Path) -> str:
    """The image format of ``path``, from its suffix.

    Parameters
    ----------
    path : Path
        An image file or store; only its suffix is looked at (nothing is read).

    Returns
    -------
    str
        ``'tif'`` (``.tif`` and ``.tiff``), ``'npy'``, ``'raw'`` or ``'zarr'`` (also for
        ``.ome.zarr``).

    Raises
    ------
    InvalidInputError
        The suffix is not one of :data:`SUPPORTED_SUFFIXES`.
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidInputError(
            f"unsupported image file suffix {path.suffix!r} for {str(path)!r}; "
            f"supported suffixes: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    return "tif" if suffix == ".tiff" else suffix[1:]


def sidecar_path(path: str | os.PathLike[str]) -> Path | None:
    """Return the JSON sidecar path belonging to ``path``, or ``None`` if it has none.

    ``x.npy`` -> ``x.npy.json``; ``x.raw`` -> ``x.json``; TIFF and Zarr have no sidecar.

    Raises:
        ValueError: If the suffix is not supported.
    """
    p = Path(path)
    fmt = format_of_path(p)
    if fmt == "npy":
        return p.with_name(p.name + ".json")
    if fmt == "raw":
        return p.with_suffix(".json")
    return None


def check_writable(path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Check that :func:`write_image` can write ``path``, without writing anything.

    Call it before an expensive computation to fail early.  Checks that the suffix is
    supported (and zarr installed for ``.zarr``), that the parent directory exists, is
    a directory and is writable, and that neither the target nor its sidecar is in the
    way (an existing directory where a file goes, or any existing target or sidecar
    when ``overwrite`` is false).

    Args:
        path: Output path.
        overwrite: Whether an existing file (store) may be replaced.

    Returns:
        The absolute output path.

    Raises:
        ValueError: Unsupported suffix.
        ImportError: ``.zarr`` requested but zarr is not installed.
        FileNotFoundError: The parent directory does not exist.
        NotADirectoryError: The parent "directory" is not a directory.
        PermissionError: The parent directory is not writable.
        FileExistsError: The target (or its sidecar) exists and ``overwrite`` is false,
            or the existing target is of the wrong kind (e.g. a file where a ``.zarr``
            directory goes).
        IsADirectoryError: A directory exists where a data file or sidecar goes.
    """
    p = Path(path).absolute()
    fmt = format_of_path(p)
    if fmt == "zarr":
        _zarr_module()
        if is_ome_zarr_path(p):
            ome_modules()
    parent = p.parent
    if not parent.exists():
        raise FileNotFoundError(
            errno.ENOENT, f"output directory does not exist: {str(parent)!r}", str(parent)
        )
    if not parent.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, f"output directory is not a directory: {str(parent)!r}", str(parent)
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(
            errno.EACCES, f"output directory is not writable: {str(parent)!r}", str(parent)
        )
    try:  # access() says yes for root even where nothing can be created (/proc, read-only)
        fd, probe = tempfile.mkstemp(prefix=".cbagpu-probe-", dir=parent)
    except OSError as exc:
        raise PermissionError(
            errno.EACCES, f"cannot create files in the output directory {str(parent)!r} "
            f"({exc.strerror or exc})", str(parent)
        ) from None
    os.close(fd)
    os.unlink(probe)
    targets = [p]
    side = sidecar_path(p)
    if side is not None:
        targets.append(side)
    for target in targets:
        if not os.path.lexists(target):
            continue
        if not overwrite:
            raise FileExistsError(
                errno.EEXIST,
                f"{str(target)!r} already exists (pass overwrite=True to replace it)",
                str(target),
            )
        is_dir = target.is_dir() and not target.is_symlink()
        if fmt == "zarr" and target == p and not is_dir:
            raise FileExistsError(
                errno.EEXIST, f"{str(target)!r} exists and is not a Zarr directory", str(target)
            )
        if (fmt != "zarr" or target != p) and is_dir:
            raise IsADirectoryError(
                errno.EISDIR, f"{str(target)!r} is a directory, not a file", str(target)
            )
    return p


# --------------------------------------------------------------------------- writers


def _to_numpy(image: Any) -> np.ndarray:
    """Return ``image`` as a C-contiguous 3D NumPy array (CuPy arrays are copied to host)."""
    if not isinstance(image, np.ndarray) and hasattr(image, "__cuda_array_interface__"):
        image = image.get()
    arr = np.ascontiguousarray(np.asarray(image))
    if arr.ndim != 3:
        raise InvalidInputError(f"image must be 3D (z, y, x), got shape {arr.shape}")
    return arr


def _display_range(metadata: Mapping[str, Any]) -> tuple[int, int] | None:
    """Return the label range from ``metadata['labels']`` for ImageJ display, if any."""
    labels = metadata.get("labels")
    if not isinstance(labels, Mapping):
        return None
    try:
        values = [int(k) for k in labels]
    except (TypeError, ValueError):
        return None
    return (min(values), max(values)) if values else None


def _write_tif(
    fh: Any, image: np.ndarray, metadata: Mapping[str, Any], info: str, bigtiff: bool | None
) -> None:
    """Write ``image`` as an ImageJ hyperstack with calibration and JSON ``Info``."""
    ij: dict[str, Any] = {"axes": "ZYX"}
    resolution = None
    voxel_size = metadata.get("voxel_size")
    if isinstance(voxel_size, int | float) and not isinstance(voxel_size, bool) and voxel_size > 0:
        s = float(voxel_size)
        ij["spacing"] = s
        ij["unit"] = str(metadata.get("units", "nm"))
        resolution = (1.0 / s, 1.0 / s)
    drange = _display_range(metadata)
    if drange is not None:
        ij["min"], ij["max"] = drange
    ij["Info"] = info
    use_bigtiff = image.nbytes > BIGTIFF_THRESHOLD if bigtiff is None else bool(bigtiff)
    with warnings.catch_warnings():
        # Expected for > 4 GB ImageJ files; see the module docstring.
        warnings.filterwarnings("ignore", message=".*nonconformant BigTIFF ImageJ")
        warnings.filterwarnings("ignore", message=".*truncating ImageJ file")
        tifffile.imwrite(
            fh,
            image,
            imagej=True,
            bigtiff=use_bigtiff,
            resolution=resolution,
            metadata=ij,
        )


def _write_raw_bytes(fh: Any, image: np.ndarray) -> None:
    """Write ``image`` as C-order little-endian bytes to the binary file ``fh``."""
    data = image.astype(image.dtype.newbyteorder("<"), copy=False)
    fh.write(memoryview(np.ascontiguousarray(data)).cast("B"))


def _write_zarr(store: Path, image: np.ndarray, metadata: dict[str, Any]) -> None:
    """Write ``image`` and ``metadata`` (array attributes) to a new Zarr store at ``store``."""
    chunks = tuple(max(1, min(ZARR_CHUNK, n)) for n in image.shape)
    counts = label_counts(image)
    if counts is not None:  # a label image: its counts let a reader detect missing chunks
        metadata = {**metadata, _COUNTS_ATTR: counts}
    arr = create_zarr_array(store, image.shape, chunks, image.dtype, metadata)
    arr[...] = image


def _raw_sidecar(image: np.ndarray, metadata: dict[str, Any]) -> dict[str, Any]:
    """Return the ``.raw`` sidecar content: layout keys at top level plus the metadata."""
    side: dict[str, Any] = {
        "shape": list(image.shape),
        "dtype": image.dtype.newbyteorder("=").name,
        "byte_order": "little",
        "order": "C",
        "axes": "zyx",
    }
    if "voxel_size" in metadata:
        side["voxel_size"] = metadata["voxel_size"]
        side["units"] = metadata.get("units", "nm")
    side["metadata"] = metadata
    return side


def write_image(
    path: str | os.PathLike[str],
    image: np.ndarray,
    metadata: Mapping[str, Any],
    *,
    overwrite: bool = True,
    bigtiff: bool | None = None,
) -> Path:
    """Atomically write a 3D image and its metadata; the format follows the suffix.

    See the module docstring for the formats, the sidecar files and the order in which
    files appear.  Nothing is written when a check fails up front; on any later error
    (``KeyboardInterrupt`` included) the temporaries are removed and an existing file at
    ``path`` is left untouched.

    Args:
        path: Output path ending in one of :data:`SUPPORTED_SUFFIXES`.
        image: 3D array, axis order ``(z, y, x)`` (a CuPy array is copied to the host).
        metadata: JSON-serialisable dict, usually from :func:`image_metadata`.  Its
            ``voxel_size`` (nm) calibrates TIFF files.
        overwrite: Replace an existing file/store (and sidecar); if false, raise
            :class:`FileExistsError` instead.
        bigtiff: TIFF only: ``None`` writes BigTIFF when the data exceed
            :data:`BIGTIFF_THRESHOLD` bytes; ``False`` keeps classic TIFF (ImageJ's
            single-IFD layout beyond 4 GB); ``True`` forces BigTIFF.

    Returns:
        The absolute path written.

    Raises:
        ValueError: Unsupported suffix or an image that is not 3D.
        TypeError: ``metadata`` is not a JSON-serialisable dict.
        ImportError: ``.zarr`` requested but zarr is not installed.
        OSError: See :func:`check_writable` (missing or unwritable directory,
            existing target with ``overwrite=False``), or an error while writing.
    """
    dst = check_writable(path, overwrite=overwrite)
    fmt = format_of_path(dst)
    arr = _to_numpy(image)
    meta = _normalise_metadata(metadata)

    with _Staging() as st:
        if fmt == "tif":
            tmp = st.file(dst)
            with _open_synced(tmp) as fh:
                _write_tif(fh, arr, meta, _dumps(meta), bigtiff)
            _commit_file(st, tmp, dst, overwrite)
        elif fmt in _SIDECAR_FORMATS:
            side_dst = sidecar_path(dst)
            assert side_dst is not None
            data_tmp = st.file(dst)
            side_tmp = st.file(side_dst)
            with _open_synced(data_tmp) as fh:
                if fmt == "npy":
                    np.save(fh, arr, allow_pickle=False)
                else:
                    _write_raw_bytes(fh, arr)
            side_content = meta if fmt == "npy" else _raw_sidecar(arr, meta)
            with _open_synced(side_tmp) as fh:
                fh.write((_dumps(side_content, indent=2) + "\n").encode("ascii"))
            _commit_pair(st, data_tmp, dst, side_tmp, side_dst, overwrite)
        else:  # zarr
            tmp = st.directory(dst)
            if is_ome_zarr_path(dst):
                write_ome_zarr(tmp, arr, meta, name=dst.name)
            else:
                _write_zarr(tmp, arr, meta)
            _commit_dir(st, tmp, dst, overwrite)
    return dst


# --------------------------------------------------------------------------- readers


def _load_json(path: Path) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _parse_info(info: Any) -> dict[str, Any] | None:
    """Return the cbagpu metadata dict stored in an ImageJ ``Info`` string, if any."""
    if not isinstance(info, str):
        return None
    try:
        parsed = json.loads(info)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _tif_fallback_metadata(tif: tifffile.TiffFile, ij: Mapping[str, Any]) -> dict[str, Any]:
    """Voxel size of a TIFF without cbagpu metadata, from ImageJ spacing or resolution."""
    unit = ij.get("unit")
    size: float | None = None
    spacing = ij.get("spacing")
    if isinstance(spacing, int | float) and spacing > 0:
        size = float(spacing)
    else:
        page = tif.pages[0]
        tag = page.tags.get("XResolution")
        res_unit = page.tags.get("ResolutionUnit")
        if tag is not None:
            num, den = tag.value
            if num > 0 and den > 0 and (num, den) != (1, 1):
                size = den / num
                if not unit and res_unit is not None:
                    # TIFF resolution unit: 2 = inch, 3 = centimetre, 1 = none.
                    factor = {2: 2.54e7, 3: 1e7}.get(int(res_unit.value))
                    if factor is None:
                        size = None
                    else:
                        size, unit = size * factor, "nm"
    if size is None:
        return {}
    if isinstance(unit, str) and unit.lower() in _UNIT_IN_NM:
        return {"voxel_size": size * _UNIT_IN_NM[unit.lower()], "units": "nm"}
    result: dict[str, Any] = {"voxel_size": size}
    if unit:
        result["units"] = str(unit)
    return result


def _read_tif(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a TIFF (ImageJ hyperstack or plain) and its metadata."""
    with warnings.catch_warnings(), _quiet_tifffile():  # damage is reported below, once
        warnings.simplefilter("ignore")
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            data = series.asarray()
            ij = tif.imagej_metadata or {}
            meta = _parse_info(ij.get("Info"))
            if meta is None:
                meta = _tif_fallback_metadata(tif, ij)
    if data.ndim == 2:  # ImageJ stores a single slice without a Z axis
        data = data[np.newaxis]
    planes = math.prod(data.shape[:-2])
    announced = ij.get("images")
    if isinstance(announced, int) and announced != planes:
        raise InvalidInputError(
            f"{str(path)!r} is damaged or truncated: its ImageJ metadata announces {announced} "
            f"images but only {planes} could be read"
        )
    _check_announced_shape(path, data, meta)
    return data, meta


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Drop tifffile's log records about damaged files while one file is read (the reader
    reports the damage itself, in one message)."""
    log = logging.getLogger("tifffile")
    drop = logging.Filter("tifffile.nothing")  # passes no record of the tifffile logger
    log.addFilter(drop)
    try:
        yield
    finally:
        log.removeFilter(drop)


def _check_announced_shape(path: Path, data: np.ndarray, meta: Mapping[str, Any]) -> None:
    """The shape recorded in the file's own metadata (cbagpu writes it) must be the shape
    that was read; otherwise the file is damaged and reading on would give wrong answers."""
    shape = meta.get("shape") if isinstance(meta, Mapping) else None
    if isinstance(shape, (list, tuple)) and all(isinstance(n, int) for n in shape) \
            and tuple(shape) != tuple(data.shape):
        raise InvalidInputError(
            f"{str(path)!r} is damaged or truncated: its metadata announces shape "
            f"{tuple(shape)} but {tuple(data.shape)} was read"
        )


def _read_raw(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a ``.raw`` file using its JSON sidecar."""
    side_path = sidecar_path(path)
    assert side_path is not None
    if not side_path.is_file():
        raise FileNotFoundError(
            errno.ENOENT,
            f"{str(path)!r} needs its sidecar {str(side_path)!r} (shape, dtype) to be read",
            str(side_path),
        )
    side = _load_json(side_path)
    try:
        shape = tuple(int(n) for n in side["shape"])
        dtype = np.dtype(side["dtype"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"invalid .raw sidecar {str(side_path)!r}: {exc}") from exc
    byte_order = side.get("byte_order", "little")
    if byte_order not in ("little", "big"):
        raise InvalidInputError(f"invalid byte_order {byte_order!r} in {str(side_path)!r}")
    order = side.get("order", "C")
    if order not in ("C", "F"):
        raise InvalidInputError(f"invalid order {order!r} in {str(side_path)!r}")
    file_dtype = dtype.newbyteorder("<" if byte_order == "little" else ">")
    expected = math.prod(shape) * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise InvalidInputError(
            f"{str(path)!r} holds {size} bytes but its sidecar describes {expected} "
            f"(shape {shape}, dtype {dtype.name})"
        )
    data = np.fromfile(path, dtype=file_dtype).reshape(shape, order=order)
    data = np.ascontiguousarray(data.astype(dtype.newbyteorder("="), copy=False))
    if "metadata" in side and isinstance(side["metadata"], dict):
        return data, side["metadata"]
    return data, {k: v for k, v in side.items() if k not in _RAW_LAYOUT_KEYS}


def _read_zarr(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read the array of a Zarr store and its attributes."""

    zarr = _zarr_module()
    arr = zarr.open_array(store=str(path), mode="r")
    attrs = json.loads(json.dumps(dict(arr.attrs)))
    refuse_incomplete(path, attrs)  # cbagpu.studies.volume.generate_zarr unfinished
    data = np.asarray(arr[...])
    # write_image's own record (not part of the metadata), or a block-wise store's counts
    stored = attrs.pop(_COUNTS_ATTR, None) or attrs.get("label_counts")
    if isinstance(stored, dict) and set(stored) == set(LABELS.values()):
        got = label_counts(data)
        if got != {k: int(v) for k, v in stored.items()}:
            raise InvalidInputError(
                f"{str(path)!r} is damaged: its voxels per label {got} differ from the "
                f"{stored} recorded when it was written (missing or damaged chunks)"
            )
    _check_announced_shape(path, data, attrs)
    return data, attrs


def read_image(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Read an image written by :func:`write_image` (or a compatible file).

    Args:
        path: File or ``.zarr`` store with one of :data:`SUPPORTED_SUFFIXES`.

    Returns:
        ``(image, metadata)``.  For a TIFF without cbagpu metadata, ``metadata`` holds
        ``voxel_size`` (converted to nm where the unit is known) and ``units`` taken
        from the ImageJ ``spacing``/``unit`` or the resolution tags, or is ``{}``.  For
        a ``.npy`` without sidecar it is ``{}``.

    Raises:
        ValueError: Unsupported suffix, an inconsistent ``.raw`` sidecar, or a ``.zarr``
            store whose block-wise generation has not finished (attribute
            ``incomplete``; see :mod:`cbagpu.studies.volume`).
        FileNotFoundError: Missing file, or missing sidecar of a ``.raw`` file.
        ImportError: ``.zarr`` requested but zarr is not installed.
    """
    p = Path(path)
    fmt = format_of_path(p)
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, f"no such image: {str(p)!r}", str(p))
    if fmt == "tif":
        return _read_tif(p)
    if fmt == "npy":
        try:
            data = np.load(p, allow_pickle=False)
        except (EOFError, ValueError) as exc:
            raise InvalidInputError(
                f"{str(p)!r} is not a readable .npy file (empty, truncated or damaged: {exc})"
            ) from None
        side = sidecar_path(p)
        assert side is not None
        meta = _load_json(side) if side.is_file() else {}
        _check_announced_shape(p, data, meta)
        return data, meta
    if fmt == "raw":
        return _read_raw(p)
    if is_ome_zarr_path(p) or is_ome_zarr(p):
        return read_ome_zarr(p)
    return _read_zarr(p)
