"""Deprecated: the atomic writers moved to :mod:`cbagpu.io.atomic` (kept for one release)."""

from cbagpu._deprecation import moved

__getattr__ = moved(__name__, "cbagpu.io.atomic", ("write_text_atomic", "save_figure_atomic"))
