"""Image preparation (paper Section 2.3): from segmentation outputs to a label image.

* :func:`resample` — cubic voxels by slice removal (integer factors per axis).
* :func:`clean_solid` — Section 2.3.1: closing of the solid with a radius-one element,
  then only the main solid network is kept.
* :func:`segment_graphite` — Section 2.3.2: graphite from a probability map (quantile
  threshold, small components removed, ball closing, pore correction).
* :func:`expected_volume_fractions`, :func:`check_composition` — Section 2.3.3.
* :func:`prepare` — all of it in the paper's order, with a per-step voxel report.
"""

from cbagpu.prepare.cleanup import CleanedSolid, clean_solid, close_solid, keep_main_network
from cbagpu.prepare.composition import (
    Composition,
    CompositionCheck,
    check_composition,
    expected_volume_fractions,
)
from cbagpu.prepare.graphite import (
    DEFAULT_CLOSING_RADIUS,
    DEFAULT_MIN_VOLUME,
    GraphiteSegmentation,
    close_with_ball,
    graphite_threshold,
    remove_small_components,
    segment_graphite,
)
from cbagpu.prepare.pipeline import PreparedImage, prepare
from cbagpu.prepare.resample import resample, resample_factors

__all__ = [
    "DEFAULT_CLOSING_RADIUS",
    "DEFAULT_MIN_VOLUME",
    "CleanedSolid",
    "Composition",
    "CompositionCheck",
    "GraphiteSegmentation",
    "PreparedImage",
    "check_composition",
    "clean_solid",
    "close_solid",
    "close_with_ball",
    "expected_volume_fractions",
    "graphite_threshold",
    "keep_main_network",
    "prepare",
    "remove_small_components",
    "resample",
    "resample_factors",
    "segment_graphite",
]
