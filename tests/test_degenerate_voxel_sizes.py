"""Voxel sizes at which the model degenerates, or whose field kernel alone would not fit,
are refused before anything is allocated (issue 14, item 2)."""

from __future__ import annotations

import time

import pytest

from cbagpu import generate, preset
from cbagpu.cli import main
from cbagpu.errors import InsufficientMemoryError, InvalidInputError
from cbagpu.simulate.grf import field_kernel, kernel_build_bytes, truncation_radius
from cbagpu.simulate.realization import (
    MIN_SCALE_VOXELS,
    check_voxel_model,
    estimate_memory,
    kernel_geometry,
)

PAPER = preset("paper")


@pytest.mark.parametrize("voxel_size, what", [
    (20000.0, "correlation length"),
    (1e7, "correlation length"),
    (1e-300, r"2\^31-voxel window limit"),
])
def test_degenerate_voxel_sizes_are_refused_with_the_reason(voxel_size, what):
    t = time.perf_counter()
    with pytest.raises(InvalidInputError, match=what):
        generate(PAPER, (16, 16, 16), voxel_size, 1, backend="numpy")
    assert time.perf_counter() - t < 2.0  # refused, not computed


def test_each_scale_of_the_model_is_checked():
    # graphite half-axis alone below the limit: huge gamma, field and pores fine
    thin = PAPER.replace(gamma=1e6)
    with pytest.raises(InvalidInputError, match="graphite"):
        check_voxel_model(thin, 20.0)
    tiny_pores = PAPER.replace(theta=1e3)
    with pytest.raises(InvalidInputError, match="pores"):
        check_voxel_model(tiny_pores, 20.0)
    # the paper's model is fine from 10 to 320 nm (MIN_SCALE_VOXELS is below 0.25)
    assert MIN_SCALE_VOXELS < 0.25
    for s in (10.0, 20.0, 80.0, 320.0):
        check_voxel_model(PAPER, s)


def test_a_kernel_too_large_for_memory_is_refused_before_it_is_built(capsys):
    t = time.perf_counter()
    code = main(["generate", "--voxel-size", "1", "--shape", "16", "16", "16", "--seed", "1",
                 "--out", "never.npy", "--quiet", "--backend", "numpy"])
    err = capsys.readouterr().err
    assert code == 2 and "needs about" in err and "TiB" in err and err.count("\n") == 1
    assert time.perf_counter() - t < 5.0
    with pytest.raises(InsufficientMemoryError):
        generate(PAPER, (16, 16, 16), 1.0, 1, backend="numpy")


def test_geometry_and_build_estimate_match_the_kernel():
    eta = PAPER.to_voxel(80.0).eta
    g = kernel_geometry(eta)
    k = field_kernel(eta)
    assert (g.radius, g.fft_size) == (k.radius, k.fft_size) == (truncation_radius(eta),
                                                                 k.fft_size)
    est = estimate_memory((8, 8, 8), g, "numpy")
    assert est.host >= kernel_build_bytes(g.radius)
    assert kernel_build_bytes(205) > 1.5 * 2**30  # 1.75 GB peak RSS measured at 10 nm
