"""Progress on stderr (issue 17 item 4): tqdm bars on a terminal, plain lines otherwise,
nothing with --quiet; the library reports through callbacks only."""

from __future__ import annotations

import io

import numpy as np
import pytest

from cbagpu.cli import main
from cbagpu.cli.common import iteration_printer, progress_printer, stage_printer


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal():
    buf = io.StringIO()
    show = stage_printer(True, buf)
    show("field", 1, 2)
    show("field", 2, 2)
    show.close()
    lines = buf.getvalue().splitlines()
    assert [ln.split("] ", 1)[1] for ln in lines] == ["field 1/2", "field 2/2"]
    assert all(ln.startswith("[") and " s]" in ln for ln in lines)
    buf = io.StringIO()
    it = iteration_printer(True, buf)
    it(10, 1.5e-3)
    it.close()
    assert buf.getvalue().rstrip().endswith("iteration 10: flux spread 1.50e-03")
    assert stage_printer(False) is None and iteration_printer(False) is None


def test_bars_on_a_terminal():
    pytest.importorskip("tqdm")
    term = Terminal()
    show = stage_printer(True, term)
    for i in range(1, 5):  # describe: one bar whose step is renamed
        show(f"solid: step{i}", i, 4)
    show.close()
    out = term.getvalue()
    assert "\r" in out and "solid: step4" in out and "4/4" in out
    assert out.endswith("\n")
    assert out.count("\n") == 1  # a single bar, closed once
    term = Terminal()
    tasks = progress_printer(True, term, label="chunks")
    tasks(0, 8, None)
    tasks(3, 8, 185.0)
    tasks(8, 8, 0.0)
    out = term.getvalue()
    assert "chunks" in out and "3 min left" in out and "8/8" in out and "done" in out
    term = Terminal()
    it = iteration_printer(True, term)
    it(50, 2.0e-4)
    it.close()
    assert "iterations" in term.getvalue() and "flux spread 2.00e-04" in term.getvalue()


def test_quiet_is_silent(tmp_path, capsys):
    argv = ["generate", "--voxel-size", "80", "--shape", "12", "12", "12", "--seed", "1",
            "--backend", "numpy", "--out", str(tmp_path / "q.npy")]
    assert main(argv + ["--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(argv) == 0
    err = capsys.readouterr().err  # pytest's stderr is no terminal: plain lines
    assert "field" in err and "\r" not in err


def test_describe_reports_every_descriptor_of_every_phase():
    from cbagpu.measure.describe import DESCRIPTOR_STEPS, describe

    rng = np.random.default_rng(0)
    labels = rng.choice(3, size=(12, 12, 12), p=[0.5, 0.3, 0.2]).astype(np.uint8)
    calls = []
    describe(labels, 20.0, phases=("solid", "pore"), backend="numpy",
             progress=lambda *a: calls.append(a))
    n = len(DESCRIPTOR_STEPS)
    assert [c[1:] for c in calls] == [(i, 2 * n) for i in range(1, 2 * n + 1)]
    assert [c[0] for c in calls[:n]] == [f"solid: {d}" for d in DESCRIPTOR_STEPS]
    assert calls[-1][0] == f"pore: {DESCRIPTOR_STEPS[-1]}"


def test_plain_lines_on_a_terminal_without_tqdm(monkeypatch):
    from cbagpu.cli import common

    monkeypatch.setattr(common, "_tqdm", lambda: None)
    term = Terminal()
    tasks = progress_printer(True, term)
    tasks(12, 35, 185.0)
    assert term.getvalue() == "tasks 12/35, 3 min left\n"
