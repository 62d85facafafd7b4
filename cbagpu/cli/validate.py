"""``cbagpu validate``: a label image against model realizations at several voxel sizes
(paper Section 3.3, Figures 5-7)."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from cbagpu.cli.common import (
    UsageError,
    add_cluster_options,
    add_params_args,
    add_run_options,
    check_png_path,
    close_progress,
    load_params,
    print_json,
    progress_printer,
    read_labels,
    say,
    voxel_size_of,
)
from cbagpu.studies.tasks import mixed_versions_message

_LABELS = {
    "volume_fraction": "volume fraction",
    "S_V": "S_V [1/um]",
    "r_max": "r_max [nm]",
    "r_min": "r_min [nm]",
    "constrictivity": "constrictivity",
    "geodesic_tortuosity": "geodesic tortuosity",
}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``validate`` on an argparse subparsers object; returns the new parser."""
    p = sub.add_parser(
        "validate",
        help="compare a label image with model realizations at several voxel sizes",
        description="For each factor f: the image down-sampled by slice removal "
        "(image[::f, ::f, ::f]) and model realizations generated at f times the voxel size "
        "(parameters converted with the new voxel size); volume fraction, S_V, r_max, r_min, "
        "constrictivity and mean geodesic tortuosity of the solid and pore phases, CPSD "
        "curves and the centred C(h). Each realization-and-analysis is a task (Dask); with "
        "--out the finished tasks are kept and a rerun resumes.",
    )
    p.add_argument("image", help="label image (.tif, .npy, .raw, .zarr): 0 pore, 1 CBD, "
                                 "2 graphite")
    p.add_argument("--voxel-size", type=float, default=None, metavar="NM",
                   help="voxel edge length of the image in nm (default: from its metadata)")
    add_params_args(p, voxel_size=False, required=True)
    p.add_argument("--realizations", type=int, default=5,
                   help="model realizations per voxel size (default 5)")
    p.add_argument("--factors", type=int, nargs="+", default=[1, 2, 4], metavar="F",
                   help="down-sampling factors (default 1 2 4: 20/40/80 nm for a 20 nm image)")
    p.add_argument("--seed", type=int, default=0,
                   help="first seed; realizations use seed .. seed+realizations-1 (default 0)")
    p.add_argument("--axis", choices=("z", "y", "x"), default="z",
                   help="inlet face (low side) for intrusion and geodesic tortuosity")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write DIR/validation.csv, DIR/validation.json (and the figures); "
                        "finished tasks are kept in DIR/tasks, so a rerun resumes")
    p.add_argument("--plot", metavar="PATH.png", nargs="?", const=True, default=None,
                   help="write Figures 5-7 as PATH-figure5.png, PATH-figure6.png, "
                        "PATH-figure7.png (without PATH: DIR/figure5.png ... of --out)")
    add_cluster_options(p)
    add_run_options(p, json_help="print the table and curves as one JSON object")
    p.set_defaults(func=run)
    return p


def _fmt(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:.4g}"


def _print_table(res: Any, image: str) -> None:
    z, y, x = res.shape
    seeds = res.seeds
    print(f"{image}: {z}x{y}x{x} voxels at {res.voxel_size:g} nm; {res.realizations} "
          f"realization(s) per voxel size (seeds {seeds[0]}..{seeds[-1]}), inlet axis "
          f"{'zyx'[res.axis]}, backend {res.backend}")
    print(f"  model mean ± SE: ± is the standard error of the mean over the n = "
          f"{res.realizations} independent realizations (sd / sqrt(n), sd with ddof=1; "
          "- when n < 2)")
    for f in res.factors:
        print(f"  {f * res.voxel_size:g} nm voxels (factor {f}, "
              f"{'x'.join(str(-(-n // f)) for n in res.shape)} voxels)")
        print(f"    {'descriptor':22s}{'phase':>7s}{'image':>11s}{'model mean ± SE':>22s}"
              f"   [min, max]")
        for row in (r for r in res.scalars if r.factor == f):
            k = 1000.0 if row.descriptor == "S_V" else 1.0  # nm^-1 -> um^-1
            print(f"    {_LABELS[row.descriptor]:22s}{row.phase:>7s}{_fmt(row.image * k):>11s}"
                  f"{_fmt(row.model_mean * k) + ' ± ' + _fmt(row.model_se * k):>22s}   "
                  f"[{_fmt(row.model_min * k)}, "
                  f"{_fmt(row.model_max * k)}]"
                  + ("" if row.model_n == res.realizations
                     else f"  ({row.model_n} of {res.realizations} defined)"))


def run(args: argparse.Namespace) -> int:
    """Run ``cbagpu validate``; exit status 2 on bad input, 1 when tasks failed."""
    from cbagpu.studies.validate import validate

    if args.realizations < 1:
        raise UsageError(f"--realizations must be >= 1, got {args.realizations}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.workers is not None and args.scheduler is not None:
        raise UsageError("give either --scheduler (a running cluster) or --workers, not both")
    if args.plot is True and args.out is None:
        raise UsageError("--plot needs --out DIR when it names no PATH.png (the figures are "
                         "written there)")
    if isinstance(args.plot, str):
        check_png_path(args.plot)
    if args.out is not None:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {args.out} exists and is not a directory")
        parent = out.parent if str(out.parent) else Path(".")
        if not out.exists() and not parent.is_dir():
            raise UsageError(f"--out {args.out}: directory {parent} does not exist")
    if args.plot:
        from cbagpu.plots import require_matplotlib

        require_matplotlib()
    params = load_params(args)
    try:
        labels, meta = read_labels(args.image)
    except (OSError, ValueError) as exc:
        if isinstance(exc, (UsageError, FileNotFoundError)):
            raise
        raise UsageError(f"cannot read {args.image}: {exc}") from None
    voxel_size = voxel_size_of(args, meta)

    t = time.perf_counter()
    bar = progress_printer(not args.quiet)
    try:
        res = validate(labels, float(voxel_size), params, realizations=args.realizations,
                       factors=args.factors, seed=args.seed, axis=args.axis,
                       backend=args.backend, out_dir=args.out, scheduler=args.scheduler,
                       workers=args.workers, progress=bar)
    finally:
        close_progress(bar)
    figures = _draw(res, args)
    seconds = time.perf_counter() - t
    files = [str(Path(args.out) / n) for n in ("validation.csv", "validation.json")
             ] if args.out is not None else []
    files += figures
    if args.json:
        d = res.to_dict()
        d["meta"]["image_path"] = str(args.image)
        d["meta"]["seconds"] = seconds
        d["meta"]["files"] = files
        print_json(d, indent=1)
        return 0
    mixed = mixed_versions_message(res.versions)
    if mixed:
        say("validate", mixed, kind="warning")
    _print_table(res, args.image)
    print(f"  time {seconds:.1f} s" + (f"; written: {', '.join(files)}" if files else ""))
    return 0


def _draw(res: Any, args: argparse.Namespace) -> list[str]:
    """Figures 5-7 for ``--plot`` (a path: PATH-figure5.png ...; bare: into --out)."""
    if not args.plot:
        return []
    from cbagpu.plots import FIGURE_FILES, plot_validation

    if args.plot is True:
        return [str(p) for p in plot_validation(res, args.out)]
    base = Path(args.plot)
    paths = [base.with_name(f"{base.stem}-{name}") for name in FIGURE_FILES]
    return [str(p) for p in plot_validation(res, base.parent, paths=paths)]
