"""A backend that counts what the GPU route would cost: launches, device-to-host reads,
synchronisations and device memory, per named stage -- on a machine without a GPU.

:class:`AccountingBackend` wraps another backend (normally
:class:`~cbagpu.backend.host_kernels.HostKernelBackend`, whose kernel launches run the CUDA
sources compiled for the host) and presents itself as a *device* backend
(``on_host = False``), so algorithm code takes the route it takes on a GPU. Its arrays are
:class:`DeviceArray`, a NumPy subclass that counts, like CuPy arrays would cost:

* **launches**: every registered kernel launch (by name), every array-module operation
  (a ufunc call or reduction, a NumPy function, a fancy index or an assignment, ``astype``
  and ``copy``, an FFT or ``ndimage`` call, a labelling or a distance transform), each as
  at least one launch; views (slicing, reshape without copy, ``moveaxis``) and
  ``empty``-like allocations are free;
* **reads** (device to host) and their bytes: every :meth:`~AccountingBackend.to_host`,
  every ``.get()``, and every scalar pulled out of a device array with ``float()``,
  ``int()``, ``bool()``, ``.item()`` or ``.tolist()`` -- each is a host round trip on a GPU;
* **writes** (host to device) and their bytes: host arrays handed to ``xp.asarray`` and
  friends or assigned into device arrays;
* **synchronisations** (:meth:`~AccountingBackend.synchronize`);
* **device bytes**: the peak of live device array bytes during the stage, and that peak
  above what was live when the stage began (arrays are tracked from allocation to garbage
  collection, so views keep their base alive exactly as on the device).

The counts are deterministic (they do not depend on the machine's speed), so tests can hold
them: ``python -m benchmarks budget`` reports them per stage and per inner unit against the
written budgets. What the account cannot see: host NumPy code applied to a device array
without going through the backend (``np.asarray`` of a device array: CuPy refuses it, the
subclass converts silently) and the launches inside a library call (one cuFFT or cuCIM
call counts as one launch).
"""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from cbagpu.backend.base import Backend

__all__ = ["Account", "AccountingBackend", "DeviceArray", "StageCounts"]


@dataclass
class StageCounts:
    """What one stage cost (see the module docstring for what each count means)."""

    launches: int = 0
    kernels: Counter = field(default_factory=Counter)
    operations: Counter = field(default_factory=Counter)
    reads: int = 0
    read_bytes: int = 0
    writes: int = 0
    write_bytes: int = 0
    syncs: int = 0
    start_bytes: int = 0
    peak_bytes: int = 0

    @property
    def kernel_launches(self) -> int:
        """Launches of registered kernels (``kernels/*.cu``)."""
        return int(sum(self.kernels.values()))

    @property
    def peak_new_bytes(self) -> int:
        """Peak of live device bytes above those live when the stage began."""
        return max(0, self.peak_bytes - self.start_bytes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        return {
            "launches": self.launches,
            "kernel_launches": self.kernel_launches,
            "reads": self.reads,
            "read_bytes": self.read_bytes,
            "writes": self.writes,
            "write_bytes": self.write_bytes,
            "syncs": self.syncs,
            "peak_bytes": self.peak_bytes,
            "peak_new_bytes": self.peak_new_bytes,
            "kernels": dict(sorted(self.kernels.items())),
        }


class Account:
    """Counters per named stage and the live device bytes."""

    def __init__(self) -> None:
        self.stages: dict[str, StageCounts] = {}
        self.live = 0
        self._current = self._open("(outside stages)")

    def _open(self, name: str) -> StageCounts:
        counts = self.stages.setdefault(name, StageCounts())
        counts.start_bytes = self.live
        counts.peak_bytes = max(counts.peak_bytes, self.live)
        return counts

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[StageCounts]:
        """Count everything inside the ``with`` block under ``name`` (a fresh record)."""
        gc.collect()  # arrays of earlier stages that only a cycle kept alive
        previous = self._current
        self.stages.pop(name, None)
        self._current = self._open(name)
        try:
            yield self._current
        finally:
            gc.collect()
            self._current = previous

    def launch(self, what: str, kernel: bool = False, n: int = 1) -> None:
        c = self._current
        c.launches += n
        (c.kernels if kernel else c.operations)[what] += n

    def read(self, nbytes: int) -> None:
        self._current.reads += 1
        self._current.read_bytes += int(nbytes)

    def write(self, nbytes: int) -> None:
        self._current.writes += 1
        self._current.write_bytes += int(nbytes)

    def sync(self) -> None:
        self._current.syncs += 1

    def alloc(self, nbytes: int) -> None:
        self.live += int(nbytes)
        if self.live > self._current.peak_bytes:
            self._current.peak_bytes = self.live

    def free(self, nbytes: int) -> None:
        self.live -= int(nbytes)


#: The account that DeviceArray operations report to (the last AccountingBackend made).
_ACTIVE: list[Account] = [Account()]


def _acct() -> Account:
    return _ACTIVE[-1]


def _track(a: np.ndarray) -> None:
    """Count ``a``'s buffer as live device memory until ``a`` is collected."""
    if a.ndim == 0 or a.nbytes == 0:
        return
    acct = _acct()
    acct.alloc(a.nbytes)
    weakref.finalize(a, acct.free, a.nbytes)


def _unwrap(x: Any) -> Any:
    if isinstance(x, DeviceArray):
        return x.view(np.ndarray)
    if isinstance(x, tuple):
        return tuple(_unwrap(v) for v in x)
    if isinstance(x, list):
        return [_unwrap(v) for v in x]
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _has_device(x: Any) -> bool:
    if isinstance(x, DeviceArray):
        return True
    if isinstance(x, tuple | list):
        return any(_has_device(v) for v in x)
    if isinstance(x, dict):
        return any(_has_device(v) for v in x.values())
    return False


def _wrap(x: Any) -> Any:
    if isinstance(x, DeviceArray):
        return x
    if isinstance(x, np.ndarray):
        if x.base is None:
            _track(x)
        return x.view(DeviceArray)
    if isinstance(x, np.generic):
        return np.asarray(x).view(DeviceArray)
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


def _host_bytes(x: Any) -> int:
    """Bytes of host arrays inside ``x`` (what a call would copy to the device)."""
    if isinstance(x, DeviceArray):
        return 0
    if isinstance(x, np.ndarray):
        return int(x.nbytes)
    if isinstance(x, tuple | list):
        return sum(_host_bytes(v) for v in x)
    return 0


def _shares(res: Any, args: Any) -> bool:
    """Whether the array ``res`` views the memory of an array in ``args``."""
    if not isinstance(res, np.ndarray):
        return False
    base = res
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    stack = [args]
    while stack:
        x = stack.pop()
        if isinstance(x, np.ndarray):
            b = x
            while isinstance(b, np.ndarray) and b.base is not None:
                b = b.base
            if b is base:
                return True
        elif isinstance(x, tuple | list):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    return False


#: Functions that launch nothing (metadata, views, uninitialised allocations).
_FREE = frozenset({
    "empty", "empty_like", "shape", "ndim", "size", "result_type", "can_cast", "moveaxis",
    "swapaxes", "transpose", "expand_dims", "squeeze", "broadcast_to", "broadcast_arrays",
    "atleast_1d", "atleast_2d", "atleast_3d", "may_share_memory", "shares_memory",
    "iscomplexobj", "isrealobj", "ndarray", "dtype", "finfo", "iinfo", "promote_types",
    "broadcast_shapes", "isscalar", "ravel_multi_index", "unravel_index",
})
#: Functions that copy a host argument to the device (a write) or pass a device array.
_TRANSFER = frozenset({"asarray", "array", "asanyarray", "ascontiguousarray", "asfortranarray"})
#: Functions that return a view when they can (a launch only when they copy).
_MAYBE_VIEW = frozenset({"reshape", "ravel", "diagonal", "real", "imag", "flip"})


def _count_call(name: str, args: Any, kwargs: Any, res: Any, device_in: bool) -> None:
    acct = _acct()
    if name in _FREE:
        return
    if name in _TRANSFER:
        if not device_in:
            nbytes = _host_bytes(args) + _host_bytes(kwargs)
            if nbytes:
                acct.write(nbytes)
            return
        if not _shares(res, (args, kwargs)):
            acct.launch(name)
        return
    if name in _MAYBE_VIEW and _shares(res, (args, kwargs)):
        return
    if not device_in and _host_bytes(args):
        acct.write(_host_bytes(args))
    acct.launch(name)


class DeviceArray(np.ndarray):
    """A NumPy array standing for a device array: operations on it are counted (module
    docstring). It behaves like the NumPy array it is, except that reductions return
    0-d arrays (as CuPy's do) and indexing a single element returns a 0-d array."""

    def __array_finalize__(self, obj: Any) -> None:
        if obj is not None and self.base is None:  # a new buffer made by an ndarray method
            _track(self)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        args = _unwrap(inputs)
        nbytes = _host_bytes(inputs)
        if nbytes:
            _acct().write(nbytes)
        res = getattr(ufunc, method)(*args, **_unwrap(kwargs))
        _acct().launch(f"{ufunc.__name__}.{method}" if method != "__call__" else ufunc.__name__)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(res)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        res = func(*_unwrap(args), **_unwrap(kwargs))
        _count_call(func.__name__, args, kwargs, res, True)
        if res is None:
            return None
        if "out" in kwargs and kwargs["out"] is not None:
            return kwargs["out"]
        return _wrap(res)

    # -- indexing --------------------------------------------------------------------------
    @staticmethod
    def _advanced(key: Any) -> bool:
        keys = key if isinstance(key, tuple) else (key,)
        return any(isinstance(k, np.ndarray | list) for k in keys)

    def __getitem__(self, key: Any) -> Any:
        res = np.ndarray.__getitem__(self, _unwrap(key))
        if self._advanced(key):
            _acct().launch("getitem")
            return _wrap(res)
        if isinstance(res, np.generic):
            return np.asarray(res).view(DeviceArray)
        return res

    def __setitem__(self, key: Any, value: Any) -> None:
        nbytes = _host_bytes(value)
        if nbytes:
            _acct().write(nbytes)
        _acct().launch("setitem")
        np.ndarray.__setitem__(self, _unwrap(key), _unwrap(value))

    # -- device-to-host reads ----------------------------------------------------------------
    def _read(self) -> np.ndarray:
        _acct().read(self.nbytes)
        return self.view(np.ndarray)

    def __float__(self) -> float:
        return float(self._read())

    def __int__(self) -> int:
        return int(self._read())

    def __index__(self) -> int:
        return self._read().__index__()

    def __bool__(self) -> bool:
        return bool(self._read())

    def item(self, *args: Any) -> Any:  # noqa: D102
        return self._read().item(*args)

    def tolist(self) -> Any:  # noqa: D102
        return self._read().tolist()

    def get(self) -> np.ndarray:
        """A host copy (CuPy's ``get``): one read of the whole array."""
        return np.array(self._read())

    # -- methods that launch ------------------------------------------------------------------
    def astype(self, dtype: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        res = np.ndarray.astype(self, dtype, *args, **kwargs)
        if res is not self:
            _acct().launch("astype")
        return res

    def copy(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        _acct().launch("copy")
        return np.ndarray.copy(self, *args, **kwargs)

    def fill(self, value: Any) -> None:  # noqa: D102
        _acct().launch("fill")
        np.ndarray.fill(self, value)

    def _method(self, name: str, *args: Any, **kwargs: Any) -> Any:
        res = getattr(self.view(np.ndarray), name)(*_unwrap(args), **_unwrap(kwargs))
        if not (name in _MAYBE_VIEW and _shares(res, self)):
            _acct().launch(name)
        return _wrap(res)

    def reshape(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return self._method("reshape", *args, **kwargs)

    def ravel(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return self._method("ravel", *args, **kwargs)

    def flatten(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return self._method("flatten", *args, **kwargs)

    def repeat(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return self._method("repeat", *args, **kwargs)

    def nonzero(self) -> Any:  # noqa: D102
        return self._method("nonzero")

    def argsort(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return self._method("argsort", *args, **kwargs)

    def take(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return self._method("take", *args, **kwargs)

    def dot(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return self._method("dot", *args, **kwargs)


class _CountingModule:
    """A module whose functions take and return :class:`DeviceArray` and are counted."""

    def __init__(self, module: ModuleType, name: str | None = None) -> None:
        self._module = module
        self._name = name or module.__name__

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._module, attr)
        if isinstance(value, ModuleType):
            return _CountingModule(value)
        if isinstance(value, type | np.ufunc) or not callable(value):
            return value  # dtypes, constants; ufuncs dispatch through __array_ufunc__

        def call(*args: Any, **kwargs: Any) -> Any:
            device_in = _has_device(args) or _has_device(kwargs)
            res = value(*_unwrap(args), **_unwrap(kwargs))
            _count_call(attr, args, kwargs, res, device_in)
            out = kwargs.get("output", kwargs.get("out"))
            if res is None and out is not None:
                return out
            return _wrap(res)

        call.__name__ = attr
        return call

    def __repr__(self) -> str:
        return f"<counting module {self._name}>"


class AccountingBackend(Backend):
    """Counts the GPU route's costs per stage while ``inner`` does the work (module
    docstring). Use :meth:`stage` to name what runs::

        be = AccountingBackend(HostKernelBackend())
        with be.stage("transport"):
            transport(labels, backend=be)
        be.account.stages["transport"].reads
    """

    on_host = False
    memory_name = "device"

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.runs_kernels = inner.runs_kernels
        self.workers = inner.workers
        self.account = Account()
        _ACTIVE.append(self.account)
        self.xp = _CountingModule(np)
        self._fft = _CountingModule(inner.fft)
        self._ndimage = _CountingModule(inner.ndimage)

    def stage(self, name: str) -> contextlib.AbstractContextManager[StageCounts]:
        """Context manager: count what runs inside under ``name``."""
        return self.account.stage(name)

    def close(self) -> None:
        """Stop being the account that device arrays report to."""
        if self.account in _ACTIVE and len(_ACTIVE) > 1:
            _ACTIVE.remove(self.account)

    # -- arrays -----------------------------------------------------------------------------
    def to_host(self, a: Any) -> np.ndarray:
        if isinstance(a, DeviceArray):
            return np.array(a._read())
        return np.asarray(a)

    def synchronize(self) -> None:
        self.account.sync()

    def dot64(self, a: Any, b: Any) -> float:
        """Like CuPy's: a row-wise float64 reduction and a final sum (two launches), then one
        read of the value."""
        return float(self.dot64_device(a, b))

    def dot64_device(self, a: Any, b: Any) -> Any:
        """The float64 dot product as a 0-d device array (two launches, no read)."""
        self.account.launch("dot64", n=2)
        value = self.inner.dot64(_unwrap(a), _unwrap(b))
        return np.asarray(value, dtype=np.float64).view(DeviceArray)

    def slab_elements(self) -> int:
        return 1 << 24  # as on the GPU (CuPyBackend)

    # -- FFT, images ----------------------------------------------------------------------------
    @property
    def fft(self) -> Any:
        return self._fft

    @property
    def fft_options(self) -> dict[str, Any]:
        return self.inner.fft_options

    @property
    def ndimage(self) -> Any:
        return self._ndimage

    def distance_transform_edt(self, mask: Any) -> Any:
        self.account.launch("distance_transform_edt")
        return _wrap(self.inner.distance_transform_edt(_unwrap(mask)))

    def label(self, mask: Any, connectivity: int = 1) -> tuple[Any, int]:
        """Labelling as on the GPU: one launch (a library call), and the number of
        components is one read."""
        self.account.launch("label")
        lab, n = self.inner.label(_unwrap(mask), connectivity)
        self.account.read(8)
        return _wrap(lab), n

    # -- kernels --------------------------------------------------------------------------------
    def kernel(self, filename: str, name: str) -> Any:
        fn = self.inner.kernel(filename, name)
        account = self.account

        def launch(grid: Any, block: Any, args: tuple[Any, ...], **kwargs: Any) -> None:
            nbytes = _host_bytes(args)
            if nbytes:
                account.write(nbytes)
            account.launch(name, kernel=True)
            fn(grid, block, _unwrap(args), **kwargs)

        return launch

    # -- memory ---------------------------------------------------------------------------------
    def available_memory(self) -> int:
        return self.inner.available_memory()

    def device_count(self) -> int:
        return self.inner.device_count()

    def resident_blocks(self, threads: int) -> int:
        return self.inner.resident_blocks(threads)

    def __repr__(self) -> str:
        return f"<cbagpu accounting backend over {self.inner!r}>"
