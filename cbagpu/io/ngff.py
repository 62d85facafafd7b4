"""OME-Zarr (OME-NGFF 0.4) label images with a multiscale pyramid, for viewers (napari with
napari-ome-zarr, Fiji's MoBIE / BigDataViewer, neuroglancer) that open large volumes at
interactive speed.

Layout of ``NAME.ome.zarr`` (Zarr format 2, like every store cbagpu writes)::

    .zattrs     multiscales (axes z, y, x in nanometer; one dataset per level with its
                scale and translation), image-label (colours and names of pore, CBD,
                graphite; :mod:`cbagpu.phases`) and "cbagpu": the image's metadata
                (parameters, seed, voxel size, origin, version, backend, ...)
    0/          full resolution, uint8 labels (z, y, x)
    1/, 2/ ...  each level half the previous one per axis (rounded up)

The root group is itself the label image (``multiscales`` + ``image-label``), so the
labels are stored once; ome-zarr's reader and napari open it as a labels layer.

Down-sampling rule (label preserving): the voxel of level ``l + 1`` takes the most frequent
label of its 2 x 2 x 2 block of level ``l`` (ties go to the larger label, i.e. solid before
pore and graphite before CBD, so thin solid is not erased first); blocks cut by an odd edge
are completed by repeating the edge voxel. Levels are computed chunk by chunk with Dask
(:func:`build_pyramid`), so a store of any size needs memory for a few chunks only.
Level ``l`` has voxel size ``s 2^l`` and its voxel ``j`` is centred at
``(origin + 2^l j + (2^l - 1) / 2) s`` nm: the translation written for each level.

Needs the ``ome`` extra (``pip install "cbagpu[ome]"``: ome-zarr, zarr, dask).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cbagpu.errors import InvalidInputError
from cbagpu.io.atomic import json_safe
from cbagpu.io.zarr_array import _COUNTS_ATTR, ZARR_CHUNK, create_zarr_array, label_counts
from cbagpu.phases import PHASE_COLORS, PHASE_NAMES

__all__ = [
    "METADATA_KEY",
    "MIN_LEVEL_EDGE",
    "NGFF_VERSION",
    "OME_SUFFIX",
    "build_pyramid",
    "downsample_mode",
    "is_ome_zarr",
    "is_ome_zarr_path",
    "ome_modules",
    "pyramid_shapes",
    "read_ome_zarr",
    "write_ome_zarr",
]

#: Name ending of an OME-Zarr store.
OME_SUFFIX = ".ome.zarr"
#: OME-NGFF version written (Zarr format 2; the widest support among viewers).
NGFF_VERSION = "0.4"
#: Key of the root attributes holding cbagpu's own metadata.
METADATA_KEY = "cbagpu"
#: Levels are added while the largest edge of the last one exceeds this (voxels).
MIN_LEVEL_EDGE = 64
#: Number of label values the mode counts (0 pore, 1 CBD, 2 graphite).
N_LABELS = 3

_HINT = 'pip install "cbagpu[ome]"'


def is_ome_zarr_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path``'s name ends in ``.ome.zarr`` (case-insensitive)."""
    return os.fspath(path).rstrip("/").lower().endswith(OME_SUFFIX)


def ome_modules() -> tuple[Any, Any, Any]:
    """``(ome_zarr.writer, ome_zarr.format, dask.array)``, or an :class:`ImportError`
    naming the ``ome`` extra."""
    try:
        import dask.array as da
        from ome_zarr import format as ome_format
        from ome_zarr import writer
    except ImportError as exc:
        raise ImportError(
            f"OME-Zarr output needs the ome-zarr library, which cannot be imported ({exc}): "
            f"{_HINT}"
        ) from None
    return writer, ome_format, da


# ------------------------------------------------------------------------------ pyramid
def pyramid_shapes(shape: Sequence[int], levels: int | None = None) -> list[tuple[int, ...]]:
    """Shapes of the levels: each half the previous one per axis, rounded up.

    ``levels=None``: halve while the largest edge exceeds :data:`MIN_LEVEL_EDGE`.
    """
    shapes = [tuple(int(n) for n in shape)]
    if levels is not None:
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise InvalidInputError(f"levels must be an integer >= 1, got {levels!r}")
    while (len(shapes) < levels) if levels is not None else (max(shapes[-1]) > MIN_LEVEL_EDGE):
        shapes.append(tuple(math.ceil(n / 2) for n in shapes[-1]))
    return shapes


def downsample_mode(labels: np.ndarray, n_labels: int = N_LABELS) -> np.ndarray:
    """One pyramid step: the most frequent label of every 2 x 2 x 2 block.

    Ties go to the larger label; odd edges are completed by repeating the edge voxel
    (the output has ``ceil(n / 2)`` voxels per axis).

    Parameters
    ----------
    labels : ndarray of uint8, 3-D
        Labels ``0 .. n_labels - 1``.
    n_labels : int
        Number of label values counted.
    """
    a = np.asarray(labels)
    pad = [(0, n % 2) for n in a.shape]
    if any(p for _, p in pad):
        a = np.pad(a, pad, mode="edge")
    z, y, x = (n // 2 for n in a.shape)
    views = [a[i::2, j::2, k::2] for i in (0, 1) for j in (0, 1) for k in (0, 1)]
    counts = []
    for value in range(1, n_labels):  # the 8 sub-lattices, compared one at a time
        c = np.zeros((z, y, x), dtype=np.uint8)
        for v in views:
            c += v == value
        counts.append(c)
    best = np.zeros((z, y, x), dtype=a.dtype)
    best_count = np.uint8(8) - sum(counts, np.zeros((z, y, x), np.uint8))  # label 0
    for value, count in enumerate(counts, start=1):
        take = count >= best_count  # ">=": ties go to the larger label
        best[take] = value
        best_count = np.where(take, count, best_count)
    return best


def _level_transforms(level: int, voxel_size: float, origin: Sequence[int]
                      ) -> list[dict[str, Any]]:
    f = 2**level
    return [
        {"type": "scale", "scale": [voxel_size * f] * 3},
        {"type": "translation",
         "translation": [(int(o) + (f - 1) / 2) * voxel_size for o in origin]},
    ]


def _image_name(name: str) -> str:
    return name[: -len(OME_SUFFIX)] if name.lower().endswith(OME_SUFFIX) else name


def _label_metadata() -> dict[str, Any]:
    return {
        "colors": [{"label-value": v, "rgba": list(rgba)} for v, rgba in PHASE_COLORS.items()],
        "properties": [{"label-value": v, "name": name} for v, name in PHASE_NAMES.items()],
        "version": NGFF_VERSION,
    }


def _zarr_format_2_group(root: Path, mode: str) -> Any:
    import zarr

    kw: dict[str, Any] = {"zarr_format": 2} if int(zarr.__version__.split(".")[0]) >= 3 else {}
    return zarr.open_group(str(root), mode=mode, **kw)


def build_pyramid(root: str | os.PathLike[str], metadata: Mapping[str, Any], *,
                  levels: int | None = None, name: str | None = None,
                  level0: np.ndarray | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> list[tuple[int, ...]]:
    """Down-sample the full-resolution labels at ``root/0`` level by level, chunk by chunk,
    and write the OME-NGFF metadata of ``root`` (last: a store without it is unfinished).

    Parameters
    ----------
    root : path
        Folder holding the Zarr format 2 array ``0`` (uint8 labels, z y x).
    metadata : mapping
        cbagpu's metadata of the image (:func:`cbagpu.io.image_metadata`); its
        ``voxel_size`` (nm) and ``origin`` give each level's scale and translation.
    levels : int, optional
        Number of levels, the full resolution included (default :func:`pyramid_shapes`).
    progress : callable, optional
        ``progress("pyramid level", done, total)`` after each level.
    name : str, optional
        Name of the multiscale image (default: the folder's name without ``.ome.zarr``).
    level0 : ndarray, optional
        The full-resolution labels when they are in memory already (the same as
        ``root/0``; saves reading them back).

    Returns
    -------
    list of tuple
        The shape of every level.
    """
    writer, ome_format, da = ome_modules()
    root = Path(root)
    meta = json.loads(json.dumps(json_safe(dict(metadata)), allow_nan=False))
    voxel_size = float(meta["voxel_size"])
    origin = [int(o) for o in meta.get("origin", (0, 0, 0))]
    stored = da.from_zarr(str(root / "0"))
    prev = stored if level0 is None else da.from_array(level0, chunks=stored.chunksize)
    shapes = pyramid_shapes(stored.shape, levels)
    for lvl, shape in enumerate(shapes[1:], start=1):
        out_chunks = tuple(min(ZARR_CHUNK, n) for n in shape)
        src = prev.rechunk(tuple(2 * c for c in out_chunks))
        blocks = da.map_blocks(
            downsample_mode, src, dtype=np.uint8,
            chunks=tuple(tuple(math.ceil(b / 2) for b in axis) for axis in src.chunks),
        )
        target = create_zarr_array(root / str(lvl), shape, out_chunks, np.uint8, {},
                                   fill_value=0)
        da.store(blocks, target, lock=False)  # output blocks are the target's chunks
        prev = da.from_zarr(str(root / str(lvl)))
        if progress is not None:
            progress("pyramid level", lvl, len(shapes) - 1)
    fmt = ome_format.FormatV04()
    group = _zarr_format_2_group(root, "a")
    writer.write_multiscales_metadata(
        group,
        [{"path": str(lvl), "coordinateTransformations":
          _level_transforms(lvl, voxel_size, origin)} for lvl in range(len(shapes))],
        fmt=fmt,
        axes=[{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"],
        name=_image_name(name or root.name),
    )
    writer.add_metadata(group, {"image-label": _label_metadata(), METADATA_KEY: meta},
                        fmt=fmt)
    return shapes


# ------------------------------------------------------------------------------ write / read
def write_ome_zarr(store: str | os.PathLike[str], labels: np.ndarray,
                   metadata: Mapping[str, Any], *, levels: int | None = None,
                   name: str | None = None) -> Path:
    """Write ``labels`` and the pyramid into the (new, empty) folder ``store``.

    Called by :func:`cbagpu.io.write_image` on a staged folder (which it renames into
    place), so the store appears complete or not at all.
    """
    ome_modules()
    root = Path(store)
    root.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(labels)
    if arr.ndim != 3:
        raise InvalidInputError(f"an OME-Zarr label image must be 3-D, got shape {arr.shape}")
    chunks = tuple(max(1, min(ZARR_CHUNK, n)) for n in arr.shape)
    z = create_zarr_array(root / "0", arr.shape, chunks, arr.dtype, {})
    z[...] = arr
    meta = dict(metadata)
    counts = label_counts(arr)
    if counts is not None:
        meta[_COUNTS_ATTR] = counts
    meta.setdefault("shape", list(arr.shape))
    build_pyramid(root, meta, levels=levels, name=name, level0=arr)
    return root


def _root_attrs(path: Path) -> dict[str, Any] | None:
    """Root attributes of the group at ``path`` (plain JSON), or None if it is none."""
    try:
        group = _zarr_format_2_group(path, "r")
    except Exception:  # noqa: BLE001 - anything else than a readable group
        return None
    attrs = json.loads(json.dumps(dict(group.attrs)))
    return attrs.get("ome", attrs) if isinstance(attrs.get("ome"), dict) else attrs


def is_ome_zarr(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a Zarr group with OME-NGFF ``multiscales`` metadata."""
    p = Path(path)
    if not p.is_dir() or not ((p / ".zgroup").exists() or (p / "zarr.json").exists()):
        return False
    attrs = _root_attrs(p)
    return bool(attrs and attrs.get("multiscales"))


def read_ome_zarr(path: str | os.PathLike[str], *, level: int = 0
                  ) -> tuple[np.ndarray, dict[str, Any]]:
    """The labels of one level (default the full resolution) and the image's metadata.

    The metadata is cbagpu's (``"cbagpu"`` root attribute) where present; for an OME-Zarr
    written by another tool, the voxel size (converted to nm) is taken from the level's
    scale.

    Raises
    ------
    InvalidInputError
        No OME-NGFF multiscale image (an unfinished block-wise generation among them), a
        level that does not exist, or labels that differ from the counts recorded when
        the store was written.
    """
    import zarr

    p = Path(path)
    attrs = _root_attrs(p) if p.is_dir() else None
    if not attrs or not attrs.get("multiscales"):
        level0 = p / "0"
        inner = _root_attrs(p / "0") if level0.is_dir() else None
        if inner is None and level0.is_dir():
            try:
                inner = dict(zarr.open_array(str(level0), mode="r").attrs)
            except Exception:  # noqa: BLE001
                inner = None
        if inner is not None:
            raise InvalidInputError(
                f"{str(p)!r} is an unfinished OME-Zarr store (interrupted or still being "
                "written; no multiscales metadata yet): run the same `cbagpu generate` "
                "command again to finish it"
            )
        raise InvalidInputError(f"{str(p)!r} is not an OME-Zarr image (no multiscales metadata)")
    ms = attrs["multiscales"][0]
    datasets = ms["datasets"]
    if not 0 <= level < len(datasets):
        raise InvalidInputError(f"{str(p)!r} has levels 0..{len(datasets) - 1}, not {level}")
    data = np.asarray(zarr.open_array(str(p / datasets[level]["path"]), mode="r")[...])
    meta = dict(attrs.get(METADATA_KEY) or {})
    if not meta:
        meta = _foreign_metadata(ms, level)
    stored = meta.pop(_COUNTS_ATTR, None) or meta.get("label_counts")
    if level == 0 and isinstance(stored, dict):
        got = label_counts(data)
        if got is not None and got != {k: int(v) for k, v in stored.items()}:
            raise InvalidInputError(
                f"{str(p)!r} is damaged: its voxels per label {got} differ from the "
                f"{stored} recorded when it was written (missing or damaged chunks)"
            )
    if level:
        meta = {**meta, "level": level,
                "voxel_size": float(meta.get("voxel_size", 0)) * 2**level or None}
    return data, meta


_UNIT_NM = {"nanometer": 1.0, "micrometer": 1e3, "millimeter": 1e6, "angstrom": 0.1}


def _foreign_metadata(ms: Mapping[str, Any], level: int) -> dict[str, Any]:
    """Voxel size (nm) of a level of an OME-Zarr written by another tool, where known."""
    axes = ms.get("axes") or []
    units = {a.get("unit") for a in axes if isinstance(a, dict) and a.get("type") == "space"}
    scale = None
    for t in ms["datasets"][level].get("coordinateTransformations") or []:
        if t.get("type") == "scale":
            scale = t.get("scale")
    if not scale or len(units) != 1:
        return {}
    unit = units.pop()
    space = scale[-3:]
    if unit not in _UNIT_NM or len(set(space)) != 1:
        return {}
    return {"voxel_size": float(space[0]) * _UNIT_NM[unit], "units": "nm"}
