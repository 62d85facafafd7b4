"""Calibration of the model to a segmented image (paper Section 3.2): ``fit``.

:func:`fit` runs the three stages (Ξ1: :mod:`.graphite`, Ξ2: :mod:`.grf`, Ξ3: :mod:`.pores`)
and returns a :class:`FitResult` (``params``, ``report``).  CLI: :mod:`.cli`.
"""

from .calibrate import FitResult, FitWarning, fit
from .report import FitReport, plot_report

__all__ = ["FitReport", "FitResult", "FitWarning", "fit", "plot_report"]
