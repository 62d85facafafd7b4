"""``cbagpu generate``: write one window of a realization of the model (Eq. 4), or a
volume of any size block by block into a Zarr store (``--chunks``, on Dask, resumable)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cbagpu.cli.common import (
    UsageError,
    add_cluster_options,
    add_params_args,
    add_run_options,
    check_png_path,
    close_progress,
    load_params,
    print_json,
    progress_printer,
    stage_printer,
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``generate`` on an argparse subparsers object."""
    g = sub.add_parser(
        "generate",
        help="write one realization (window) of the model",
        description="Generate the window origin + [0, shape) of one realization "
        "and write it with its metadata.",
    )
    add_params_args(g)
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
        "--out", required=True,
        help="output file: .tif/.tiff (ImageJ), .npy, .raw (+ .json), .zarr, .ome.zarr "
        "(OME-Zarr with a multiscale pyramid, for napari and other viewers)"
    )
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing Zarr store (a folder) at --out; files are "
                   "replaced without it")
    g.add_argument("--preview", metavar="PATH.png", default=None,
                   help="also write a picture of the result (as `cbagpu show`: centre "
                   "slices and a 3D view of a central sub-cube)")
    add_run_options(g)
    c = g.add_argument_group("block-wise generation (Zarr, on Dask)")
    c.add_argument(
        "--chunks", type=int, nargs="+", default=None, metavar="N",
        help="generate block by block into a .zarr (or .ome.zarr: pyramid built chunk by "
        "chunk at the end) store with chunks of N voxels (or Z Y X); an interrupted run "
        "resumes when run again with the same command",
    )
    add_cluster_options(c, "the field blocks", "; needs --chunks",
                        default="in process on the CPU, since one field block uses every "
                        "core; one per GPU with dask-cuda")
    g.set_defaults(func=run)
    return g



def run(args: argparse.Namespace) -> int:
    """``cbagpu generate``: one window of a realization (or a block-wise .zarr store)."""
    from cbagpu.io import check_writable, write_image
    from cbagpu.simulate.realization import check_voxel_model, realize
    from cbagpu.theory import model_theory


    check_png_path(args.preview, "--preview")
    if args.preview:
        from cbagpu.plots import require_matplotlib

        require_matplotlib()
    if args.chunks is not None:  # block-wise generation to .zarr on Dask
        return _run_chunked(args)
    if args.scheduler is not None or args.workers is not None:
        raise UsageError("--scheduler and --workers need --chunks (block-wise generation "
                         "to .zarr)")
    params = load_params(args)
    check_voxel_model(params, args.voxel_size)  # degenerate voxel sizes: before any work
    if Path(args.out).is_dir() and not args.overwrite:
        raise UsageError(f"{args.out} is an existing store (a folder): pass --overwrite to "
                         "replace it")
    check_writable(args.out, overwrite=True)
    th = model_theory(params, args.voxel_size)
    bar = stage_printer(not args.quiet)
    try:
        r = realize(params, tuple(args.shape), args.voxel_size, args.seed,
                    origin=tuple(args.origin), backend=args.backend, progress=bar)
    finally:
        close_progress(bar)
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
    preview = _preview(args, lab, r.metadata(), fractions)
    if args.json:
        print_json(
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
                "preview": preview,
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
    if preview:
        print(f"  preview {preview}")
    return 0


def _preview(args: argparse.Namespace, labels: Any, meta: dict[str, Any],
             fractions: dict[str, float]) -> str | None:
    """``--preview PATH.png``: the picture of ``cbagpu show`` (None without the option)."""
    if not args.preview:
        return None
    from cbagpu.viz import show

    return show(labels, args.preview, voxel_size=args.voxel_size, metadata=meta,
                fractions={k: float(v) for k, v in fractions.items()}).path


def _run_chunked(args: argparse.Namespace) -> int:
    """``cbagpu generate ... --out big.zarr --chunks 512 [--scheduler A | --workers N]``."""
    from cbagpu.simulate.realization import check_voxel_model
    from cbagpu.studies.volume import generate_zarr
    from cbagpu.theory import model_theory

    if not str(args.out).lower().endswith(".zarr"):
        raise UsageError(
            f"--chunks writes a .zarr store: --out must end in .zarr, got {args.out}"
        )
    if len(args.chunks) not in (1, 3):
        raise UsageError(
            f"--chunks takes 1 or 3 values (N or Z Y X), got {len(args.chunks)}"
        )
    chunks = args.chunks[0] if len(args.chunks) == 1 else tuple(args.chunks)
    params = load_params(args)
    check_voxel_model(params, args.voxel_size)
    th = model_theory(params, args.voxel_size)
    bar = progress_printer(not args.quiet, label="tasks")
    levels = stage_printer(not args.quiet)
    try:
        r = generate_zarr(
            params, tuple(args.shape), args.voxel_size, args.seed, args.out,
            chunks=chunks, origin=tuple(args.origin), backend=args.backend,
            scheduler=args.scheduler, workers=args.workers, progress=bar,
            pyramid_progress=levels,
        )
    finally:
        close_progress(bar, levels)
    theory = {"pore": th.pore, "cbd": th.cbd, "graphite": th.graphite}
    preview = None
    if args.preview:
        from cbagpu.viz import open_labels

        image, meta, _ = open_labels(r.path)
        preview = _preview(args, image, meta, r.fractions)
    if args.json:
        print_json({
            "preview": preview,
            "out": r.path, "shape": list(r.shape), "chunks": list(r.chunks),
            "origin": list(r.origin), "voxel_size": float(args.voxel_size), "seed": args.seed,
            "params": params.to_dict(), "fractions": r.fractions, "theory": theory,
            "solid_fraction": {"measured": 1 - r.fractions["pore"], "theory": th.V},
            "tasks": {"total": r.tasks_total, "computed": r.tasks_computed,
                      "reused": r.tasks_reused, "field_blocks": r.field_blocks},
            "seconds": r.seconds, "backend": r.backend,
        })
        return 0
    z, y, x = r.shape
    print(f"wrote {r.path}  ({z}x{y}x{x} voxels at {args.voxel_size:g} nm in chunks of "
          f"{'x'.join(map(str, r.chunks))}, seed {args.seed}, origin {r.origin}, "
          f"backend {r.backend})")
    print(f"  tasks: {r.tasks_total} ({r.field_blocks} field blocks, "
          f"{r.tasks_total - r.field_blocks} chunks across their borders; "
          f"{r.tasks_computed} run now, {r.tasks_reused} kept from an earlier run)")
    print(f"  {'phase':9s} {'measured':>9s} {'theory':>9s}")
    for k in ("pore", "cbd", "graphite"):
        print(f"  {k:9s} {r.fractions[k]:9.4f} {theory[k]:9.4f}")
    print(f"  {'solid':9s} {1 - r.fractions['pore']:9.4f} {th.V:9.4f}")
    print(f"  time {r.seconds:.2f} s")
    if preview:
        print(f"  preview {preview}")
    return 0
