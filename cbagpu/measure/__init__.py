"""Morphological descriptors of any binary phase of a label image (paper Sections 3.2-3.3,
NOTES §6): intrinsic volume densities, two-point coverage, CPSD, simulated intrusion and
constrictivity, mean geodesic tortuosity. They know nothing of the model: labels in, numbers
out, in physical units given the voxel size."""
