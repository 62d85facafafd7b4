"""``cbagpu export``: a label image as a file for ParaView (``.vti``), finite-element and
finite-volume codes (``.xdmf`` + ``.h5``) or a mesher (``.stl``, the surface of a phase)."""

from __future__ import annotations

import argparse
from typing import Any

from cbagpu.cli.common import (
    UsageError,
    add_run_options,
    print_json,
    read_labels,
    voxel_size_of,
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``export`` on an argparse subparsers object."""
    p = sub.add_parser(
        "export", help="label image -> .vti (ParaView), .xdmf + .h5, .stl (phase surface)",
        description="Write a label image for another program, by the suffix of --to: .vti "
        "(VTK ImageData, spacing = voxel size), .xdmf (+ .h5 beside it), .stl (the surface "
        "of --phase by marching cubes). Metadata go beside the data (.json sidecar, or the "
        "HDF5 file). Needs the export extra (pip install \"cbagpu[export]\").")
    p.add_argument("image", help="label image (.tif, .npy, .raw, .zarr, .ome.zarr)")
    p.add_argument("--to", required=True, metavar="PATH",
                   help="output .vti, .xdmf (writes PATH.h5 too) or .stl")
    p.add_argument("--voxel-size", type=float, default=None, metavar="NM",
                   help="voxel edge length in nm (default: from the file's metadata)")
    p.add_argument("--unit", choices=("nm", "um"), default="nm",
                   help="length unit of the spacing and the mesh coordinates (default nm)")
    p.add_argument("--phase", choices=("solid", "cbd", "graphite", "pore"), default="solid",
                   help=".stl: the phase whose surface is written (default solid = CBD and "
                   "graphite)")
    p.add_argument("--smooth", type=int, default=0, metavar="N",
                   help=".stl: iterations of volume-preserving Taubin smoothing (default 0)")
    p.add_argument("--decimate", type=float, default=None, metavar="F",
                   help=".stl: remove this fraction of the faces (0 < F < 1) by quadric "
                   "decimation")
    add_run_options(p, backend=False, quiet=False)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """``cbagpu export``: one label image to one file format."""
    from cbagpu.export import EXPORT_SUFFIXES, export_image

    if not str(args.to).lower().endswith(EXPORT_SUFFIXES):
        raise UsageError(f"--to must end in {', '.join(EXPORT_SUFFIXES)}, got {args.to}")
    labels, meta = read_labels(args.image)
    r = export_image(labels, args.to, voxel_size=voxel_size_of(args, meta),
                     origin=tuple(meta.get("origin") or (0, 0, 0)), metadata=meta,
                     unit=args.unit, phase=args.phase, smooth=args.smooth,
                     decimate=args.decimate)
    if args.json:
        print_json(r.to_dict())
        return 0
    z, y, x = r.shape
    print(f"wrote {', '.join(r.files)}  ({z}x{y}x{x} voxels at {r.voxel_size:g} nm, "
          f"unit {r.unit})")
    if r.mesh:
        m = r.mesh
        print(f"  surface of {m['phase']}: {m['vertices']} vertices, {m['faces']} faces, "
              f"area {m['area']:.4g} {r.unit}^2, volume {m['volume']:.4g} {r.unit}^3, "
              f"{'watertight' if m['watertight'] else 'NOT watertight'}")
    return 0
