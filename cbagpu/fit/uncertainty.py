"""Parametric-bootstrap uncertainty of fitted parameters (issue 18, item 5).

k realizations of the *fitted* model, of the image's shape and voxel size
(:func:`cbagpu.generate`, seeds ``seed``, ``seed + 1``, …), are refitted with the same
method; the standard error of a parameter is the sample standard deviation of its k refits
and the 95 % interval is value ± t_{0.975, k−1} · se (Student's t with k − 1 degrees of
freedom, because se comes from only k refits).  Cost: k generations plus k fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from cbagpu.backend import Backend, get_backend
from cbagpu.params import CBAParams

__all__ = ["ParameterUncertainty", "bootstrap"]

Refit = Callable[[Any], dict[str, float]]


@dataclass(frozen=True)
class ParameterUncertainty:
    """One parameter's bootstrap: fitted ``value``, standard error ``se`` (sd of the
    ``k`` refits), the 95 % interval [``low``, ``high``] (value ± t·se) and the refits'
    ``mean``."""

    name: str
    value: float
    se: float
    low: float
    high: float
    mean: float
    k: int

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "se": self.se, "ci95": [self.low, self.high],
                "bootstrap_mean": self.mean, "k": self.k}


def bootstrap(
    params: CBAParams,
    shape: tuple[int, int, int],
    voxel_size: float,
    refit: Refit,
    *,
    k: int,
    seed: int,
    backend: str | Backend = "auto",
    names: tuple[str, ...] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, ParameterUncertainty]:
    """Refit ``k`` (≥ 2) realizations of ``params`` with ``refit(labels) -> {name: value}``.

    Returns one :class:`ParameterUncertainty` per name (default: every key ``refit``
    returns), with ``value`` = ``getattr(params, name)``.
    """
    from cbagpu import generate

    if k < 2:
        raise ValueError(f"the bootstrap needs k >= 2 refits, got {k}")
    be = get_backend(backend)
    rows: list[dict[str, float]] = []
    for i in range(k):
        lab = generate(params, shape, voxel_size, int(seed) + i, backend=be)
        rows.append(refit(lab))
        del lab
        if progress is not None:
            progress("bootstrap", i + 1, k)
    keys = names if names is not None else tuple(rows[0])
    t = float(stats.t.ppf(0.975, k - 1))
    out = {}
    for n in keys:
        v = np.asarray([r[n] for r in rows], np.float64)
        se = float(np.std(v, ddof=1))
        val = float(getattr(params, n))
        out[n] = ParameterUncertainty(n, val, se, val - t * se, val + t * se,
                                      float(np.mean(v)), k)
        if not math.isfinite(se):
            raise ValueError(f"bootstrap of {n} gave a non-finite spread")
    return out
