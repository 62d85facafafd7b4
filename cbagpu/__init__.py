"""cbagpu: GPU-accelerated stochastic 3D model of the nanoporous binder-conductive additive
phase of battery cathodes (Gräfensteiner et al.).

Public API (arrays in, arrays out)::

    from cbagpu import CBAParams, preset, generate
    labels = generate(preset("paper"), (200, 200, 200), voxel_size=20, seed=1)
    d = describe(labels, voxel_size=20)   # descriptors of the solid, pore, graphite phases
    r = rve(preset("paper"), 40, shape=128)  # spread between sub-windows, window needed
"""

from cbagpu._version import __version__
from cbagpu.backend import get_backend, gpu_available
from cbagpu.errors import (
    BackendUnavailableError,
    CbagpuError,
    InsufficientMemoryError,
    InvalidInputError,
    TasksFailedError,
)
from cbagpu.measure.chunked import ChunkedDescription, describe_chunked
from cbagpu.measure.describe import Description, PhaseDescription, describe
from cbagpu.params import PRESETS, CBAParams, VoxelParams, preset
from cbagpu.simulate import (
    Components,
    Realization,
    gaussian_field,
    generate,
    generate_components,
    realize,
)
from cbagpu.studies.rve import RVEResult, rve
from cbagpu.theory import ModelTheory, model_theory

__all__ = [
    "PRESETS",
    "BackendUnavailableError",
    "CBAParams",
    "CbagpuError",
    "ChunkedDescription",
    "Components",
    "Description",
    "InsufficientMemoryError",
    "InvalidInputError",
    "ModelTheory",
    "PhaseDescription",
    "RVEResult",
    "Realization",
    "TasksFailedError",
    "VoxelParams",
    "__version__",
    "describe",
    "describe_chunked",
    "gaussian_field",
    "generate",
    "generate_components",
    "get_backend",
    "gpu_available",
    "model_theory",
    "preset",
    "realize",
    "rve",
]
