"""Parallel and serial Numba compilations of one CPU kernel body (imported only by the
Numba kernel modules: numba is loaded on first use of a kernel)."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from numba import njit


def parallel_and_serial(body: Callable[..., Any]) -> tuple[Any, Any]:
    """(parallel, serial) compilations of ``body`` (``prange`` is ``range`` in the serial
    one).  Small grids run serially: a parallel region costs a thread barrier, milliseconds
    when the cores are shared.  The serial copy gets its own name so that the two do not
    share (and overwrite) one entry of Numba's on-disk cache."""
    serial = types.FunctionType(body.__code__, body.__globals__, body.__name__ + "_serial")
    serial.__qualname__ = body.__qualname__ + "_serial"
    return njit(parallel=True, cache=True)(body), njit(cache=True)(serial)
