"""sweep: a Table 3 sweep (7 lambda_x x 5 realizations at 40 nm), in-process vs Dask.

Issue 6, "Scale": the sweep of :func:`cbagpu.studies.sweep.sweep` over the seven lambda_x
values of Table 3 with five realizations each (35 tasks: generate, then constrictivity,
mean geodesic tortuosity and transport of both phases), on windows of ``n^3`` voxels of
40 nm (``--sizes``; default 100), nothing stored (``out_dir=None``), no plot. The same tasks
run three ways, side by side:

* ``inprocess-n``: ``workers=1``, the plain loop in the case's process (no Dask);
* ``dask1-n``: a running ``LocalCluster`` of **one** worker process (one thread), started in
  ``setup`` (start-up time reported as ``extra.cluster_start_s``, not timed), reached through
  ``scheduler=``. Same parallelism as the loop, so ``dask1 / inprocess - 1`` is the overhead
  of Dask itself (scheduling, pickling, result transfer): target < 5 %;
* ``dasklocal-n``: ``workers=None``, the default: a LocalCluster sized to the usable cores is
  started and closed inside every run (start-up included), as ``cbagpu sweep`` does;
* ``interleaved-n``: the same tasks side by side under the same load: for each task, once in
  the case's process and once on a running one-worker LocalCluster (``client.submit``),
  alternating, so that other work on a shared machine hits both alike. ``extra`` splits the
  difference into the Dask round trip (``dask_roundtrip_s``: wall on the client minus the
  task's own time, summed) and the task itself running slower or faster in the worker.

``extra`` holds the wall time of every task as the task measured it (mean, median, min,
max, sum) and ``overhead_s = wall - sum of task times`` (scheduling, fits, start-up). The
summary gives the overhead ratio, the speed-up of the local cluster and its efficiency
(speed-up / usable cores). Threads: Dask sets OMP/MKL/OpenBLAS threads to 1 in its workers;
the in-process loop uses the library defaults. ``--quick``: 2 values x 2 realizations at
24^3. Run with ``--repeat 1`` (each run is minutes at 100^3 on 2 cores).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.harness import Case, select_sizes

SUITE_NAME = "sweep"
SIZES = (100,)
QUICK_SIZES = (24,)
GPU_SIZES = (200,)
VOXEL_NM = 40.0
REALIZATIONS = 5
QUICK_VALUES = (2.21e-11, 1.09e-10)
QUICK_REALIZATIONS = 2
TARGET_TEXT = "Dask overhead < 5 % of the in-process loop (same tasks, one worker)"
TARGETS: dict[str, Any] = {"text": TARGET_TEXT, "max_dask_overhead": 0.05}


def _config(n: int, quick: bool, backend: str) -> dict[str, Any]:
    from cbagpu.params import TABLE3_LAMBDA_X

    return {
        "vary": {"lambda_x": list(QUICK_VALUES if quick else TABLE3_LAMBDA_X)},
        "realizations": QUICK_REALIZATIONS if quick else REALIZATIONS,
        "shape": (n, n, n),
        "backend": backend,
    }


def _sweep(cfg: dict[str, Any], **kw: Any) -> dict[str, float]:
    from cbagpu import preset
    from cbagpu.studies.sweep import sweep

    t0 = time.perf_counter()
    res = sweep(preset("paper"), cfg["vary"], realizations=cfg["realizations"],
                shape=cfg["shape"], voxel_size=VOXEL_NM, seed=1, backend=cfg["backend"],
                out_dir=None, plot=False, **kw)
    wall = time.perf_counter() - t0
    ts = list(res.task_seconds.values())
    return {
        "tasks": float(len(ts)),
        "task_mean_s": statistics.fmean(ts),
        "task_median_s": statistics.median(ts),
        "task_min_s": min(ts),
        "task_max_s": max(ts),
        "task_sum_s": sum(ts),
        "wall_s": wall,
        "overhead_s": wall - sum(ts),
        "solid_M_mean": statistics.fmean(r["M"] for r in res.rows if r["phase"] == "solid"),
    }


def _setup_cluster(cfg: dict[str, Any]) -> dict[str, Any]:
    import logging

    from distributed import LocalCluster

    from cbagpu.studies.tasks import local_cluster

    t0 = time.perf_counter()
    # the runner's own local cluster (its worker environment), one worker
    cluster = local_cluster([], 1, logging.ERROR, LocalCluster)
    return {**cfg, "cluster": cluster, "start_s": time.perf_counter() - t0}


def _run_dask1(s: dict[str, Any]) -> dict[str, float]:
    out = _sweep(s, scheduler=s["cluster"].scheduler_address)
    out["cluster_start_s"] = s["start_s"]
    return out


def _run_dasklocal(cfg: dict[str, Any]) -> dict[str, float]:
    from cbagpu.studies.tasks import usable_cores

    out = _sweep(cfg, workers=None)
    out["workers"] = float(usable_cores())
    return out


def _run_interleaved(s: dict[str, Any]) -> dict[str, float]:
    from distributed import Client

    from cbagpu import preset
    from cbagpu.studies.sweep import sweep_task

    base = preset("paper")
    wall_loop = wall_dask = task_loop = task_dask = 0.0
    n = 0
    with Client(s["cluster"], set_as_default=False) as client:
        for lam in s["vary"]["lambda_x"]:
            for seed in range(1, 1 + s["realizations"]):
                kw = {"params": base.replace(lambda_x=lam).to_dict(), "shape": s["shape"],
                      "voxel_size": VOXEL_NM, "seed": seed, "backend": s["backend"]}
                t0 = time.perf_counter()
                r = sweep_task(**kw)
                wall_loop += time.perf_counter() - t0
                task_loop += r["seconds"]["total"]
                t0 = time.perf_counter()
                r = client.submit(sweep_task, **kw, pure=False).result()
                wall_dask += time.perf_counter() - t0
                task_dask += r["seconds"]["total"]
                n += 1
    return {
        "tasks": float(n),
        "inprocess_sum_s": wall_loop,
        "dask_sum_s": wall_dask,
        "dask_over_inprocess": wall_dask / wall_loop - 1.0,
        "dask_roundtrip_s": wall_dask - task_dask,
        "dask_roundtrip_per_task_s": (wall_dask - task_dask) / n,
        "task_in_worker_over_inprocess": task_dask / task_loop - 1.0,
        "cluster_start_s": s["start_s"],
    }


def cases(backend: str, quick: bool, sizes: Sequence[int] | None = None) -> list[Case]:
    """The cases of the sweep suite."""
    out: list[Case] = []
    for n in select_sizes(sizes, quick, backend, SIZES, QUICK_SIZES, GPU_SIZES):
        cfg = _config(n, quick, backend)
        n_tasks = len(cfg["vary"]["lambda_x"]) * cfg["realizations"]
        p = {"size": n, "voxel_size_nm": VOXEL_NM, "tasks": n_tasks,
             "values": cfg["vary"]["lambda_x"], "realizations": cfg["realizations"]}
        vox = n**3 * n_tasks
        out.append(Case(name=f"inprocess-{n}", params=p, setup=lambda cfg=cfg: cfg,
                        run=lambda c: _sweep(c, workers=1), voxels=vox,
                        notes="workers=1: plain loop, no Dask"))
        out.append(Case(name=f"dask1-{n}", params=p, setup=lambda cfg=cfg: _setup_cluster(cfg),
                        run=_run_dask1, voxels=vox,
                        notes="running LocalCluster, 1 worker x 1 thread (start-up not timed)"))
        out.append(Case(name=f"dasklocal-{n}", params=p, setup=lambda cfg=cfg: cfg,
                        run=_run_dasklocal, voxels=vox,
                        notes="workers=None: LocalCluster per run, start-up included"))
        out.append(Case(name=f"interleaved-{n}", params=p,
                        setup=lambda cfg=cfg: _setup_cluster(cfg), run=_run_interleaved,
                        voxels=2 * vox,
                        notes="each task in-process then on a 1-worker cluster, alternating"))
    return out


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Dask overhead at equal parallelism, local-cluster speed-up and efficiency."""
    records = {r["name"]: r for r in result["cases"]}
    cores = result.get("machine", {}).get("usable_cores") or 1
    out: dict[str, Any] = {"targets": TARGET_TEXT, "sizes": {}}
    sizes = sorted({r["params"]["size"] for r in result["cases"]})
    for n in sizes:
        loop = records.get(f"inprocess-{n}", {}).get("median_s")
        d1 = records.get(f"dask1-{n}", {}).get("median_s")
        dl = records.get(f"dasklocal-{n}", {}).get("median_s")
        tasks = records.get(f"inprocess-{n}", {}).get("params", {}).get("tasks")
        s: dict[str, Any] = {"tasks": tasks, "inprocess_s": loop, "dask1_s": d1,
                             "dasklocal_s": dl}
        if loop and d1:
            s["dask_overhead"] = d1 / loop - 1.0
            s["dask_overhead_per_task_s"] = (d1 - loop) / tasks if tasks else None
            s["overhead_target_met"] = s["dask_overhead"] < TARGETS["max_dask_overhead"]
        if loop and dl:
            s["local_speedup"] = loop / dl
            s["local_efficiency"] = loop / dl / cores
        if tasks and loop:
            s["inprocess_s_per_task"] = loop / tasks
        d1x = records.get(f"dask1-{n}", {}).get("extra", {})
        if d1x.get("wall_s"):
            s["dask1_scheduling_share"] = d1x["overhead_s"] / d1x["wall_s"]
        ix = records.get(f"interleaved-{n}", {}).get("extra", {})
        if ix:
            s["interleaved_dask_over_inprocess"] = ix.get("dask_over_inprocess")
            s["interleaved_roundtrip_share"] = (
                ix["dask_roundtrip_s"] / ix["inprocess_sum_s"] if ix.get("inprocess_sum_s")
                else None)
            s["interleaved_target_met"] = (
                ix["dask_over_inprocess"] < TARGETS["max_dask_overhead"]
                if ix.get("dask_over_inprocess") is not None else None)
        out["sizes"][str(n)] = s
    return out
