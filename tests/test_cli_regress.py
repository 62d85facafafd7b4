"""``cbagpu regress``: refit Eqs. 28-29 from a sweep's results.csv (issue 18, item 3)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cbagpu.cli import main
from cbagpu.studies.refit import read_results, regress
from cbagpu.studies.regression import fit_power_law, fit_power_law_linear
from cbagpu.studies.sweep import _csv_text, fit_rows

PAPER = (2.1939, 0.0, 5.0152)


def _rows(seed: int = 0, n: int = 24) -> list[dict]:
    """Sweep-like rows: per seed and lambda_x a solid and a pore row whose M follows Eq. 28
    with the paper's coefficients times a 3 % multiplicative scatter (the solid phase's M
    ~100x below the pore phase's, as in a Table 3 sweep)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        lam = [1e-10, 2e-10, 3e-10][i % 3]
        for ph, eps0, tau0 in (("solid", 0.33, 2.2), ("pore", 0.67, 1.25)):
            eps = float(eps0 + rng.normal(0, 0.02))
            tau = float(tau0 + rng.normal(0, 0.05 * tau0))
            beta = float(rng.uniform(0.2, 0.5))
            M = float(eps ** PAPER[0] / tau ** PAPER[2] * np.exp(rng.normal(0, 0.03)))
            rows.append(dict(lambda_x=lam, seed=i, phase=ph, epsilon=eps, constrictivity=beta,
                             geodesic_tortuosity=tau, sigma_eff=M, tau_eff=eps / M, M=M,
                             V1=0.1, graphite_fraction=0.1, percolates=True, converged=True))
    rows.append(dict(lambda_x=1e-10, seed=99, phase="pore", epsilon=0.2, constrictivity=0.0,
                     geodesic_tortuosity=float("inf"), sigma_eff=0.0, tau_eff=float("inf"),
                     M=0.0, V1=0.1, graphite_fraction=0.1, percolates=False, converged=True))
    return rows


def test_regress_equals_fit_rows_and_reports_both_forms(tmp_path, capsys):
    rows = _rows()
    path = tmp_path / "results.csv"
    path.write_text(_csv_text(rows, ["lambda_x"]))
    vary, back = read_results(path)
    assert vary == ["lambda_x"] and len(back) == len(rows)
    assert back[-1]["geodesic_tortuosity"] == float("inf") and back[-1]["percolates"] is False
    ref = fit_rows(rows)
    res = regress(path, out=tmp_path / "fits.json")
    assert json.loads((tmp_path / "fits.json").read_text())["fits"]["both"]["a"] == \
        pytest.approx(ref["both"]["a"], rel=1e-12)
    for group in ("solid", "pore", "both"):
        for form in ("eq28", "eq28_log", "eq28_unconstrained"):
            for k in "abc":
                assert res.fits[group][form][k]["value"] == pytest.approx(
                    ref[group][form][k]["value"], rel=1e-12, abs=1e-15)
        assert res.fits[group]["eq28"]["space"] == "linear"
        assert res.fits[group]["eq28_log"]["space"] == "log"
    # independent of fit_rows: the pooled default is the linear-space fit of all
    # percolating rows, the log form the log-space one
    use = [r for r in rows if r["percolates"]]
    cols = [np.array([r[k] for r in use]) for k in
            ("epsilon", "constrictivity", "geodesic_tortuosity", "M")]
    lin, log = fit_power_law_linear(*cols), fit_power_law(*cols)
    assert res.fits["both"]["eq28"]["a"]["value"] == pytest.approx(lin.a.value, rel=1e-9)
    assert res.fits["both"]["eq28_log"]["c"]["value"] == pytest.approx(log.c.value, rel=1e-9)
    assert res.fits["both"]["eq28"]["n_excluded"] == 1  # the non-percolating row
    # both forms recover the generating coefficients (b at its bound or near 0)
    for f in (lin, log):
        assert f.a.ci_low < PAPER[0] < f.a.ci_high and f.c.ci_low < PAPER[2] < f.c.ci_high
        assert f.b.value < 0.1
    # the command line prints every form, marks the default, and --json gives the same
    assert main(["regress", str(path)]) == 0
    text = capsys.readouterr().out
    assert "on M, a,b,c >= 0" in text and "on log M, a,b,c >= 0" in text
    assert text.count("<- default") == 1 and "Eq. 29" in text
    assert main(["regress", str(path), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["default"] == {"group": "both", "fit": "eq28", "space": "linear"}
    assert js["fits"]["pore"]["eq28_log"]["c"]["value"] == pytest.approx(
        ref["pore"]["eq28_log"]["c"]["value"], rel=1e-12)


def test_regress_refuses_what_is_not_a_sweep_table(tmp_path, capsys):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["regress", str(bad)]) == 2
    assert "not a sweep's results.csv" in capsys.readouterr().err
    assert main(["regress", str(tmp_path / "missing.csv")]) == 2
    rows = _rows(n=3)
    good = tmp_path / "r.csv"
    good.write_text(_csv_text(rows, ["lambda_x"]).replace("true", "maybe", 1))
    with pytest.raises(ValueError, match="true or false"):
        regress(good)
