"""transport: effective conductivity / tau_eff / M of both phases, beside TauFactor.

Cases for each window edge ``n`` (voxels of 40 nm, ``generate(preset("paper"), (n,)*3, 40,
1)``), flow along z:

* ``transport-n-PHASE``: :func:`cbagpu.transport.transport` at its default tolerance
  (flux spread 1e-2), float32 fields;
* ``reference-n-PHASE``: the same solve over-converged (float64 fields, tol 1e-7): the
  "fully converged" tau against which both tools' errors are computed (its time is not a
  target);
* ``taufactor-n-PHASE``: TauFactor 1.2 on the CPU (solid: ``MultiPhaseSolver``, whose
  convention is our ``boundary_offset=1.0``: compare with the reference's ``tau_offset1``;
  pore: binary ``Solver``, the same convention as ours), at its default convergence
  criterion (conv_crit 1e-2), in chunks of 500 iterations until it converges or
  :data:`TF_BUDGET_S` seconds have passed (environment ``CBAGPU_BENCH_TF_BUDGET``,
  default 900) (then ``converged`` is false and the time is a
  lower bound).  Its warm-up run does 100 iterations only (PyTorch start-up), so that the
  harness does not spend the budget twice.

Targets (issue 5): >= 5x faster than TauFactor at equal final accuracy (tau within 0.5 % of
the over-converged reference) for both phases of a 200^3 and a 300^3 paper realization at
40 nm on the CPU (400^3 and 800^3 on a GPU); memory <= 32 bytes per voxel.  Run with
``--repeat 1``.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.harness import Case, select_sizes
from benchmarks.images import paper_realization

SUITE_NAME = "transport"
SIZES = (200, 300)
QUICK_SIZES = (48,)
GPU_SIZES = (400, 800)
VOXEL_NM = 40.0
TF_BUDGET_S = float(os.environ.get("CBAGPU_BENCH_TF_BUDGET", "900"))  # seconds per TauFactor run
TARGET_TEXT = (
    "CPU: >= 5x faster than TauFactor at equal accuracy (tau within 0.5 % of the "
    "over-converged reference), both phases, 200^3 and 300^3 at 40 nm; <= 32 B/voxel"
)
TARGETS: dict[str, Any] = {"text": TARGET_TEXT}


def _image(n: int) -> np.ndarray:
    return paper_realization(n, VOXEL_NM, 1)


def _setup(n: int, phase: str, backend: str) -> dict[str, Any]:
    from cbagpu import get_backend

    be = get_backend(backend)
    return {"labels": be.asarray(_image(n)), "phase": phase, "be": be}


def _run_ours(s: dict[str, Any]) -> dict[str, float]:
    from cbagpu.transport import transport

    r = transport(s["labels"], s["phase"], 0, backend=s["be"])
    return {"tau": r.tau_eff, "iterations": r.iterations, "flux_spread": r.flux_spread,
            "converged": float(r.converged)}


def _run_reference(s: dict[str, Any]) -> dict[str, float]:
    from cbagpu.transport import PHASE_SIGMA, effective_conductivity

    r = effective_conductivity(s["labels"], PHASE_SIGMA[s["phase"]], 0, tol=1e-7,
                               max_iter=3000, dtype=np.float64, backend=s["be"])
    out = {"tau": r.tau_eff, "iterations": r.iterations, "flux_spread": r.flux_spread}
    if s["phase"] == "solid":  # TauFactor MultiPhaseSolver's convention (length N + 1)
        r1 = effective_conductivity(s["labels"], PHASE_SIGMA["solid"], 0, tol=1e-7,
                                    max_iter=3000, dtype=np.float64, boundary_offset=1.0,
                                    backend=s["be"])
        out["tau_offset1"] = r1.tau_eff
    return out


def _tf_setup(n: int, phase: str) -> dict[str, Any]:
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    return {"labels": _image(n), "phase": phase, "calls": 0}


def _run_taufactor(s: dict[str, Any]) -> dict[str, float]:
    import contextlib
    import io

    import taufactor as tf

    lab = s["labels"]
    s["calls"] += 1
    warm = s["calls"] == 1
    if s["phase"] == "solid":
        solver = tf.MultiPhaseSolver(lab, cond={1: 0.01, 2: 1.0}, device="cpu")
    else:
        solver = tf.Solver((lab == 0).astype(np.uint8), device="cpu")
    t0 = time.perf_counter()
    limit = 100 if warm else 500
    with contextlib.redirect_stdout(io.StringIO()):
        while True:
            tau = solver.solve(verbose=False, conv_crit=1e-2, iter_limit=limit)
            if warm or solver.converged or time.perf_counter() - t0 > TF_BUDGET_S:
                break
            limit += 500
    return {"tau": float(np.ravel(tau)[0]), "iterations": float(solver.iter),
            "converged": float(solver.converged)}


def cases(backend: str, quick: bool, sizes: Sequence[int] | None = None) -> list[Case]:
    """The cases of the transport suite."""
    size_list = select_sizes(sizes, quick, backend, SIZES, QUICK_SIZES, GPU_SIZES)
    have_tf = importlib.util.find_spec("taufactor") is not None
    out: list[Case] = []
    for n in size_list:
        vox = n**3
        for phase in ("solid", "pore"):
            p = {"size": n, "phase": phase, "voxel_size_nm": VOXEL_NM, "axis": "z"}

            def setup(n=n, phase=phase):
                return _setup(n, phase, backend)

            out.append(Case(name=f"transport-{n}-{phase}", params=p, setup=setup,
                            run=_run_ours, voxels=vox, notes="default tol 1e-2"))
            out.append(Case(name=f"reference-{n}-{phase}", params=p, setup=setup,
                            run=_run_reference, voxels=vox,
                            notes="float64, tol 1e-7: the converged tau (not a target)"))
            if backend == "numpy":
                out.append(Case(
                    name=f"taufactor-{n}-{phase}", params=p,
                    setup=lambda n=n, phase=phase: _tf_setup(n, phase), run=_run_taufactor,
                    voxels=vox, skip=None if have_tf else "taufactor not installed "
                    "(pip install -e .[peers])",
                    notes=("MultiPhaseSolver (length N+1)" if phase == "solid" else "Solver")
                    + f", conv_crit 1e-2, budget {TF_BUDGET_S:g} s",
                ))
    return out
