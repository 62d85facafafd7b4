"""Command line: one thin command per job; each parses, calls one API function, prints.

``cbagpu generate`` writes a realization, ``cbagpu theory`` prints the closed forms,
``cbagpu describe`` measures the descriptors of a label image.
Bad input exits with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from cbagpu._version import __version__
from cbagpu.errors import InvalidInputError


class UsageError(Exception):
    """Bad input from the command line (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


# ----------------------------------------------------------------------------- helpers
def add_run_options(p: argparse.ArgumentParser, json_help: str = "print one JSON object",
                    backend: bool = True, quiet: bool = True) -> None:
    """The options every job command shares: --backend, --json, --quiet."""
    if backend:
        p.add_argument("--backend", choices=("auto", "numpy", "cupy"), default="auto")
    p.add_argument("--json", action="store_true", help=json_help)
    if quiet:
        p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _add_params_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--preset",
        default=None,
        help="parameter preset: 'paper' (Table 2, default) or 'table3-1'..'table3-7'",
    )
    g.add_argument(
        "--params",
        metavar="FILE.json",
        default=None,
        help="parameter file with the keys lambda_x, alpha1, alpha2, gamma, mu, "
        "eta, theta, lambda_y (Table 2 units, nm based)",
    )
    p.add_argument(
        "--voxel-size", type=float, required=True, metavar="NM", help="voxel edge length s in nm"
    )


def _load_params(args: argparse.Namespace):
    from cbagpu.params import CBAParams, preset

    if args.params is not None:
        try:
            return CBAParams.from_json(args.params)
        except FileNotFoundError:
            raise UsageError(f"parameter file not found: {args.params}") from None
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"bad parameter file {args.params}: {exc}") from None
    return preset(args.preset or "paper")


def _progress_printer(enabled: bool):
    if not enabled:
        return None
    tty = sys.stderr.isatty()
    start = time.perf_counter()

    def show(stage: str, done: int, total: int) -> None:
        msg = f"[{time.perf_counter() - start:7.1f} s] {stage} {done}/{total}"
        if tty:
            end = "\n" if (done == total and stage == "grains") else ""
            print("\r" + msg.ljust(40), end=end, file=sys.stderr, flush=True)
        else:
            print(msg, file=sys.stderr, flush=True)

    return show


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


# ---------------------------------------------------------------------------- commands
def cmd_theory(args: argparse.Namespace) -> int:
    from cbagpu.theory import model_theory

    params = _load_params(args)
    th = model_theory(params, args.voxel_size)
    d = th.as_dict()
    if args.json:
        _print_json({"voxel_size": args.voxel_size, "params": params.to_dict(), **d})
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


def cmd_generate(args: argparse.Namespace) -> int:
    from cbagpu.io import check_writable, write_image
    from cbagpu.simulate.realization import realize
    from cbagpu.theory import model_theory

    if args.chunks is not None:  # block-wise generation to .zarr on Dask
        from cbagpu.studies.volume import run_generate_zarr

        return run_generate_zarr(args)
    if args.scheduler is not None or args.workers is not None:
        raise InvalidInputError("--scheduler and --workers need --chunks (block-wise generation "
                         "to .zarr)")
    params = _load_params(args)
    check_writable(args.out, overwrite=True)
    th = model_theory(params, args.voxel_size)
    r = realize(
        params,
        tuple(args.shape),
        args.voxel_size,
        args.seed,
        origin=tuple(args.origin),
        backend=args.backend,
        progress=_progress_printer(not args.quiet),
    )
    t = time.perf_counter()
    path = write_image(args.out, r.labels, r.metadata())
    r.timings["write"] = time.perf_counter() - t
    lab = r.labels
    n = lab.size
    import numpy as np

    counts = np.bincount(lab.ravel(), minlength=3)
    fractions = {"pore": counts[0] / n, "cbd": counts[1] / n, "graphite": counts[2] / n}
    theory = {"pore": th.pore, "cbd": th.cbd, "graphite": th.graphite}
    seconds = r.timings["total"] + r.timings["write"]
    if args.json:
        _print_json(
            {
                "out": str(path),
                "shape": list(lab.shape),
                "origin": list(r.origin),
                "voxel_size": r.voxel_size,
                "seed": r.seed,
                "params": params.to_dict(),
                "fractions": {k: float(v) for k, v in fractions.items()},
                "theory": theory,
                "solid_fraction": {"measured": float(1 - fractions["pore"]), "theory": th.V},
                "seconds": seconds,
                "timings": r.timings,
                "backend": r.backend,
            }
        )
        return 0
    z, y, x = lab.shape
    print(
        f"wrote {path}  ({z}x{y}x{x} voxels at {r.voxel_size:g} nm, seed {r.seed}, "
        f"origin {tuple(r.origin)}, backend {r.backend})"
    )
    print(f"  {'phase':9s} {'measured':>9s} {'theory':>9s}")
    for k in ("pore", "cbd", "graphite"):
        print(f"  {k:9s} {fractions[k]:9.4f} {theory[k]:9.4f}")
    print(f"  {'solid':9s} {1 - fractions['pore']:9.4f} {th.V:9.4f}")
    tm = ", ".join(f"{k} {v:.2f} s" for k, v in r.timings.items() if k != "total")
    print(f"  time {seconds:.2f} s ({tm})")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from cbagpu.measure.describe import describe, plot_description

    labels, meta = _read_labels(args.image)
    voxel_size = args.voxel_size if args.voxel_size is not None else meta.get("voxel_size")
    if voxel_size is None:
        raise UsageError(f"{args.image} has no voxel size in its metadata: pass --voxel-size")
    phases = ("solid", "pore", "graphite") if args.phase == "all" else (args.phase,)
    if args.plot:
        from cbagpu.io import check_writable

        if not args.plot.lower().endswith(".png"):
            raise UsageError("--plot must name a .png file")
        check_writable(args.plot.removesuffix(".png") + ".npy")  # directory checks only
    t = time.perf_counter()
    desc = describe(labels, float(voxel_size), phases=phases, axis=args.axis,
                    backend=args.backend, progress=_progress_printer(not args.quiet))
    seconds = time.perf_counter() - t
    if args.plot:
        plot_description(desc, args.plot)
    if args.json:
        d = desc.to_dict()
        d["meta"]["seconds"] = seconds
        d["meta"]["image"] = str(args.image)
        _print_json(d)
        return 0
    z, y, x = desc.shape
    print(f"{args.image}: {z}x{y}x{x} voxels at {desc.voxel_size:g} nm, inlet axis "
          f"{'zyx'[desc.axis]}, backend {desc.backend}")
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
    print(f"  time {seconds:.1f} s" + (f"; plot written to {args.plot}" if args.plot else ""))
    return 0


def _read_labels(path: str) -> tuple[Any, dict[str, Any]]:
    """A 3D label image with labels in {0, 1, 2} and its metadata (or a UsageError)."""
    import numpy as np

    from cbagpu.io import read_image

    try:
        labels, meta = read_image(path)
    except FileNotFoundError:
        raise UsageError(f"image not found: {path}") from None
    if labels.ndim != 3:
        raise UsageError(f"{path}: a 3D label image is needed, got shape {labels.shape}")
    extra = np.setdiff1d(np.unique(labels), [0, 1, 2])
    if extra.size:
        raise UsageError(f"{path}: labels must be 0 (pore), 1 (CBD), 2 (graphite); "
                         f"found {extra[:5].tolist()}")
    return labels, meta


def cmd_transport(args: argparse.Namespace) -> int:
    from cbagpu.transport import DEFAULT_TOL, parse_sigma, transport

    labels, _ = _read_labels(args.image)
    sigma = parse_sigma(args.sigma) if args.sigma else None
    show = None
    if not args.quiet:
        start = time.perf_counter()
        tty = sys.stderr.isatty()

        def show(it: int, spread: float) -> None:
            msg = f"[{time.perf_counter() - start:7.1f} s] iteration {it}: flux spread {spread:.2e}"
            print(("\r" + msg.ljust(60)) if tty else msg, end="" if tty else "\n",
                  file=sys.stderr, flush=True)

    tol = DEFAULT_TOL if args.tol is None else args.tol
    res = transport(labels, args.phase, args.axis, sigma=sigma, tol=tol,
                    max_iter=args.max_iter, boundary_offset=args.boundary_offset,
                    backend=args.backend, progress=show)
    if show is not None and sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        d = res.to_dict()
        d["image"] = str(args.image)
        d["phase"] = args.phase
        _print_json(d)
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


def cmd_info(args: argparse.Namespace) -> int:
    from cbagpu.backend import gpu_available
    from cbagpu.backend.cupy_backend import cupy_unavailable_reason

    info = {"version": __version__, "gpu": gpu_available(), "gpu_reason": cupy_unavailable_reason()}
    if args.json:
        _print_json(info)
    else:
        print(f"cbagpu {__version__}")
        state = "available" if info["gpu"] else f"unavailable ({info['gpu_reason']})"
        print(f"GPU backend: {state}")
    return 0


# -------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cbagpu", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"cbagpu {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    g = sub.add_parser(
        "generate",
        help="write one realization (window) of the model",
        description="Generate the window origin + [0, shape) of one realization "
        "and write it with its metadata.",
    )
    _add_params_args(g)
    g.add_argument("--shape", type=int, nargs=3, required=True, metavar=("Z", "Y", "X"))
    g.add_argument("--seed", type=int, required=True)
    g.add_argument(
        "--origin",
        type=int,
        nargs=3,
        default=(0, 0, 0),
        metavar=("Z", "Y", "X"),
        help="global voxel index of the window's first voxel (default 0 0 0)",
    )
    g.add_argument(
        "--out", required=True, help="output file: .tif/.tiff (ImageJ), .npy, .raw (+ .json), .zarr"
    )
    add_run_options(g)
    from cbagpu.studies.volume import add_generate_options

    add_generate_options(g)
    g.set_defaults(func=cmd_generate)

    t = sub.add_parser(
        "theory",
        help="print the closed-form values of the model",
        description="Closed forms of NOTES §4 (Eqs. 10-25) in nm units.",
    )
    _add_params_args(t)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_theory)

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
    add_run_options(d)
    d.add_argument("--plot", metavar="OUT.png", default=None,
                   help="plot CPSD/intrusion curves and the centred C(h)")
    d.set_defaults(func=cmd_describe)

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
    tr.set_defaults(func=cmd_transport)

    from cbagpu.fit import cli as fit_cli
    from cbagpu.prepare import cli as prepare_cli
    from cbagpu.studies import sweep_cli, validate_cli

    fit_cli.add_parser(sub)
    prepare_cli.add_parser(sub)
    validate_cli.add_parser(sub)
    sweep_cli.add_parser(sub)

    i = sub.add_parser("info", help="version and backend availability")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from cbagpu.backend import BackendUnavailableError
    from cbagpu.memory import InsufficientMemoryError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (
        UsageError,
        ValueError,
        TypeError,
        InsufficientMemoryError,
        BackendUnavailableError,
        FileExistsError,
        PermissionError,
        FileNotFoundError,
        IsADirectoryError,
        NotADirectoryError,
        ImportError,
    ) as exc:
        msg = str(exc).replace("\n", " ")
        print(f"cbagpu {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cbagpu {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
