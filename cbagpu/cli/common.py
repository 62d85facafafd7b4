"""What every command of the ``cbagpu`` command line shares: the parser, the options with
one meaning everywhere, parameters from ``--params FILE`` or ``--preset NAME``, reading a
label image, strict JSON printing, progress (tqdm bars on a terminal, plain lines
otherwise) on stderr and the error exit.

Exit status: 0 done; 1 the work ran but did not succeed (tasks of a study failed, a
transport solve did not converge); 2 bad input, an unavailable backend, a request too
large for memory, a bad path or a missing optional extra (one line on stderr,
``cbagpu <command>: error: ...``); anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from cbagpu.errors import (
    BackendUnavailableError,
    CbagpuError,
    InsufficientMemoryError,
    InvalidInputError,
    TasksFailedError,
)

__all__ = [
    "Parser",
    "UsageError",
    "add_cluster_options",
    "add_params_args",
    "add_plot_option",
    "add_run_options",
    "check_png_path",
    "exit_status",
    "format_seconds",
    "load_params",
    "print_json",
    "Progress",
    "close_progress",
    "iteration_printer",
    "progress_printer",
    "read_image_arg",
    "read_labels",
    "say",
    "shape_arg",
    "stage_printer",
]

#: Errors that mean "the input was not acceptable" (exit status 2).
USAGE_ERRORS: tuple[type[BaseException], ...] = (
    InvalidInputError,
    ValueError,
    BackendUnavailableError,
    InsufficientMemoryError,
    FileExistsError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    ImportError,
)


class UsageError(InvalidInputError):
    """Bad input found by the command line itself (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


# ------------------------------------------------------------------------------ options
def add_run_options(p: argparse.ArgumentParser, json_help: str = "print one JSON object",
                    backend: bool = True, quiet: bool = True) -> None:
    """``--backend``, ``--json`` and ``--quiet``: the options every job command shares."""
    if backend:
        p.add_argument("--backend", choices=("auto", "numpy", "cupy"), default="auto",
                       help="array backend (default auto: the GPU where one is usable)")
    p.add_argument("--json", action="store_true", help=json_help)
    if quiet:
        p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def add_params_args(p: argparse.ArgumentParser, *, voxel_size: bool = True,
                    required: bool = False) -> None:
    """``--preset NAME`` or ``--params FILE`` (one of them; default the paper's preset
    unless ``required``) and, with ``voxel_size``, the required ``--voxel-size NM``."""
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--preset", default=None, metavar="NAME",
                   help="parameter preset: 'paper' (Table 2" + ("" if required else
                        ", default") + ") or 'table3-1'..'table3-7'")
    g.add_argument("--params", metavar="FILE.json", default=None,
                   help="parameter file with the keys lambda_x, alpha1, alpha2, gamma, mu, "
                   "eta, theta, lambda_y (Table 2 units, nm based), as 'cbagpu fit' writes it")
    if voxel_size:
        p.add_argument("--voxel-size", type=float, required=True, metavar="NM",
                       help="voxel edge length s in nm")


def add_plot_option(p: argparse.ArgumentParser, what: str) -> None:
    """``--plot PATH.png``: the one spelling of "draw the result" on every command."""
    p.add_argument("--plot", metavar="PATH.png", default=None, help=f"write {what} as a PNG")


def add_cluster_options(parser: Any, what: str = "the tasks", needs: str = "",
                        default: str = "one per usable core, or one per GPU with dask-cuda",
                        ) -> None:
    """``--scheduler ADDRESS`` and ``--workers N`` (see :func:`cbagpu.studies.tasks.run_tasks`);
    ``default`` says what no ``--workers`` does."""
    parser.add_argument(
        "--scheduler", default=None, metavar="ADDRESS",
        help=f"address of a running dask.distributed scheduler (tcp://host:8786) to send "
        f"{what} to (the output must be on a file system the workers share){needs}")
    parser.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help=f"local Dask worker processes (default: {default}); 1: plain in-process loop, "
        f"no Dask{needs}")


# ------------------------------------------------------------------------------- inputs
def load_params(args: argparse.Namespace) -> Any:
    """The :class:`~cbagpu.params.CBAParams` of ``--params FILE`` or ``--preset NAME``
    (default ``paper``). A preset name given to ``--params`` is accepted too (the spelling
    of ``cbagpu validate`` before 0.2)."""
    from cbagpu.params import PRESETS, CBAParams, preset

    path = getattr(args, "params", None)
    if path is not None:
        if not os.path.exists(path) and path in PRESETS:
            return PRESETS[path]
        try:
            return CBAParams.from_json(path)
        except FileNotFoundError:
            raise UsageError(f"parameter file not found: {path} (no such file and not a "
                             f"preset; presets: {', '.join(PRESETS)})") from None
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"bad parameter file {path}: {exc}") from None
    return preset(getattr(args, "preset", None) or "paper")


def read_image_arg(path: str, what: str = "image") -> tuple[Any, dict[str, Any]]:
    """:func:`cbagpu.io.read_image` of a command's input (a missing file names ``what``)."""
    from cbagpu.io import read_image

    try:
        return read_image(path)
    except FileNotFoundError:
        raise UsageError(f"{what} not found: {path}") from None


def read_labels(path: str) -> tuple[Any, dict[str, Any]]:
    """A 3-D label image with labels 0, 1, 2 and its metadata (errors name the file)."""
    from cbagpu.validation import check_labels

    labels, meta = read_image_arg(path)
    try:
        return check_labels(labels, what="labels"), meta
    except InvalidInputError as exc:
        raise UsageError(f"{path}: {exc}") from None


def voxel_size_of(args: argparse.Namespace, meta: dict[str, Any]) -> float:
    """``--voxel-size``, else the image's metadata, else a UsageError."""
    from cbagpu.validation import check_voxel_size

    stored = meta.get("voxel_size")
    v = args.voxel_size if args.voxel_size is not None else stored
    if v is not None:
        v = check_voxel_size(v, "--voxel-size" if args.voxel_size is not None
                             else f"the voxel size in the metadata of {args.image}")
    if v is None:
        raise UsageError(f"{args.image} has no voxel size in its metadata: pass --voxel-size")
    if args.voxel_size is not None and isinstance(stored, (int, float)) \
            and not math.isclose(float(stored), float(args.voxel_size), rel_tol=1e-9):
        say(getattr(args, "command", "cbagpu"),
            f"--voxel-size {args.voxel_size:g} nm differs from the {float(stored):g} nm in "
            f"the metadata of {args.image}; using {args.voxel_size:g} nm", kind="warning")
    return float(v)


def shape_arg(values: list[int], what: str = "--shape") -> tuple[int, int, int]:
    """N (a cube) or Z Y X."""
    if len(values) == 1:
        return (int(values[0]),) * 3  # type: ignore[return-value]
    if len(values) == 3:
        return tuple(int(v) for v in values)  # type: ignore[return-value]
    raise UsageError(f"{what} takes 1 or 3 integers, got {len(values)}")


def check_png_path(path: str | None, option: str = "--plot") -> None:
    """``path`` must end in .png and lie in a writable folder (checked before any work)."""
    if path is None:
        return
    from cbagpu.io import check_writable

    if not str(path).lower().endswith(".png"):
        raise UsageError(f"{option} must name a .png file, got {path}")
    check_writable(str(path)[:-4] + ".npy")  # the folder's checks (exists, writable)


# ------------------------------------------------------------------------------ outputs
def print_json(obj: Any, indent: int = 2) -> None:
    """Print ``obj`` as strict JSON (NaN and infinities become null, as in every JSON file
    cbagpu writes: :func:`cbagpu.io.atomic.json_safe`)."""
    from cbagpu.io.atomic import json_safe

    print(json.dumps(json_safe(obj), indent=indent, allow_nan=False))


def format_coefficient(fit: dict, name: str) -> str:
    """``name = value [lo, hi]`` of a fitted coefficient (``fit[name]`` with ``value`` and
    ``ci``), or ``(at the bound)`` when its interval is undefined."""
    c = fit[name]
    lo, hi = c["ci"]
    if lo is None:
        return f"{name} = {c['value']:.4g} (at the bound)"
    return f"{name} = {c['value']:.4g} [{lo:.4g}, {hi:.4g}]"


def say(command: str, message: str, *, kind: str = "") -> None:
    """One line on stderr: ``cbagpu <command>: [kind: ]message``."""
    print(f"cbagpu {command}: {kind + ': ' if kind else ''}{message}", file=sys.stderr)


def format_seconds(seconds: float) -> str:
    """'40 s', '3 min', '1.5 h'."""
    if seconds < 60:
        return f"{max(0.0, seconds):.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _is_tty(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def _tqdm() -> Any:
    """:class:`tqdm.tqdm`, or None where tqdm is not installed (plain lines then)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class Progress:
    """A progress callback rendered on ``stream`` (stderr): bars drawn by :mod:`tqdm` on a
    terminal, plain lines otherwise (CI, logs, or without tqdm).

    The library reports progress through callbacks and never prints; the commands build
    one of these with :func:`stage_printer`, :func:`progress_printer` or
    :func:`iteration_printer`, pass it as ``progress=`` and :meth:`close` it when the
    library call returns (a bar left open is closed when collected).
    """

    def __init__(self, kind: str, stream: Any = None, label: str = "tasks") -> None:
        self.kind = kind
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        tqdm = _tqdm() if _is_tty(self.stream) else None
        self._tqdm = tqdm
        self._bar: Any = None
        self._stage: str | None = None
        self._done = 0
        self._total: int | None = None
        self._start = time.perf_counter()

    # ---------------------------------------------------------------- bars (terminal)
    def _open(self, desc: str, total: int | None, **kw: Any) -> None:
        self.close()
        self._bar = self._tqdm(total=total, desc=desc, file=self.stream, leave=True,
                               dynamic_ncols=True, **kw)

    def _plain(self, msg: str) -> None:
        print(msg, file=self.stream, flush=True)

    def __call__(self, *args: Any) -> None:
        getattr(self, "_" + self.kind)(*args)

    def _stage_cb(self, stage: str, done: int, total: int) -> None:
        if self._tqdm is None:
            self._plain(f"[{time.perf_counter() - self._start:7.1f} s] {stage} {done}/{total}")
            return
        # one bar per stage; a new stage name continues the bar when it only renames a
        # step of the same count (describe: "solid: geodesic" 3/12 -> 4/12)
        same = stage == self._stage or (total == self._total and done > self._done)
        if self._bar is None or not same:
            self._open(stage, total, unit="step")
        bar = self._bar
        if bar.total != total:
            bar.total = total
        bar.set_description_str(stage, refresh=False)
        bar.update(done - bar.n)
        bar.refresh()  # stages are few: show each report
        self._stage, self._done, self._total = stage, done, total

    def _tasks(self, done: int, total: int, seconds_left: float | None) -> None:
        if done >= total:
            left = "done"
        elif seconds_left is None:
            left = "time left unknown"
        else:
            left = f"{format_seconds(seconds_left)} left"
        if self._tqdm is None:
            self._plain(f"{self.label} {done}/{total}, {left}")
            return
        if self._bar is None:
            self._open(self.label, total, unit=self.label.rstrip("s") or "task",
                       bar_format="{desc} {n_fmt}/{total_fmt} |{bar}| {elapsed}{postfix}")
        self._bar.set_postfix_str(left, refresh=False)
        self._bar.update(done - self._bar.n)
        self._bar.refresh()  # tasks are few: show each report
        if done >= total:
            self.close()

    def _iterations(self, it: int, spread: float) -> None:
        if self._tqdm is None:
            self._plain(f"[{time.perf_counter() - self._start:7.1f} s] iteration {it}: flux "
                        f"spread {spread:.2e}")
            return
        if self._bar is None:
            self._open("iterations", None, unit="it")
        self._bar.set_postfix_str(f"flux spread {spread:.2e}", refresh=False)
        self._bar.update(it - self._bar.n)

    def close(self) -> None:
        """End the current bar (a no-op for plain lines)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def stage_printer(enabled: bool, stream: Any = None) -> Progress | None:
    """A ``progress(stage, done, total)`` callback (generate, describe, fit): a bar per stage
    on a terminal, ``[  12.3 s] stage 3/10`` lines otherwise; None when disabled
    (``--quiet``)."""
    return Progress("stage_cb", stream) if enabled else None


def progress_printer(enabled: bool, stream: Any = None, label: str = "tasks"
                     ) -> Progress | None:
    """A ``progress(done, total, seconds_left)`` callback (the studies, block-wise
    generation): a bar with the estimate of time left on a terminal, '<label> 12/35,
    3 min left' lines otherwise; None when disabled."""
    return Progress("tasks", stream, label) if enabled else None


def iteration_printer(enabled: bool, stream: Any = None) -> Progress | None:
    """A ``progress(iteration, flux_spread)`` callback (transport): a counter with the flux
    spread on a terminal, a line per report otherwise; None when disabled."""
    return Progress("iterations", stream) if enabled else None


def close_progress(*bars: Progress | None) -> None:
    """Close the bars that exist (the commands call it once the library returned)."""
    for bar in bars:
        if bar is not None:
            bar.close()


# --------------------------------------------------------------------------- the exit
def exit_status(command: str, exc: BaseException) -> int | None:
    """The exit status for an exception a command raised (printing its one line), or None
    for an exception that is a bug (the caller re-raises it: a traceback)."""
    msg = str(exc).replace("\n", " ")
    if isinstance(exc, TasksFailedError):
        say(command, msg, kind="error")
        return 1
    if isinstance(exc, USAGE_ERRORS):
        say(command, msg, kind="error")
        return 2
    if isinstance(exc, CbagpuError):
        say(command, msg, kind="error")
        return 1
    return None


def file_list(out: str | None, names: list[str]) -> list[str]:
    """Paths of ``names`` inside the folder ``out`` (none without ``out``)."""
    return [] if out is None else [str(Path(out) / n) for n in names]
