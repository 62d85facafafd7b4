"""Zarr arrays as cbagpu writes them: Zarr format 2 (readable by zarr-python 2.x and 3.x),
chunk edges of at most :data:`ZARR_CHUNK` voxels, and the voxels per label recorded so a
reader can tell a damaged store (:func:`label_counts`). Shared by the plain ``.zarr``
stores of :mod:`cbagpu.io.formats`, the OME-Zarr stores of :mod:`cbagpu.io.ngff` and the
block-wise stores of :mod:`cbagpu.io.zarr_store`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from cbagpu.errors import InvalidInputError
from cbagpu.phases import LABELS

__all__ = ["ZARR_CHUNK", "ZARR_FORMAT", "create_zarr_array", "label_counts",
           "refuse_incomplete"]

#: Maximum chunk edge (voxels) of ``.zarr`` stores.
ZARR_CHUNK: int = 128

#: Zarr format version of the stores written (readable by zarr-python 2.x and 3.x).
ZARR_FORMAT: int = 2

#: Attribute of a Zarr label store that holds its voxels per label (checked on reading,
#: not returned with the metadata).
_COUNTS_ATTR = "_cbagpu_label_counts"

_ZARR_HINT = "pip install cbagpu[zarr]"


def _zarr_module() -> Any:
    """Import and return :mod:`zarr`, with an installation hint if it is missing."""
    try:
        import zarr
    except ImportError as exc:
        raise ImportError(
            f"the .zarr format needs the optional dependency zarr: {_ZARR_HINT}"
        ) from exc
    return zarr


def create_zarr_array(store: str | os.PathLike[str], shape: tuple[int, ...],
                      chunks: tuple[int, ...], dtype: Any, attributes: dict[str, Any],
                      fill_value: Any = 0) -> Any:
    """Create (overwrite) an array store of the format cbagpu writes
    (:data:`ZARR_FORMAT`, readable by zarr-python 2.x and 3.x) and return it."""
    zarr = _zarr_module()
    if int(str(zarr.__version__).split(".")[0]) >= 3:
        return zarr.create_array(
            store=str(store), shape=shape, chunks=chunks, dtype=dtype, fill_value=fill_value,
            zarr_format=ZARR_FORMAT, attributes=attributes, overwrite=True,
        )
    arr = zarr.open_array(  # pragma: no cover - zarr-python 2.x
        store=str(store), mode="w", shape=shape, chunks=chunks, dtype=dtype,
        fill_value=fill_value,
    )
    arr.attrs.put(attributes)  # pragma: no cover
    return arr  # pragma: no cover


def label_counts(image: np.ndarray) -> dict[str, int] | None:
    """Voxels per phase of a uint8 label image (0 pore, 1 cbd, 2 graphite), or None for any
    other image."""
    if image.dtype != np.uint8 or image.size == 0:
        return None
    counts = np.bincount(image.reshape(-1), minlength=3)
    if len(counts) > 3:
        return None
    return {name: int(c) for name, c in zip(LABELS.values(), counts, strict=True)}


def refuse_incomplete(path: str | os.PathLike[str], attrs: dict[str, Any]) -> None:
    """Refuse a Zarr store whose block-wise generation has not finished.

    :func:`cbagpu.studies.volume.generate_zarr` flags a store ``"incomplete": true`` in its
    attributes until every chunk is written; an interrupted run leaves the flag, and the
    chunks not yet written would read as pore (label 0).  Every reader of a Zarr store
    (:func:`cbagpu.io.lazy.open_image_lazy`, :func:`cbagpu.io.read_image`,
    :func:`cbagpu.measure.chunked.describe_chunked`) calls this one check.

    Parameters
    ----------
    path : str or PathLike
        The store, named in the message.
    attrs : dict
        Its attributes (for an OME-Zarr store, cbagpu's metadata or the merged attributes).

    Raises
    ------
    InvalidInputError
        ``attrs["incomplete"]`` is ``True``.
    """
    if attrs.get("incomplete") is True:
        raise InvalidInputError(
            f"{str(path)!r} is an incomplete block-wise generation (interrupted or still "
            "running; its missing chunks would read as pore): run the same `cbagpu generate` "
            "command again to finish it")
