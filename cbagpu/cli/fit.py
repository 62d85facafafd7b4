"""``cbagpu fit IMAGE``: calibrate the model to a segmented image (paper Section 3.2)."""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path
from typing import Any

from cbagpu.cli.common import (
    UsageError,
    add_plot_option,
    add_run_options,
    close_progress,
    print_json,
    say,
    stage_printer,
    voxel_size_of,
)


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
    add_plot_option(p, "Figure 4 (rho), Figure A2 (CPSD per theta) and the Table 1 residuals")
    p.add_argument("--realizations", type=int, default=3,
                   help="model realizations per theta (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the realizations (default 0)")
    p.add_argument("--grf-roi", default=None, metavar="z0:z1,y0:y1,x0:x1",
                   help="region for the Gaussian-field fit of --method roi (default: "
                   "automatic)")
    p.add_argument("--method", default=None, metavar="{whole,roi}",
                   help="how Xi2 and Xi3 are fitted: 'whole' (default; mu, eta, theta, "
                   "lambda_y jointly from the whole image's CBD coverage, unbiased) or 'roi' "
                   "(the paper's region-of-interest and CPSD method; its mu is biased low, see "
                   "the README; the default when --grf-roi is given)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="K",
                   help="standard errors and 95%% intervals of every parameter from K >= 2 "
                   "refits of realizations of the fitted model (costs K generations and K "
                   "fits; default 0: none)")
    add_run_options(p, json_help='print {"params": {...}, "report": {...}} on stdout')
    p.set_defaults(func=run)
    return p


def _unwritable(path: str | None) -> str | None:
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
    """Run ``cbagpu fit``; bad input raises (exit status 2, one line)."""
    import numpy as np

    from cbagpu.fit.calibrate import METHODS, FitWarning, fit
    from cbagpu.io import read_image

    if args.method is not None and args.method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)}, got {args.method!r}")
    if args.bootstrap < 0 or args.bootstrap == 1:
        raise UsageError(f"--bootstrap must be 0 or >= 2, got {args.bootstrap}")
    if args.grf_roi is not None and args.method not in (None, "roi"):
        raise UsageError("--grf-roi (the Gaussian-field ROI) applies to --method roi only")
    if args.realizations < 1:
        raise UsageError(f"--realizations must be >= 1, got {args.realizations}")
    if not 0 <= args.seed < 2**63:
        raise UsageError(f"--seed must be in [0, 2^63), got {args.seed}")
    if args.plot is not None and not str(args.plot).lower().endswith(".png"):
        raise UsageError("--plot must name a .png file")
    for path in (args.out, args.plot):
        problem = _unwritable(path)
        if problem:
            raise UsageError(problem)
    if args.plot is not None:
        from cbagpu.plots import require_matplotlib

        require_matplotlib()
    try:
        labels, meta = read_image(args.image)
    except FileNotFoundError:
        raise UsageError(f"image not found: {args.image}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {args.image}: {exc}") from None
    voxel_size = voxel_size_of(args, meta)
    labels = np.asarray(labels)
    bar = stage_printer(not args.quiet)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        try:
            res = fit(labels, float(voxel_size), realizations=args.realizations,
                      seed=args.seed, grf_roi=args.grf_roi, backend=args.backend,
                      progress=bar, method=args.method, bootstrap=args.bootstrap)
        finally:
            close_progress(bar)
    for w in caught:
        if issubclass(w.category, FitWarning):
            say("fit", str(w.message), kind="warning")
    res.params.to_json(args.out)
    if args.plot is not None:
        from cbagpu.plots import plot_fit_report

        plot_fit_report(res.report, args.plot)
    if args.json:
        print_json(res.to_dict())
    else:
        print(res.report.text())
        print(f"parameters written to {args.out}"
              + (f"; plot written to {args.plot}" if args.plot else ""))
    return 0
