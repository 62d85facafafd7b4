"""``sweep`` and ``cbagpu sweep`` (issue 6, items 2-4) at tiny sizes: 40^3 at 40 nm,
2 values of lambda_x x 2 realizations (4 tasks of ~1.5 s on this CPU)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cbagpu import generate, model_theory, preset
from cbagpu.studies import sweep as sweep_mod
from cbagpu.studies.regression import fit_linear, fit_power_law, fit_power_law_linear
from cbagpu.studies.sweep import COLUMNS, EXTRA_COLUMNS, parse_vary, sweep

BASE = preset("paper")
VARY = {"lambda_x": [2.21e-11, 1.09e-10]}
KW = dict(realizations=2, shape=(40, 40, 40), voxel_size=40.0, seed=3, backend="numpy")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted in-process sweep."""
    d = tmp_path_factory.mktemp("sweepA")
    res = sweep(BASE, VARY, **KW, out_dir=d, workers=1)
    return d, res


def test_table_and_fits_content(reference):
    d, res = reference
    rows = _read_csv(d / "results.csv")
    assert list(rows[0]) == ["lambda_x", *COLUMNS, *EXTRA_COLUMNS]
    assert len(rows) == 2 * 2 * 2 and res.n_tasks == 4 and res.n_computed == 4
    assert [(r["lambda_x"], r["seed"], r["phase"]) for r in rows[:4]] == [
        ("2.21e-11", "3", "solid"), ("2.21e-11", "3", "pore"),
        ("2.21e-11", "4", "solid"), ("2.21e-11", "4", "pore")]
    sig = {"solid": {2: 1.0, 1: 0.01, 0: 0.0}, "pore": {0: 1.0, 1: 0.0, 2: 0.0}}
    for lam in VARY["lambda_x"]:
        v1 = model_theory(BASE.replace(lambda_x=lam), 40.0).V1
        for seed in (3, 4):
            # independent facts from the realization itself
            lab = generate(BASE.replace(lambda_x=lam), (40, 40, 40), 40.0, seed, backend="numpy")
            frac = {k: float(np.mean(lab == k)) for k in (0, 1, 2)}
            pair = {r["phase"]: r for r in rows
                    if float(r["lambda_x"]) == lam and int(r["seed"]) == seed}
            for ph, r in pair.items():
                eps, M = float(r["epsilon"]), float(r["M"])
                sig_eff, tau_eff = float(r["sigma_eff"]), float(r["tau_eff"])
                want_eps = frac[0] if ph == "pore" else frac[1] + frac[2]
                assert eps == pytest.approx(want_eps, abs=1e-12)
                # Eq. 27 and the multi-phase convention tau_eff = sum eps_p sigma_p / sigma_eff
                sigma_mean = sum(frac[k] * sig[ph][k] for k in (0, 1, 2))
                assert tau_eff == pytest.approx(sigma_mean / sig_eff, rel=1e-9)
                assert M == pytest.approx(eps / tau_eff, rel=1e-9)
                assert 0.0 <= float(r["constrictivity"]) <= 1.0
                assert 1.0 <= float(r["geodesic_tortuosity"]) < 3.0
                assert float(r["V1"]) == pytest.approx(v1, rel=1e-12)
                assert float(r["graphite_fraction"]) == pytest.approx(frac[2], abs=1e-12)
                assert r["percolates"] == "true"
            # pore phase: sigma = 1, so M = sigma_eff
            assert float(pair["pore"]["M"]) == pytest.approx(float(pair["pore"]["sigma_eff"]))
    # fits.json equals the regressions recomputed from the CSV
    fits = json.loads((d / "fits.json").read_text())
    for ph in ("solid", "pore"):
        rs = [r for r in rows if r["phase"] == ph]
        col = {k: np.array([float(r[k]) for r in rs]) for k in
               ("epsilon", "constrictivity", "geodesic_tortuosity", "M", "V1")}
        args28 = (col["epsilon"], col["constrictivity"], col["geodesic_tortuosity"], col["M"])
        f28 = fit_power_law_linear(*args28)  # the default: on M (the paper's description)
        f28log = fit_power_law(*args28)
        f29 = fit_linear(col["V1"], col["M"])
        for k in "abc":
            assert fits[ph][k] == pytest.approx(getattr(f28, k).value, rel=1e-9, abs=1e-12)
            assert fits[ph]["eq28"][k]["value"] == fits[ph][k]
            assert fits[ph]["eq28_log"][k]["value"] == pytest.approx(
                getattr(f28log, k).value, rel=1e-12, abs=1e-15)
        assert fits[ph]["eq28"]["space"] == "linear" and fits[ph]["eq28_log"]["space"] == "log"
        assert fits[ph]["c1"] == pytest.approx(f29.c1.value, rel=1e-12)
        assert fits[ph]["c0"] == pytest.approx(f29.c0.value, rel=1e-12)
        assert fits[ph]["eq29"]["c1"]["ci"][0] < fits[ph]["c1"] < fits[ph]["eq29"]["c1"]["ci"][1]
        assert fits[ph]["eq28"]["n_excluded"] == 0 and fits[ph]["non_percolating"] == 0
    assert set(fits["both"]) >= {"a", "b", "c", "eq28"} and fits["both"]["n_rows"] == 8
    from cbagpu.plots import plot_sweep

    assert "plot" not in res.files  # the library no longer draws
    assert plot_sweep(res, d / "figure8.png").stat().st_size > 10_000
    assert sorted(p.name for p in (d / "tasks").iterdir()) == sorted(
        [f"lambda_x={lam!r},seed={s}.json" for lam in VARY["lambda_x"] for s in (3, 4)]
        + ["spec.json"])
    # nothing left half-written
    assert not [p for p in d.rglob(".*")]


def test_interrupted_sweep_resumes_on_dask(reference, tmp_path, monkeypatch):
    """Interrupt an in-process sweep after 2 of 4 tasks; rerun on a local Dask cluster (2
    processes): only the 2 missing tasks run, the kept task files are not rewritten, and the
    table equals the uninterrupted run's byte for byte."""
    d_ref, _ = reference
    calls = []
    real = sweep_mod.sweep_task

    def counting(**kw):
        calls.append(kw["seed"])
        return real(**kw)

    monkeypatch.setattr(sweep_mod, "sweep_task", counting)

    def stop(done, total, left):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(BASE, VARY, **KW, out_dir=tmp_path, workers=1, progress=stop)
    assert len(calls) == 2
    assert not (tmp_path / "results.csv").exists()
    kept = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in (tmp_path / "tasks").glob("lambda*.json")}
    assert len(kept) == 2
    monkeypatch.setattr(sweep_mod, "sweep_task", real)  # workers import the real one
    res = sweep(BASE, VARY, **KW, out_dir=tmp_path, workers=2)
    assert res.n_computed == 2 and res.n_tasks == 4
    for name, stamp in kept.items():
        p = tmp_path / "tasks" / name
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == stamp
    assert (tmp_path / "results.csv").read_bytes() == (d_ref / "results.csv").read_bytes()
    assert json.loads((tmp_path / "fits.json").read_text()) == json.loads(
        (d_ref / "fits.json").read_text())
    # a third run computes nothing
    again = sweep(BASE, VARY, **KW, out_dir=tmp_path, workers=1, plot=False)
    assert again.n_computed == 0


def test_other_settings_refused(reference):
    d, _ = reference
    before = (d / "results.csv").stat().st_mtime_ns
    with pytest.raises(ValueError, match="other settings: realizations"):
        sweep(BASE, VARY, **{**KW, "realizations": 3}, out_dir=d, workers=1)
    with pytest.raises(ValueError, match=r"other settings: vary\.lambda_x"):
        sweep(BASE, {"lambda_x": [2.21e-11]}, **KW, out_dir=d, workers=1)
    with pytest.raises(ValueError, match=r"base_params\.mu"):
        sweep(BASE.replace(mu=0.4), VARY, **KW, out_dir=d, workers=1)
    assert (d / "results.csv").stat().st_mtime_ns == before


def test_non_percolating_phase_kept_and_excluded(tmp_path):
    """mu = -2 and no large pores: the CBD fills ~98 % of the space, the pore phase is a few
    isolated voxels and cannot percolate; its rows stay (M = 0, tau = inf)."""
    base = BASE.replace(lambda_y=0.0)
    res = sweep(base, {"mu": [-2.0]}, realizations=4, shape=(24, 24, 24), voxel_size=40.0,
                seed=0, backend="numpy", out_dir=tmp_path, workers=1, plot=False)
    rows = _read_csv(tmp_path / "results.csv")
    pore = [r for r in rows if r["phase"] == "pore"]
    assert len(pore) == 4
    for r in pore:
        assert r["M"] == "0.0" and r["tau_eff"] == "inf" and r["geodesic_tortuosity"] == "inf"
        assert r["percolates"] == "false"
    fits = json.loads((tmp_path / "fits.json").read_text())
    assert fits["pore"]["non_percolating"] == 4 and fits["solid"]["non_percolating"] == 0
    assert "no usable rows" in fits["pore"]["eq28"]["error"]
    assert fits["both"]["eq28"]["n"] == 4 and fits["both"]["eq28"]["n_excluded"] == 4
    # one value of mu: V1 does not vary, Eq. 29 cannot be fitted -- said, not crashed
    assert "linearly dependent" in fits["solid"]["eq29"]["error"]
    assert any("pore: Eq. 28 not fitted" in m for m in res.messages)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown parameter 'lambda'"):
        sweep(BASE, {"lambda": [1e-11]}, **KW, workers=1)
    with pytest.raises(ValueError, match="bad value -1.0 for 'lambda_x'"):
        sweep(BASE, {"lambda_x": [-1.0]}, **KW, workers=1)
    with pytest.raises(ValueError, match="no values"):
        sweep(BASE, {"mu": []}, **KW, workers=1)
    with pytest.raises(ValueError, match="repeat"):
        sweep(BASE, {"mu": [0.4, 0.4]}, **KW, workers=1)
    with pytest.raises(ValueError, match="not finite"):
        sweep(BASE, {"mu": [float("nan")]}, **KW, workers=1)
    with pytest.raises(ValueError, match="shape"):
        sweep(BASE, VARY, **{**KW, "shape": (40, 40)}, workers=1)
    with pytest.raises(ValueError, match="realizations"):
        sweep(BASE, VARY, **{**KW, "realizations": 0}, workers=1)
    with pytest.raises(ValueError, match="backend"):
        sweep(BASE, VARY, **{**KW, "backend": "gpu"}, workers=1)
    assert parse_vary(["lambda_x=2.21e-11, 3.55e-11", "mu=0.4"]) == {
        "lambda_x": [2.21e-11, 3.55e-11], "mu": [0.4]}
    assert list(sweep_mod.check_vary(BASE, {"mu": [0.4], "lambda_x": [1e-11]})) == [
        "lambda_x", "mu"]  # Table 2 order whatever the order given
    assert parse_vary(["lambda_x=table3"])["lambda_x"][0] == 2.21e-11
    assert len(parse_vary(["lambda_x=table3"])["lambda_x"]) == 7
    for bad, msg in [("lambda_x", "NAME="), ("foo=1", "unknown parameter 'foo'"),
                     ("mu=0.4,x", "'x' is not a number"), ("mu=", "'' is not a number")]:
        with pytest.raises(ValueError, match=msg):
            parse_vary([bad])
    with pytest.raises(ValueError, match="twice"):
        parse_vary(["mu=1", "mu=2"])


def test_plot_without_matplotlib(reference, tmp_path, monkeypatch):
    d, res = reference
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    from cbagpu.plots import plot_sweep

    with pytest.raises(ImportError, match=r"cbagpu\[plot\]"):
        plot_sweep(res, tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()


# ------------------------------------------------------------------------------------ CLI
def _cli(argv: list[str]) -> int:
    from cbagpu.cli import main

    return main(argv)


def _argv(d: Path, *extra: str) -> list[str]:
    return ["sweep", "--preset", "paper", "--vary", "lambda_x=2.21e-11,1.09e-10",
            "--realizations", "2", "--shape", "40", "--voxel-size", "40", "--seed", "3",
            "--backend", "numpy", "--out", str(d), *extra]


def test_cli_resumes_and_prints(reference, capsys):
    d, res = reference
    assert _cli(_argv(d, "--workers", "1", "--json")) == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["n_computed"] == 0 and doc["n_tasks"] == 4 and len(doc["rows"]) == 8
    assert doc["fits"]["solid"]["a"] == res.fits["solid"]["a"]
    assert "tasks 4/4" in out.err
    assert _cli(_argv(d, "--workers", "1", "--quiet")) == 0
    out = capsys.readouterr()
    assert "Eq. 28" in out.out and "0 of 4 tasks computed" in out.out and out.err == ""


def test_cli_errors(reference, tmp_path, capsys):
    d, _ = reference
    assert _cli(_argv(d, "--workers", "1", "--seed", "9")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other settings: seed" in err
    assert _cli(_argv(tmp_path, "--vary", "foo=1")) == 2
    assert "unknown parameter 'foo'" in capsys.readouterr().err
    assert _cli(_argv(tmp_path, "--shape", "40", "40")) == 2
    assert "--shape takes 1 or 3" in capsys.readouterr().err
    assert _cli(_argv(tmp_path, "--workers", "2", "--scheduler", "tcp://x:1")) == 2
    assert not list(tmp_path.iterdir())


def test_unconverged_rows_are_left_out_of_the_fits():
    """A row whose transport did not converge stays in the table but not in the fits."""
    from cbagpu.studies.sweep import fit_rows

    rng = np.random.default_rng(3)
    rows = []
    for i in range(12):
        eps, beta, tau = 0.3 + 0.02 * i, 0.2 + 0.01 * i, 1.2 + 0.01 * rng.random()
        rows.append({"phase": "solid", "epsilon": eps, "constrictivity": beta,
                     "geodesic_tortuosity": tau, "M": eps**2 * beta / tau**3,
                     "V1": 0.05 + 0.01 * i, "percolates": True, "converged": True})
    bad = dict(rows[0], M=5.0, converged=False)
    f_ok = fit_rows(rows)["solid"]
    f_bad = fit_rows([*rows, bad])["solid"]
    assert f_bad["not_converged"] == 1 and f_bad["n_rows"] == 13
    assert f_bad["eq28"]["a"]["value"] == pytest.approx(f_ok["eq28"]["a"]["value"], rel=1e-12)


def test_a_sweep_resumed_after_an_upgrade_says_so(reference, tmp_path):
    """Task results carry the version that computed them; a table mixing versions is
    flagged in the messages and in fits.json."""
    import shutil

    from cbagpu import __version__

    d, res = reference
    assert res.fits["settings"]["cbagpu_versions"] == [__version__]
    assert res.fits["settings"]["backends"] == ["numpy"]
    assert not any("versions" in m for m in res.messages)
    copy = tmp_path / "sweep"
    shutil.copytree(d, copy)
    task = sorted((copy / "tasks").glob("lambda_x=*.json"))[0]
    doc = json.loads(task.read_text())
    doc["cbagpu_version"] = "0.0.1"
    task.write_text(json.dumps(doc))
    again = sweep(BASE, VARY, **KW, out_dir=copy, workers=1)
    assert again.n_computed == 0
    assert again.fits["settings"]["cbagpu_versions"] == sorted(["0.0.1", __version__])
    assert any("versions 0.0.1" in m for m in again.messages)
    written = json.loads((copy / "fits.json").read_text())
    assert written["settings"]["cbagpu_versions"] == sorted(["0.0.1", __version__])


@pytest.mark.parametrize("kw, message", [
    ({"shape": (10000, 10000, 10000)}, "needs about"),
    ({"workers": -1}, "workers must be"),
    ({"voxel_size": 20000.0}, "degenerates"),
])
def test_refused_before_anything_is_written(tmp_path, kw, message):
    """Issue 14, item 4: a sweep that cannot run leaves nothing behind, so the corrected
    command into the same folder is not refused as 'other settings'."""
    from cbagpu.errors import CbagpuError

    args = dict(realizations=1, shape=(12, 12, 12), voxel_size=40.0, seed=0,
                backend="numpy", workers=1) | kw
    with pytest.raises(CbagpuError, match=message):
        sweep(BASE, {}, out_dir=tmp_path / "sw", **args)
    assert not (tmp_path / "sw").exists()


# ------------------------------------------------------ sampling error (issue 18)
def _strict(text: str):
    def refuse(c):
        raise ValueError(f"non-strict JSON constant {c}")

    return json.loads(text, parse_constant=refuse)


def test_summary_is_mean_sd_se_over_the_realizations(reference, capsys):
    """summary: per (lambda_x, phase), mean, sd (ddof=1), SE = sd / sqrt(n) and n of every
    quantity, recomputed here from the per-realization rows; summary.csv and strict JSON."""
    from cbagpu.studies.sweep import SUMMARY_QUANTITIES

    d, res = reference
    assert len(res.summary) == 2 * 2
    for s in res.summary:
        rs = [r for r in res.rows if r["lambda_x"] == s["lambda_x"] and r["phase"] == s["phase"]]
        assert s["realizations"] == len(rs) == 2
        for q in SUMMARY_QUANTITIES:
            v = np.array([r[q] for r in rs], float)
            v = v[np.isfinite(v)]
            assert s[f"{q}_n"] == len(v)
            assert s[f"{q}_mean"] == pytest.approx(np.mean(v), rel=1e-14)
            assert s[f"{q}_sd"] == pytest.approx(np.std(v, ddof=1), rel=1e-12)
            assert s[f"{q}_se"] == pytest.approx(np.std(v, ddof=1) / np.sqrt(len(v)),
                                                 rel=1e-12)
    rows = _read_csv(d / "summary.csv")
    assert list(rows[0])[:3] == ["lambda_x", "phase", "realizations"]
    assert len(rows) == 4
    for r, s in zip(rows, res.summary, strict=True):
        assert float(r["M_se"]) == s["M_se"] and int(r["epsilon_n"]) == 2
    doc = _strict(json.dumps(res.to_dict()))
    assert doc["summary"][0]["M_se"] == res.summary[0]["M_se"]
    # the CLI: per-realization rows, then mean ± SE per combination and phase
    assert _cli(_argv(d, "--workers", "1", "--quiet")) == 0
    out = capsys.readouterr().out
    assert "mean ± SE over N = 2 realizations" in out
    s = res.summary[0]
    assert f"{s['M_mean']:.4g} ± {s['M_se']:.4g}" in out
    assert _cli(_argv(d, "--workers", "1", "--quiet", "--json")) == 0
    doc = _strict(capsys.readouterr().out)  # still one JSON object
    assert len(doc["summary"]) == 4


def test_summary_leaves_undefined_values_out_of_n():
    """An infinite tortuosity (phase not percolating) is left out of n; one finite value
    gives a mean but no sd / SE (NaN, "nan" in JSON as every non-finite number there)."""
    from cbagpu.studies.sweep import SUMMARY_QUANTITIES, summarize_rows

    def row(seed, tau, m):
        r = {q: 0.5 + 0.1 * seed for q in SUMMARY_QUANTITIES}
        r.update(mu=0.4, seed=seed, phase="pore", geodesic_tortuosity=tau, M=m)
        return r

    rows = [row(0, 1.2, 0.1), row(1, float("inf"), 0.0), row(2, 1.5, 0.3)]
    (s,) = summarize_rows(rows, ["mu"])
    assert s["mu"] == 0.4 and s["realizations"] == 3
    assert s["geodesic_tortuosity_n"] == 2
    assert s["geodesic_tortuosity_mean"] == pytest.approx(1.35)
    assert s["geodesic_tortuosity_se"] == pytest.approx(np.std([1.2, 1.5], ddof=1) / np.sqrt(2))
    assert s["M_n"] == 3
    assert s["M_se"] == pytest.approx(np.std([0.1, 0.0, 0.3], ddof=1) / np.sqrt(3))
    (one,) = summarize_rows(rows[:2], ["mu"])
    assert one["geodesic_tortuosity_n"] == 1 and one["geodesic_tortuosity_mean"] == 1.2
    assert np.isnan(one["geodesic_tortuosity_sd"]) and np.isnan(one["geodesic_tortuosity_se"])
    (none,) = summarize_rows(rows[1:2], ["mu"])
    assert none["geodesic_tortuosity_n"] == 0 and np.isnan(none["geodesic_tortuosity_mean"])
    enc = _strict(json.dumps(sweep_mod._enc_row(one)))
    assert enc["geodesic_tortuosity_se"] == "nan"
