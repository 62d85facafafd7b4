"""``cbagpu composition``: expected volume fractions of the additives (paper Section 2.3.3),
optionally against a label image."""

from __future__ import annotations

import argparse
from typing import Any

from cbagpu.cli.common import UsageError, print_json, read_image_arg


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
            raise UsageError(f"{what}: expected NAME=VALUE[,NAME=VALUE...], got {item!r}")
        if name in out:
            raise UsageError(f"{what}: {name!r} given twice")
        try:
            out[name] = float(value)
        except ValueError:
            raise UsageError(
                f"{what}: value of {name!r} is not a number: {value!r}") from None
    if not out:
        raise UsageError(f"{what}: nothing given")
    return out


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``composition`` on an argparse subparsers object."""
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
    return c


def run(args: argparse.Namespace) -> int:
    """``cbagpu composition``: expected additive volume fractions."""
    from cbagpu.prepare.composition import check_composition, expected_volume_fractions

    wt = parse_mapping(args.wt, "--wt")
    rho = parse_mapping(args.density, "--density")
    if args.porosity is None and args.labels is None:
        raise UsageError("give --porosity (a fraction, e.g. 0.6686) or --labels FILE")
    if args.porosity is not None and not (0.0 <= args.porosity < 1.0):
        raise UsageError(
            f"--porosity must be a fraction in [0, 1) (e.g. 0.6686 for 66.86 %), "
            f"got {args.porosity:g}")
    measured = None
    if args.labels is not None:
        labels, _ = read_image_arg(args.labels, "label image")
        chk = check_composition(labels, wt, rho, args.porosity)
        comp, measured, diff = chk.expected, chk.measured, chk.difference
    else:
        comp = expected_volume_fractions(wt, rho, args.porosity)
    if args.json:
        d = comp.to_dict()
        if measured is not None:
            d["measured"] = measured
            d["difference"] = diff
        print_json(d)
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
