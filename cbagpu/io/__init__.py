"""Reading and writing label images with their metadata.

* :mod:`cbagpu.io.formats` -- ``.tif`` (ImageJ), ``.npy`` (+ ``.npy.json``), ``.raw``
  (+ ``.json``), ``.zarr``, ``.ome.zarr``: :func:`write_image`, :func:`read_image`, the
  metadata every file carries (:func:`image_metadata`), :func:`check_writable`.
* :mod:`cbagpu.io.atomic` -- the atomic writes every output of cbagpu goes through.
* :mod:`cbagpu.io.zarr_store` -- the life cycle of a block-wise Zarr store (create, check
  the settings of an existing one, resume, finish).
* :mod:`cbagpu.io.ngff` -- ``.ome.zarr``: OME-NGFF 0.4 label images with a multiscale
  pyramid (written by :func:`write_image`, read back by :func:`read_image`).
* :mod:`cbagpu.io.zarr_array` -- Zarr arrays as cbagpu writes them (format 2, label counts).
"""

from cbagpu.io.atomic import (
    save_figure_atomic,
    save_npy_atomic,
    write_json_atomic,
    write_text_atomic,
)
from cbagpu.io.formats import (
    BIGTIFF_THRESHOLD,
    LABELS,
    SUPPORTED_SUFFIXES,
    ZARR_CHUNK,
    ZARR_FORMAT,
    check_writable,
    create_zarr_array,
    image_metadata,
    read_image,
    sidecar_path,
    write_image,
)

__all__ = [
    "BIGTIFF_THRESHOLD",
    "LABELS",
    "SUPPORTED_SUFFIXES",
    "ZARR_CHUNK",
    "ZARR_FORMAT",
    "check_writable",
    "create_zarr_array",
    "image_metadata",
    "read_image",
    "save_figure_atomic",
    "save_npy_atomic",
    "sidecar_path",
    "write_image",
    "write_json_atomic",
    "write_text_atomic",
]
