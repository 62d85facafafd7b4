"""The backend interface: one set of array operations, two implementations.

Algorithm code in cbagpu is written once against :class:`Backend`; only the array
module, the FFT, the distance transform, the labelling and the CUDA kernels differ
between :class:`~cbagpu.backend.numpy_backend.NumPyBackend` (CPU, NumPy/SciPy) and
:class:`~cbagpu.backend.cupy_backend.CuPyBackend` (GPU, CuPy/cuFFT/cuCIM).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class BackendUnavailableError(RuntimeError):
    """Raised when a backend was asked for explicitly but cannot run here."""


class Backend(ABC):
    """Array operations that differ between CPU and GPU.

    Attributes
    ----------
    name : str
        ``"numpy"`` or ``"cupy"``.
    xp : module
        The array module (:mod:`numpy` or :mod:`cupy`).
    """

    name: str
    xp: Any

    # -- arrays ---------------------------------------------------------------------------
    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """Move (or view) ``a`` as an array of this backend."""
        return self.xp.asarray(a, dtype=dtype)

    @abstractmethod
    def to_host(self, a: Any) -> Any:
        """Return ``a`` as a NumPy array on the host."""

    def synchronize(self) -> None:  # noqa: B027 - optional hook
        """Wait for queued device work (no-op on the CPU)."""

    # -- FFT ------------------------------------------------------------------------------
    @abstractmethod
    def rfftn(self, a: Any) -> Any:
        """Real-to-complex n-D FFT of a float32 array (complex64 result)."""

    @abstractmethod
    def irfftn(self, a: Any, shape: tuple[int, ...]) -> Any:
        """Complex-to-real inverse of :meth:`rfftn` (float32 result of ``shape``)."""

    # -- image operations used by later modules --------------------------------------------
    @abstractmethod
    def distance_transform_edt(self, mask: Any) -> Any:
        """Exact Euclidean distance of every True voxel to the nearest False voxel."""

    @abstractmethod
    def label(self, mask: Any, connectivity: int = 1) -> tuple[Any, int]:
        """Connected components of ``mask`` (connectivity 1 = faces, 3 = 26-neighbours)."""

    # -- memory ---------------------------------------------------------------------------
    @abstractmethod
    def available_memory(self) -> int:
        """Bytes this backend can still allocate for arrays (device memory on the GPU)."""

    def __repr__(self) -> str:
        return f"<cbagpu backend {self.name}>"
