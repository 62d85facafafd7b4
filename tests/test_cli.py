"""Command line: generate/theory output, files with metadata, exit status 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from cbagpu import generate, gpu_available, model_theory, preset
from cbagpu.cli import main
from cbagpu.io import read_image


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("suffix", [".tif", ".npy", ".raw", ".zarr"])
def test_generate_writes_file_with_metadata(tmp_path, capsys, suffix):
    if suffix == ".zarr":
        pytest.importorskip("zarr")
    out = tmp_path / f"real{suffix}"
    code, stdout, _ = run(
        capsys,
        "generate",
        "--preset",
        "paper",
        "--voxel-size",
        "80",
        "--shape",
        "30",
        "40",
        "50",
        "--seed",
        "3",
        "--origin",
        "-5",
        "0",
        "7",
        "--out",
        str(out),
        "--backend",
        "numpy",
        "--json",
    )
    assert code == 0
    rep = json.loads(stdout)
    img, md = read_image(out)
    ref = generate(preset("paper"), (30, 40, 50), 80, 3, (-5, 0, 7), backend="numpy")
    np.testing.assert_array_equal(img, ref)
    for key in ("params", "seed", "voxel_size", "origin", "version", "backend"):
        assert key in md
    assert md["seed"] == 3 and md["origin"] == [-5, 0, 7] and md["voxel_size"] == 80
    assert md["params"]["eta"] == preset("paper").eta
    th = model_theory(preset("paper"), 80)
    assert set(rep["fractions"]) == set(rep["theory"]) == {"pore", "cbd", "graphite"}
    assert rep["theory"]["graphite"] == pytest.approx(th.graphite)
    counts = np.bincount(img.ravel(), minlength=3) / img.size
    assert rep["fractions"]["cbd"] == pytest.approx(counts[1])
    assert rep["backend"] == "numpy" and rep["seconds"] > 0


def test_generate_human_summary(tmp_path, capsys):
    code, stdout, err = run(
        capsys,
        "generate",
        "--voxel-size",
        "80",
        "--shape",
        "20",
        "20",
        "20",
        "--seed",
        "1",
        "--out",
        str(tmp_path / "a.npy"),
        "--backend",
        "numpy",
    )
    assert code == 0
    assert "measured" in stdout and "theory" in stdout and "graphite" in stdout
    assert "field" in err  # progress on stderr


def test_params_file_round_trip(tmp_path, capsys):
    p = preset("paper").replace(lambda_x=3e-11, mu=0.3)
    f = tmp_path / "p.json"
    p.to_json(f)
    code, stdout, _ = run(
        capsys,
        "generate",
        "--params",
        str(f),
        "--voxel-size",
        "80",
        "--shape",
        "16",
        "16",
        "16",
        "--seed",
        "1",
        "--out",
        str(tmp_path / "r.npy"),
        "--json",
        "--backend",
        "numpy",
    )
    assert code == 0
    assert json.loads(stdout)["params"]["lambda_x"] == 3e-11
    _, md = read_image(tmp_path / "r.npy")
    assert md["params"]["mu"] == 0.3


def test_theory_json(capsys):
    code, stdout, _ = run(capsys, "theory", "--preset", "paper", "--voxel-size", "20", "--json")
    assert code == 0
    d = json.loads(stdout)
    for k in ("V1", "S1", "K1", "N1", "V2", "V3", "V", "S_V"):
        assert isinstance(d[k], float)
    assert d["V"] == pytest.approx(0.331, abs=1e-3)


def _bad(tmp_path, capsys, *argv):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    out = str(tmp_path / "x.tif")
    common = ["--voxel-size", "80", "--seed", "1", "--backend", "numpy"]
    assert "unknown preset" in _bad(
        tmp_path,
        capsys,
        "generate",
        "--preset",
        "nope",
        "--shape",
        "5",
        "5",
        "5",
        "--out",
        out,
        *common,
    )
    assert "positive" in _bad(
        tmp_path, capsys, "generate", "--shape", "5", "-5", "5", "--out", out, *common
    )
    assert "does not exist" in _bad(
        tmp_path,
        capsys,
        "generate",
        "--shape",
        "5",
        "5",
        "5",
        "--out",
        str(tmp_path / "no" / "x.tif"),
        *common,
    )
    assert "memory" in _bad(
        tmp_path, capsys, "generate", "--shape", "90000", "90000", "9000", "--out", out, *common
    )
    assert (
        "suffix"
        in _bad(
            tmp_path,
            capsys,
            "generate",
            "--shape",
            "5",
            "5",
            "5",
            "--out",
            str(tmp_path / "x.png"),
            *common,
        ).lower()
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**preset("paper").to_dict(), "eta": "nan"}))
    assert "eta" in _bad(
        tmp_path,
        capsys,
        "generate",
        "--params",
        str(bad),
        "--shape",
        "5",
        "5",
        "5",
        "--out",
        out,
        *common,
    )
    bad.write_text(json.dumps({**preset("paper").to_dict(), "eta": float("inf")}))
    assert "eta" in _bad(tmp_path, capsys, "theory", "--params", str(bad), "--voxel-size", "20")
    assert "not found" in _bad(
        tmp_path, capsys, "theory", "--params", str(tmp_path / "z.json"), "--voxel-size", "20"
    )
    assert "voxel" in _bad(tmp_path, capsys, "theory", "--voxel-size", "-20")
    assert not list(tmp_path.glob("x.*"))


@pytest.mark.skipif(gpu_available(), reason="a GPU is present")
def test_cupy_without_gpu_exits_2(tmp_path, capsys):
    err = _bad(
        tmp_path,
        capsys,
        "generate",
        "--shape",
        "5",
        "5",
        "5",
        "--voxel-size",
        "80",
        "--seed",
        "1",
        "--out",
        str(tmp_path / "x.npy"),
        "--backend",
        "cupy",
    )
    assert "cupy" in err


def test_no_partial_file_when_generation_fails(tmp_path, capsys, monkeypatch):
    import cbagpu.simulate.realization as rz

    def fail(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(rz, "paint_grains", fail)
    code, _, _ = run(
        capsys,
        "generate",
        "--voxel-size",
        "80",
        "--shape",
        "8",
        "8",
        "8",
        "--seed",
        "1",
        "--out",
        str(tmp_path / "r.tif"),
        "--backend",
        "numpy",
    )
    assert code == 130
    assert list(tmp_path.iterdir()) == []


def test_module_entry_point_help():
    res = subprocess.run(
        [sys.executable, "-m", "cbagpu", "--help"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0 and "generate" in res.stdout and "theory" in res.stdout


def test_transport_cli(tmp_path, capsys):
    from cbagpu.io import write_image
    from cbagpu.transport import transport

    lab = np.full((24, 10, 12), 1, np.uint8)
    lab[:, 3:6, 4:8] = 0  # a straight pore channel along z: tau = 1
    lab[:, 0, :] = 2
    path = tmp_path / "lab.npy"
    write_image(path, lab, {"voxel_size": 40.0})
    assert main(["transport", str(path), "--phase", "pore", "--json", "--quiet"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["tau_eff"] == pytest.approx(1.0, rel=1e-6) and d["converged"]
    assert d["epsilon"] == pytest.approx(12 / 120)
    for key in ("sigma_eff", "M", "iterations", "seconds", "slice_flux", "phase"):
        assert key in d
    ref = transport(lab, "solid", "x", sigma={0: 0.0, 1: 0.5, 2: 1.0})
    assert main(["transport", str(path), "--axis", "x", "--sigma", "0=0,1=0.5,2=1",
                 "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["tau_eff"] == pytest.approx(ref.tau_eff)
    # not converged within the iteration limit: exit status 1, said in the summary
    rng = np.random.default_rng(0)
    write_image(path, rng.integers(0, 3, (20, 16, 16)).astype(np.uint8), {"voxel_size": 40.0})
    assert main(["transport", str(path), "--tol", "1e-9", "--max-iter", "1", "--quiet"]) == 1
    assert "NOT converged" in capsys.readouterr().out
    # bad input: one line, exit 2
    for argv, msg in (
        (["--sigma", "0=1,1=x"], "bad conductivity"),
        (["--tol", "2"], "tol must be in (0, 1)"),
    ):
        assert main(["transport", str(path), *argv, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1
    assert main(["transport", str(tmp_path / "none.npy")]) == 2
    assert "image not found" in capsys.readouterr().err


def test_describe_connectivity_and_euler_options(tmp_path, capsys):
    from cbagpu.io import write_image
    from cbagpu.measure.describe import describe

    rng = np.random.default_rng(2)
    lab = (rng.random((24, 24, 24)) < 0.4).astype(np.uint8)
    img = write_image(tmp_path / "a.npy", lab, {"voxel_size": 10.0})
    assert main(["describe", str(img), "--phase", "solid", "--connectivity", "6",
                 "--euler", "closing", "--json", "--quiet"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["meta"]["connectivity"] == 6 and d["meta"]["euler"] == "closing"
    ref = describe(lab, 10.0, phases=("solid",), connectivity=6, euler="closing",
                   backend="numpy").to_dict()
    assert d["solid"]["chi_V"] == ref["solid"]["chi_V"]
