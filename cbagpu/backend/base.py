"""The backend interface: one set of array operations and capabilities, two implementations.

Algorithm code in cbagpu is written once against :class:`Backend` and asks it for a
capability (its FFT module, ``ndimage``, the distance transform, labelling, a stable
argsort, a float64 dot product, the kernels of ``kernels/*.cu`` or their absence, where
its arrays live) -- never for its name. ``name`` is for reports and metadata only.

Implementations: :class:`~cbagpu.backend.numpy_backend.NumPyBackend` (CPU, NumPy/SciPy,
the NumPy/Numba twins of the kernels), :class:`~cbagpu.backend.cupy_backend.CuPyBackend`
(GPU, CuPy/cuFFT/cuCIM, the CUDA kernels) and
:class:`~cbagpu.backend.host_kernels.HostKernelBackend` (NumPy arrays whose kernel launches
run the CUDA sources compiled as host C++: the GPU route's Python code on a CPU).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from cbagpu.errors import BackendUnavailableError

__all__ = ["Backend", "BackendUnavailableError"]


class Backend(ABC):
    """Array operations and capabilities that differ between CPU and GPU.

    Attributes
    ----------
    name : str
        ``"numpy"`` or ``"cupy"``: recorded in metadata and reports; algorithm code never
        branches on it.
    xp : module
        The array module (:mod:`numpy` or :mod:`cupy`).
    on_host : bool
        True when the arrays live in host memory (NumPy arrays): host code (Numba kernels,
        SciPy) may work on them in place and no device memory needs checking.
    runs_kernels : bool
        True when :meth:`kernel` launches the CUDA kernels of ``kernels/*.cu`` (on a GPU, or
        compiled for the host); False where algorithm code runs the kernels' twins.
    workers : int
        Host threads the backend's host libraries may use (pocketfft, ``edt``, Numba twins).
    memory_name : str
        Where :meth:`available_memory` counts: ``"host"`` or ``"GPU"`` (for messages).
    """

    name: str
    xp: Any
    on_host: bool = True
    runs_kernels: bool = False
    workers: int = 1
    memory_name: str = "host"

    # -- arrays ---------------------------------------------------------------------------
    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """Move (or view) ``a`` as an array of this backend."""
        return self.xp.asarray(a, dtype=dtype)

    @abstractmethod
    def to_host(self, a: Any) -> np.ndarray:
        """Return ``a`` as a NumPy array on the host."""

    def synchronize(self) -> None:  # noqa: B027 - optional hook
        """Wait for queued device work (no-op on the CPU)."""

    def argsort_stable(self, a: Any) -> Any:
        """Indices that sort the 1-D array ``a``, equal keys in their original order."""
        return self.xp.argsort(a, kind="stable")

    def dot64(self, a: Any, b: Any) -> float:
        """``sum(a * b)`` over all elements with a float64 accumulator, as a Python float
        (one device-to-host read)."""
        return float(self.xp.dot(a.ravel().astype(np.float64), b.ravel().astype(np.float64)))

    def slab_elements(self) -> int:
        """Elements per slab of sliced vector updates and reductions: small on the CPU
        (cache-sized), large on a GPU (fewer launches)."""
        return 1 << 20

    # -- FFT ------------------------------------------------------------------------------
    @property
    @abstractmethod
    def fft(self) -> Any:
        """FFT module with SciPy's API (``rfftn``, ``irfftn``, ``fft``, ``ihfft`` with
        ``s``/``n`` and ``axes``/``axis``) that keeps single precision."""

    @property
    def fft_options(self) -> dict[str, Any]:
        """Extra keywords for every call of :attr:`fft` (``workers`` on the CPU)."""
        return {}

    def rfftn(self, a: Any) -> Any:
        """Real-to-complex n-D FFT of a float32 array (complex64 result)."""
        return self.fft.rfftn(a, **self.fft_options)

    def irfftn(self, a: Any, shape: tuple[int, ...]) -> Any:
        """Complex-to-real inverse of :meth:`rfftn` (float32 result of ``shape``)."""
        return self.fft.irfftn(a, s=shape, **self.fft_options)

    # -- image operations ---------------------------------------------------------------
    @property
    @abstractmethod
    def ndimage(self) -> Any:
        """``scipy.ndimage`` or a module with its API for this backend's arrays."""

    @abstractmethod
    def distance_transform_edt(self, mask: Any) -> Any:
        """Exact Euclidean distance of every True voxel to the nearest False voxel."""

    def label(self, mask: Any, connectivity: int = 1) -> tuple[Any, int]:
        """Connected components of ``mask`` (connectivity 1 = faces, 2 = edges,
        3 = 26-neighbours), numbered in raster order of their first voxel."""
        from scipy.ndimage import generate_binary_structure

        structure = self.xp.asarray(generate_binary_structure(mask.ndim, connectivity))
        lab, n = self.ndimage.label(mask, structure=structure)
        return lab, int(n)

    # -- kernels --------------------------------------------------------------------------
    def kernel(self, filename: str, name: str) -> Any:
        """The ``__global__`` function ``name`` of ``kernels/<filename>`` as a launchable
        ``fn(grid, block, args)``; only where :attr:`runs_kernels` is True."""
        raise BackendUnavailableError(
            f"backend {self.name!r} does not launch CUDA kernels ({filename}:{name}); "
            "algorithm code runs the kernel's twin where runs_kernels is False"
        )

    # -- memory ---------------------------------------------------------------------------
    @abstractmethod
    def available_memory(self) -> int:
        """Bytes this backend can still allocate for arrays (device memory on the GPU)."""

    def device_count(self) -> int:
        """Devices this backend can use (0 for a host backend)."""
        return 0

    def resident_blocks(self, threads: int) -> int:
        """Blocks of ``threads`` that are sure to run at the same time (the grid of a
        persistent kernel whose blocks wait for each other): 1 where kernels run on the
        host."""
        return 1

    def __repr__(self) -> str:
        return f"<cbagpu backend {self.name}>"
