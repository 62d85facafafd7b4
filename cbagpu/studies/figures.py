"""Deprecated: the figures of the studies moved to :mod:`cbagpu.plots` (kept for one
release)."""

from cbagpu._deprecation import moved

__getattr__ = moved(__name__, "cbagpu.plots", ("FIGURE_FILES", "plot_figure5", "plot_figure6",
                                               "plot_figure7", "plot_validation",
                                               "require_matplotlib"))
