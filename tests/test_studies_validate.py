"""Validation across resolutions (issue 6 item 1; paper Sections 3.3, 4.2, Figures 5-7).

One module-scoped study does the expensive work (a 64^3 paper realization at 20 nm as "the
image", factors 1 2 4, two realizations: ~8 s per 20 nm realization on the 2-core CPU);
the other tests copy its directory and resume from it, so they compute little.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cbagpu import describe, generate, model_theory, preset
from cbagpu.studies import validate as vmod
from cbagpu.studies.validate import CSV_COLUMNS, DESCRIPTORS, PHASES, validate

PARAMS = preset("paper")
S = 20.0
N = 64
FACTORS = (1, 2, 4)
R = 2
IMAGE_SEED = 4242


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return generate(PARAMS, (N, N, N), S, IMAGE_SEED, backend="numpy")


@pytest.fixture(scope="module")
def study(image, tmp_path_factory):
    out = tmp_path_factory.mktemp("validate") / "study"
    res = validate(image, S, PARAMS, realizations=R, factors=FACTORS, seed=0, out_dir=out,
                   workers=1, backend="numpy")
    return res, out


def _copy(study, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(study[1], dst)
    return dst


# ----------------------------------------------------------------------------- content
@pytest.mark.slow  # the module's study fixture takes ~15 s on 2 cores
def test_table_shape_and_files(study):
    res, out = study
    assert sorted(p.name for p in out.iterdir()) == ["tasks", "validation.csv", "validation.json"]
    task_files = sorted(p.name for p in (out / "tasks").glob("*.json"))
    assert len(task_files) == len(FACTORS) * (1 + R) + 1  # + spec.json
    assert "image,f=4.json" in task_files and "model,f=4,seed=1.json" in task_files
    with open(out / "validation.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(FACTORS) * len(PHASES) * len(DESCRIPTORS) == 36
    keys = {(int(r["factor"]), r["phase"], r["descriptor"]) for r in rows}
    assert len(keys) == 36
    for r in rows:
        assert float(r["voxel_size"]) == S * int(r["factor"])
        assert int(r["model_n"]) == R
        lo, mean, hi = float(r["model_min"]), float(r["model_mean"]), float(r["model_max"])
        assert lo <= mean <= hi
        row = res.scalar(int(r["factor"]), r["phase"], r["descriptor"])
        assert float(r["image"]) == row.image and mean == row.model_mean
    js = json.loads((out / "validation.json").read_text())
    assert js["meta"]["factors"] == list(FACTORS) and js["meta"]["seeds"] == [0, 1]
    assert js["meta"]["voxel_sizes"] == [20.0, 40.0, 80.0]
    from cbagpu import __version__

    assert js["meta"]["cbagpu_versions"] == [__version__]  # recorded by every task
    assert len(js["scalars"]) == 36
    assert len(js["curves"]) == len(FACTORS) * len(PHASES) * 2
    assert js == json.loads(json.dumps(res.to_dict()))


@pytest.mark.slow  # the module's study fixture takes ~15 s on 2 cores
def test_values_match_direct_computation(study, image):
    """Image rows = describe(image[::f, ::f, ::f]) at f*s; model rows = describe of the
    realization generated at f*s with the down-sampled shape and the seed (parameters
    converted with the new voxel size by generate); mean/min/max over the seeds."""
    res, _ = study
    for f in FACTORS:
        d = describe(image[::f, ::f, ::f], f * S, phases=PHASES, backend="numpy")
        for ph in PHASES:
            for name in DESCRIPTORS:
                assert res.scalar(f, ph, name).image == pytest.approx(
                    getattr(d.phases[ph], name), rel=1e-12, nan_ok=True)
            cp = res.curve(f, ph, "cpsd")
            ref = d.phases[ph].cpsd_value
            np.testing.assert_allclose(cp.x[: len(ref)], d.phases[ph].cpsd_r, rtol=1e-12)
            np.testing.assert_allclose(cp.image[: len(ref)], ref, rtol=1e-12)
            assert np.all(cp.image[len(ref):] == 0.0)  # CPSD(R+1) = 0 continues with zeros
            cov = res.curve(f, ph, "covariance_centred")
            np.testing.assert_allclose(cov.image, d.phases[ph].covariance_centred, rtol=1e-12,
                                       atol=1e-15)
    # one realization per factor is recomputed independently (the 20 nm ones cost ~8 s each)
    f, seed = 2, 1
    lab = generate(PARAMS, (N // f,) * 3, f * S, seed, backend="numpy")
    d = describe(lab, f * S, phases=PHASES, backend="numpy")
    for ph in PHASES:
        for name in DESCRIPTORS:
            row = res.scalar(f, ph, name)
            assert row.model_values[seed] == pytest.approx(getattr(d.phases[ph], name),
                                                           rel=1e-12)
            assert row.model_mean == pytest.approx(np.mean(row.model_values), rel=1e-12)
            assert row.model_min == np.min(row.model_values)
            assert row.model_max == np.max(row.model_values)


@pytest.mark.slow  # the module's study fixture takes ~15 s on 2 cores
def test_internal_consistency(study):
    """Solid and pore share one interface (same S_V) and fill the window (V + V' = 1); the
    centred C(h) of both starts at V(1 - V). (For h > 0 the two differ by the edge term
    2V - V(W - h) - V(W + h) of the pair-count estimator, not compared here.)"""
    res, _ = study
    for f in FACTORS:
        vs, vp = res.scalar(f, "solid", "volume_fraction"), res.scalar(f, "pore",
                                                                       "volume_fraction")
        assert vs.image + vp.image == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(vs.model_values + vp.model_values, 1.0, atol=1e-12)
        ss, sp = res.scalar(f, "solid", "S_V"), res.scalar(f, "pore", "S_V")
        np.testing.assert_allclose(ss.model_values, sp.model_values, rtol=1e-9)
        cs, cpore = res.curve(f, "solid", "covariance_centred"), res.curve(
            f, "pore", "covariance_centred")
        assert cs.image[0] == pytest.approx(vs.image * (1 - vs.image), rel=1e-5)
        assert cpore.image[0] == pytest.approx(vs.image * (1 - vs.image), rel=1e-5)
        for c in (cs, res.curve(f, "solid", "cpsd"), res.curve(f, "pore", "cpsd")):
            assert np.all(c.model_min <= c.model_mean + 1e-15)
            assert np.all(c.model_mean <= c.model_max + 1e-15)
            np.testing.assert_allclose(np.diff(c.x), f * S)


# ------------------------------------------------------------------------------ resume
@pytest.mark.slow  # the module's study fixture takes ~15 s on 2 cores
def test_resume_computes_only_missing_tasks(study, image, tmp_path, monkeypatch):
    res, out = study
    dst = _copy(study, tmp_path)
    (dst / "tasks" / "model,f=2,seed=1.json").unlink()
    (dst / "validation.csv").unlink()
    calls: list[tuple] = []
    original = vmod._validation_task

    def counting(**kw):
        calls.append((kw["source"], kw["factor"], kw.get("seed")))
        return original(**kw)

    monkeypatch.setattr(vmod, "_validation_task", counting)
    again = validate(image, S, PARAMS, realizations=R, factors=FACTORS, out_dir=dst, workers=1,
                     backend="numpy")
    assert calls == [("model", 2, 1)]
    assert (dst / "validation.csv").read_text() == (out / "validation.csv").read_text()
    assert (dst / "validation.json").read_text() == (out / "validation.json").read_text()
    assert again.to_dict() == res.to_dict()
    calls.clear()
    validate(image, S, PARAMS, realizations=R, factors=FACTORS, out_dir=dst, workers=1,
             backend="numpy")
    assert calls == []


@pytest.mark.slow  # the module's study fixture takes ~15 s on 2 cores
def test_other_settings_in_the_same_directory_are_refused(study, image, tmp_path):
    dst = _copy(study, tmp_path)
    with pytest.raises(ValueError, match=r"other settings: params\.lambda_y"):
        validate(image, S, PARAMS.replace(lambda_y=0.0), realizations=R, factors=FACTORS,
                 out_dir=dst, workers=1)
    other = image.copy()
    other[0, 0, 0] = 2 - other[0, 0, 0] // 2
    with pytest.raises(ValueError, match=r"other settings: image\.sha256"):
        validate(other, S, PARAMS, realizations=R, factors=FACTORS, out_dir=dst, workers=1)
    with pytest.raises(ValueError, match=r"other settings: axis"):
        validate(image, S, PARAMS, realizations=R, factors=FACTORS, out_dir=dst, workers=1,
                 axis="x")


# ------------------------------------------------------------------ the check
def test_slice_removal_and_parameter_conversion_give_consistent_volume_fractions(
        study, image, tmp_path):
    """Volume fractions at 20/40/80 nm: image down-sampled by slice removal and fresh
    realizations with the parameters converted to s = 40, 80 nm agree with each other and
    with the closed form V(s) of the model (Eqs. 10-25, cbagpu.theory; V(s) varies by only
    1e-3 over s = 20..80 nm through the gamma convention).

    Tolerances from the sampling error:

    * Model windows. The study is extended in its own directory to ``RB`` realizations at
      40 and 80 nm (finished tasks are reused). The window mean of one realization has
      standard deviation sigma_W; it is estimated by the pooled sample standard deviation of
      the volume fractions at 40 and 80 nm (each about its own mean, dof = 2 (RB - 1)). All
      windows cover the same physical cube (64 * 20 nm = 32 * 40 nm = 16 * 80 nm), and
      sigma_W is dominated by structure far larger than a voxel (graphite flakes with C
      about 2 µm, the Cauchy covariance of the field), so one sigma_W serves the three
      voxel sizes. A mean of k independent windows then deviates from its expectation by
      at most t * sigma_W / sqrt(k), t the two-sided 99.9 % quantile of Student's t with
      that dof (t, not z, because sigma_W is itself estimated).
    * Slice removal. The f^3 cosets {x = a + f*i} (a in {0..f-1}^3) partition the voxels, so
      the full-resolution volume fraction of the image is the mean of the coset volume
      fractions, and image[::f, ::f, ::f] is the coset a = 0. Cosets are exchangeable
      (stationarity), so VF(coset 0) - VF(full) has standard deviation
      sd_cosets * sqrt((m - 1) / m), m = f^3; same 99.9 % normal quantile.
    """
    RB = 16  # noqa: N806
    dst = _copy(study, tmp_path)
    ext = validate(image, S, PARAMS, realizations=RB, factors=(2, 4), out_dir=dst, workers=1,
                   backend="numpy")
    res, _ = study
    vf = {f: ext.scalar(f, "solid", "volume_fraction").model_values for f in (2, 4)}
    vf[1] = res.scalar(1, "solid", "volume_fraction").model_values
    # the extension reused the study's realizations (same seeds, stored tasks)
    for f in (2, 4):
        np.testing.assert_array_equal(vf[f][:R],
                                      res.scalar(f, "solid", "volume_fraction").model_values)
    dof = 2 * (RB - 1)
    sigma_w = np.sqrt((np.sum((vf[2] - vf[2].mean()) ** 2) + np.sum((vf[4] - vf[4].mean()) ** 2))
                      / dof)
    t = stats.t.ppf(1 - 0.0005, dof)
    assert 0.0 < sigma_w < 0.2
    theory = {f: model_theory(PARAMS, f * S).V for f in FACTORS}

    # parameter conversion: fresh realizations at 20, 40, 80 nm vs V(s) and each other
    for f in FACTORS:
        k = len(vf[f])
        assert abs(vf[f].mean() - theory[f]) <= t * sigma_w / np.sqrt(k), (f, vf[f].mean())
    assert abs(vf[2].mean() - vf[4].mean()) <= t * sigma_w * np.sqrt(2 / RB)

    # slice removal: the image at 40 and 80 nm vs its own full-resolution volume fraction ...
    solid = image > 0
    full = solid.mean()
    assert res.scalar(1, "solid", "volume_fraction").image == pytest.approx(full, abs=1e-12)
    z = stats.norm.ppf(1 - 0.0005)
    for f in (2, 4):
        cosets = np.array([solid[a::f, b::f, c::f].mean()
                           for a in range(f) for b in range(f) for c in range(f)])
        assert cosets.mean() == pytest.approx(full, abs=1e-12)  # the partition identity
        m = f**3
        sd = cosets.std(ddof=1) * np.sqrt((m - 1) / m)
        img_vf = res.scalar(f, "solid", "volume_fraction").image
        assert img_vf == cosets[0]
        assert abs(img_vf - full) <= z * sd + 1e-12, (f, img_vf, full, sd)
        # ... and vs the model's expectation at that voxel size (one window)
        assert abs(img_vf - theory[f]) <= t * sigma_w
        assert abs(img_vf - vf[f].mean()) <= t * sigma_w * np.sqrt(1 + 1 / len(vf[f]))


# --------------------------------------------------------------------------- bad input
def test_bad_input_is_refused_before_any_work(tmp_path):
    img = np.zeros((64, 64, 64), np.uint8)
    img[:, :, :20] = 1
    kw = {"workers": 1, "out_dir": tmp_path / "o"}
    with pytest.raises(ValueError, match=r"factor 8 leaves 8x8x8 voxels.*fewer than 16.*<= 4"):
        validate(img, S, PARAMS, factors=(1, 8), **kw)
    with pytest.raises(ValueError, match="integers >= 1"):
        validate(img, S, PARAMS, factors=(0, 1), **kw)
    with pytest.raises(ValueError, match="given twice"):
        validate(img, S, PARAMS, factors=(2, 2), **kw)
    with pytest.raises(ValueError, match="at least one"):
        validate(img, S, PARAMS, factors=(), **kw)
    with pytest.raises(ValueError, match="realizations"):
        validate(img, S, PARAMS, realizations=0, **kw)
    with pytest.raises(ValueError, match="voxel_size"):
        validate(img, -20.0, PARAMS, **kw)
    with pytest.raises(ValueError, match="seed"):
        validate(img, S, PARAMS, seed=-1, **kw)
    with pytest.raises(ValueError, match="axis"):
        validate(img, S, PARAMS, axis="w", **kw)
    with pytest.raises(ValueError, match="3D"):
        validate(img[0], S, PARAMS, **kw)
    bad = img.copy()
    bad[0, 0, 0] = 7
    with pytest.raises(ValueError, match=r"labels must be 0 \(pore\), 1 \(CBD\), 2"):
        validate(bad, S, PARAMS, **kw)
    with pytest.raises(ValueError, match="CBAParams"):
        validate(img, S, PARAMS.to_dict(), **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs out_dir"):
        validate(img, S, PARAMS, workers=1, plot=True)
    assert not (tmp_path / "o").exists()  # nothing written for refused input


# -------------------------------------------------------------------------------- Dask
def _dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _dask_available(), reason="needs dask[distributed]")
def test_local_dask_cluster_gives_the_same_table(tmp_path, monkeypatch):
    img = generate(PARAMS, (32, 32, 32), 40.0, 7, backend="numpy")
    a = validate(img, 40.0, PARAMS, realizations=1, factors=(1, 2), workers=1, backend="numpy")
    b = validate(img, 40.0, PARAMS, realizations=1, factors=(1, 2), workers=2, backend="numpy",
                 out_dir=tmp_path / "d")
    assert a.csv_text() == b.csv_text()
    assert a.to_dict() == b.to_dict()
    # the workers read the down-sampled images from the output folder, not the task graph
    for f in (1, 2):
        np.testing.assert_array_equal(np.load(tmp_path / "d" / "inputs" / f"image-f{f}.npy"),
                                      img[::f, ::f, ::f])
    # without out_dir the local cluster's workers read them from a temporary folder,
    # which is gone afterwards
    import cbagpu.studies.tasks as T

    seen = {}
    run = T.run_tasks

    def spy(tasks, *args, **kwargs):
        for t in tasks:
            if "labels_path" in t.kwargs:
                seen[t.key] = Path(t.kwargs["labels_path"])
                assert "labels" not in t.kwargs and seen[t.key].is_file()
        return run(tasks, *args, **kwargs)

    monkeypatch.setattr(T, "run_tasks", spy)
    c = validate(img, 40.0, PARAMS, realizations=1, factors=(1, 2), workers=2,
                 backend="numpy")
    assert sorted(seen) == ["image,f=1", "image,f=2"]
    assert not any(p.exists() for p in seen.values())
    assert c.to_dict() == a.to_dict()


# --------------------------------------------------------------------------------- CLI
def _cli(argv: list[str]) -> int:
    from cbagpu.cli import main

    return main(argv)


@pytest.mark.slow  # the module's study fixture takes ~15 s on 2 cores
def test_cli_resumes_study_and_writes_tables_and_figures(study, image, tmp_path, capsys):
    from cbagpu.io import write_image

    res, _ = study
    dst = _copy(study, tmp_path)
    (dst / "validation.csv").unlink()
    path = tmp_path / "img.npy"
    write_image(path, image, {"voxel_size": S})  # voxel size from the metadata
    rc = _cli(["validate", str(path), "--params", "paper", "--realizations", str(R),
               "--factors", "1", "2", "4", "--workers", "1", "--out", str(dst), "--plot",
               "--json", "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    d = json.loads(cap.out)
    assert d["scalars"] == res.to_dict()["scalars"]
    assert d["meta"]["voxel_size"] == S
    assert (dst / "validation.csv").is_file()
    for name in ("figure5.png", "figure6.png", "figure7.png"):
        assert (dst / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in dst.iterdir() if p.name.startswith(".")]  # no temporaries left

    rc = _cli(["validate", str(path), "--params", "paper", "--realizations", str(R),
               "--factors", "1", "2", "4", "--workers", "1", "--out", str(dst)])
    cap = capsys.readouterr()
    assert rc == 0 and "volume fraction" in cap.out and "80 nm voxels" in cap.out
    assert "tasks 9/9, done" in cap.err  # progress on stderr


def test_cli_errors_are_one_line(tmp_path, capsys):
    from cbagpu.io import write_image

    img = np.zeros((32, 32, 32), np.uint8)
    path = tmp_path / "img.npy"
    write_image(path, img, {})
    cases = [
        (["--params", "paper", "--voxel-size", "20", "--factors", "1", "4"],
         "factor 4 leaves 8x8x8 voxels"),
        (["--params", "paper"], "no voxel size in its metadata: pass --voxel-size"),
        (["--params", "nonesuch", "--voxel-size", "20"], "no such file and not a preset"),
        (["--params", "paper", "--voxel-size", "20", "--plot"], "--plot needs --out"),
        (["--params", "paper", "--voxel-size", "20", "--workers", "0"], "--workers must be"),
        (["--params", "paper", "--voxel-size", "20", "--workers", "1", "--scheduler",
          "tcp://x:1"], "either --scheduler"),
    ]
    bad_params = tmp_path / "p.json"
    bad_params.write_text('{"lambda_x": 1}')
    cases.append((["--params", str(bad_params), "--voxel-size", "20"], "bad parameter file"))
    for extra, message in cases:
        rc = _cli(["validate", str(path), "--workers", "1", *extra] if "--workers" not in extra
                  else ["validate", str(path), *extra])
        err = capsys.readouterr().err
        assert rc == 2, (extra, err)
        assert message in err and err.count("\n") == 1, (extra, err)
    rc = _cli(["validate", str(tmp_path / "missing.npy"), "--params", "paper", "--workers", "1"])
    assert rc == 2 and "image not found" in capsys.readouterr().err


def test_progress_line_format():
    import io

    from cbagpu.cli.common import format_seconds, progress_printer

    assert format_seconds(40.2) == "40 s" and format_seconds(180) == "3 min"
    assert format_seconds(5400) == "1.5 h"
    buf = io.StringIO()
    show = progress_printer(True, buf)
    show(0, 35, None)
    show(12, 35, 185.0)
    show(35, 35, 0.0)
    assert buf.getvalue().splitlines() == ["tasks 0/35, time left unknown",
                                           "tasks 12/35, 3 min left", "tasks 35/35, done"]
    assert progress_printer(False) is None


# ------------------------------------------------------ sampling error (issue 18)
def _fake_results(values: dict[int, float], s: float = S) -> dict:
    """Task results of one factor: the model's volume fraction per seed from ``values``
    (None = undefined), every other descriptor = seed, short CPSD / C(h) curves."""
    def phases(v, k):
        d = {name: float(k) for name in DESCRIPTORS}
        d["volume_fraction"] = v
        d["fraction_connected"] = 1.0
        d["cpsd"] = {"r": [0.0, s, 2 * s], "value": [1.0, 0.1 * k, 0.0]}
        d["covariance_centred"] = {"h": [0.0, s], "value": [0.2, 0.01 * k]}
        return {ph: d for ph in PHASES}

    out = {vmod._image_key(1): {"phases": phases(0.3, 0)}}
    for k, v in values.items():
        out[vmod._model_key(1, k)] = {"phases": phases(v, k)}
    return out


def _summarize(values: dict[int, float]):
    return vmod.summarize(_fake_results(values), voxel_size=S, factors=(1,),
                          realizations=len(values), seed=0, axis=0, shape=(16, 16, 16),
                          image_hash="x", params=PARAMS.to_dict(), backend="numpy")


def _strict(text: str):
    def refuse(c):
        raise ValueError(f"non-strict JSON constant {c}")

    return json.loads(text, parse_constant=refuse)


def test_standard_error_of_the_mean_from_the_realizations(tmp_path):
    """model_se = np.std(values, ddof=1) / sqrt(n) over the finite per-realization values;
    an undefined value leaves n; n < 2 gives no SE (NaN, null in JSON, empty CSV cell)."""
    vals = {0: 0.31, 1: 0.27, 2: None, 3: 0.35, 4: 0.30}
    res = _summarize(vals)
    for ph in PHASES:
        row = res.scalar(1, ph, "volume_fraction")
        v = row.model_values[np.isfinite(row.model_values)]
        assert row.model_n == len(v) == 4
        assert row.model_mean == pytest.approx(np.mean(v), rel=1e-14)
        assert row.model_sd == pytest.approx(np.std(v, ddof=1), rel=1e-12)
        assert row.model_se == pytest.approx(np.std(v, ddof=1) / np.sqrt(4), rel=1e-12)
        seeds = res.scalar(1, ph, "r_max")  # = seed 0..4, all defined
        assert seeds.model_n == 5
        assert seeds.model_se == pytest.approx(np.std(np.arange(5.0), ddof=1) / np.sqrt(5))
    # curves: pointwise over the realizations
    c = res.curve(1, "solid", "cpsd")
    ks = np.arange(5.0)
    assert list(c.model_n) == [5, 5, 5]
    assert c.model_se[1] == pytest.approx(np.std(0.1 * ks, ddof=1) / np.sqrt(5), rel=1e-12)
    assert c.model_sd[0] == 0.0 and c.model_se[0] == 0.0
    # files: the new columns come last; JSON strict
    vmod.write_tables(res, tmp_path)
    with open(tmp_path / "validation.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0])[-2:] == ("model_sd", "model_se")
    assert tuple(rows[0])[:10] == CSV_COLUMNS[:10]
    r = next(r for r in rows if r["descriptor"] == "volume_fraction")
    assert float(r["model_se"]) == res.scalar(1, r["phase"], "volume_fraction").model_se
    js = _strict((tmp_path / "validation.json").read_text())
    assert js["scalars"][0]["model_se"] == pytest.approx(res.scalars[0].model_se)
    # one defined value: no SE
    one = _summarize({0: None, 1: 0.3})
    row = one.scalar(1, "solid", "volume_fraction")
    assert row.model_n == 1 and row.model_mean == 0.3
    assert np.isnan(row.model_sd) and np.isnan(row.model_se)
    d = _strict(json.dumps(one.to_dict()))
    vf = next(x for x in d["scalars"] if x["descriptor"] == "volume_fraction")
    assert vf["model_sd"] is None and vf["model_se"] is None
    assert one.csv_text().splitlines()[1].endswith(",1,,")


def test_cli_table_states_the_standard_error(capsys):
    from cbagpu.cli.validate import _print_table

    res = _summarize({0: 0.31, 1: 0.27, 2: 0.35})
    _print_table(res, "img.npy")
    out = capsys.readouterr().out
    assert "standard error of the mean over the n = 3" in out
    se = res.scalar(1, "solid", "volume_fraction").model_se
    assert f"0.31 ± {se:.4g}" in out
