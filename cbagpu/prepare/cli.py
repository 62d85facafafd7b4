"""``cbagpu prepare`` and ``cbagpu composition`` (paper Section 2.3).

Wiring (in cbagpu/cli.py): ``from cbagpu.prepare import cli as prepare_cli`` then
``prepare_cli.add_parser(sub)``; each subparser sets ``func`` to :func:`run`, which
dispatches on ``args.command``. Errors: ``ValueError`` with a one-line message (the main
CLI prints it and exits 2); :func:`run` itself returns 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cbagpu.cli import add_run_options
from cbagpu.errors import InvalidInputError

__all__ = ["add_parser", "parse_mapping", "run"]


def parse_mapping(text: str, what: str) -> dict[str, float]:
    """``"am=87,graphite=5"`` -> ``{"am": 87.0, "graphite": 5.0}`` (ValueError otherwise)."""
    out: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidInputError(f"{what}: expected NAME=VALUE[,NAME=VALUE...], got {item!r}")
        if name in out:
            raise InvalidInputError(f"{what}: {name!r} given twice")
        try:
            out[name] = float(value)
        except ValueError:
            raise InvalidInputError(
                f"{what}: value of {name!r} is not a number: {value!r}") from None
    if not out:
        raise InvalidInputError(f"{what}: nothing given")
    return out


def add_parser(sub: Any) -> None:
    """Register ``prepare`` and ``composition`` on an argparse subparsers object."""
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
    p.add_argument("--out", required=True, help="output label image (.tif/.npy/.raw/.zarr)")
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
    p.add_argument("--min-graphite-volume", type=float, default=5000 * 20.0**3, metavar="NM3",
                   help="graphite components below this volume are removed (default 4e7 nm^3 "
                   "= 5000 voxels at 20 nm)")
    p.add_argument("--graphite-connectivity", type=int, choices=(6, 18, 26), default=26)
    p.add_argument("--closing-radius", type=float, default=200.0, metavar="NM",
                   help="radius of the ball closing of the graphite in nm (default 200)")
    add_run_options(p)
    p.set_defaults(func=run)

    c = sub.add_parser(
        "composition",
        help="expected additive volume fractions (paper Section 2.3.3)",
        description="Volume fractions of the additives in a region without active "
        "material, from weight fractions, densities and the porosity; with --labels, "
        "compared with a label image's fractions.",
    )
    c.add_argument("--wt", required=True, metavar="NAME=W,...",
                   help="weight fractions, e.g. am=87,graphite=5,carbon_black=4,binder=4 "
                   "('am' = active material, excluded)")
    c.add_argument("--density", required=True, metavar="NAME=RHO,...",
                   help="densities, e.g. am=4.77,graphite=2.3,carbon_black=1.9,binder=1.8")
    c.add_argument("--porosity", type=float, default=None,
                   help="porosity of the AM-free region as a fraction (e.g. 0.6686)")
    c.add_argument("--labels", metavar="FILE", default=None,
                   help="label image to compare with (its porosity is used unless "
                   "--porosity is given)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``prepare`` or ``composition`` (by ``args.command``); returns the exit code."""
    if args.command == "composition":
        return _run_composition(args)
    return _run_prepare(args)


def _read(path: str, what: str) -> tuple[Any, dict[str, Any]]:
    from cbagpu.io import read_image

    try:
        return read_image(path)
    except FileNotFoundError:
        raise InvalidInputError(f"{what} not found: {path}") from None


def _run_prepare(args: argparse.Namespace) -> int:
    from cbagpu.io import check_writable, write_image
    from cbagpu.prepare.pipeline import prepare
    from cbagpu.prepare.resample import resample_factors

    if len(args.voxel_size) not in (1, 3):
        raise InvalidInputError(f"--voxel-size takes one value or three (Z Y X), got "
                         f"{len(args.voxel_size)}")
    resample_factors(tuple(args.voxel_size) if len(args.voxel_size) == 3
                     else args.voxel_size[0], args.to_voxel_size)  # fail before reading
    check_writable(args.out, overwrite=True)
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    say(f"reading {args.solid} and {args.graphite_prob}")
    solid, _ = _read(args.solid, "solid image")
    prob, _ = _read(args.graphite_prob, "graphite probability map")
    vs = args.voxel_size[0] if len(args.voxel_size) == 1 else tuple(args.voxel_size)
    say("preparing (clean-up, slice removal, graphite labelling)")
    r = prepare(
        solid, prob, vs, args.to_voxel_size,
        closing_element=args.closing_element, solid_connectivity=args.connectivity,
        max_hole_volume=args.max_hole_volume, quantile=args.quantile,
        quantile_over=args.quantile_over, threshold=args.threshold,
        min_graphite_volume=args.min_graphite_volume,
        graphite_connectivity=args.graphite_connectivity, closing_radius=args.closing_radius,
        backend=args.backend,
    )
    path = write_image(args.out, r.labels, r.metadata(inputs={
        "solid": str(args.solid), "graphite_prob": str(args.graphite_prob)}))
    if args.json:
        print(json.dumps({"out": str(path), **r.to_dict()}, indent=2))
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


def _run_composition(args: argparse.Namespace) -> int:
    from cbagpu.prepare.composition import check_composition, expected_volume_fractions

    wt = parse_mapping(args.wt, "--wt")
    rho = parse_mapping(args.density, "--density")
    if args.porosity is None and args.labels is None:
        raise InvalidInputError("give --porosity (a fraction, e.g. 0.6686) or --labels FILE")
    if args.porosity is not None and not (0.0 <= args.porosity < 1.0):
        raise InvalidInputError(
            f"--porosity must be a fraction in [0, 1) (e.g. 0.6686 for 66.86 %), "
            f"got {args.porosity:g}")
    measured = None
    if args.labels is not None:
        labels, _ = _read(args.labels, "label image")
        chk = check_composition(labels, wt, rho, args.porosity)
        comp, measured, diff = chk.expected, chk.measured, chk.difference
    else:
        comp = expected_volume_fractions(wt, rho, args.porosity)
    if args.json:
        d = comp.to_dict()
        if measured is not None:
            d["measured"] = measured
            d["difference"] = diff
        print(json.dumps(d, indent=2))
        return 0
    print(f"expected volume fractions in the AM-free region (porosity {comp.porosity:.2%})")
    for k, v in comp.volume_fractions.items():
        print(f"  {k:20s} {v:7.2%}")
    print(f"  {'cbd (all but graphite)':20s} {comp.cbd:7.2%}")
    if measured is not None:
        print(f"label image {args.labels}: graphite {measured['graphite']:.2%} (expected "
              f"{comp.graphite:.2%}), cbd {measured['cbd']:.2%} (expected {comp.cbd:.2%}), "
              f"pore {measured['pore']:.2%}")
    return 0
