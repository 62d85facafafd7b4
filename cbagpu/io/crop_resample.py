"""Cutting a window out of a label store and down-sampling it by slice removal, chunk by
chunk on Dask (``cbagpu crop``, ``cbagpu resample``), so that a window of a realization too
large for memory can be taken to the tools that need the whole array in memory.

Both read the source (a ``.zarr`` or ``.ome.zarr`` store, or any image
:func:`cbagpu.io.read_image` reads) without loading it whole, and write:

* ``.zarr`` / ``.ome.zarr``: chunk by chunk (Dask threads; memory for a few chunks), staged
  in a temporary folder renamed into place, so the output appears complete or not at all;
  an OME-Zarr output gets its multiscale pyramid (:mod:`cbagpu.io.ngff`);
* ``.tif``, ``.npy``, ``.raw``: in memory (refused before reading when it does not fit).

The metadata is carried over (parameters, seed, version, backend) with the window's own
shape, origin and voxel size, the voxels per label of the output (checked on reading) and
``derived_from``: the list of operations (source path, crop window or factor) that led from
the generated image to this one. Resampling keeps every k-th slice
along each axis, starting with the first (``img[::k, ::k, ::k]``: the paper's slice
removal, NOTES §8): labels stay exact. The result is no window of a realization at the new
voxel size, so its ``origin`` is the source origin divided by k (rounded down) and the
exact relation is in ``derived_from``.

Needs the ``dask`` extra for stores (``pip install "cbagpu[dask]"``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cbagpu.errors import InvalidInputError
from cbagpu.io.atomic import Staging, commit_dir, json_safe
from cbagpu.io.formats import check_writable, format_of_path, write_image
from cbagpu.io.lazy import LazyImage, open_image_lazy
from cbagpu.io.ngff import build_pyramid, is_ome_zarr_path
from cbagpu.io.zarr_array import _COUNTS_ATTR, ZARR_CHUNK, create_zarr_array
from cbagpu.memory import check_fits, host_available_memory
from cbagpu.phases import LABELS
from cbagpu.validation import check_int, check_labels

__all__ = ["WrittenWindow", "crop_image", "resample_image"]

#: Attributes of the source that describe how the source itself was written: not carried
#: over to a window of it.
_DROPPED = ("generator", "chunks", "completed", "incomplete", "label_counts", "fractions",
            "shape", "created", _COUNTS_ATTR, "level")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class WrittenWindow:
    """What :func:`crop_image` or :func:`resample_image` wrote.

    Attributes
    ----------
    path : Path
        The output.
    shape : tuple of int
        Its ``(z, y, x)`` shape in voxels.
    voxel_size : float or None
        Its voxel edge in nm (None when the source had none).
    label_counts : dict
        Voxels per phase (``pore``, ``cbd``, ``graphite``) of the output.
    seconds : float
        Wall time of the call.
    metadata : dict
        The metadata written with it.
    """

    path: Path
    shape: tuple[int, int, int]
    voxel_size: float | None
    label_counts: dict[str, int]
    seconds: float
    metadata: dict[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return json_safe({"out": str(self.path), "shape": list(self.shape),
                          "voxel_size": self.voxel_size, "label_counts": self.label_counts,
                          "seconds": self.seconds, "metadata": self.metadata})


def _dask_array() -> Any:
    try:
        import dask.array as da
    except ImportError as exc:
        raise ImportError('crop and resample of a store need dask: pip install "cbagpu[dask]"'
                          ) from exc
    return da


def _three_ints(values: Any, what: str) -> tuple[int, int, int]:
    if isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        values = (values,) * 3
    try:
        vals = tuple(values)
    except TypeError:
        raise InvalidInputError(f"{what} must be one integer or three (z, y, x), got {values!r}"
                                ) from None
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise InvalidInputError(f"{what} must be one integer or three (z, y, x), got {values!r}")
    return tuple(check_int(v, what) for v in vals)  # type: ignore[return-value]


def _out_chunks(chunks: Any, shape: Sequence[int], src: LazyImage, ome: bool
                ) -> tuple[int, int, int]:
    if chunks is None:
        base = (ZARR_CHUNK,) * 3 if ome else src.chunks
    else:
        base = _three_ints(chunks, "chunks")
        if any(c < 1 for c in base):
            raise InvalidInputError(f"chunks must be positive, got {chunks!r}")
    return tuple(max(1, min(int(c), int(n))) for c, n in zip(base, shape, strict=True)
                 )  # type: ignore[return-value]


def _check_out(src: LazyImage, out: str | os.PathLike[str], overwrite: bool) -> Path:
    dst = check_writable(out, overwrite=overwrite)
    if Path(os.path.realpath(dst)) == Path(os.path.realpath(src.path)):
        raise InvalidInputError(f"the output {str(out)!r} is the input: choose another path")
    if dst.is_dir() and not overwrite:
        raise FileExistsError(f"{str(dst)!r} exists: pass overwrite=True (--overwrite) to "
                              "replace it")
    return dst


def _metadata(src: LazyImage, shape: Sequence[int], step: dict[str, Any], **changes: Any
              ) -> dict[str, Any]:
    """The source's metadata with ``changes``, and ``step`` appended to ``derived_from``
    (the chain of crops and resamplings that led from a generated image to this one)."""
    meta = {k: v for k, v in src.metadata.items() if k not in _DROPPED}
    chain = meta.get("derived_from")
    meta["derived_from"] = [*(chain if isinstance(chain, list) else []), step]
    meta.setdefault("labels", dict(LABELS))
    meta.setdefault("axes", "zyx")
    meta.update(changes)
    meta["shape"] = [int(n) for n in shape]
    meta["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    return meta


class _DaskProgress:
    """Reports finished Dask tasks as ``progress(stage, done, total)`` (about 100 times)."""

    def __init__(self, progress: Progress | None, stage: str) -> None:
        self.progress, self.stage = progress, stage

    def __enter__(self) -> _DaskProgress:
        if self.progress is None:
            return self
        from dask.callbacks import Callback

        report, stage = self.progress, self.stage

        class _Cb(Callback):  # type: ignore[misc]
            def _start_state(self, dsk: Any, state: Any) -> None:
                self.total = len(state["ready"]) + len(state["waiting"])
                self.done = 0
                self.every = max(1, self.total // 100)
                report(stage, 0, self.total)

            def _posttask(self, *args: Any) -> None:
                self.done += 1
                if self.done % self.every == 0 or self.done == self.total:
                    report(stage, self.done, self.total)

        self._cb = _Cb()
        self._cb.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self._cb.__exit__(*exc)


def _label_counts(src: LazyImage, counts: Any) -> dict[str, int]:
    """Voxels per phase from a histogram of the labels; labels above 2 refused."""
    if len(counts) > 3:
        raise InvalidInputError(f"{str(src.path)!r} holds labels above 2 (up to "
                                f"{len(counts) - 1}): labels must be 0 (pore), 1 (CBD), "
                                "2 (graphite)")
    return dict(zip(LABELS.values(), map(int, counts), strict=True))


def _write(src: LazyImage, window: Any, dst: Path, meta: dict[str, Any], chunks: Any,
           overwrite: bool, progress: Progress | None, t0: float) -> WrittenWindow:
    """Write the Dask array ``window`` (uint8 labels) to ``dst`` with ``meta``."""
    da = _dask_array()
    import dask

    shape = tuple(int(n) for n in window.shape)
    fmt = format_of_path(dst)
    if fmt != "zarr":  # an in-memory format: the window must fit
        check_fits(2 * int(np.prod(shape)), host_available_memory(),
                   f"writing the {'x'.join(map(str, shape))} window as {dst.suffix}",
                   "host")
        with _DaskProgress(progress, "reading"):
            arr = np.asarray(window.compute())
        meta["label_counts"] = _label_counts(src, np.bincount(arr.ravel(), minlength=3))
        path = write_image(dst, arr, meta, overwrite=overwrite)
        return WrittenWindow(path, shape, meta.get("voxel_size"), meta["label_counts"],  # type: ignore[arg-type]
                             time.perf_counter() - t0, meta)
    ome = is_ome_zarr_path(dst)
    out_chunks = _out_chunks(chunks, shape, src, ome)
    window = window.rechunk(out_chunks)
    with Staging() as st:
        tmp = st.directory(dst)
        target = create_zarr_array(tmp / "0" if ome else tmp, shape, out_chunks, np.uint8, {})
        stored = da.store(window, target, lock=False, compute=False)
        hist = da.bincount(window.ravel(), minlength=3)
        with _DaskProgress(progress, "writing chunks"):
            _, counts = dask.compute(stored, hist)
        label_counts = _label_counts(src, counts)
        meta["label_counts"] = label_counts
        if ome:
            meta[_COUNTS_ATTR] = label_counts
            build_pyramid(tmp, meta, name=dst.name,
                          progress=progress)
            meta.pop(_COUNTS_ATTR)
        else:
            target.attrs.put(json_safe({**meta, _COUNTS_ATTR: label_counts}))
        commit_dir(st, tmp, dst, overwrite)
    return WrittenWindow(dst, shape, meta.get("voxel_size"), label_counts,  # type: ignore[arg-type]
                         time.perf_counter() - t0, meta)


def _source(image: str | os.PathLike[str]) -> tuple[LazyImage, Any]:
    da = _dask_array()
    src = open_image_lazy(image)
    if not src.chunked:  # in memory already: check the labels before any work
        check_labels(src.array, what=f"the labels of {str(src.path)!r}")
    if np.dtype(src.array.dtype) != np.uint8:
        arr = da.from_array(src.array, chunks=src.chunks).astype(np.uint8)
    else:
        arr = da.from_array(src.array, chunks=src.chunks)
    return src, arr


def crop_image(
    image: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    origin: Sequence[int],
    shape: Sequence[int],
    chunks: int | Sequence[int] | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> WrittenWindow:
    """Write the window ``origin + [0, shape)`` of a label image (a store read chunk by
    chunk) to ``out``, with its metadata.

    Parameters
    ----------
    image : str or PathLike
        Source: ``.zarr`` / ``.ome.zarr`` store (read chunk by chunk) or another image.
    out : str or PathLike
        Output path; its suffix chooses the format (``.zarr``, ``.ome.zarr``: chunk by
        chunk; ``.tif``, ``.npy``, ``.raw``: in memory).
    origin : three ints
        First voxel ``(z, y, x)`` of the window in the source's voxels (>= 0).
    shape : int or three ints
        Edges of the window (> 0; the window must lie inside the source).
    chunks : int or three ints, optional
        Chunk edges of a Zarr output (default: the source's, clipped to ``shape``;
        128 for OME-Zarr).
    overwrite : bool
        Replace an existing ``out``.
    progress : callable, optional
        ``progress(stage, done, total)`` while writing.

    Returns
    -------
    WrittenWindow
        The window's ``origin`` metadata is the source's plus ``origin`` (the window's
        place in the unbounded realization, so ``cbagpu generate --origin`` of the same
        seed reproduces it).

    Raises
    ------
    InvalidInputError
        A window outside the source, bad chunks, an incomplete or non-label source, the
        output being the input.
    InsufficientMemoryError
        An in-memory output format for a window that does not fit.
    """
    t0 = time.perf_counter()
    src, arr = _source(image)
    o = _three_ints(origin, "origin")
    s = _three_ints(shape, "shape")
    if any(v < 0 for v in o) or any(v < 1 for v in s) or any(
            a + b > n for a, b, n in zip(o, s, src.shape, strict=True)):
        raise InvalidInputError(
            f"the window origin {list(o)} + shape {list(s)} does not lie inside "
            f"{str(image)!r} of shape {list(src.shape)}")
    dst = _check_out(src, out, overwrite)
    window = arr[o[0]:o[0] + s[0], o[1]:o[1] + s[1], o[2]:o[2] + s[2]]
    src_origin = src.metadata.get("origin")
    new_origin = ([int(a) + int(b) for a, b in zip(src_origin, o, strict=True)]
                  if isinstance(src_origin, list) and len(src_origin) == 3 else list(o))
    meta = _metadata(src, s, {"operation": "crop", "path": str(src.path),
                              "source_shape": list(src.shape), "origin": list(o),
                              "shape": list(s)}, origin=new_origin)
    return _write(src, window, dst, meta, chunks, overwrite, progress, t0)


def resample_image(
    image: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    factor: int,
    chunks: int | Sequence[int] | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> WrittenWindow:
    """Down-sample a label image by slice removal: keep every ``factor``-th slice along
    each axis (``img[::k, ::k, ::k]``, paper Section 3.3, NOTES §8), chunk by chunk.

    Parameters
    ----------
    image, out, chunks, overwrite, progress
        As for :func:`crop_image`.
    factor : int
        k >= 2; the voxel size is multiplied by k and each edge becomes ``ceil(n / k)``.

    Returns
    -------
    WrittenWindow

    Raises
    ------
    InvalidInputError
        A factor that is not an integer >= 2, or one that leaves an edge of one voxel;
        an incomplete or non-label source; the output being the input.
    """
    t0 = time.perf_counter()
    k = check_int(factor, "factor")
    if k < 2:
        raise InvalidInputError(f"factor must be an integer >= 2 (slice removal), got {factor!r}")
    src, arr = _source(image)
    shape = tuple(-(-n // k) for n in src.shape)
    if min(shape) < 2:
        raise InvalidInputError(f"factor {k} leaves {list(shape)} voxels of {str(image)!r} "
                                f"(shape {list(src.shape)}): choose a smaller factor")
    dst = _check_out(src, out, overwrite)
    window = arr[::k, ::k, ::k]
    vs = src.metadata.get("voxel_size")
    vs_new = float(vs) * k if isinstance(vs, (int, float)) else None
    src_origin = src.metadata.get("origin")
    exact = isinstance(src_origin, list) and len(src_origin) == 3
    step = {"operation": "resample", "path": str(src.path), "source_shape": list(src.shape),
            "factor": k, "source_voxel_size": vs, "source_origin": src_origin,
            "rule": "voxel j of the output is voxel k*j of the source (slice removal, "
                    "NOTES §8)"}
    meta = _metadata(src, shape, step, voxel_size=vs_new,
                     origin=[int(v) // k for v in src_origin] if exact else [0, 0, 0])
    return _write(src, window, dst, meta, chunks, overwrite, progress, t0)
