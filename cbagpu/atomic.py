"""Deprecated: the atomic writers moved to :mod:`cbagpu.io.atomic` (kept for one release)."""

from __future__ import annotations

import warnings
from typing import Any

_MOVED = ("write_text_atomic", "save_figure_atomic")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from cbagpu.io import atomic

        warnings.warn(f"cbagpu.atomic.{name} moved to cbagpu.io.atomic.{name}",
                      DeprecationWarning, stacklevel=2)
        return getattr(atomic, name)
    raise AttributeError(f"module 'cbagpu.atomic' has no attribute {name!r}")
