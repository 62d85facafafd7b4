"""Conductivity maps, the percolating part of a phase and the face conductances.

Paper Section 3.4 and NOTES §7: the solid phase conducts with sigma_graphite = 1 and
sigma_CBD = 0.01 (the pore does not conduct); the pore phase conducts with sigma = 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cbagpu.errors import InvalidInputError
from cbagpu.transport.operator import Level

#: Conductivities of NOTES §7 per phase (label -> sigma, relative to sigma = 1).
PHASE_SIGMA: dict[str, dict[int, float]] = {
    "solid": {0: 0.0, 1: 0.01, 2: 1.0},
    "pore": {0: 1.0, 1: 0.0, 2: 0.0},
}


def parse_sigma(text: str) -> dict[int, float]:
    """Parse ``"0=0,1=0.01,2=1"`` into ``{0: 0.0, 1: 0.01, 2: 1.0}``."""
    out: dict[int, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        try:
            if not sep:
                raise ValueError
            label, sigma = int(key), float(val)
        except ValueError:
            raise InvalidInputError(
                f"bad conductivity {item!r}: expected LABEL=SIGMA, e.g. 0=0,1=0.01,2=1"
            ) from None
        if label in out:
            raise InvalidInputError(f"conductivity of label {label} given twice ({text!r})")
        out[label] = sigma
    if not out:
        raise InvalidInputError("no conductivities given: expected LABEL=SIGMA pairs, e.g. 2=1")
    return out


def check_sigma(sigma: Mapping[int, float]) -> dict[int, float]:
    """Validate a label -> conductivity map (labels 0..255, sigma finite and >= 0)."""
    out: dict[int, float] = {}
    for label, s in sigma.items():
        if not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 255:
            raise InvalidInputError(f"conductivity label {label!r} is not an integer in 0..255")
        s = float(s)
        if not np.isfinite(s) or s < 0:
            raise InvalidInputError(
                f"conductivity of label {label} must be finite and >= 0, got {s}"
            )
        out[int(label)] = s
    if not any(s > 0 for s in out.values()):
        raise InvalidInputError("every conductivity is 0: nothing conducts")
    return out


def conductivity_field(
    xp: Any, labels: Any, sigma: Mapping[int, float], dtype: Any, present: Any
) -> Any:
    """``sigma[labels]`` as a ``dtype`` array; every label ``present`` must have a value."""
    missing = [int(v) for v in present if int(v) not in sigma]
    if missing:
        raise InvalidInputError(
            f"labels {missing} occur in the image but have no conductivity; "
            f"given: {sorted(sigma)} (pass e.g. sigma={{{missing[0]}: 0.0}})"
        )
    table = np.zeros(256, dtype=dtype)
    for label, s in sigma.items():
        table[label] = s
    return xp.asarray(table)[labels]


def percolating(be: Any, conducting: Any) -> Any:
    """Voxels of ``conducting`` face-connected to both the first and the last layer
    along axis 0 (the only ones that carry the steady current)."""
    xp = be.xp
    lab, n = be.label(conducting, connectivity=1)
    if n == 0:
        return xp.zeros(conducting.shape, dtype=bool)
    first = xp.unique(lab[0])
    last = xp.unique(lab[-1])
    keep = xp.intersect1d(first[first > 0], last[last > 0])
    if keep.size == 0:
        return xp.zeros(conducting.shape, dtype=bool)
    table = xp.zeros(int(n) + 1, dtype=bool)
    table[keep] = True
    return table[lab]


def harmonic_mean(xp: Any, a: Any, b: Any) -> Any:
    """Face conductance ``2ab/(a+b)`` of two voxels in series (0 if either is 0)."""
    s = a + b
    return 2 * a * b / (s + (s == 0))


def fine_level(xp: Any, s: Any, boundary_offset: float) -> Level:
    """Face and boundary conductances of the finest level from the conductivity ``s``
    (flow along axis 0, voxel edge = 1).

    Interior faces get the harmonic mean of their two voxels (finite volumes).  The
    Dirichlet values sit ``boundary_offset`` voxels outside the centres of the first and
    last layers, so their conductance is ``s / boundary_offset`` (0.5: on the outer
    faces, TauFactor's ``Solver``; 1.0: on a copy of the end layer, TauFactor's
    ``MultiPhaseSolver``).
    """
    g = []
    for ax in range(3):
        gk = xp.zeros_like(s)
        lo = (slice(None),) * ax + (slice(None, -1),)
        hi = (slice(None),) * ax + (slice(1, None),)
        step = max(1, (1 << 22) // max(1, s[0].size))
        for a in range(0, s.shape[0], step):
            b = min(a + step, s.shape[0])
            sl, sh = s[a:b][lo], s[a:b][hi]
            if ax == 0:  # faces a .. b-1 pair layers i and i+1 across the slab edge
                sl = s[a : min(b, s.shape[0] - 1)]
                sh = s[a + 1 : min(b, s.shape[0] - 1) + 1]
                gk[a : a + sl.shape[0]] = harmonic_mean(xp, sl, sh)
            else:
                gk[a:b][lo] = harmonic_mean(xp, sl, sh)
        g.append(gk)
    return Level(xp, (g[0], g[1], g[2]), s[0] / boundary_offset, s[-1] / boundary_offset)

