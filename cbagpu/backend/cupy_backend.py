"""CuPy backend (GPU): CuPy arrays, cuFFT, cuCIM (or ``cupyx.scipy.ndimage``), RawModule
kernels from ``kernels/*.cu``."""

from __future__ import annotations

from typing import Any

import numpy as np

from cbagpu.backend.base import Backend, BackendUnavailableError
from cbagpu.backend.kernels import NVRTC_OPTIONS, kernel_source


def cupy_unavailable_reason() -> str | None:
    """``None`` when CuPy can run on a GPU here, else a sentence that says why not."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install
        return f"CuPy cannot be imported ({exc.__class__.__name__}: {exc}); install cbagpu[gpu]"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"no usable CUDA device ({exc.__class__.__name__}: {exc})"
    if n < 1:
        return "no CUDA device found"
    try:
        cupy.zeros(1, dtype=cupy.float32).sum().item()
    except Exception as exc:
        return f"the CUDA device cannot run CuPy code ({exc.__class__.__name__}: {exc})"
    return None


class CuPyBackend(Backend):
    """GPU backend. Construction fails with :class:`BackendUnavailableError` without a GPU."""

    name = "cupy"
    on_host = False
    runs_kernels = True
    workers = 1
    memory_name = "GPU"

    def __init__(self) -> None:
        reason = cupy_unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError(f"backend 'cupy' cannot run here: {reason}")
        import cupy

        self.xp = cupy
        self._modules: dict[str, Any] = {}
        self._dot64: Any = None

    # -- arrays -----------------------------------------------------------------------------
    def to_host(self, a: Any) -> np.ndarray:
        return self.xp.asnumpy(a)

    def synchronize(self) -> None:
        self.xp.cuda.Stream.null.synchronize()

    def argsort_stable(self, a: Any) -> Any:
        """CuPy's argsort is a stable radix sort (it takes no ``kind``)."""
        return self.xp.argsort(a)

    def dot64(self, a: Any, b: Any) -> float:
        """Each x-row reduces first (CuPy gives a reduction to one value a single block),
        the rows' float64 partial sums then go through CUB."""
        if self._dot64 is None:
            self._dot64 = self.xp.ReductionKernel(
                "T x, T y", "float64 s", "(double)x * (double)y", "a + b", "s = a", "0",
                "cbagpu_dot64",
            )
        n2 = a.shape[-1] if a.ndim else 1
        return float(self._dot64(a.reshape(-1, n2), b.reshape(-1, n2), axis=1).sum())

    def slab_elements(self) -> int:
        return 1 << 24

    # -- kernels ----------------------------------------------------------------------------
    def kernel(self, filename: str, name: str) -> Any:
        """The ``__global__`` function ``name`` of ``kernels/<filename>``, compiled once."""
        mod = self._modules.get(filename)
        if mod is None:
            mod = self.xp.RawModule(code=kernel_source(filename), options=NVRTC_OPTIONS)
            self._modules[filename] = mod
        return mod.get_function(name)

    # -- FFT --------------------------------------------------------------------------------
    @property
    def fft(self) -> Any:
        return self.xp.fft

    # -- image operations -------------------------------------------------------------------
    @property
    def ndimage(self) -> Any:
        from cupyx.scipy import ndimage

        return ndimage

    def distance_transform_edt(self, mask: Any) -> Any:
        """Exact EDT (float32, voxel units), cuCIM when installed, else cupyx."""
        try:
            from cucim.core.operations.morphology import distance_transform_edt

            return distance_transform_edt(mask, float64_distances=False)
        except ImportError:
            return self.ndimage.distance_transform_edt(mask).astype(self.xp.float32)

    # -- memory -----------------------------------------------------------------------------
    def available_memory(self) -> int:
        free, _total = self.xp.cuda.runtime.memGetInfo()
        pool = self.xp.get_default_memory_pool()
        return int(free + pool.free_bytes())

    def resident_blocks(self, threads: int) -> int:
        """One block per multiprocessor: resident whatever the kernel's occupancy (a
        persistent kernel with a grid-wide barrier must never wait for an unscheduled
        block)."""
        return int(self.xp.cuda.Device().attributes["MultiProcessorCount"])

    def device_count(self) -> int:
        return int(self.xp.cuda.runtime.getDeviceCount())
