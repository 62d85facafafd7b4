"""The CUDA kernels of ``kernels/*.cu`` compiled as host C++, and a backend that launches them.

:class:`HostKernelBackend` is a :class:`~cbagpu.backend.numpy_backend.NumPyBackend` whose
:attr:`runs_kernels` is True: every kernel launch of the GPU route goes to the same CUDA
source compiled for the host (``kernels/cuda_host_shim.h``: one "thread" whose grid-stride
loops visit every work item in turn; ``-ffp-contract=off`` matches the kernels'
``--fmad=false``), called through :mod:`ctypes` with the argument tuple a CuPy launch would
get. The GPU route's Python code (launch geometry, argument builders, rounds until a sweep
lowers nothing) thus runs and is tested on a machine without a GPU. It is a testing and
accounting tool: one host thread, far slower than the twins.

Needs a C++ compiler (``g++`` or ``c++`` on ``PATH``); without one, constructing the backend
raises :class:`~cbagpu.errors.BackendUnavailableError`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from cbagpu.backend.kernels import kernel_dir, kernel_files, kernel_source
from cbagpu.backend.numpy_backend import NumPyBackend
from cbagpu.errors import BackendUnavailableError, InvalidInputError

SHIM = "cuda_host_shim.h"

_CTYPES = {
    np.dtype(np.int32): ctypes.c_int32,
    np.dtype(np.int64): ctypes.c_int64,
    np.dtype(np.uint8): ctypes.c_uint8,
    np.dtype(np.uint16): ctypes.c_uint16,
    np.dtype(np.uint32): ctypes.c_uint32,
    np.dtype(np.uint64): ctypes.c_uint64,
    np.dtype(np.float32): ctypes.c_float,
    np.dtype(np.float64): ctypes.c_double,
}


def compiler() -> str | None:
    """The host C++ compiler used for the kernels, or None."""
    return shutil.which("g++") or shutil.which("c++")


def compile_host_kernels(out_dir: str | Path | None = None) -> dict[str, ctypes.CDLL]:
    """Compile every ``kernels/*.cu`` as a host shared library; ``{stem: CDLL}``.

    Libraries are cached in ``out_dir`` (default: a folder in the system's temporary
    directory) under the hash of their source, so a second call compiles nothing.
    """
    cxx = compiler()
    if cxx is None:
        raise BackendUnavailableError("no C++ compiler (g++ or c++) on PATH to build the host "
                                      "kernels")
    shim = kernel_dir() / SHIM
    root = Path(out_dir) if out_dir is not None else (
        Path(tempfile.gettempdir()) / "cbagpu-host-kernels")
    root.mkdir(parents=True, exist_ok=True)
    libs: dict[str, ctypes.CDLL] = {}
    for cu in kernel_files():
        text = f'#include "{shim}"\n' + kernel_source(cu.name)
        digest = hashlib.sha256((text + shim.read_text()).encode()).hexdigest()[:16]
        lib = root / f"lib{cu.stem}-{digest}.so"
        if not lib.is_file():
            src = root / f"{cu.stem}-{digest}.cpp"
            src.write_text(text)
            tmp = lib.with_suffix(f".{os.getpid()}.tmp")
            res = subprocess.run(
                [cxx, "-O2", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC",
                 "-o", str(tmp), str(src)],
                capture_output=True, text=True, timeout=300,
            )
            if res.returncode != 0:
                raise BackendUnavailableError(f"host compilation of {cu.name} failed:\n"
                                              f"{res.stderr}")
            tmp.replace(lib)
        libs[cu.stem] = ctypes.CDLL(str(lib))
    return libs


def call(fn: Any, args: tuple[Any, ...]) -> None:
    """Call a host-compiled kernel with the argument tuple a CuPy launch would get (arrays
    as pointers to their C-contiguous data, scalars by their NumPy type)."""
    cargs = []
    for a in args:
        if isinstance(a, np.ndarray):
            if not a.flags.c_contiguous:
                raise InvalidInputError("host kernels take C-contiguous arrays")
            cargs.append(ctypes.c_void_p(a.ctypes.data))
        else:
            cargs.append(_CTYPES[np.asarray(a).dtype](a))
    fn.restype = None
    fn(*cargs)


class HostKernelBackend(NumPyBackend):
    """NumPy arrays and SciPy, but :meth:`kernel` launches the host-compiled CUDA kernels
    (grid and block sizes are ignored: one host thread walks every work item)."""

    runs_kernels = True

    def __init__(self, workers: int | None = None, libs: dict[str, Any] | None = None) -> None:
        super().__init__(workers)
        self.libs = libs if libs is not None else compile_host_kernels()

    def kernel(self, filename: str, name: str) -> Any:
        fn = getattr(self.libs[Path(filename).stem], name)

        def launch(grid: Any, block: Any, args: tuple[Any, ...], **kwargs: Any) -> None:
            call(fn, args)

        return launch

    def __repr__(self) -> str:
        return "<cbagpu backend numpy with host-compiled CUDA kernels>"
