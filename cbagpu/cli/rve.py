"""``cbagpu rve``: sampling error of the descriptors and the window size needed
(:func:`cbagpu.studies.rve.rve`)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from cbagpu.cli.common import (
    UsageError,
    add_params_args,
    add_plot_option,
    add_run_options,
    check_png_path,
    close_progress,
    load_params,
    print_json,
    progress_printer,
    read_labels,
    shape_arg,
    voxel_size_of,
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``rve`` on an argparse subparsers object; returns the new parser."""
    p = sub.add_parser(
        "rve",
        help="spread of the descriptors between sub-windows and the window size needed",
        description="Tile model realizations (no IMAGE: --preset/--params, --voxel-size, "
        "--shape, --realizations) or a label image into cubic sub-windows of several edges; "
        "print per descriptor and phase the mean, the spread between sub-windows, the "
        "integral range and the window edge for a target relative error (for the volume "
        "fraction of a model also from the closed form of Eq. 20's covariance).",
    )
    p.add_argument("image", nargs="?", default=None,
                   help="label image (.tif, .npy, .raw, .zarr): 0 pore, 1 CBD, 2 graphite; "
                        "leave out to measure model realizations")
    add_params_args(p, voxel_size=False)
    p.add_argument("--voxel-size", type=float, default=None, metavar="NM",
                   help="voxel edge length in nm (model: required; image: default from "
                        "its metadata)")
    p.add_argument("--shape", type=int, nargs="+", default=None, metavar="N",
                   help="window of each realization: N or Z Y X voxels (default 128)")
    p.add_argument("--realizations", type=int, default=1,
                   help="independent realizations, seeds SEED.. (default 1)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--edges", type=int, nargs="+", default=None, metavar="E",
                   help="sub-window edges in voxels (default 8 16 32 ... while 8 fit)")
    p.add_argument("--descriptors", nargs="+", default=None, metavar="NAME",
                   help="volume_fraction S_V M_V chi_V M (default volume_fraction S_V; M "
                        "solves transport on --max-windows sub-windows per edge)")
    p.add_argument("--rel-error", default=None, metavar="NAME=E,...",
                   help="target relative error per descriptor, e.g. volume_fraction=0.02,"
                        "M=0.05 (defaults 0.02 volume fraction and S_V, 0.05 M_V and M, "
                        "0.10 chi_V)")
    p.add_argument("--max-windows", type=int, default=16, metavar="N",
                   help="sub-windows per edge that get a transport solve (M; default 16)")
    p.add_argument("--out", default=None, metavar="RESULT.json",
                   help="also write the JSON result to this file")
    add_plot_option(p, "the relative spread against the window edge")
    add_run_options(p)
    p.set_defaults(func=run)
    return p


def _g(v: float | None, k: float = 1.0) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v * k:.4g}"


def run(args: argparse.Namespace) -> int:
    """Run ``cbagpu rve``; exit 0, 2 on bad input."""
    from cbagpu.cli.composition import parse_mapping
    from cbagpu.studies.rve import DEFAULT_DESCRIPTORS, UNITS, rve

    check_png_path(args.plot)
    rel = None if args.rel_error is None else parse_mapping(args.rel_error, "--rel-error")
    descs = tuple(args.descriptors) if args.descriptors else DEFAULT_DESCRIPTORS
    if args.image is None:
        if args.voxel_size is None:
            raise UsageError("a model needs --voxel-size (or give a label IMAGE)")
        source: Any = load_params(args)
        kw: dict[str, Any] = {"shape": shape_arg(args.shape or [128]), "seed": args.seed,
                              "realizations": args.realizations}
        s = args.voxel_size
    else:
        if args.preset is not None or args.params is not None:
            raise UsageError("--preset/--params describe a model: leave them out with an "
                             "IMAGE")
        if args.realizations != 1 or args.shape is not None:
            raise UsageError("--shape and --realizations apply to a model, not to an IMAGE")
        source, meta = read_labels(args.image)
        s = voxel_size_of(args, meta)
        kw = {}
    if args.out is not None and not args.out.endswith(".json"):
        raise UsageError(f"--out must end in .json, got {args.out}")
    bar = progress_printer(not args.quiet, label="realizations x edges")
    try:
        res = rve(source, s, edges=args.edges, descriptors=descs, rel_error=rel,
                  max_windows=args.max_windows, backend=args.backend, progress=bar, **kw)
    finally:
        close_progress(bar)
    if args.plot is not None:
        from cbagpu.plots import plot_rve

        plot_rve(res, args.plot)
    data = res.to_dict()
    if args.out is not None:
        from cbagpu.io.atomic import write_json_atomic

        write_json_atomic(args.out, data)
    if args.json:
        print_json(data)
        return 0
    src = (f"{args.image}" if args.image else
           f"{res.realizations} realization(s) of {'x'.join(map(str, res.shape))} voxels")
    print(f"{src} at {res.voxel_size:g} nm; sub-window edges "
          f"{', '.join(str(e) for e in res.edges)} voxels; sd = spread between "
          "sub-windows, se = sd/sqrt(n)")
    for f in res.fits:
        unit = UNITS[f.descriptor]
        print(f"{f.descriptor} {f.phase}" + (f" [{unit}]" if unit else ""))
        print(f"  {'edge [nm]':>10}{'n':>7}{'mean':>12}{'sd':>12}{'se':>12}"
              + (f"{'closed-form sd':>16}" if res.source == "model"
                 and f.descriptor == "volume_fraction" else ""))
        for r in (r for r in res.stats if (r.descriptor, r.phase) == (f.descriptor, f.phase)):
            line = (f"  {r.edge_nm:>10g}{r.n_windows:>7d}{_g(r.mean):>12}{_g(r.sd):>12}"
                    f"{_g(r.se_mean):>12}")
            if r.theory_sd is not None:
                line += f"{_g(r.theory_sd):>16}"
            print(line)
        need = "-"
        if f.edge_needed_nm is not None:
            need = f"{f.edge_needed_nm / 1000:.3g} um"
            if f.extrapolated:
                ratio = f.edge_needed_nm / (max(res.edges) * res.voxel_size)
                need += f" (extrapolated: {ratio:.3g} x the largest sub-window edge)"
        line = (f"  sigma^2 ~ |W|^-{_g(f.alpha)}; edge for {f.rel_error:.0%} relative error: "
                f"{need}")
        if f.theory_edge_needed_nm is not None:
            line += f"; closed form: {f.theory_edge_needed_nm / 1000:.3g} um"
        if f.integral_range is not None:
            line += f"; integral range {f.integral_range ** (1 / 3):.3g} nm (cube edge)"
        print(line)
        if f.note:
            print(f"  note: {f.note}")
    if args.out is not None:
        print(f"wrote {args.out}")
    return 0
