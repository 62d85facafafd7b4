"""``cbagpu describe``: morphological descriptors of a label image (paper Section 3.3)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from cbagpu.cli.common import (
    add_cluster_options,
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
    d.add_argument("--connectivity", type=int, choices=(26, 6), default=26,
                   help="foreground adjacency of M_V and chi_V: 26 (default; thin "
                        "platelets) or 6 (unions of thick convex grains)")
    d.add_argument("--euler", choices=("direct", "closing"), default="direct",
                   help="chi_V of the image as it is (default) or of the image closed by "
                        "the 6-neighbour cross, which removes the digitisation's spurious "
                        "tunnels along grain intersections (README, 'Accuracy of the "
                        "descriptors')")
    add_run_options(d)
    add_plot_option(d, "the CPSD/intrusion curves and the centred C(h)")
    c = d.add_argument_group(
        "chunked (a Zarr store larger than memory, block by block; the default for a store "
        "written by 'generate --chunks')")
    c.add_argument("--chunked", action="store_true",
                   help="describe block by block (any .zarr store)")
    c.add_argument("--block", type=int, nargs="+", default=None, metavar="N",
                   help="block edge(s) of the tasks in voxels (default: the store's chunks "
                   "grouped up to 256)")
    c.add_argument("--window", type=int, nargs="+", default=None, metavar="N",
                   help="window edge(s) in voxels of the windowed intrusion, constrictivity "
                   "and geodesic tortuosity (default 128; one window per axis = exact)")
    c.add_argument("--max-lag", type=float, default=None, metavar="NM",
                   help="largest lag of C(h) in nm (default min(n/2, 32) voxels)")
    add_cluster_options(c, "the blocks")
    d.set_defaults(func=run)
    return d


def run(args: argparse.Namespace) -> int:
    """``cbagpu describe``: every descriptor of the phases of a label image."""
    from cbagpu.measure.describe import describe

    check_png_path(args.plot)
    if args.plot:
        from cbagpu.plots import require_matplotlib

        require_matplotlib()
    phases = ("solid", "pore", "graphite") if args.phase == "all" else (args.phase,)
    chunked = _chunked(args)
    if chunked:
        from cbagpu.measure.chunked import open_label_store

        _, meta = open_label_store(args.image)
    else:
        labels, meta = read_labels(args.image)
    voxel_size = voxel_size_of(args, meta)
    t = time.perf_counter()
    bar = stage_printer(not args.quiet)
    try:
        if chunked:
            desc = _describe_chunked(args, float(voxel_size), phases, bar)
        else:
            desc = describe(labels, float(voxel_size), phases=phases, axis=args.axis,
                            backend=args.backend, progress=bar,
                            connectivity=args.connectivity, euler=args.euler)
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
          f"{'zyx'[desc.axis]}, backend {desc.backend}; M_V and chi_V with adjacency "
          f"({desc.connectivity}, {32 - desc.connectivity}), chi_V {desc.euler}")
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
    chunking = getattr(desc, "chunking", None)
    if chunking:
        g = next(iter(desc.global_descriptors.values()))
        print(f"  chunked: {chunking['blocks']} blocks of {chunking['block_shape']}, halos "
              f"C(h) {chunking['covariance_halo']}, CPSD {chunking['cpsd_halo']}; r_min, "
              f"constrictivity, geodesic tortuosity: {g['method']}")
    print(f"  time {seconds:.1f} s" + (f"; plot written to {args.plot}" if args.plot else ""))
    return 0


def _chunked(args: argparse.Namespace) -> bool:
    """Block by block: asked for (``--chunked``, a cluster, blocks or windows), or a store
    written block-wise by ``generate --chunks`` (its attributes record ``chunks``)."""
    from pathlib import Path

    from cbagpu.cli.common import UsageError

    asked = [o for o, v in (("--block", args.block), ("--window", args.window),
                            ("--max-lag", args.max_lag), ("--workers", args.workers),
                            ("--scheduler", args.scheduler)) if v is not None]
    if args.chunked or asked:
        if not Path(args.image).is_dir():
            raise UsageError(f"{' '.join(asked) or '--chunked'} needs a .zarr store, got "
                             f"{args.image!r}")
        return True
    if Path(args.image).is_dir():
        from cbagpu.io.zarr_store import read_store_attrs

        attrs = read_store_attrs(args.image) or {}
        return "chunks" in attrs and "generator" in attrs
    return False


def _edges(values: list[int] | None, option: str) -> Any:
    from cbagpu.cli.common import UsageError

    if values is None:
        return None
    if len(values) not in (1, 3):
        raise UsageError(f"{option} takes one edge or three (z y x), got {len(values)}")
    return values[0] if len(values) == 1 else tuple(values)


def _describe_chunked(args: argparse.Namespace, voxel_size: float, phases: tuple[str, ...],
                      bar: Any) -> Any:
    from cbagpu.measure.chunked import DEFAULT_WINDOW, describe_chunked

    window = _edges(args.window, "--window")
    return describe_chunked(
        args.image, voxel_size, phases=phases, axis=args.axis, backend=args.backend,
        max_lag=args.max_lag, block=_edges(args.block, "--block"),
        window=DEFAULT_WINDOW if window is None else window, workers=args.workers,
        scheduler=args.scheduler, progress=bar, connectivity=args.connectivity,
        euler=args.euler)
