"""Virtual materials testing: parameter sweeps (paper Section 3.4, Table 3, Figure 8).

:func:`sweep` generates, for every combination of the varied parameter values and every
realization (seeds ``seed, seed+1, ...``; the same seeds for every combination), one
realization of the model and measures, for the solid and the pore phase,

* ``epsilon`` -- volume fraction,
* ``constrictivity`` -- beta = (r_min / r_max)^2 (:func:`cbagpu.measure.intrusion.constrictivity`),
* ``geodesic_tortuosity`` -- mean geodesic tortuosity tau
  (:func:`cbagpu.measure.geodesic.geodesic_tortuosity`),
* ``sigma_eff``, ``tau_eff``, ``M`` -- effective transport (:func:`cbagpu.transport.transport`;
  Eq. 27, solid phase with sigma_graphite = 1, sigma_CBD = 0.01),

all along the z axis (inlet z = 0). Each realization-and-analysis is one
:class:`~cbagpu.studies.tasks.Task`, run by :func:`~cbagpu.studies.tasks.run_tasks`
(in-process, local Dask cluster or a running scheduler) and stored under ``DIR/tasks`` so an
interrupted sweep resumes. Then it fits Eq. 28 (``M_hat = eps^a beta^b / tau^c``) and Eq. 29
(``M_tilde = c1 V1 + c0``, V1 = the model's graphite volume fraction of Eq. 10 at the voxel
size) per phase (:mod:`cbagpu.studies.regression`) and writes ``DIR/results.csv``,
``DIR/fits.json``, ``DIR/summary.csv`` (mean, sd, standard error of the mean and n of every
quantity per combination and phase over the realizations) and ``DIR/figure8.png``, each
atomically.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cbagpu.errors import InvalidInputError
from cbagpu.io.atomic import write_json_atomic, write_text_atomic
from cbagpu.params import PARAM_NAMES, TABLE3_LAMBDA_X, CBAParams
from cbagpu.studies.tasks import (
    Task,
    check_scheduler,
    mixed_versions_message,
    open_store,
    result_versions,
    run_tasks,
)

__all__ = [
    "COLUMNS",
    "PHASES",
    "SUMMARY_QUANTITIES",
    "SweepResult",
    "check_vary",
    "fit_rows",
    "parse_vary",
    "sweep",
    "summarize_rows",
    "sweep_task",
]

PHASES: tuple[str, ...] = ("solid", "pore")
#: Columns of results.csv after the varied parameters (issue 6, item 2) ...
COLUMNS: tuple[str, ...] = (
    "seed", "phase", "epsilon", "constrictivity", "geodesic_tortuosity",
    "sigma_eff", "tau_eff", "M",
)
#: ... followed by these: the model's V1 (Eq. 10, the regressor of Eq. 29), the measured
#: graphite fraction, whether the phase percolates along z, whether the solver converged.
EXTRA_COLUMNS: tuple[str, ...] = ("V1", "graphite_fraction", "percolates", "converged")
#: Per-realization numbers summarized per (combination, phase) in summary.csv (issue 18):
#: mean, sample standard deviation (ddof=1), standard error of the mean (sd / sqrt(n)) and
#: n over the realizations with a finite value.
SUMMARY_QUANTITIES: tuple[str, ...] = (
    "epsilon", "constrictivity", "geodesic_tortuosity", "sigma_eff", "tau_eff", "M",
    "graphite_fraction",
)
SUMMARY_STATS: tuple[str, ...] = ("mean", "sd", "se", "n")
AXIS = 0
TRANSPORT_MAX_ITER = 2000
_NAMED_VALUES = {"lambda_x": {"table3": TABLE3_LAMBDA_X}}
MAX_SEED = 2**63


# ----------------------------------------------------------------------- the varied values
def parse_vary(items: Sequence[str]) -> dict[str, list[float]]:
    """Parse ``["lambda_x=2.21e-11,3.55e-11", "mu=0.4,0.5"]`` into ``{name: [values]}``.

    ``lambda_x=table3`` stands for the seven values of Table 3. Raises ValueError naming the
    problem (no ``=``, unknown parameter, a value that is not a number, a name given twice).
    """
    out: dict[str, list[float]] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidInputError(f"--vary expects NAME=V1,V2,... , got {item!r}")
        if name in out:
            raise InvalidInputError(f"parameter {name!r} is varied twice")
        _check_name(name)
        named = _NAMED_VALUES.get(name, {})
        if rest.strip() in named:
            out[name] = list(named[rest.strip()])
            continue
        vals = []
        for tok in rest.split(","):
            tok = tok.strip()
            try:
                vals.append(float(tok))
            except ValueError:
                raise InvalidInputError(f"--vary {name}: {tok!r} is not a number") from None
        out[name] = vals
    return out


def _check_name(name: str) -> None:
    if name not in PARAM_NAMES:
        raise InvalidInputError(f"unknown parameter {name!r} to vary; choose among "
                         f"{', '.join(PARAM_NAMES)}")


def check_vary(
    base: CBAParams, vary: Mapping[str, Sequence[float]]
) -> dict[str, tuple[float, ...]]:
    """Validate the varied values: known fields, non-empty, finite, distinct, and every
    combination a valid :class:`CBAParams` (ValueError naming the parameter otherwise).
    Returns them in Table 2's parameter order."""
    if not isinstance(base, CBAParams):
        raise InvalidInputError(f"base_params must be a CBAParams, got {type(base).__name__}")
    if not isinstance(vary, Mapping):
        raise InvalidInputError("vary must map parameter names to lists of values")
    out: dict[str, tuple[float, ...]] = {}
    for name, values in vary.items():
        _check_name(name)
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise InvalidInputError(f"values of {name!r} must be a list of numbers, got {values!r}")
        if len(values) == 0:
            raise InvalidInputError(f"no values given for {name!r}")
        vals = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise InvalidInputError(f"value {v!r} of {name!r} is not a number")
            if not math.isfinite(float(v)):
                raise InvalidInputError(f"value {v!r} of {name!r} is not finite")
            vals.append(float(v))
        if len(set(vals)) != len(vals):
            raise InvalidInputError(f"values of {name!r} repeat: {vals}")
        for v in vals:
            try:
                base.replace(**{name: v})
            except ValueError as e:
                raise InvalidInputError(f"bad value {v!r} for {name!r}: {e}") from None
        out[name] = tuple(vals)
    # canonical order (Table 2's): the task keys and the CSV columns do not depend on the
    # order in which the parameters were given
    return {n: out[n] for n in PARAM_NAMES if n in out}


def _combos(vary: Mapping[str, tuple[float, ...]]) -> list[dict[str, float]]:
    names = list(vary)
    return [dict(zip(names, vals, strict=True)) for vals in itertools.product(*vary.values())]


def _key(combo: Mapping[str, float], seed: int) -> str:
    return ",".join([f"{k}={v!r}" for k, v in combo.items()] + [f"seed={seed}"])


# ---------------------------------------------------------------------------- the task
def _enc(x: float) -> float | str:
    x = float(x)
    return x if math.isfinite(x) else str(x)  # "inf", "nan": strict JSON


def _dec(x: Any) -> float:
    return float(x)


def sweep_task(params: dict, shape: Sequence[int], voxel_size: float, seed: int,
               backend: str = "auto", axis: int = AXIS, tol: float | None = None,
               max_iter: int = TRANSPORT_MAX_ITER) -> dict:
    """One realization and its analysis (the unit of work of a sweep; runs on a worker).

    Returns ``{"graphite_fraction", "phases": {phase: {...}}, "seconds": {...}}`` with
    non-finite numbers written as the strings ``"inf"``/``"nan"`` (strict JSON).
    """
    from cbagpu.backend import get_backend
    from cbagpu.measure.geodesic import geodesic_tortuosity
    from cbagpu.measure.intrusion import constrictivity
    from cbagpu.measure.phases import phase_mask
    from cbagpu.simulate.realization import generate
    from cbagpu.transport import DEFAULT_TOL, transport

    be = get_backend(backend)
    sec: dict[str, float] = {}
    t0 = time.perf_counter()
    labels = generate(CBAParams.from_dict(dict(params)), tuple(int(n) for n in shape),
                      float(voxel_size), int(seed), backend=be)
    sec["generate"] = time.perf_counter() - t0
    lab = be.asarray(labels)
    out: dict[str, Any] = {
        "graphite_fraction": float(np.mean(labels == 2)),
        "phases": {},
        "backend": be.name,
    }
    for ph in PHASES:
        t = time.perf_counter()
        mask = phase_mask(lab, ph)
        con = constrictivity(mask, voxel_size, axis, backend=be)
        geo = geodesic_tortuosity(mask, voxel_size, axis, backend=be)
        del mask
        tr = transport(lab, ph, axis, tol=DEFAULT_TOL if tol is None else tol,
                       max_iter=max_iter, backend=be)
        out["phases"][ph] = {
            "epsilon": float(tr.epsilon),
            "constrictivity": _enc(con.beta),
            "r_min": _enc(con.r_min),
            "r_max": _enc(con.r_max),
            "geodesic_tortuosity": _enc(geo.tau),
            "fraction_connected": float(geo.fraction_connected),
            "sigma_eff": _enc(tr.sigma_eff),
            "tau_eff": _enc(tr.tau_eff),
            "M": _enc(tr.M),
            "percolates": bool(geo.percolates and tr.M > 0),
            "converged": bool(tr.converged),
        }
        sec[ph] = time.perf_counter() - t
    sec["total"] = time.perf_counter() - t0
    out["seconds"] = sec
    return out


# ---------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class SweepResult:
    """Rows of results.csv, the fits of fits.json and what was written.

    ``rows``: one dict per realization and phase (varied parameters, ``COLUMNS``,
    ``EXTRA_COLUMNS``). ``task_seconds``: wall time of each task (its own timer).
    ``summary``: one dict per combination and phase (the rows of summary.csv): the varied
    parameters, ``phase``, ``realizations`` and for every quantity q of
    :data:`SUMMARY_QUANTITIES` ``q_mean``, ``q_sd`` (ddof=1), ``q_se`` (the standard error of
    the mean, sd / sqrt(n)) and ``q_n`` over the realizations with a finite value (NaN where
    n is too small: no mean for n = 0, no sd/se for n < 2).
    """

    rows: tuple[dict[str, Any], ...]
    fits: dict[str, Any]
    vary: dict[str, tuple[float, ...]]
    files: dict[str, str]
    n_tasks: int
    n_computed: int
    seconds: float
    task_seconds: dict[str, float] = field(repr=False)
    messages: tuple[str, ...] = ()
    summary: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers as strings)."""
        return {
            "vary": {k: list(v) for k, v in self.vary.items()},
            "n_tasks": self.n_tasks,
            "n_computed": self.n_computed,
            "seconds": self.seconds,
            "files": dict(self.files),
            "messages": list(self.messages),
            "fits": self.fits,
            "rows": [_enc_row(r) for r in self.rows],
            "summary": [_enc_row(r) for r in self.summary],
        }


def _enc_row(r: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (_enc(v) if isinstance(v, float) else v) for k, v in r.items()}


def summarize_rows(rows: Sequence[Mapping[str, Any]],
                   vary_names: Sequence[str]) -> list[dict[str, Any]]:
    """Mean, sd (ddof=1), standard error of the mean (sd / sqrt(n)) and n of every
    :data:`SUMMARY_QUANTITIES` column per combination of ``vary_names`` and phase, over the
    rows (realizations) whose value is finite (e.g. a non-percolating phase's infinite
    tortuosity is left out of n). Groups keep the order of their first row."""
    from cbagpu.studies.sampling import sample_stats

    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((*(r[n] for n in vary_names), r["phase"]), []).append(r)
    out = []
    for key, rs in groups.items():
        d: dict[str, Any] = dict(zip([*vary_names, "phase"], key, strict=True))
        d["realizations"] = len(rs)
        for q in SUMMARY_QUANTITIES:
            st = sample_stats([float(r[q]) for r in rs])
            d.update({f"{q}_mean": st.mean, f"{q}_sd": st.sd, f"{q}_se": st.se,
                      f"{q}_n": st.n})
        out.append(d)
    return out


def _rows(vary_names: Sequence[str], combos: list[dict[str, float]], seeds: list[int],
          results: Mapping[str, dict], v1: Mapping[int, float]) -> list[dict[str, Any]]:
    rows = []
    for ci, combo in enumerate(combos):
        for s in seeds:
            r = results[_key(combo, s)]
            for ph in PHASES:
                p = r["phases"][ph]
                row: dict[str, Any] = {n: combo[n] for n in vary_names}
                row.update(
                    seed=s, phase=ph, epsilon=float(p["epsilon"]),
                    constrictivity=_dec(p["constrictivity"]),
                    geodesic_tortuosity=_dec(p["geodesic_tortuosity"]),
                    sigma_eff=_dec(p["sigma_eff"]), tau_eff=_dec(p["tau_eff"]),
                    M=_dec(p["M"]), V1=v1[ci], graphite_fraction=float(r["graphite_fraction"]),
                    percolates=bool(p["percolates"]), converged=bool(p["converged"]),
                )
                rows.append(row)
    return rows


def fit_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Eq. 28 and Eq. 29 per phase, and Eq. 28 over both phases together (the paper quotes
    one a, b, c).

    Eq. 28 in each group: ``eq28`` -- the default, least squares on M with a, b, c >= 0
    (the paper's description; :data:`~cbagpu.studies.regression.EQ28_DEFAULT_SPACE`),
    ``eq28_log`` -- least squares on log M with a, b, c >= 0, ``eq28_unconstrained`` --
    on log M without bounds. Each carries its ``space``; ``a``, ``b``, ``c`` repeat the
    default's values."""
    from cbagpu.studies.regression import EQ28_DEFAULT_SPACE, fit_eq28, fit_linear, fit_power_law

    def attempt(fn: Callable[..., Any], *args: Any, **kw: Any) -> dict[str, Any]:
        try:
            return fn(*args, **kw).to_dict()
        except ValueError as e:
            return {"error": str(e)}

    def cols(rs: Sequence[Mapping[str, Any]], *names: str) -> list[np.ndarray]:
        return [np.array([r[n] for r in rs], np.float64) for n in names]

    out: dict[str, Any] = {}
    # rows whose transport solve did not meet its tolerance carry an unreliable M: kept in
    # the table, left out of the fits (counted as "not_converged")
    unconverged = {id(r) for r in rows if r.get("converged") is False}
    groups = {ph: [r for r in rows if r["phase"] == ph] for ph in PHASES}
    groups["both"] = list(rows)
    for name, all_rs in groups.items():
        rs = [r for r in all_rs if id(r) not in unconverged]
        eps, beta, tau, M, v1 = cols(rs, "epsilon", "constrictivity", "geodesic_tortuosity",
                                     "M", "V1")
        nonperc = int(sum(1 for r in rs if not r["percolates"]))
        d: dict[str, Any] = {
            "n_rows": len(all_rs),
            "not_converged": len(all_rs) - len(rs),
            "non_percolating": nonperc,
            "eq28": attempt(fit_eq28, eps, beta, tau, M, space=EQ28_DEFAULT_SPACE),
            "eq28_log": attempt(fit_power_law, eps, beta, tau, M),
            "eq28_unconstrained": attempt(fit_power_law, eps, beta, tau, M, nonnegative=False),
        }
        if name != "both":
            d["eq29"] = attempt(fit_linear, v1, M)
            e28 = d["eq28"]
            d.update(
                a=_value(e28, "a"), b=_value(e28, "b"), c=_value(e28, "c"),
                c1=_value(d["eq29"], "c1"), c0=_value(d["eq29"], "c0"),
            )
        else:
            d.update(a=_value(d["eq28"], "a"), b=_value(d["eq28"], "b"),
                     c=_value(d["eq28"], "c"))
        out[name] = d
    return out


def _value(fit: Mapping[str, Any], name: str) -> float | None:
    return fit[name]["value"] if name in fit else None


# ------------------------------------------------------------------------------- writing
def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return str(v)


def _csv_text(rows: Sequence[Mapping[str, Any]], vary_names: Sequence[str],
              header: Sequence[str] | None = None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header is None:
        header = [*vary_names, *COLUMNS, *EXTRA_COLUMNS]
    w.writerow(header)
    for r in rows:
        w.writerow([_fmt(r[h]) for h in header])
    return buf.getvalue()


# ------------------------------------------------------------------------------- sweep
def _check_inputs(realizations: Any, shape: Any, voxel_size: Any, seed: Any) -> tuple:
    if isinstance(realizations, bool) or not isinstance(realizations, (int, np.integer)) \
            or realizations < 1:
        raise InvalidInputError(f"realizations must be an integer >= 1, got {realizations!r}")
    try:
        shp = tuple(int(n) for n in shape)
    except TypeError:
        raise InvalidInputError(f"shape must be three integers, got {shape!r}") from None
    if len(shp) != 3 or any(n < 2 for n in shp) or any(float(a) != b for a, b in
                                                        zip(shape, shp, strict=True)):
        raise InvalidInputError(f"shape must be three integers >= 2, got {shape!r}")
    vs = float(voxel_size)
    if not (math.isfinite(vs) and vs > 0):
        raise InvalidInputError(f"voxel_size must be finite and > 0 (nm), got {voxel_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0 \
            or seed + realizations > MAX_SEED:
        raise InvalidInputError(
            f"seed must be an integer in [0, 2^63 - realizations), got {seed!r}")
    return int(realizations), shp, vs, int(seed)


def check_task_fits(params: Sequence[CBAParams], shape: tuple[int, int, int],
                    voxel_size: float, backend: str) -> None:
    """Refuse, before a study writes anything, parameter sets that degenerate at
    ``voxel_size`` and tasks (generation, then transport and descriptors of the window) that
    would not fit into this machine's memory. Tasks on a remote scheduler are checked by
    the workers instead."""
    from cbagpu.backend import get_backend
    from cbagpu.memory import check_fits, host_available_memory
    from cbagpu.simulate.realization import check_voxel_model, estimate_memory, kernel_geometry
    from cbagpu.transport.solver import BYTES_PER_VOXEL

    be = get_backend(backend)
    voxels = math.prod(shape)
    what = f"one sweep task ({shape[0]}x{shape[1]}x{shape[2]} at {voxel_size:g} nm)"
    for p in params:
        est = estimate_memory(shape, kernel_geometry(check_voxel_model(p, voxel_size).eta), be)
        measure = voxels * (1 + BYTES_PER_VOXEL)  # the labels and the transport solve
        check_fits(max(est.host, measure if be.on_host else voxels), host_available_memory(),
                   what, "host")
        if not be.on_host:
            check_fits(max(est.device, measure), be.available_memory(), what, be.memory_name)


def sweep(
    base_params: CBAParams,
    vary: Mapping[str, Sequence[float]],
    realizations: int = 5,
    shape: Sequence[int] = (100, 100, 100),
    voxel_size: float = 40.0,
    seed: int = 0,
    backend: str = "auto",
    out_dir: str | Path | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int, float | None], None] | None = None,
    *,
    plot: bool | None = None,
    tol: float | None = None,
) -> SweepResult:
    """Virtual materials testing (Section 3.4): every combination of ``vary`` x realizations.

    Parameters
    ----------
    base_params : the parameters not varied (e.g. ``preset("paper")``).
    vary : ``{field: [values]}`` for any of the eight :class:`CBAParams` fields (Table 2
        units); every combination is run. ``{}`` runs the base parameters only.
    realizations : realizations per combination, seeds ``seed, seed + 1, ...`` (the same
        seeds for every combination).
    shape, voxel_size : window (z, y, x) in voxels and voxel edge length in nm.
    backend : "auto", "numpy" or "cupy", used on the workers.
    out_dir : ``DIR``; tasks are stored in ``DIR/tasks`` (resume) and ``DIR/results.csv``,
        ``DIR/fits.json``, ``DIR/summary.csv`` (per combination and phase: mean ± standard
        error over the realizations), ``DIR/figure8.png`` are written. ``None``: nothing is stored.
        A DIR holding a sweep with other settings is refused (ValueError).
    scheduler, workers, progress : see :func:`cbagpu.studies.tasks.run_tasks`.
    plot : deprecated; the library no longer draws. ``True`` still writes ``DIR/figure8.png``
        (through :func:`cbagpu.plots.plot_sweep`, with a DeprecationWarning); draw a
        returned result with :func:`cbagpu.plots.plot_sweep` instead.
    tol : transport tolerance (default :data:`cbagpu.transport.DEFAULT_TOL`).

    Rows of a phase that does not percolate are kept (M = 0, tau = inf) and left out of the
    Eq. 28 fit; fits.json says how many (``eq28.n_excluded``, ``non_percolating``).
    """
    from cbagpu.theory import model_theory
    from cbagpu.transport import DEFAULT_TOL

    t_start = time.perf_counter()
    vary_t = check_vary(base_params, vary)
    realizations, shp, vs, seed = _check_inputs(realizations, shape, voxel_size, seed)
    tol = DEFAULT_TOL if tol is None else float(tol)
    if not (math.isfinite(tol) and tol > 0):
        raise InvalidInputError(f"tol must be > 0, got {tol!r}")
    if not isinstance(backend, str):
        backend = getattr(backend, "name", backend)
    from cbagpu.backend import BACKEND_NAMES

    if backend not in BACKEND_NAMES:
        raise InvalidInputError(
            f"unknown backend {backend!r}; choose one of: {', '.join(BACKEND_NAMES)}"
        )
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise InvalidInputError(f"workers must be an integer >= 1, got {workers!r}")
    combos = _combos(vary_t)
    seeds = list(range(seed, seed + realizations))
    params_of = [base_params.replace(**c) for c in combos]
    if scheduler is None:  # every check before anything is written
        check_task_fits(params_of, shp, vs, backend)
    v1 = {i: float(model_theory(p, vs).V1) for i, p in enumerate(params_of)}
    tasks = [
        Task(_key(c, s), sweep_task,
             {"params": p.to_dict(), "shape": shp, "voxel_size": vs, "seed": s,
              "backend": backend, "axis": AXIS, "tol": tol, "max_iter": TRANSPORT_MAX_ITER})
        for c, p in zip(combos, params_of, strict=True) for s in seeds
    ]
    out = None if out_dir is None else Path(out_dir)
    # everything that defines the results; the backend is left out (the same numbers up to
    # rounding), so a sweep started on CPUs may be finished on GPUs
    check_scheduler(scheduler)  # before anything is written
    store = open_store(out, {
        "study": "sweep",
        "base_params": base_params.to_dict(),
        "vary": {k: list(v) for k, v in vary_t.items()},
        "realizations": realizations,
        "seed": seed,
        "shape": list(shp),
        "voxel_size": vs,
        "axis": AXIS,
        "transport": {"tol": tol, "max_iter": TRANSPORT_MAX_ITER},
        "phases": list(PHASES),
    })
    n_stored = sum(1 for t in tasks if store is not None and store.done(t.key))
    results = run_tasks(tasks, store, scheduler=scheduler, workers=workers, progress=progress)
    rows = _rows(list(vary_t), combos, seeds, results, v1)
    fits = fit_rows(rows)
    fits["settings"] = {
        "vary": {k: list(v) for k, v in vary_t.items()},
        "base_params": base_params.to_dict(),
        "realizations": realizations, "seed": seed, "shape": list(shp), "voxel_size": vs,
        "axis": "z", "transport_tol": tol,
        "V1": [v1[i] for i in range(len(combos))],
        "backends": sorted({str(r.get("backend", backend)) for r in results.values()}),
        "cbagpu_versions": result_versions(results),
    }
    messages = []
    mixed = mixed_versions_message(fits["settings"]["cbagpu_versions"])
    if mixed:
        messages.append(mixed)
    for ph in PHASES:
        e = fits[ph]["eq28"]
        if "error" in e:
            messages.append(f"{ph}: Eq. 28 not fitted: {e['error']}")
        elif e["n_excluded"]:
            messages.append(f"{ph}: {e['n_excluded']} of {fits[ph]['n_rows']} rows excluded "
                            "from the Eq. 28 fit (not percolating or not finite)")
        if "error" in fits[ph]["eq29"]:
            messages.append(f"{ph}: Eq. 29 not fitted: {fits[ph]['eq29']['error']}")
        if fits[ph]["not_converged"]:
            messages.append(f"{ph}: {fits[ph]['not_converged']} rows left out of both fits: "
                            "their transport solve did not converge (column converged)")
    summary = summarize_rows(rows, list(vary_t))
    files: dict[str, str] = {}
    if out is not None:
        write_text_atomic(out / "results.csv", _csv_text(rows, list(vary_t)))
        files["results"] = str(out / "results.csv")
        write_json_atomic(out / "fits.json", fits)
        files["fits"] = str(out / "fits.json")
        write_text_atomic(out / "summary.csv", _csv_text(summary, [], summary_columns(vary_t)))
        files["summary"] = str(out / "summary.csv")
    result = SweepResult(
        rows=tuple(rows), fits=fits, vary=vary_t, files=files, n_tasks=len(tasks),
        n_computed=len(tasks) - n_stored, seconds=time.perf_counter() - t_start,
        task_seconds={k: float(r["seconds"]["total"]) for k, r in results.items()},
        messages=tuple(messages), summary=tuple(summary),
    )
    if plot and out is not None:
        warnings.warn("sweep(plot=True) is deprecated: draw the result with "
                      "cbagpu.plots.plot_sweep(result, path)", DeprecationWarning, stacklevel=2)
        from cbagpu.plots import plot_sweep

        files["plot"] = str(plot_sweep(result, out / "figure8.png", title=sweep_title(
            vary_t, realizations, shp, vs)))
    return result


def summary_columns(vary_names: Sequence[str]) -> list[str]:
    """Columns of summary.csv (:func:`summarize_rows`)."""
    return [*vary_names, "phase", "realizations",
            *(f"{q}_{k}" for q in SUMMARY_QUANTITIES for k in SUMMARY_STATS)]


def sweep_title(vary: Sequence[str], realizations: int, shape: Sequence[int],
                voxel_size: float) -> str:
    """The title of a sweep's Figure 8."""
    return (f"sweep of {', '.join(vary) or 'nothing'}: {realizations} realizations, "
            f"{shape[0]}x{shape[1]}x{shape[2]} at {voxel_size:g} nm")
