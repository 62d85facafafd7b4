"""Command-line pieces shared by the study commands: the progress line (``tasks 12/35,
3 min left`` on stderr) and the ``--scheduler``/``--workers`` options."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

#: ``progress(done, total, seconds_left)`` as :func:`cbagpu.studies.tasks.run_tasks` calls it.
TaskProgress = Callable[[int, int, "float | None"], None]


def format_seconds(seconds: float) -> str:
    """'40 s', '3 min', '1.5 h'."""
    if seconds < 60:
        return f"{max(0.0, seconds):.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def progress_printer(enabled: bool, stream: Any = None, label: str = "tasks"
                     ) -> TaskProgress | None:
    """A ``progress(done, total, seconds_left)`` callback printing '<label> 12/35, 3 min
    left' to ``stream`` (default stderr; one updating line on a terminal), or None when
    disabled."""
    if not enabled:
        return None
    out = stream if stream is not None else sys.stderr
    tty = bool(getattr(out, "isatty", lambda: False)())

    def show(done: int, total: int, seconds_left: float | None) -> None:
        if done >= total:
            left = "done"
        elif seconds_left is None:
            left = "time left unknown"
        else:
            left = f"{format_seconds(seconds_left)} left"
        msg = f"{label} {done}/{total}, {left}"
        if tty:
            print("\r" + msg.ljust(44), end="\n" if done >= total else "", file=out, flush=True)
        else:
            print(msg, file=out, flush=True)

    return show


def add_cluster_options(parser: Any, what: str = "the tasks", needs: str = "") -> None:
    """``--scheduler ADDRESS`` and ``--workers N`` (see :func:`cbagpu.studies.tasks.run_tasks`)."""
    parser.add_argument(
        "--scheduler", default=None, metavar="ADDRESS",
        help=f"address of a running dask.distributed scheduler (tcp://host:8786) to send "
        f"{what} to (the output must be on a file system the workers share){needs}")
    parser.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="local Dask worker processes (default: one per usable core, or one per GPU "
        f"with dask-cuda); 1: plain in-process loop, no Dask{needs}")
