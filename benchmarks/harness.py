"""One benchmark harness for every cbagpu suite.

A *suite* is a module ``benchmarks/suite_<name>.py`` (or any module object passed to
:func:`run_suite`) exposing::

    def cases(backend: str, quick: bool, sizes: Sequence[int] | None = None) -> list[Case]

and, optionally, ``TARGETS`` (any JSON-able object copied into the result) and
``summarize(result: dict) -> dict`` (its return value is stored under ``"summary"``).
The ``sizes`` parameter is optional: when a suite does not accept it, ``--sizes`` keeps the
cases whose ``params["size"]`` is one of the given sizes.

Each case runs in a fresh process started with the ``spawn`` method, so the RSS high-water
mark of that process is the peak host memory of that case alone.  It is read from ``VmHWM``
in ``/proc/self/status``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is recorded too
(``ru_maxrss_mib``), but on Linux it keeps the high-water mark of the process the worker was
forked from (the harness) across ``execve``, so it never reads below the harness's own.
In the worker the case's ``setup`` runs once (not timed), then
its ``run`` callable runs once as an uncounted warm-up and ``repeat`` more times, timed with
:func:`time.perf_counter`.  On the CuPy backend the device is synchronised before each timer
stops, and CuPy's default memory pool is wrapped by an allocator that records the high-water
marks of ``total_bytes()`` (memory held by the pool) and ``used_bytes()`` (memory in live
arrays).  A case that raises is recorded with its error and the run goes on; a suite marks a
case it should not run (for instance, too big for the free memory) with ``Case.skip``, or
raises :class:`SkipCase` from the case's ``setup``.

The result is written atomically (temporary file + :func:`os.replace`) to
``OUT/SUITE-MACHINE.json`` and summarised as an aligned table on stdout.  The file is also
written after each case with ``"complete": false``, so a run that is killed part-way (a time
limit on a borrowed GPU) still leaves the cases it finished.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.metadata
import importlib.util
import inspect
import math
import multiprocessing
import os
import platform
import re
import resource
import socket
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from cbagpu.io.atomic import write_json_atomic as _write_json_atomic
from cbagpu.memory import host_available_memory, usable_cores

__all__ = [
    "Case",
    "SkipCase",
    "format_table",
    "gpu_info",
    "list_suites",
    "load_suite",
    "machine_info",
    "machine_slug",
    "main",
    "package_versions",
    "resolve_backend",
    "run_suite",
    "write_json_atomic",
]

SCHEMA_VERSION = 1
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_OUT_DIR = PACKAGE_DIR / "results"
SUITE_PREFIX = "suite_"
BACKENDS = ("auto", "numpy", "cupy")
MIB = 1024.0 * 1024.0

#: Distribution names tried, in order, for each reported package.
PACKAGES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "scipy": ("scipy",),
    "cupy": ("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy"),
    "cucim": ("cucim-cu13", "cucim-cu12", "cucim-cu11", "cucim"),
    "tifffile": ("tifffile",),
    "porespy": ("porespy",),
    "cbagpu": ("cbagpu",),
    "nvidia-ml-py": ("nvidia-ml-py", "pynvml"),
}

METHOD = {
    "warmup_runs": 1,
    "warmup_counted": False,
    "warmup_note": "each case runs once as a warm-up (its time is kept as warmup_s but not "
    "counted) before the `repeat` timed runs; median/min/max/mean use the timed runs only",
    "timer": "time.perf_counter; on cupy the device is synchronised before the timer stops",
    "isolation": "each case runs in a fresh process (multiprocessing 'spawn')",
    "setup_timed": False,
    "peak_host": "RSS high-water mark of the case's own process (setup, warm-up and timed runs "
    "included), MiB: VmHWM of /proc/self/status, which execve resets, else ru_maxrss; "
    "host_baseline_mib is the same before setup (interpreter + imports). ru_maxrss_mib is "
    "resource.getrusage(RUSAGE_SELF).ru_maxrss, which on Linux also carries the harness's own "
    "high-water mark across the spawn (fork/vfork + exec), so it is at least the parent's",
    "peak_device": "cupy only: high-water marks of cupy.get_default_memory_pool().total_bytes() "
    "(peak_device_mib) and .used_bytes() (peak_device_used_mib), tracked by an allocator that "
    "wraps the pool's malloc; setup, warm-up and timed runs included",
}


class SkipCase(Exception):
    """Raise from a case's ``setup`` (or ``run``) to record the case as skipped.

    The exception's message is stored as the skip reason.
    """


@dataclass(kw_only=True)
class Case:
    """One benchmark case of a suite.

    Attributes:
        name: Unique name within the suite, e.g. ``"generate-400"``.
        params: JSON-able description of the case (shape, sizes, options); stored as is.
            A ``"size"`` entry lets ``--sizes`` filter suites that do not accept ``sizes``.
        setup: Called once in the worker process before any timed run; its return value is
            passed to ``run``.  Not timed.  ``None`` means no setup (``run`` gets ``None``).
        run: The timed callable, ``run(state)``.  It may return a mapping of extra numbers
            (stored under ``"extra"``, from the last run); any other return value is dropped
            before the next run.
        voxels: Voxels processed by one ``run`` call; gives ``voxels_per_s`` and, on cupy,
            ``device_bytes_per_voxel``.
        skip: When not ``None``, the case is not run and is recorded as skipped with this
            reason (e.g. its estimated memory exceeds what is available).
        notes: Free text copied into the record and the table.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    setup: Callable[[], Any] | None = None
    run: Callable[[Any], Any]
    voxels: int | None = None
    skip: str | None = None
    notes: str = ""


def select_sizes(
    sizes: Sequence[int] | None,
    quick: bool,
    backend: str,
    default: Sequence[int],
    quick_default: Sequence[int],
    gpu_extra: Sequence[int] = (),
) -> list[int]:
    """Window edges of a suite: ``--sizes`` when given, else the quick or the default list
    (plus ``gpu_extra`` on cupy)."""
    if sizes:
        return sorted({int(n) for n in sizes})
    if quick:
        return list(quick_default)
    return list(default) + (list(gpu_extra) if backend == "cupy" else [])


# --------------------------------------------------------------------------------------
# Suites


def list_suites() -> dict[str, str]:
    """Return ``{suite name: first line of its docstring}`` for ``benchmarks/suite_*.py``."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE_DIR.glob(f"{SUITE_PREFIX}*.py")):
        name = path.stem[len(SUITE_PREFIX) :]
        try:
            module = load_suite(name)
            doc = (module.__doc__ or "").strip().splitlines()
            found[name] = doc[0] if doc else ""
        except Exception as exc:  # a broken suite must not hide the others
            found[name] = f"(cannot import: {type(exc).__name__}: {exc})"
    return found


def load_suite(suite: str | ModuleType) -> ModuleType:
    """Return a suite module.

    Args:
        suite: A module object (returned as is), a suite name (``"generate"`` →
            ``benchmarks.suite_generate``), a dotted module name, or a path to a ``.py`` file.
    """
    if isinstance(suite, ModuleType):
        return suite
    if suite.endswith(".py") or os.sep in suite:
        return _load_module_from_file(Path(suite).stem, Path(suite))
    if "." in suite:
        return importlib.import_module(suite)
    module_name = suite if suite.startswith(SUITE_PREFIX) else SUITE_PREFIX + suite
    return importlib.import_module(f"{__package__ or 'benchmarks'}.{module_name}")


def suite_name(module: ModuleType) -> str:
    """Short name of a suite module: ``SUITE_NAME`` if set, else the module name minus
    its package and the ``suite_`` prefix."""
    explicit = getattr(module, "SUITE_NAME", None)
    if explicit:
        return str(explicit)
    base = module.__name__.rsplit(".", 1)[-1]
    return base[len(SUITE_PREFIX) :] if base.startswith(SUITE_PREFIX) else base


def _load_module_from_file(name: str, path: Path) -> ModuleType:
    """Import the module at ``path`` under ``name`` (registered in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load a module from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


@dataclass(frozen=True)
class _SuiteRef:
    """How a spawned worker finds the suite module again (module objects do not pickle)."""

    module: str
    file: str | None


def _suite_ref(module: ModuleType) -> _SuiteRef:
    file = getattr(module, "__file__", None)
    if file is None and importlib.util.find_spec(module.__name__) is None:
        raise ValueError(
            f"suite module {module.__name__!r} has no __file__ and is not importable; "
            "the case workers must be able to import it again"
        )
    return _SuiteRef(module.__name__, str(Path(file).resolve()) if file else None)


def _import_ref(ref: _SuiteRef) -> ModuleType:
    """Import a suite in a worker: by name when that gives the same file, else from its file."""
    if ref.module in sys.modules:
        return sys.modules[ref.module]
    if ref.module != "__main__":
        try:
            module = importlib.import_module(ref.module)
        except ImportError:
            module = None
        if module is not None:
            file = getattr(module, "__file__", None)
            if ref.file is None or (file and str(Path(file).resolve()) == ref.file):
                return module
    if ref.file is None:
        raise ImportError(f"cannot import suite module {ref.module!r}")
    return _load_module_from_file(
        ref.module if ref.module != "__main__" else "_suite", Path(ref.file)
    )


def _suite_cases(
    module: ModuleType, backend: str, quick: bool, sizes: Sequence[int] | None
) -> list[Case]:
    """Call the suite's ``cases`` and check the result (also used in the workers)."""
    fn = getattr(module, "cases", None)
    if not callable(fn):
        raise TypeError(f"suite {module.__name__!r} has no callable cases(backend, quick)")
    accepts_sizes = "sizes" in inspect.signature(fn).parameters
    if sizes and accepts_sizes:
        cases = list(fn(backend, quick, sizes=list(sizes)))
    else:
        cases = list(fn(backend, quick))
        if sizes:
            wanted = set(sizes)
            cases = [c for c in cases if c.params.get("size") in wanted]
    names = [c.name for c in cases]
    for c in cases:
        if not isinstance(c, Case):
            raise TypeError(f"cases() must return Case objects, got {type(c).__name__}")
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate case names in suite: {sorted(duplicates)}")
    return cases


# --------------------------------------------------------------------------------------
# Machine description


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    """CPU model from ``/proc/cpuinfo`` ("model name"), else :func:`platform.processor`."""
    for line in _read_text("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def _meminfo_mib(key: str) -> float | None:
    for line in _read_text("/proc/meminfo").splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            parts = value.split()
            if parts and parts[0].isdigit():
                return int(parts[0]) / 1024.0  # kB → MiB
    return None


def available_host_bytes() -> int:
    """Host memory available to new allocations, in bytes (the package's own reading:
    :func:`cbagpu.memory.host_available_memory`)."""
    return host_available_memory()


def _os_name() -> str:
    for line in _read_text("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def machine_info() -> dict[str, Any]:
    """Hostname, CPU model, logical cores, memory, OS and Python of this machine."""
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_total_mib": _meminfo_mib("MemTotal"),
        "memory_available_mib": _meminfo_mib("MemAvailable"),
        "os": _os_name(),
        "platform": platform.platform(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }


def _source_tree_version(module: str) -> str | None:
    """Version of an uninstalled package found on ``sys.path`` (reads ``_version.py``)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        text = _read_text(os.path.join(location, "_version.py"))
        match = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", text)
        if match:
            return f"{match.group(1)} (source tree)"
    return "present (version unknown)"


def package_versions() -> dict[str, str]:
    """Versions of the packages that matter for the numbers (``"absent"`` when missing)."""
    versions: dict[str, str] = {}
    for key, dists in PACKAGES.items():
        found = "absent"
        for dist in dists:
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
            found = version if dist == key else f"{version} ({dist})"
            break
        if found == "absent" and key == "cbagpu":
            found = _source_tree_version("cbagpu") or "absent"
        versions[key] = found
    return versions


def _to_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def gpu_info() -> dict[str, Any]:
    """The GPUs seen by NVML (``pynvml`` from nvidia-ml-py); never raises.

    Returns ``{"available": False, "reason": ...}`` without a GPU or without pynvml, else
    ``available``, ``name`` and ``memory_total_mib`` (device 0), ``driver_version``,
    ``cuda_driver_version`` and ``devices`` (one entry per device).
    """
    try:
        import pynvml
    except Exception as exc:  # ImportError, or a broken install
        return {"available": False, "reason": f"pynvml not importable ({exc})"}
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return {"available": False, "reason": f"NVML init failed: {exc}"}
    try:
        info: dict[str, Any] = {"driver_version": _to_str(pynvml.nvmlSystemGetDriverVersion())}
        try:
            cuda = int(pynvml.nvmlSystemGetCudaDriverVersion())
            info["cuda_driver_version"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        except Exception as exc:
            info["cuda_driver_version"] = f"unknown ({exc})"
        devices = []
        for index in range(int(pynvml.nvmlDeviceGetCount())):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            devices.append(
                {
                    "index": index,
                    "name": _to_str(pynvml.nvmlDeviceGetName(handle)),
                    "memory_total_mib": memory.total / MIB,
                    "memory_free_mib": memory.free / MIB,
                }
            )
        info["devices"] = devices
        info["available"] = bool(devices)
        if devices:
            info["name"] = devices[0]["name"]
            info["memory_total_mib"] = devices[0]["memory_total_mib"]
        return {"available": info.pop("available"), **info}
    except Exception as exc:
        return {"available": False, "reason": f"NVML query failed: {exc}"}
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _slug(text: str, max_len: int = 48) -> str:
    text = re.sub(r"\((r|tm|c)\)", " ", text.lower())
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:max_len].rstrip("-") or "unknown"


def machine_slug(
    machine: Mapping[str, Any],
    gpu: Mapping[str, Any],
    backend: str,
    backend_info: Mapping[str, Any] | None = None,
) -> str:
    """Short machine name for result files.

    The GPU name on cupy (``"nvidia-h100-80gb-hbm3"``), else ``cpu-<cores>c-<cpu model>``
    with ``<cores>`` the cores this process may use.
    """
    if backend == "cupy":
        name = gpu.get("name") or (backend_info or {}).get("device_name") or "gpu-unknown"
        return _slug(str(name))
    model = re.sub(r"@.*$", "", str(machine.get("cpu_model", "unknown")))
    model = re.sub(r"\b(cpu|processor)\b", " ", model, flags=re.IGNORECASE)
    return f"cpu-{machine.get('usable_cores', 0)}c-{_slug(model, 40)}"


# --------------------------------------------------------------------------------------
# Backends


def resolve_backend(name: str) -> str:
    """Map ``"auto"`` to ``"cupy"`` or ``"numpy"`` (``cbagpu.backend.get_backend`` decides
    when importable, else CuPy with at least one device wins)."""
    if name in ("numpy", "cupy"):
        return name
    if name != "auto":
        raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")
    try:
        from cbagpu.backend import get_backend

        return str(get_backend("auto").name)
    except Exception:
        pass
    if importlib.util.find_spec("cupy") is None:
        return "numpy"
    try:
        import cupy

        return "cupy" if cupy.cuda.runtime.getDeviceCount() > 0 else "numpy"
    except Exception:
        return "numpy"


class _CupyPeakTracker:
    """Installs an allocator around CuPy's default pool that records its high-water marks."""

    def __init__(self) -> None:
        import cupy

        self._cupy = cupy
        self.pool = cupy.get_default_memory_pool()
        self.peak_total = int(self.pool.total_bytes())
        self.peak_used = int(self.pool.used_bytes())
        cupy.cuda.set_allocator(self._malloc)

    def _malloc(self, size: int) -> Any:
        memory = self.pool.malloc(size)
        total = self.pool.total_bytes()
        used = self.pool.used_bytes()
        if total > self.peak_total:
            self.peak_total = int(total)
        if used > self.peak_used:
            self.peak_used = int(used)
        return memory

    def sync(self) -> None:
        """Wait for all work on the current device."""
        self._cupy.cuda.Device().synchronize()

    def info(self) -> dict[str, Any]:
        """CuPy, CUDA runtime and device facts of this worker."""
        cupy = self._cupy
        out: dict[str, Any] = {"name": "cupy", "cupy": cupy.__version__}
        with contextlib.suppress(Exception):
            out["cuda_runtime"] = int(cupy.cuda.runtime.runtimeGetVersion())
        with contextlib.suppress(Exception):
            device = cupy.cuda.Device()
            props = cupy.cuda.runtime.getDeviceProperties(device.id)
            out["device_id"] = int(device.id)
            out["device_name"] = _to_str(props["name"])
            free, total = cupy.cuda.runtime.memGetInfo()
            out["device_memory_total_mib"] = total / MIB
            out["device_memory_free_mib_at_start"] = free / MIB
        return out


def _no_sync() -> None:
    """Nothing to wait for on the host backend."""


def _maxrss_mib() -> float:
    """``ru_maxrss`` of this process in MiB (KiB on Linux, bytes on macOS).

    On Linux this value survives ``execve``: a spawned worker starts with the RSS high-water
    mark of the process it was forked (or vforked) from, here the harness.
    """
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / MIB if sys.platform == "darwin" else rss / 1024.0


def _vm_hwm_mib() -> float | None:
    """``VmHWM`` of ``/proc/self/status`` in MiB: the RSS high-water mark of this process's
    own address space (reset by ``execve``), or ``None`` where there is no procfs."""
    for line in _read_text("/proc/self/status").splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) / 1024.0
    return None


def _peak_host_mib() -> float:
    """Peak host memory of this process: ``VmHWM`` where available, else ``ru_maxrss``."""
    hwm = _vm_hwm_mib()
    return hwm if hwm is not None else _maxrss_mib()


# --------------------------------------------------------------------------------------
# The worker (runs in a spawned process)


def _numbers(value: Any) -> dict[str, Any]:
    """The JSON-simple items of a mapping returned by a timed call (else ``{}``)."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): _jsonable(v) for k, v in value.items()}


def _method(warmup: int) -> dict[str, Any]:
    """METHOD as it applies to a run with ``warmup`` warm-up runs."""
    if warmup == 1:
        return METHOD
    return {**METHOD, "warmup_runs": 0,
            "warmup_note": "no warm-up run (--warmup 0): the timed runs include first-call "
            "costs (kernel compilation, caches)"}


def _measure_case(case: Case, backend: str, repeat: int, warmup: int = 1) -> dict[str, Any]:
    """Set up, warm up (``warmup`` uncounted runs, 0 or 1) and time one case in this
    process; never raises for case errors."""
    record: dict[str, Any] = {"status": "ok"}
    tracker = _CupyPeakTracker() if backend == "cupy" else None
    sync = tracker.sync if tracker is not None else _no_sync
    record["backend_info"] = tracker.info() if tracker is not None else {"name": backend}
    record["host_baseline_mib"] = _peak_host_mib()
    times: list[float] = []
    stage = "setup"
    try:
        t0 = time.perf_counter()
        state = case.setup() if case.setup is not None else None
        sync()
        record["setup_s"] = time.perf_counter() - t0
        if tracker is not None:
            record["device_after_setup_used_mib"] = tracker.pool.used_bytes() / MIB
        extra: dict[str, Any] = {}
        for index in range(1 - warmup, repeat + 1):
            stage = "warm-up" if index == 0 else f"timed run {index}"
            gc.collect()
            t0 = time.perf_counter()
            out = case.run(state)
            sync()
            elapsed = time.perf_counter() - t0
            extra = _numbers(out)
            del out
            if index == 0:
                record["warmup_s"] = elapsed
            else:
                times.append(elapsed)
        record["extra"] = extra
    except SkipCase as exc:
        record["status"] = "skipped"
        record["skip_reason"] = str(exc) or f"skipped during {stage}"
    except BaseException as exc:  # record, and let the harness go on with the next case
        record["status"] = "error"
        record["error"] = f"{type(exc).__name__}: {exc} (during {stage})"
        record["traceback"] = traceback.format_exc()
    record["times_s"] = times
    record["peak_host_mib"] = _peak_host_mib()
    record["ru_maxrss_mib"] = _maxrss_mib()
    if tracker is not None:
        record["peak_device_mib"] = tracker.peak_total / MIB
        record["peak_device_used_mib"] = tracker.peak_used / MIB
    return record


def _case_worker(
    conn: Any,
    ref: _SuiteRef,
    backend: str,
    quick: bool,
    sizes: list[int] | None,
    case_name: str,
    repeat: int,
    warmup: int = 1,
) -> None:
    """Entry point of a spawned worker: find the case again, measure it, send the record."""
    try:
        module = _import_ref(ref)
        cases = {c.name: c for c in _suite_cases(module, backend, quick, sizes)}
        if case_name not in cases:
            raise LookupError(f"case {case_name!r} not produced by cases() in the worker")
        record = _measure_case(cases[case_name], backend, repeat, warmup)
    except BaseException as exc:
        record = {
            "status": "error",
            "error": f"{type(exc).__name__}: {exc} (in the worker, before the case ran)",
            "traceback": traceback.format_exc(),
            "peak_host_mib": _peak_host_mib(),
        }
    try:
        conn.send(record)
    finally:
        conn.close()


def _run_in_subprocess(
    ref: _SuiteRef,
    backend: str,
    quick: bool,
    sizes: list[int] | None,
    case_name: str,
    repeat: int,
    timeout: float | None,
    warmup: int = 1,
) -> dict[str, Any]:
    """Run one case in a fresh spawned process and return its record."""
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=_case_worker,
        args=(sender, ref, backend, quick, sizes, case_name, repeat, warmup),
        name=f"bench-{case_name}",
    )
    process.start()
    sender.close()
    deadline = None if timeout is None else time.monotonic() + timeout
    record: dict[str, Any] | None = None
    timed_out = False
    try:
        while True:
            if receiver.poll(0.2):
                with contextlib.suppress(EOFError, OSError):
                    record = receiver.recv()
                break
            if not process.is_alive():
                if receiver.poll(0):
                    with contextlib.suppress(EOFError, OSError):
                        record = receiver.recv()
                break
            if deadline is not None and time.monotonic() > deadline:
                timed_out = True
                break
    finally:
        # A worker that sent its record gets time to exit (CUDA teardown); others do not.
        process.join(2.0 if timed_out or record is None else 60.0)
        if process.is_alive():
            process.terminate()
            process.join(5.0)
        if process.is_alive():
            process.kill()
            process.join()
        receiver.close()
    if timed_out:
        return {"status": "error", "error": f"timed out after {timeout:g} s (worker killed)"}
    if record is None:
        code = process.exitcode
        hint = " (killed: out of memory?)" if code == -9 else ""
        return {"status": "error", "error": f"worker process died with exit code {code}{hint}"}
    return record


# --------------------------------------------------------------------------------------
# Records, results, output


def _jsonable(value: Any) -> Any:
    """Turn a value into plain JSON (non-finite floats → ``None``, unknown objects → str)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    item = getattr(value, "item", None)  # NumPy / CuPy scalars
    if callable(item) and getattr(value, "ndim", 1) == 0:
        with contextlib.suppress(Exception):
            return _jsonable(item())
    return str(value)


def _finish_record(record: dict[str, Any], case: Case) -> None:
    """Add statistics and rates to a case record, in place."""
    times = [float(t) for t in record.get("times_s", [])]
    if times:
        median = statistics.median(times)
        record["median_s"] = median
        record["min_s"] = min(times)
        record["max_s"] = max(times)
        record["mean_s"] = statistics.fmean(times)
        record["stdev_s"] = statistics.stdev(times) if len(times) > 1 else 0.0
        if case.voxels and median > 0:
            record["voxels_per_s"] = case.voxels / median
    if case.voxels and record.get("peak_device_mib") is not None:
        record["device_bytes_per_voxel"] = record["peak_device_mib"] * MIB / case.voxels
        record["device_used_bytes_per_voxel"] = record["peak_device_used_mib"] * MIB / case.voxels


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as strict JSON (non-finite numbers as null, NumPy scalars as Python
    numbers) to ``path`` atomically, with the package's writer
    (:func:`cbagpu.io.atomic.write_json_atomic`)."""
    _write_json_atomic(path, _jsonable(data), indent=2, mkdir=True)


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _case_notes(record: Mapping[str, Any]) -> str:
    status = record.get("status")
    if status == "error":
        first = str(record.get("error", "")).strip().splitlines()
        text = first[0] if first else "error"
        return "ERROR " + (text if len(text) <= 90 else text[:87] + "...")
    if status == "skipped":
        return f"skipped: {record.get('skip_reason', '')}"
    parts = []
    if record.get("voxels_per_s"):
        parts.append(f"{record['voxels_per_s']:.3g} vox/s")
    if record.get("device_bytes_per_voxel"):
        parts.append(f"{record['device_bytes_per_voxel']:.1f} dev B/vox")
    if record.get("notes"):
        parts.append(str(record["notes"]))
    return "; ".join(parts)


def format_table(result: Mapping[str, Any]) -> str:
    """An aligned text table of a result: case, median, min, max, peak memories, notes."""
    headers = ("case", "median s", "min s", "max s", "peak host MiB", "peak dev MiB", "notes")
    rows = [
        (
            str(r.get("name", "?")),
            _fmt(r.get("median_s"), ".4f"),
            _fmt(r.get("min_s"), ".4f"),
            _fmt(r.get("max_s"), ".4f"),
            _fmt(r.get("peak_host_mib"), ".1f"),
            _fmt(r.get("peak_device_mib"), ".1f"),
            _case_notes(r),
        )
        for r in result.get("cases", [])
    ]
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        numbers = [c.rjust(w) for c, w in zip(cells[1:-1], widths[1:-1], strict=True)]
        return "  ".join([first, *numbers, cells[-1]]).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def run_suite(
    suite: str | ModuleType,
    backend: str = "auto",
    repeat: int = 3,
    out_dir: str | Path | None = None,
    *,
    quick: bool = False,
    sizes: Sequence[int] | None = None,
    select: str | None = None,
    timeout: float | None = None,
    echo: bool = True,
    command: Sequence[str] | None = None,
    warmup: int = 1,
) -> tuple[dict[str, Any], Path]:
    """Run every case of a suite, each in a fresh process, and write the JSON result.

    Args:
        suite: Suite name (``"generate"``), dotted module name, ``.py`` path or module
            object.  A module object must have a ``__file__`` (workers re-import it).
        backend: ``"numpy"``, ``"cupy"`` or ``"auto"`` (resolved once, here).
        repeat: Timed runs per case, after one uncounted warm-up run.
        out_dir: Folder for ``SUITE-MACHINE.json``; default ``benchmarks/results``.
        quick: Passed to the suite's ``cases``: small sizes only.
        sizes: Passed to ``cases(..., sizes=...)`` or used to filter on ``params["size"]``.
        select: Keep only the cases whose name contains this substring.
        timeout: Seconds after which a case's worker is killed (recorded as an error).
        echo: Print progress lines and the final table.
        command: The command line to record (default: ``sys.argv``).
        warmup: Uncounted warm-up runs before the timed ones: 1 (default) or 0 (for
            single-shot cases too big to run twice; the timed run then includes first-call
            costs such as kernel compilation, and the result says so).

    Returns:
        The result dictionary (as written) and the path of the JSON file.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    if warmup not in (0, 1):
        raise ValueError(f"warmup must be 0 or 1, got {warmup!r}")
    started = time.time()
    module = load_suite(suite)
    name = suite_name(module)
    ref = _suite_ref(module)
    resolved = resolve_backend(backend)
    if resolved == "cupy" and importlib.util.find_spec("cupy") is None:
        raise RuntimeError("backend 'cupy' requested but CuPy is not installed")
    size_list = [int(s) for s in sizes] if sizes else None
    machine = machine_info()
    gpu = gpu_info()
    packages = package_versions()
    cases = _suite_cases(module, resolved, quick, size_list)
    if select:
        cases = [c for c in cases if select in c.name]
    if echo:
        print(
            f"suite {name}: {len(cases)} case(s), backend {resolved}, repeat {repeat} "
            f"(+{warmup} warm-up), {machine['cpu_model']}, {machine['usable_cores']} cores"
            + (f", {gpu.get('name')}" if gpu.get("available") else ""),
            flush=True,
        )
    doc = (module.__doc__ or "").strip().splitlines()
    out_folder = Path(out_dir if out_dir is not None else DEFAULT_OUT_DIR)
    records: list[dict[str, Any]] = []
    backend_info: dict[str, Any] = {}
    written: Path | None = None

    def build(complete: bool) -> tuple[dict[str, Any], Path]:
        slug = machine_slug(machine, gpu, resolved, backend_info)
        result: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "suite": name,
            "suite_module": module.__name__,
            "description": doc[0] if doc else "",
            "created_utc": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "complete": complete,
            "command": list(command) if command is not None else list(sys.argv),
            "backend": resolved,
            "backend_requested": backend,
            "backend_info": backend_info or {"name": resolved},
            "repeat": repeat,
            "quick": quick,
            "sizes": size_list,
            "select": select,
            "method": _method(warmup),
            "machine_slug": slug,
            "machine": machine,
            "gpu": gpu,
            "packages": packages,
            "targets": _jsonable(getattr(module, "TARGETS", None)),
            "cases": records,
            "counts": {
                status: sum(r["status"] == status for r in records)
                for status in ("ok", "error", "skipped")
            },
        }
        summarize = getattr(module, "summarize", None)
        if complete and callable(summarize):
            try:
                result["summary"] = _jsonable(summarize(result))
            except Exception as exc:
                result["summary"] = {"error": f"{type(exc).__name__}: {exc}"}
        result["total_wall_s"] = time.time() - started
        return result, out_folder / f"{name}-{slug}.json"

    for index, case in enumerate(cases, start=1):
        record: dict[str, Any] = {
            "name": case.name,
            "params": _jsonable(case.params),
            "voxels": case.voxels,
            "notes": case.notes,
        }
        t0 = time.perf_counter()
        if case.skip:
            record.update(status="skipped", skip_reason=case.skip)
        else:
            record.update(
                _run_in_subprocess(ref, resolved, quick, size_list, case.name, repeat, timeout,
                                   warmup)
            )
        record["wall_s"] = time.perf_counter() - t0
        info = record.pop("backend_info", None)
        if info and not backend_info:
            backend_info = info
        _finish_record(record, case)
        records.append(record)
        if echo:
            summary = (
                f"ok, median {record['median_s']:.4f} s, peak host "
                f"{record.get('peak_host_mib', 0.0):.0f} MiB"
                if "median_s" in record
                else _case_notes(record)
            )
            print(f"[{index}/{len(cases)}] {case.name}: {summary}", flush=True)
        if index < len(cases):  # a partial file ("complete": false) survives a killed run
            partial, path = build(complete=False)
            if written is not None and written != path:
                written.unlink(missing_ok=True)
            write_json_atomic(path, partial)
            written = path
    result, path = build(complete=True)
    if written is not None and written != path:
        written.unlink(missing_ok=True)
    write_json_atomic(path, result)
    if echo:
        print()
        print(format_table(result))
        print(f"\nwrote {path}", flush=True)
    return result, path


# --------------------------------------------------------------------------------------
# Command line


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run cbagpu benchmark suites; results go to benchmarks/results/*.json.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the suites (benchmarks/suite_*.py)")
    sub.add_parser("budget", help="the GPU route's cost account on the CPU, against its "
                   "budgets (see benchmarks/budget.py; --json, --stages, --seconds)")
    run = sub.add_parser("run", help="run one suite, each case in a fresh process")
    run.add_argument("suite", help="suite name (see `list`), dotted module or .py path")
    run.add_argument("--backend", choices=BACKENDS, default="auto")
    run.add_argument(
        "--repeat", type=_positive_int, default=3, help="timed runs per case (after 1 warm-up)"
    )
    run.add_argument("--sizes", type=int, nargs="+", help="edge lengths (voxels) to run")
    run.add_argument("--quick", action="store_true", help="small sizes only (a smoke test)")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help="output folder")
    run.add_argument("-k", "--filter", dest="select", help="only cases whose name contains this")
    run.add_argument("--timeout", type=float, default=None, help="seconds per case (kill after)")
    run.add_argument("--warmup", type=int, choices=(0, 1), default=1,
                     help="uncounted warm-up runs per case (0 for cases too big to run twice)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns 0, 1 when a case failed, 2 on a harness error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["budget"]:
        from benchmarks.budget import main as budget_main

        return budget_main(argv[1:])
    args = _build_parser().parse_args(argv)
    if args.command == "list":
        for name, doc in list_suites().items():
            print(f"{name:<16} {doc}")
        return 0
    try:
        result, _ = run_suite(
            args.suite,
            backend=args.backend,
            repeat=args.repeat,
            out_dir=args.out,
            quick=args.quick,
            sizes=args.sizes,
            select=args.select,
            timeout=args.timeout,
            command=["python", "-m", "benchmarks", *argv],
            warmup=args.warmup,
        )
    except (ImportError, RuntimeError, TypeError, ValueError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 1 if result["counts"]["error"] else 0
