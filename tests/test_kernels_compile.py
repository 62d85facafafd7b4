"""Every CUDA source compiles to PTX with nvcc (CI has nvcc but no GPU)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from cbagpu.backend.kernels import NVRTC_OPTIONS, kernel_dir, kernel_files, kernel_source
from cbagpu.backend.registry import REGISTRY

NVCC = shutil.which("nvcc")


def test_kernel_sources_are_found():
    names = {p.name for p in kernel_files()}
    assert {"noise.cu", "raster.cu", "combine.cu"} <= names
    assert "white_noise" in kernel_source("noise.cu")
    assert kernel_dir().is_dir()


@pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH")
@pytest.mark.parametrize("path", kernel_files(), ids=lambda p: p.name)
def test_kernel_compiles_to_ptx(path, tmp_path):
    out = tmp_path / (path.stem + ".ptx")
    fmad = [o for o in NVRTC_OPTIONS if o.startswith("--fmad")]
    res = subprocess.run(
        [NVCC, "--ptx", "-arch=sm_80", *fmad, "-o", str(out), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    assert ".entry" in text
    for e in REGISTRY:  # every registered kernel of this file is an entry point of the PTX
        if e.file == path.name:
            assert f".entry {e.name}(" in text, e.name
    # no fused multiply-add may appear in the float64 rasteriser (bit-identical twins)
    if path.name == "raster.cu":
        assert "fma.rn.f64" not in text
