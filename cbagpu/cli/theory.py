"""``cbagpu theory``: closed forms of the model (NOTES §4, Eqs. 10-25) in nm units."""

from __future__ import annotations

import argparse
from typing import Any

from cbagpu.cli.common import add_params_args, load_params, print_json


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``theory`` on an argparse subparsers object."""
    t = sub.add_parser(
        "theory",
        help="print the closed-form values of the model",
        description="Closed forms of NOTES §4 (Eqs. 10-25) in nm units.",
    )
    add_params_args(t)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=run)
    return t


def run(args: argparse.Namespace) -> int:
    """``cbagpu theory``: the closed forms of the model at one voxel size."""
    from cbagpu.simulate.realization import check_voxel_model
    from cbagpu.theory import model_theory

    params = load_params(args)
    check_voxel_model(params, args.voxel_size)
    th = model_theory(params, args.voxel_size)
    d = th.as_dict()
    if args.json:
        print_json({"voxel_size": args.voxel_size, "params": params.to_dict(), **d})
        return 0
    units = {
        "S1": "nm^-1",
        "K1": "nm^-2",
        "N1": "nm^-3",
        "S2": "nm^-1",
        "S3": "nm^-1",
        "S_V": "nm^-1",
        "Vbar": "nm^3",
        "Sbar": "nm^2",
        "Kbar": "nm",
    }
    print(f"closed forms at voxel size {args.voxel_size:g} nm")
    for k, v in d.items():
        print(f"  {k:9s} {v: .6g} {units.get(k, '')}")
    return 0
