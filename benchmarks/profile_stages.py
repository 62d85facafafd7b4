"""Stage timings of the transport solver and the calibration on one backend (a diagnostic,
not a benchmark suite): where does the time go on a new machine?

    python -m benchmarks.profile_stages --backend cupy --describe 800 --transport 200 --fit 160

Prints, with wall-clock stamps: the seconds of each descriptor of both phases; the transport
set-up stages (labelling, percolation, conductances, hierarchy, coarse inverse) and each
checked PCG iteration; the fit's stage seconds and progress events. Every stage is
synchronised on the GPU before it is timed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _stamp(t0: float, what: str) -> None:
    print(f"[{time.perf_counter() - t0:8.3f} s] {what}", flush=True)


def profile_transport(n: int, backend: str, voxel_nm: float = 40.0) -> None:
    """Time each stage of ``transport`` on a paper realization of edge ``n``."""
    from cbagpu import generate, get_backend, preset
    from cbagpu.transport import conductance as cond
    from cbagpu.transport import solver as sol
    from cbagpu.transport.operator import assemble_dense

    be = get_backend(backend)
    xp = be.xp
    sync = be.synchronize if hasattr(be, "synchronize") else (lambda: None)
    t0 = time.perf_counter()
    lab = be.asarray(generate(preset("paper"), (n, n, n), voxel_nm, 1, backend=be))
    sync()
    _stamp(t0, f"generated {n}^3 on {be.name}")
    for phase in ("solid", "pore"):
        t0 = time.perf_counter()
        sig = cond.check_sigma(cond.PHASE_SIGMA[phase])
        counts = np.asarray(be.to_host(xp.bincount(lab.ravel(), minlength=256)))
        s = cond.conductivity_field(xp, lab, sig, np.float32, np.nonzero(counts)[0])
        sync()
        _stamp(t0, f"{phase}: conductivity field")
        active = cond.percolating(be, s > 0)
        sync()
        _stamp(t0, f"{phase}: percolating ({int(active.sum())} active)")
        s *= active
        fine = cond.fine_level(xp, s, 0.5)
        fine.kern = sol._fused_kernels(be, np.float32)
        sync()
        _stamp(t0, f"{phase}: fine level")
        levels = sol._hierarchy(fine)
        sync()
        _stamp(t0, f"{phase}: hierarchy of {len(levels)} levels, coarsest "
               f"{levels[-1].shape}")
        inv = xp.asarray(np.linalg.inv(assemble_dense(levels[-1])))
        sync()
        _stamp(t0, f"{phase}: coarse inverse {inv.shape}")
        r = xp.ones(fine.shape, np.float32)
        z = xp.empty_like(r)
        for k in range(3):
            sol._vcycle(levels, inv, 0, r, z)
            sync()
            _stamp(t0, f"{phase}: V-cycle {k}")
        sol.slice_fluxes(fine, z, be)
        sync()
        _stamp(t0, f"{phase}: slice fluxes")
        t1 = time.perf_counter()

        def show(it: int, spread: float, t1: float = t1) -> None:
            _stamp(t1, f"  it {it} spread {spread:.2e}")

        res = sol.transport(lab, phase, 0, backend=be, progress=show)
        _stamp(t0, f"{phase}: transport() tau {res.tau_eff:.4f}, {res.iterations} it, "
               f"{res.seconds:.2f} s")


def profile_fit(n: int, backend: str, voxel_nm: float = 40.0) -> None:
    """Stage seconds of ``fit`` on a paper realization of edge ``n``."""
    import warnings

    from cbagpu import generate, get_backend, preset
    from cbagpu.fit import fit

    be = get_backend(backend)
    lab = generate(preset("paper"), (n, n, n), voxel_nm, 1, backend="numpy")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(lab, voxel_nm, realizations=3, seed=0, backend=be,
                  progress=lambda st, d, t: _stamp(t0, f"  {st} {d}/{t}"))
    print("fit seconds:", {k: round(v, 2) for k, v in res.report.seconds.items()}, flush=True)


def profile_describe(n: int, backend: str) -> None:
    """Seconds of each descriptor of both phases of a paper realization of edge ``n`` at
    20 nm (the describe suite's cases, synchronised), after a warm-up at 48^3 that compiles
    the kernels; the geodesic sweep also reports its rounds."""
    from benchmarks import suite_describe as sd
    from cbagpu import generate, get_backend, preset
    from cbagpu.measure import geodesic
    from cbagpu.measure.phases import phase_mask

    be = get_backend(backend)
    sync = be.synchronize if hasattr(be, "synchronize") else (lambda: None)
    runs = {"intrinsic volumes": sd._run_minkowski, "CPSD": sd._run_cpsd,
            "intrusion": sd._run_intrusion, "two-point coverage": sd._run_covariance,
            "geodesic": sd._run_geodesic}
    rounds: list[int] = []
    original = geodesic._geodesic_padded_rounds

    def counted(*args, **kwargs):
        sweep = args[3]
        calls = [0]

        def sweep_counted(*a):
            calls[0] += 1
            return sweep(*a)

        out = original(*args[:3], sweep_counted)
        rounds.append(calls[0] // 6)
        return out

    geodesic._geodesic_padded_rounds = counted
    try:
        for size in (48, n):
            t0 = time.perf_counter()
            lab = be.asarray(generate(preset("paper"), (size, size, size), sd.VOXEL_NM, 1,
                                      backend=be))
            sync()
            _stamp(t0, f"generated {size}^3 on {be.name}")
            for phase in ("pore", "solid"):
                s = {"mask": phase_mask(lab, phase), "be": be}
                for name, fn in runs.items():
                    rounds.clear()
                    t1 = time.perf_counter()
                    out = fn(s)
                    sync()
                    extra = f", {rounds[0]} rounds" if rounds else ""
                    _stamp(t1, f"{size}^3 {phase}: {name} {out}{extra}")
    finally:
        geodesic._geodesic_padded_rounds = original
    _compare_bottleneck_routes(be, lab, sync)
    if be.name == "cupy":
        _compare_geodesic_launches(be, lab, sync)


def _compare_geodesic_launches(be: Any, lab: Any, sync: Callable[[], None]) -> None:
    """The GPU geodesic sweeps as one persistent launch per sweep (the default) or 1 / 16
    planes per launch of the older kernel: the same tau, launches vs rounds."""
    from functools import partial

    from cbagpu.measure import geodesic
    from cbagpu.measure.phases import phase_mask

    saved = geodesic._cuda_sweep
    try:
        for phase in ("pore", "solid"):
            mask = phase_mask(lab, phase)
            for per in (None, 1, 16):
                geodesic._cuda_sweep = partial(saved, per_launch=per)
                t1 = time.perf_counter()
                g = geodesic.geodesic_tortuosity(mask, 20.0, 0, be)
                sync()
                what = "one persistent launch per sweep" if per is None else \
                    f"{per} planes per launch"
                _stamp(t1, f"{phase}: geodesic, {what}, tau {g.tau:.6f}")
    finally:
        geodesic._cuda_sweep = saved


def _compare_bottleneck_routes(be: Any, lab: Any, sync: Callable[[], None]) -> None:
    """The intrusion's bottleneck map by one labelling per level vs widest-path sweeps, on
    the same level map (which one the GPU should run)."""
    from cbagpu.measure import intrusion, widest_path
    from cbagpu.measure.cpsd import _levels
    from cbagpu.measure.phases import phase_mask

    for phase in ("pore", "solid"):
        F, _, _, _ = _levels(be, phase_mask(lab, phase), None)
        sync()
        for name, fn in (("labelling per level", intrusion.bottleneck_levels),
                         ("widest-path sweeps", widest_path.widest_path_levels)):
            t1 = time.perf_counter()
            fn(be, F, 0, "low")
            sync()
            _stamp(t1, f"{phase}: bottleneck map by {name}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_stages")
    p.add_argument("--backend", default="auto")
    p.add_argument("--transport", type=int, default=0, help="edge of the transport case")
    p.add_argument("--fit", type=int, default=0, help="edge of the fit case (40 nm)")
    p.add_argument("--describe", type=int, default=0,
                   help="edge of the describe case (20 nm): seconds of each descriptor")
    a = p.parse_args(argv)
    if a.describe:
        profile_describe(a.describe, a.backend)
    if a.transport:
        profile_transport(a.transport, a.backend)
    if a.fit:
        profile_fit(a.fit, a.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
