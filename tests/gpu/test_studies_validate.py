"""Validation study on the GPU (skipped without CuPy and a GPU): the same study with
backend="cupy" and backend="numpy" (in-process loop) gives the same table. Image rows are
descriptors of identical labels (agree to float rounding); model rows come from realizations
that are identical except, rarely, at voxels where the field is within ~1e-5 of mu."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.studies.validate import DESCRIPTORS, PHASES, validate

pytestmark = pytest.mark.gpu

PARAMS = preset("paper")


def _close(a: float, b: float, rel: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == pytest.approx(b, rel=rel, abs=1e-12)


def test_cupy_and_numpy_studies_agree(tmp_path):
    img = generate(PARAMS, (48, 48, 48), 40.0, 3, backend="numpy")
    kw = {"realizations": 2, "factors": (1, 2), "seed": 5, "workers": 1}
    a = validate(img, 40.0, PARAMS, backend="numpy", **kw)
    b = validate(img, 40.0, PARAMS, backend="cupy", out_dir=tmp_path / "gpu", **kw)
    assert b.backend == "cupy"
    for f in (1, 2):
        same = [np.array_equal(generate(PARAMS, (48 // f,) * 3, 40.0 * f, k, backend="numpy"),
                               generate(PARAMS, (48 // f,) * 3, 40.0 * f, k, backend="cupy"))
                for k in (5, 6)]
        for ph in PHASES:
            for name in DESCRIPTORS:
                ra, rb = a.scalar(f, ph, name), b.scalar(f, ph, name)
                assert _close(rb.image, ra.image, 1e-6), (f, ph, name)
                for k in range(2):
                    va, vb = ra.model_values[k], rb.model_values[k]
                    if same[k]:
                        assert _close(vb, va, 1e-6), (f, ph, name, k)
                    elif name == "volume_fraction":
                        assert abs(vb - va) <= 1e-4
            ca, cb = a.curve(f, ph, "cpsd"), b.curve(f, ph, "cpsd")
            np.testing.assert_allclose(cb.image, ca.image, rtol=1e-6, atol=1e-12)
            ca, cb = a.curve(f, ph, "covariance_centred"), b.curve(f, ph, "covariance_centred")
            np.testing.assert_allclose(cb.image, ca.image, rtol=1e-5, atol=1e-7)
    assert (tmp_path / "gpu" / "validation.csv").is_file()
