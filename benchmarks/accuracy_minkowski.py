"""Accuracy of the intrinsic-volume estimators on Boolean models of balls as the same
continuous model is digitised finer (issue 18, item 1). Not a timing suite: run

    python -m benchmarks.accuracy_minkowski [--quick] [--out DIR]

Two studies, each at r = 8, 16, 32 voxels per ball radius, both adjacency pairs:

* ``miles``: windows of a Boolean model of balls (V = 0.15) against Miles' formulas at
  each window's own intensity (relative error of V_V, S_V, M_V, chi_V; mean and its
  standard error over the windows);
* ``exact``: the Euler number of a whole finite union of balls (germs in a cube of 8 radii,
  V = 0.15) -- exactly, from the alpha complex of the germs (GUDHI; the union of balls of
  radius R is homotopy equivalent to the alpha complex at alpha^2 = R^2) -- against the
  digital chi of the same union digitised at each r (paired: the same germs), per ball.

Each also with ``euler="closing"`` (the guarded closing of
:mod:`cbagpu.measure.euler_closing` before counting: keys ``closing_conn6``,
``closing_conn26``, ``closing6``, ``closing26``).

Writes ``DIR/accuracy_minkowski-MACHINE.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from cbagpu import __version__
from cbagpu.backend import get_backend
from cbagpu.measure.euler_closing import guarded_closing
from cbagpu.measure.minkowski import (
    configuration_histogram,
    configuration_weights,
    densities_from_histogram,
)
from cbagpu.simulate.germs import Balls
from cbagpu.simulate.raster import paint_grains
from cbagpu.theory import miles

NP = get_backend("numpy")
V = 0.15


def _paint(shape, centers, radius: float) -> np.ndarray:
    lab = np.zeros(shape, np.uint8)
    paint_grains(NP, lab, Balls(centers, np.full(len(centers), radius)), (0, 0, 0), 1)
    return lab.view(bool)


def miles_study(r: float, n: int, windows: int, seed0: int = 10_000) -> dict:
    vbar, sbar, mbar = 4 / 3 * math.pi * r**3, 4 * math.pi * r**2, 4 * math.pi * r
    lam = -math.log(1 - V) / vbar
    rel: dict[str, list] = {k: [] for k in ("conn6", "conn26", "closing_conn6",
                                            "closing_conn26")}
    for i in range(windows):
        rng = np.random.default_rng(seed0 + i)
        lo, hi = -r - 1.0, n + r + 1.0
        k = rng.poisson(lam * (hi - lo) ** 3)
        mask = _paint((n,) * 3, rng.uniform(lo, hi, (k, 3)), r)
        th = np.array(miles(k / (hi - lo) ** 3, vbar, sbar, mbar))
        for pre in ("", "closing_"):
            for conn in (6, 26):
                m = mask if not pre else guarded_closing(mask, "numpy", connectivity=conn)
                d = densities_from_histogram(configuration_histogram(m, "numpy"), 1.0, conn)
                rel[f"{pre}conn{conn}"].append(np.array([d.V_V, d.S_V, d.M_V, d.chi_V]) / th
                                               - 1.0)
    out = {"r": r, "window": n, "windows": windows, "seeds": [seed0, seed0 + windows - 1]}
    for name_, vals in rel.items():
        a = np.array(vals)
        out[name_] = {
            name: {"mean": float(a[:, j].mean()),
                   "se": float(a[:, j].std(ddof=1) / math.sqrt(len(a)))}
            for j, name in enumerate(("V_V", "S_V", "M_V", "chi_V"))}
    return out


def exact_study(radii: list[int], unions: int, box: float = 8.0) -> dict:
    import gudhi

    lam = -math.log(1 - V) / (4 / 3 * math.pi)  # R = 1
    w = {c: configuration_weights(1.0, c)[3] for c in (6, 26)}
    err = {(r, c): [] for r in radii for c in (*w, "closing6", "closing26")}
    balls = exact_total = 0
    for seed in range(unions):
        rng = np.random.default_rng(seed)
        k = rng.poisson(lam * box**3)
        pts = rng.uniform(0, box, (k, 3))
        st = gudhi.AlphaComplex(points=pts).create_simplex_tree()
        chi = sum((-1) ** (len(s) - 1) for s, f in st.get_filtration() if f <= 1.0)
        balls += k
        exact_total += chi
        for r in radii:
            n = int(math.ceil((box + 2) * r)) + 4
            c = (pts + 1) * r + 2 + rng.random(3)
            mask = _paint((n,) * 3, c, float(r))
            h = configuration_histogram(mask, "numpy")
            for conn in w:
                hc = configuration_histogram(guarded_closing(mask, "numpy", connectivity=conn),
                                             "numpy")
                err[(r, conn)].append(float(h @ w[conn]) - chi)
                err[(r, f"closing{conn}")].append(float(hc @ w[conn]) - chi)
    out: dict = {"unions": unions, "balls": balls, "exact_chi": exact_total, "box_radii": box}
    for (r, conn), e in err.items():
        a = np.array(e)
        key = conn if isinstance(conn, str) else f"conn{conn}"
        out.setdefault(f"r{r}", {})[key] = {
            "error_per_ball": float(a.sum() / balls),
            "se": float(a.std(ddof=1) * math.sqrt(len(a)) / balls),
            "relative_to_exact": float(a.sum() / exact_total),
            "mean_abs_error_per_union": float(np.abs(a).mean()),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few windows (a smoke run)")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    q = args.quick
    from benchmarks.harness import machine_info, machine_slug

    info = machine_info()
    res = {
        "suite": "accuracy_minkowski", "cbagpu": __version__, "machine": info,
        "backend": "numpy", "V": V,
        "miles": [miles_study(8.0, 128, 10 if q else 200), miles_study(16.0, 256, 5 if q else 100),
                  miles_study(32.0, 256, 3 if q else 60)],
    }
    try:
        res["exact"] = exact_study([8, 16, 32], 5 if q else 150)
    except ImportError:
        res["exact"] = {"skipped": "GUDHI not installed (pip install gudhi)"}
    res["seconds"] = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"accuracy_minkowski-{machine_slug(info, {}, 'numpy')}.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
