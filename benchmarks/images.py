"""Benchmark inputs: paper realizations generated once per machine and cached as .npy."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np


def paper_realization(n: int, voxel_nm: float, seed: int = 1) -> np.ndarray:
    """``generate(preset("paper"), (n,)*3, voxel_nm, seed)`` on the NumPy backend, made in a
    separate process (so the generator's memory does not count in a case's peak) and cached
    in the temporary folder, written atomically."""
    path = os.path.join(tempfile.gettempdir(),
                        f"cbagpu-bench-paper-{n}-{voxel_nm:g}nm-seed{seed}.npy")
    if not os.path.exists(path):
        code = (
            "import numpy as np, os; from cbagpu import generate, preset; "
            f"a = generate(preset('paper'), ({n}, {n}, {n}), {voxel_nm}, {seed}, "
            "backend='numpy'); "
            f"np.save({path!r} + '.tmp.npy', a); os.replace({path!r} + '.tmp.npy', {path!r})"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
    return np.load(path)
