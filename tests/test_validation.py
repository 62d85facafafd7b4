"""One rule per kind of argument (cbagpu.validation), applied by every public function:
axes as 0/1/2, -3..-1 or "z"/"y"/"x" (never a bool), voxel sizes, masks and labels; every
refusal is an InvalidInputError, which is a ValueError and a CbagpuError."""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu import generate, preset
from cbagpu.errors import CbagpuError, InvalidInputError
from cbagpu.measure.covariance import two_point_coverage
from cbagpu.measure.describe import describe, describe_phase
from cbagpu.measure.geodesic import geodesic_distance_map, geodesic_tortuosity
from cbagpu.measure.intrusion import constrictivity, intrusion
from cbagpu.measure.phases import phase_mask
from cbagpu.transport import transport
from cbagpu.validation import (
    check_axis,
    check_labels,
    check_mask_3d,
    check_seed,
    check_voxel_size,
    check_window,
)

LABELS = generate(preset("paper"), (12, 13, 14), 80, 2, backend="numpy")
MASK = phase_mask(LABELS, "pore")
COVERAGE = two_point_coverage(MASK, 80.0, backend="numpy")

# every public function that takes an axis, called with it as a keyword
AXIS_FUNCTIONS = {
    "geodesic_tortuosity": lambda ax: geodesic_tortuosity(MASK, 80.0, axis=ax,
                                                          backend="numpy").axis,
    "geodesic_distance_map": lambda ax: geodesic_distance_map(MASK, axis=ax,
                                                              backend="numpy").shape,
    "intrusion": lambda ax: intrusion(MASK, 80.0, axis=ax, backend="numpy").axis,
    "constrictivity": lambda ax: constrictivity(MASK, 80.0, axis=ax,
                                                backend="numpy").intrusion.axis,
    "describe_phase": lambda ax: describe_phase(MASK, 80.0, axis=ax, backend="numpy").phase,
    "describe": lambda ax: describe(LABELS, 80.0, phases=("pore",), axis=ax,
                                    backend="numpy").axis,
    "transport": lambda ax: transport(LABELS, "pore", axis=ax, backend="numpy").axis,
    "TwoPointCoverage.axis": lambda ax: COVERAGE.axis(ax).tolist(),
}


@pytest.mark.parametrize("given, expected", [(0, 0), (1, 1), (2, 2), (-3, 0), (-1, 2),
                                             ("z", 0), ("y", 1), ("x", 2), (np.int64(1), 1)])
def test_check_axis_accepts_every_form(given, expected):
    assert check_axis(given) == expected


@pytest.mark.parametrize("bad", [True, False, 3, -4, 1.0, "w", "Z", None, [0], np.bool_(True)])
def test_check_axis_rejects(bad):
    with pytest.raises(InvalidInputError, match="axis"):
        check_axis(bad)


@pytest.mark.parametrize("name", sorted(AXIS_FUNCTIONS))
def test_every_public_function_takes_every_axis_form(name):
    fn = AXIS_FUNCTIONS[name]
    results = {form: fn(form) for form in (2, -1, "x")}
    assert len({repr(v) for v in results.values()}) == 1, results


@pytest.mark.parametrize("name", sorted(AXIS_FUNCTIONS))
@pytest.mark.parametrize("bad", [True, "w", 3])
def test_every_public_function_refuses_a_bad_axis(name, bad):
    with pytest.raises(InvalidInputError, match="axis"):
        AXIS_FUNCTIONS[name](bad)


def test_invalid_input_is_a_value_error_and_a_cbagpu_error():
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(InvalidInputError, CbagpuError)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), None, True, "20"])
def test_check_voxel_size_rejects(bad):
    with pytest.raises(InvalidInputError, match="voxel"):
        check_voxel_size(bad)


def test_check_voxel_size_accepts_numbers():
    assert check_voxel_size(20) == 20.0
    assert check_voxel_size(np.float32(2.5)) == 2.5


def test_check_labels():
    lab = check_labels(np.array([[[0, 1], [2, 1]]], dtype=np.int64))
    assert lab.dtype == np.uint8
    for bad, msg in ((np.zeros((2, 2, 2), bool), "boolean"),
                     (np.zeros((2, 2), np.uint8), "3D"),
                     (np.full((2, 2, 2), 3, np.uint8), r"found \[3\]"),
                     (np.zeros((2, 2, 2), np.float32), "integers")):
        with pytest.raises(InvalidInputError, match=msg):
            check_labels(bad)


def test_check_mask_3d_min_edge():
    with pytest.raises(InvalidInputError, match=">= 2"):
        check_mask_3d(np.zeros((1, 4, 4), bool), min_edge=2)


def test_check_seed_and_window():
    assert check_seed(3.0) == 3
    for bad in (-1, 2**63, 1.5, True):
        with pytest.raises(InvalidInputError, match="seed"):
            check_seed(bad)
    assert check_window((4, 5, 6), (-1, 0, 1)) == ((4, 5, 6), (-1, 0, 1))
    with pytest.raises(InvalidInputError, match="positive"):
        check_window((0, 5, 6), (0, 0, 0))
