"""``cbagpu validate IMAGE``: image vs model across resolutions (Sections 3.3, 4.2; Figs. 5-7).

Wiring (in cbagpu/cli.py): ``from cbagpu.studies import validate_cli``;
``validate_cli.add_parser(sub)`` registers the subcommand (``set_defaults(func=run)``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from cbagpu.cli import add_run_options
from cbagpu.errors import InvalidInputError
from cbagpu.studies.progress import add_cluster_options, format_seconds, progress_printer
from cbagpu.studies.tasks import mixed_versions_message

__all__ = ["add_parser", "format_seconds", "progress_printer", "run"]

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
    p.add_argument("--params", required=True, metavar="FILE.json|PRESET",
                   help="calibrated parameters: a JSON file (as written by 'cbagpu fit') or a "
                        "preset name ('paper', 'table3-1'..'table3-7')")
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
    p.add_argument("--plot", action="store_true",
                   help="also write DIR/figure5.png, figure6.png, figure7.png (needs --out "
                        "and matplotlib)")
    add_cluster_options(p)
    add_run_options(p, json_help="print the table and curves as one JSON object")
    p.set_defaults(func=run)
    return p


def _err(msg: str, code: int = 2) -> int:
    print(f"cbagpu validate: error: {msg}", file=sys.stderr)
    return code


def _load_params(value: str):
    from cbagpu.params import PRESETS, CBAParams

    if os.path.exists(value):
        try:
            return CBAParams.from_json(Path(value))
        except (OSError, ValueError, TypeError) as exc:
            raise InvalidInputError(f"bad parameter file {value}: {exc}") from None
    if value in PRESETS:
        return PRESETS[value]
    raise InvalidInputError(f"--params {value}: no such file and not a preset "
                     f"(presets: {', '.join(PRESETS)})")


def _fmt(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:.4g}"


def _print_table(res: Any, image: str) -> None:
    z, y, x = res.shape
    seeds = res.seeds
    print(f"{image}: {z}x{y}x{x} voxels at {res.voxel_size:g} nm; {res.realizations} "
          f"realization(s) per voxel size (seeds {seeds[0]}..{seeds[-1]}), inlet axis "
          f"{'zyx'[res.axis]}, backend {res.backend}")
    for f in res.factors:
        print(f"  {f * res.voxel_size:g} nm voxels (factor {f}, "
              f"{'x'.join(str(-(-n // f)) for n in res.shape)} voxels)")
        print(f"    {'descriptor':22s}{'phase':>7s}{'image':>11s}{'model mean':>12s}"
              f"   [min, max]")
        for row in (r for r in res.scalars if r.factor == f):
            k = 1000.0 if row.descriptor == "S_V" else 1.0  # nm^-1 -> um^-1
            print(f"    {_LABELS[row.descriptor]:22s}{row.phase:>7s}{_fmt(row.image * k):>11s}"
                  f"{_fmt(row.model_mean * k):>12s}   [{_fmt(row.model_min * k)}, "
                  f"{_fmt(row.model_max * k)}]"
                  + ("" if row.model_n == res.realizations
                     else f"  ({row.model_n} of {res.realizations} defined)"))


def run(args: argparse.Namespace) -> int:
    """Run ``cbagpu validate``; exit status 2 on bad input, 1 when tasks failed."""
    from cbagpu.cli import UsageError, _read_labels

    from .validate import validate

    if args.realizations < 1:
        return _err(f"--realizations must be >= 1, got {args.realizations}")
    if args.seed < 0:
        return _err(f"--seed must be >= 0, got {args.seed}")
    if args.workers is not None and args.workers < 1:
        return _err(f"--workers must be >= 1, got {args.workers}")
    if args.workers is not None and args.scheduler is not None:
        return _err("give either --scheduler (a running cluster) or --workers, not both")
    if args.plot and args.out is None:
        return _err("--plot needs --out DIR (the figures are written there)")
    if args.out is not None:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            return _err(f"--out {args.out} exists and is not a directory")
        parent = out.parent if str(out.parent) else Path(".")
        if not out.exists() and not parent.is_dir():
            return _err(f"--out {args.out}: directory {parent} does not exist")
    if args.plot:
        from .figures import require_matplotlib

        try:
            require_matplotlib()
        except ImportError as exc:
            return _err(str(exc))
    try:
        params = _load_params(args.params)
    except ValueError as exc:
        return _err(str(exc))
    try:
        labels, meta = _read_labels(args.image)
    except UsageError as exc:
        return _err(str(exc))
    except (OSError, ValueError, ImportError) as exc:
        return _err(f"cannot read {args.image}: {exc}")
    voxel_size = args.voxel_size if args.voxel_size is not None else meta.get("voxel_size")
    if voxel_size is None:
        return _err(f"{args.image} has no voxel size in its metadata: pass --voxel-size")

    t = time.perf_counter()
    try:
        res = validate(labels, float(voxel_size), params, realizations=args.realizations,
                       factors=args.factors, seed=args.seed, axis=args.axis,
                       backend=args.backend, out_dir=args.out, scheduler=args.scheduler,
                       workers=args.workers, progress=progress_printer(not args.quiet),
                       plot=args.plot)
    except ValueError as exc:
        return _err(str(exc).replace("\n", " "))
    except RuntimeError as exc:  # failed tasks: the finished ones are stored
        return _err(str(exc).replace("\n", " "), code=1)
    seconds = time.perf_counter() - t
    files = []
    if args.out is not None:
        names = ["validation.csv", "validation.json"]
        if args.plot:
            names += ["figure5.png", "figure6.png", "figure7.png"]
        files = [str(Path(args.out) / n) for n in names]
    if args.json:
        d = res.to_dict()
        d["meta"]["image_path"] = str(args.image)
        d["meta"]["seconds"] = seconds
        d["meta"]["files"] = files
        print(json.dumps(d, indent=1))
        return 0
    mixed = mixed_versions_message(res.versions)
    if mixed:
        print(f"cbagpu validate: warning: {mixed}", file=sys.stderr)
    _print_table(res, args.image)
    print(f"  time {seconds:.1f} s" + (f"; written: {', '.join(files)}" if files else ""))
    return 0
