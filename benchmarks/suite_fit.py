"""fit: the whole calibration ``cbagpu.fit.fit`` of a paper realization, split by stage.

Cases ``fit-n-sNM``: ``fit(labels, s, realizations=3, seed=0)`` of
``generate(preset("paper"), (n,)*3, s, 1)`` (generated once in a separate process and cached
as .npy, so that the generator's memory does not count in the case's peak).  The stage
seconds of the last timed run (Ξ1 ``graphite``, Ξ2 ``grf``, Ξ3 ``pores``, ``total``) and the
fitted μ, η, θ are stored under ``extra``.

Targets (issue 4): 320³ at 40 nm <= 5 min on the 2-core CPU; 400³ at 20 nm <= 30 s on an
H100.  Run with ``--repeat 1`` (one warm-up and one timed fit: ~2 x the fit time).

**Accuracy** (issue 18, item 5; not a timing case): ``python -m benchmarks.suite_fit
accuracy [--size 200] [--seeds 10] [--k 5] [--out DIR]`` generates realizations of known
parameters (:data:`ACCURACY_SETS`, 40 nm) and, per realization, fits μ, η, θ, λ_Y with the
whole-image method (:func:`cbagpu.fit.whole.fit_whole`) with a parametric-bootstrap
uncertainty (k refits, :func:`cbagpu.fit.uncertainty.bootstrap`), and μ with the paper's ROI
method (:func:`cbagpu.fit.grf.fit_grf` on the automatic ROI, the small-ball correction
applied with the *true* θ, λ_Y: the ROI method at its best; ``--roi-full``: also the
paper's ROI + CPSD stages as ``fit(method="roi")`` runs them, with the true Ξ1).  One JSON
line per realization is appended to ``DIR/fit_accuracy-MACHINE-SIZE.jsonl`` as it finishes;
``--summary`` prints the per-parameter mean, bias, its standard error and the coverage of
the 95 % intervals.
"""

from __future__ import annotations

import math
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


# ================================================================== accuracy (issue 18.5)
#: Known parameter sets of the accuracy study (nm units; μ, λ_X, θ, λ_Y varied).
ACCURACY_SETS: dict[str, dict[str, float]] = {
    "paper": {},
    "low-mu": {"mu": 0.30, "lambda_x": 2.21e-11},
    "high-mu": {"mu": 0.70, "eta": 0.020, "theta": 0.0125, "lambda_y": 1.5e-8,
                "lambda_x": 1.09e-10},
}
ACCURACY_PARAMS = ("mu", "eta", "theta", "lambda_y")


def accuracy_params(name: str) -> Any:
    """The CBAParams of accuracy set ``name`` (the paper's Table 2 with changes)."""
    from cbagpu import preset

    return preset("paper").replace(**ACCURACY_SETS[name])


def accuracy_row(name: str, seed: int, n: int, s: float, k: int,
                 roi: bool = True, roi_full: bool = False) -> dict[str, Any]:
    """Fit one realization of set ``name`` (see the module docstring)."""
    import time
    import warnings

    from cbagpu import generate, get_backend
    from cbagpu.fit.grf import correct_for_small_pores, fit_grf
    from cbagpu.fit.uncertainty import bootstrap
    from cbagpu.fit.whole import fit_whole

    truth = accuracy_params(name)
    t0 = time.perf_counter()
    lab = generate(truth, (n,) * 3, s, seed, backend="numpy")
    row: dict[str, Any] = {"set": name, "seed": seed, "size": n, "voxel_size_nm": s, "k": k,
                           "truth": {p: getattr(truth, p) for p in ACCURACY_PARAMS}}
    t = time.perf_counter()
    w = fit_whole(lab, s, "numpy")
    row["whole"] = {p: getattr(w, p) for p in ACCURACY_PARAMS}
    row["whole_s"] = time.perf_counter() - t
    if k >= 2:
        t = time.perf_counter()
        fitted = truth.replace(mu=w.mu, eta=w.eta, theta=w.theta, lambda_y=w.lambda_y)

        def refit(labels: Any) -> dict[str, float]:
            r = fit_whole(labels, s, "numpy")
            return {p: getattr(r, p) for p in ACCURACY_PARAMS}

        unc = bootstrap(fitted, (n,) * 3, s, refit, k=k, seed=10_000 + 100 * seed,
                        backend="numpy")
        row["whole_unc"] = {p: u.to_dict() for p, u in unc.items()}
        row["bootstrap_s"] = time.perf_counter() - t
    if roi:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = fit_grf(lab, s, "numpy", seed=0)
            g = correct_for_small_pores(g, truth.theta, truth.lambda_y)
        row["roi"] = {"mu": g.mu, "eta": g.eta}
        row["roi_s"] = time.perf_counter() - t
    if roi_full:  # the paper's Ξ2 + Ξ3 stages as `fit(method="roi")` runs them (true Ξ1)
        from cbagpu.fit.calibrate import _roi_stages
        from cbagpu.fit.pores import THETA_GRID

        t = time.perf_counter()
        counts = [int(np.count_nonzero(lab == v)) for v in (0, 1, 2)]
        image = {"solid": (counts[1] + counts[2]) / lab.size}
        g1 = {p: getattr(truth, p) for p in ("lambda_x", "alpha1", "alpha2", "gamma")}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q, _, _ = _roi_stages(lab, s, get_backend("numpy"), g1, counts, image, None, 0, 3,
                                  THETA_GRID, None, [], {})
        row["roi_full"] = {p: getattr(q, p) for p in ACCURACY_PARAMS}
        row["roi_full_s"] = time.perf_counter() - t
    row["total_s"] = time.perf_counter() - t0
    return row


def accuracy_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per set and method: mean fitted value, bias, its standard error, the coverage of the
    95 % intervals (whole) and the count, for every parameter."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["set"] for r in rows):
        rs = [r for r in rows if r["set"] == name]
        per: dict[str, Any] = {}
        for method in ("whole", "roi", "roi_full"):
            for p in ACCURACY_PARAMS:
                vals = np.asarray([r[method][p] for r in rs if method in r and p in r[method]])
                if not vals.size:
                    continue
                truth = rs[0]["truth"][p]
                d: dict[str, Any] = {"n": int(vals.size), "truth": truth,
                                     "mean": float(vals.mean()),
                                     "bias": float(vals.mean() - truth),
                                     "sd": float(vals.std(ddof=1)) if vals.size > 1 else None}
                d["bias_se"] = (d["sd"] / math.sqrt(vals.size)) if d["sd"] is not None else None
                if method == "whole":
                    cov = [r["whole_unc"][p]["ci95"][0] <= truth <= r["whole_unc"][p]["ci95"][1]
                           for r in rs if "whole_unc" in r]
                    d["coverage"] = float(np.mean(cov)) if cov else None
                    d["n_intervals"] = len(cov)
                per[f"{method}:{p}"] = d
        out[name] = per
    return out


def _accuracy_main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import json
    import os
    from pathlib import Path

    from benchmarks.harness import machine_info, machine_slug

    ap = argparse.ArgumentParser(prog="python -m benchmarks.suite_fit accuracy")
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--voxel-size", type=float, default=40.0)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--k", type=int, default=5, help="bootstrap refits per fit (0: none)")
    ap.add_argument("--sets", default=",".join(ACCURACY_SETS))
    ap.add_argument("--roi-sets", default="paper",
                    help="sets on which the ROI method is also run ('' for none)")
    ap.add_argument("--roi-full", action="store_true",
                    help="also the paper's ROI + CPSD stages (theta, lambda_y fitted): slow")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--summary", action="store_true", help="only summarise the JSONL file")
    a = ap.parse_args(argv)
    mach = machine_info()
    path = Path(a.out) / f"fit_accuracy-{machine_slug(mach, {}, 'numpy')}-{a.size}.jsonl"
    if not a.summary:
        os.makedirs(a.out, exist_ok=True)
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            for name in a.sets.split(","):
                row = accuracy_row(name, seed, a.size, a.voxel_size, a.k,
                                   roi=name in a.roi_sets.split(","),
                                   roi_full=a.roi_full and name in a.roi_sets.split(","))
                row["machine"] = mach
                with open(path, "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps({k: row[k] for k in ("set", "seed", "whole", "total_s")}),
                      flush=True)
    rows = [json.loads(line) for line in open(path) if line.strip()]
    print(json.dumps(accuracy_summary(rows), indent=1))
    return 0


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["accuracy"]:
        sys.exit(_accuracy_main(sys.argv[2:]))
    sys.exit("usage: python -m benchmarks.suite_fit accuracy [options]")
