"""The GPU route's cost account, run on the CPU: ``python -m benchmarks budget [--json]``.

Every GPU stage runs at a fixed small size on
:class:`~cbagpu.backend.accounting.AccountingBackend` over
:class:`~cbagpu.backend.host_kernels.HostKernelBackend` (the CUDA kernels compiled for the
host), which counts launches, device-to-host reads (and bytes), synchronisations and the
peak of live device bytes per stage. The counts are deterministic; they are reported per
stage and per inner unit and checked against :data:`BUDGETS`:

* ``transport``: per CG iteration (measured between two convergence checks, so a check's
  read is shared by the iterations it covers), at two sizes whose multigrid hierarchies
  have 4 and 5 levels (48^3, 96^3: the launches per iteration must not grow with the
  levels);
* ``geodesic`` and ``intrusion``: per round of six sweeps, as the difference between two
  images of the same size that need different numbers of rounds (a straight and a
  zig-zag channel), at two sizes (the per-round cost must not grow with the planes);
* ``generate`` and ``field``: at two windows (the second twice as long): reads must not
  grow; device bytes at most 16 per voxel of the window plus one field block;
* ``fit``: per theta of the pore stage (between two progress events): no volume comes to
  the host (read bytes per theta below a small bound and below the image's voxels);
* the descriptors (volume fraction and covariance, intrinsic volumes, CPSD) are reported
  without a budget.

Exit status 1 when a budget is exceeded. ``--seconds`` also times the same stages on the
default backend (the GPU where there is one), so the count can be set beside the time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Per-unit budgets (the issue "GPU route at its floor").
BUDGETS: dict[str, dict[str, float]] = {
    "transport": {"reads_per_iteration": 1.0, "launches_per_iteration": 20.0,
                  "launches_per_iteration_growth": 0.0},
    "geodesic": {"reads_per_round": 1.0, "launches_per_round_growth": 0.0},
    "intrusion": {"reads_per_round": 1.0, "launches_per_round_growth": 0.0},
    "generate": {"reads_growth": 0.0, "device_bytes_per_voxel_plus_block": 16.0},
    "field": {"reads_growth": 0.0, "device_bytes_per_voxel_plus_block": 16.0},
    "fit": {"read_bytes_per_theta": 65536.0},
}

VOXEL_NM = 40.0


@dataclass
class Check:
    """One budget: ``value`` must not exceed ``limit``."""

    stage: str
    name: str
    value: float
    limit: float

    @property
    def ok(self) -> bool:
        return self.value <= self.limit + 1e-9

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "name": self.name, "value": self.value,
                "limit": self.limit, "ok": self.ok}


@dataclass
class Report:
    """Counts per stage, per-unit figures and the checks."""

    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "stages": self.stages,
                "checks": [c.to_dict() for c in self.checks]}


def _backend() -> Any:
    from cbagpu.backend.accounting import AccountingBackend
    from cbagpu.backend.host_kernels import HostKernelBackend

    return AccountingBackend(HostKernelBackend(workers=1))


def _labels(shape: tuple[int, int, int], seed: int = 1) -> np.ndarray:
    from cbagpu import generate, preset

    return generate(preset("paper"), shape, VOXEL_NM, seed, backend="numpy")


def _snapshot(c: Any) -> tuple[int, int, int, int]:
    return (c.launches, c.reads, c.read_bytes, c.kernel_launches)


# ------------------------------------------------------------------------------------ stages
def _transport_per_iteration(be: Any, n: int, stage: str) -> dict[str, Any]:
    """One solve of the pore phase of an ``n``^3 realization (float32, a tolerance it does
    not reach early): counts per CG iteration between the second and the last check."""
    from cbagpu.transport import transport

    labels = _labels((n, n, n))
    marks: list[tuple[int, tuple[int, int, int, int]]] = []
    with be.stage(stage) as c:
        def progress(it: int, spread: float) -> None:
            marks.append((it, _snapshot(c)))

        res = transport(labels, "pore", 0, backend=be, tol=1.001e-3, max_iter=40,
                        progress=progress)
    (i0, s0), (i1, s1) = marks[1], marks[-1]
    iters = i1 - i0
    per = {"launches_per_iteration": (s1[0] - s0[0]) / iters,
           "reads_per_iteration": (s1[1] - s0[1]) / iters,
           "read_bytes_per_iteration": (s1[2] - s0[2]) / iters}
    return {"size": n, "iterations": res.iterations, "counts": c.to_dict(), "per_unit": per}


def stage_transport(be: Any, report: Report, n: int = 48, n_more_levels: int = 96) -> None:
    """The transport solve at ``n``^3 (4 multigrid levels at 48) and at
    ``n_more_levels``^3 (5 levels at 96): per-iteration reads and launches against the
    budget, and the growth of the launches with the levels."""
    from cbagpu.transport.solver import COARSEST_CELLS

    small = _transport_per_iteration(be, n, "transport")
    large = _transport_per_iteration(be, n_more_levels, "transport, more levels")

    def levels(m: int) -> int:
        count, cells = 1, m**3
        while cells > COARSEST_CELLS:
            m, cells, count = -(-m // 2), (-(-m // 2)) ** 3, count + 1
        return count

    small["levels"], large["levels"] = levels(n), levels(n_more_levels)
    report.stages["transport"] = {**small, "more_levels": large}
    per = small["per_unit"]
    for key in ("reads_per_iteration", "launches_per_iteration"):
        report.checks.append(Check("transport", key, per[key], BUDGETS["transport"][key]))
    report.checks.append(Check(
        "transport", "launches_per_iteration_growth",
        large["per_unit"]["launches_per_iteration"] - per["launches_per_iteration"],
        BUDGETS["transport"]["launches_per_iteration_growth"]))


def _channel(n: int, zigzag: bool) -> np.ndarray:
    """A pore channel along z (True = pore) with solid plates every 4 layers; each plate's
    gap is at the low or the high end of y, alternating when ``zigzag`` (else always low:
    a straight channel with bumps)."""
    m = np.ones((n, n, n), dtype=bool)
    for i, z in enumerate(range(3, n - 3, 4)):
        m[z] = False
        gap = slice(0, 3) if (i % 2 == 0 or not zigzag) else slice(n - 3, n)
        m[z, gap] = True
    return m


def _rounds_stage(be: Any, report: Report, name: str, run: Callable[[Any], Any],
                  sweep_prefix: str, sizes: tuple[int, int] = (24, 40)) -> None:
    """Per-round cost of a sweep route by the difference of two images (module docstring)."""
    per_size = {}
    for n in sizes:
        rows = []
        for zigzag in (False, True):
            with be.stage(f"{name}-{n}-{'zigzag' if zigzag else 'straight'}") as c:
                run(_channel(n, zigzag))
            sweeps = sum(v for k, v in c.kernels.items() if k.startswith(sweep_prefix))
            rows.append((sweeps / 6, c))
        (r0, c0), (r1, c1) = rows
        if r1 <= r0:  # no kernel counts (a timing run) or a broken test image
            report.checks.append(Check(name, "zigzag_needs_more_rounds", 1.0, 0.0))
            return
        dr = r1 - r0
        per_size[n] = {
            "rounds": [r0, r1],
            "reads_per_round": (c1.reads - c0.reads) / dr,
            "launches_per_round": (c1.launches - c0.launches) / dr,
            "setup_reads": c0.reads - r0 * (c1.reads - c0.reads) / dr,
            "counts": c1.to_dict(),
        }
    a, b = (per_size[n] for n in sizes)
    report.stages[name] = {"sizes": list(sizes), "per_size": per_size}
    report.checks.append(Check(name, "reads_per_round",
                               max(a["reads_per_round"], b["reads_per_round"]),
                               BUDGETS[name]["reads_per_round"]))
    report.checks.append(Check(name, "launches_per_round_growth",
                               b["launches_per_round"] - a["launches_per_round"],
                               BUDGETS[name]["launches_per_round_growth"]))


def stage_geodesic(be: Any, report: Report) -> None:
    from cbagpu.measure.geodesic import geodesic_tortuosity

    _rounds_stage(be, report, "geodesic",
                  lambda m: geodesic_tortuosity(m, VOXEL_NM, 0, be, method="rounds"),
                  "cba_geodesic_sweep")


def stage_intrusion(be: Any, report: Report) -> None:
    from cbagpu.measure.intrusion import intrusion

    _rounds_stage(be, report, "intrusion",
                  lambda m: intrusion(m, VOXEL_NM, 0, "low", be, method="sweeps"),
                  "cba_widest_sweep")


def _window_stage(be: Any, report: Report, name: str, run: Callable[[tuple], Any],
                  block_bytes: int, shapes: tuple[tuple, tuple]) -> None:
    rows = []
    for shape in shapes:
        with be.stage(f"{name}-{'x'.join(map(str, shape))}") as c:
            run(shape)
        rows.append((shape, c))
    (sa, ca), (sb, cb) = rows
    voxels = int(np.prod(sb))
    allowed = 16 * voxels + block_bytes
    report.stages[name] = {"windows": [list(sa), list(sb)], "block_bytes": block_bytes,
                           "counts": [ca.to_dict(), cb.to_dict()],
                           "per_unit": {"peak_new_bytes": cb.peak_new_bytes,
                                        "allowed_bytes": allowed,
                                        "reads": [ca.reads, cb.reads]}}
    report.checks.append(Check(name, "reads_growth", cb.reads - ca.reads,
                               BUDGETS[name]["reads_growth"]))
    report.checks.append(Check(name, "device_bytes/(16 N + block)",
                               cb.peak_new_bytes / allowed, 1.0))


def _field_block_bytes() -> tuple[Any, int]:
    from cbagpu import preset
    from cbagpu.simulate.realization import check_voxel_model, kernel_geometry

    vp = check_voxel_model(preset("paper"), VOXEL_NM)
    g = kernel_geometry(vp.eta)
    return vp, 14 * g.fft_size**3  # the block working set of estimate_memory


def stage_generate(be: Any, report: Report) -> None:
    from cbagpu import generate, preset

    vp, block = _field_block_bytes()
    _window_stage(be, report, "generate",
                  lambda shape: generate(preset("paper"), shape, VOXEL_NM, 1, backend=be),
                  block, ((24, 24, 24), (96, 24, 24)))


def stage_field(be: Any, report: Report) -> None:
    from cbagpu.simulate.grf import gaussian_field

    vp, block = _field_block_bytes()
    _window_stage(be, report, "field",
                  lambda shape: gaussian_field(vp.eta, shape, 1, backend=be),
                  block, ((24, 24, 24), (96, 24, 24)))


def stage_descriptors(be: Any, report: Report, n: int = 32) -> None:
    """Volume fraction and covariance, intrinsic volumes and CPSD: reported, no budget."""
    from cbagpu.measure.covariance import two_point_coverage
    from cbagpu.measure.cpsd import cpsd
    from cbagpu.measure.minkowski import intrinsic_volumes
    from cbagpu.measure.phases import phase_mask

    mask = phase_mask(_labels((n, n, n)), "pore")
    for name, fn in (("covariance", two_point_coverage), ("intrinsic_volumes",
                     intrinsic_volumes), ("cpsd", cpsd)):
        with be.stage(name) as c:
            fn(mask, VOXEL_NM, backend=be)
        report.stages[name] = {"size": n, "counts": c.to_dict()}


def stage_fit(be: Any, report: Report, n: int = 48) -> None:
    """The fit's theta loop (the pore stage, Section 3.2.3) on a paper realization with the
    paper's other parameters, one realization per theta and a three-value grid; the stages
    before it (graphite, the field's ROI) run once per fit."""
    from cbagpu import preset
    from cbagpu.fit.pores import fit_pores

    labels = _labels((n, n, n), seed=3)
    marks: list[tuple[int, int, int, int]] = []
    with be.stage("fit") as c:
        def progress(stage: str, done: int, total: int) -> None:
            if stage == "theta":
                marks.append(_snapshot(c))

        fit_pores(labels, VOXEL_NM, preset("paper"), realizations=1, seed=0, backend=be,
                  progress=progress, theta_grid=(0.02, 0.03, 0.045), refine=False)
    if len(marks) < 2:
        raise RuntimeError("fit: fewer than two theta evaluations to measure")
    diffs = [b[2] - a[2] for a, b in zip(marks, marks[1:], strict=False)]
    reads = [b[1] - a[1] for a, b in zip(marks, marks[1:], strict=False)]
    per = {"thetas": len(marks), "max_read_bytes_per_theta": max(diffs),
           "max_reads_per_theta": max(reads), "image_voxels": int(labels.size)}
    report.stages["fit"] = {"size": n, "counts": c.to_dict(), "per_unit": per}
    limit = min(BUDGETS["fit"]["read_bytes_per_theta"], labels.size / 4)
    report.checks.append(Check("fit", "read_bytes_per_theta", max(diffs), limit))


STAGES: dict[str, Callable[[Any, Report], None]] = {
    "generate": stage_generate,
    "field": stage_field,
    "descriptors": stage_descriptors,
    "geodesic": stage_geodesic,
    "intrusion": stage_intrusion,
    "transport": stage_transport,
    "fit": stage_fit,
}


def run_budget(stages: list[str] | None = None, seconds: bool = False) -> Report:
    """Run the stages (default: all) on the accounting backend; with ``seconds``, also time
    each stage on the default backend."""
    report = Report()
    be = _backend()
    try:
        for name in stages or list(STAGES):
            t = time.perf_counter()
            STAGES[name](be, report)
            report.stages.setdefault(name, {})["account_seconds"] = time.perf_counter() - t
    finally:
        be.close()
    if seconds:
        _time_stages(report, stages or list(STAGES))
    return report


def _time_stages(report: Report, stages: list[str]) -> None:
    """Seconds of the same stages on the default backend (a fresh instance, synchronised;
    the counts of a timing run are not kept)."""
    from cbagpu.backend import BACKEND_CLASSES, get_backend
    from cbagpu.backend.accounting import Account

    be = BACKEND_CLASSES[get_backend("auto").name]()
    be.stage = lambda name: Account().stage(name)  # type: ignore[attr-defined]
    for name in stages:
        t = time.perf_counter()
        try:
            STAGES[name](be, Report())
        except Exception as exc:  # the count is what matters; note the failure
            report.stages[name]["seconds_error"] = f"{type(exc).__name__}: {exc}"
            continue
        be.synchronize()
        report.stages[name]["seconds"] = time.perf_counter() - t
        report.stages[name]["seconds_backend"] = be.name


def _print(report: Report) -> None:
    print(f"{'stage':<12} {'budget':<28} {'value':>12} {'limit':>12}  ok")
    for c in report.checks:
        print(f"{c.stage:<12} {c.name:<28} {c.value:>12.3f} {c.limit:>12.3f}  "
              f"{'yes' if c.ok else 'NO'}")
    for name, st in report.stages.items():
        extra = st.get("per_unit") or {k: v for k, v in st.items() if k == "per_size"}
        line = json.dumps(extra, default=float)[:160] if extra else ""
        if "seconds" in st:
            line += f"  [{st['seconds']:.3f} s on {st['seconds_backend']}]"
        print(f"  {name}: {line}")
    print("all budgets met" if report.ok else "BUDGET EXCEEDED")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks budget",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), help="stages to run")
    parser.add_argument("--seconds", action="store_true",
                        help="also time each stage on the default backend (the GPU if any)")
    args = parser.parse_args(argv)
    report = run_budget(args.stages, seconds=args.seconds)
    if args.json:
        from cbagpu.io.atomic import json_safe

        print(json.dumps(json_safe(report.to_dict()), indent=1, allow_nan=False,
                         default=_default))
    else:
        _print(report)
    return 0 if report.ok else 1


def _default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)


if __name__ == "__main__":
    sys.exit(main())
