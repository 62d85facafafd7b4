"""The life cycle of a Zarr store written block by block (``cbagpu generate --chunks``):
created atomically (a staged folder renamed into place, so a store is either absent or
complete as an empty array with its attributes), its attributes read back to check a
rerun's settings, and finished by rewriting its attributes.

What makes two runs "the same generation" is the caller's business
(:mod:`cbagpu.studies.volume`); this module only handles the store.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cbagpu.io.atomic import Staging, fsync_dir
from cbagpu.io.formats import _zarr_module, create_zarr_array

__all__ = [
    "create_label_store",
    "create_store_atomically",
    "finish_store",
    "read_store_attrs",
    "zarr_module",
]


def zarr_module() -> Any:
    """:mod:`zarr`, or an :class:`ImportError` naming the ``zarr`` extra."""
    return _zarr_module()


def create_label_store(store: str | os.PathLike[str], shape: tuple[int, ...],
                       chunks: tuple[int, ...], attrs: Mapping[str, Any]) -> None:
    """An empty uint8 label array (fill value 0, pore) with ``attrs`` at ``store``, created
    as :func:`cbagpu.io.write_image` creates its Zarr stores."""
    create_zarr_array(store, shape, chunks, np.uint8, dict(attrs), fill_value=0)


def read_store_attrs(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The attributes (plain JSON types) of the array at ``path``, or None when it is no
    readable Zarr array."""
    zarr = zarr_module()
    try:
        arr = zarr.open_array(store=str(path), mode="r")
        return json.loads(json.dumps(dict(arr.attrs)))
    except Exception:  # noqa: BLE001 - any failure means "not a store of ours"
        return None


def create_store_atomically(path: str | os.PathLike[str], attrs: Mapping[str, Any], *,
                            prepare: Callable[[Path], None] | None = None,
                            array_name: str | None = None) -> bool:
    """Create the label store ``attrs["shape"]``/``attrs["chunks"]`` at ``path`` (or at
    ``path/array_name``, e.g. level ``"0"`` of an OME-Zarr store) in a staged folder
    (``prepare(tmp_array)`` may add files to the array's folder) and rename it into place.

    Returns False, leaving ``path`` alone, when ``path`` exists (also when another process
    created it meanwhile); True when this call created it.
    """
    path = Path(path)
    if os.path.lexists(path):
        return False
    with Staging() as st:
        tmp = st.directory(path)
        array = tmp if array_name is None else tmp / array_name
        create_label_store(array, tuple(attrs["shape"]), tuple(attrs["chunks"]), attrs)
        if prepare is not None:
            prepare(array)
        try:
            os.rename(tmp, path)
        except OSError:
            if not os.path.lexists(path):
                raise
            return False  # another call created it meanwhile
        st.forget(tmp)
        fsync_dir(path.parent)
        return True


def finish_store(path: str | os.PathLike[str], update: Mapping[str, Any], *,
                 drop_attrs: Iterable[str] = (), remove: Iterable[str] = ()) -> dict[str, Any]:
    """Rewrite the store's attributes (``update`` applied, ``drop_attrs`` removed) in one
    put, then delete the folders ``remove`` inside the store; returns the attributes."""
    arr = zarr_module().open_array(store=str(path), mode="r+")
    attrs = json.loads(json.dumps(dict(arr.attrs)))
    for key in drop_attrs:
        attrs.pop(key, None)
    attrs.update(update)
    arr.attrs.put(attrs)
    for name in remove:
        shutil.rmtree(Path(path) / name, ignore_errors=True)
    return attrs
