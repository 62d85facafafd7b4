"""``cbagpu describe``: morphological descriptors of a label image (paper Section 3.3)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from cbagpu.cli.common import (
    add_plot_option,
    add_run_options,
    check_png_path,
    close_progress,
    print_json,
    read_labels,
    stage_printer,
    voxel_size_of,
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``describe`` on an argparse subparsers object."""
    d = sub.add_parser("describe", help="morphological descriptors of a label image",
                       description="Intrinsic volume densities, CPSD and r_max, intrusion, "
                                   "r_min and constrictivity, mean geodesic tortuosity and the "
                                   "two-point coverage of the solid (1+2), pore (0) and "
                                   "graphite (2) phases, in nm units.")
    d.add_argument("image", help="label image (.tif, .npy, .raw, .zarr)")
    d.add_argument("--voxel-size", type=float, default=None, metavar="NM",
                   help="voxel edge length in nm (default: from the file's metadata)")
    d.add_argument("--phase", choices=("solid", "pore", "graphite", "all"), default="all")
    d.add_argument("--axis", choices=("z", "y", "x"), default="z",
                   help="inlet face (low side) for intrusion and geodesic tortuosity")
    add_run_options(d)
    add_plot_option(d, "the CPSD/intrusion curves and the centred C(h)")
    d.set_defaults(func=run)
    return d


def run(args: argparse.Namespace) -> int:
    """``cbagpu describe``: every descriptor of the phases of a label image."""
    from cbagpu.measure.describe import describe

    check_png_path(args.plot)
    if args.plot:
        from cbagpu.plots import require_matplotlib

        require_matplotlib()
    labels, meta = read_labels(args.image)
    voxel_size = voxel_size_of(args, meta)
    phases = ("solid", "pore", "graphite") if args.phase == "all" else (args.phase,)
    t = time.perf_counter()
    bar = stage_printer(not args.quiet)
    try:
        desc = describe(labels, float(voxel_size), phases=phases, axis=args.axis,
                        backend=args.backend, progress=bar)
    finally:
        close_progress(bar)
    seconds = time.perf_counter() - t
    if args.plot:
        from cbagpu.plots import plot_description

        plot_description(desc, args.plot)
    if args.json:
        d = desc.to_dict()
        d["meta"]["seconds"] = seconds
        d["meta"]["image"] = str(args.image)
        print_json(d)
        return 0
    z, y, x = desc.shape
    print(f"{args.image}: {z}x{y}x{x} voxels at {desc.voxel_size:g} nm, inlet axis "
          f"{'zyx'[desc.axis]}, backend {desc.backend}")
    rows = [("volume fraction", "volume_fraction", ""), ("S_V", "S_V", "nm^-1"),
            ("M_V", "M_V", "nm^-2"), ("chi_V", "chi_V", "nm^-3"), ("r_max", "r_max", "nm"),
            ("r_min", "r_min", "nm"), ("constrictivity", "constrictivity", ""),
            ("geodesic tortuosity", "geodesic_tortuosity", ""),
            ("inlet fraction connected", "fraction_connected", "")]
    names = list(desc.phases)
    print(f"  {'descriptor':26s}" + "".join(f"{n:>14s}" for n in names))
    for label, key, unit in rows:
        vals = "".join(f"{getattr(desc.phases[n], key):14.5g}" for n in names)
        print(f"  {label + (' [' + unit + ']' if unit else ''):26s}{vals}")
    print(f"  time {seconds:.1f} s" + (f"; plot written to {args.plot}" if args.plot else ""))
    return 0
