"""``cbagpu info``: the version and whether the GPU backend is usable."""

from __future__ import annotations

import argparse
from typing import Any

from cbagpu._version import __version__
from cbagpu.cli.common import print_json


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``info`` on an argparse subparsers object."""
    i = sub.add_parser("info", help="version and backend availability")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=run)
    return i


def run(args: argparse.Namespace) -> int:
    """``cbagpu info``: version and whether the GPU backend can run here."""
    from cbagpu.backend import gpu_available
    from cbagpu.backend.cupy_backend import cupy_unavailable_reason

    info = {"version": __version__, "gpu": gpu_available(), "gpu_reason": cupy_unavailable_reason()}
    if args.json:
        print_json(info)
    else:
        print(f"cbagpu {__version__}")
        state = "available" if info["gpu"] else f"unavailable ({info['gpu_reason']})"
        print(f"GPU backend: {state}")
    return 0
