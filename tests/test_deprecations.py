"""Names moved by the "one house" refactor keep working for one release, with a
DeprecationWarning that says where they went."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("module, name, new", [
    ("cbagpu.atomic", "write_text_atomic", "cbagpu.io.atomic"),
    ("cbagpu.atomic", "save_figure_atomic", "cbagpu.io.atomic"),
    ("cbagpu.studies.figures", "plot_validation", "cbagpu.plots"),
    ("cbagpu.studies.figures", "plot_figure5", "cbagpu.plots"),
    ("cbagpu.measure.describe", "plot_description", "cbagpu.plots"),
])
def test_moved_names_warn_and_resolve(module, name, new):
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        got = getattr(importlib.import_module(module), name)
    assert got is getattr(importlib.import_module(new), name)


def test_unknown_names_still_raise():
    with pytest.raises(AttributeError):
        importlib.import_module("cbagpu.studies.figures").nonesuch  # noqa: B018


def test_fit_plot_report_delegates(tmp_path, monkeypatch):
    import cbagpu.fit
    import cbagpu.plots

    seen = []
    monkeypatch.setattr(cbagpu.plots, "plot_fit_report", lambda r, p: seen.append((r, p)))
    with pytest.warns(DeprecationWarning, match="plot_fit_report"):
        cbagpu.fit.plot_report("report", tmp_path / "x.png")
    assert seen == [("report", tmp_path / "x.png")]


def test_sweep_and_validate_plot_arguments_are_deprecated():
    import inspect

    from cbagpu.studies.sweep import sweep
    from cbagpu.studies.validate import validate

    assert inspect.signature(sweep).parameters["plot"].default is None
    assert "deprecated" in (sweep.__doc__ or "") and "deprecated" in (validate.__doc__ or "")
