"""GPU check of the calibration (skipped without CuPy and a GPU): ``cbagpu.fit.fit`` on the
CuPy backend must reproduce the NumPy backend.  The graphite densities (configuration
histogram), the ROI (exact EDTs) and the Ξ2 fit are identical up to float rounding; the CPSD
curves of the realizations differ only where the float32 field lies within rounding of μ,
so the CPSD distances agree to ~1e-3 and the chosen θ to a small fraction of the grid step."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from cbagpu import CBAParams, generate
from cbagpu.backend import get_backend
from cbagpu.fit import fit
from cbagpu.fit.graphite import estimate_graphite_densities

pytestmark = pytest.mark.gpu
S = 40.0
P = CBAParams(lambda_x=3e-10, alpha1=800.0, alpha2=2400.0, gamma=4.0, mu=0.2, eta=0.02,
              theta=0.0125, lambda_y=-math.log(0.85) * 0.0125**3 / (8 * math.pi))


@pytest.fixture(scope="module")
def labels():
    return generate(P, (96, 96, 96), S, 4, backend="numpy")


def test_graphite_densities_identical(labels):
    cp = get_backend("cupy")
    a = estimate_graphite_densities(labels == 2, S, "numpy")
    b = estimate_graphite_densities(cp.asarray(labels) == 2, S, cp)
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_fit_backends_agree(labels):
    cp = get_backend("cupy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = fit(labels, S, realizations=2, seed=1, backend="numpy", method="roi")
        b = fit(cp.asarray(labels), S, realizations=2, seed=1, backend=cp, method="roi")
    assert b.report.backend == "cupy"
    for k in ("lambda_x", "alpha1", "alpha2", "gamma"):
        assert getattr(b.params, k) == pytest.approx(getattr(a.params, k), rel=1e-9)
    assert [str(x) for x in a.report.grf.boxes] == [str(x) for x in b.report.grf.boxes]
    assert b.report.grf.large_pore_radius == a.report.grf.large_pore_radius
    assert b.params.eta == pytest.approx(a.params.eta, rel=1e-3)
    assert b.params.mu == pytest.approx(a.params.mu, abs=1e-3)
    pa, pb = a.report.pores, b.report.pores
    n = min(7, len(pa.thetas), len(pb.thetas))  # the paper's grid comes first on both
    np.testing.assert_allclose(pa.thetas[:n], pb.thetas[:n])
    np.testing.assert_allclose(pa.distances[:n], pb.distances[:n], rtol=2e-2)
    assert b.params.theta == pytest.approx(a.params.theta, rel=0.05)


def test_whole_fit_backends_agree(labels):
    # method "whole": the masked coverage (FFT in double) is the only backend-dependent step
    from cbagpu.fit.whole import fit_whole, masked_cbd_coverage

    cp = get_backend("cupy")
    ca = masked_cbd_coverage(labels, S, 24, "numpy")
    cb = masked_cbd_coverage(cp.asarray(labels), S, 24, cp)
    np.testing.assert_allclose(cb, ca, rtol=1e-9, atol=1e-12)
    a, b = fit_whole(labels, S, "numpy"), fit_whole(cp.asarray(labels), S, cp)
    for k in ("mu", "eta", "theta", "lambda_y"):
        assert getattr(b, k) == pytest.approx(getattr(a, k), rel=1e-6)
