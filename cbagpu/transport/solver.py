"""Effective conductivity, tortuosity factor and M-factor of a voxel image.

Paper Section 3.4, Eq. 27; NOTES §7.  Solves the steady conduction problem
``div(sigma grad phi) = 0`` with ``phi = 1`` before the first and ``phi = 0`` after the last
layer along the flow axis and no flux through the other faces, by conjugate gradients
preconditioned with one geometric multigrid V-cycle (cell-centred, 2x2x2 aggregation with
re-discretised coarse conductances, one symmetric red-black Gauss-Seidel sweep before and
after the coarse correction, exact solve on the coarsest grid).  The solver is matrix-free
and written once against the backend's array module (NumPy on the CPU, CuPy on the GPU);
on the CPU the stencil sweeps run as fused Numba kernels (:mod:`cpu_kernels`).

Precision: conductances and the CG vectors x, r, p, z are float32 (``dtype``), dot products
float64.  For ``tol < 1e-3`` the whole solve runs in float64: the fluxes through highly
conducting regions are differences of nearly equal potentials, and in float32 the flux
spread stalls near 1e-4 to 5e-4 (a float64 potential alone was not enough: the float32
residual recursion then stalls instead, seen on a GPU and reproduced on the CPU).  Memory:
12 bytes per voxel of conductances, 16 of vectors, about 3 for the coarse levels (twice that
in float64).  The CUDA kernels take float32 fields; float64 solves on the GPU run the
array-module twins (slower, for reference solves).

Conventions (what the numbers mean):

* ``sigma_eff`` = mean flux through the cross-sections x L / (A x 1), with A the
  cross-section in voxels and L = N - 1 + 2 x ``boundary_offset`` the distance between the
  Dirichlet planes (L = N by default: a uniform block gives ``sigma_eff = sigma``).
* ``tau_eff = (sum_p eps_p sigma_p) / sigma_eff`` with ``eps_p`` the volume fraction of
  label p in the whole image (TauFactor's multi-phase convention), and
  ``M = eps / tau_eff`` (Eq. 27) with ``eps`` the volume fraction of the conducting phase.
* TauFactor's binary ``Solver`` uses L = N (``boundary_offset = 0.5``, our default), so
  its tau equals ours; its ``MultiPhaseSolver`` puts the boundary values on a copy of the
  end layers and divides by N + 1, which is ``boundary_offset = 1.0`` here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cbagpu.backend import Backend, get_backend
from cbagpu.errors import InvalidInputError
from cbagpu.memory import InsufficientMemoryError, format_bytes
from cbagpu.transport.conductance import (
    PHASE_SIGMA,
    check_sigma,
    conductivity_field,
    fine_level,
    percolating,
)
from cbagpu.transport.operator import (
    Level,
    assemble_dense,
    coarsen,
    flux_spread,
    slice_fluxes,
)
from cbagpu.validation import AXIS_NAMES, check_axis, check_mask_3d

#: Default tolerance on the spread of the cross-section fluxes, (max - min) / mean (the
#: convergence measure of TauFactor too).  Measured on a 128^3 paper realization at 40 nm:
#: tau within 2e-5 (pore) and 1e-6 (solid) of the value at tol = 1e-6; the guarantee of
#: 0.5 % is tested in tests/test_transport.py::test_default_tolerance_accuracy.
DEFAULT_TOL = 1e-2

COARSEST_CELLS = 1500  # the coarsest grid is solved exactly (dense inverse)
NU = 1  # red-black Gauss-Seidel sweeps before and after the coarse correction
BYTES_PER_VOXEL = 32  # 3 conductances, x, r, p, z (float32) and the coarse levels

#: Below this tolerance the solve runs in float64 (twice the memory): the fluxes through
#: highly conducting regions are differences of nearly equal potentials, and in float32 their
#: spread stalls near 1e-4 to 5e-4 (tests/test_transport.py::test_precise_tolerance_converges).
PRECISE_TOL = 1e-3

#: Iterations between two convergence checks (each check reads the fluxes to the host).
CHECK_EVERY = 2


@dataclass(frozen=True)
class TransportResult:
    """Result of :func:`transport` / :func:`effective_conductivity`.

    Attributes:
        sigma_eff: Effective conductivity relative to sigma = 1 (flux based).
        tau_eff: Tortuosity factor ``(sum_p eps_p sigma_p) / sigma_eff`` (inf when the
            phase does not percolate).
        M: M-factor ``eps / tau_eff`` (Eq. 27).
        epsilon: Volume fraction of the conducting phase.
        sigma_mean: ``sum_p eps_p sigma_p`` over the whole image.
        axis: Flow axis (0 = z, 1 = y, 2 = x).
        percolating_fraction: Fraction of the conducting voxels that connect both faces.
        converged: Whether the flux spread reached ``tol``.
        iterations: Conjugate-gradient iterations.
        residual: Final relative residual ``|b - A phi| / |b|``.
        flux_spread: Final ``(max - min) / mean`` of the cross-section fluxes.
        slice_flux: Flux through the inlet, every interior face layer and the outlet
            (N + 1 values, in sigma x voxel units).
        seconds: Wall time of the solve (set-up included).
        message: Human-readable summary (non-percolation is said here).
        potential: The potential field (float32, NaN outside the system) when asked for.
    """

    sigma_eff: float
    tau_eff: float
    M: float
    epsilon: float
    sigma_mean: float
    axis: int
    percolating_fraction: float
    converged: bool
    iterations: int
    residual: float
    flux_spread: float
    slice_flux: np.ndarray
    seconds: float
    message: str
    tol: float
    backend: str
    potential: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``tau_eff`` is ``None`` when infinite)."""
        return {
            "sigma_eff": self.sigma_eff,
            "tau_eff": None if math.isinf(self.tau_eff) else self.tau_eff,
            "M": self.M,
            "epsilon": self.epsilon,
            "sigma_mean": self.sigma_mean,
            "axis": "zyx"[self.axis],
            "percolating_fraction": self.percolating_fraction,
            "converged": self.converged,
            "iterations": self.iterations,
            "residual": self.residual,
            "flux_spread": self.flux_spread,
            "tol": self.tol,
            "seconds": self.seconds,
            "backend": self.backend,
            "message": self.message,
            "slice_flux": [float(v) for v in self.slice_flux],
        }


Progress = Callable[[int, float], None]


#: Device memory of the GPUs a user is likely to solve on (bytes): one H100 (80 GB) and one
#: H200 (141 GB), named in the refusal of a volume too large.
GPU_SIZES = (("H100", 80 * 10**9), ("H200", 141 * 10**9))


def transport_memory(shape: Sequence[int], *, dtype: Any = np.float32) -> int:
    """Bytes a transport solve of a ``shape`` label image holds at its peak.

    :data:`BYTES_PER_VOXEL` per voxel in float32 (the three conductances, the CG vectors
    x, r, p, z and the multigrid hierarchy), twice as much in float64, plus the labels and
    their copy along the flow axis (2 bytes). Measured on the host route (tracemalloc, a
    224^3 paper realization at 40 nm, 2-core CPU): 33.8 bytes per voxel for either phase.
    """
    voxels = int(np.prod([int(n) for n in shape]))
    return voxels * (BYTES_PER_VOXEL * np.dtype(dtype).itemsize // 4 + 2)


def largest_solvable_edge(available: int, *, dtype: Any = np.float32) -> int:
    """The edge of the largest cube whose transport solve fits in ``available`` bytes."""
    n = int((max(0, available) / transport_memory((1, 1, 1), dtype=dtype)) ** (1 / 3))
    while transport_memory((n + 1,) * 3, dtype=dtype) <= available:
        n += 1
    while n > 0 and transport_memory((n,) * 3, dtype=dtype) > available:
        n -= 1
    return n


def check_transport_fits(shape: Sequence[int], *, backend: str | Backend = "auto",
                         dtype: Any = np.float32) -> None:
    """Refuse, before anything is read or allocated, a solve that does not fit ``backend``.

    Raises
    ------
    InsufficientMemoryError
        With the estimate (:func:`transport_memory`), the memory available, the largest cube
        that fits here and on one GPU (:data:`GPU_SIZES`), and the way out (a window by
        ``cbagpu crop`` or a coarser image by ``cbagpu resample``).
    """
    be = get_backend(backend)
    need = transport_memory(shape, dtype=dtype)
    avail = be.available_memory()
    if need <= avail:
        return
    gpus = ", ".join(f"{largest_solvable_edge(b, dtype=dtype)}^3 on one {name} "
                     f"({b / 1e9:.0f} GB)" for name, b in GPU_SIZES)
    raise InsufficientMemoryError(
        f"transport of a {'x'.join(str(int(n)) for n in shape)} image needs about "
        f"{format_bytes(need)} of {be.memory_name} memory but only {format_bytes(avail)} is "
        f"available: the largest cube that fits here is "
        f"{largest_solvable_edge(avail, dtype=dtype)}^3 voxels ({gpus}); solve a window "
        "(`cbagpu crop`) or a coarser image (`cbagpu resample`)"
    )


def transport(
    labels: Any,
    phase: str = "solid",
    axis: int | str = 0,
    *,
    sigma: Mapping[int, float] | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = 2000,
    boundary_offset: float = 0.5,
    backend: str | Backend = "auto",
    progress: Progress | None = None,
    return_potential: bool = False,
) -> TransportResult:
    """Effective conductivity, tau_eff and M-factor of one phase of a label image.

    Args:
        labels: uint8 label image (z, y, x): 0 = pore, 1 = CBD, 2 = graphite.
        phase: ``"solid"`` (sigma_graphite = 1, sigma_CBD = 0.01, pore 0) or ``"pore"``
            (sigma = 1 in the pore, 0 elsewhere), NOTES §7.  ``epsilon`` is the volume
            fraction of this phase.
        axis: Flow axis, 0/1/2 or ``"z"``/``"y"``/``"x"``.
        sigma: Label -> conductivity map replacing the phase's defaults.
        tol: Stop when the cross-section fluxes agree to ``(max - min) / mean <= tol``.
        max_iter: Iteration limit (the result says ``converged=False`` when reached).
        boundary_offset: Distance in voxels of the Dirichlet planes from the centres of the
            end layers (0.5 = on the outer faces; 1.0 = TauFactor's MultiPhaseSolver).
        backend: ``"auto"``, ``"numpy"`` or ``"cupy"``.
        progress: Called as ``progress(iteration, flux_spread)`` during the solve.
        return_potential: Also return the potential field.

    Returns:
        :class:`TransportResult`.

    References:
        Paper Section 3.4 and Eq. 27; NOTES §7.  Cooper et al. (2016), TauFactor,
        SoftwareX 5, 203-210.
    """
    if phase not in PHASE_SIGMA:
        raise InvalidInputError(f"unknown phase {phase!r}; choose 'solid' or 'pore'")
    sig = dict(PHASE_SIGMA[phase]) if sigma is None else dict(sigma)
    be = get_backend(backend)
    lab = check_mask_3d(labels, be.xp, what="labels")
    eps = float(((lab > 0) if phase == "solid" else (lab == 0)).mean())
    return effective_conductivity(
        lab, sig, axis, tol=tol, max_iter=max_iter, boundary_offset=boundary_offset,
        backend=be, progress=progress, return_potential=return_potential, epsilon=eps,
    )


def effective_conductivity(
    labels: Any,
    sigma: Mapping[int, float],
    axis: int | str = 0,
    *,
    tol: float = DEFAULT_TOL,
    max_iter: int = 2000,
    boundary_offset: float = 0.5,
    backend: str | Backend = "auto",
    progress: Progress | None = None,
    return_potential: bool = False,
    epsilon: float | None = None,
    dtype: Any = np.float32,
) -> TransportResult:
    """Solve the conduction problem on a label image with per-label conductivities.

    Same as :func:`transport` with an explicit ``sigma`` map; ``epsilon`` defaults to the
    volume fraction of the labels with ``sigma > 0``.  ``dtype`` (float32 or float64)
    is the precision of the fields; reductions are always float64.
    """
    t0 = time.perf_counter()
    be = get_backend(backend)
    xp = be.xp
    sig = check_sigma(sigma)
    ax = check_axis(axis)
    tol = float(tol)
    if not (0 < tol < 1):
        raise InvalidInputError(f"tol must be in (0, 1), got {tol}")
    if not (0 < boundary_offset <= 1e6):
        raise InvalidInputError(f"boundary_offset must be > 0, got {boundary_offset}")
    if int(max_iter) < 1:
        raise InvalidInputError(f"max_iter must be >= 1, got {max_iter}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise InvalidInputError(f"dtype must be float32 or float64, got {dtype}")
    if tol < PRECISE_TOL:
        dtype = np.dtype(np.float64)
    lab = check_mask_3d(labels, xp, what="labels")
    if lab.dtype.kind not in "ui" or (lab.size and (int(lab.min()) < 0 or int(lab.max()) > 255)):
        raise InvalidInputError(f"labels must be integers in 0..255, got dtype {lab.dtype}")
    check_transport_fits(lab.shape, backend=be, dtype=dtype)

    lab = xp.ascontiguousarray(xp.moveaxis(lab, ax, 0))
    counts = np.asarray(be.to_host(xp.bincount(lab.ravel(), minlength=256)))
    fractions = counts / lab.size
    s = conductivity_field(xp, lab, sig, dtype, np.nonzero(counts)[0])
    sigma_mean = float(sum(fractions[p] * v for p, v in sig.items()))
    conducting = s > 0
    eps = float(conducting.mean()) if epsilon is None else float(epsilon)
    n_conducting = int(conducting.sum())
    active = percolating(be, conducting)
    del conducting
    n_active = int(active.sum())
    perc = n_active / n_conducting if n_conducting else 0.0
    shape = tuple(int(n) for n in lab.shape)
    del lab
    if n_active == 0:
        msg = (f"the conducting phase does not percolate along axis {AXIS_NAMES[ax]}: "
               "sigma_eff = 0, tau_eff = inf")
        return TransportResult(
            0.0, math.inf, 0.0, eps, sigma_mean, ax, 0.0, True, 0, 0.0, 0.0,
            np.zeros(shape[0] + 1), time.perf_counter() - t0, msg, tol, be.name,
            np.full(_moved(shape, ax), np.nan, np.float32) if return_potential else None,
        )
    s *= active
    if not return_potential:
        del active
    fine = fine_level(xp, s, boundary_offset)
    fine.kern = _fused_kernels(be, dtype)
    del s
    levels = _hierarchy(fine)
    coarse_inv = xp.asarray(np.linalg.inv(assemble_dense(levels[-1])))
    L = shape[0] - 1 + 2 * boundary_offset
    area = shape[1] * shape[2]

    x, info = _pcg(be, levels, coarse_inv, tol, int(max_iter), L, progress, dtype)
    note = ""
    if info["stalled"] and not info["converged"] and dtype == np.float32:
        # the float32 recursion reached its round-off floor before the tolerance (seen on
        # high-contrast solid phases, tau ~ 100): go on in float64 from where it stopped
        need64 = int(np.prod(shape)) * BYTES_PER_VOXEL * 2
        if need64 <= be.available_memory():
            spread32, it32 = info["spread"], info["iterations"]
            levels = _hierarchy(_as_float64(fine, be))
            del fine
            coarse_inv = xp.asarray(np.linalg.inv(assemble_dense(levels[-1])))
            x, info = _pcg(be, levels, coarse_inv, tol, max(1, int(max_iter) - it32), L,
                           progress, np.float64, x0=x)
            info["iterations"] += it32
            note = (f"; float32 stalled at flux spread {spread32:.2e} after {it32} "
                    "iterations, continued in float64")
        else:
            note = ("; float32 stalled at its round-off floor and float64 (twice the "
                    "memory) does not fit: ask for a looser --tol or a smaller window")
    flux = info["flux"]
    mean_flux = float(flux.mean())
    sigma_eff = mean_flux * L / area
    tau = sigma_mean / sigma_eff if sigma_eff > 0 else math.inf
    conv = info["converged"]
    msg = (
        f"{'converged' if conv else 'NOT converged'} after {info['iterations']} iterations: "
        f"flux spread {info['spread']:.2e} (tol {tol:g}){note}"
    )
    pot = None
    if return_potential:
        x[~active] = np.nan
        pot = np.asarray(be.to_host(xp.moveaxis(x, 0, ax))).astype(np.float32)
    return TransportResult(
        sigma_eff=sigma_eff,
        tau_eff=tau,
        M=eps / tau if tau > 0 else 0.0,
        epsilon=eps,
        sigma_mean=sigma_mean,
        axis=ax,
        percolating_fraction=perc,
        converged=conv,
        iterations=info["iterations"],
        residual=info["residual"],
        flux_spread=info["spread"],
        slice_flux=flux,
        seconds=time.perf_counter() - t0,
        message=msg,
        tol=tol,
        backend=be.name,
        potential=pot,
    )


def _moved(shape: tuple[int, ...], ax: int) -> tuple[int, ...]:
    out = list(shape[1:])
    out.insert(ax, shape[0])
    return tuple(out)


def _fused_kernels(be: Backend, dtype: Any = np.float32) -> Any:
    """The fused kernels behind ``Level.kern`` for this backend: the CUDA kernels where it
    launches them (float32 fields only), the Numba kernels where its arrays are host
    arrays, else None (the array-module twins: float64 fields on the GPU)."""
    if be.runs_kernels:
        if np.dtype(dtype) != np.float32:
            return None
        from cbagpu.transport.cuda_kernels import CudaKernels

        return CudaKernels(be)
    if be.on_host:
        from cbagpu.transport.cpu_kernels import NumbaKernels

        return NumbaKernels()
    return None


def _hierarchy(fine: Level) -> list[Level]:
    levels = [fine]
    while int(np.prod(levels[-1].shape)) > COARSEST_CELLS:
        levels.append(coarsen(levels[-1]))
    return levels


def _axpy(be: Backend, alpha: float, a: Any, y: Any) -> None:
    """``y += alpha a`` slab by slab (no full-size temporary)."""
    step = max(1, be.slab_elements() // max(1, a[0].size))
    for i in range(0, a.shape[0], step):
        y[i : i + step] += alpha * a[i : i + step]


def _vcycle(levels: list[Level], coarse_inv: Any, k: int, r: Any, z: Any) -> Any:
    """``z = B r``: one symmetric V-cycle from level ``k`` (z is overwritten)."""
    lev = levels[k]
    xp = lev.xp
    if k == len(levels) - 1:
        z[...] = (coarse_inv @ r.ravel().astype(np.float64)).reshape(r.shape)
        return z
    z[...] = 0
    for _ in range(NU):  # symmetric: red-black before, black-red after
        lev.gauss_seidel(r, z, 0)
        lev.gauss_seidel(r, z, 1)
    rc = lev.residual_restricted(r, z)
    ec = _vcycle(levels, coarse_inv, k + 1, rc, xp.empty_like(rc))
    lev.add_prolonged(z, ec)
    for _ in range(NU):
        lev.gauss_seidel(r, z, 1)
        lev.gauss_seidel(r, z, 0)
    return z


def _as_float64(level: Level, be: Backend) -> Level:
    """A float64 copy of a level (array-module twins on the GPU, Numba on the CPU)."""
    xp = level.xp
    f64 = [xp.asarray(g, dtype=np.float64) for g in level.g]
    return Level(xp, (f64[0], f64[1], f64[2]), xp.asarray(level.g_in, dtype=np.float64),
                 xp.asarray(level.g_out, dtype=np.float64), _fused_kernels(be, np.float64))


def _pcg(
    be: Backend,
    levels: list[Level],
    coarse_inv: Any,
    tol: float,
    max_iter: int,
    length: float,
    progress: Progress | None,
    x_dtype: Any,
    x0: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """Preconditioned conjugate gradients on the finest level; stops on the flux spread
    (``info["stalled"]``: stopped at the round-off floor of the field precision)."""
    xp = be.xp
    fine = levels[0]
    n0 = fine.shape[0]
    x = xp.empty(fine.shape, dtype=x_dtype)
    if x0 is None:  # the linear profile between the Dirichlet planes
        off = (length - (n0 - 1)) / 2
        prof = 1.0 - (off + np.arange(n0)) / length
        x[...] = xp.asarray(prof)[:, None, None]
    else:
        x[...] = x0
    r = xp.empty(fine.shape, dtype=fine.dtype)
    fine.apply(x, out=r)
    r *= -1
    r[0] += fine.g_in
    bnorm = math.sqrt(float((fine.g_in.astype(np.float64) ** 2).sum()))
    if _device_loop(levels):
        from cbagpu.transport.device_pcg import DevicePCG

        info = DevicePCG(be, levels, coarse_inv).solve(x, r, tol, max_iter, progress,
                                                      CHECK_EVERY)
        return x, _final(be, fine, x, r, bnorm, tol, info["iterations"], info["stalled"])
    z = xp.empty_like(r)
    p = xp.zeros_like(r)
    rz_old = 0.0
    it = 0
    spread = math.inf
    check_every = CHECK_EVERY
    floor = (100 * float(np.finfo(fine.dtype).eps)) ** 2
    rz0 = 0.0
    stalled = False
    while True:
        if it % check_every == 0 or it >= max_iter:
            flux = slice_fluxes(fine, x, be)
            spread = flux_spread(flux)
            if progress is not None:
                progress(it, spread)
            if spread <= tol or it >= max_iter:
                break
        _vcycle(levels, coarse_inv, 0, r, z)
        rz = be.dot64(r, z)
        beta = rz / rz_old if rz_old else 0.0
        p *= beta
        p += z
        q = fine.apply(p, out=z)
        pq = be.dot64(p, q)
        if it == 0:
            rz0 = rz
        if pq <= 0 or rz <= floor * rz0:  # at the round-off floor of the field precision
            stalled = True
            break
        alpha = rz / pq
        _axpy(be, alpha, p, x)
        _axpy(be, -alpha, q, r)
        rz_old = rz
        it += 1
    return x, _final(be, fine, x, r, bnorm, tol, it, stalled)


def _device_loop(levels: list[Level]) -> bool:
    """Whether the fused device loop (:mod:`cbagpu.transport.device_pcg`) runs: float32
    fields on a backend that launches the kernels, and a hierarchy of at least two levels."""
    from cbagpu.transport.cuda_kernels import CudaKernels

    fine = levels[0]
    return (isinstance(fine.kern, CudaKernels) and fine.dtype == np.float32
            and len(levels) >= 2)


def _final(be: Backend, fine: Level, x: Any, r: Any, bnorm: float, tol: float, it: int,
           stalled: bool) -> dict[str, Any]:
    """The loop's ``info``: fluxes of the final potential, whatever stopped the loop."""
    flux = slice_fluxes(fine, x, be)
    mean = flux.mean()
    spread = float((flux.max() - flux.min()) / mean) if mean > 0 else math.inf
    res = math.sqrt(max(be.dot64(r, r), 0.0)) / bnorm if bnorm > 0 else 0.0
    return {
        "iterations": it,
        "converged": bool(spread <= tol),
        "stalled": stalled,
        "spread": spread,
        "residual": res,
        "flux": flux,
    }
