"""Atomic writes: every file cbagpu writes goes through a temporary next to its target
(``.NAME.<random>.cbagpu-tmp``), is flushed to disk and renamed into place, so a reader never
sees a half-written file, and whatever was not committed is removed when the write ends
(also on an exception).

One module for the package, the studies and the benchmark harness:

* :func:`write_text_atomic`, :func:`write_json_atomic` (strict JSON: NaN and infinities are
  refused), :func:`save_npy_atomic`, :func:`save_figure_atomic` -- one file each;
* :class:`Staging` and :func:`commit_file` / :func:`commit_pair` (data + sidecar, the
  sidecar never visible without its data) / :func:`commit_dir` -- the building blocks of
  :func:`cbagpu.io.write_image`.

New files get the mode a plain ``open`` would give them (``0o666 & ~umask``); the umask is
read from ``/proc/self/status`` where possible, which (unlike ``os.umask``) does not change
it for other threads.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import math
import os
import shutil
import signal
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TMP_SUFFIX",
    "Staging",
    "commit_dir",
    "commit_file",
    "commit_pair",
    "json_safe",
    "remove_stale_temporaries",
    "save_figure_atomic",
    "save_npy_atomic",
    "umask",
    "write_json_atomic",
    "write_text_atomic",
]

#: Suffix of every temporary file or folder of a write in progress.
TMP_SUFFIX = ".cbagpu-tmp"



def umask() -> int:
    """Return the process umask without changing it where possible."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry to disk (best effort; not supported everywhere)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_path(path: Path) -> None:
    """Remove a file or directory tree, ignoring errors."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def _pid_of(tmp_name: str) -> int | None:
    """The writer's process id recorded in a temporary's name (``.NAME.<pid>-<random>``)."""
    token = tmp_name.removesuffix(TMP_SUFFIX).rsplit(".", 1)[-1]
    pid, sep, _ = token.partition("-")
    return int(pid) if sep and pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def remove_stale_temporaries(dst: Path) -> list[Path]:
    """Remove the temporaries of ``dst`` left by writers that no longer run (a ``kill -9``
    during a write); temporaries of a running writer stay. Returns what was removed."""
    removed = []
    with contextlib.suppress(OSError):
        for tmp in dst.parent.glob(f".{glob.escape(dst.name)}.*{TMP_SUFFIX}"):
            pid = _pid_of(tmp.name)
            if pid is not None and pid != os.getpid() and not _alive(pid):
                remove_path(tmp)
                removed.append(tmp)
    return removed


class Staging:
    """Temporaries next to the destination; removes whatever is not committed on exit.

    Temporaries are named ``.NAME.<pid>-<random>.cbagpu-tmp``: the first temporary for a
    destination removes the stale ones of that destination (writers that were killed). In
    the main thread, SIGTERM is turned into :class:`SystemExit` while the staging is open,
    so that a terminated write removes its temporaries as an interrupted one (SIGINT) does.
    """

    def __init__(self) -> None:
        self._pending: list[Path] = []
        self._swept: set[Path] = set()
        self._old_handler: Any = None

    def __enter__(self) -> Staging:
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(ValueError, OSError):
                if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                    self._old_handler = signal.signal(signal.SIGTERM, _terminate)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            while self._pending:
                remove_path(self._pending.pop())
        finally:
            if self._old_handler is not None:
                with contextlib.suppress(ValueError, OSError):
                    signal.signal(signal.SIGTERM, self._old_handler)
                self._old_handler = None

    def _track(self, path: Path) -> Path:
        self._pending.append(path)
        return path

    def _prefix(self, dst: Path) -> str:
        if dst not in self._swept:
            remove_stale_temporaries(dst)
            self._swept.add(dst)
        return f".{dst.name}.{os.getpid()}-"

    def forget(self, path: Path) -> None:
        """Stop tracking ``path`` (it was renamed into place)."""
        with contextlib.suppress(ValueError):
            self._pending.remove(path)

    def name(self, dst: Path, tag: str = "") -> Path:
        """Return (and track) an unused temporary name next to ``dst``; nothing is created."""
        return self._track(
            dst.with_name(f"{self._prefix(dst)}{uuid.uuid4().hex[:12]}{tag}{TMP_SUFFIX}"))

    def file(self, dst: Path) -> Path:
        """Create (and track) an empty temporary file next to ``dst``."""
        fd, name = tempfile.mkstemp(prefix=self._prefix(dst), suffix=TMP_SUFFIX,
                                    dir=dst.parent)
        path = self._track(Path(name))
        os.close(fd)
        os.chmod(path, 0o666 & ~umask())
        return path

    def directory(self, dst: Path) -> Path:
        """Create (and track) an empty temporary directory next to ``dst``."""
        path = self._track(Path(tempfile.mkdtemp(prefix=self._prefix(dst), suffix=TMP_SUFFIX,
                                                 dir=dst.parent)))
        os.chmod(path, 0o777 & ~umask())
        return path


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM during a staged write: unwind (the staging removes its temporaries), then
    exit with the status a shell reports for SIGTERM."""
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def open_synced(path: Path) -> Iterator[Any]:
    """Open ``path`` for binary writing and fsync it before closing."""
    with open(path, "wb") as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def place(tmp: Path, dst: Path, overwrite: bool) -> None:
    """Atomically rename file ``tmp`` to ``dst`` (never replacing it unless ``overwrite``)."""
    if overwrite:
        os.replace(tmp, dst)
        return
    try:
        os.link(tmp, dst)  # fails atomically if dst exists
    except FileExistsError:
        raise FileExistsError(
            errno.EEXIST,
            f"{str(dst)!r} already exists (pass overwrite=True to replace it)",
            str(dst),
        ) from None
    except OSError:  # file system without hard links: check, then rename
        if os.path.lexists(dst):
            raise FileExistsError(
                errno.EEXIST,
                f"{str(dst)!r} already exists (pass overwrite=True to replace it)",
                str(dst),
            ) from None
        os.replace(tmp, dst)
    else:
        tmp.unlink()


def commit_file(st: Staging, tmp: Path, dst: Path, overwrite: bool) -> None:
    """Rename a staged file into place."""
    place(tmp, dst, overwrite)
    st.forget(tmp)
    fsync_dir(dst.parent)


def commit_pair(
    st: Staging,
    data_tmp: Path,
    data_dst: Path,
    side_tmp: Path,
    side_dst: Path,
    overwrite: bool,
) -> None:
    """Rename a staged data file, then its sidecar, into place: a sidecar is never visible
    without its data. With ``overwrite`` the target's old sidecar is moved aside first (and
    put back if the data cannot be placed), so new data never sit beside an old sidecar;
    without it neither target may exist."""
    backup: Path | None = None
    if not overwrite:
        for dst in (data_dst, side_dst):
            if os.path.lexists(dst):
                raise FileExistsError(
                    errno.EEXIST,
                    f"{str(dst)!r} already exists (pass overwrite=True to replace it)",
                    str(dst),
                )
    elif os.path.lexists(side_dst):
        backup = st.name(side_dst, ".old")
        os.replace(side_dst, backup)
    try:
        place(data_tmp, data_dst, overwrite)
    except BaseException:
        if backup is not None:
            os.replace(backup, side_dst)
            st.forget(backup)
        raise
    st.forget(data_tmp)
    place(side_tmp, side_dst, overwrite)
    st.forget(side_tmp)
    fsync_dir(data_dst.parent)


def commit_dir(st: Staging, tmp: Path, dst: Path, overwrite: bool) -> None:
    """Rename a staged directory into place, replacing an existing one if allowed."""
    if not os.path.lexists(dst):
        os.rename(tmp, dst)
        st.forget(tmp)
        fsync_dir(dst.parent)
        return
    if not overwrite:
        raise FileExistsError(
            errno.EEXIST,
            f"{str(dst)!r} already exists (pass overwrite=True to replace it)",
            str(dst),
        )
    old = st.name(dst, ".old")
    os.rename(dst, old)  # the old store is deleted when staging ends
    try:
        os.rename(tmp, dst)
    except BaseException:
        os.rename(old, dst)
        st.forget(old)
        raise
    st.forget(tmp)
    fsync_dir(dst.parent)



def _write_atomic(path: str | os.PathLike[str], write: Any, *, mkdir: bool = False) -> Path:
    """Create a staged temporary next to ``path``, call ``write(tmp_path)``, fsync it and
    rename it over ``path``."""
    target = Path(path)
    if mkdir:
        target.parent.mkdir(parents=True, exist_ok=True)
    with Staging() as st:
        tmp = st.file(target)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        commit_file(st, tmp, target, overwrite=True)
    return target


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return _write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def json_safe(obj: Any) -> Any:
    """``obj`` with plain JSON types only, as every JSON file and ``--json`` output of cbagpu
    holds it (RFC 8259): NaN and infinities become ``null`` (the reason, where it matters,
    is a field beside them, e.g. ``"percolates": false``), NumPy scalars and arrays become
    numbers and lists, tuples become lists, paths become strings."""
    if isinstance(obj, float | np.floating):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def write_json_atomic(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2,
                      mkdir: bool = False) -> Path:
    """Write ``data`` as strict JSON (:func:`json_safe`: undefined and infinite numbers as
    ``null``) plus a newline, atomically. The text is built before anything is written."""
    text = json.dumps(json_safe(data), indent=indent, allow_nan=False) + "\n"
    return _write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"),
                         mkdir=mkdir)


def save_npy_atomic(path: str | os.PathLike[str], array: Any, *, mkdir: bool = True) -> Path:
    """``numpy.save`` of ``array`` (C order) to ``path`` atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array))

    return _write_atomic(path, write, mkdir=mkdir)


def save_figure_atomic(fig: Any, path: str | os.PathLike[str], **savefig_kw: Any) -> Path:
    """``fig.savefig`` (PNG unless ``format`` says otherwise) to ``path`` atomically."""
    savefig_kw.setdefault("format", "png")
    return _write_atomic(path, lambda tmp: fig.savefig(tmp, **savefig_kw))
