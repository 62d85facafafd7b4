"""Sampling error of a mean over independent model realizations (issue 18).

The studies (:mod:`cbagpu.studies.validate`, :mod:`cbagpu.studies.sweep`) average a
descriptor over ``n`` realizations generated with different seeds, which are independent
draws of the model. The mean of ``n`` such values has the standard error
``SE = sd / sqrt(n)``, ``sd`` the sample standard deviation (``ddof=1``); both are undefined
(NaN) for ``n < 2``. Non-finite values (a descriptor undefined for a realization, e.g. the
tortuosity of a phase that does not percolate) are left out, so ``n`` counts the finite
values only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SampleStats", "sample_stats"]


@dataclass(frozen=True)
class SampleStats:
    """Statistics of the finite values along an axis (arrays, or floats for 1-D input).

    ``mean``, ``vmin``, ``vmax``: NaN where ``n == 0``; ``sd`` (``ddof=1``) and
    ``se = sd / sqrt(n)``: NaN where ``n < 2``; ``n``: the number of finite values.
    """

    mean: Any
    sd: Any
    se: Any
    vmin: Any
    vmax: Any
    n: Any


def sample_stats(values: Any, axis: int = 0) -> SampleStats:
    """Mean, sample standard deviation, standard error of the mean, min, max and count of
    the finite entries of ``values`` along ``axis``.

    Parameters
    ----------
    values : array_like of float (NaN or ±inf where a value is undefined).
    axis : the axis of the realizations.

    Returns
    -------
    SampleStats
        0-d results as Python floats / int for 1-D input, arrays otherwise.
    """
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    n = ok.sum(axis=axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.where(n > 0, np.where(ok, v, 0.0).sum(axis=axis) / np.maximum(n, 1), np.nan)
        dev = np.where(ok, v - np.expand_dims(mean, axis), 0.0)
        var = np.where(n > 1, (dev * dev).sum(axis=axis) / np.maximum(n - 1, 1), np.nan)
        sd = np.sqrt(var)
        se = np.where(n > 1, sd / np.sqrt(np.maximum(n, 1)), np.nan)
        vmin = np.where(n > 0, np.where(ok, v, np.inf).min(axis=axis), np.nan)
        vmax = np.where(n > 0, np.where(ok, v, -np.inf).max(axis=axis), np.nan)
    if np.ndim(n) == 0:
        return SampleStats(float(mean), float(sd), float(se), float(vmin), float(vmax), int(n))
    return SampleStats(mean, sd, se, vmin, vmax, n)
