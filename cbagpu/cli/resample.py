"""``cbagpu resample``: a label image down-sampled by slice removal (every k-th slice along
each axis, NOTES §8), chunk by chunk (:func:`cbagpu.io.crop_resample.resample_image`)."""

from __future__ import annotations

import argparse
from typing import Any

from cbagpu.cli.common import close_progress, stage_printer
from cbagpu.cli.crop import add_output_options, report


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``resample`` on an argparse subparsers object."""
    p = sub.add_parser(
        "resample", help="down-sample a label image or store by slice removal",
        description="Keep every k-th slice along each axis, starting with the first "
        "(img[::k, ::k, ::k], as the paper goes from 20 to 40 and 80 nm; labels stay "
        "exact), reading a .zarr/.ome.zarr store chunk by chunk. The voxel size in the "
        "metadata is multiplied by k.")
    p.add_argument("image", help="label image or store (.zarr, .ome.zarr, .tif, .npy, .raw)")
    p.add_argument("--factor", type=int, required=True, metavar="K",
                   help="keep every K-th slice (K >= 2)")
    add_output_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """``cbagpu resample``."""
    from cbagpu.io.crop_resample import resample_image

    bar = stage_printer(not args.quiet)
    try:
        r = resample_image(args.image, args.out, factor=args.factor, chunks=args.chunks,
                           overwrite=args.overwrite, progress=bar)
    finally:
        close_progress(bar)
    return report(r, args, f"{args.image} down-sampled by {args.factor}")
