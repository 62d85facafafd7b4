"""Label images opened without reading their voxels: the shape, chunks, dtype and metadata
of a ``.zarr`` / ``.ome.zarr`` store (and of the in-memory formats, which are read whole),
so that commands working chunk by chunk (``crop``, ``resample``) or refusing a request too
large for memory (``transport``) can decide before any voxel is loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cbagpu.errors import InvalidInputError
from cbagpu.io.formats import format_of_path, read_image
from cbagpu.io.ngff import METADATA_KEY, _root_attrs, is_ome_zarr, is_ome_zarr_path
from cbagpu.io.zarr_array import _COUNTS_ATTR, _zarr_module, refuse_incomplete

__all__ = ["LazyImage", "open_image_lazy", "refuse_incomplete"]


@dataclass(frozen=True)
class LazyImage:
    """A label image opened for reading chunk by chunk.

    Attributes
    ----------
    path : Path
        Where it lies.
    array : array-like
        A :class:`zarr.Array` for a store (sliceable without loading the rest), else the
        image in memory (a NumPy array).
    metadata : dict
        cbagpu's metadata of the image (parameters, seed, voxel size, origin, ...); ``{}``
        when there is none.
    chunked : bool
        True for a Zarr store (``array`` is read chunk by chunk).
    """

    path: Path
    array: Any
    metadata: dict[str, Any]
    chunked: bool

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(z, y, x)`` in voxels."""
        return tuple(int(n) for n in self.array.shape)  # type: ignore[return-value]

    @property
    def chunks(self) -> tuple[int, int, int]:
        """The store's chunk edges (the whole shape for an image in memory)."""
        ch = getattr(self.array, "chunks", None)
        return tuple(int(c) for c in ch) if ch else self.shape  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        """Bytes of the voxels when loaded."""
        return int(np.prod(self.shape)) * np.dtype(self.array.dtype).itemsize


def _attrs(arr: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dict(arr.attrs)))


def open_image_lazy(path: str | os.PathLike[str]) -> LazyImage:
    """Open a label image without loading a Zarr store's voxels.

    Parameters
    ----------
    path : str or PathLike
        A ``.zarr`` store (plain, or block-wise from ``cbagpu generate --chunks``), an
        ``.ome.zarr`` store (its full-resolution level), or any other image
        :func:`cbagpu.io.read_image` reads (loaded whole: those formats have no chunks).

    Returns
    -------
    LazyImage

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    InvalidInputError
        A block-wise generation that has not finished (``incomplete``), an OME-Zarr store
        without its multiscales metadata, not a 3-D image, or not an integer (label) dtype.
    """
    p = Path(path)
    fmt = format_of_path(p)
    if not p.exists():
        raise FileNotFoundError(f"no such image: {str(p)!r}")
    if fmt != "zarr":
        data, meta = read_image(p)
        lazy = LazyImage(p, data, dict(meta), chunked=False)
    else:
        zarr = _zarr_module()
        if is_ome_zarr_path(p) or is_ome_zarr(p):
            root = _root_attrs(p) or {}
            if not root.get("multiscales"):
                raise InvalidInputError(
                    f"{str(p)!r} is an unfinished OME-Zarr store (no multiscales metadata "
                    "yet: interrupted or still being written); run the same command again "
                    "to finish it")
            level0 = root["multiscales"][0]["datasets"][0]["path"]
            arr = zarr.open_array(str(p / level0), mode="r")
            meta = dict(root.get(METADATA_KEY) or {})
        else:
            try:
                arr = zarr.open_array(str(p), mode="r")
            except Exception as exc:  # noqa: BLE001 - any failure: not an array store
                raise InvalidInputError(f"{str(p)!r} is not a readable Zarr array ({exc})"
                                        ) from None
            meta = _attrs(arr)
        refuse_incomplete(p, meta)
        meta.pop(_COUNTS_ATTR, None)
        lazy = LazyImage(p, arr, meta, chunked=True)
    if len(lazy.array.shape) != 3:
        raise InvalidInputError(f"{str(p)!r} is not a 3-D image (shape {lazy.array.shape})")
    dtype = np.dtype(lazy.array.dtype)
    if dtype.kind not in "iu" or dtype.itemsize > 2:
        raise InvalidInputError(
            f"{str(p)!r} holds {dtype.name} voxels, not labels: a label image is integers "
            "0 (pore), 1 (CBD), 2 (graphite), uint8 as cbagpu writes it")
    return lazy
