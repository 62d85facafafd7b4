"""``cbagpu fit`` (CLI) and the bad input of ``cbagpu.fit.fit`` (issue 4, item 5)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from cbagpu import CBAParams, generate
from cbagpu.cli import main as cbagpu_main
from cbagpu.fit import FitWarning, fit
from cbagpu.fit.calibrate import MIN_EDGE, NO_GRAPHITE_LAMBDA_X
from cbagpu.io import write_image

S = 40.0
P = CBAParams(lambda_x=3e-10, alpha1=800.0, alpha2=2400.0, gamma=4.0, mu=0.2, eta=0.02,
              theta=0.0125, lambda_y=-math.log(0.85) * 0.0125**3 / (8 * math.pi))
FAST = dict(realizations=1, backend="numpy", theta_grid=(0.0125, 0.0105))


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return generate(P, (64, 64, 64), S, 2, backend="numpy")


def _run(argv: list[str]) -> int:
    return cbagpu_main(argv)


def test_cli_fit_writes_loadable_params(tmp_path, image, capsys) -> None:
    img = tmp_path / "img.tif"
    write_image(img, image, {"voxel_size": S})  # voxel size from the file's metadata
    out = tmp_path / "params.json"
    png = tmp_path / "fit.png"
    rc = _run(["fit", str(img), "--out", str(out), "--json", "--plot", str(png),
               "--realizations", "1", "--seed", "3", "--quiet"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d) == {"params", "report"}
    q = CBAParams.from_json(out)
    assert q.to_dict() == pytest.approx(d["params"])
    assert q.calibrated_voxel_size == S
    assert png.stat().st_size > 1000
    # loadable by `cbagpu generate --params`
    rc = cbagpu_main(["generate", "--params", str(out), "--voxel-size", "40", "--shape", "8",
                      "8", "8", "--seed", "1", "--out", str(tmp_path / "g.npy"), "--quiet"])
    assert rc == 0


def test_cli_bad_input(tmp_path, image, capsys) -> None:
    npy = tmp_path / "img.npy"
    np.save(npy, image)  # no metadata
    out = str(tmp_path / "p.json")
    assert _run(["fit", str(npy), "--out", out]) == 2
    assert "no voxel size" in capsys.readouterr().err
    assert _run(["fit", str(tmp_path / "missing.npy"), "--voxel-size", "40", "--out", out]) == 2
    assert "not found" in capsys.readouterr().err
    bad = image.copy()
    bad[0, 0, 0] = 7
    np.save(npy, bad)
    assert _run(["fit", str(npy), "--voxel-size", "40", "--out", out]) == 2
    assert "found [7]" in capsys.readouterr().err
    np.save(npy, image)
    assert _run(["fit", str(npy), "--voxel-size", "40", "--out", out,
                 "--grf-roi", "0:10,0:10"]) == 2
    assert "z0:z1" in capsys.readouterr().err
    assert _run(["fit", str(npy), "--voxel-size", "40",
                 "--out", str(tmp_path / "no" / "p.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()  # nothing half-written


def test_bad_input_api(image) -> None:
    with pytest.raises(ValueError, match="voxel size is missing"):
        fit(image, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite and > 0"):
        fit(image, -1.0)
    with pytest.raises(ValueError, match="found \\[3\\]"):
        fit(np.where(image == 2, 3, image).astype(np.uint8), S)
    with pytest.raises(ValueError, match=f"at least {MIN_EDGE} voxels"):
        fit(image[:40], S)
    with pytest.raises(ValueError, match="3D"):
        fit(image[0], S)
    with pytest.raises(ValueError, match="no CBD"):
        fit(np.zeros((48, 48, 48), np.uint8), S)
    with pytest.raises(ValueError, match="realizations"):
        fit(image, S, realizations=0)


def test_no_graphite_fits_xi2_xi3_with_a_warning(image) -> None:
    lab = np.where(image == 2, 1, image).astype(np.uint8)
    with pytest.warns(FitWarning, match="no graphite"):
        res = fit(lab, S, **FAST)
    assert res.params.lambda_x == NO_GRAPHITE_LAMBDA_X
    assert res.report.graphite is None and res.report.to_dict()["table1"] is None
    assert math.isfinite(res.params.mu) and res.params.eta > 0
    # no graphite: the model has V1 = 0 and V matches the image
    from cbagpu import model_theory

    assert model_theory(res.params, S).V == pytest.approx(float((lab > 0).mean()), rel=1e-6)


def test_user_roi(image) -> None:
    # a user ROI is used as given (and reported)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(image, S, grf_roi="0:32,0:32,0:32", **FAST)
    assert any("masked estimator" in str(w.message) for w in caught)
    g = res.report.grf
    assert g.roi_source == "user" and [str(b) for b in g.boxes] == ["0:32,0:32,0:32"]
    assert "Table 2" in res.report.text()
