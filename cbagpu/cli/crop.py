"""``cbagpu crop``: a window of a label image (a store read chunk by chunk) written to a
new file or store with its metadata (:func:`cbagpu.io.crop_resample.crop_image`)."""

from __future__ import annotations

import argparse
from typing import Any

from cbagpu.cli.common import add_run_options, close_progress, print_json, stage_printer

OUTPUTS = (".zarr (chunk by chunk), .ome.zarr (with a pyramid), or .tif/.npy/.raw "
           "(in memory: refused when it does not fit)")


def add_output_options(p: argparse.ArgumentParser) -> None:
    """``--out``, ``--chunks``, ``--overwrite``: shared by crop and resample."""
    p.add_argument("--out", required=True, metavar="PATH", help="output: " + OUTPUTS)
    p.add_argument("--chunks", type=int, nargs="+", default=None, metavar="N",
                   help="chunk edges of a .zarr output: N or Z Y X (default: the source's; "
                   "128 for .ome.zarr)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    add_run_options(p, backend=False)


def report(result: Any, args: argparse.Namespace, what: str) -> int:
    """Print what was written (one JSON object with ``--json``)."""
    if args.json:
        print_json(result.to_dict())
        return 0
    z, y, x = result.shape
    vs = f" at {result.voxel_size:g} nm" if result.voxel_size else ""
    n = sum(result.label_counts.values())
    fr = ", ".join(f"{k} {v / n:.4f}" for k, v in result.label_counts.items())
    print(f"wrote {result.path}: {what}, {z}x{y}x{x} voxels{vs}; fractions {fr}; "
          f"{result.seconds:.1f} s")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``crop`` on an argparse subparsers object."""
    p = sub.add_parser(
        "crop", help="cut a window out of a label image or store, chunk by chunk",
        description="Write the window ORIGIN + [0, SHAPE) of a label image to --out, "
        "reading a .zarr/.ome.zarr store chunk by chunk (Dask threads), so a window of a "
        "realization too large for memory can be taken to describe, transport or fit. The "
        "metadata is carried over; its origin is the window's place in the realization.")
    p.add_argument("image", help="label image or store (.zarr, .ome.zarr, .tif, .npy, .raw)")
    p.add_argument("--origin", type=int, nargs=3, required=True, metavar=("Z", "Y", "X"),
                   help="first voxel of the window, in the source's voxels")
    p.add_argument("--shape", type=int, nargs="+", required=True, metavar="N",
                   help="edges of the window: N (a cube) or Z Y X")
    add_output_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """``cbagpu crop``."""
    from cbagpu.cli.common import shape_arg
    from cbagpu.io.crop_resample import crop_image

    shape = shape_arg(args.shape)
    bar = stage_printer(not args.quiet)
    try:
        r = crop_image(args.image, args.out, origin=tuple(args.origin), shape=shape,
                       chunks=args.chunks, overwrite=args.overwrite, progress=bar)
    finally:
        close_progress(bar)
    return report(r, args, f"window {list(args.origin)} + {list(shape)} of {args.image}")
