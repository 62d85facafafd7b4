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


def paper_store(n: int, voxel_nm: float, seed: int = 1, chunk: int = 128) -> str:
    """The paper realization of :func:`paper_realization` as a Zarr label store with chunks
    of ``chunk`` voxels (attributes voxel_size, seed, chunks), cached in the temporary
    folder. Written by a separate process, so the case that reads it never holds the
    volume: from the cached ``.npy`` up to 512^3, by ``cbagpu generate --chunks`` (block
    by block, never the whole volume in memory) above."""
    path = os.path.join(tempfile.gettempdir(),
                        f"cbagpu-bench-paper-{n}-{voxel_nm:g}nm-seed{seed}-chunks{chunk}.zarr")
    if os.path.exists(path):
        return path
    if n > 512:
        subprocess.run([sys.executable, "-m", "cbagpu", "generate", "--preset", "paper",
                        "--shape", str(n), str(n), str(n), "--voxel-size", f"{voxel_nm:g}",
                        "--seed", str(seed), "--out", path, "--chunks", str(chunk),
                        "--quiet"], check=True)
        return path
    paper_realization(n, voxel_nm, seed)  # the cached .npy (made in its own process)
    npy = os.path.join(tempfile.gettempdir(),
                       f"cbagpu-bench-paper-{n}-{voxel_nm:g}nm-seed{seed}.npy")
    code = (
        "import numpy as np, os, shutil; from cbagpu.io.zarr_store import create_label_store, "
        "zarr_module; "
        f"a = np.load({npy!r}); tmp = {path!r} + '.tmp'; shutil.rmtree(tmp, True); "
        f"create_label_store(tmp, a.shape, ({chunk},) * 3, dict(voxel_size={voxel_nm}, "
        f"seed={seed}, preset='paper', generator='benchmarks.images', chunks=[{chunk}] * 3)); "
        "zarr_module().open_array(store=tmp, mode='r+')[...] = a; "
        f"os.replace(tmp, {path!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    return path
