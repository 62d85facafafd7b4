"""Studies over many realizations (paper Sections 3.3-3.4, 4): validation across resolutions,
virtual materials testing, regressions, block-wise generation; tasks run on Dask.

    from cbagpu.studies.validate import validate      # Figures 5-7
    from cbagpu.studies.sweep import sweep            # Table 3, Figure 8
    from cbagpu.studies import generate_zarr, fit_power_law, fit_linear
    from cbagpu.studies import Task, TaskStore, run_tasks      # the resumable task runner

(``validate`` and ``sweep`` are not re-exported here: the names are their modules'.)

Dask (``pip install cbagpu[dask]``) is imported only when tasks run on it.
"""

from cbagpu.studies.regression import LinearFit, PowerLawFit, fit_linear, fit_power_law
from cbagpu.studies.tasks import Task, TaskStore, run_tasks
from cbagpu.studies.volume import ZarrGeneration, generate_zarr

__all__ = [
    "LinearFit",
    "PowerLawFit",
    "Task",
    "TaskStore",
    "ZarrGeneration",
    "fit_linear",
    "fit_power_law",
    "generate_zarr",
    "run_tasks",
]
