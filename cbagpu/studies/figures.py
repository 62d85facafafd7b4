"""Deprecated: the figures of the studies moved to :mod:`cbagpu.plots` (kept for one
release)."""

from __future__ import annotations

import warnings
from typing import Any

_MOVED = ("FIGURE_FILES", "plot_figure5", "plot_figure6", "plot_figure7", "plot_validation",
          "require_matplotlib")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from cbagpu import plots

        warnings.warn(f"cbagpu.studies.figures.{name} moved to cbagpu.plots.{name}",
                      DeprecationWarning, stacklevel=2)
        return getattr(plots, name)
    raise AttributeError(f"module 'cbagpu.studies.figures' has no attribute {name!r}")
