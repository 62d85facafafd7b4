"""Realizations of the model: germs, Gaussian field, rasterisation, phase combination."""

from cbagpu.simulate.grf import field_kernel, gaussian_field
from cbagpu.simulate.realization import (
    Components,
    MemoryEstimate,
    Realization,
    estimate_memory,
    generate,
    generate_components,
    realize,
)

__all__ = [
    "Components",
    "MemoryEstimate",
    "Realization",
    "estimate_memory",
    "field_kernel",
    "gaussian_field",
    "generate",
    "generate_components",
    "realize",
]
