"""``cbagpu fit IMAGE``: calibrate the model to a segmented image (paper Section 3.2).

Wiring (in cbagpu/cli.py): ``from cbagpu.fit import cli as fit_cli``;
``fit_cli.add_parser(sub)`` registers the subcommand (``set_defaults(func=run)``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from typing import Any

from cbagpu.cli import add_run_options

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``fit`` on an argparse subparsers object; returns the new parser."""
    p = sub.add_parser(
        "fit",
        help="calibrate the eight model parameters to a segmented image",
        description="Fit lambda_x, alpha1, alpha2, gamma (Xi1, Eq. 17), mu, eta (Xi2, Eqs. "
        "19-21) and theta, lambda_y (Xi3, Eq. 25 + CPSD) to a label image (0 pore, 1 CBD, "
        "2 graphite) and write them as a parameter file for 'cbagpu generate --params'.",
    )
    p.add_argument("image", help="label image (.tif, .npy, .raw, .zarr)")
    p.add_argument("--voxel-size", type=float, default=None, metavar="NM",
                   help="voxel edge length in nm (default: from the file's metadata)")
    p.add_argument("--out", required=True, metavar="PARAMS.json",
                   help="fitted parameters (loadable by 'cbagpu generate --params')")
    p.add_argument("--plot", metavar="FIT.png", default=None,
                   help="plot Figure 4 (rho), Figure A2 (CPSD per theta) and Table 1 residuals")
    p.add_argument("--realizations", type=int, default=3,
                   help="model realizations per theta (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the realizations (default 0)")
    p.add_argument("--grf-roi", default=None, metavar="z0:z1,y0:y1,x0:x1",
                   help="region for the Gaussian-field fit (default: automatic)")
    add_run_options(p, json_help='print {"params": {...}, "report": {...}} on stdout')
    p.set_defaults(func=run)
    return p


def _err(msg: str) -> int:
    print(f"cbagpu fit: error: {msg}", file=sys.stderr)
    return 2


def _progress(enabled: bool):
    if not enabled:
        return None
    start = time.perf_counter()

    def show(stage: str, done: int, total: int) -> None:
        print(f"[{time.perf_counter() - start:7.1f} s] {stage} {done}/{total}",
              file=sys.stderr, flush=True)

    return show


def _unwritable(path: str | None) -> str | None:
    import os
    from pathlib import Path

    if path is None:
        return None
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        return f"{path} is a directory"
    if not parent.is_dir():
        return f"directory of {path} does not exist"
    if not os.access(parent, os.W_OK):
        return f"directory of {path} is not writable"
    return None


def run(args: argparse.Namespace) -> int:
    """Run ``cbagpu fit``; returns the exit status (2 and a one-line message on bad input)."""
    import numpy as np

    from cbagpu.io import read_image

    from .calibrate import FitWarning, fit
    from .report import plot_report

    try:
        labels, meta = read_image(args.image)
    except FileNotFoundError:
        return _err(f"image not found: {args.image}")
    except (OSError, ValueError, ImportError) as exc:
        return _err(f"cannot read {args.image}: {exc}")
    voxel_size = args.voxel_size if args.voxel_size is not None else meta.get("voxel_size")
    if voxel_size is None:
        return _err(f"{args.image} has no voxel size in its metadata: pass --voxel-size")
    if args.realizations < 1:
        return _err(f"--realizations must be >= 1, got {args.realizations}")
    if args.plot is not None and not str(args.plot).lower().endswith(".png"):
        return _err("--plot must name a .png file")
    for path in (args.out, args.plot):
        problem = _unwritable(path)
        if problem:
            return _err(problem)
    labels = np.asarray(labels)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FitWarning)
            res = fit(labels, float(voxel_size), realizations=args.realizations, seed=args.seed,
                      grf_roi=args.grf_roi, backend=args.backend,
                      progress=_progress(not args.quiet))
    except ValueError as exc:
        return _err(str(exc).replace("\n", " "))
    for w in caught:
        if issubclass(w.category, FitWarning):
            print(f"cbagpu fit: warning: {w.message}", file=sys.stderr)
    res.params.to_json(args.out)
    if args.plot is not None:
        plot_report(res.report, args.plot)
    if args.json:
        print(json.dumps(res.to_dict(), indent=2))
    else:
        print(res.report.text())
        print(f"parameters written to {args.out}"
              + (f"; plot written to {args.plot}" if args.plot else ""))
    return 0
