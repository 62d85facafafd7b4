"""``cbagpu sweep``: virtual materials testing (paper Section 3.4, Table 3, Figure 8)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from cbagpu.cli.common import (
    UsageError,
    add_cluster_options,
    add_params_args,
    add_plot_option,
    add_run_options,
    check_png_path,
    close_progress,
    format_coefficient,
    load_params,
    print_json,
    progress_printer,
    say,
    shape_arg,
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``sweep`` on an argparse subparsers object; returns the new parser."""
    p = sub.add_parser(
        "sweep",
        help="virtual materials testing: vary parameters, measure eps, beta, tau, M, fit "
        "Eqs. 28-29",
        description="For every combination of the varied parameter values and every "
        "realization (seeds SEED, SEED+1, ...): generate, then measure for the solid and the "
        "pore phase the volume fraction, constrictivity, mean geodesic tortuosity and the "
        "effective transport (sigma_eff, tau_eff, M; along z). Fits M_hat = eps^a beta^b / "
        "tau^c (Eq. 28) and M_tilde = c1 V1 + c0 (Eq. 29). Each realization is a Dask task; "
        "with --out DIR an interrupted sweep resumes when run again with the same command.",
    )
    add_params_args(p)
    p.add_argument("--vary", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="values of one parameter (Table 2 units), e.g. "
                        "lambda_x=2.21e-11,3.55e-11 ('lambda_x=table3': the 7 values of "
                        "Table 3); repeat for more parameters (all combinations are run)")
    p.add_argument("--realizations", type=int, default=5,
                   help="realizations per combination (default 5)")
    p.add_argument("--shape", type=int, nargs="+", required=True, metavar="N",
                   help="window in voxels: N (cube) or Z Y X")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write DIR/results.csv, DIR/fits.json, DIR/figure8.png; keep the "
                        "finished tasks in DIR/tasks (resume)")
    add_cluster_options(p)
    add_plot_option(p, "the Figure-8-like summary (default with --out: DIR/figure8.png)")
    p.add_argument("--no-plot", action="store_true", help="do not write figure8.png")
    add_run_options(p, json_help="print the table rows and the fits as one JSON object")
    p.set_defaults(func=run)
    return p


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


def _pm(mean: float, se: float) -> str:
    """``mean ± SE`` (``-`` for an undefined SE, n < 2)."""
    return f"{_fmt(mean)} ± {_fmt(se) if math.isfinite(se) else '-'}"


def _print_summary(res: Any, names: list[str]) -> None:
    """Per combination and phase: mean ± standard error over the realizations."""
    from cbagpu.studies.sweep import COLUMNS

    qs = [q for q in COLUMNS if q not in ("seed", "phase")]
    n = max((r["realizations"] for r in res.summary), default=0)
    print(f"mean ± SE over N = {n} realizations (SE = sd / sqrt(n), the standard error of "
          "the mean over independent realizations; [n] where fewer values are finite)")
    print("  ".join([*(f"{h:>12}" for h in [*names, "phase"]), *(f"{q:>22}" for q in qs)]))
    for r in res.summary:
        cells = [f"{_fmt(r[h]):>12}" for h in [*names, "phase"]]
        for q in qs:
            c = _pm(r[f"{q}_mean"], r[f"{q}_se"])
            if r[f"{q}_n"] != r["realizations"]:
                c += f" [{r[f'{q}_n']}]"
            cells.append(f"{c:>22}")
        print("  ".join(cells))


def run(args: argparse.Namespace) -> int:
    """Run ``cbagpu sweep``; exit 0, 1 when tasks failed (TasksFailedError), 2 on bad
    input."""
    from cbagpu.studies.sweep import COLUMNS, parse_vary, sweep, sweep_title

    params = load_params(args)
    shape = shape_arg(args.shape)
    if args.workers is not None and args.scheduler is not None:
        raise UsageError("give either --scheduler or --workers, not both")
    check_png_path(args.plot)
    figure = args.plot
    if figure is None and args.out is not None and not args.no_plot:
        figure = str(Path(args.out) / "figure8.png")
    missing = None
    if figure is not None:
        from cbagpu.plots import require_matplotlib

        try:
            require_matplotlib()
        except ImportError as exc:
            if args.plot is not None:
                raise
            missing, figure = f"plot skipped: {exc}", None
    vary = parse_vary(args.vary)
    bar = progress_printer(not args.quiet)
    try:
        res = sweep(
            params, vary, realizations=args.realizations, shape=shape,
            voxel_size=args.voxel_size, seed=args.seed, backend=args.backend,
            out_dir=args.out, scheduler=args.scheduler, workers=args.workers,
            progress=bar,
        )
    finally:
        close_progress(bar)
    if figure is not None:
        from cbagpu.plots import plot_sweep

        title = sweep_title(res.vary, args.realizations, shape, args.voxel_size)
        res.files["plot"] = str(plot_sweep(res, figure, title=title))
    for m in (*res.messages, *([missing] if missing else [])):
        say("sweep", m)
    if args.json:
        print_json(res.to_dict())
        return 0
    names = list(res.vary)
    header = [*names, *COLUMNS]
    print("  ".join(f"{h:>12}" for h in header))
    for r in res.rows:
        print("  ".join(f"{_fmt(r[h]):>12}" for h in header))
    _print_summary(res, names)
    for ph in ("solid", "pore", "both"):
        f = res.fits[ph]
        e28 = f["eq28"]
        line = f"{ph:>5}: Eq. 28 "
        if "error" in e28:
            line += f"not fitted ({e28['error']})"
        else:
            line += ", ".join(format_coefficient(e28, k) for k in "abc")
            line += f", R2 = {e28['r2']:.3f} (n = {e28['n']}, excluded {e28['n_excluded']})"
        print(line)
        if "eq29" in f:
            e29 = f["eq29"]
            if "error" in e29:
                print(f"{'':>5}  Eq. 29 not fitted ({e29['error']})")
            else:
                c1, c0 = format_coefficient(e29, "c1"), format_coefficient(e29, "c0")
                print(f"{'':>5}  Eq. 29 {c1}, {c0}, R2 = {e29['r2']:.3f}")
    print(f"{res.n_computed} of {res.n_tasks} tasks computed, {res.seconds:.1f} s"
          + (f"; wrote {', '.join(res.files.values())}" if res.files else ""))
    return 0
