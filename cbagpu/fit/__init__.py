"""Calibration of the model to a segmented image (paper Section 3.2): ``fit``.

:func:`fit` runs the three stages (Ξ1: :mod:`.graphite`, Ξ2: :mod:`.grf`, Ξ3: :mod:`.pores`)
and returns a :class:`FitResult` (``params``, ``report``). Command line:
:mod:`cbagpu.cli.fit`; figures: :func:`cbagpu.plots.plot_fit_report`.
"""

from .calibrate import FitResult, FitWarning, fit
from .report import FitReport

__all__ = ["FitReport", "FitResult", "FitWarning", "fit", "plot_report"]


def plot_report(report: FitReport, path: str) -> None:
    """Deprecated: use :func:`cbagpu.plots.plot_fit_report` (the library no longer draws)."""
    import warnings

    from cbagpu.plots import plot_fit_report

    warnings.warn("cbagpu.fit.plot_report is deprecated: use cbagpu.plots.plot_fit_report",
                  DeprecationWarning, stacklevel=2)
    plot_fit_report(report, path)
