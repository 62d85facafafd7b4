"""Locate and read the CUDA C sources in ``kernels/`` (installed as ``cbagpu.kernels``)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

#: NVRTC options used for every kernel. ``--fmad=false`` forbids fused multiply-add
#: contraction so that float64 arithmetic on the GPU rounds exactly like NumPy's, which
#: makes the rasterised grains bit-identical on both backends.
NVRTC_OPTIONS: tuple[str, ...] = ("--std=c++14", "--fmad=false")


def launch_blocks(items: int, threads: int, cap: int = 1 << 20) -> int:
    """Blocks of ``threads`` for ``items`` work items (at least 1, at most ``cap``): every
    kernel loops grid-stride, so a capped grid still covers all items."""
    return int(min(max(1, -(-int(items) // threads)), cap))


def kernel_dir() -> Path:
    """Folder holding the ``*.cu`` files (the installed package data, else the source tree)."""
    try:
        path = Path(str(resources.files("cbagpu.kernels")))
        if any(path.glob("*.cu")):
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[2] / "kernels"


def kernel_files() -> list[Path]:
    """All CUDA sources shipped with the package."""
    return sorted(kernel_dir().glob("*.cu"))


#: ``#include "name.h"`` of a header beside the kernels (inlined by :func:`kernel_source`).
_LOCAL_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([A-Za-z0-9_]+\.h)"[ \t]*$', re.M)


@cache
def kernel_source(filename: str) -> str:
    """Source text of ``kernels/<filename>``, with the ``#include "x.h"`` of headers beside it
    inlined (NVRTC and the host build compile the text, not the file: nvcc, given the path,
    finds them itself)."""
    path = kernel_dir() / filename
    if not path.is_file():
        raise FileNotFoundError(f"CUDA kernel source {filename!r} not found in {kernel_dir()}")

    def inline(match: re.Match[str]) -> str:
        header = kernel_dir() / match.group(1)
        if not header.is_file():
            raise FileNotFoundError(f"{filename} includes {match.group(1)!r}, which is not in "
                                    f"{kernel_dir()}")
        return header.read_text()

    return _LOCAL_INCLUDE.sub(inline, path.read_text())
