"""The benchmark harness, run on a tiny synthetic suite (no cbagpu, no GPU needed)."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the spawned case workers inherit sys.path
    sys.path.insert(0, str(ROOT))

harness = importlib.import_module("benchmarks.harness")
suite_generate = importlib.import_module("benchmarks.suite_generate")

FAKE_SUITE = '''\
"""selftest: a tiny synthetic suite for the harness tests."""
import os
import time

import numpy as np

from benchmarks.harness import Case, SkipCase

TARGETS = {"text": "nothing to meet"}


def _setup():
    return np.ones(4_000_000)  # 32 MB, so the case's peak RSS rises above its baseline


def _run(state):
    time.sleep(0.01)
    return {"sum": float(state.sum()), "label": "x"}


def _fail(state):
    raise ValueError("boom from the fake suite")


def _die(state):
    os._exit(3)


def _skip_in_setup():
    raise SkipCase("no accelerator here")


def cases(backend, quick):
    return [
        Case(name="ok", params={"size": 8, "backend": backend}, setup=_setup, run=_run,
             voxels=512),
        Case(name="fails", params={"size": 8}, run=_fail),
        Case(name="dies", params={"size": 16}, run=_die),
        Case(name="skipped", params={"size": 8}, run=_run, skip="too big for this machine"),
        Case(name="skips-in-setup", params={"size": 8}, setup=_skip_in_setup, run=_run),
    ]


def summarize(result):
    return {"n_cases": len(result["cases"])}
'''


@pytest.fixture()
def fake_suite(tmp_path: Path) -> ModuleType:
    """The synthetic suite, written outside benchmarks/ and loaded as a module object."""
    path = tmp_path / "suite_selftest.py"
    path.write_text(FAKE_SUITE, encoding="utf-8")
    return harness.load_suite(str(path))


def test_run_suite_writes_complete_json(fake_suite: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result, path = harness.run_suite(fake_suite, backend="numpy", repeat=3, out_dir=out, echo=False)

    assert path.parent == out and path.name.startswith("selftest-cpu-")
    assert path.suffix == ".json"
    assert sorted(p.name for p in out.iterdir()) == [path.name]  # no temporary file left
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["cases"] == json.loads(json.dumps(result["cases"]))

    assert data["suite"] == "selftest" and data["backend"] == "numpy"
    assert data["complete"] is True
    assert data["machine_slug"] in path.name
    for key in (
        "hostname",
        "cpu_model",
        "logical_cores",
        "usable_cores",
        "memory_total_mib",
        "os",
        "python",
    ):
        assert key in data["machine"], key
    assert data["machine"]["logical_cores"] >= 1
    assert set(data["packages"]) >= {
        "numpy",
        "scipy",
        "cupy",
        "cucim",
        "tifffile",
        "porespy",
        "cbagpu",
    }
    assert data["packages"]["numpy"] == np.__version__
    assert "available" in data["gpu"]
    assert data["method"]["warmup_runs"] == 1 and data["method"]["warmup_counted"] is False
    assert data["targets"] == {"text": "nothing to meet"}
    assert data["summary"] == {"n_cases": 5}
    assert data["counts"] == {"ok": 1, "error": 2, "skipped": 2}

    cases = {c["name"]: c for c in data["cases"]}
    assert list(cases) == ["ok", "fails", "dies", "skipped", "skips-in-setup"]

    ok = cases["ok"]
    assert ok["status"] == "ok" and ok["params"] == {"size": 8, "backend": "numpy"}
    assert len(ok["times_s"]) == 3 and ok["warmup_s"] > 0
    assert ok["min_s"] <= ok["median_s"] <= ok["max_s"]
    assert ok["min_s"] >= 0.01
    assert ok["peak_host_mib"] > 0
    assert ok["peak_host_mib"] >= ok["host_baseline_mib"] + 20  # the 32 MB setup array
    assert ok["extra"] == {"sum": 4_000_000.0, "label": "x"}
    assert ok["voxels_per_s"] == pytest.approx(512 / ok["median_s"])
    assert "peak_device_mib" not in ok  # numpy backend

    fails = cases["fails"]
    assert fails["status"] == "error"
    assert "ValueError: boom from the fake suite" in fails["error"]
    assert "warm-up" in fails["error"] and "Traceback" in fails["traceback"]
    assert fails["peak_host_mib"] > 0

    dies = cases["dies"]
    assert dies["status"] == "error" and "exit code 3" in dies["error"]

    assert cases["skipped"]["status"] == "skipped"
    assert cases["skipped"]["skip_reason"] == "too big for this machine"
    assert "times_s" not in cases["skipped"]
    assert cases["skips-in-setup"]["status"] == "skipped"
    assert cases["skips-in-setup"]["skip_reason"] == "no accelerator here"

    table = harness.format_table(data).splitlines()
    assert table[0].startswith("case") and "median s" in table[0] and "peak dev MiB" in table[0]
    assert len(table) == 2 + 5
    assert "ERROR ValueError: boom" in table[3]
    assert table[2].index("ok") == 0


def test_no_warm_up_for_single_shot_cases(fake_suite: ModuleType, tmp_path: Path) -> None:
    result, _ = harness.run_suite(fake_suite, backend="numpy", repeat=1, out_dir=tmp_path,
                                  echo=False, select="ok", warmup=0)
    (ok,) = result["cases"]
    assert ok["status"] == "ok" and len(ok["times_s"]) == 1 and "warmup_s" not in ok
    assert result["method"]["warmup_runs"] == 0 and "no warm-up" in result["method"][
        "warmup_note"]
    with pytest.raises(ValueError, match="warmup"):
        harness.run_suite(fake_suite, backend="numpy", out_dir=tmp_path, warmup=2)


def test_sizes_filter_and_select(fake_suite: ModuleType) -> None:
    names = [c.name for c in harness._suite_cases(fake_suite, "numpy", False, [16])]
    assert names == ["dies"]
    generate = [c.name for c in suite_generate.cases("numpy", False, sizes=[32, 16])]
    assert generate == ["generate-16", "fft-field-16", "generate-32", "fft-field-32"]


def test_write_json_atomic_keeps_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.json"
    harness.write_json_atomic(path, {"a": 1, "nan": float("nan"), "x": np.float32(2.5)})
    assert json.loads(path.read_text()) == {"a": 1, "nan": None, "x": 2.5}

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        harness.write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1, "nan": None, "x": 2.5}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_machine_slug() -> None:
    machine = {"cpu_model": "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", "usable_cores": 2}
    assert harness.machine_slug(machine, {}, "numpy") == "cpu-2c-intel-xeon-e5-2680-v4"
    gpu = {"available": True, "name": "NVIDIA H100 80GB HBM3"}
    assert harness.machine_slug(machine, gpu, "cupy") == "nvidia-h100-80gb-hbm3"
    assert harness.machine_slug(machine, gpu, "numpy").startswith("cpu-2c-")
    fallback = harness.machine_slug(
        machine, {"available": False}, "cupy", {"device_name": "NVIDIA H200"}
    )
    assert fallback == "nvidia-h200"


def test_gpu_info_never_raises() -> None:
    info = harness.gpu_info()
    assert isinstance(info["available"], bool)
    assert info["available"] or "reason" in info


def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert harness.main(["list"]) == 0
    assert "generate" in capsys.readouterr().out


@pytest.mark.parametrize("shape", [(16, 16, 16), (16, 12, 10), (15, 16, 16), (8, 9, 7)])
def test_fft_baseline_spectrum_matches_full_rfftn(shape: tuple[int, int, int]) -> None:
    import scipy.fft

    eta = suite_generate.ETA_PER_VOXEL
    assert eta == pytest.approx(0.254)
    got = suite_generate.sqrt_spectrum(shape, eta)
    full = scipy.fft.rfftn(suite_generate._periodic_covariance(shape, eta)).real
    want = np.sqrt(np.clip(full, 0.0, None))
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * want.max())


def test_fft_field_case_runs_in_process() -> None:
    (case,) = [c for c in suite_generate.cases("numpy", True, sizes=[16]) if "fft" in c.name]
    state = case.setup()
    assert state["sqrt_s"].shape == (16, 16, 9)
    assert case.run(state) is None
    # Var of the field = mean of the full spectrum = rho(0) = 1 before clipping; clipping the
    # (few, small) negative values of the wrapped 1/(1+(eta h)^2) can only add a little.
    half = state["sqrt_s"].astype(np.float64) ** 2
    variance = (half.sum() + half[:, :, 1:-1].sum()) / 16**3
    assert 1.0 <= variance < 1.05


def test_generate_chunked_summary_pairs_stores_with_the_in_memory_case():
    """Ratios store / in-memory of the medians (wall and CPU of the timed calls) and the
    label-hash comparison, per window size."""
    def rec(size, chunks, median, cpu, digest):
        return {"params": {"kind": "chunked", "size": size, "chunks": chunks},
                "median_s": median, "times_s": [median] * 2,
                "extra": {"cpu_s": [99.0, *cpu], "labels_sha256_16": digest}}

    records = {"chunked-8-memory": rec(8, None, 2.0, [1.0, 1.0], "aa"),
               "chunked-8-c4": rec(8, 4, 2.5, [1.0, 2.0], "aa"),
               "chunked-8-c2": rec(8, 2, 4.0, [3.0, 3.0], "bb"),
               "chunked-9-c4": rec(9, 4, 1.0, [1.0, 1.0], "aa"),
               "generate-8": {"params": {"kind": "generate"}, "median_s": 1.0}}
    out = suite_generate._chunked_summary(records)
    assert list(out) == ["chunked-8-memory"]
    stores = out["chunked-8-memory"]["stores"]
    assert set(stores) == {"chunked-8-c4", "chunked-8-c2"}
    assert stores["chunked-8-c4"]["ratio_to_memory"] == pytest.approx(1.25)
    assert stores["chunked-8-c4"]["cpu_ratio_to_memory"] == pytest.approx(1.5)
    assert stores["chunked-8-c4"]["labels_identical"] and stores["chunked-8-c4"]["ratio_met"]
    assert stores["chunked-8-c2"]["labels_identical"] is False
    assert stores["chunked-8-c2"]["ratio_met"] is False
