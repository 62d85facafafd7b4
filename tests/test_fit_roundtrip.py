"""Round trip of the whole calibration (paper Section 3.2): realizations of two non-paper
parameter sets at 40 nm (160³ windows) are fitted back with ``cbagpu.fit.fit``.

Slowest test of the fit files: ~30 s per set on the 2-core CPU (under load; ~65 s for the file).

Bounds (issue 4) and where they come from:
* V and V1 of the fitted model vs the image: V is matched by construction (Eq. 25 with the
  image's V), V1 by the Nelder–Mead fit of V̂1 (relative 1e-6), so both are tested far
  tighter than the issue's 2 %: 1e-6 and 1e-3.
* S_V of a realization of the fitted model vs the image's (same estimator, the image's
  seed, i.e. common random numbers, so the window's own noise largely cancels): 3 %.
  Measured on seeds 11, 12, 13: |error| <= 2.2 %.
* S1/V1 (grain shape) vs the true parameters: ~40–70 grains in the window, the half-axes
  have CV 1/sqrt(α1/s) ≈ 0.22, so the S/V ratio has a sampling sd of ~0.22/sqrt(40) ≈ 3.5 %:
  10 % is ~3 sd.  Measured <= 7.3 %.
* |μ̂ − μ| <= 0.05: V̂2 of the ROI has, for the long-range Cauchy covariance, an sd of
  about sqrt(4π) φ(μ)/(η s L) for a ROI of ~L³ voxels, i.e. sd(μ̂) ≈ 3.5/(η s L) ≈ 0.04 at
  η s = 0.8, L ≈ 100: the issue's bound is ~1.2 sd of one window and cannot be tightened.
  Measured <= 0.035.
* η within 10 % (measured <= 4.1 %, systematically 1–4 % low); V3 within 25 %: V3 =
  1 − CBD/(V2(1 − V1)) inherits μ̂'s error amplified by (1 − V3)/V3 (measured <= 17 %).
"""

from __future__ import annotations

import math
import warnings

import pytest

from cbagpu import CBAParams, generate, model_theory
from cbagpu.fit import fit
from cbagpu.measure.minkowski import intrinsic_volumes

S = 40.0
N = 160
SEED = 11


def _with_v3(p: CBAParams, v3: float) -> CBAParams:
    return p.replace(lambda_y=-math.log1p(-v3) * p.theta**3 / (8 * math.pi))


SETS = {
    # thick plates (half-axes 200 x 600 nm), coarse-ish field, V3 = 0.15
    "A": _with_v3(CBAParams(lambda_x=3e-10, alpha1=800.0, alpha2=2400.0, gamma=4.0, mu=0.2,
                            eta=0.02, theta=0.0125, lambda_y=0.0), 0.15),
    # wider flakes (250 x 1000 nm), sparser CBD (μ = 0.5), V3 = 0.2
    "B": _with_v3(CBAParams(lambda_x=8e-11, alpha1=750.0, alpha2=3000.0, gamma=3.0, mu=0.5,
                            eta=0.02, theta=0.0118, lambda_y=0.0), 0.2),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SETS))
def test_round_trip(name: str) -> None:
    true = SETS[name]
    lab = generate(true, (N, N, N), S, SEED, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(lab, S, realizations=2, seed=5, backend="numpy", method="roi")
    q = res.params
    assert q.calibrated_voxel_size == S
    th_true = model_theory(true, S)
    th_fit = model_theory(q, S)
    v_img = float((lab > 0).mean())
    v1_img = res.report.graphite.target.V1
    assert abs(th_fit.V / v_img - 1) < 1e-6
    assert abs(th_fit.V1 / v1_img - 1) < 1e-3
    sv_img = intrinsic_volumes(lab > 0, S, "numpy").S_V
    sv_fit = intrinsic_volumes(generate(q, (N, N, N), S, SEED, backend="numpy") > 0, S,
                               "numpy").S_V
    assert abs(sv_fit / sv_img - 1) < 0.03
    assert abs((th_fit.S1 / th_fit.V1) / (th_true.S1 / th_true.V1) - 1) < 0.10
    assert abs(q.mu - true.mu) <= 0.05
    assert abs(q.eta / true.eta - 1) < 0.10
    assert abs(th_fit.V3 / th_true.V3 - 1) < 0.25
    # the report: Table 1, Figure 4, Figure A2, Table 2, timings
    d = res.to_dict()
    rep = d["report"]
    assert set(rep["table1"]) == {"V1", "S1", "K1", "N1"}
    assert len(rep["grf"]["rho_hat"]) == len(rep["grf"]["rho_fit"]) > 3
    assert len(rep["pores"]["tried"]) >= 7 and rep["pores"]["realizations"] == 2
    assert [r["name"] for r in rep["table2"]][0] == "lambda_x"
    assert set(rep["seconds"]) == {"graphite", "grf", "pores", "total"}
    for b in res.report.grf.boxes:
        assert not (lab[b.slices] == 2).any()
