"""The command line's error exit (cbagpu.cli.common.exit_status): bad input, an unavailable
backend, too little memory, bad paths and missing extras exit 2 with one line; failed tasks
of a study exit 1; anything else (a bug) keeps its traceback."""

from __future__ import annotations

import pytest

from cbagpu.cli import build_parser, main
from cbagpu.cli.common import exit_status
from cbagpu.errors import (
    BackendUnavailableError,
    CbagpuError,
    InsufficientMemoryError,
    InvalidInputError,
    TasksFailedError,
)


@pytest.mark.parametrize("exc, status", [
    (InvalidInputError("bad shape"), 2),
    (ValueError("bad value"), 2),
    (BackendUnavailableError("no GPU"), 2),
    (InsufficientMemoryError("needs 9 GiB"), 2),
    (FileNotFoundError("no such file"), 2),
    (PermissionError("read-only"), 2),
    (ImportError("install the plot extra"), 2),
    (TasksFailedError("1 of 4 tasks failed", {"t": "boom"}), 1),
    (CbagpuError("did not work"), 1),
])
def test_exit_status_and_one_line(exc, status, capsys):
    assert exit_status("x", exc) == status
    err = capsys.readouterr().err
    assert err.startswith("cbagpu x: error: ") and err.count("\n") == 1


@pytest.mark.parametrize("exc", [TypeError("bug"), KeyError("bug"), AttributeError("bug"),
                                 ZeroDivisionError("bug")])
def test_programming_errors_are_not_usage_errors(exc, capsys):
    assert exit_status("x", exc) is None
    assert capsys.readouterr().err == ""


def _patched_command(monkeypatch, exc):
    """Make ``cbagpu info`` raise ``exc`` (the command's one library call)."""
    from cbagpu.cli import info

    def boom(args):
        raise exc

    monkeypatch.setattr(info, "run", boom)


def test_main_lets_a_bug_show_its_traceback(monkeypatch):
    _patched_command(monkeypatch, TypeError("a bug"))
    with pytest.raises(TypeError, match="a bug"):
        main(["info"])


def test_main_maps_a_backend_error_inside_a_study_to_2(monkeypatch, capsys):
    """A BackendUnavailableError is a RuntimeError, as TasksFailedError is: it must still
    exit 2 (bad request), not 1 (failed work)."""
    _patched_command(monkeypatch, BackendUnavailableError("backend 'cupy' cannot run here"))
    assert main(["info"]) == 2
    _patched_command(monkeypatch, TasksFailedError("2 of 3 tasks failed"))
    assert main(["info"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["cbagpu info: error: backend 'cupy' cannot run here",
                   "cbagpu info: error: 2 of 3 tasks failed"]


def test_sweep_with_an_unavailable_backend_exits_2(tmp_path, capsys):
    from cbagpu.backend import gpu_available

    if gpu_available():
        pytest.skip("a GPU is available here")
    code = main(["sweep", "--voxel-size", "80", "--shape", "12", "--realizations", "1",
                 "--workers", "1", "--backend", "cupy", "--quiet", "--out",
                 str(tmp_path / "sw")])
    err = capsys.readouterr().err
    assert code == 2 and "cupy" in err and err.count("\n") == 1


def test_every_command_has_a_module_and_the_shared_options():
    p = build_parser()
    sub = next(a for a in p._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sub.choices) == {"generate", "theory", "describe", "transport", "fit",
                                "prepare", "composition", "validate", "sweep", "regress",
                                "info", "export", "show", "crop", "resample", "rve"}
    for name in ("generate", "theory", "sweep", "validate"):
        opts = {o for a in sub.choices[name]._actions for o in a.option_strings}
        assert {"--params", "--preset"} <= opts, name
    for name in ("describe", "fit", "sweep", "validate"):
        opts = {o for a in sub.choices[name]._actions for o in a.option_strings}
        assert "--plot" in opts, name


def test_questionable_input_is_refused_or_named(tmp_path, capsys):
    """Issue 14, item 7: a label given twice or an empty --sigma, weights of the whole
    electrode that do not sum to 100, a store replaced without --overwrite; a --voxel-size
    that differs from the file's metadata is used, with a warning naming both."""
    import numpy as np

    from cbagpu.io import write_image

    img = write_image(tmp_path / "l.npy", np.zeros((8, 8, 8), np.uint8), {"voxel_size": 40.0})
    cases = [
        (["transport", str(img), "--sigma", "0=1,0=0,2=1"], "given twice"),
        (["transport", str(img), "--sigma", ""], "no conductivities"),
        (["composition", "--wt", "am=97,graphite=15,binder=8", "--density",
          "am=4.7,graphite=2.3,binder=1.8", "--porosity", "0.5"], "sum to 120"),
        (["composition", "--wt", "am=87,grafite=5,binder=8", "--density",
          "am=4.7,grafite=2.3,binder=1.8", "--porosity", "0.5"], "no constituent 'graphite'"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    store = tmp_path / "s.zarr"
    store.mkdir()
    assert main(["generate", "--voxel-size", "80", "--shape", "4", "4", "4", "--seed", "1",
                 "--out", str(store), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err and store.is_dir()
    assert main(["describe", str(img), "--voxel-size", "20", "--phase", "pore",
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "differs from the 40 nm" in err and "using 20 nm" in err
