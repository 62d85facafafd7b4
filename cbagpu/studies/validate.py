"""Model validation across resolutions (paper Sections 3.3 and 4.2, Figures 5-7; issue 6).

For every down-sampling factor f the study compares

* the **image** down-sampled by slice removal, ``image[::f, ::f, ::f]`` at voxel size
  ``f * voxel_size`` (NOTES §8, :func:`cbagpu.prepare.resample.resample`), with
* ``realizations`` **model realizations** generated at voxel size ``f * voxel_size`` (every
  parameter with a unit converted with the new s, γ and μ kept; NOTES §3) in a window of the
  down-sampled image's shape, seeds ``seed .. seed + realizations - 1``,

by the descriptors of Section 3.3 of the solid (labels 1 + 2) and pore (label 0) phases:
volume fraction, specific surface area S_V (Ohser-Schladitz configuration counts), r_max
(CPSD⁻¹(0.5), Eq. 26), r_min (simulated intrusion), constrictivity β = (r_min / r_max)² and
mean geodesic tortuosity τ, plus the CPSD curves (Figure 6) and the centred two-point
coverage C(h) − V² (Figure 7). Everything is computed by :func:`cbagpu.measure.describe`.

Each (source, factor, seed) is one :class:`cbagpu.studies.tasks.Task` run by
:func:`~cbagpu.studies.tasks.run_tasks` (in-process, local Dask cluster or a running
scheduler) and stored in ``out_dir/tasks`` as it finishes, so an interrupted study resumes.
The store's spec holds what defines a task's result (image hash and shape, voxel size,
parameters, inlet axis, phases); the number of realizations, the factors and the seed only
decide *which* tasks exist, so a study can be extended (more realizations, another factor)
in the same directory and reuses every finished task.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cbagpu.backend import BACKEND_NAMES, Backend, get_backend
from cbagpu.errors import InvalidInputError
from cbagpu.io.atomic import save_npy_atomic, write_json_atomic, write_text_atomic
from cbagpu.params import CBAParams
from cbagpu.prepare.resample import resample, resampled_shape
from cbagpu.studies.sampling import SampleStats, sample_stats
from cbagpu.validation import check_axis, check_voxel_size

__all__ = [
    "CURVES",
    "DESCRIPTORS",
    "MIN_VOXELS",
    "PHASES",
    "CurveSummary",
    "ScalarSummary",
    "ValidationResult",
    "image_sha256",
    "validate",
    "write_tables",
]

#: Phases compared (Figure 5 b-c, e-f): solid = labels 1 and 2, pore = label 0.
PHASES: tuple[str, ...] = ("solid", "pore")
#: Scalar descriptors of every phase and their units (nm based).
DESCRIPTORS: dict[str, str] = {
    "volume_fraction": "",
    "S_V": "nm^-1",
    "r_max": "nm",
    "r_min": "nm",
    "constrictivity": "",
    "geodesic_tortuosity": "",
}
#: Curves of every phase: name -> name of the abscissa (nm).
CURVES: dict[str, str] = {"cpsd": "r", "covariance_centred": "h"}
#: Smallest number of voxels per axis a down-sampled image may keep.
MIN_VOXELS = 16
#: Version of the task results' layout (part of the store's spec).
TASK_FORMAT = 1

CSV_COLUMNS: tuple[str, ...] = (
    "factor", "voxel_size", "phase", "descriptor", "unit",
    "image", "model_mean", "model_min", "model_max", "model_n",
    # appended (issue 18): sample standard deviation (ddof=1) over the realizations and
    # the standard error of the mean, model_sd / sqrt(model_n); empty when model_n < 2
    "model_sd", "model_se",
)


# ------------------------------------------------------------------------------- results
def _num(v: float) -> float | None:
    """JSON number, non-finite -> null."""
    v = float(v)
    return v if math.isfinite(v) else None


def _arr(a: np.ndarray) -> list[float | None]:
    return [_num(x) for x in np.asarray(a, dtype=float)]


@dataclass(frozen=True)
class ScalarSummary:
    """One row of the table: a descriptor of a phase at one factor (Figure 5).

    ``model_sd`` is the sample standard deviation (``ddof=1``) of the finite
    ``model_values`` and ``model_se = model_sd / sqrt(model_n)`` the standard error of
    ``model_mean`` (the realizations are independent); both NaN when ``model_n < 2``.
    """

    factor: int
    voxel_size: float
    phase: str
    descriptor: str
    unit: str
    image: float
    model_mean: float  # mean over the realizations with a finite value
    model_min: float
    model_max: float
    model_n: int  # realizations with a finite value
    model_values: np.ndarray  # per realization (seed order); NaN where undefined
    model_sd: float  # sample standard deviation (ddof=1) of the finite values
    model_se: float  # standard error of model_mean: model_sd / sqrt(model_n)

    def to_dict(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "voxel_size": self.voxel_size,
            "phase": self.phase,
            "descriptor": self.descriptor,
            "unit": self.unit,
            "image": _num(self.image),
            "model_mean": _num(self.model_mean),
            "model_min": _num(self.model_min),
            "model_max": _num(self.model_max),
            "model_n": self.model_n,
            "model_values": _arr(self.model_values),
            "model_sd": _num(self.model_sd),
            "model_se": _num(self.model_se),
        }


@dataclass(frozen=True)
class CurveSummary:
    """A curve of a phase at one factor: the image's and the model's mean/min/max pointwise,
    with the sample standard deviation (``ddof=1``) and the standard error of the mean
    (``model_sd / sqrt(model_n)``) over the realizations with a finite value at that x.

    ``curve`` is ``"cpsd"`` (x = r in nm, Eq. 26, Figure 6) or ``"covariance_centred"``
    (x = h in nm, C(h) − V², Figure 7).
    """

    factor: int
    voxel_size: float
    phase: str
    curve: str
    x: np.ndarray
    image: np.ndarray
    model_mean: np.ndarray
    model_min: np.ndarray
    model_max: np.ndarray
    model_sd: np.ndarray
    model_se: np.ndarray
    model_n: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "voxel_size": self.voxel_size,
            "phase": self.phase,
            "curve": self.curve,
            "x_name": CURVES[self.curve],
            "x": _arr(self.x),
            "image": _arr(self.image),
            "model_mean": _arr(self.model_mean),
            "model_min": _arr(self.model_min),
            "model_max": _arr(self.model_max),
            "model_sd": _arr(self.model_sd),
            "model_se": _arr(self.model_se),
            "model_n": [int(k) for k in self.model_n],
        }


@dataclass(frozen=True)
class ValidationResult:
    """Image vs model descriptors per factor and phase (Figures 5-7)."""

    voxel_size: float
    factors: tuple[int, ...]
    realizations: int
    seed: int
    axis: int
    shape: tuple[int, int, int]
    image_sha256: str
    params: dict[str, float]
    backend: str
    scalars: tuple[ScalarSummary, ...]
    curves: tuple[CurveSummary, ...]
    #: cbagpu versions that computed the tasks (several: resumed after an upgrade)
    versions: tuple[str, ...] = ()

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(range(self.seed, self.seed + self.realizations))

    def scalar(self, factor: int, phase: str, descriptor: str) -> ScalarSummary:
        """The row of ``descriptor`` of ``phase`` at ``factor`` (KeyError if absent)."""
        for row in self.scalars:
            if (row.factor, row.phase, row.descriptor) == (factor, phase, descriptor):
                return row
        raise KeyError(f"no row for factor {factor}, phase {phase!r}, {descriptor!r}")

    def curve(self, factor: int, phase: str, curve: str) -> CurveSummary:
        """The ``curve`` ("cpsd" or "covariance_centred") of ``phase`` at ``factor``."""
        for c in self.curves:
            if (c.factor, c.phase, c.curve) == (factor, phase, curve):
                return c
        raise KeyError(f"no curve {curve!r} for factor {factor}, phase {phase!r}")

    def meta(self) -> dict[str, Any]:
        return {
            "image": {"shape": list(self.shape), "sha256": self.image_sha256},
            "voxel_size": self.voxel_size,
            "factors": list(self.factors),
            "voxel_sizes": [f * self.voxel_size for f in self.factors],
            "realizations": self.realizations,
            "seeds": list(self.seeds),
            "axis": "zyx"[self.axis],
            "phases": list(PHASES),
            "params": dict(self.params),
            "backend": self.backend,
            "cbagpu_versions": list(self.versions),
            "units": "nm",
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``meta``, ``scalars`` (the CSV rows + per-realization values) and
        ``curves`` (image curve and model mean/min/max per r or h)."""
        return {
            "meta": self.meta(),
            "scalars": [r.to_dict() for r in self.scalars],
            "curves": [c.to_dict() for c in self.curves],
        }

    def csv_text(self) -> str:
        """The table: one row per factor, phase and descriptor (empty cell = undefined);
        ``model_sd`` and ``model_se`` (issue 18) come last, after ``model_n``."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        def cells(*vs: float) -> list[str]:
            return ["" if not math.isfinite(v) else repr(float(v)) for v in vs]

        for r in self.scalars:
            w.writerow([r.factor, repr(r.voxel_size), r.phase, r.descriptor, r.unit,
                        *cells(r.image, r.model_mean, r.model_min, r.model_max), r.model_n,
                        *cells(r.model_sd, r.model_se)])
        return buf.getvalue()


# ------------------------------------------------------------------------------- helpers
def write_tables(result: ValidationResult, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``out_dir/validation.csv`` and ``out_dir/validation.json`` (atomically)."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = d / "validation.csv", d / "validation.json"
    write_text_atomic(csv_path, result.csv_text())
    write_json_atomic(json_path, result.to_dict(), indent=1)
    return [csv_path, json_path]


def image_sha256(labels: np.ndarray) -> str:
    """SHA-256 of a label image's shape, dtype and C-order bytes."""
    a = np.ascontiguousarray(labels)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    flat = a.reshape(-1).view(np.uint8)
    step = 1 << 26
    for i in range(0, flat.size, step):
        h.update(flat[i:i + step])
    return h.hexdigest()


def _host_labels(image: Any) -> np.ndarray:
    if hasattr(image, "__cuda_array_interface__"):
        image = image.get()
    a = np.asarray(image)
    if a.ndim != 3:
        raise InvalidInputError(f"a 3D label image (z, y, x) is needed, got shape {a.shape}")
    if a.dtype.kind not in "biu":
        raise InvalidInputError(f"a label image of integers is needed, got dtype {a.dtype}")
    if a.size == 0:
        raise InvalidInputError(f"the image is empty (shape {a.shape})")
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi > 2:
        raise InvalidInputError(f"labels must be 0 (pore), 1 (CBD), 2 (graphite); found values in "
                         f"[{lo}, {hi}]")
    return a.astype(np.uint8, copy=False)


def _check_factors(factors: Sequence[int], shape: tuple[int, ...]) -> tuple[int, ...]:
    try:
        fs = list(factors)
    except TypeError:
        raise InvalidInputError(
            f"factors must be a sequence of integers >= 1, got {factors!r}") from None
    if not fs:
        raise InvalidInputError("factors must name at least one down-sampling factor (e.g. 1 2 4)")
    out: list[int] = []
    for f in fs:
        if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or f < 1:
            raise InvalidInputError(f"factors must be integers >= 1, got {f!r}")
        if int(f) in out:
            raise InvalidInputError(f"factor {int(f)} is given twice")
        out.append(int(f))
    for f in out:
        ds = resampled_shape(shape, (f, f, f))
        if min(ds) < MIN_VOXELS:
            n = min(shape)
            largest = max((k for k in range(1, n + 1) if -(-n // k) >= MIN_VOXELS), default=0)
            hint = (f"use factors <= {largest}" if largest >= 1
                    else f"the image itself has fewer than {MIN_VOXELS} voxels along an axis")
            raise InvalidInputError(
                f"factor {f} leaves {'x'.join(map(str, ds))} voxels of the "
                f"{'x'.join(map(str, shape))} image (fewer than {MIN_VOXELS} per axis); {hint}"
            )
    return tuple(sorted(out))


def _finite_or_nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _validation_task(*, source: str, factor: int, voxel_size: float, axis: int, backend: str,
                     phases: Sequence[str], labels: np.ndarray | None = None,
                     labels_path: str | None = None,
                     params: Mapping[str, float] | None = None,
                     shape: Sequence[int] | None = None, seed: int | None = None) -> dict:
    """Descriptors of one source at one factor (runs on a worker; returns a JSON dict).

    ``source="image"``: ``labels`` is the down-sampled image (or ``labels_path`` a .npy
    file of it, which keeps large images out of the Dask graph). ``source="model"``: a
    realization of ``params`` (Table 2 units) in a window ``shape`` at ``voxel_size`` (the
    coarse one) with ``seed``.
    """
    import time

    from cbagpu.measure.describe import describe
    from cbagpu.simulate import generate

    be = get_backend(backend)
    t0 = time.perf_counter()
    if source == "image":
        lab = np.load(labels_path) if labels_path is not None else labels
    elif source == "model":
        lab = generate(CBAParams.from_dict(dict(params or {})), tuple(shape or ()), voxel_size,
                       int(seed or 0), backend=be)
    else:
        raise InvalidInputError(f"unknown source {source!r}")
    t1 = time.perf_counter()
    desc = describe(lab, voxel_size, phases=tuple(phases), axis=axis, backend=be)
    out_phases: dict[str, Any] = {}
    for name, p in desc.phases.items():
        d: dict[str, Any] = {k: _num(getattr(p, k)) for k in DESCRIPTORS}
        d["fraction_connected"] = _num(p.fraction_connected)
        d["cpsd"] = {"r": _arr(p.cpsd_r), "value": _arr(p.cpsd_value)}
        d["covariance_centred"] = {"h": _arr(p.covariance_h), "value": _arr(p.covariance_centred)}
        out_phases[name] = d
    return {
        "source": source,
        "factor": int(factor),
        "voxel_size": float(voxel_size),
        "seed": None if seed is None else int(seed),
        "shape": [int(n) for n in desc.shape],
        "backend": desc.backend,
        "seconds": {"generate": t1 - t0, "describe": time.perf_counter() - t1},
        "phases": out_phases,
    }


def _image_key(f: int) -> str:
    return f"image,f={f}"


def _model_key(f: int, seed: int) -> str:
    return f"model,f={f},seed={seed}"


# ------------------------------------------------------------------------- aggregation
def _curve_values(entry: Mapping[str, Any], curve: str) -> tuple[np.ndarray, np.ndarray]:
    c = entry[curve]
    x = np.asarray([_finite_or_nan(v) for v in c[CURVES[curve]]], dtype=float)
    y = np.asarray([_finite_or_nan(v) for v in c["value"]], dtype=float)
    return x, y


def _summarize_curve(curve: str, step: float, image: Mapping[str, Any],
                     models: Sequence[Mapping[str, Any]]
                     ) -> tuple[np.ndarray, np.ndarray, SampleStats]:
    """Put the image and model curves on one grid x = k * step and reduce the models.

    CPSD radii are k * s for k = 0 .. R+1 with CPSD(R+1) = 0 (the grid of
    :mod:`cbagpu.measure.cpsd`), so a shorter curve continues with its last value. The centred C(h)
    of one factor shares one lag grid (same window shape).
    """
    pairs = [_curve_values(image, curve)] + [_curve_values(m, curve) for m in models]
    k_max = max(len(x) for x, _ in pairs) - 1
    x = np.arange(k_max + 1, dtype=float) * step
    rows = []
    for xi, yi in pairs:
        k = np.rint(xi / step).astype(int) if xi.size else np.zeros(0, int)
        if xi.size and (np.any(np.abs(xi - k * step) > 1e-6 * step) or
                        np.any(k != np.arange(len(k)))):
            raise InvalidInputError(
                f"{curve}: abscissae are not the grid 0, s, 2s, ... (s = {step})"
            )
        # CPSD: constant continuation (0 after CPSD(R+1) = 0; 1 for a phase filling the
        # window, whose grid stops at r = 0; NaN for an empty phase)
        fill = yi[-1] if (curve == "cpsd" and len(yi)) else np.nan
        row = np.full(k_max + 1, fill)
        row[: len(yi)] = yi
        rows.append(row)
    return x, rows[0], sample_stats(np.array(rows[1:]).reshape(len(models), k_max + 1))


def summarize(results: Mapping[str, Mapping[str, Any]], *, voxel_size: float,
              factors: Sequence[int], realizations: int, seed: int, axis: int,
              shape: tuple[int, int, int], image_hash: str, params: Mapping[str, float],
              backend: str, versions: Sequence[str] = ()) -> ValidationResult:
    """Reduce the task results (key -> dict) to the validation table and curves."""
    scalars: list[ScalarSummary] = []
    curves: list[CurveSummary] = []
    seeds = range(seed, seed + realizations)
    for f in factors:
        s = f * voxel_size
        img = results[_image_key(f)]["phases"]
        mods = [results[_model_key(f, k)]["phases"] for k in seeds]
        for ph in PHASES:
            for name, unit in DESCRIPTORS.items():
                vals = np.array([_finite_or_nan(m[ph][name]) for m in mods])
                st = sample_stats(vals)
                scalars.append(ScalarSummary(
                    f, s, ph, name, unit, _finite_or_nan(img[ph][name]), st.mean, st.vmin,
                    st.vmax, st.n, vals, st.sd, st.se))
            for cname in CURVES:
                x, im, st = _summarize_curve(cname, s, img[ph], [m[ph] for m in mods])
                curves.append(CurveSummary(f, s, ph, cname, x, im, st.mean, st.vmin, st.vmax,
                                           st.sd, st.se, st.n))
    return ValidationResult(
        voxel_size=float(voxel_size), factors=tuple(factors), realizations=realizations,
        seed=seed, axis=axis, shape=shape, image_sha256=image_hash, params=dict(params),
        backend=backend, scalars=tuple(scalars), curves=tuple(curves),
        versions=tuple(versions),
    )


# --------------------------------------------------------------------------- the study
def _validation_tasks(labels: np.ndarray, voxel_size: float, fs: Sequence[int],
                      realizations: int, seed: int, shape: tuple[int, ...],
                      pdict: dict[str, float], common: dict[str, Any], store: Any,
                      inputs: Path | None) -> list[Any]:
    """One task per (image, factor) and per (model, factor, seed). The down-sampled image
    travels as a ``.npy`` file in ``inputs`` when given (else inside the task), and not at
    all for a task the store already holds."""
    from cbagpu.studies.tasks import Task

    tasks = []
    for f in fs:
        s = f * voxel_size
        key = _image_key(f)
        kw: dict[str, Any] = {**common, "source": "image", "factor": f, "voxel_size": s}
        if store is not None and store.done(key):
            pass
        elif inputs is not None:
            path = inputs / f"image-f{f}.npy"
            save_npy_atomic(path, resample(labels, voxel_size, s))
            kw["labels_path"] = str(path.resolve())
        else:
            kw["labels"] = resample(labels, voxel_size, s)
        tasks.append(Task(key, _validation_task, kw))
        ds_shape = list(resampled_shape(shape, (f, f, f)))
        for k in range(seed, seed + realizations):
            tasks.append(Task(_model_key(f, k), _validation_task, {
                **common, "source": "model", "factor": f, "voxel_size": s, "params": pdict,
                "shape": ds_shape, "seed": k}))
    return tasks


def validate(
    image: Any,
    voxel_size: float,
    params: CBAParams,
    *,
    realizations: int = 5,
    factors: Sequence[int] = (1, 2, 4),
    seed: int = 0,
    axis: int | str = 0,
    backend: str | Backend = "auto",
    out_dir: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int, float | None], None] | None = None,
    plot: bool = False,
) -> ValidationResult:
    """Compare a label image with model realizations across resolutions (Section 3.3, 4.2).

    Parameters
    ----------
    image : uint8 label image (z, y, x): 0 pore, 1 CBD, 2 graphite (NumPy or CuPy).
    voxel_size : its voxel edge length s in nm.
    params : the calibrated model (Table 2 units); realizations at f·s use it converted
        with the new voxel size (NOTES §3, §8).
    realizations : model realizations per factor (seeds ``seed .. seed + realizations - 1``).
    factors : down-sampling factors; factor f keeps ``image[::f, ::f, ::f]`` (slice removal)
        and compares it with realizations at ``f * voxel_size`` of the same shape. Every
        factor must leave at least :data:`MIN_VOXELS` voxels per axis.
    axis : inlet axis (0/1/2 or "z"/"y"/"x") of the intrusion (r_min) and of the geodesic
        tortuosity.
    backend : "auto", "numpy", "cupy" or a Backend; checked here, and its name is what the
        tasks use (with ``scheduler`` the name is passed as given: the workers resolve it).
    out_dir : if given, finished tasks are stored in ``out_dir/tasks`` (a rerun resumes;
        other settings in the same directory are refused) and ``validation.csv`` and
        ``validation.json`` are written there (atomically).
    plot : deprecated (the library no longer draws): ``True`` still adds ``figure5.png``,
        ``figure6.png``, ``figure7.png`` to ``out_dir`` through
        :func:`cbagpu.plots.plot_validation`, with a DeprecationWarning.
    scheduler, workers, progress : as :func:`cbagpu.studies.tasks.run_tasks` (``workers=1``:
        plain in-process loop; default: a local Dask cluster sized to the machine).

    Returns
    -------
    ValidationResult
        One :class:`ScalarSummary` per factor, phase and descriptor (image value, model
        mean/min/max over the realizations, their sample standard deviation and the
        standard error of the mean, sd / sqrt(n)) and one :class:`CurveSummary` per factor, phase
        and curve (CPSD, centred C(h)).
    """
    from cbagpu.studies.tasks import check_scheduler, open_store, result_versions, run_tasks

    if not isinstance(params, CBAParams):
        raise InvalidInputError(f"params must be a CBAParams, got {type(params).__name__}")
    voxel_size = check_voxel_size(voxel_size)
    if isinstance(realizations, bool) or not isinstance(realizations, (int, np.integer)) \
            or realizations < 1:
        raise InvalidInputError(f"realizations must be an integer >= 1, got {realizations!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"seed must be an integer >= 0, got {seed!r}")
    ax = check_axis(axis)
    realizations, seed = int(realizations), int(seed)
    labels = _host_labels(image)
    shape = tuple(int(n) for n in labels.shape)
    fs = _check_factors(factors, shape)
    if plot:
        if out_dir is None:
            raise InvalidInputError("plot=True needs out_dir (the figures are written there)")
        warnings.warn("validate(plot=True) is deprecated: draw the result with "
                      "cbagpu.plots.plot_validation(result, folder)", DeprecationWarning,
                      stacklevel=2)
        from cbagpu.plots import require_matplotlib

        require_matplotlib()
    if isinstance(backend, Backend):
        be_name = backend.name
    elif scheduler is None:
        be_name = get_backend(backend).name
    else:
        be_name = str(backend)
        if be_name not in BACKEND_NAMES:
            get_backend(be_name)  # raises the usual error for an unknown name

    digest = image_sha256(labels)
    pdict = params.to_dict()
    check_scheduler(scheduler)  # before anything is written
    store = open_store(out_dir, {
        "study": "validate",
        "format": TASK_FORMAT,
        "image": {"sha256": digest, "shape": list(shape)},
        "voxel_size": voxel_size,
        "params": pdict,
        "axis": "zyx"[ax],
        "phases": list(PHASES),
    })

    with contextlib.ExitStack() as stack:
        inputs: Path | None = None
        if store is not None and workers != 1:
            # workers read the down-sampled images from the output folder (shared with the
            # workers, as the task store is) instead of carrying them in the task graph
            inputs = store.root.parent / "inputs"
        elif store is None and scheduler is None and workers != 1:
            # a local cluster: the workers share this machine's temporary folder
            inputs = Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="cbagpu-validate-")))
        tasks = _validation_tasks(labels, voxel_size, fs, realizations, seed, shape, pdict,
                                  {"axis": ax, "backend": be_name, "phases": list(PHASES)},
                                  store, inputs)
        results = run_tasks(tasks, store, scheduler=scheduler, workers=workers,
                            progress=progress)
    backends = sorted({r.get("backend", be_name) for r in results.values()})
    res = summarize(results, voxel_size=voxel_size, factors=fs, realizations=realizations,
                    seed=seed, axis=ax, shape=shape, image_hash=digest, params=pdict,
                    backend=",".join(backends), versions=result_versions(results))
    if out_dir is not None:
        write_tables(res, out_dir)
        if plot:
            from cbagpu.plots import plot_validation

            plot_validation(res, out_dir)
    return res
