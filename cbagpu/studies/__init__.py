"""Studies over many realizations (paper Sections 3.3-3.4, 4): validation across resolutions,
virtual materials testing, regressions, block-wise generation; tasks run on Dask.

    from cbagpu.studies import validate, sweep, generate_zarr, fit_power_law, fit_linear
    from cbagpu.studies import Task, TaskStore, run_tasks      # the resumable task runner

Dask (``pip install cbagpu[dask]``) is imported only when tasks run on it.
"""

from cbagpu.studies.regression import LinearFit, PowerLawFit, fit_linear, fit_power_law
from cbagpu.studies.sweep import SweepResult, sweep
from cbagpu.studies.tasks import Task, TaskStore, run_tasks
from cbagpu.studies.validate import ValidationResult, validate
from cbagpu.studies.volume import ZarrGeneration, generate_zarr

__all__ = [
    "LinearFit",
    "PowerLawFit",
    "SweepResult",
    "Task",
    "TaskStore",
    "ValidationResult",
    "ZarrGeneration",
    "fit_linear",
    "fit_power_law",
    "generate_zarr",
    "run_tasks",
    "sweep",
    "validate",
]
