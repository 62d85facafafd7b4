"""``cbagpu transport``: steady conduction through a label image (NOTES §7, Eq. 27)."""

from __future__ import annotations

import argparse
from typing import Any

from cbagpu.cli.common import (
    UsageError,
    add_run_options,
    close_progress,
    iteration_printer,
    print_json,
    read_labels,
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``transport`` on an argparse subparsers object."""
    tr = sub.add_parser(
        "transport", help="effective conductivity, tortuosity factor and M-factor",
        description="Steady conduction between two opposite faces (phi = 1, phi = 0; no flux "
                    "through the others) by multigrid-preconditioned conjugate gradients. "
                    "Solid phase: graphite 1, CBD 0.01, pore 0; pore phase: pore 1 (NOTES "
                    "§7). Exit status 1 when the iteration limit is reached first.")
    tr.add_argument("image", help="label image (.tif, .npy, .raw, .zarr)")
    tr.add_argument("--phase", choices=("solid", "pore"), default="solid")
    tr.add_argument("--axis", choices=("z", "y", "x"), default="z", help="flow axis")
    tr.add_argument("--sigma", default=None, metavar="L=S,...",
                    help="conductivity per label, e.g. 0=0,1=0.01,2=1 (default: the phase's)")
    tr.add_argument("--tol", type=float, default=None, metavar="T",
                    help="stop when the fluxes through all cross-sections agree to "
                         "(max-min)/mean <= T (default 1e-2: tau within ~1e-4 of converged)")
    tr.add_argument("--max-iter", type=int, default=2000)
    tr.add_argument("--boundary-offset", type=float, default=0.5, metavar="VOXELS",
                    help="Dirichlet planes this far outside the end-layer centres (0.5: on "
                         "the outer faces, length N; 1.0: TauFactor MultiPhaseSolver, N+1)")
    add_run_options(tr)
    tr.set_defaults(func=run)
    return tr


def run(args: argparse.Namespace) -> int:
    """``cbagpu transport``: effective conductivity, tortuosity factor and M-factor; exit 1
    when the iteration limit is reached first."""
    from cbagpu.io.lazy import open_image_lazy
    from cbagpu.transport import DEFAULT_TOL, check_transport_fits, parse_sigma, transport

    sigma = parse_sigma(args.sigma) if args.sigma is not None else None
    if str(args.image).lower().endswith(".zarr"):  # a store: refuse before reading it
        try:
            shape = open_image_lazy(args.image).shape
        except FileNotFoundError:
            raise UsageError(f"image not found: {args.image}") from None
        check_transport_fits(shape, backend=args.backend)
    labels, _ = read_labels(args.image)
    show = iteration_printer(not args.quiet)

    tol = DEFAULT_TOL if args.tol is None else args.tol
    try:
        res = transport(labels, args.phase, args.axis, sigma=sigma, tol=tol,
                        max_iter=args.max_iter, boundary_offset=args.boundary_offset,
                        backend=args.backend, progress=show)
    finally:
        close_progress(show)
    if args.json:
        d = res.to_dict()
        d["image"] = str(args.image)
        d["phase"] = args.phase
        print_json(d)
        return 0
    z, y, x = labels.shape
    print(f"{args.image}: {z}x{y}x{x} voxels, {args.phase} phase, flow along {'zyx'[res.axis]}, "
          f"backend {res.backend}")
    print(f"  epsilon          {res.epsilon:.5g}")
    print(f"  sigma_eff        {res.sigma_eff:.6g}   (relative to sigma = 1)")
    print(f"  tau_eff          {res.tau_eff:.6g}   (sum eps_p sigma_p / sigma_eff)")
    print(f"  M                {res.M:.6g}   (eps / tau_eff, Eq. 27)")
    print(f"  percolating      {res.percolating_fraction:.4f} of the conducting voxels")
    print(f"  {res.message}; {res.seconds:.1f} s")
    return 0 if res.converged else 1
