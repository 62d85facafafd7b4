"""Every JSON cbagpu writes is strict (RFC 8259): undefined and infinite numbers are null."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from cbagpu.io.atomic import json_safe, write_json_atomic


def _strict_load(text: str):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict {c}"))


def test_json_safe_converts_every_kind():
    got = json_safe({"nan": math.nan, "inf": -math.inf, "f32": np.float32(2.5),
                     "i": np.int64(3), "b": np.bool_(True), "a": np.array([1.0, np.nan]),
                     "t": (1, math.inf), "p": Path("x/y"), 4: "key"})
    assert got == {"nan": None, "inf": None, "f32": 2.5, "i": 3, "b": True,
                   "a": [1.0, None], "t": [1, None], "p": "x/y", "4": "key"}
    assert type(got["f32"]) is float and type(got["i"]) is int


def test_write_json_atomic_is_strict(tmp_path):
    path = write_json_atomic(tmp_path / "r.json", {"tau": math.inf, "v": [np.float64(1.5)]})
    assert _strict_load(path.read_text()) == {"tau": None, "v": [1.5]}


def test_cli_json_is_strict(capsys):
    from cbagpu.cli.common import print_json

    print_json({"x": math.nan, "y": [math.inf, 1.0]})
    assert _strict_load(capsys.readouterr().out) == {"x": None, "y": [None, 1.0]}
