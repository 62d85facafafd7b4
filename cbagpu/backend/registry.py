"""The kernel registry: every ``__global__`` function of ``kernels/*.cu`` with its twin.

One :class:`KernelEntry` per CUDA entry point names

* ``file`` and ``name``: where the kernel is (``kernels/<file>``, ``extern "C" __global__``);
* ``twin``: the NumPy/Numba function computing the same result where a backend does not
  launch kernels (``Backend.runs_kernels`` is False);
* ``args``: the builder of the argument tuple of a launch (shared by the CuPy launch and
  the host-compiled kernels of :mod:`cbagpu.backend.host_kernels`);
* ``example``: a small self-check in :mod:`cbagpu.backend.kernel_examples` that builds an
  input, runs the kernel on a backend that launches kernels and the twin on the host, and
  returns both outputs with the tolerance of their comparison
  (:class:`~cbagpu.backend.kernel_examples.KernelCheck`).

Twins, builders and examples are named by ``"module:attribute"`` strings and imported when
used (:func:`resolve`): the algorithm packages import the backend, so the backend package
must not import them back. ``tests/test_kernels_registry.py`` runs every entry's example on
the host-compiled route (and on CUDA where a GPU exists), checks that each string resolves,
and fails when a ``.cu`` file has a kernel that is not listed here
(:func:`kernel_names_in_files`).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cbagpu.backend.kernels import kernel_files
from cbagpu.errors import InvalidInputError

__all__ = [
    "REGISTRY",
    "KernelEntry",
    "entry",
    "kernel_names_in_files",
    "kernel_names_in_source",
    "resolve",
]

_GLOBAL = re.compile(r'extern\s+"C"\s+__global__\s+[\w\s\*]*?\b(\w+)\s*\(')
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


@dataclass(frozen=True)
class KernelEntry:
    """One CUDA entry point and its twin (see the module docstring).

    Attributes
    ----------
    file : str
        Source file in ``kernels/`` (e.g. ``"noise.cu"``).
    name : str
        The ``extern "C" __global__`` function.
    twin : str
        ``"module:attribute"`` of the NumPy/Numba twin.
    args : str
        ``"module:attribute"`` of the launch's argument builder.
    example : str
        ``"module:attribute"`` of the self-check ``example(backend) -> KernelCheck``.
    """

    file: str
    name: str
    twin: str
    args: str
    example: str

    def run_example(self, backend: Any) -> Any:
        """Run this kernel's example on ``backend`` (one whose ``runs_kernels`` is True)."""
        if not backend.runs_kernels:
            raise InvalidInputError(
                f"{backend!r} does not launch kernels: its run of {self.name} would be the twin"
            )
        return resolve(self.example)(backend)


def resolve(path: str) -> Any:
    """The object named by ``"package.module:attr.sub"`` (imported now)."""
    module, sep, attr = path.partition(":")
    if not sep or not attr:
        raise InvalidInputError(f"expected 'module:attribute', got {path!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


_SIM = "cbagpu.simulate"
_MEAS = "cbagpu.measure"
_TR = "cbagpu.transport"
_EX = "cbagpu.backend.kernel_examples"
_DP = "cbagpu.transport.device_pcg"

#: Every kernel of ``kernels/*.cu``, in file order.
REGISTRY: tuple[KernelEntry, ...] = (
    KernelEntry("bottleneck.cu", "cba_widest_sweep_u8", f"{_MEAS}.widest_path:sweep_twin",
                f"{_MEAS}.widest_path:sweep_args", f"{_EX}:widest_sweep_u8"),
    KernelEntry("bottleneck.cu", "cba_widest_sweep_u16", f"{_MEAS}.widest_path:sweep_twin",
                f"{_MEAS}.widest_path:sweep_args", f"{_EX}:widest_sweep_u16"),
    KernelEntry("combine.cu", "threshold_into_labels", f"{_SIM}.realization:_threshold_numpy",
                f"{_SIM}.realization:threshold_kernel_args", f"{_EX}:threshold_into_labels"),
    KernelEntry("geodesic.cu", "cba_geodesic_sweep_f32", f"{_MEAS}.geodesic:_sweep_twin",
                f"{_MEAS}.geodesic:sweep_args", f"{_EX}:geodesic_sweep_f32"),
    KernelEntry("geodesic.cu", "cba_geodesic_sweep_f64", f"{_MEAS}.geodesic:_sweep_twin",
                f"{_MEAS}.geodesic:sweep_args", f"{_EX}:geodesic_sweep_f64"),
    KernelEntry("geodesic.cu", "cba_geodesic_sweep_all_f32", f"{_MEAS}.geodesic:_sweep_twin",
                f"{_MEAS}.geodesic:sweep_all_args", f"{_EX}:geodesic_sweep_all_f32"),
    KernelEntry("geodesic.cu", "cba_geodesic_sweep_all_f64", f"{_MEAS}.geodesic:_sweep_twin",
                f"{_MEAS}.geodesic:sweep_all_args", f"{_EX}:geodesic_sweep_all_f64"),
    KernelEntry("noise.cu", "white_noise", f"{_SIM}.noise:white_noise_numpy",
                f"{_SIM}.noise:noise_kernel_args", f"{_EX}:white_noise"),
    KernelEntry("raster.cu", "paint_spheroid_rows", f"{_SIM}.raster:paint_rows_numpy",
                f"{_SIM}.raster:paint_kernel_args", f"{_EX}:paint_spheroid_rows"),
    KernelEntry("raster.cu", "paint_ball_rows", f"{_SIM}.raster:paint_rows_numpy",
                f"{_SIM}.raster:paint_kernel_args", f"{_EX}:paint_ball_rows"),
    KernelEntry("transport.cu", "cba_apply_f32", f"{_TR}.operator:Level.apply",
                f"{_TR}.cuda_kernels:apply_args", f"{_EX}:cba_apply_f32"),
    KernelEntry("transport.cu", "cba_apply_f64", f"{_TR}.operator:Level.apply",
                f"{_TR}.cuda_kernels:apply_args", f"{_EX}:cba_apply_f64"),
    KernelEntry("transport.cu", "cba_gauss_seidel", f"{_TR}.operator:Level.gauss_seidel",
                f"{_TR}.cuda_kernels:gauss_seidel_args", f"{_EX}:cba_gauss_seidel"),
    KernelEntry("transport.cu", "cba_residual_restrict",
                f"{_TR}.operator:Level.residual_restricted", f"{_TR}.cuda_kernels:restrict_args",
                f"{_EX}:cba_residual_restrict"),
    KernelEntry("transport.cu", "cba_add_prolonged", f"{_TR}.operator:Level.add_prolonged",
                f"{_TR}.cuda_kernels:prolong_args", f"{_EX}:cba_add_prolonged"),
    *(KernelEntry("transport.cu", name, f"{_DP}:{twin}", f"{_DP}:{args}", f"{_EX}:{name}")
      for name, twin, args in (
          ("cba_gs_zero_first", "gs_zero_first_twin", "gs_zero_first_args"),
          ("cba_prolong_gs", "prolong_gs_twin", "prolong_gs_args"),
          ("cba_gs_last", "gs_last_twin", "gs_last_args"),
          ("cba_dense_solve", "dense_solve_twin", "dense_solve_args"),
          ("cba_pcg_direction", "direction_twin", "direction_args"),
          ("cba_pcg_apply_dot", "apply_dot_twin", "apply_dot_args"),
          ("cba_pcg_update", "update_twin", "update_args"),
          ("cba_slice_flux", "slice_flux_twin", "slice_flux_args"),
          ("cba_vcycle_coarse", "vcycle_coarse_twin", "vcycle_coarse_args"),
      )),
)


def entry(name: str) -> KernelEntry:
    """The registry entry of the kernel called ``name``."""
    for e in REGISTRY:
        if e.name == name:
            return e
    raise InvalidInputError(f"no kernel {name!r} in the registry")


def kernel_names_in_source(text: str) -> list[str]:
    """Names of the ``extern "C" __global__`` functions defined in CUDA source ``text``
    (comments are ignored), in order."""
    return _GLOBAL.findall(_COMMENTS.sub("", text))


def kernel_names_in_files(paths: list[Path] | None = None) -> dict[str, str]:
    """``{kernel name: file name}`` for every ``extern "C" __global__`` function of the
    CUDA sources (default: every ``kernels/*.cu``)."""
    out: dict[str, str] = {}
    for path in kernel_files() if paths is None else paths:
        for name in kernel_names_in_source(Path(path).read_text()):
            out[name] = Path(path).name
    return out
