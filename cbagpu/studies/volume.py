"""Block-wise generation of one large realization into a Zarr store, as resumable tasks
(issue 6, items 3 and 4; issue 16, item 4).

:func:`generate_zarr` creates a ``uint8`` Zarr array (format :data:`cbagpu.io.ZARR_FORMAT`)
chunked as asked and fills it in two phases, so that a store costs what its volume costs,
not what its chunks cost:

1. one **field task** per global field block meeting the window (the fixed block grid of
   :mod:`cbagpu.simulate.grf`, edge :attr:`FieldKernel.block`): it generates the block's
   part of the window once with :func:`cbagpu.generate` (one block FFT, its germs and
   grains), writes every chunk lying wholly inside it, and keeps the pieces of the chunks
   that cross a block border in a scratch array of its own;
2. one **chunk task** per chunk crossing a block border: it copies its pieces (one per
   block it meets) from the scratch arrays into its chunk.

Every chunk is thus written by exactly one task (no locking), and every field block is
computed once, as in the in-memory generation of the window, whatever the chunk size.
Because the engine is window consistent (a window generated alone equals the same region
of a larger window, bit for bit on one backend; :mod:`cbagpu.simulate.realization`), the
finished store equals ``generate(params, shape, voxel_size, seed, origin)`` of the whole
window, byte for byte.

Layout of ``PATH.zarr`` while a generation runs::

    .zarray, .zattrs       the array; .zattrs holds the metadata of io.write_image
                           (params, seed, voxel_size, origin, version, backend, ...) plus
                           "incomplete": true
    .cbagpu-tasks/         TaskStore: spec.json + field-<block>.json per finished field
                           task + chunk-<chunk key>.json per finished border chunk
    .cbagpu-tasks/pieces/  scratch: <block>.zarr, the border-chunk pieces of one block
    0.0.0, 0.0.1, ...      chunk files (Zarr v2 keys; never named like the hidden folder)

At the end the ``incomplete`` flag is removed from ``.zattrs`` (and ``label_counts`` and
``completed`` are added), then ``.cbagpu-tasks`` (scratch included) is deleted.
:func:`cbagpu.io.read_image` refuses a store that is still flagged incomplete (a missing
chunk would read as pore). The same call again resumes: finished tasks (in the TaskStore)
are kept and not recomputed; an interrupted field task is computed again whole.
A call with other settings (parameters, seed, voxel size, shape, origin, chunks, backend,
package version) into the same path is refused, so chunks of two generations never mix.
"""

from __future__ import annotations

import errno
import itertools
import math
import numbers
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cbagpu.backend import Backend, get_backend
from cbagpu.errors import InvalidInputError
from cbagpu.io.formats import _normalise_metadata, check_writable, image_metadata
from cbagpu.io.ngff import build_pyramid, is_ome_zarr, is_ome_zarr_path
from cbagpu.io.zarr_array import create_zarr_array
from cbagpu.io.zarr_store import (
    create_store_atomically,
    finish_store,
    read_store_attrs,
    zarr_module,
)
from cbagpu.memory import InsufficientMemoryError, format_bytes, host_available_memory
from cbagpu.params import CBAParams
from cbagpu.simulate.grf import block_range
from cbagpu.simulate.realization import (
    MemoryEstimate,
    check_voxel_model,
    estimate_memory,
    generate,
    kernel_geometry,
    validate_seed,
    validate_voxel_size,
    validate_window,
)
from cbagpu.studies.tasks import Task, TaskStore, _diff, _lookup, run_tasks, usable_cores

__all__ = [
    "GENERATOR",
    "INCOMPLETE_ATTR",
    "TASKS_DIR",
    "ZarrGeneration",
    "chunk_grid",
    "generate_zarr",
    "normalise_chunks",
]

#: Folder inside the store holding the TaskStore of a running generation (hidden: Zarr keys
#: never start with a dot, so it is never mistaken for data).
TASKS_DIR = ".cbagpu-tasks"
#: Attribute set to ``True`` while the store is being generated (removed at the end).
INCOMPLETE_ATTR = "incomplete"
#: Value of the ``generator`` attribute of stores written by :func:`generate_zarr`.
GENERATOR = "cbagpu.studies.generate_zarr"
#: Folder of the full-resolution array inside an OME-Zarr store (``PATH.ome.zarr``).
OME_LEVEL0 = "0"
#: Attributes that define a generation: a rerun must match them all to resume.
_SPEC_KEYS = ("generator", "params", "seed", "voxel_size", "origin", "shape", "chunks",
              "backend", "version")

ProgressFn = Callable[[int, int, "float | None"], None]


@dataclass(frozen=True)
class ZarrGeneration:
    """What :func:`generate_zarr` did.

    The tasks are one per field block meeting the window (``field_blocks`` of them) and
    one per chunk crossing a field-block border (:mod:`cbagpu.studies.volume`).
    ``tasks_reused`` were already finished by an earlier (interrupted) call and kept;
    ``tasks_computed`` were run by this call. ``fractions`` are the phase volume fractions
    {pore, cbd, graphite} of the whole volume (from the tasks' label counts).
    """

    path: str
    shape: tuple[int, int, int]
    chunks: tuple[int, int, int]
    origin: tuple[int, int, int]
    backend: str
    tasks_total: int
    tasks_computed: int
    tasks_reused: int
    seconds: float
    fractions: dict[str, float]
    field_blocks: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        d = asdict(self)
        for k in ("shape", "chunks", "origin"):
            d[k] = list(d[k])
        return d


# ------------------------------------------------------------------------------ chunks
def normalise_chunks(chunks: Any, shape: Sequence[int]) -> tuple[int, int, int]:
    """Chunk edge lengths (z, y, x) from an int or 3 ints, each clipped to the shape.

    Raises ValueError for anything but positive integers (bools and floats included).
    """
    if isinstance(chunks, numbers.Integral) and not isinstance(chunks, bool):
        values: Sequence[Any] = (chunks,) * 3
    elif isinstance(chunks, str | bytes):
        raise InvalidInputError(f"chunks must be a positive integer or 3 of them, got {chunks!r}")
    else:
        try:
            values = tuple(chunks)
        except TypeError:
            raise InvalidInputError(
                f"chunks must be a positive integer or 3 of them, got {chunks!r}"
            ) from None
        if len(values) != 3:
            raise InvalidInputError(f"chunks must have 1 or 3 entries (z, y, x), got {chunks!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
            raise InvalidInputError(f"chunk edges must be positive integers, got {chunks!r}")
    return tuple(min(int(v), int(n)) for v, n in zip(values, shape, strict=True))  # type: ignore[return-value]


def chunk_grid(
    shape: Sequence[int], chunks: Sequence[int]
) -> list[tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]]:
    """``(index, start, size)`` of every chunk, C order; edge chunks are cut to the shape."""
    counts = [math.ceil(n / c) for n, c in zip(shape, chunks, strict=True)]
    out = []
    for idx in np.ndindex(*counts):
        start = tuple(int(i * c) for i, c in zip(idx, chunks, strict=True))
        size = tuple(min(c, n - s) for c, n, s in zip(chunks, shape, start, strict=True))
        out.append((tuple(int(i) for i in idx), start, size))
    return out  # type: ignore[return-value]


def _chunk_key(index: Sequence[int]) -> str:
    return "chunk-" + ".".join(str(i) for i in index)


# ------------------------------------------------------------------------------ the plan
#: Folder inside TASKS_DIR holding the scratch arrays of the border-chunk pieces.
PIECES_DIR = "pieces"

Box = tuple[tuple[int, int, int], tuple[int, int, int]]  # (start, size), window voxels


@dataclass(frozen=True)
class _Plan:
    """Which task writes what: field blocks (regions of the window) and border chunks."""

    #: block index -> the block's part of the window (start, size)
    regions: dict[tuple[int, int, int], Box]
    #: block index -> the chunks lying wholly inside that block (index, start, size)
    inner: dict[tuple[int, int, int], list[tuple[tuple[int, int, int], Box]]]
    #: chunks crossing a block border: (index, (start, size), [blocks they meet])
    border: list[tuple[tuple[int, int, int], Box, list[tuple[int, int, int]]]]


def _plan(shape: Sequence[int], chunks: Sequence[int], origin: Sequence[int],
          block: int) -> _Plan:
    """Cut the window into the field blocks of the global grid (edge ``block``) and sort
    its chunks into those inside one block and those crossing a block border."""
    ranges = [block_range(o, o + n, block) for o, n in zip(origin, shape, strict=True)]
    regions: dict[tuple[int, int, int], Box] = {}
    for idx in itertools.product(*ranges):
        lo = [max(b * block, o) - o for b, o in zip(idx, origin, strict=True)]
        hi = [min((b + 1) * block, o + n) - o
              for b, o, n in zip(idx, origin, shape, strict=True)]
        regions[idx] = (tuple(lo), tuple(h - q for h, q in zip(hi, lo, strict=True)))  # type: ignore[assignment]
    inner: dict[tuple[int, int, int], list] = {idx: [] for idx in regions}
    border = []
    for index, start, size in chunk_grid(shape, chunks):
        meets = list(itertools.product(*(
            block_range(o + s, o + s + n, block)
            for o, s, n in zip(origin, start, size, strict=True))))
        if len(meets) == 1:
            inner[meets[0]].append((index, (start, size)))
        else:
            border.append((index, (start, size), meets))
    return _Plan(regions, inner, border)  # type: ignore[arg-type]


def _block_key(index: Sequence[int]) -> str:
    return "field-" + ".".join(str(i) for i in index)


def _pieces_path(array_path: Path, index: Sequence[int]) -> str:
    return str(array_path / TASKS_DIR / PIECES_DIR / (".".join(map(str, index)) + ".zarr"))


def _aligned(start: Sequence[int], chunks: Sequence[int]) -> list[int]:
    """The chunk-grid corner at or below ``start``: scratch arrays start there, so that a
    border chunk's piece is exactly one scratch chunk."""
    return [s - s % c for s, c in zip(start, chunks, strict=True)]


def _slices(start: Sequence[int], size: Sequence[int],
            minus: Sequence[int] = (0, 0, 0)) -> tuple[slice, ...]:
    return tuple(slice(s - m, s - m + n) for s, n, m in zip(start, size, minus, strict=True))


def _intersect(a: Box, b: Box) -> Box:
    lo = tuple(max(p, q) for p, q in zip(a[0], b[0], strict=True))
    hi = tuple(min(p + m, q + n) for p, m, q, n in zip(a[0], a[1], b[0], b[1], strict=True))
    return lo, tuple(h - q for h, q in zip(hi, lo, strict=True))  # type: ignore[return-value]


def _counts(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels.ravel(), minlength=3)[:3].astype(np.int64)


# ------------------------------------------------------------------------------ tasks
def _generate_field_block(
    path: str,
    params: dict[str, Any],
    voxel_size: float,
    seed: int,
    origin: list[int],
    start: list[int],
    shape: list[int],
    chunks: list[int],
    inner: list[list[list[int]]],
    pieces: list[list[list[int]]],
    scratch: str,
    backend: str,
) -> dict[str, Any]:
    """Task: generate one field block's part of the window (one block FFT) and write it.

    ``inner``: (start, size) of the chunks lying wholly inside it, written into the store;
    ``pieces``: (start, size) of the parts of border chunks inside it, written into the
    scratch array ``scratch`` (window voxels, chunk-aligned at :func:`_aligned`).
    """
    t = time.perf_counter()
    labels = generate(
        CBAParams.from_dict(params), tuple(shape), voxel_size, seed,
        origin=tuple(o + s for o, s in zip(origin, start, strict=True)), backend=backend,
    )
    arr = zarr_module().open_array(store=path, mode="r+")
    counts = np.zeros(3, np.int64)
    for c_start, c_size in inner:
        chunk = labels[_slices(c_start, c_size, start)]
        arr[_slices(c_start, c_size)] = chunk
        counts += _counts(chunk)
    if pieces:
        corner = _aligned(start, chunks)
        extent = tuple(s + n - c for s, n, c in zip(start, shape, corner, strict=True))
        tmp = create_zarr_array(scratch, extent, tuple(chunks), np.uint8, {}, fill_value=0)
        for p_start, p_size in pieces:
            tmp[_slices(p_start, p_size, corner)] = labels[_slices(p_start, p_size, start)]
    return {
        "start": list(start),
        "shape": list(shape),
        "chunks_written": len(inner),
        "label_counts": [int(c) for c in counts],
        "seconds": time.perf_counter() - t,
        "pid": os.getpid(),
    }


def _assemble_chunk(
    path: str, start: list[int], shape: list[int], chunks: list[int],
    pieces: list[list[Any]],
) -> dict[str, Any]:
    """Task: copy a border chunk's pieces ``[scratch, block start, piece start, piece
    size]`` from the scratch arrays of the field blocks it meets into its chunk."""
    t = time.perf_counter()
    zarr = zarr_module()
    out = np.zeros(tuple(shape), np.uint8)
    for scratch, b_start, p_start, p_size in pieces:
        tmp = zarr.open_array(store=scratch, mode="r")
        out[_slices(p_start, p_size, start)] = tmp[
            _slices(p_start, p_size, _aligned(b_start, chunks))]
    zarr.open_array(store=path, mode="r+")[_slices(start, shape)] = out
    return {
        "start": list(start),
        "shape": list(shape),
        "label_counts": [int(c) for c in _counts(out)],
        "seconds": time.perf_counter() - t,
        "pid": os.getpid(),
    }


def _probe_worker(backend: str) -> dict[str, Any]:
    """Task: the backend ``backend`` resolves to on a worker, and that worker's memory."""
    out: dict[str, Any] = {"host": host_available_memory(), "memory_limit": None, "threads": 1}
    try:
        from distributed import get_worker

        w = get_worker()
        out["memory_limit"] = w.memory_manager.memory_limit or None
        out["threads"] = int(w.state.nthreads)
    except (ImportError, ValueError, AttributeError):
        pass
    try:
        be = get_backend(backend)
        out["backend"] = be.name
        out["device"] = None if be.on_host else be.available_memory()
    except Exception as exc:  # noqa: BLE001 - reported to the caller as a clear error
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


# ------------------------------------------------------------------------------ memory
def _check_chunk_fits(
    est: MemoryEstimate, host_per_worker: float, device_per_worker: float | None, what: str,
    advice: str,
) -> None:
    if est.host > host_per_worker:
        raise InsufficientMemoryError(
            f"{what} needs about {format_bytes(est.host)} of host memory per worker but only "
            f"{format_bytes(host_per_worker)} is available to each; {advice}"
        )
    if device_per_worker is not None and est.device > device_per_worker:
        raise InsufficientMemoryError(
            f"{what} needs about {format_bytes(est.device)} of GPU memory per worker but only "
            f"{format_bytes(device_per_worker)} is available to each; {advice}"
        )


def _dask_cuda_available() -> bool:
    try:
        import dask_cuda  # noqa: F401
    except ImportError:
        return False
    return True


def _plan_local(
    backend: str | Backend, workers: int | None, n_tasks: int, est_for: Callable[[Any], Any],
    what: str,
) -> tuple[str, int | None]:
    """Resolve the backend here and check that one field task per local worker fits.

    Returns ``(backend name, workers to pass to run_tasks)``. With the GPU backend and no
    ``workers``: dask-cuda's LocalCUDACluster (one worker per GPU) when it imports, else
    the in-process loop on this process's GPU (several processes on one GPU only compete).
    On the host backend with no ``workers`` the tasks run one after another in this
    process: a field task already uses every core (threaded noise and FFTs), and parallel
    processes would only add copies of the kernel and of the block working set (measured
    on the 2-core CPU, 512^3 at 20 nm with 128^3 chunks: 276 s and 128 CPU s on 2
    processes, 189 s and 93 CPU s in this process; separate runs on a loaded machine).
    A single task never starts a cluster either.
    """
    be = get_backend(backend)
    est = est_for(be)
    per_gpu = 1
    if workers is None and (n_tasks == 1 or be.on_host):
        workers = n_workers = 1
    elif workers is None and not be.on_host:
        if _dask_cuda_available():
            n_workers = max(1, min(be.device_count(), n_tasks))
        else:
            workers = n_workers = 1
    else:
        n_workers = 1 if workers == 1 else max(1, min(workers or usable_cores(), n_tasks))
        per_gpu = n_workers  # without dask-cuda every process shares the current GPU
    device = None if be.on_host else be.available_memory() / per_gpu
    _check_chunk_fits(
        est, host_available_memory() / n_workers, device, what,
        f"use fewer workers ({n_workers} now)",
    )
    return be.name, workers


def _plan_remote(
    backend: str | Backend, scheduler: str, est_for: Callable[[Any], Any], what: str
) -> str:
    """Resolve the backend on a worker of the running cluster and check its memory."""
    name = backend.name if isinstance(backend, Backend) else backend
    if name not in ("auto", "numpy", "cupy"):
        get_backend(name)  # raises the standard ValueError
    probe = run_tasks(
        [Task("probe", _probe_worker, {"backend": name})], None, scheduler=scheduler
    )["probe"]
    if "error" in probe:
        raise InvalidInputError(f"backend {name!r} cannot run on the workers of {scheduler}: "
                         f"{probe['error']}")
    est = est_for(probe["backend"])
    host = float(probe["host"])
    if probe.get("memory_limit"):
        host = min(host, float(probe["memory_limit"]))
    _check_chunk_fits(
        est, host / max(1, int(probe.get("threads") or 1)), probe.get("device"), what,
        "use workers with more memory (one thread each)",
    )
    return str(probe["backend"])


# ------------------------------------------------------------------------------ the store
def _spec_of(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: attrs.get(k) for k in _SPEC_KEYS}


def _check_existing(path: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Attributes of an existing store of the same generation; refuse anything else."""
    attrs = read_store_attrs(path)
    if attrs is None or attrs.get("generator") != GENERATOR:
        raise FileExistsError(
            errno.EEXIST,
            f"{str(path)!r} exists and is not a block-wise generation by cbagpu; "
            "delete it or choose another output path",
            str(path),
        )
    old = _spec_of(attrs)
    diff = _diff(old, spec)
    if diff:
        parts = [f"{d} (stored {_lookup(old, d)}, now {_lookup(spec, d)})" for d in diff[:8]]
        more = f" and {len(diff) - 8} more" if len(diff) > 8 else ""
        raise InvalidInputError(
            f"{path} holds a block-wise generation with other settings: {', '.join(parts)}"
            f"{more}; rerun with the same settings to resume it, or write to another path"
        )
    return attrs


def _open_or_create(path: Path, spec: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes of the store at ``path``, creating it (atomically, by rename) if absent;
    an existing store must be this generation (:func:`_check_existing`). An OME-Zarr store
    holds the array as its level ``0``."""
    ome = is_ome_zarr_path(path)
    if create_store_atomically(path, attrs,
                               prepare=lambda tmp: TaskStore(tmp / TASKS_DIR).check_spec(spec),
                               array_name=OME_LEVEL0 if ome else None):
        return attrs
    return _check_existing(path / OME_LEVEL0 if ome else path, spec)


def _finish_store(path: Path, label_counts: list[int]) -> dict[str, Any]:
    """Mark the store complete (attributes rewritten atomically), then drop the TaskStore;
    returns the final attributes."""
    return finish_store(path, {"label_counts": {"pore": label_counts[0], "cbd": label_counts[1],
                                         "graphite": label_counts[2]},
                        "completed": datetime.now(UTC).isoformat(timespec="seconds")},
                 drop_attrs=(INCOMPLETE_ATTR,), remove=(TASKS_DIR,))


def _fractions(counts: Sequence[int]) -> dict[str, float]:
    n = sum(counts)
    return {k: (c / n if n else 0.0) for k, c in zip(("pore", "cbd", "graphite"), counts,
                                                       strict=True)}


# ------------------------------------------------------------------------------ entry point
def generate_zarr(
    params: CBAParams,
    shape: tuple[int, int, int],
    voxel_size: float,
    seed: int,
    path: str | os.PathLike[str],
    *,
    chunks: int | Sequence[int] = 512,
    origin: tuple[int, int, int] = (0, 0, 0),
    backend: str | Backend = "auto",
    scheduler: str | None = None,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    pyramid_progress: Callable[[str, int, int], None] | None = None,
) -> ZarrGeneration:
    """Generate the window ``origin + [0, shape)`` of one realization into a Zarr store,
    one task per field block (run locally or on a Dask cluster), resumably.

    The result equals ``generate(params, shape, voxel_size, seed, origin, backend)`` byte
    for byte (window consistency of the engine: Eqs. (1)-(4) are realized per global cell
    and global field block, :mod:`cbagpu.simulate.realization`), whatever the chunking.

    Parameters
    ----------
    params, shape, voxel_size, seed, origin, backend
        As for :func:`cbagpu.generate`. The backend is resolved once (here, or on a worker
        of ``scheduler``) and every chunk uses it: the NumPy and CuPy backends differ where
        the field lies within float32 rounding of mu, so one store never mixes them.
    path : str or PathLike
        ``.zarr`` directory store. On a cluster it must be on a file system the workers
        and this process share. A name ending in ``.ome.zarr`` makes an OME-Zarr store
        (:mod:`cbagpu.io.ngff`): the chunks go to its level ``0`` and, once all are done,
        the down-sampled levels are computed chunk by chunk here (Dask, threads) and the
        OME-NGFF metadata written last.
    chunks : int or (int, int, int)
        Chunk edges in voxels (clipped to ``shape``). The unit of work is the field block
        (:attr:`FieldKernel.block` voxels, generated once, as in memory), not the chunk:
        the cost does not grow with the number of chunks. Chunks crossing a block border
        are assembled from the blocks' pieces (a copy) by tasks of their own.
    scheduler, workers, progress
        As for :func:`cbagpu.studies.tasks.run_tasks` (``progress(done, total,
        seconds_left)``, counting field tasks then border-chunk tasks). With the GPU
        backend, no ``scheduler`` and no ``workers``: one worker per GPU with dask-cuda,
        else the in-process loop on this GPU; on the host backend with no ``workers`` (or
        for one field block) the in-process loop, since a field task uses every core.
        Border chunks are assembled in this process (or on ``scheduler``).
    pyramid_progress : callable, optional
        OME-Zarr only: ``pyramid_progress("pyramid level", done, total)`` per level.

    Returns
    -------
    ZarrGeneration

    Raises
    ------
    ValueError
        Bad arguments, or ``path`` holds a generation with other settings.
    FileExistsError
        ``path`` exists and is no block-wise generation by cbagpu.
    InsufficientMemoryError
        One field block would not fit a worker (checked before anything is written).
    RuntimeError
        Some tasks failed (the others are kept; the same call again resumes).
    """
    t0 = time.perf_counter()
    if not isinstance(params, CBAParams):
        raise TypeError(f"params must be a CBAParams, got {type(params).__name__}")
    shape, origin = validate_window(shape, origin)
    seed = validate_seed(seed)
    s = validate_voxel_size(voxel_size)
    chunks_t = normalise_chunks(chunks, shape)
    dst = Path(path)
    if dst.suffix.lower() != ".zarr":
        raise InvalidInputError(f"block-wise generation writes a .zarr store, got {str(path)!r}")
    dst = check_writable(dst, overwrite=True)
    if scheduler is not None and workers is not None:
        raise InvalidInputError("give either scheduler (a running cluster) or workers, not both")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise InvalidInputError(f"workers must be an integer >= 1, got {workers!r}")
    if progress is not None and not callable(progress):
        raise InvalidInputError("progress must be callable")

    kernel = kernel_geometry(check_voxel_model(params, s).eta)  # built on the workers
    plan = _plan(shape, chunks_t, origin, kernel.block)
    largest = tuple(max(box[1][i] for box in plan.regions.values()) for i in range(3))

    def est_for(backend: Any) -> MemoryEstimate:
        est = estimate_memory(largest, kernel, backend)  # type: ignore[arg-type]
        # + a border chunk assembled here, and the pieces read for it
        return MemoryEstimate(max(est.host, 3 * math.prod(chunks_t)), est.device)

    what = (f"a field block of {'x'.join(map(str, largest))} voxels at {s:g} nm "
            f"(FFT {kernel.fft_size}^3)")
    if scheduler is None:
        be_name, run_workers = _plan_local(backend, workers, len(plan.regions), est_for, what)
    else:
        be_name, run_workers = _plan_remote(backend, scheduler, est_for, what), None

    attrs = _normalise_metadata(image_metadata(
        params.to_dict(), seed, s, origin, be_name,
        shape=list(shape),
        field_kernel_radius=kernel.radius,
        field_block=kernel.block,
        generator=GENERATOR,
        chunks=list(chunks_t),
        **{INCOMPLETE_ATTR: True},
    ))
    spec = _spec_of(attrs)
    attrs = _open_or_create(dst, spec, attrs)

    n_field, n_border = len(plan.regions), len(plan.border)
    total = n_field + n_border
    ome = is_ome_zarr_path(dst)
    array_path = dst / OME_LEVEL0 if ome else dst
    if not attrs.get(INCOMPLETE_ATTR):  # finished earlier: nothing to do (but the pyramid)
        lc = attrs.get("label_counts") or {}
        counts = [int(lc.get(k, 0)) for k in ("pore", "cbd", "graphite")]
        if ome and not is_ome_zarr(dst):  # interrupted while the pyramid was built
            build_pyramid(dst, attrs, progress=pyramid_progress)
        if progress is not None:
            progress(total, total, 0.0)
        return ZarrGeneration(str(dst), shape, chunks_t, origin, be_name, total, 0, total,
                              time.perf_counter() - t0, _fractions(counts), n_field)

    store = TaskStore(array_path / TASKS_DIR)
    store.check_spec(spec)
    pieces: dict[tuple[int, int, int], list[Box]] = {idx: [] for idx in plan.regions}
    border_tasks = []
    for index, box, meets in plan.border:
        parts = []
        for b in meets:
            piece = _intersect(box, plan.regions[b])
            pieces[b].append(piece)
            parts.append([_pieces_path(array_path, b), list(plan.regions[b][0]),
                          list(piece[0]), list(piece[1])])
        border_tasks.append(Task(_chunk_key(index), _assemble_chunk, {
            "path": str(array_path), "start": list(box[0]), "shape": list(box[1]),
            "chunks": list(chunks_t), "pieces": parts}))
    field_tasks = [
        Task(_block_key(idx), _generate_field_block, {
            "path": str(array_path),
            "params": params.to_dict(),
            "voxel_size": s,
            "seed": seed,
            "origin": list(origin),
            "start": list(region[0]),
            "shape": list(region[1]),
            "chunks": list(chunks_t),
            "inner": [[list(b[0]), list(b[1])] for _, b in plan.inner[idx]],
            "pieces": [[list(p[0]), list(p[1])] for p in pieces[idx]],
            "scratch": _pieces_path(array_path, idx),
            "backend": be_name,
        })
        for idx, region in plan.regions.items()
    ]
    reused = sum(store.done(t.key) for t in (*field_tasks, *border_tasks))

    def shifted(offset: int) -> ProgressFn | None:
        if progress is None:
            return None
        return lambda done, _n, left: progress(offset + done, total, left)

    results = run_tasks(field_tasks, store, scheduler=scheduler, workers=run_workers,
                        progress=shifted(0))
    # the border chunks only copy pieces: in this process, or on the given cluster
    results |= run_tasks(border_tasks, store, scheduler=scheduler,
                         workers=None if scheduler else 1, progress=shifted(n_field))
    counts = [sum(int(r["label_counts"][i]) for r in results.values()) for i in range(3)]
    if sum(counts) != math.prod(shape):  # pragma: no cover - a corrupted task store
        raise RuntimeError(
            f"the chunks of {dst} hold {sum(counts)} voxels, not {math.prod(shape)}: "
            f"delete {dst / TASKS_DIR} and run again"
        )
    final = _finish_store(array_path, counts)
    if ome:  # the pyramid and the OME-NGFF metadata, chunk by chunk (last: marks it done)
        build_pyramid(dst, final, progress=pyramid_progress)
    return ZarrGeneration(str(dst), shape, chunks_t, origin, be_name, total, total - reused,
                          reused, time.perf_counter() - t0, _fractions(counts), n_field)


# ------------------------------------------------------------------------------ CLI
