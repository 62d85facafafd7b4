"""generate: time and peak memory of one realization vs. a plain FFT Gaussian field and PoreSpy.

Cases, for each window edge ``n`` (voxels of 20 nm, ``preset("paper")``, seed 1, origin 0):

* ``generate-n``: ``cbagpu.generate(params, (n, n, n), 20, 1, origin=(0, 0, 0), backend=...)``
  (returns a host ``uint8`` array, so the device-to-host copy is included);
* ``fft-field-n``: ONE plain periodic FFT Gaussian field, the cost baseline for window
  consistency: N(0, 1) float32 white noise from the backend's RNG, ``rfftn``, multiplied by
  the square root of the DFT of the sampled covariance rho(h) = 1 / (1 + (eta h)^2) with
  eta = 0.0127 nm^-1 * 20 nm = 0.254 per voxel on the periodic grid (negative values clipped
  to 0), ``irfftn`` (``scipy.fft`` with all usable cores on numpy, ``cupy.fft`` on cupy).
  The square-root spectrum is set up untimed, in float64, then cast to float32;
* ``porespy-blobs-400``: ``porespy.generators.blobs(shape=[400]*3, porosity=None,
  blobiness=1)``, a plain Gaussian-filtered field, as the anchor (reported 44 s for 400^3 on
  the 2-core CPU); skipped when PoreSpy is not installed.

* ``zarr-n``: block-wise generation into a Zarr store on disk
  (:func:`cbagpu.studies.volume.generate_zarr`, chunks of ``ZARR_CHUNK``, in-process, one
  GPU; issue 6: 2048^3 at 20 nm on one GPU, time and peak device memory); ``extra`` holds
  the generation's own seconds (the timed run also deletes the previous run's store).

* ``chunked-n-memory`` and ``chunked-n-cC`` (issue 16, item 4): the in-memory generation
  of the window n^3 (20 nm, origin 0) and the block-wise store of the same window with
  chunks of C^3 (:func:`cbagpu.studies.volume.generate_zarr`, default workers: in process
  on the CPU, one worker per GPU with dask-cuda), side by side in one run;
  ``chunkedp2-n-cC`` uses 2 local Dask processes. Each case hashes its labels on its
  first call (the warm-up, untimed unless ``--warmup 0``) and records the CPU seconds of
  every call (this process and its finished children: ``extra.cpu_s``, the warm-up
  first), a measure of cost that a loaded machine disturbs less than wall time. The
  summary gives the ratios store / in-memory of the medians (wall and CPU) and whether the
  labels are identical (target: wall ratio <= 1.5 for every chunk edge >= 64, 512^3 with
  128^3 chunks in particular). Select them with ``-k chunked``; numpy: 256 (chunks 64,
  128, 256) and 512 (chunks 128; ``chunkedp2-512-c128``: 2 processes); cupy: 512 (64, 128,
  256) and 1024 (128, 256).

Sizes: 200, 400, 800; on cupy also 1024 and the larger cubes 1280 and 1536 when their
estimated memory fits; ``--quick``: 64 and 128 only.  ``--sizes`` overrides the list.
Zarr cases: 256 on numpy, 2048 on cupy (``--quick``: 64 at 80 nm with chunks of 32); select them
with ``-k zarr``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.harness import Case, SkipCase, available_host_bytes, select_sizes, usable_cores

SUITE_NAME = "generate"

VOXEL_NM = 20.0
SEED = 1
ORIGIN = (0, 0, 0)
PRESET = "paper"
ETA_PER_NM = 0.0127
ETA_PER_VOXEL = ETA_PER_NM * VOXEL_NM  # 0.254

SIZES = (200, 400, 800)
GPU_SIZES = (1024,)
GPU_LARGE_SIZES = (1280, 1536)  # "the largest cube that fits", each guarded by free memory
QUICK_SIZES = (64, 128)
PORESPY_SIZE = 400
ZARR_SIZES = {"numpy": (256,), "cupy": (2048,)}
ZARR_QUICK = (64, 32, 80.0)  # size, chunk, voxel nm (80 nm: field blocks of ~108 voxels)
ZARR_CHUNK = 512
#: Store vs in-memory (issue 16): window edge -> chunk edges, per backend; and the
#: (window, chunk) cases also run on 2 local Dask processes.
CHUNKED = {"numpy": {256: (64, 128, 256), 512: (128,)},
           "cupy": {512: (64, 128, 256), 1024: (128, 256)}}
CHUNKED_PROCESSES = {"numpy": ((512, 128),), "cupy": ()}
CHUNKED_QUICK = (96, (32,), 80.0)  # window, chunks, voxel nm (crosses no block at 80 nm)
CHUNKED_MAX_RATIO = 1.5

#: Memory estimates (bytes per voxel) used to skip cases that cannot fit.
DEVICE_BYTES_PER_VOXEL = {"generate": 16.0, "fft": 20.0}
HOST_BYTES_PER_VOXEL = {
    "numpy": {"generate": 16.0, "fft": 24.0},
    "cupy": {"generate": 2.0, "fft": 2.0},
    "porespy": 40.0,
}

TARGET_TEXT = (
    "400^3 at 20 nm <= 30 s on the 2-core CPU; on an H100 800^3 <= 0.5 s, 1024^3 <= 1.5 s, "
    "<= 16 bytes of device memory per voxel"
)
TARGETS: dict[str, Any] = {
    "text": TARGET_TEXT,
    "time": [
        {"case": "generate-400", "max_median_s": 30.0, "backend": "numpy", "usable_cores": 2},
        {"case": "generate-800", "max_median_s": 0.5, "backend": "cupy", "gpu": "H100"},
        {"case": "generate-1024", "max_median_s": 1.5, "backend": "cupy", "gpu": "H100"},
    ],
    "max_device_bytes_per_voxel": 16.0,
    "anchor": "porespy.generators.blobs at 400^3: reported 44 s on the 2-core CPU",
}

GIB = 1024.0**3


# --------------------------------------------------------------------------------------
# The plain FFT Gaussian field


def covariance(h: np.ndarray, eta: float = ETA_PER_VOXEL) -> np.ndarray:
    """rho(h) = 1 / (1 + (eta h)^2), h in voxels, eta per voxel."""
    return 1.0 / (1.0 + (eta * h) ** 2)


def _octant_covariance(shape: Sequence[int], eta: float) -> np.ndarray:
    """rho at the periodic distances 0..n//2 along each axis (float64), built in place."""
    axes = [np.arange(n // 2 + 1, dtype=np.float64) ** 2 for n in shape]
    h2 = axes[0][:, None, None] + axes[1][None, :, None] + axes[2][None, None, :]
    h2 *= eta * eta
    h2 += 1.0
    np.reciprocal(h2, out=h2)
    return h2


def _periodic_covariance(shape: Sequence[int], eta: float) -> np.ndarray:
    """rho on the whole periodic grid (float64): distance min(i, n - i) along each axis."""
    axes = [np.minimum(np.arange(n), n - np.arange(n)).astype(np.float64) ** 2 for n in shape]
    h2 = axes[0][:, None, None] + axes[1][None, :, None] + axes[2][None, None, :]
    return covariance(np.sqrt(h2), eta)


def sqrt_spectrum(
    shape: Sequence[int], eta: float = ETA_PER_VOXEL, xp: Any = np, workers: int | None = None
) -> Any:
    """Square root of the DFT of the periodically sampled covariance, in ``rfftn`` layout.

    Computed in float64 on the host, negative values clipped to 0, returned as a float32
    ``xp`` array of shape ``(n0, n1, n2 // 2 + 1)``.  For even edges the covariance is even
    in every axis, so its DFT is the type-1 DCT of one octant (1/8 of the memory), mirrored
    to the other frequencies; odd edges use a full ``rfftn``.
    """
    import scipy.fft

    shape = tuple(int(n) for n in shape)
    if len(shape) != 3:
        raise ValueError("shape must have 3 entries")
    if all(n % 2 == 0 for n in shape):
        spectrum = scipy.fft.dctn(
            _octant_covariance(shape, eta), type=1, overwrite_x=True, workers=workers
        )
        np.clip(spectrum, 0.0, None, out=spectrum)
        np.sqrt(spectrum, out=spectrum)
        octant = xp.asarray(spectrum.astype(np.float32))
        del spectrum
        for axis in (0, 1):
            n = shape[axis]
            mirror = np.minimum(np.arange(n), n - np.arange(n))
            octant = xp.take(octant, xp.asarray(mirror), axis=axis)
        return xp.ascontiguousarray(octant)
    spectrum = scipy.fft.rfftn(_periodic_covariance(shape, eta), workers=workers).real
    return xp.asarray(np.sqrt(np.clip(spectrum, 0.0, None)).astype(np.float32))


def _normal_sampler(xp: Any, seed: int) -> Any:
    """A callable ``draw(shape) -> float32 N(0, 1) array`` from the backend's RNG."""
    try:
        rng = xp.random.default_rng(seed)
        rng.standard_normal((2,), dtype=xp.float32)
        return lambda shape: rng.standard_normal(shape, dtype=xp.float32)
    except (AttributeError, TypeError, NotImplementedError):
        state = xp.random.RandomState(seed)
        return lambda shape: state.standard_normal(shape, dtype=xp.float32)


def _fft_setup(shape: tuple[int, int, int], backend: str) -> dict[str, Any]:
    workers = usable_cores()
    if backend == "cupy":
        import cupy

        xp = cupy
        rfftn = cupy.fft.rfftn

        def irfftn(f: Any, s: tuple[int, ...]) -> Any:
            return cupy.fft.irfftn(f, s=s)

    else:
        import scipy.fft

        xp = np

        def rfftn(w: Any) -> Any:
            return scipy.fft.rfftn(w, workers=workers)

        def irfftn(f: Any, s: tuple[int, ...]) -> Any:
            return scipy.fft.irfftn(f, s=s, workers=workers, overwrite_x=True)

    return {
        "draw": _normal_sampler(xp, SEED),
        "sqrt_s": sqrt_spectrum(shape, ETA_PER_VOXEL, xp=xp, workers=workers),
        "rfftn": rfftn,
        "irfftn": irfftn,
        "shape": shape,
    }


def _fft_run(state: dict[str, Any]) -> None:
    """White noise → rfftn → × sqrt spectrum → irfftn (one Gaussian field)."""
    w = state["draw"](state["shape"])
    f = state["rfftn"](w)
    del w
    f *= state["sqrt_s"]
    field = state["irfftn"](f, state["shape"])
    del f, field


# --------------------------------------------------------------------------------------
# Cases


def _free_device_bytes() -> int | None:
    """Free memory of the GPU CuPy will use: NVML first (no CUDA context), else CuPy."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
            index = int(visible) if visible.isdigit() else 0
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            return int(pynvml.nvmlDeviceGetMemoryInfo(handle).free)
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        pass
    try:
        import cupy

        return int(cupy.cuda.runtime.memGetInfo()[0])
    except Exception:
        return None


def _memory_skip(
    voxels: int,
    device_bpv: float | None,
    host_bpv: float,
    free_device: int | None,
    free_host: int | None,
) -> str | None:
    """A skip reason when the estimated memory exceeds what is free, else ``None``."""
    if device_bpv is not None and free_device is not None:
        need = device_bpv * voxels
        if need > free_device:
            return (
                f"needs ~{need / GIB:.1f} GiB of device memory ({device_bpv:g} B/voxel), "
                f"{free_device / GIB:.1f} GiB free"
            )
    if free_host is not None:
        need = host_bpv * voxels
        if need > free_host:
            return (
                f"needs ~{need / GIB:.1f} GiB of host memory ({host_bpv:g} B/voxel), "
                f"{free_host / GIB:.1f} GiB available"
            )
    return None


def _generate_case(n: int, backend: str, free_device: int | None, free_host: int | None) -> Case:
    shape = (n, n, n)

    def setup() -> tuple[Any, Any]:
        import cbagpu
        from cbagpu.params import preset

        return cbagpu.generate, preset(PRESET)

    def run(state: tuple[Any, Any]) -> None:
        generate, params = state
        generate(params, shape, VOXEL_NM, SEED, origin=ORIGIN, backend=backend)

    return Case(
        name=f"generate-{n}",
        params={
            "kind": "generate",
            "size": n,
            "shape": list(shape),
            "voxel_nm": VOXEL_NM,
            "preset": PRESET,
            "seed": SEED,
            "origin": list(ORIGIN),
            "backend": backend,
        },
        setup=setup,
        run=run,
        voxels=n**3,
        skip=_memory_skip(
            n**3,
            DEVICE_BYTES_PER_VOXEL["generate"] if backend == "cupy" else None,
            HOST_BYTES_PER_VOXEL[backend]["generate"],
            free_device,
            free_host,
        ),
    )


def _fft_case(n: int, backend: str, free_device: int | None, free_host: int | None) -> Case:
    shape = (n, n, n)
    return Case(
        name=f"fft-field-{n}",
        params={
            "kind": "fft-field",
            "size": n,
            "shape": list(shape),
            "eta_per_voxel": ETA_PER_VOXEL,
            "covariance": "1/(1+(eta h)^2), periodic grid, DFT clipped at 0",
            "dtype": "float32",
            "fft": "cupy.fft" if backend == "cupy" else "scipy.fft",
            "workers": None if backend == "cupy" else usable_cores(),
            "backend": backend,
        },
        setup=lambda: _fft_setup(shape, backend),
        run=_fft_run,
        voxels=n**3,
        skip=_memory_skip(
            n**3,
            DEVICE_BYTES_PER_VOXEL["fft"] if backend == "cupy" else None,
            HOST_BYTES_PER_VOXEL[backend]["fft"],
            free_device,
            free_host,
        ),
        notes="one plain periodic GRF",
    )


def _porespy_case(n: int, free_host: int | None) -> Case:
    shape = [n, n, n]

    def setup() -> Any:
        try:
            import porespy
        except ImportError as exc:
            raise SkipCase(f"porespy not importable ({exc})") from exc
        return porespy.generators.blobs

    def run(blobs: Any) -> None:
        blobs(shape=shape, porosity=None, blobiness=1)

    skip = None
    if importlib.util.find_spec("porespy") is None:
        skip = "porespy not installed"
    else:
        skip = _memory_skip(n**3, None, HOST_BYTES_PER_VOXEL["porespy"], None, free_host)
    return Case(
        name=f"porespy-blobs-{n}",
        params={
            "kind": "porespy-blobs",
            "size": n,
            "shape": shape,
            "porosity": None,
            "blobiness": 1,
            "reported_s_2core": 44.0,
        },
        setup=setup,
        run=run,
        voxels=n**3,
        skip=skip,
        notes="CPU anchor (44 s reported on the 2-core CPU)",
    )


def cases(backend: str, quick: bool, sizes: Sequence[int] | None = None) -> list[Case]:
    """The cases of the generate suite for ``backend`` ("numpy" or "cupy")."""
    size_list = select_sizes(sizes, quick, backend, SIZES, QUICK_SIZES,
                             [*GPU_SIZES, *GPU_LARGE_SIZES])
    free_device = _free_device_bytes() if backend == "cupy" else None
    free_host = available_host_bytes()
    out: list[Case] = []
    for n in size_list:
        out.append(_generate_case(n, backend, free_device, free_host))
        out.append(_fft_case(n, backend, free_device, free_host))
        if n == PORESPY_SIZE and not quick:
            out.append(_porespy_case(n, free_host))
    if quick:
        out.append(_zarr_case(*ZARR_QUICK[:2], backend, ZARR_QUICK[2]))
        n, chunk_list, voxel = CHUNKED_QUICK
        out.append(_chunked_case(n, None, backend, voxel))
        out.extend(_chunked_case(n, c, backend, voxel) for c in chunk_list)
    elif not sizes:
        out.extend(_zarr_case(n, min(ZARR_CHUNK, n), backend, VOXEL_NM)
                   for n in ZARR_SIZES[backend])
        for n, chunk_list in CHUNKED[backend].items():
            out.append(_chunked_case(n, None, backend, VOXEL_NM, free_host=free_host))
            out.extend(_chunked_case(n, c, backend, VOXEL_NM, free_host=free_host)
                       for c in chunk_list)
            out.extend(_chunked_case(n, c, backend, VOXEL_NM, workers=2, free_host=free_host)
                       for m, c in CHUNKED_PROCESSES[backend] if m == n)
    return out


def _digest(labels: np.ndarray) -> str:
    """First 16 hex digits of the SHA-256 of the label bytes (C order)."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()[:16]


def _chunked_case(n: int, chunk: int | None, backend: str, voxel_nm: float,
                  workers: int | None = None, free_host: int | None = None) -> Case:
    """In-memory generation of the window n^3 (``chunk`` None) or its block-wise store."""
    import shutil
    import tempfile

    shape = (n, n, n)
    name = f"chunked-{n}-memory" if chunk is None else f"chunked-{n}-c{chunk}"
    if workers is not None:
        name = name.replace("chunked-", f"chunkedp{workers}-")

    def setup() -> dict[str, Any]:
        from cbagpu.params import preset

        state: dict[str, Any] = {"params": preset(PRESET), "runs": 0, "digest": None,
                                 "cpu": []}
        if chunk is not None:
            if importlib.util.find_spec("zarr") is None:
                raise SkipCase("zarr not installed (pip install cbagpu[dask])")
            state["root"] = tempfile.mkdtemp(prefix="cbagpu-bench-chunked-")
        return state

    def run(state: dict[str, Any]) -> dict[str, Any]:
        import cbagpu
        from cbagpu.io.zarr_store import zarr_module
        from cbagpu.studies.volume import generate_zarr

        state["runs"] += 1
        out: dict[str, Any] = {}
        t = os.times()
        cpu0 = t.user + t.system + t.children_user + t.children_system
        if chunk is None:
            labels = cbagpu.generate(state["params"], shape, voxel_nm, SEED, origin=ORIGIN,
                                     backend=backend)
        else:
            path = os.path.join(state["root"], f"run{state['runs']}.zarr")
            shutil.rmtree(os.path.join(state["root"], f"run{state['runs'] - 1}.zarr"),
                          ignore_errors=True)
            res = generate_zarr(state["params"], shape, voxel_nm, SEED, path, chunks=chunk,
                                origin=ORIGIN, backend=backend, workers=workers)
            out |= {"generate_zarr_s": res.seconds, "tasks": res.tasks_total,
                    "field_blocks": res.field_blocks}
            labels = None
        t = os.times()
        state["cpu"].append(t.user + t.system + t.children_user + t.children_system - cpu0)
        out["cpu_s"] = list(state["cpu"])
        if chunk is not None and state["digest"] is None:
            labels = zarr_module().open_array(store=path, mode="r")[:]
        if state["digest"] is None:  # first call only (the warm-up)
            state["digest"] = _digest(labels)
        del labels
        out["labels_sha256_16"] = state["digest"]
        return out

    need = 3 * n**3 + (4 << 30)  # labels (and a copy to hash) + a 640^3 field block
    skip = None
    if free_host is not None and need > free_host:
        skip = f"needs ~{need / GIB:.1f} GiB of host memory, {free_host / GIB:.1f} GiB available"
    return Case(
        name=name,
        params={"kind": "chunked", "size": n, "shape": list(shape),
                "chunks": chunk, "voxel_nm": voxel_nm, "preset": PRESET, "seed": SEED,
                "origin": list(ORIGIN), "backend": backend, "workers": workers},
        setup=setup, run=run, voxels=n**3, skip=skip,
        notes=("in memory" if chunk is None else
               f"Zarr store, chunks {chunk}^3, "
               f"{'in process' if workers is None else f'{workers} Dask processes'}"),
    )


def _zarr_case(n: int, chunk: int, backend: str, voxel_nm: float) -> Case:
    import shutil
    import tempfile

    def setup() -> dict[str, Any]:
        from cbagpu.params import preset

        if importlib.util.find_spec("zarr") is None:
            raise SkipCase("zarr not installed (pip install cbagpu[dask])")
        root = tempfile.mkdtemp(prefix="cbagpu-bench-zarr-")
        return {"params": preset(PRESET), "root": root, "runs": 0}

    def run(state: dict[str, Any]) -> dict[str, float]:
        from cbagpu.studies.volume import generate_zarr

        old = os.path.join(state["root"], f"run{state['runs']}.zarr")
        shutil.rmtree(old, ignore_errors=True)
        state["runs"] += 1
        path = os.path.join(state["root"], f"run{state['runs']}.zarr")
        res = generate_zarr(state["params"], (n, n, n), voxel_nm, SEED, path, chunks=chunk,
                            backend=backend, workers=1)
        return {"generate_zarr_s": res.seconds, "chunks": float(res.tasks_total)}

    return Case(name=f"zarr-{n}", params={"size": n, "chunks": chunk, "voxel_size_nm": voxel_nm},
                setup=setup, run=run, voxels=n**3,
                notes=f"Zarr store, chunks {chunk}^3, in-process")


# --------------------------------------------------------------------------------------
# Summary


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Targets met or not, generate/FFT and generate/PoreSpy ratios, device bytes per voxel."""
    backend = result["backend"]
    records = {r["name"]: r for r in result["cases"]}
    gpu_name = str(
        result.get("gpu", {}).get("name") or result.get("backend_info", {}).get("device_name", "")
    )
    cores = result.get("machine", {}).get("usable_cores")
    summary: dict[str, Any] = {"targets": TARGET_TEXT}

    checks = []
    for target in TARGETS["time"]:
        record = records.get(target["case"])
        measured = record.get("median_s") if record else None
        applies = target["backend"] == backend and (
            ("gpu" not in target or target["gpu"].lower() in gpu_name.lower())
            and ("usable_cores" not in target or target["usable_cores"] == cores)
        )
        checks.append(
            {
                **target,
                "measured_median_s": measured,
                "applies_to_this_machine": applies,
                "met": None if measured is None else measured <= target["max_median_s"],
            }
        )
    summary["time_checks"] = checks

    if backend == "cupy":
        per_voxel = {
            name: r.get("device_bytes_per_voxel")
            for name, r in records.items()
            if name.startswith("generate-") and r.get("device_bytes_per_voxel") is not None
        }
        summary["device_bytes_per_voxel"] = per_voxel
        summary["device_used_bytes_per_voxel"] = {
            name: r.get("device_used_bytes_per_voxel")
            for name, r in records.items()
            if name.startswith("generate-") and r.get("device_used_bytes_per_voxel") is not None
        }
        limit = TARGETS["max_device_bytes_per_voxel"]
        summary["device_bytes_per_voxel_met"] = (
            all(v <= limit for v in per_voxel.values()) if per_voxel else None
        )
        ok_sizes = [
            r["params"]["size"]
            for name, r in records.items()
            if name.startswith("generate-") and r.get("status") == "ok"
        ]
        summary["largest_generate_size"] = max(ok_sizes) if ok_sizes else None

    ratios = {}
    for name, r in records.items():
        if name.startswith("generate-") and r.get("median_s"):
            fft = records.get(name.replace("generate-", "fft-field-"), {})
            if fft.get("median_s"):
                ratios[name] = r["median_s"] / fft["median_s"]
    summary["generate_over_fft_field"] = ratios
    summary["chunked_vs_memory"] = _chunked_summary(records)
    anchor = records.get(f"porespy-blobs-{PORESPY_SIZE}", {})
    gen = records.get(f"generate-{PORESPY_SIZE}", {})
    if anchor.get("median_s") and gen.get("median_s"):
        summary["generate_over_porespy_400"] = gen["median_s"] / anchor["median_s"]
    return summary


def _chunked_summary(records: dict[str, Any]) -> dict[str, Any]:
    """Per window: the in-memory median, and per store case its median, the ratio store /
    in-memory, whether the labels are identical and whether the ratio is <= 1.5."""
    out: dict[str, Any] = {}
    chunked = {k: r for k, r in records.items() if r.get("params", {}).get("kind") == "chunked"}
    for name, mem in chunked.items():
        if mem["params"].get("chunks") is not None:
            continue
        ref_t, ref_c = mem.get("median_s"), _median_cpu(mem)
        ref_d = (mem.get("extra") or {}).get("labels_sha256_16")
        rows = {}
        for other, r in chunked.items():
            if other == name or r["params"].get("size") != mem["params"].get("size"):
                continue
            t, c = r.get("median_s"), _median_cpu(r)
            digest = (r.get("extra") or {}).get("labels_sha256_16")
            ratio = t / ref_t if t and ref_t else None
            rows[other] = {
                "median_s": t, "ratio_to_memory": ratio,
                "median_cpu_s": c, "cpu_ratio_to_memory": c / ref_c if c and ref_c else None,
                "labels_identical": None if not (digest and ref_d) else digest == ref_d,
                "ratio_met": None if ratio is None else ratio <= CHUNKED_MAX_RATIO,
            }
        out[name] = {"median_s": ref_t, "median_cpu_s": ref_c, "max_ratio": CHUNKED_MAX_RATIO,
                     "stores": rows}
    return out


def _median_cpu(record: dict[str, Any]) -> float | None:
    """Median CPU seconds of the timed calls (the last ``len(times_s)`` of ``cpu_s``)."""
    cpu = (record.get("extra") or {}).get("cpu_s") or []
    n = len(record.get("times_s") or [])
    return float(np.median(cpu[-n:])) if n and len(cpu) >= n else None
