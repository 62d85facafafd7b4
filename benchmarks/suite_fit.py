"""fit: the whole calibration ``cbagpu.fit.fit`` of a paper realization, split by stage.

Cases ``fit-n-sNM``: ``fit(labels, s, realizations=3, seed=0)`` of
``generate(preset("paper"), (n,)*3, s, 1)`` (generated once in a separate process and cached
as .npy, so that the generator's memory does not count in the case's peak).  The stage
seconds of the last timed run (Ξ1 ``graphite``, Ξ2 ``grf``, Ξ3 ``pores``, ``total``) and the
fitted μ, η, θ are stored under ``extra``.

Targets (issue 4): 320³ at 40 nm <= 5 min on the 2-core CPU; 400³ at 20 nm <= 30 s on an
H100.  Run with ``--repeat 1`` (one warm-up and one timed fit: ~2 x the fit time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.harness import Case
from benchmarks.images import paper_realization

SUITE_NAME = "fit"
#: (edge, voxel size nm) of the default cases; the GPU adds GPU_CASES, --quick runs QUICK.
CPU_CASES = ((320, 40.0),)
GPU_CASES = ((400, 20.0),)
QUICK_CASES = ((96, 40.0),)
TARGET_TEXT = "CPU: fit of 320^3 at 40 nm <= 300 s; H100: fit of 400^3 at 20 nm <= 30 s"
TARGETS: dict[str, Any] = {"text": TARGET_TEXT, "cpu_320_40nm_s": 300.0,
                           "gpu_400_20nm_s": 30.0}


def _image(n: int, s: float) -> np.ndarray:
    return paper_realization(n, s, 1)


def _setup(n: int, s: float, backend: str) -> dict[str, Any]:
    from cbagpu import get_backend

    be = get_backend(backend)
    return {"labels": be.asarray(_image(n, s)), "be": be, "s": s}


def _run_fit(state: dict[str, Any]) -> dict[str, float]:
    import warnings

    from cbagpu.fit import fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(state["labels"], state["s"], realizations=3, seed=0, backend=state["be"])
    out = {f"{k}_s": float(v) for k, v in res.report.seconds.items()}
    out.update(mu=res.params.mu, eta=res.params.eta, theta=res.params.theta,
               thetas_tried=float(len(res.report.pores.thetas)))
    return out


def cases(backend: str, quick: bool, sizes: Sequence[int] | None = None) -> list[Case]:
    """The cases of the fit suite (``sizes``: edges at 40 nm)."""
    if sizes:
        todo = [(int(n), 40.0) for n in sorted(set(sizes))]
    elif quick:
        todo = list(QUICK_CASES)
    else:
        todo = list(CPU_CASES) + (list(GPU_CASES) if backend == "cupy" else [])
    out = []
    for n, s in todo:
        def setup(n=n, s=s):
            return _setup(n, s, backend)

        out.append(Case(name=f"fit-{n}-{s:g}nm", params={"size": n, "voxel_size_nm": s,
                                                         "realizations": 3},
                        setup=setup, run=_run_fit, voxels=n**3))
    return out


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Median seconds against the targets, and the stage split of each case."""
    out: dict[str, Any] = {"targets": TARGET_TEXT, "cases": {}}
    for r in result["cases"]:
        med = r.get("median_s")
        extra = r.get("extra") or {}
        row = {"median_s": med, "stages_s": {k: v for k, v in extra.items()
                                             if k.endswith("_s")}}
        if r["name"] == "fit-320-40nm" and med:
            row["target_met"] = med <= TARGETS["cpu_320_40nm_s"]
        if r["name"] == "fit-400-20nm" and med:
            row["target_met"] = med <= TARGETS["gpu_400_20nm_s"]
        out["cases"][r["name"]] = row
    return out
