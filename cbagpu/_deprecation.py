"""Names that moved in the 0.2 layout keep working for one release: a module-level
``__getattr__`` that warns and returns the name from its new home."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterable
from typing import Any


def moved(old: str, new: str, names: Iterable[str]) -> Callable[[str], Any]:
    """A ``__getattr__`` for module ``old`` that resolves each of ``names`` from module
    ``new`` with a :class:`DeprecationWarning` naming both."""
    moved_names = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name in moved_names:
            warnings.warn(f"{old}.{name} moved to {new}.{name}", DeprecationWarning,
                          stacklevel=2)
            return getattr(importlib.import_module(new), name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    return __getattr__
