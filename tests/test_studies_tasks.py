"""Task runner (issue 6, items 3-4): in-process vs Dask, resume, spec, keys.

Dask start-ups cost seconds: one LocalCluster created by ``run_tasks(workers=2)`` itself and
one module-scoped LocalCluster (2 processes) reached through ``scheduler=``.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from cbagpu import __version__
from cbagpu.studies.tasks import (
    VERSION_KEY,
    Task,
    TaskStore,
    mixed_versions_message,
    result_versions,
    run_tasks,
    validate_key,
)


# ------------------------------------------------------------------ task functions (picklable)
def _work(seed: int, n: int, marker_dir: str, key: str, fail_flag: str = "",
          sleep: float = 0.0) -> dict:
    """Deterministic result from the seed; writes one marker file per call."""
    Path(marker_dir).mkdir(parents=True, exist_ok=True)
    (Path(marker_dir) / f"{key}.{uuid.uuid4().hex}").write_text(str(os.getpid()))
    if sleep:
        time.sleep(sleep)
    if fail_flag and Path(fail_flag).exists():
        raise ValueError(f"planned failure in {key}")
    x = np.random.default_rng(seed).standard_normal(n)
    return {"seed": seed, "mean": float(x.mean()), "sum_sq": float((x * x).sum()),
            "values": tuple(x[:3].tolist())}  # a tuple: returned as a list, as when loaded


def _not_a_dict(key: str) -> list:
    return [key]


def _pid() -> dict:
    return {"pid": os.getpid()}


def _tasks(marker_dir: Path, n_tasks: int = 6, fail_flag: str = "", fail_key: str = "",
           sleep: float = 0.0) -> list[Task]:
    out = []
    for i in range(n_tasks):
        key = f"lambda_x=1.5e-11,seed={100 + i}"
        kw = {"seed": 100 + i, "n": 1000, "marker_dir": str(marker_dir), "key": key,
              "sleep": sleep}
        if fail_key == key:
            kw["fail_flag"] = fail_flag
        out.append(Task(key, _work, kw))
    return out


def _calls(marker_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    if not marker_dir.exists():
        return counts
    for p in marker_dir.iterdir():
        k = p.name.rsplit(".", 1)[0]
        counts[k] = counts.get(k, 0) + 1
    return counts


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, dict]:
    """Uninterrupted in-process run, no store."""
    d = tmp_path_factory.mktemp("ref")
    return run_tasks(_tasks(d / "m"), None, workers=1)


@pytest.fixture(scope="module")
def cluster_address():
    distributed = pytest.importorskip("distributed")
    import logging

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


# ------------------------------------------------------------------------------------ keys
@pytest.mark.parametrize("bad", ["", "a/b", "a b", "..", ".hidden", "spec", "x" * 201,
                                 "a\\b", "k\n", "é"])
def test_bad_keys_refused(bad):
    with pytest.raises(ValueError, match="key"):
        validate_key(bad)
    with pytest.raises(ValueError, match="key"):
        Task(bad, _pid, {})


def test_good_keys_and_duplicates(tmp_path):
    for k in ["lambda_x=2.21e-11,seed=3,phase+solid", "a.b_c-d", "0"]:
        assert validate_key(k) == k
    t = Task("a", _pid, {})
    with pytest.raises(ValueError, match="duplicate task key 'a'"):
        run_tasks([t, Task("a", _pid, {})], None, workers=1)
    with pytest.raises(ValueError, match="workers"):
        run_tasks([t], None, workers=0)
    with pytest.raises(ValueError, match="either"):
        run_tasks([t], None, scheduler="tcp://127.0.0.1:1", workers=2)


# ------------------------------------------------------------------------------ the store
def test_store_roundtrip_atomic(tmp_path):
    st = TaskStore(tmp_path / "tasks")
    assert not st.done("k1")
    with pytest.raises(KeyError):
        st.load("k1")
    res = {"a": 1.5, "b": [1, 2], "tau": float("inf")}
    st.save("k1", res)
    assert st.done("k1") and st.load("k1") == res
    text = (tmp_path / "tasks" / "k1.json").read_text()  # strict JSON, infinity tagged
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c))["tau"] == {
        "__float__": "inf"}
    res2 = {"nan": float("nan"), "neg": [float("-inf")], "s": "inf"}
    st.save("k3", res2)
    back = st.load("k3")
    assert math.isnan(back["nan"]) and back["neg"] == [float("-inf")] and back["s"] == "inf"
    (tmp_path / "tasks" / "k3.json").unlink()
    with pytest.raises(ValueError, match="not a dict"):
        st.save("k2", [1, 2])
    with pytest.raises(ValueError, match="JSON"):
        st.save("k2", {"x": object()})
    assert not st.done("k2")
    # nothing half-written: only the one result file
    assert sorted(p.name for p in (tmp_path / "tasks").iterdir()) == ["k1.json"]
    assert st.keys() == ["k1"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        TaskStore(tmp_path / "file")


def test_spec_mismatch_refused(tmp_path):
    st = TaskStore(tmp_path)
    spec = {"params": {"lambda_x": 2.21e-11, "mu": 0.5}, "shape": (40, 40, 40), "seed": 1}
    st.check_spec(spec)
    assert (tmp_path / "spec.json").is_file()
    TaskStore(tmp_path).check_spec({**spec, "shape": [40, 40, 40]})  # tuple == list
    other = {"params": {"lambda_x": 3.55e-11, "mu": 0.5}, "shape": (40, 40, 40), "seed": 2}
    with pytest.raises(ValueError, match="other settings") as e:
        TaskStore(tmp_path).check_spec(other)
    msg = str(e.value)
    assert "params.lambda_x" in msg and "seed" in msg and "shape" not in msg
    with pytest.raises(ValueError, match="other settings.*extra"):
        TaskStore(tmp_path).check_spec({**spec, "extra": 1})
    assert json.loads((tmp_path / "spec.json").read_text())["seed"] == 1  # unchanged


# ----------------------------------------------------------------- in-process loop: resume
def test_in_process_failure_then_resume(tmp_path, reference):
    flag = tmp_path / "fail"
    flag.write_text("1")
    bad = "lambda_x=1.5e-11,seed=102"
    st = TaskStore(tmp_path / "tasks")
    seen = []
    with pytest.raises(RuntimeError, match=r"1 of 6 tasks failed: lambda_x=1\.5e-11,seed=102"):
        run_tasks(_tasks(tmp_path / "m1", fail_flag=str(flag), fail_key=bad), st, workers=1,
                  progress=lambda d, t, s: seen.append((d, t, s)))
    assert seen[0] == (0, 6, None) and seen[-1][:2] == (6, 6)
    assert all(s is None or s >= 0 for _, _, s in seen)
    assert st.keys() == sorted(k for k in reference if k != bad)
    flag.unlink()
    res = run_tasks(_tasks(tmp_path / "m2", fail_flag=str(flag), fail_key=bad), st, workers=1)
    assert _calls(tmp_path / "m2") == {bad: 1}  # only the missing task was computed
    assert res == reference
    # a third run computes nothing
    assert run_tasks(_tasks(tmp_path / "m3"), st, workers=1) == reference
    assert _calls(tmp_path / "m3") == {}


def test_in_process_interrupt_then_resume(tmp_path, reference):
    st = TaskStore(tmp_path / "tasks")

    def stop(done, total, left):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_tasks(_tasks(tmp_path / "m1"), st, workers=1, progress=stop)
    first = st.keys()
    assert len(first) == 2
    res = run_tasks(_tasks(tmp_path / "m2"), st, workers=1)
    assert res == reference
    assert set(_calls(tmp_path / "m2")) == set(reference) - set(first)
    assert all(v == 1 for v in _calls(tmp_path / "m2").values())


def test_bad_result_reported(tmp_path):
    st = TaskStore(tmp_path)
    tasks = [Task("ok", _pid, {}), Task("bad", _not_a_dict, {"key": "bad"})]
    with pytest.raises(RuntimeError, match="tasks failed: bad.*not a dict"):
        run_tasks(tasks, st, workers=1)
    assert st.keys() == ["ok"]


# ---------------------------------------------------------------------------- Dask paths
def test_local_cluster_equals_in_process(tmp_path, reference):
    """run_tasks(workers=2) starts its own LocalCluster of 2 processes."""
    seen = []
    res = run_tasks(_tasks(tmp_path / "m", sleep=0.05), TaskStore(tmp_path / "t"), workers=2,
                    progress=lambda d, t, s: seen.append((d, t, s)))
    assert res == reference
    assert {r[VERSION_KEY] for r in res.values()} == {__version__}  # stamped on the workers
    assert [d for d, _, _ in seen] == list(range(7))
    pids = {int(p.read_text()) for p in (tmp_path / "m").iterdir()}
    assert os.getpid() not in pids  # computed in worker processes
    assert len(_calls(tmp_path / "m")) == 6


def test_scheduler_failure_and_interrupt_then_resume(tmp_path, reference, cluster_address):
    """Through a running cluster: a failing task, then an interrupted pool, then resume."""
    flag = tmp_path / "fail"
    flag.write_text("1")
    bad = "lambda_x=1.5e-11,seed=104"
    st = TaskStore(tmp_path / "tasks")
    with pytest.raises(RuntimeError, match=r"tasks failed: lambda_x=1\.5e-11,seed=104"):
        run_tasks(_tasks(tmp_path / "m1", fail_flag=str(flag), fail_key=bad), st,
                  scheduler=cluster_address)
    assert st.keys() == sorted(k for k in reference if k != bad)
    flag.unlink()

    # fresh store: interrupt after 2 results (the others are cancelled)
    st2 = TaskStore(tmp_path / "tasks2")

    def stop(done, total, left):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_tasks(_tasks(tmp_path / "m2", sleep=0.2), st2, scheduler=cluster_address,
                  progress=stop)
    kept = st2.keys()
    assert len(kept) == 2
    res = run_tasks(_tasks(tmp_path / "m3"), st2, scheduler=cluster_address)
    assert res == reference
    # stragglers of the cancelled run write into m2, so m3 holds only the rerun's calls
    assert set(_calls(tmp_path / "m3")) == set(reference) - set(kept)
    res1 = run_tasks(_tasks(tmp_path / "m4"), st, scheduler=cluster_address)
    assert res1 == reference
    assert _calls(tmp_path / "m4") == {bad: 1}


def _worker_env() -> dict:
    import os

    return {"trim": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "omp": os.environ.get("OMP_NUM_THREADS")}


def test_local_workers_keep_glibc_dynamic_mmap_threshold(tmp_path):
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536, which made every task ~1/3 slower
    (fresh page faults for every array > 128 KiB); our local clusters drop it and keep the
    rest of Dask's worker environment."""
    from cbagpu.studies.tasks import Task, run_tasks, worker_environ

    assert worker_environ()["MALLOC_TRIM_THRESHOLD_"] is None
    out = run_tasks([Task("env", _worker_env, {})], None, workers=2)
    assert out["env"]["trim"] is None and out["env"]["omp"] == "1"


def _pid_task(backend: str) -> dict:
    import os

    return {"pid": os.getpid(), "backend": backend}


def test_gpu_tasks_without_dask_cuda_run_in_process(monkeypatch):
    """Several local processes on one GPU only compete for it: without dask-cuda, tasks on
    the cupy backend run in this process (workers=None)."""
    import os

    from cbagpu.studies import tasks as T

    monkeypatch.setattr(T, "_have_dask_cuda", lambda: False)
    out = T.run_tasks([T.Task(f"t{i}", _pid_task, {"backend": "cupy"}) for i in range(2)],
                      None)
    assert {r["pid"] for r in out.values()} == {os.getpid()}


def test_gpu_tasks_go_to_dask_cuda_when_it_is_installed(monkeypatch):
    """The dask-cuda branch (no dask-cuda here): a stand-in ``dask_cuda.LocalCUDACluster``
    that records its arguments and starts a LocalCluster of 2 processes. Tasks on the cupy
    backend (workers=None) must go to it, with one thread per worker (one GPU each)."""
    import sys
    import types

    from distributed import LocalCluster

    from cbagpu.studies import tasks as T

    seen = {}

    def local_cuda_cluster(**kwargs):
        seen.update(kwargs)
        return LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                            dashboard_address=":0", silence_logs=kwargs["silence_logs"])

    stub = types.ModuleType("dask_cuda")
    stub.LocalCUDACluster = local_cuda_cluster
    monkeypatch.setitem(sys.modules, "dask_cuda", stub)
    monkeypatch.setattr(T, "_have_dask_cuda", lambda: True)
    out = T.run_tasks([T.Task(f"t{i}", _pid_task, {"backend": "cupy"}) for i in range(3)],
                      None)
    assert seen["threads_per_worker"] == 1
    assert os.getpid() not in {r["pid"] for r in out.values()}
    assert {r["backend"] for r in out.values()} == {"cupy"}
    # CPU tasks never use it
    seen.clear()
    T.run_tasks([T.Task("c", _pid_task, {"backend": "numpy"})], None, workers=None)
    assert seen == {}


def test_results_record_the_version_that_computed_them(tmp_path):
    st = TaskStore(tmp_path / "t")
    res = run_tasks(_tasks(tmp_path / "m", n_tasks=2), st, workers=1)
    assert {r[VERSION_KEY] for r in res.values()} == {__version__}
    stored = json.loads((st.root / f"{st.keys()[0]}.json").read_text())
    assert stored[VERSION_KEY] == __version__
    assert result_versions(res) == [__version__]
    assert mixed_versions_message([__version__]) is None
    # a result stored by another version (or before versions were recorded)
    key = st.keys()[0]
    st.save(key, {k: v for k, v in stored.items() if k != VERSION_KEY})
    res = run_tasks(_tasks(tmp_path / "m", n_tasks=2), st, workers=1)
    assert result_versions(res) == sorted([__version__, "unknown"])
    msg = mixed_versions_message(result_versions(res))
    assert __version__ in msg and "unknown" in msg and "upgrade" in msg


def _bad_input():
    from cbagpu.errors import InvalidInputError

    raise InvalidInputError("shape must be positive")


def test_failed_tasks_raise_tasks_failed_error_with_the_keys(tmp_path):
    from cbagpu.errors import CbagpuError, TasksFailedError

    tasks = [Task("ok", _pid, {}), Task("bad", _not_a_dict, {"key": "bad"})]
    with pytest.raises(TasksFailedError) as info:
        run_tasks(tasks, TaskStore(tmp_path), workers=1)
    assert isinstance(info.value, CbagpuError) and isinstance(info.value, RuntimeError)
    assert set(info.value.failed) == {"bad"}


def test_bad_input_inside_a_task_is_not_a_task_failure(tmp_path):
    """Bad input is re-raised as itself (exit 2 on the command line), not as 'tasks failed'
    (exit 1); a BackendUnavailableError likewise."""
    from cbagpu.errors import InvalidInputError, TasksFailedError

    with pytest.raises(InvalidInputError, match="shape") as info:
        run_tasks([Task("t", _bad_input, {})], TaskStore(tmp_path), workers=1)
    assert not isinstance(info.value, TasksFailedError)


@pytest.mark.parametrize("study", ["sweep", "validate"])
def test_unreachable_scheduler_is_refused_quickly_and_writes_nothing(tmp_path, monkeypatch,
                                                                      capsys, study):
    """Issue 14, items 3 and 4: exit 2 with the address, no OSError traceback after 30 s,
    and no spec.json or inputs/ left behind."""
    pytest.importorskip("distributed")
    from cbagpu.cli import main
    from cbagpu.io import write_image
    from cbagpu.studies import tasks as tasks_mod

    monkeypatch.setattr(tasks_mod, "SCHEDULER_TIMEOUT", 1.0)
    out = tmp_path / "study"
    if study == "sweep":
        argv = ["sweep", "--voxel-size", "40", "--shape", "16", "--realizations", "1"]
    else:
        img = write_image(tmp_path / "img.npy", np.zeros((32, 32, 32), np.uint8),
                          {"voxel_size": 20.0})
        argv = ["validate", str(img), "--params", "paper", "--factors", "1"]
    t = time.perf_counter()
    code = main([*argv, "--scheduler", "tcp://127.0.0.1:1", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "tcp://127.0.0.1:1" in err and err.count("\n") == 1, err
    assert time.perf_counter() - t < 15
    assert not out.exists()
