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

    def __init__(self) -> None:
        reason = cupy_unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError(f"backend 'cupy' cannot run here: {reason}")
        import cupy

        self.xp = cupy
        self._modules: dict[str, Any] = {}

    # -- arrays -----------------------------------------------------------------------------
    def to_host(self, a: Any) -> np.ndarray:
        return self.xp.asnumpy(a)

    def synchronize(self) -> None:
        self.xp.cuda.Stream.null.synchronize()

    # -- kernels ----------------------------------------------------------------------------
    def kernel(self, filename: str, name: str) -> Any:
        """The ``__global__`` function ``name`` of ``kernels/<filename>``, compiled once."""
        mod = self._modules.get(filename)
        if mod is None:
            mod = self.xp.RawModule(code=kernel_source(filename), options=NVRTC_OPTIONS)
            self._modules[filename] = mod
        return mod.get_function(name)

    # -- FFT --------------------------------------------------------------------------------
    def rfftn(self, a: Any) -> Any:
        return self.xp.fft.rfftn(a)

    def irfftn(self, a: Any, shape: tuple[int, ...]) -> Any:
        return self.xp.fft.irfftn(a, s=shape)

    # -- image operations -------------------------------------------------------------------
    def distance_transform_edt(self, mask: Any) -> Any:
        """Exact EDT (float32, voxel units), cuCIM when installed, else cupyx."""
        try:
            from cucim.core.operations.morphology import distance_transform_edt

            return distance_transform_edt(mask, float64_distances=False)
        except ImportError:
            from cupyx.scipy.ndimage import distance_transform_edt

            return distance_transform_edt(mask).astype(self.xp.float32)

    def label(self, mask: Any, connectivity: int = 1) -> tuple[Any, int]:
        from cupyx.scipy import ndimage

        structure = np.ones((3,) * mask.ndim, bool)
        if connectivity == 1:
            structure = np.zeros((3,) * mask.ndim, bool)
            structure[(1,) * mask.ndim] = True
            for ax in range(mask.ndim):
                idx = [1] * mask.ndim
                for v in (0, 2):
                    idx[ax] = v
                    structure[tuple(idx)] = True
        elif connectivity == 2:
            from scipy.ndimage import generate_binary_structure

            structure = generate_binary_structure(mask.ndim, 2)
        lab, n = ndimage.label(mask, structure=self.xp.asarray(structure))
        return lab, int(n)

    # -- memory -----------------------------------------------------------------------------
    def available_memory(self) -> int:
        free, _total = self.xp.cuda.runtime.memGetInfo()
        pool = self.xp.get_default_memory_pool()
        return int(free + pool.free_bytes())
