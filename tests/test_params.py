"""Tests of cbagpu.params (Table 2 parameters, NOTES §3 unit conversion, presets)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from cbagpu.params import (
    PARAM_NAMES,
    PRESETS,
    TABLE3_LAMBDA_X,
    TABLE3_V1,
    CBAParams,
    VoxelParams,
    preset,
)

TABLE2 = {
    "lambda_x": 6.355e-11,
    "alpha1": 205.0,
    "alpha2": 3944.0,
    "gamma": 1.971,
    "mu": 0.499,
    "eta": 0.0127,
    "theta": 0.0105,
    "lambda_y": 9.340e-9,
}


def make(**changes: object) -> CBAParams:
    return CBAParams(**{**TABLE2, **changes})  # type: ignore[arg-type]


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("name", PARAM_NAMES)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, True, "1.0", None, 1j])
def test_non_finite_or_non_real_rejected_and_named(name: str, bad: object) -> None:
    with pytest.raises(ValueError, match=name) as info:
        make(**{name: bad})
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("name", ["lambda_x", "alpha1", "alpha2", "gamma", "eta", "theta"])
@pytest.mark.parametrize("bad", [0.0, -1.0, -1e-300])
def test_positive_parameters(name: str, bad: float) -> None:
    with pytest.raises(ValueError, match=rf"{name}.*> 0.*{bad!r}"):
        make(**{name: bad})


def test_lambda_y_may_be_zero_but_not_negative() -> None:
    assert make(lambda_y=0.0).lambda_y == 0.0
    with pytest.raises(ValueError, match=r"lambda_y.*-1e-09"):
        make(lambda_y=-1e-9)


def test_mu_any_finite_real() -> None:
    assert make(mu=-3.5).mu == -3.5
    assert make(mu=0).mu == 0.0


@pytest.mark.parametrize("bad", [0.0, -20.0, math.nan, math.inf, "20", True])
def test_calibrated_voxel_size_validation(bad: object) -> None:
    with pytest.raises(ValueError, match="calibrated_voxel_size"):
        make(calibrated_voxel_size=bad)


def test_ints_and_numpy_scalars_coerced_to_float() -> None:
    p = make(alpha1=205, alpha2=np.int64(3944), gamma=np.float32(2.0), calibrated_voxel_size=20)
    assert type(p.alpha1) is float and p.alpha1 == 205.0
    assert type(p.alpha2) is float and p.alpha2 == 3944.0
    assert type(p.gamma) is float and p.gamma == 2.0
    assert type(p.calibrated_voxel_size) is float
    with pytest.raises(ValueError, match="alpha1"):
        make(alpha1=np.bool_(True))


def test_frozen_and_replace() -> None:
    p = make()
    with pytest.raises(AttributeError):
        p.mu = 1.0  # type: ignore[misc]
    q = p.replace(mu=1.0)
    assert q.mu == 1.0 and p.mu == 0.499 and q.alpha1 == p.alpha1
    with pytest.raises(ValueError, match="eta"):
        p.replace(eta=-1.0)


# ---------------------------------------------------------------- serialisation
def test_to_dict_keys() -> None:
    assert list(make().to_dict()) == list(PARAM_NAMES)
    d = make(calibrated_voxel_size=20.0).to_dict()
    assert list(d) == [*PARAM_NAMES, "calibrated_voxel_size"]
    assert d["lambda_x"] == 6.355e-11 and d["calibrated_voxel_size"] == 20.0


@pytest.mark.parametrize("cvs", [None, 20.0])
def test_json_round_trip_exact(tmp_path: Path, cvs: float | None) -> None:
    p = make(lambda_x=1.0 / 3.0 * 1e-10, mu=-0.1234567890123456789, calibrated_voxel_size=cvs)
    text = p.to_json()
    assert CBAParams.from_json(text) == p
    path = tmp_path / "params.json"
    text2 = p.to_json(path)
    assert text2 == text
    assert path.read_text() == text
    assert CBAParams.from_json(path) == p
    assert CBAParams.from_json(str(path)) == p
    assert CBAParams.from_dict(p.to_dict()) == p
    # atomic write leaves no temporary files behind, and overwriting works
    p.replace(mu=2.0).to_json(path)
    assert CBAParams.from_json(path).mu == 2.0
    assert [f.name for f in tmp_path.iterdir()] == ["params.json"]


def test_file_with_only_the_eight_keys_loads(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(
        '{"lambda_x": 6.355e-11, "alpha1": 205, "alpha2": 3944, "gamma": 1.971, '
        '"mu": 0.499, "eta": 0.0127, "theta": 0.0105, "lambda_y": 9.340e-9}'
    )
    p = CBAParams.from_json(path)
    assert p == make()
    assert p.calibrated_voxel_size is None


def test_unknown_key_rejected() -> None:
    d = {**TABLE2, "lambda_z": 1.0, "foo": 2}
    with pytest.raises(ValueError, match=r"unknown keys: foo, lambda_z"):
        CBAParams.from_dict(d)
    with pytest.raises(ValueError, match="unknown keys: foo"):
        CBAParams.from_json(json.dumps({**TABLE2, "foo": 1}))


def test_missing_keys_listed() -> None:
    d = dict(TABLE2)
    del d["eta"], d["alpha2"]
    with pytest.raises(ValueError, match=r"missing keys: alpha2, eta"):
        CBAParams.from_dict(d)


def test_from_dict_validates_values() -> None:
    with pytest.raises(ValueError, match="theta"):
        CBAParams.from_dict({**TABLE2, "theta": "0.01"})


# ---------------------------------------------------------------- voxel units
def test_to_voxel_s20() -> None:
    v = make(calibrated_voxel_size=20.0).to_voxel(20.0)
    assert isinstance(v, VoxelParams)
    # hand-computed: 6.355e-11 * 8000, 205/20, 3944/20, 0.0127*20, 0.0105*20, 9.34e-9*8000
    expected = {
        "lambda_x": 5.084e-7,
        "shape1": 10.25,
        "shape2": 197.2,
        "gamma": 1.971,
        "mu": 0.499,
        "eta": 0.254,
        "theta": 0.21,
        "lambda_y": 7.472e-5,
        "voxel_size": 20.0,
    }
    assert v.as_dict() == pytest.approx(expected, rel=1e-13)


def test_to_voxel_s40() -> None:
    v = make().to_voxel(40)
    # hand-computed: *64000, /40, *40
    expected = {
        "lambda_x": 4.0672e-6,
        "shape1": 5.125,
        "shape2": 98.6,
        "gamma": 1.971,
        "mu": 0.499,
        "eta": 0.508,
        "theta": 0.42,
        "lambda_y": 5.9776e-4,
        "voxel_size": 40.0,
    }
    assert v.as_dict() == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("bad", [0.0, -20.0, math.nan, math.inf, "20"])
def test_to_voxel_rejects_bad_voxel_size(bad: object) -> None:
    with pytest.raises(ValueError, match="voxel_size"):
        make().to_voxel(bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- presets
def test_paper_preset_is_table2() -> None:
    p = preset("paper")
    assert p.to_dict() == {**TABLE2, "calibrated_voxel_size": 20.0}


def test_table3_presets() -> None:
    lams = (2.21e-11, 3.55e-11, 4.93e-11, 6.36e-11, 7.81e-11, 9.33e-11, 1.09e-10)
    assert TABLE3_LAMBDA_X == lams
    assert TABLE3_V1 == (0.0381, 0.0605, 0.0830, 0.1057, 0.1283, 0.1512, 0.1744)
    assert set(PRESETS) == {"paper"} | {f"table3-{i}" for i in range(1, 8)}
    for i, lam in enumerate(lams, start=1):
        p = preset(f"table3-{i}")
        assert p.lambda_x == lam
        assert p.replace(lambda_x=6.355e-11) == preset("paper")


def test_unknown_preset_lists_names() -> None:
    with pytest.raises(ValueError, match=r"unknown preset 'x'; choose one of: paper, table3-1"):
        preset("x")
    with pytest.raises(ValueError, match="table3-7"):
        preset("table3-8")
