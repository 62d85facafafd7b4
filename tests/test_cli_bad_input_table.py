"""Every CLI command against a table of bad inputs (issue 14): each row must exit 2 with one
line on stderr that names the problem, no traceback, and leave no new file or folder
behind."""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu.cli import main
from cbagpu.io import write_image

GEN = ["generate", "--voxel-size", "80", "--shape", "8", "8", "8", "--seed", "1"]
WT = ["--wt", "am=87,graphite=5,carbon_black=4,binder=4",
      "--density", "am=4.77,graphite=2.3,carbon_black=1.9,binder=1.8"]
SW = ["sweep", "--voxel-size", "80", "--shape", "12", "--realizations", "1", "--workers", "1"]

# (argv, words that must appear in the one line); {img} = a valid 16^3 label image with its
# voxel size, {bad} = labels 0..3, {flat} = a 2-D image, {npy} = a .npy without metadata,
# {txt} = a text file, {dir} = the work folder, {missing} = a path that does not exist
ROWS: list[tuple[list[str], str]] = [
    # generate
    ([*GEN[:-2], "--seed", "-1", "--out", "{dir}/a.npy"], "seed"),
    ([*GEN[:-2], "--seed", str(2**63), "--out", "{dir}/a.npy"], "seed"),
    (["generate", "--voxel-size", "0", "--shape", "8", "8", "8", "--seed", "1", "--out",
      "{dir}/a.npy"], "voxel_size"),
    (["generate", "--voxel-size", "-20", "--shape", "8", "8", "8", "--seed", "1", "--out",
      "{dir}/a.npy"], "voxel_size"),
    (["generate", "--voxel-size", "nan", "--shape", "8", "8", "8", "--seed", "1", "--out",
      "{dir}/a.npy"], "voxel_size"),
    (["generate", "--voxel-size", "inf", "--shape", "8", "8", "8", "--seed", "1", "--out",
      "{dir}/a.npy"], "voxel_size"),
    (["generate", "--voxel-size", "20000", "--shape", "8", "8", "8", "--seed", "1", "--out",
      "{dir}/a.npy"], "degenerates"),
    (["generate", "--voxel-size", "1e-300", "--shape", "8", "8", "8", "--seed", "1", "--out",
      "{dir}/a.npy"], "2^31"),
    (["generate", "--voxel-size", "80", "--shape", "0", "8", "8", "--seed", "1", "--out",
      "{dir}/a.npy"], "shape"),
    (["generate", "--voxel-size", "80", "--shape", "-8", "8", "8", "--seed", "1", "--out",
      "{dir}/a.npy"], "shape"),
    (["generate", "--voxel-size", "80", "--shape", "8", "8", "--seed", "1", "--out",
      "{dir}/a.npy"], "--shape"),
    (["generate", "--voxel-size", "80", "--shape", "100000", "100000", "100000", "--seed", "1",
      "--out", "{dir}/a.npy"], "needs about"),
    ([*GEN, "--out", "{dir}/a.png"], "suffix"),
    ([*GEN, "--out", "{missing}/a.npy"], "not exist"),
    ([*GEN, "--out", "{dir}/a.npy", "--preset", "nonesuch"], "unknown preset"),
    ([*GEN, "--out", "{dir}/a.npy", "--params", "{missing}.json"], "not found"),
    ([*GEN, "--out", "{dir}/a.npy", "--params", "{txt}"], "parameter file"),
    ([*GEN, "--out", "{dir}/a.npy", "--backend", "cupy"], "cupy"),
    ([*GEN, "--out", "{dir}/a.npy", "--backend", "tpu"], "invalid choice"),
    ([*GEN, "--out", "{dir}/a.npy", "--workers", "2"], "--chunks"),
    ([*GEN, "--out", "{dir}/a.tif", "--chunks", "8"], ".zarr"),
    ([*GEN, "--out", "{dir}/a.zarr", "--chunks", "8", "8"], "1 or 3 values"),
    ([*GEN, "--out", "{dir}/a.zarr", "--chunks", "0"], "chunk"),
    ([*GEN, "--out", "{dir}/a.npy", "--origin", "3000000000", "0", "0"], "2^31"),
    ([*GEN, "--out", "{dir}"], "store"),
    ([*GEN, "--out", "/proc/x.tif"], "cannot create files"),
    (["generate", "--voxel-size", "80"], "required"),
    # theory
    (["theory", "--voxel-size", "0"], "voxel_size"),
    (["theory", "--voxel-size", "1e-300"], "2^31"),
    (["theory", "--voxel-size", "20", "--preset", "x"], "unknown preset"),
    (["theory", "--voxel-size", "20", "--params", "{missing}.json"], "not found"),
    # describe
    (["describe", "{missing}.tif"], "not found"),
    (["describe", "{bad}"], "labels must be"),
    (["describe", "{flat}"], "3D"),
    (["describe", "{npy}"], "voxel size"),
    (["describe", "{txt}"], "suffix"),
    (["describe", "{img}", "--voxel-size", "0"], "--voxel-size"),
    (["describe", "{img}", "--voxel-size", "-1"], "--voxel-size"),
    (["describe", "{img}", "--plot", "{dir}/p.jpg"], ".png"),
    (["describe", "{img}", "--plot", "{missing}/p.png"], "not exist"),
    (["describe", "{img}", "--axis", "w"], "invalid choice"),
    (["describe", "{img}", "--phase", "air"], "invalid choice"),
    (["describe", "{img}", "--backend", "cupy"], "cupy"),
    # transport
    (["transport", "{missing}.npy"], "not found"),
    (["transport", "{bad}"], "labels must be"),
    (["transport", "{img}", "--sigma", "0=1,0=0"], "twice"),
    (["transport", "{img}", "--sigma", ""], "no conductivities"),
    (["transport", "{img}", "--sigma", "a=b"], "LABEL=SIGMA"),
    (["transport", "{img}", "--sigma", "2=-1"], "conductivity"),
    (["transport", "{img}", "--tol", "0"], "tol"),
    (["transport", "{img}", "--tol", "nan"], "tol"),
    (["transport", "{img}", "--max-iter", "0"], "max_iter"),
    (["transport", "{img}", "--boundary-offset", "-1"], "boundary"),
    (["transport", "{img}", "--phase", "air"], "invalid choice"),
    # fit
    (["fit", "{missing}.tif", "--out", "{dir}/p.json"], "not found"),
    (["fit", "{img}", "--out", "{dir}/p.json", "--seed", "-1"], "--seed"),
    (["fit", "{img}", "--out", "{dir}/p.json", "--realizations", "0"], "--realizations"),
    (["fit", "{img}", "--out", "{missing}/p.json"], "does not exist"),
    (["fit", "{img}", "--out", "{dir}/p.json", "--plot", "{dir}/p.jpg"], ".png"),
    (["fit", "{npy}", "--out", "{dir}/p.json"], "voxel size"),
    (["fit", "{img}", "--out", "{dir}/p.json"], "too small"),
    (["fit", "{big}", "--out", "{dir}/p.json", "--grf-roi", "0:10,0:10"], "ROI"),
    (["fit", "{big}", "--out", "{dir}/p.json", "--grf-roi", "0:10,0:10,5:2"], "ROI"),
    # prepare / composition
    (["prepare", "--solid", "{missing}.tif", "--graphite-prob", "{missing}.tif",
      "--voxel-size", "20", "--out", "{dir}/o.tif"], "not found"),
    (["prepare", "--solid", "{img}", "--graphite-prob", "{img}", "--voxel-size", "20", "10",
      "--out", "{dir}/o.tif"], "one value or three"),
    (["prepare", "--solid", "{img}", "--graphite-prob", "{img}", "--voxel-size", "20", "10",
      "10", "--to-voxel-size", "25", "--out", "{dir}/o.tif"], "integer"),
    (["composition", *WT], "--porosity"),
    (["composition", *WT, "--porosity", "1.5"], "--porosity"),
    (["composition", "--wt", "am=87,graphite", "--density", "am=4", "--porosity", "0.5"],
     "NAME=VALUE"),
    (["composition", "--wt", "am=97,graphite=15,binder=8", "--density",
      "am=4.7,graphite=2.3,binder=1.8", "--porosity", "0.5"], "sum to 120"),
    (["composition", *WT, "--labels", "{flat}"], "3D"),
    (["composition", *WT, "--labels", "{missing}.npy"], "not found"),
    # validate
    (["validate", "{img}", "--params", "paper", "--realizations", "0"], "--realizations"),
    (["validate", "{img}", "--params", "paper", "--seed", "-1"], "--seed"),
    (["validate", "{img}", "--params", "paper", "--workers", "0"], "--workers"),
    (["validate", "{img}", "--params", "paper", "--plot"], "--plot needs --out"),
    (["validate", "{img}", "--params", "nonesuch"], "not found"),
    (["validate", "{img}", "--params", "paper", "--factors", "1", "4", "--workers", "1"],
     "factor 4"),
    (["validate", "{missing}.npy", "--params", "paper"], "not found"),
    # sweep
    ([*SW, "--vary", "nonesuch=1,2"], "nonesuch"),
    ([*SW, "--vary", "lambda_x"], "lambda_x"),
    ([*SW, "--shape", "12", "12"], "--shape"),
    (["sweep", "--voxel-size", "80", "--shape", "10000", "--workers", "1", "--out",
      "{dir}/sw"], "needs about"),
    (["sweep", "--voxel-size", "80", "--shape", "12", "--workers", "-1", "--out",
      "{dir}/sw"], "workers"),
    ([*SW, "--plot", "{dir}/f.jpg"], ".png"),
    ([*SW, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "either"),
    # crop / resample
    (["crop", "{img}", "--origin", "10", "10", "10", "--shape", "8", "--out", "{dir}/c.zarr"],
     "does not lie inside"),
    (["crop", "{img}", "--origin", "0", "0", "0", "--shape", "4", "4", "--out",
      "{dir}/c.zarr"], "--shape"),
    (["crop", "{img}", "--origin", "0", "0", "0", "--shape", "4", "--out", "{dir}/c.png"],
     "suffix"),
    (["crop", "{img}", "--origin", "0", "0", "0", "--shape", "4", "--out", "{img}"], "exists"),
    (["crop", "{bad}", "--origin", "0", "0", "0", "--shape", "4", "--out", "{dir}/c.zarr"],
     "labels of"),
    (["crop", "{missing}.zarr", "--origin", "0", "0", "0", "--shape", "4", "--out",
      "{dir}/c.zarr"], "no such image"),
    (["crop", "{img}", "--origin", "0", "0", "0", "--shape", "4", "--chunks", "0", "--out",
      "{dir}/c.zarr"], "chunks"),
    (["resample", "{img}", "--factor", "1", "--out", "{dir}/r.zarr"], "factor"),
    (["resample", "{img}", "--factor", "16", "--out", "{dir}/r.zarr"], "smaller factor"),
    (["resample", "{flat}", "--factor", "2", "--out", "{dir}/r.zarr"], "3-D"),
    (["describe", "{img}", "--euler", "smooth"], "--euler"),
    # rve
    (["rve", "--shape", "64"], "--voxel-size"),
    (["rve", "--voxel-size", "40", "--shape", "64", "--edges", "2", "8"], "smallest"),
    (["rve", "--voxel-size", "40", "--shape", "64", "--edges", "64"], "fewer than 2"),
    (["rve", "--voxel-size", "40", "--shape", "16"], "too small"),
    (["rve", "--voxel-size", "40", "--shape", "64", "--descriptors", "tau"], "unknown"),
    (["rve", "--voxel-size", "40", "--shape", "64", "--rel-error", "M=0.05"], "not measured"),
    (["rve", "--voxel-size", "40", "--shape", "64", "--rel-error", "volume_fraction=2"],
     "(0, 1)"),
    (["rve", "--voxel-size", "-4", "--shape", "64"], "voxel"),
    (["rve", "{img}", "--realizations", "3"], "model"),
    (["rve", "{img}", "--shape", "128"], "model"),
    (["rve", "{bad}"], "label"),
    (["rve", "{img}", "--edges", "8", "--plot", "{dir}/x.txt"], ".png"),
    (["rve", "--voxel-size", "40", "--shape", "64", "--out", "{dir}/r.txt"], ".json"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    lab = (np.indices((16, 16, 16)).sum(axis=0) % 3).astype(np.uint8)
    out = {
        "img": write_image(d / "img.tif", lab, {"voxel_size": 40.0}),
        "bad": write_image(d / "bad.npy", (lab + 1).astype(np.uint8), {"voxel_size": 40.0}),
        "flat": d / "flat.npy",
        "npy": d / "plain.npy",
        "big": write_image(d / "big.npy", np.pad(lab, ((0, 32),) * 3, mode="wrap"),
                           {"voxel_size": 40.0}),
        "txt": d / "notes.txt",
    }
    np.save(out["npy"], lab)
    np.save(out["flat"], lab[0])
    out["txt"].write_text("not an image\n")
    return {k: str(v) for k, v in out.items()}


def test_the_table_has_at_least_60_rows_over_every_command():
    assert len(ROWS) >= 60
    assert {argv[0] for argv, _ in ROWS} == {"generate", "theory", "describe", "transport",
                                             "fit", "prepare", "composition", "validate",
                                             "sweep", "crop", "resample", "rve"}


@pytest.mark.parametrize("argv, words", ROWS, ids=[f"{i}-{r[0][0]}" for i, r in
                                                   enumerate(ROWS)])
def test_bad_input_exits_2_with_one_line_and_leaves_nothing(files, tmp_path, capsys, argv,
                                                            words):
    fill = dict(files, dir=str(tmp_path), missing=str(tmp_path / "missing" / "x"))
    args = [a.format(**fill) for a in argv]
    before = sorted(tmp_path.rglob("*"))
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert words in err, err
    assert sorted(tmp_path.rglob("*")) == before
