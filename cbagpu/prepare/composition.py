"""Composition check of a segmentation (paper Section 2.3.3).

From the recipe (weight fractions w_i), the densities rho_i of the constituents and the
porosity phi of a region without active material (AM), the expected volume fraction of
each additive i in that region is

    v_i = (1 - phi) * (w_i / rho_i) / sum_j (w_j / rho_j),      j over the additives,

i.e. the solid (1 - phi) is shared among the additives in proportion to their volumes per
unit mass of electrode. The AM (and its density) drops out: the region holds none of it,
and the additives keep their mutual mass ratios. This reproduces the paper's numbers:
87/5/4/4 wt % (AM/graphite/carbon black/binder), 4.77/2.3/1.9/1.8 g/cm^3 and phi = 66.86 %
give 11.08 % graphite, 10.73 % carbon black and 11.33 % binder (11.0812, 10.7313, 11.3275).

The comparison with a label image (NOTES §1) maps graphite to label 2 and every other
additive (carbon black, binder, ...) to label 1 (CBD); the paper compares 11.08 % with the
measured 10.55 % graphite and 10.73 + 11.33 = 22.06 % with the measured 22.59 % CBD.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cbagpu.errors import InvalidInputError
from cbagpu.validation import check_labels

__all__ = ["Composition", "CompositionCheck", "check_composition", "expected_volume_fractions"]

#: Names taken as the active material (excluded from the AM-free region).
ACTIVE_MATERIAL_NAMES = ("am", "active_material", "active-material")


@dataclass(frozen=True)
class Composition:
    """Expected volume fractions in the AM-free region.

    ``volume_fractions`` maps each additive to its fraction of the region's volume;
    ``graphite`` and ``cbd`` group them as the labels 2 and 1; ``solid = 1 - porosity``.
    """

    volume_fractions: dict[str, float]
    porosity: float
    solid: float
    graphite: float
    cbd: float
    weight_fractions: dict[str, float] = field(default_factory=dict)
    densities: dict[str, float] = field(default_factory=dict)
    active_material: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.volume_fractions,
            "porosity": self.porosity,
            "solid": self.solid,
            "cbd": self.cbd,
            "weight_fractions": dict(self.weight_fractions),
            "densities": dict(self.densities),
            "active_material": self.active_material,
        }


@dataclass(frozen=True)
class CompositionCheck:
    """Expected (:class:`Composition`) against measured label fractions ``{pore, cbd,
    graphite}``; ``difference`` = measured - expected for ``graphite``, ``cbd`` and
    ``pore``."""

    expected: Composition
    measured: dict[str, float]
    difference: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"expected": self.expected.to_dict(), "measured": dict(self.measured),
                "difference": dict(self.difference)}


def _positive_map(values: Mapping[str, float], what: str, *, allow_zero: bool) -> dict[str, float]:
    if not isinstance(values, Mapping) or not values:
        raise InvalidInputError(f"{what} must be a non-empty mapping name -> value")
    out: dict[str, float] = {}
    for k, v in values.items():
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{what}: value of {k!r} is not a number: {v!r}") from None
        ok = math.isfinite(x) and (x >= 0 if allow_zero else x > 0)
        if not ok:
            bound = ">= 0" if allow_zero else "> 0"
            raise InvalidInputError(f"{what}: value of {k!r} must be finite and {bound}, got {v!r}")
        out[str(k)] = x
    return out


def expected_volume_fractions(
    weight_fractions: Mapping[str, float],
    densities: Mapping[str, float],
    porosity: float,
    *,
    graphite: str = "graphite",
) -> Composition:
    """Expected additive volume fractions in the AM-free region (Section 2.3.3).

    Args:
        weight_fractions: constituent -> weight fraction (only the ratios among the
            additives matter). A key ``am`` (``active_material``) is the active material
            and is excluded; with it, the fractions are those of the whole electrode and
            must sum to 100 (percentages) or 1 (1 % tolerance). ``graphite`` must be named.
        densities: constituent -> density (any common unit); must name the same
            constituents (the AM's density may be omitted).
        porosity: pore volume fraction phi of the AM-free region, in [0, 1).
        graphite: the name of the constituent that label 2 stands for.
    """
    w = _positive_map(weight_fractions, "weight fractions", allow_zero=True)
    rho = _positive_map(densities, "densities", allow_zero=False)
    phi = float(porosity)
    if not (math.isfinite(phi) and 0.0 <= phi < 1.0):
        raise InvalidInputError(f"porosity must be a fraction in [0, 1) (e.g. 0.6686 for 66.86 %), "
                         f"got {porosity!r}")
    am = [k for k in w if k.lower() in ACTIVE_MATERIAL_NAMES]
    total_w = sum(w.values())
    if am and not any(math.isclose(total_w, whole, rel_tol=0.01) for whole in (1.0, 100.0)):
        raise InvalidInputError(
            f"the weight fractions of the whole electrode sum to {total_w:g}: give "
            "percentages (summing to 100) or fractions (summing to 1)"
        )
    if graphite not in w:
        raise InvalidInputError(
            f"the weight fractions name no constituent {graphite!r} (label 2); got "
            f"{', '.join(w)}"
        )
    additives = [k for k in w if k not in am]
    if not additives:
        raise InvalidInputError("weight fractions name no additive (only the active material)")
    missing = [k for k in additives if k not in rho]
    if missing:
        raise InvalidInputError(f"no density given for {', '.join(missing)}")
    extra = [k for k in rho if k not in w]
    if extra:
        raise InvalidInputError(f"density given for {', '.join(extra)} but no weight fraction")
    vol = {k: w[k] / rho[k] for k in additives}
    total = sum(vol.values())
    if total <= 0:
        raise InvalidInputError("all additive weight fractions are zero")
    solid = 1.0 - phi
    vf = {k: solid * v / total for k, v in vol.items()}
    g = vf.get(graphite, 0.0)
    return Composition(
        volume_fractions=vf,
        porosity=phi,
        solid=solid,
        graphite=g,
        cbd=sum(v for k, v in vf.items() if k != graphite),
        weight_fractions=w,
        densities=rho,
        active_material=am[0] if am else None,
    )


def label_fractions(labels: Any) -> dict[str, float]:
    """Volume fractions of the labels 0 (pore), 1 (cbd), 2 (graphite) of a label image."""
    a = check_labels(labels, np)
    counts = np.bincount(a.ravel(), minlength=3)
    n = a.size
    return {"pore": counts[0] / n, "cbd": counts[1] / n, "graphite": counts[2] / n}


def check_composition(
    labels: Any,
    weight_fractions: Mapping[str, float],
    densities: Mapping[str, float],
    porosity: float | None = None,
    *,
    graphite: str = "graphite",
) -> CompositionCheck:
    """Compare a label image (host array, AM-free) with the expected composition; the
    porosity is measured from the image (label 0) unless given, as in the paper."""
    a = check_labels(labels, np)
    measured = {k: float(v) for k, v in label_fractions(a).items()}
    phi = measured["pore"] if porosity is None else float(porosity)
    exp = expected_volume_fractions(weight_fractions, densities, phi, graphite=graphite)
    diff = {"graphite": measured["graphite"] - exp.graphite, "cbd": measured["cbd"] - exp.cbd,
            "pore": measured["pore"] - exp.porosity}
    return CompositionCheck(expected=exp, measured=measured, difference=diff)
