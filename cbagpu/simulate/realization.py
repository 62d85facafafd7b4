"""Realizations of the model Xi = Xi1 ∪ (Xi2 ∩ Xi3ᶜ) (Eq. 4) on any window of one unbounded
sample.

A realization is determined by ``(params, voxel_size, seed)``; :func:`generate` returns the
window ``origin + [0, shape)`` of it (voxel units, axis order z, y, x) as a uint8 label image
(0 = pore, 1 = CBD, 2 = graphite). Any sub-window generated alone equals the same region of a
larger window, bit for bit on one backend: germs are drawn per cell of a fixed grid with a
counter-based generator (:mod:`~cbagpu.simulate.germs`), and the Gaussian field is computed
on a fixed global block grid from counter-based noise (:mod:`~cbagpu.simulate.grf`). The two
backends place the same grains and the same noise; their label images differ only where the
field lies within float32 rounding of mu.

Labels are produced in three passes: the excursion set {Z >= mu} of Xi2 writes 1/0
(``kernels/combine.cu``), the large pores Xi3 paint 0, the graphite grains Xi1 paint 2
(``kernels/raster.cu``), which is Eq. (4) with labels graphite = Xi1,
CBD = Xi2 \\ Xi3 \\ Xi1 and pore = the rest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cbagpu.backend import BACKEND_CLASSES, Backend, get_backend
from cbagpu.backend.kernels import launch_blocks
from cbagpu.errors import InvalidInputError
from cbagpu.memory import check_fits, host_available_memory
from cbagpu.params import CBAParams, VoxelParams
from cbagpu.simulate.germs import window_balls, window_spheroids
from cbagpu.simulate.grf import (
    FieldKernel,
    block_fft_size,
    field_blocks,
    field_kernel,
    kernel_build_bytes,
    truncation_radius,
    window_blocks,
)
from cbagpu.simulate.raster import paint_grains
from cbagpu.validation import (
    CBD,
    GRAPHITE,
    LABEL_NAMES,
    PORE,
    check_seed,
    check_voxel_size,
    check_window,
)

#: Progress callback: ``progress(stage, done, total)``.
Progress = Callable[[str, int, int], None]

LABELS = LABEL_NAMES  # label -> phase name (kept for existing callers)
_SCRATCH = 512 << 20  # rasterisation scratch and small temporaries (bytes)


# ------------------------------------------------------------------------------ validation
# the checks live in cbagpu.validation; these names stay for existing callers
validate_window = check_window
validate_seed = check_seed
validate_voxel_size = check_voxel_size


# ---------------------------------------------------------------------------------- memory
@dataclass(frozen=True)
class MemoryEstimate:
    """Peak bytes a realization needs on the host and, for the GPU backend, the device."""

    host: int
    device: int


def estimate_memory(
    shape: tuple[int, int, int],
    kernel: FieldKernel,
    backend: str | Backend | bool = "numpy",
    n_outputs: int = 1,
) -> MemoryEstimate:
    """Peak memory of :func:`generate` (``n_outputs`` = 3 for :func:`generate_components`).

    Per FFT block of edge N: noise (4 N^3), its spectrum (~4 N^3 complex64 half-spectrum),
    the block result (4 N^3) and the kernel spectrum (~2 N^3), plus 1 byte per voxel and
    output, plus a fixed rasterisation scratch; and at least the building of the kernel
    itself (:func:`cbagpu.simulate.grf.kernel_build_bytes`), which comes first.

    Parameters
    ----------
    shape : (int, int, int)
        Window size in voxels.
    kernel : FieldKernel or KernelGeometry
        The field kernel or its geometry (radius and FFT block size set the working set).
    backend : {"numpy", "cupy", "auto"}, Backend or bool
        Where the arrays live: a backend (or its name; a name is not instantiated, so
        ``"cupy"`` works on a machine without a GPU), or a bool saying whether they live in
        device memory.
    n_outputs : int
        Label-sized outputs held at once.

    Returns
    -------
    MemoryEstimate
        ``device`` is 0 for a backend whose arrays live in host memory.
    """
    voxels = int(np.prod(shape, dtype=np.int64))
    n3 = kernel.fft_size**3
    block = 14 * n3
    labels = voxels * n_outputs
    build = kernel_build_bytes(kernel.radius)  # the kernel is built on the host, first
    if _on_device(backend):
        # device: labels + block working set + cuFFT work area (~ one half spectrum)
        device = labels + block + 4 * n3 + (64 << 20)
        host = max(labels + 3 * n3 + _SCRATCH, build)
        return MemoryEstimate(host, device)
    return MemoryEstimate(max(labels + block + _SCRATCH, build), 0)


def _on_device(backend: str | Backend | bool) -> bool:
    """Whether ``backend``'s arrays live in device memory (``not on_host``)."""
    if isinstance(backend, bool):
        return backend
    if isinstance(backend, Backend):
        return not backend.on_host
    if isinstance(backend, str) and backend in BACKEND_CLASSES:  # the class says
        return not BACKEND_CLASSES[backend].on_host
    return not get_backend(backend).on_host  # "auto", or an error naming the choices


# ------------------------------------------------------------------------------- the passes
def _threshold_numpy(block: np.ndarray, fs: tuple, out: np.ndarray, ws: tuple, mu: float) -> None:
    """NumPy twin of ``threshold_into_labels``: out[ws] = (block[fs] >= mu) as 1/0."""
    np.greater_equal(block[fs], np.float32(mu), out=out[ws].view(np.bool_))


def _threshold(backend: Backend, block: Any, piece: Any, out: Any, mu: float) -> None:
    if not backend.runs_kernels:
        _threshold_numpy(block, piece.field_slices, out, piece.window_slices, mu)
        return
    ext = [s.stop - s.start for s in piece.window_slices]
    threads = 256
    blocks = launch_blocks(ext[0] * ext[1] * ext[2], threads)
    fn = backend.kernel("combine.cu", "threshold_into_labels")
    fn((blocks,), (threads,), threshold_kernel_args(block, piece, out, mu))


def threshold_kernel_args(block: Any, piece: Any, out: Any, mu: float) -> tuple[Any, ...]:
    """Arguments of ``threshold_into_labels`` (``kernels/combine.cu``)."""
    fs, ws = piece.field_slices, piece.window_slices
    return (
        block,
        np.int32(block.shape[1]),
        np.int32(block.shape[2]),
        *(np.int32(s.start) for s in fs),
        out,
        np.int32(out.shape[1]),
        np.int32(out.shape[2]),
        *(np.int32(s.start) for s in ws),
        *(np.int32(s.stop - s.start) for s in ws),
        np.float32(mu),
    )


@dataclass
class Realization:
    """A generated window and how it was made (what every output file records)."""

    labels: Any
    params: CBAParams
    voxel_size: float
    seed: int
    origin: tuple[int, int, int]
    backend: str
    timings: dict[str, float] = field(default_factory=dict)
    field_kernel_radius: int = 0
    field_block: int = 0

    def metadata(self) -> dict[str, Any]:
        """JSON-serialisable metadata (parameters, seed, voxel size, origin, version...)."""
        from cbagpu.io import image_metadata

        return image_metadata(
            self.params.to_dict(),
            self.seed,
            self.voxel_size,
            self.origin,
            self.backend,
            shape=list(self.labels.shape),
            field_kernel_radius=self.field_kernel_radius,
            field_block=self.field_block,
            generator="cbagpu.generate",
        )


def _prepare(params, shape, voxel_size, seed, origin, backend, n_outputs):
    if not isinstance(params, CBAParams):
        raise TypeError(f"params must be a CBAParams, got {type(params).__name__}")
    shape, origin = validate_window(shape, origin)
    seed = validate_seed(seed)
    s = validate_voxel_size(voxel_size)
    vp = check_voxel_model(params, s)
    be = get_backend(backend)
    geometry = kernel_geometry(vp.eta)  # no kernel is built before the memory check
    est = estimate_memory(shape, geometry, be, n_outputs)
    what = f"a {shape[0]}x{shape[1]}x{shape[2]} realization at {s:g} nm"
    check_fits(est.host, host_available_memory(), what, "host")
    if not be.on_host:
        check_fits(est.device, be.available_memory(), what, be.memory_name)
    kernel = field_kernel(vp.eta)
    return shape, origin, seed, s, vp, be, kernel


#: Smallest length scale of the model, in voxels, below which a voxel size is refused: the
#: field's correlation length 1/eta and the mean grain sizes must span at least this much.
MIN_SCALE_VOXELS = 0.1


def check_voxel_model(params: CBAParams, voxel_size: float) -> VoxelParams:
    """The parameters in voxel units at ``voxel_size``, refused when the model degenerates
    there: the correlation length of the Gaussian field (1/eta), the mean half-axes of the
    graphite spheroids (alpha/gamma) or the mean pore radius (1/theta) below
    :data:`MIN_SCALE_VOXELS` voxels (everything would be sub-voxel noise), or a kernel
    beyond the 2^31-voxel window limit."""
    s = check_voxel_size(voxel_size)
    vp = params.to_voxel(s)
    scales = [("the Gaussian field's correlation length 1/eta", 1.0 / vp.eta)]
    if params.lambda_x > 0:
        scales.append(("the mean thickness half-axis of the graphite (alpha1/gamma)",
                       vp.shape1 / vp.gamma))
    if params.lambda_y > 0:
        scales.append(("the mean radius of the large pores (1/theta)", 1.0 / vp.theta))
    for what, voxels in scales:
        if not math.isfinite(voxels) or voxels < MIN_SCALE_VOXELS:
            raise InvalidInputError(
                f"the model degenerates at a voxel size of {s:g} nm: {what} is "
                f"{voxels * s:.3g} nm = {voxels:.3g} voxels (at least {MIN_SCALE_VOXELS} "
                "voxels are needed); use a smaller voxel size"
            )
    truncation_radius(vp.eta)  # refuses a kernel beyond the window limit
    return vp


@dataclass(frozen=True)
class KernelGeometry:
    """Truncation radius and FFT block edge of the field kernel, known before it is built."""

    radius: int
    fft_size: int

    @property
    def block(self) -> int:
        """Edge of the valid part of a block (as :attr:`FieldKernel.block`)."""
        return self.fft_size - 2 * self.radius


def kernel_geometry(eta_vox: float) -> KernelGeometry:
    """The :class:`KernelGeometry` of :func:`cbagpu.simulate.grf.field_kernel` (cheap)."""
    r = truncation_radius(eta_vox)
    return KernelGeometry(r, block_fft_size(r))


def _field_pass(be, kernel, seed, origin, shape, out, mu, progress):
    total = len(window_blocks(origin, shape, kernel))
    for i, (piece, block) in enumerate(field_blocks(be, kernel, seed, origin, shape)):
        _threshold(be, block, piece, out, mu)
        del block
        if progress is not None:
            progress("field", i + 1, total)


def realize(
    params: CBAParams,
    shape: tuple[int, int, int],
    voxel_size: float,
    seed: int,
    origin: tuple[int, int, int] = (0, 0, 0),
    backend: str | Backend = "auto",
    *,
    progress: Progress | None = None,
    to_host: bool = True,
) -> Realization:
    """Like :func:`generate`, but returns a :class:`Realization` with metadata and timings."""
    shape, origin, seed, s, vp, be, kernel = _prepare(
        params, shape, voxel_size, seed, origin, backend, 1
    )
    xp = be.xp
    timings: dict[str, float] = {}
    t = time.perf_counter()
    spheroids = window_spheroids(vp, seed, origin, shape)
    balls = window_balls(vp, seed, origin, shape)
    timings["germs"] = time.perf_counter() - t
    if progress is not None:
        progress("germs", 1, 1)

    t = time.perf_counter()
    labels = xp.empty(shape, dtype=xp.uint8)
    _field_pass(be, kernel, seed, origin, shape, labels, vp.mu, progress)
    be.synchronize()
    timings["field"] = time.perf_counter() - t

    t = time.perf_counter()
    paint_grains(be, labels, balls, origin, PORE)
    paint_grains(be, labels, spheroids, origin, GRAPHITE)
    be.synchronize()
    timings["grains"] = time.perf_counter() - t
    if progress is not None:
        progress("grains", 1, 1)

    if to_host:
        t = time.perf_counter()
        labels = be.to_host(labels)
        timings["to_host"] = time.perf_counter() - t
    timings["total"] = sum(timings.values())
    return Realization(
        labels, params, s, seed, origin, be.name, timings, kernel.radius, kernel.block
    )


def generate(
    params: CBAParams,
    shape: tuple[int, int, int],
    voxel_size: float,
    seed: int,
    origin: tuple[int, int, int] = (0, 0, 0),
    backend: str | Backend = "auto",
    *,
    progress: Progress | None = None,
) -> np.ndarray:
    """Label image of the window ``origin + [0, shape)`` of one realization of the model.

    Parameters
    ----------
    params : CBAParams
        Model parameters in physical units (Table 2); converted to voxel units at
        ``voxel_size`` following the paper's convention (NOTES §3).
    shape : (int, int, int)
        Window size in voxels, axis order (z, y, x).
    voxel_size : float
        Voxel edge length s in nm.
    seed : int
        Seed in [0, 2^63). ``(params, voxel_size, seed)`` determine the unbounded sample.
    origin : (int, int, int)
        Global voxel index of the window's first voxel (may be negative).
    backend : {"auto", "numpy", "cupy"} or Backend
        ``"auto"`` uses the GPU when one is usable; ``"cupy"`` without a GPU raises
        :class:`~cbagpu.backend.BackendUnavailableError`.
    progress : callable, optional
        Called as ``progress(stage, done, total)`` while the realization runs.

    Returns
    -------
    labels : ndarray of uint8, shape ``shape``
        0 = pore, 1 = carbon black + binder (CBD), 2 = graphite (host array).

    Raises
    ------
    ValueError
        Bad shape, origin, seed or voxel size.
    InsufficientMemoryError
        The request would not fit in memory (raised before allocating, with the estimate).

    References
    ----------
    Gräfensteiner et al., Eqs. (1)-(4); window consistency: :mod:`cbagpu.simulate.grf`.
    """
    return realize(params, shape, voxel_size, seed, origin, backend, progress=progress).labels


@dataclass
class Components:
    """The three random sets of Eq. (4) on one window, as boolean host arrays."""

    graphite: np.ndarray  # Xi1
    grf: np.ndarray  # Xi2 = {Z >= mu}
    large_pores: np.ndarray  # Xi3

    def labels(self) -> np.ndarray:
        """Combine into the label image (Eq. 4)."""
        out = np.where(self.grf & ~self.large_pores, CBD, PORE).astype(np.uint8)
        out[self.graphite] = GRAPHITE
        return out


def generate_components(
    params: CBAParams,
    shape: tuple[int, int, int],
    voxel_size: float,
    seed: int,
    origin: tuple[int, int, int] = (0, 0, 0),
    backend: str | Backend = "auto",
) -> Components:
    """Xi1, Xi2 and Xi3 of the same realization as :func:`generate`, separately."""
    shape, origin, seed, s, vp, be, kernel = _prepare(
        params, shape, voxel_size, seed, origin, backend, 3
    )
    xp = be.xp
    grf = xp.empty(shape, dtype=xp.uint8)
    _field_pass(be, kernel, seed, origin, shape, grf, vp.mu, None)
    pores = xp.zeros(shape, dtype=xp.uint8)
    paint_grains(be, pores, window_balls(vp, seed, origin, shape), origin, 1)
    graphite = xp.zeros(shape, dtype=xp.uint8)
    paint_grains(be, graphite, window_spheroids(vp, seed, origin, shape), origin, 1)
    return Components(
        be.to_host(graphite).view(bool), be.to_host(grf).view(bool), be.to_host(pores).view(bool)
    )
