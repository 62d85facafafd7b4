"""This machine's resources: memory available, usable cores, and the check that refuses a
request too large before it allocates."""

from __future__ import annotations

import os

from cbagpu.errors import InsufficientMemoryError

__all__ = [
    "InsufficientMemoryError",
    "check_fits",
    "format_bytes",
    "host_available_memory",
    "usable_cores",
]


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


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
