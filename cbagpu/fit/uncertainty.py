"""Parametric-bootstrap uncertainty of fitted parameters (issue 18, item 5).

k realizations of the *fitted* model, of the image's shape and voxel size
(:func:`cbagpu.generate`, seeds ``seed``, ``seed + 1``, …), are refitted with the same
method; the standard error of a parameter is the sample standard deviation of its k refits.
The 95 % interval is value ± t_{0.975, k−1} · se (Student's t with k − 1 degrees of freedom,
because se comes from only k refits) for a parameter that may be ≤ 0 (μ), and
value · exp(± t · se_log), se_log the sd of the refits' logarithms, for a positive one
(λ_X, α1, α2, γ, η, θ, λ_Y: scale parameters, whose errors are closer to normal in log).
Cost: k generations plus k fits.
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

__all__ = ["POSITIVE", "ParameterUncertainty", "bootstrap"]

#: Parameters with log-scale intervals (positive scale parameters).
POSITIVE = frozenset({"lambda_x", "alpha1", "alpha2", "gamma", "eta", "theta", "lambda_y"})

Refit = Callable[[Any], dict[str, float]]


@dataclass(frozen=True)
class ParameterUncertainty:
    """One parameter's bootstrap: fitted ``value``, standard error ``se`` (sd of the
    ``k`` refits), the 95 % interval [``low``, ``high``] (module docstring), the refits'
    ``mean`` and the refitted ``values``."""

    name: str
    value: float
    se: float
    low: float
    high: float
    mean: float
    k: int
    values: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "se": self.se, "ci95": [self.low, self.high],
                "bootstrap_mean": self.mean, "k": self.k, "refits": list(self.values)}


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
        if n in POSITIVE and val > 0 and np.all(v > 0):
            f = math.exp(t * float(np.std(np.log(v), ddof=1)))
            low, high = val / f, val * f
        else:
            low, high = val - t * se, val + t * se
        out[n] = ParameterUncertainty(n, val, se, low, high, float(np.mean(v)), k,
                                      tuple(float(x) for x in v))
        if not math.isfinite(se):
            raise ValueError(f"bootstrap of {n} gave a non-finite spread")
    return out
