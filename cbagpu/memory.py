"""Memory estimates and availability, so that requests too large are refused before they
allocate."""

from __future__ import annotations

import os


class InsufficientMemoryError(MemoryError):
    """A request would not fit in the memory available; raised before allocating."""


def host_available_memory() -> int:
    """Bytes of host memory available to new allocations (``MemAvailable`` on Linux)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def format_bytes(n: float) -> str:
    """Human-readable size (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def check_fits(required: int, available: int, what: str, where: str) -> None:
    """Raise :class:`InsufficientMemoryError` when ``required`` exceeds ``available``."""
    if required > available:
        raise InsufficientMemoryError(
            f"{what} needs about {format_bytes(required)} of {where} memory but only "
            f"{format_bytes(available)} is available; use a smaller shape or tile the volume "
            "with origin=... (windows of one realization match bit for bit)"
        )
