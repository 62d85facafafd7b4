"""Binary phases of a label image (NOTES §1: 0 = pore, 1 = CBD, 2 = graphite)."""

from __future__ import annotations

from typing import Any

from cbagpu.errors import InvalidInputError

PHASES = ("solid", "pore", "graphite", "cbd")


def phase_mask(labels: Any, phase: str) -> Any:
    """Boolean mask of ``phase`` in a label image (NumPy or CuPy array).

    ``"solid"`` = labels 1 and 2 (the set Xi of Eq. 4), ``"pore"`` = label 0,
    ``"graphite"`` = label 2, ``"cbd"`` = label 1.
    """
    if phase == "solid":
        return labels > 0
    if phase == "pore":
        return labels == 0
    if phase == "graphite":
        return labels == 2
    if phase == "cbd":
        return labels == 1
    raise InvalidInputError(f"unknown phase {phase!r}; choose one of: {', '.join(PHASES)}")
