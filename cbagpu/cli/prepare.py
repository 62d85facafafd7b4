"""``cbagpu prepare``: a binary segmentation and a graphite probability map -> a label image
(paper Section 2.3)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cbagpu.cli.common import UsageError, add_run_options, print_json, read_image_arg, say


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``prepare`` on an argparse subparsers object."""
    p = sub.add_parser(
        "prepare",
        help="segmentation outputs -> label image (paper Section 2.3)",
        description="Clean a binary pore/solid segmentation (closing, main network), "
        "down-sample it to cubic voxels by slice removal and label graphite from a "
        "probability map (quantile threshold, small components removed, ball closing, "
        "pore correction). Writes a uint8 label image (0 pore, 1 CBD, 2 graphite).",
    )
    p.add_argument("--solid", required=True, metavar="FILE",
                   help="binary image: 0 = pore, one nonzero value = solid (.tif/.npy/.raw/.zarr)")
    p.add_argument("--graphite-prob", required=True, metavar="FILE",
                   help="graphite probability map in [0, 1], same shape as --solid (or the "
                   "down-sampled shape)")
    p.add_argument("--voxel-size", type=float, nargs="+", required=True, metavar="NM",
                   help="input voxel edge(s) in nm: one value (cubic) or three in the "
                   "array's axis order Z Y X (a FIB-SEM stack of 10 x 10 nm images cut "
                   "every 20 nm along z is 20 10 10)")
    p.add_argument("--to-voxel-size", type=float, default=20.0, metavar="NM",
                   help="cubic output voxel edge in nm, an integer multiple of every input "
                   "edge (default 20)")
    p.add_argument("--out", required=True,
                   help="output label image (.tif/.npy/.raw/.zarr, or .ome.zarr: OME-Zarr "
                   "with a multiscale pyramid)")
    p.add_argument("--closing-element", choices=("cube", "cross", "none"), default="none",
                   help="closing of the solid with a radius-one element: cube = 3x3x3, the "
                   "paper's Section 2.3.1 step (lowers the porosity of fine structures by "
                   "~2 %%); default none (small pore inclusions are filled instead, see "
                   "--max-hole-volume)")
    p.add_argument("--connectivity", type=int, choices=(6, 18, 26), default=26,
                   help="connectivity of the solid's main network (default 26)")
    p.add_argument("--max-hole-volume", type=float, default=None, metavar="NM3",
                   help="fill pore components up to this volume in nm^3 (default: 27 input "
                   "voxels, the volume of the 3x3x3 element; 0: off)")
    p.add_argument("--quantile", type=float, default=0.85,
                   help="graphite threshold quantile of the probability map (default 0.85)")
    p.add_argument("--quantile-over", choices=("all", "solid"), default="all",
                   help="voxels the quantile is taken over (default all, as in the paper)")
    p.add_argument("--threshold", type=float, default=None,
                   help="fixed probability threshold instead of the quantile")
    p.add_argument("--graphite-fraction", type=float, default=None, metavar="F",
                   help="expected graphite volume fraction of the image (e.g. 0.094): the "
                   "threshold is chosen to label that much, and the quantile it implies is "
                   "reported")
    p.add_argument("--wt", default=None, metavar="NAME=W,...",
                   help="expected composition instead (paper Section 2.3.3): weight "
                   "fractions, e.g. am=87,graphite=5,carbon_black=4,binder=4; with --density")
    p.add_argument("--density", default=None, metavar="NAME=RHO,...",
                   help="densities for --wt, e.g. am=4.77,graphite=2.3,carbon_black=1.9,"
                   "binder=1.8")
    p.add_argument("--porosity", type=float, default=None,
                   help="porosity of the AM-free region for --wt (default: the cleaned "
                   "image's)")
    p.add_argument("--threshold-rule", choices=("auto", "quantile", "composition"),
                   default="auto",
                   help="auto (default): the composition when --graphite-fraction or --wt "
                   "is given, else the quantile; quantile: the paper's rule, the "
                   "composition only compared with")
    p.add_argument("--min-graphite-volume", type=float, default=5000 * 20.0**3, metavar="NM3",
                   help="graphite components below this volume are removed (default 4e7 nm^3 "
                   "= 5000 voxels at 20 nm)")
    p.add_argument("--graphite-connectivity", type=int, choices=(6, 18, 26), default=26)
    p.add_argument("--closing-radius", type=float, default=200.0, metavar="NM",
                   help="radius of the ball closing of the graphite in nm (default 200)")
    add_run_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """``cbagpu prepare``: segmentation outputs -> label image."""
    from cbagpu.io import check_writable, write_image
    from cbagpu.prepare.pipeline import prepare
    from cbagpu.prepare.resample import resample_factors

    if len(args.voxel_size) not in (1, 3):
        raise UsageError(f"--voxel-size takes one value or three (Z Y X), got "
                         f"{len(args.voxel_size)}")
    resample_factors(tuple(args.voxel_size) if len(args.voxel_size) == 3
                     else args.voxel_size[0], args.to_voxel_size)  # fail before reading
    check_writable(args.out, overwrite=True)
    note = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    for path, what in ((args.solid, "solid image"),
                       (args.graphite_prob, "graphite probability map")):
        if not Path(path).exists():
            raise UsageError(f"{what} not found: {path}")
    note(f"reading {args.solid} and {args.graphite_prob}")
    solid, _ = read_image_arg(args.solid, "solid image")
    prob, _ = read_image_arg(args.graphite_prob, "graphite probability map")
    composition = None
    if (args.wt is None) != (args.density is None):
        raise UsageError("--wt and --density go together")
    if args.porosity is not None and args.wt is None:
        raise UsageError("--porosity needs --wt and --density")
    if args.wt is not None:
        from cbagpu.cli.composition import parse_mapping

        composition = {"weight_fractions": parse_mapping(args.wt, "--wt"),
                       "densities": parse_mapping(args.density, "--density"),
                       "porosity": args.porosity}
    vs = args.voxel_size[0] if len(args.voxel_size) == 1 else tuple(args.voxel_size)
    note("preparing (clean-up, slice removal, graphite labelling)")
    r = prepare(
        solid, prob, vs, args.to_voxel_size,
        closing_element=args.closing_element, solid_connectivity=args.connectivity,
        max_hole_volume=args.max_hole_volume, quantile=args.quantile,
        quantile_over=args.quantile_over, threshold=args.threshold,
        min_graphite_volume=args.min_graphite_volume,
        graphite_connectivity=args.graphite_connectivity, closing_radius=args.closing_radius,
        graphite_fraction=args.graphite_fraction, composition=composition,
        threshold_rule=args.threshold_rule, backend=args.backend,
    )
    path = write_image(args.out, r.labels, r.metadata(inputs={
        "solid": str(args.solid), "graphite_prob": str(args.graphite_prob)}))
    for m in r.messages:
        say("prepare", m)
    if args.json:
        print_json({"out": str(path), **r.to_dict()})
        return 0
    z, y, x = r.labels.shape
    print(f"wrote {path}  ({z}x{y}x{x} voxels at {r.voxel_size:g} nm, factors "
          f"{tuple(r.factors)}, backend {r.backend}, {r.seconds:.1f} s)")
    for st in r.steps:
        rest = ", ".join(f"{k} {v}" for k, v in st.items()
                         if k != "step" and not isinstance(v, list | dict))
        print(f"  {st['step']:16s} {rest}")
    f = r.fractions
    print(f"  fractions: pore {f['pore']:.4f}, cbd {f['cbd']:.4f}, graphite {f['graphite']:.4f}")
    return 0


