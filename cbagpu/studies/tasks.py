"""Task runner for studies: one task per realization-and-analysis, run on Dask, resumable.

A study (a parameter sweep, a validation) is a list of :class:`Task` objects. Each task is a
module-level function with picklable keyword arguments that returns a JSON-serialisable
dict. :func:`run_tasks` runs the tasks that a :class:`TaskStore` does not hold yet,

* in the calling process (``workers=1``, no Dask at all),
* on a ``dask.distributed`` ``LocalCluster`` sized to the machine (default; processes with
  one thread each, or ``dask_cuda.LocalCUDACluster`` with one worker per GPU when the tasks
  use the CuPy backend and ``dask_cuda`` imports), or
* on a running cluster (``scheduler="tcp://host:8786"``),

and the *calling* process saves each result as soon as it arrives (one JSON file per task,
written to a temporary file and moved in place with :func:`os.replace`). An interrupted or
partly failed study therefore keeps what finished, and the same call again computes only
what is missing (issue 6, item 4).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cbagpu.errors import (
    BackendUnavailableError,
    InsufficientMemoryError,
    InvalidInputError,
    TasksFailedError,
)
from cbagpu.io.atomic import write_text_atomic
from cbagpu.memory import usable_cores

__all__ = ["Task", "TaskStore", "local_cluster", "run_tasks", "validate_key", "usable_cores"]

_KEY_RE = re.compile(r"[A-Za-z0-9_=,+\-][A-Za-z0-9._=,+\-]*")
_RESERVED = frozenset({"spec"})
_MAX_KEY = 200

ProgressFn = Callable[[int, int, "float | None"], None]


def validate_key(key: str) -> str:
    """Return ``key`` when it can be a task key (a file name), else raise ValueError.

    Allowed: letters, digits and ``. _ = , + -``; not starting with ``.``; at most 200
    characters; not ``spec`` (the store keeps its settings in ``spec.json``).
    """
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"task key must be a non-empty string, got {key!r}")
    if len(key) > _MAX_KEY:
        raise InvalidInputError(f"task key {key[:40]!r}... is longer than {_MAX_KEY} characters")
    if not _KEY_RE.fullmatch(key):
        raise InvalidInputError(
            f"task key {key!r} may only hold letters, digits and ._=,+- "
            "(and must not start with '.')"
        )
    if key in _RESERVED:
        raise InvalidInputError(f"task key {key!r} is reserved")
    return key


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn(**kwargs)`` -> JSON-serialisable dict, stored under ``key``.

    ``fn`` must be a module-level function (it is pickled to Dask workers).
    """

    key: str
    fn: Callable[..., dict]
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_key(self.key)
        if not callable(self.fn):
            raise InvalidInputError(f"task {self.key!r}: fn is not callable")
        if not isinstance(self.kwargs, Mapping):
            raise InvalidInputError(f"task {self.key!r}: kwargs must be a mapping")


def _json_roundtrip(obj: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(obj))
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"{what} is not JSON-serialisable: {e}") from None




#: Key of the JSON object that stands for a non-finite float in a task file
#: (``{"__float__": "inf"}``): task files are strict JSON, and a resumed study still gets
#: the infinities and NaNs its tasks returned.
_FLOAT_TAG = "__float__"


def _encode_floats(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return {_FLOAT_TAG: repr(obj)}
    if isinstance(obj, dict):
        return {k: _encode_floats(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode_floats(v) for v in obj]
    return obj


def _decode_float(obj: dict) -> Any:
    if len(obj) == 1 and _FLOAT_TAG in obj and isinstance(obj[_FLOAT_TAG], str):
        return float(obj[_FLOAT_TAG])
    return obj


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Paths (``a.b.c``) where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            p = f"{prefix}.{k}" if prefix else str(k)
            if k not in a or k not in b:
                out.append(p)
            else:
                out.extend(_diff(a[k], b[k], p))
        return out
    return [] if a == b else [prefix or "<spec>"]


def _short(v: Any) -> str:
    s = json.dumps(v)
    return s if len(s) <= 60 else s[:57] + "..."


class TaskStore:
    """Finished task results, one JSON file per task: ``ROOT/<key>.json`` (atomic writes).

    ``ROOT/spec.json`` holds the settings that define the results (:meth:`check_spec`).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise InvalidInputError(f"{self.root} exists and is not a directory")
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / f"{validate_key(key)}.json"

    def done(self, key: str) -> bool:
        """True when the result of ``key`` is stored."""
        return self._path(key).is_file()

    def load(self, key: str) -> dict:
        """The stored result of ``key`` (KeyError when there is none)."""
        p = self._path(key)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyError(f"no stored result for task {key!r} in {self.root}") from None
        return json.loads(text, object_hook=_decode_float)

    def save(self, key: str, result: dict) -> None:
        """Store ``result`` (a JSON-serialisable dict) under ``key``: temp file + os.replace."""
        if not isinstance(result, dict):
            raise InvalidInputError(f"task {key!r} returned {type(result).__name__}, not a dict")
        try:  # strict JSON: non-finite numbers are tagged, and come back as floats
            text = json.dumps(_encode_floats(result), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise InvalidInputError(
                f"result of task {key!r} is not JSON-serialisable: {e}") from None
        write_text_atomic(self._path(key), text)

    def keys(self) -> list[str]:
        """Keys of all stored results (sorted)."""
        return sorted(p.stem for p in self.root.glob("*.json") if p.stem not in _RESERVED)

    def check_spec(self, spec: dict) -> None:
        """Write ``ROOT/spec.json`` on first use; on a later run refuse a different spec.

        Values are compared after a JSON round trip (tuples equal lists). A different spec
        raises ValueError naming the differing keys.
        """
        if not isinstance(spec, dict):
            raise InvalidInputError("spec must be a dict")
        new = _json_roundtrip(spec, "spec")
        p = self.root / "spec.json"
        if p.is_file():
            old = json.loads(p.read_text(encoding="utf-8"))
            diff = _diff(old, new)
            if diff:
                parts = []
                for d in diff[:8]:
                    o, n = _lookup(old, d), _lookup(new, d)
                    parts.append(f"{d} (stored {o}, now {n})")
                more = f" and {len(diff) - 8} more" if len(diff) > 8 else ""
                raise InvalidInputError(
                    f"{self.root} holds a study with other settings: {', '.join(parts)}{more}; "
                    "use another directory or the same settings"
                )
            return
        write_text_atomic(p, json.dumps(new, indent=2, sort_keys=True, allow_nan=False))


def _lookup(obj: Any, path: str) -> str:
    if path == "<spec>":
        return _short(obj)
    cur = obj
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return "<absent>"
    return _short(cur)


#: Errors that are not one task's failure: re-raised as they are instead of being collected
#: into a TasksFailedError.
_NOT_A_TASK_FAILURE = (InvalidInputError, BackendUnavailableError, InsufficientMemoryError)


def _uses_cupy(tasks: Sequence[Task]) -> bool:
    """Whether any task asks for the GPU backend (by name, or "auto" with a GPU here)."""
    for t in tasks:
        b = t.kwargs.get("backend")
        name = getattr(b, "name", b)
        # backend identity: a task's backend is a name string resolved on the worker; it is
        # read here, without constructing a GPU backend in the scheduling process
        if name == "cupy":
            return True
        if name == "auto":
            from cbagpu.backend import gpu_available

            if gpu_available():
                return True
    return False


class _Progress:
    """Counts finished tasks and estimates the time left from this run's completion rate."""

    def __init__(self, fn: ProgressFn | None, done: int, total: int) -> None:
        self.fn, self.done, self.total = fn, done, total
        self.start_done = done
        self.t0 = time.perf_counter()
        if fn is not None:
            fn(done, total, None if done < total else 0.0)

    def step(self) -> None:
        self.done += 1
        if self.fn is None:
            return
        ran = self.done - self.start_done
        left = self.total - self.done
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / ran * left if ran > 0 else None
        self.fn(self.done, self.total, eta)


def _check_result(key: str, result: Any) -> dict:
    if not isinstance(result, dict):
        raise TypeError(f"task {key!r} returned {type(result).__name__}, not a dict")
    return result


def open_store(out_dir: str | os.PathLike[str] | None, spec: dict) -> TaskStore | None:
    """The task store ``out_dir/tasks`` of a study, its settings checked against ``spec``
    (everything that defines the results); None without ``out_dir``."""
    if out_dir is None:
        return None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{out} exists and is not a directory")
    store = TaskStore(out / "tasks")
    store.check_spec(spec)
    return store


def run_tasks(
    tasks: Sequence[Task],
    store: TaskStore | None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, dict]:
    """Run the tasks the store does not hold yet; return ``key -> result`` for ALL tasks.

    Parameters
    ----------
    tasks : the study's tasks (unique keys).
    store : where finished results live; ``None`` keeps nothing (every task is computed).
    scheduler : address of a running ``dask.distributed`` scheduler; tasks are sent there.
    workers : ``None`` -> a LocalCluster sized to the machine (processes, one thread each);
        for tasks on CuPy ``dask_cuda.LocalCUDACluster`` (one worker per GPU) when
        dask_cuda imports, else the in-process loop;
        ``n > 1`` -> a LocalCluster of ``n`` processes; ``1`` -> a plain in-process loop.
        Give either ``scheduler`` or ``workers``, not both.
    progress : called as ``progress(done, total, seconds_left_or_None)`` at the start and
        after every finished task (``done`` counts stored results too).

    Results are saved by this process as each task finishes. A task that raises does not stop
    the others; once all have finished, a RuntimeError names the failed keys (a rerun
    resumes). An interruption (KeyboardInterrupt, an exception from ``progress``) cancels
    what is running and propagates; saved results stay.
    """
    tasks = list(tasks)
    seen: set[str] = set()
    for t in tasks:
        if not isinstance(t, Task):
            raise InvalidInputError(f"run_tasks expects Task objects, got {type(t).__name__}")
        if t.key in seen:
            raise InvalidInputError(f"duplicate task key {t.key!r}")
        seen.add(t.key)
    if scheduler is not None and workers is not None:
        raise InvalidInputError("give either scheduler (a running cluster) or workers, not both")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise InvalidInputError(f"workers must be an integer >= 1, got {workers!r}")

    results: dict[str, dict] = {}
    pending: list[Task] = []
    for t in tasks:
        if store is not None and store.done(t.key):
            results[t.key] = store.load(t.key)
        else:
            pending.append(t)
    prog = _Progress(progress, len(results), len(tasks))
    if not pending:
        return {t.key: results[t.key] for t in tasks}

    failed: dict[str, str] = {}

    def finish(key: str, result: Any) -> None:
        try:
            # computed results are returned as a later run would load them (tuples -> lists)
            result = _json_roundtrip(_check_result(key, result), f"result of task {key!r}")
            if store is not None:
                store.save(key, result)
        except (TypeError, ValueError) as e:
            failed[key] = str(e)
        else:
            results[key] = result
        prog.step()

    if workers is None and scheduler is None and _uses_cupy(pending) and not _have_dask_cuda():
        # several processes on one GPU only compete for it (and each holds a CUDA context):
        # without dask-cuda the GPU tasks run one after the other in this process
        workers = 1
    if workers == 1:
        for t in pending:
            try:
                r = _call(t.fn, t.kwargs)
            except _NOT_A_TASK_FAILURE:
                raise  # bad input or a missing backend: every task would fail the same way
            except Exception as e:  # noqa: BLE001 - reported below, others go on
                failed[t.key] = f"{type(e).__name__}: {e}"
                prog.step()
                continue
            finish(t.key, r)
    else:
        _run_dask(pending, scheduler, workers, finish, failed, prog)

    if failed:
        lines = "; ".join(f"{k}: {failed[k]}" for k in sorted(failed)[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        raise TasksFailedError(
            f"{len(failed)} of {len(tasks)} tasks failed: {', '.join(sorted(failed))}"
            f" -- {lines}{more}; finished results are kept, run again to resume",
            failed,
        )
    return {t.key: results[t.key] for t in tasks}


def _have_dask_cuda() -> bool:
    import importlib.util

    return importlib.util.find_spec("dask_cuda") is not None


#: Key under which every task result records the cbagpu version that computed it.
VERSION_KEY = "cbagpu_version"


def _call(fn: Callable[..., dict], kwargs: dict) -> Any:
    """Run one task (on a worker or in-process); a dict result gets :data:`VERSION_KEY`."""
    result = fn(**kwargs)
    if isinstance(result, dict):
        from cbagpu import __version__

        result.setdefault(VERSION_KEY, __version__)
    return result


def result_versions(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The cbagpu versions that computed ``results`` (sorted; "unknown" for results stored
    before versions were recorded). More than one means a study was resumed after an
    upgrade: its table mixes versions."""
    return sorted({str(r.get(VERSION_KEY, "unknown")) for r in results.values()})


def mixed_versions_message(versions: Sequence[str]) -> str | None:
    """A warning for a study whose tasks were computed by several cbagpu versions."""
    if len(versions) <= 1:
        return None
    return (f"the tasks of this study were computed by cbagpu versions {', '.join(versions)} "
            "(resumed after an upgrade); rerun in a new directory for one version")


#: Seconds to wait for a Dask scheduler to answer before the study is refused.
SCHEDULER_TIMEOUT = 10.0


def connect(scheduler: str, timeout: float | None = None) -> Any:
    """A :class:`distributed.Client` of the scheduler at ``scheduler``; one that does not
    answer within ``timeout`` seconds is bad input (:class:`InvalidInputError`, naming the
    address), not a traceback after the library's 30 s default (``timeout`` defaults to
    :data:`SCHEDULER_TIMEOUT`)."""
    timeout = SCHEDULER_TIMEOUT if timeout is None else float(timeout)
    try:
        from distributed import Client
    except ImportError as e:  # pragma: no cover - dask is an optional extra
        raise ImportError("running studies on Dask needs the dask extra "
                          "(pip install 'cbagpu[dask]')") from e
    try:
        return Client(scheduler, set_as_default=False, timeout=timeout)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"cannot reach a Dask scheduler at {scheduler!r} within {timeout:g} s "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'})"
        ) from None


def check_scheduler(scheduler: str | None, timeout: float | None = None) -> None:
    """Refuse an unreachable scheduler before a study writes anything (None: local)."""
    if scheduler is not None:
        connect(scheduler, timeout).close()


def _run_dask(
    pending: list[Task],
    scheduler: str | None,
    workers: int | None,
    finish: Callable[[str, Any], None],
    failed: dict[str, str],
    prog: _Progress,
) -> None:
    import logging

    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as e:  # pragma: no cover - dask is an optional extra
        raise ImportError(
            "running studies on Dask needs the dask extra (pip install 'cbagpu[dask]'); "
            "use workers=1 for the in-process loop"
        ) from e

    cluster = None
    if scheduler is None:
        cluster = local_cluster(pending, workers, logging.ERROR, LocalCluster)
        client = Client(cluster, set_as_default=False)
    else:
        client = connect(scheduler)
    try:
        run_id = uuid.uuid4().hex[:8]
        futures = {}
        for t in pending:
            # kwargs travel as one dict: names like "key" or "workers" must not reach submit()
            f = client.submit(_call, t.fn, dict(t.kwargs), key=f"cbagpu-{t.key}-{run_id}",
                              pure=False)
            futures[f.key] = (t.key, f)
        try:
            for fut in as_completed([f for _, f in futures.values()], loop=client.loop):
                key = futures[fut.key][0]
                if fut.status == "error":
                    exc = fut.exception()
                    if isinstance(exc, _NOT_A_TASK_FAILURE):
                        raise exc
                    failed[key] = f"{type(exc).__name__}: {exc}"
                    prog.step()
                elif fut.status == "cancelled":
                    failed[key] = "cancelled (worker lost or cluster shut down)"
                    prog.step()
                else:
                    try:
                        r = fut.result()
                    except Exception as e:  # noqa: BLE001
                        failed[key] = f"{type(e).__name__}: {e}"
                        prog.step()
                        continue
                    finish(key, r)
                fut.release()
        except BaseException:
            client.cancel([f for _, f in futures.values()])
            raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


#: Dask's nanny default of MALLOC_TRIM_THRESHOLD_ (distributed.nanny.pre-spawn-environ).
_DASK_TRIM_DEFAULT = "65536"


def worker_environ() -> dict[str, Any]:
    """The environment Dask's nanny gives the local worker processes: its defaults with
    ``MALLOC_TRIM_THRESHOLD_`` removed (None).  That setting turns off glibc's dynamic mmap
    threshold, so every array above 128 KiB is mapped afresh and page-faulted on each
    allocation: a sweep task (100^3 at 40 nm) ran 34 % slower with it, and
    benchmarks/suite_sweep.py had measured the tasks 24 % slower in a worker than
    in-process.  Workers that users start themselves (``dask-worker``) keep Dask's default
    unless a Dask config file sets ``distributed.nanny.pre-spawn-environ.
    MALLOC_TRIM_THRESHOLD_: null`` (README, "Running on a cluster")."""
    import dask

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    env["MALLOC_TRIM_THRESHOLD_"] = None  # the nanny skips None values
    return env


def local_cluster(pending: list[Task], workers: int | None, log_level: int, local_cls: Any):
    """Start a local Dask cluster sized for ``pending``, its workers with glibc's default
    heap trimming (see :func:`worker_environ`).

    :func:`run_tasks` starts one per call without a scheduler; callers running several
    passes of tasks (:func:`cbagpu.measure.chunked.describe_chunked`) start one for all.

    Parameters
    ----------
    pending : list of Task
        The tasks to run: a cluster of CuPy tasks is a ``dask_cuda.LocalCUDACluster``
        (one worker per GPU) when dask-cuda is installed and ``workers`` is None.
    workers : int or None
        Worker processes (one thread each), at most ``len(pending)`` and at least 1;
        None: :func:`usable_cores`.
    log_level : int
        The ``logging`` level below which the cluster's log messages are silenced.
    local_cls : type
        The cluster class, ``distributed.LocalCluster`` (a parameter so that the caller
        imports distributed, and tests can substitute it).

    Returns
    -------
    distributed.LocalCluster or dask_cuda.LocalCUDACluster
        The running cluster; the caller closes it.
    """
    import dask

    # A nanny started earlier in this process (any LocalCluster) leaves Dask's value in
    # os.environ, which the new workers would inherit: hide it while they start.
    inherited = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    if inherited == _DASK_TRIM_DEFAULT:
        del os.environ["MALLOC_TRIM_THRESHOLD_"]
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ()}):
            return _start_local_cluster(pending, workers, log_level, local_cls)
    finally:
        if inherited is not None:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = inherited


def _start_local_cluster(pending: list[Task], workers: int | None, log_level: int,
                         local_cls: Any):
    if workers is None and _uses_cupy(pending):
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            LocalCUDACluster = None  # noqa: N806
        if LocalCUDACluster is not None:
            return LocalCUDACluster(
                threads_per_worker=1, dashboard_address=":0", silence_logs=log_level
            )
    n = workers if workers is not None else usable_cores()
    n = max(1, min(n, len(pending)))
    return local_cls(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=log_level,
    )
