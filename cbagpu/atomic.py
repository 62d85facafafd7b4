"""Atomic file writes: a temporary file in the target's directory, flushed, then moved over
the target with :func:`os.replace`, so a reader never sees a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def _default_mode(fd: int) -> None:
    """Give a mkstemp file (0600) the mode a plain ``open`` would give (0666 & ~umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.fchmod(fd, 0o666 & ~mask)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        _default_mode(fd)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def save_figure_atomic(fig: Any, path: str | os.PathLike[str], **savefig_kw: Any) -> Path:
    """``fig.savefig`` (PNG unless ``format`` says otherwise) to ``path`` atomically."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".png", dir=target.parent)
    _default_mode(fd)
    os.close(fd)
    savefig_kw.setdefault("format", "png")
    try:
        fig.savefig(tmp, **savefig_kw)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target
