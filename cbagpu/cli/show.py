"""``cbagpu show``: a picture of a label image (three orthogonal centre slices and a 3D
view of a central sub-cube, as in the paper's Figure 3)."""

from __future__ import annotations

import argparse
from typing import Any

from cbagpu.cli.common import (
    UsageError,
    add_run_options,
    check_png_path,
    print_json,
    voxel_size_of,
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``show`` on an argparse subparsers object."""
    p = sub.add_parser(
        "show", help="PNG picture of a label image (slices + 3D view)",
        description="Draw three orthogonal slices through the centre and a 3D view of a "
        "central sub-cube (pore transparent, CBD orange, graphite blue), with scale bars "
        "in µm and the voxel size and phase fractions in the caption. Headless; needs "
        "matplotlib (pip install \"cbagpu[plot]\").")
    p.add_argument("image", help="label image (.tif, .npy, .raw, .zarr, .ome.zarr)")
    p.add_argument("--out", required=True, metavar="PATH.png", help="output PNG")
    p.add_argument("--voxel-size", type=float, default=None, metavar="NM",
                   help="voxel edge length in nm (default: from the file's metadata)")
    p.add_argument("--cube", type=int, default=None, metavar="N",
                   help="edge in voxels of the central sub-cube of the 3D view (default "
                   "min(shape, 96))")
    p.add_argument("--title", default=None, help="title above the picture")
    add_run_options(p, json_help="print what was drawn as one JSON object", backend=False,
                    quiet=False)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """``cbagpu show``: one label image -> one PNG."""
    from cbagpu.plots import require_matplotlib
    from cbagpu.viz import open_labels, show

    check_png_path(args.out, "--out")
    require_matplotlib()
    try:
        image, meta, fractions = open_labels(args.image)
    except FileNotFoundError:
        raise UsageError(f"image not found: {args.image}") from None
    r = show(image, args.out, voxel_size=voxel_size_of(args, meta), cube=args.cube,
             title=args.title, metadata=meta, fractions=fractions)
    if args.json:
        print_json(r.to_dict())
        return 0
    f = r.fractions
    print(f"wrote {r.path}  ({r.size_px[0]}x{r.size_px[1]} px; pore {f['pore']:.3f}, "
          f"CBD {f['cbd']:.3f}, graphite {f['graphite']:.3f})")
    return 0
