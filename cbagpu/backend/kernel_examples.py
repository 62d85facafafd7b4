"""Self-checks of the kernels of ``kernels/*.cu`` against their twins (the ``example`` of
each :mod:`~cbagpu.backend.registry` entry).

Each ``example(backend)`` builds a small input on the host, runs the kernel on ``backend``
(one whose ``runs_kernels`` is True: the CUDA backend, or
:class:`~cbagpu.backend.host_kernels.HostKernelBackend`) through the same launch code the
algorithms use, runs the twin on NumPy arrays, and returns a :class:`KernelCheck`: the two
outputs as host arrays and how they must agree (``"exact"``, or ``(rtol, atol)`` where the
kernel's float arithmetic may round differently from the twin's). :func:`compare` applies it.

The algorithm modules import the backend package, so this module imports them inside the
examples only (and nothing imports this module at import time: the registry names it by a
string).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cbagpu.backend.kernels import launch_blocks
from cbagpu.backend.numpy_backend import NumPyBackend

#: "exact", or (rtol, atol) of :func:`numpy.testing.assert_allclose`.
Tolerance = str | tuple[float, float]

_THREADS = 256
_SWEEP_DIRECTIONS = ((0, +1), (0, -1), (1, +1), (1, -1), (2, +1), (2, -1))


@dataclass(frozen=True)
class KernelCheck:
    """Outputs of one example: ``kernel`` and ``twin`` (host arrays, or tuples of them in
    the same order) and their ``tolerance``."""

    kernel: Any
    twin: Any
    tolerance: Tolerance


def compare(check: KernelCheck) -> None:
    """Raise :class:`AssertionError` unless the kernel's outputs match the twin's."""
    pairs = (list(zip(check.kernel, check.twin, strict=True))
             if isinstance(check.kernel, tuple) else [(check.kernel, check.twin)])
    for got, want in pairs:
        got, want = np.asarray(got), np.asarray(want)
        if check.tolerance == "exact":
            np.testing.assert_array_equal(got, want)
        else:
            rtol, atol = check.tolerance
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def _host() -> NumPyBackend:
    return NumPyBackend(workers=1)


# ---------------------------------------------------------------------------- simulate
def white_noise(be: Any) -> KernelCheck:
    """``white_noise`` on a box with negative, odd origin (pairs split at both ends)."""
    from cbagpu.simulate.noise import field_key, white_noise, white_noise_numpy

    key = field_key(77)
    origin, shape = (-9, 4, -33), (12, 17, 41)
    got = be.to_host(white_noise(be, key, origin, shape))
    # same hash chain and uniforms; the float32 log/sin/cos of CUDA, libm and NumPy differ
    # by a few ulp (measured: 2.4e-7 on the host)
    return KernelCheck(got, white_noise_numpy(key, origin, shape), (2e-6, 2e-6))


def _paint(be: Any, kind: str) -> KernelCheck:
    from cbagpu.params import preset
    from cbagpu.simulate.germs import window_balls, window_spheroids
    from cbagpu.simulate.raster import paint_grains

    origin, shape = (-70, 1000, 33), (60, 70, 90)
    got, want = [], []
    for voxel_size in (20, 40):
        vp = preset("paper").to_voxel(voxel_size)
        draw = window_spheroids if kind == "spheroid" else window_balls
        grains = draw(vp, 3, origin, shape)
        dev = be.xp.full(shape, 5, dtype=be.xp.uint8)
        paint_grains(be, dev, grains, origin, 9)
        twin = np.full(shape, 5, np.uint8)
        paint_grains(_host(), twin, grains, origin, 9)
        got.append(be.to_host(dev))
        want.append(twin)
    # float64 without FMA contraction on both sides: bit-identical grains
    return KernelCheck(tuple(got), tuple(want), "exact")


def paint_spheroid_rows(be: Any) -> KernelCheck:
    """``paint_spheroid_rows``: the spheroids of Xi1 at 20 and 40 nm on a window."""
    return _paint(be, "spheroid")


def paint_ball_rows(be: Any) -> KernelCheck:
    """``paint_ball_rows``: the balls of Xi3 at 20 and 40 nm on a window."""
    return _paint(be, "ball")


def threshold_into_labels(be: Any) -> KernelCheck:
    """``threshold_into_labels`` on every field block of a window (the same host blocks go
    to both sides)."""
    from cbagpu.params import preset
    from cbagpu.simulate.grf import field_blocks, field_kernel
    from cbagpu.simulate.realization import _threshold, _threshold_numpy

    kernel = field_kernel(preset("paper").eta * 80)
    origin, shape = (-30, 0, 100), (150, 40, 60)
    dev = be.xp.full(shape, 7, dtype=be.xp.uint8)
    twin = np.full(shape, 7, np.uint8)
    for piece, block in field_blocks(_host(), kernel, 3, origin, shape):
        block = np.ascontiguousarray(block)
        _threshold(be, be.asarray(block), piece, dev, 0.3)
        _threshold_numpy(block, piece.field_slices, twin, piece.window_slices, 0.3)
    return KernelCheck(be.to_host(dev), twin, "exact")


# --------------------------------------------------------------------------- transport
def _transport_case(be: Any) -> tuple[Any, Any, Any, dict[str, np.ndarray]]:
    """(twin level on the host, the same level on ``be``, ``CudaKernels(be)``, inputs):
    odd sizes, so that the 2x2x2 blocks at the ends are partial."""
    from cbagpu.transport.conductance import fine_level
    from cbagpu.transport.cuda_kernels import CudaKernels

    rng = np.random.default_rng(11)
    shape = (9, 7, 11)
    s = (rng.random(shape) * (rng.random(shape) > 0.3)).astype(np.float32)
    data = {
        "z": rng.random(shape).astype(np.float32),
        "r": rng.random(shape).astype(np.float32),
        "ec": rng.random((5, 4, 6)).astype(np.float32),
    }
    twin = fine_level(np, s, 0.5)  # kern None: the array-module twins
    dev = fine_level(be.xp, be.asarray(s), 0.5)
    return twin, dev, CudaKernels(be), data


def _apply(be: Any, dtype: Any) -> KernelCheck:
    twin, dev, kern, data = _transport_case(be)
    z = data["z"].astype(dtype)
    out = be.xp.empty(z.shape, dtype=be.xp.float32)
    kern.apply(dev, be.asarray(z), out)
    return KernelCheck(be.to_host(out), twin.apply(z), (1e-5, 1e-5))


def cba_apply_f32(be: Any) -> KernelCheck:
    """``cba_apply_f32``: ``A z`` of a random conductance field."""
    return _apply(be, np.float32)


def cba_apply_f64(be: Any) -> KernelCheck:
    """``cba_apply_f64``: ``A z`` of a float64 potential (float32 conductances)."""
    return _apply(be, np.float64)


def cba_gauss_seidel(be: Any) -> KernelCheck:
    """``cba_gauss_seidel``: both colours of a half-sweep from the same start."""
    twin, dev, kern, data = _transport_case(be)
    z, r = data["z"], data["r"]
    got, want = [], []
    for color in (0, 1):
        zd = be.asarray(z.copy())
        kern.gauss_seidel(dev, be.asarray(r), zd, color)
        got.append(be.to_host(zd))
        want.append(twin.gauss_seidel(r, z.copy(), color))
    return KernelCheck(tuple(got), tuple(want), (1e-5, 1e-6))


def cba_residual_restrict(be: Any) -> KernelCheck:
    """``cba_residual_restrict``: ``R (r - A z)`` onto the coarse grid."""
    twin, dev, kern, data = _transport_case(be)
    z, r = data["z"], data["r"]
    rc = be.xp.empty((5, 4, 6), dtype=be.xp.float32)
    kern.residual_restricted(dev, be.asarray(r), be.asarray(z), rc)
    return KernelCheck(be.to_host(rc), twin.residual_restricted(r, z), (1e-4, 1e-5))


def cba_add_prolonged(be: Any) -> KernelCheck:
    """``cba_add_prolonged``: ``z += P ec`` (one float32 addition per voxel: exact)."""
    twin, dev, kern, data = _transport_case(be)
    z, ec = data["z"], data["ec"]
    zd = be.asarray(z.copy())
    kern.add_prolonged(dev, zd, be.asarray(ec))
    return KernelCheck(be.to_host(zd), twin.add_prolonged(z.copy(), ec), "exact")


def _pcg_case(be: Any) -> tuple[Any, Any, Any, dict[str, np.ndarray]]:
    """The transport case with the fused PCG module's helpers."""
    twin, dev, kern, data = _transport_case(be)
    return twin, dev, kern, data


def _launch(be: Any, name: str, items: int, args: tuple[Any, ...], cap: int = 1 << 20) -> None:
    be.kernel("transport.cu", name)((launch_blocks(items, _THREADS, cap),), (_THREADS,), args)


def cba_gs_zero_first(be: Any) -> KernelCheck:
    """``cba_gs_zero_first``: ``z = 0`` and the red half-sweep, from garbage in ``z``."""
    from cbagpu.transport import device_pcg as dp

    twin, dev, _kern, data = _pcg_case(be)
    r = data["r"]
    z = be.asarray(data["z"].copy())
    _launch(be, "cba_gs_zero_first", r.size, dp.gs_zero_first_args(dev, be.asarray(r), z))
    want = dp.gs_zero_first_twin(twin, r, data["z"].copy())
    return KernelCheck(be.to_host(z), want, (1e-6, 1e-7))


def _prolong_pair(be: Any) -> tuple[np.ndarray, float, np.ndarray, float, np.ndarray]:
    """``cba_prolong_gs`` then ``cba_gs_last`` (with the dot) against add_prolonged and the
    black and red half-sweeps of the twin."""
    from cbagpu.transport import device_pcg as dp

    twin, dev, _kern, data = _pcg_case(be)
    z0, r, ec = data["z"], data["r"], data["ec"]
    zd, rd, ecd = be.asarray(z0.copy()), be.asarray(r), be.asarray(ec)
    part = be.xp.zeros(dp.MAX_PARTS, dtype=be.xp.float64)
    _launch(be, "cba_prolong_gs", r.size, dp.prolong_gs_args(dev, rd, zd, ecd))
    black = be.to_host(zd)
    _launch(be, "cba_gs_last", r.size, dp.gs_last_args(dev, rd, zd, ecd, True, part, True),
            cap=dp.MAX_PARTS)
    zt = dp.prolong_gs_twin(twin, r, z0.copy(), ec)
    black_twin = zt.copy()
    zt, dot = dp.gs_last_twin(twin, r, zt)
    mask = (np.indices(r.shape).sum(axis=0) % 2) == 1
    return (np.where(mask, black, 0), float(be.to_host(part).sum()),
            be.to_host(zd), dot, np.where(mask, black_twin, 0), zt)


def cba_prolong_gs(be: Any) -> KernelCheck:
    """``cba_prolong_gs``: the black voxels after ``z += P ec`` and the black half-sweep."""
    black, _dot, _z, _dt, black_twin, _zt = _prolong_pair(be)
    return KernelCheck(black, black_twin, (1e-5, 1e-6))


def cba_gs_last(be: Any) -> KernelCheck:
    """``cba_gs_last``: after ``cba_prolong_gs``, the whole correction of a V-cycle level
    and the partials of ``r . z`` (summed)."""
    _black, dot, z, dot_twin, _bt, z_twin = _prolong_pair(be)
    return KernelCheck(np.append(z.ravel(), dot), np.append(z_twin.ravel(), dot_twin),
                       (1e-5, 1e-6))


def cba_dense_solve(be: Any) -> KernelCheck:
    """``cba_dense_solve``: ``inv @ r`` of a random float64 matrix."""
    from cbagpu.transport import device_pcg as dp

    rng = np.random.default_rng(3)
    inv = rng.random((37, 37))
    r = rng.random(37).astype(np.float32)
    z = be.xp.empty(37, dtype=be.xp.float32)
    _launch(be, "cba_dense_solve", 37, dp.dense_solve_args(be.asarray(inv), be.asarray(r), z))
    return KernelCheck(be.to_host(z), dp.dense_solve_twin(inv, r), (1e-6, 1e-6))


def cba_vcycle_coarse(be: Any) -> KernelCheck:
    """``cba_vcycle_coarse``: the V-cycle on four packed coarse levels (odd sizes, the
    coarsest solved by its dense inverse) against the twins level by level."""
    from cbagpu.transport import device_pcg as dp
    from cbagpu.transport.conductance import fine_level
    from cbagpu.transport.operator import assemble_dense, coarsen

    rng = np.random.default_rng(5)
    shape = (23, 19, 21)
    s = (rng.random(shape) * (rng.random(shape) > 0.3)).astype(np.float32)

    def hierarchy(xp: Any, field: Any) -> list[Any]:
        levels = [coarsen(fine_level(xp, field, 0.5))]
        while len(levels) < 4:
            levels.append(coarsen(levels[-1]))
        return levels

    twin = hierarchy(np, s)
    inv = np.linalg.inv(assemble_dense(twin[-1]))
    coarse = dp.pack_coarse_levels(be, hierarchy(be.xp, be.asarray(s)))
    r = rng.random(twin[0].shape).astype(np.float32)
    coarse.r[0][...] = be.asarray(r)
    coarse.z_buf[...] = be.asarray(rng.random(coarse.z_buf.shape).astype(np.float32))
    blocks = launch_blocks(r.size, dp.COARSE_THREADS, be.resident_blocks(dp.COARSE_THREADS))
    be.kernel("transport.cu", "cba_vcycle_coarse")(
        (blocks,), (dp.COARSE_THREADS,), dp.vcycle_coarse_args(coarse, be.asarray(inv)))
    want = dp.vcycle_coarse_twin(twin, inv, r)
    return KernelCheck(be.to_host(coarse.z[0]), want, (1e-4, 1e-6))


def _scalars(be: Any, **values: float) -> Any:
    from cbagpu.transport import device_pcg as dp

    s = np.zeros(dp.S_COUNT)
    for k, v in values.items():
        s[getattr(dp, k)] = v
    return be.asarray(s)


def _parts(be: Any, total: float) -> Any:
    from cbagpu.transport import device_pcg as dp

    part = np.zeros(dp.MAX_PARTS)
    part[:3] = (total * 0.5, total * 0.25, total * 0.25)
    return be.asarray(part)


def cba_pcg_direction(be: Any) -> KernelCheck:
    """``cba_pcg_direction``: ``p = z + beta p`` with ``beta = rz / rz_old`` (rounded as the
    host loop rounds it: exact) and ``rz`` stored."""
    from cbagpu.transport import device_pcg as dp

    rng = np.random.default_rng(4)
    z, p = rng.random(999).astype(np.float32), rng.random(999).astype(np.float32)
    s = _scalars(be, S_RZ_OLD=3.0)
    pd = be.asarray(p.copy())
    _launch(be, "cba_pcg_direction", 999,
            dp.direction_args(be.asarray(z), pd, _parts(be, 2.0), 3, s, False))
    want = dp.direction_twin(z, p.copy(), 2.0, 3.0)
    return KernelCheck(np.append(be.to_host(pd), be.to_host(s)[dp.S_RZ]),
                       np.append(want, 2.0), "exact")


def cba_pcg_apply_dot(be: Any) -> KernelCheck:
    """``cba_pcg_apply_dot``: ``q = A p`` and the partials of ``p . q`` (summed)."""
    from cbagpu.transport import device_pcg as dp

    twin, dev, _kern, data = _pcg_case(be)
    p = data["z"]
    q = be.xp.empty(p.shape, dtype=be.xp.float32)
    part = be.xp.zeros(dp.MAX_PARTS, dtype=be.xp.float64)
    _launch(be, "cba_pcg_apply_dot", p.size, dp.apply_dot_args(dev, be.asarray(p), q, part),
            cap=dp.MAX_PARTS)
    qt, dot = dp.apply_dot_twin(twin, p)
    return KernelCheck(np.append(be.to_host(q).ravel(), be.to_host(part).sum()),
                       np.append(qt.ravel(), dot), (1e-5, 1e-5))


def cba_pcg_update(be: Any) -> KernelCheck:
    """``cba_pcg_update``: ``x += alpha p``, ``r -= alpha q`` (exact), then a stalled update
    (``pq <= 0``) that changes nothing and records the iteration."""
    from cbagpu.transport import device_pcg as dp

    rng = np.random.default_rng(6)
    x, r, p, q = (rng.random(777).astype(np.float32) for _ in range(4))
    xd, rd = be.asarray(x.copy()), be.asarray(r.copy())
    s = _scalars(be, S_RZ=2.0, S_RZ0=4.0)
    pd, qd = be.asarray(p), be.asarray(q)
    _launch(be, "cba_pcg_update", 777, dp.update_args(xd, rd, pd, qd, _parts(be, 5.0), 3, s,
                                                      1, 1e-12))
    xt, rt = dp.update_twin(x.copy(), r.copy(), p, q, 2.0, 5.0)
    got = [be.to_host(xd), be.to_host(rd)]
    _launch(be, "cba_pcg_update", 777, dp.update_args(xd, rd, pd, qd, _parts(be, -1.0), 3, s,
                                                      2, 1e-12))
    sh = be.to_host(s)
    got += [be.to_host(xd), np.array([sh[dp.S_STALL], sh[dp.S_STALL_IT], sh[dp.S_RZ_OLD]])]
    return KernelCheck(tuple(got), (xt, rt, xt, np.array([1.0, 2.0, 2.0])), "exact")


def cba_slice_flux(be: Any) -> KernelCheck:
    """``cba_slice_flux``: the fluxes through every layer of a random potential."""
    from cbagpu.transport import device_pcg as dp

    twin, dev, _kern, data = _pcg_case(be)
    x = data["z"]
    out = be.xp.zeros(x.shape[0] + 1, dtype=be.xp.float64)
    _launch(be, "cba_slice_flux", x.shape[0] + 1, dp.slice_flux_args(dev, be.asarray(x), out),
            cap=dp.MAX_PARTS)
    return KernelCheck(be.to_host(out), dp.slice_flux_twin(twin, x), (1e-9, 1e-9))


# ----------------------------------------------------------------------------- measure
def _geodesic(be: Any, dtype: Any, persistent: bool = False) -> KernelCheck:
    """Six sweeps, each from the previous one's result, one plane per launch (or, with
    ``persistent``, each whole sweep in one launch of ``cba_geodesic_sweep_all_*``): equal
    to the twin's arrays and lowered-voxel counts exactly."""
    from cbagpu.measure.geodesic import _sweep_twin, sweep_all_args, sweep_args, sweep_launches

    rng = np.random.default_rng(5)
    shape = (13, 11, 12)  # padded: border planes NaN
    d = (rng.random(shape) * 12).astype(dtype)
    d[rng.random(shape) < 0.3] = np.nan  # obstacles
    d[[0, -1]] = np.nan
    d[:, [0, -1]] = np.nan
    d[:, :, [0, -1]] = np.nan
    suffix = "f64" if np.dtype(dtype) == np.float64 else "f32"
    name = f"cba_geodesic_sweep_all_{suffix}" if persistent else f"cba_geodesic_sweep_{suffix}"
    fn = be.kernel("geodesic.cu", name)
    dev = be.asarray(d.copy())
    bar = be.xp.zeros(2, dtype=be.xp.uint32)
    twin = d.copy()
    got_counts, twin_counts = [], []
    for axis, sign in _SWEEP_DIRECTIONS:
        changed = be.xp.zeros(1, dtype=be.xp.uint64)
        others = [n for a, n in enumerate(shape) if a != axis]
        columns = (others[0] - 2) * (others[1] - 2)
        if persistent:
            blocks = launch_blocks(columns, _THREADS, be.resident_blocks(_THREADS))
            fn((blocks,), (_THREADS,), sweep_all_args(dev, axis, sign, changed, bar))
        else:
            blocks = launch_blocks(columns, _THREADS)
            for first, count in sweep_launches(shape[axis], sign, 1):
                fn((blocks,), (_THREADS,), sweep_args(dev, axis, sign, first, count, changed))
        got_counts.append(int(be.to_host(changed)[0]))
        count = np.zeros(1, np.uint64)
        _sweep_twin(np, twin, axis, sign, count)
        twin_counts.append(int(count[0]))
    return KernelCheck((be.to_host(dev), np.array(got_counts)), (twin, np.array(twin_counts)),
                       "exact")


def geodesic_sweep_f32(be: Any) -> KernelCheck:
    """``cba_geodesic_sweep_f32``: the six sweeps of a round on random float32 distances."""
    return _geodesic(be, np.float32)


def geodesic_sweep_f64(be: Any) -> KernelCheck:
    """``cba_geodesic_sweep_f64``: the six sweeps of a round on random float64 distances."""
    return _geodesic(be, np.float64)


def geodesic_sweep_all_f32(be: Any) -> KernelCheck:
    """``cba_geodesic_sweep_all_f32``: the six sweeps of a round, each in one persistent
    launch (grid barrier between planes), on random float32 distances."""
    return _geodesic(be, np.float32, persistent=True)


def geodesic_sweep_all_f64(be: Any) -> KernelCheck:
    """``cba_geodesic_sweep_all_f64``: as :func:`geodesic_sweep_all_f32` in float64."""
    return _geodesic(be, np.float64, persistent=True)


def _widest(be: Any, dtype: Any) -> KernelCheck:
    """Six widest-path sweeps from the inlet layer: equal to the twin's arrays and raised
    voxel counts exactly (columns are independent)."""
    from cbagpu.measure.widest_path import sweep_args, sweep_twin

    rng = np.random.default_rng(9)
    shape = (14, 9, 11)
    top = 300 if np.dtype(dtype) == np.uint16 else 200
    F = rng.integers(0, top, shape).astype(dtype)
    F[rng.random(shape) < 0.25] = 0  # outside the phase
    W = np.zeros_like(F)
    W[0] = F[0]
    name = "cba_widest_sweep_u16" if np.dtype(dtype) == np.uint16 else "cba_widest_sweep_u8"
    fn = be.kernel("bottleneck.cu", name)
    Fd, Wd = be.asarray(F), be.asarray(W.copy())
    got_counts, twin_counts = [], []
    for axis, sign in _SWEEP_DIRECTIONS:
        changed = be.xp.zeros(1, dtype=be.xp.uint64)
        others = [n for a, n in enumerate(shape) if a != axis]
        blocks = launch_blocks(others[0] * others[1], _THREADS)
        fn((blocks,), (_THREADS,), sweep_args(Fd, Wd, axis, sign, changed))
        got_counts.append(int(be.to_host(changed)[0]))
        count = np.zeros(1, np.uint64)
        sweep_twin(np, F, W, axis, sign, count)
        twin_counts.append(int(count[0]))
    return KernelCheck((be.to_host(Wd), np.array(got_counts)), (W, np.array(twin_counts)),
                       "exact")


def widest_sweep_u8(be: Any) -> KernelCheck:
    """``cba_widest_sweep_u8``: a round of sweeps on a uint8 level map."""
    return _widest(be, np.uint8)


def widest_sweep_u16(be: Any) -> KernelCheck:
    """``cba_widest_sweep_u16``: a round of sweeps on a uint16 level map (levels > 255)."""
    return _widest(be, np.uint16)
