"""Backend selection: ``get_backend("auto" | "numpy" | "cupy")``.

``"auto"`` picks CuPy when a GPU is usable and NumPy otherwise; ``"cupy"`` where it cannot
run raises :class:`BackendUnavailableError` (never a silent fallback).
"""

from __future__ import annotations

from cbagpu.backend.base import Backend
from cbagpu.backend.cupy_backend import CuPyBackend, cupy_unavailable_reason
from cbagpu.backend.host_kernels import HostKernelBackend
from cbagpu.backend.numpy_backend import NumPyBackend
from cbagpu.errors import BackendUnavailableError, InvalidInputError

BACKEND_NAMES = ("auto", "numpy", "cupy")

#: The class behind each concrete backend name (its class attributes, e.g. ``on_host``,
#: can be read without constructing it, i.e. without a GPU).
BACKEND_CLASSES: dict[str, type[Backend]] = {"numpy": NumPyBackend, "cupy": CuPyBackend}

_cache: dict[str, Backend] = {}


def gpu_available() -> bool:
    """True when the CuPy backend can run on this machine."""
    return cupy_unavailable_reason() is None


def get_backend(name: str | Backend = "auto") -> Backend:
    """Return the backend called ``name`` (a :class:`Backend` instance passes through)."""
    if isinstance(name, Backend):
        return name
    if not isinstance(name, str) or name not in BACKEND_NAMES:
        raise InvalidInputError(
            f"unknown backend {name!r}; choose one of: {', '.join(BACKEND_NAMES)}"
        )
    if name == "auto":
        name = "cupy" if gpu_available() else "numpy"
    if name not in _cache:
        _cache[name] = BACKEND_CLASSES[name]()
    return _cache[name]


__all__ = [
    "BACKEND_CLASSES",
    "BACKEND_NAMES",
    "Backend",
    "BackendUnavailableError",
    "CuPyBackend",
    "HostKernelBackend",
    "NumPyBackend",
    "get_backend",
    "gpu_available",
]
