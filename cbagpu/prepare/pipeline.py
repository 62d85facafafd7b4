"""From segmentation outputs to a calibration-ready label image (paper Section 2.3).

``prepare(solid, graphite_prob, voxel_size, to_voxel_size)`` runs, in the paper's order:

1. Section 2.3.1 clean-up at the acquisition resolution: the small pore inclusions are
   filled and only the main (largest) solid component is kept
   (:mod:`cbagpu.prepare.cleanup`).  By default the inclusions filled are the pore
   components no larger than the paper's one-voxel cuboid element (3x3x3 = 27 input
   voxels), without a morphological closing: on a clean model realization the closing
   itself (``closing_element="cube"``, the paper's literal step as in Fiji) lowers the
   porosity by ~1.9 % by filling the model's one-voxel pore gaps, and a degraded
   realization came back 4.1 % low (tests/test_prepare_roundtrip.py); filling the
   inclusions alone restores it to within 0.3 %.
2. Down-sampling to cubic voxels by slice removal (:mod:`cbagpu.prepare.resample`); the
   paper does it after the clean-up ("for subsequent image processing and model fitting").
   The probability map is sub-sampled the same way, unless it already has the target
   shape (a map computed on the down-sampled image).
3. Section 2.3.2 graphite labelling on the cubic grid (:mod:`cbagpu.prepare.graphite`):
   quantile threshold, pore correction, small components removed, ball closing, pore
   correction. With an expected composition (``composition=``: the recipe's weight
   fractions and densities and the AM-free region's porosity, Section 2.3.3 -- by default
   the porosity of the cleaned image) or a target ``graphite_fraction``, the threshold is
   chosen to give that graphite fraction instead of the paper's fixed quantile; the
   ``threshold`` step reports the quantile it implies, the quantile rule's candidates, and
   :attr:`PreparedImage.messages` says when the two disagree by more than the
   segmentation's own uncertainty.

Every step's voxel counts go into :attr:`PreparedImage.steps`, so what each one changed
can be checked (the 200 nm closing in particular, see the graphite module).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cbagpu._version import __version__
from cbagpu.backend import Backend, get_backend
from cbagpu.errors import InvalidInputError
from cbagpu.memory import check_fits
from cbagpu.prepare._morph import check_connectivity, unit_element
from cbagpu.prepare.cleanup import clean_device
from cbagpu.prepare.graphite import (
    DEFAULT_CLOSING_RADIUS,
    DEFAULT_MIN_VOLUME,
    _check_settings,
    check_probability,
    segment_device,
    threshold_message,
)
from cbagpu.prepare.resample import as_voxel_sizes, resample_factors, resampled_shape

__all__ = ["PreparedImage", "prepare"]

# Rough peak bytes per voxel: clean-up at the input resolution (mask, dilation, erosion,
# int32 labels, kept mask), graphite step at the target one (float32 map, solid, candidates,
# int32 labels, float32 EDT, masks, uint8 labels).
_BYTES_NATIVE = 10
_BYTES_TARGET = 20


@dataclass(frozen=True)
class PreparedImage:
    """Result of :func:`prepare`.

    ``labels``: uint8 host array (z, y, x), 0 pore, 1 CBD, 2 graphite, on cubic voxels of
    ``voxel_size`` nm. ``input_voxel_size`` (z, y, x) and ``factors`` the slice-removal
    factors; ``threshold`` the probability threshold used; ``fractions`` the final phase
    fractions; ``steps`` one dict per step with its voxel counts; ``settings`` every option
    (stored with the output image); ``backend``; ``seconds`` wall time; ``messages`` what
    the caller should be told (e.g. that the paper's quantile and the expected composition
    disagree).
    """

    labels: np.ndarray
    voxel_size: float
    input_voxel_size: tuple[float, float, float]
    factors: tuple[int, int, int]
    threshold: float
    fractions: dict[str, float]
    steps: tuple[dict[str, Any], ...]
    settings: dict[str, Any]
    backend: str
    seconds: float
    messages: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": list(self.messages),
            "shape": list(self.labels.shape),
            "voxel_size": self.voxel_size,
            "input_voxel_size": list(self.input_voxel_size),
            "factors": list(self.factors),
            "threshold": self.threshold,
            "fractions": dict(self.fractions),
            "steps": [dict(s) for s in self.steps],
            "settings": dict(self.settings),
            "backend": self.backend,
            "seconds": self.seconds,
        }

    def metadata(self, **extra: Any) -> dict[str, Any]:
        """Metadata for :func:`cbagpu.io.write_image` (voxel size, labels, settings, the
        step report); ``extra`` items (e.g. the input paths) are added."""
        from datetime import UTC, datetime

        from cbagpu.io import LABELS

        meta: dict[str, Any] = {
            "voxel_size": self.voxel_size,
            "units": "nm",
            "axes": "zyx",
            "labels": dict(LABELS),
            "version": __version__,
            "backend": self.backend,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": "cbagpu prepare (paper Section 2.3)",
            "prepare": {
                **self.settings,
                "factors": list(self.factors),
                "threshold_used": self.threshold,
                "steps": [dict(s) for s in self.steps],
                "fractions": dict(self.fractions),
            },
        }
        meta.update(extra)
        return meta


def _shape(a: Any, what: str) -> tuple[int, int, int]:
    shape = tuple(int(n) for n in getattr(a, "shape", ()))
    if len(shape) != 3:
        raise InvalidInputError(f"{what} must be a 3D image (z, y, x), got shape {shape}")
    if min(shape) < 1:
        raise InvalidInputError(f"{what} is empty (shape {shape})")
    return shape  # type: ignore[return-value]


def _binary_solid(solid: Any, be: Backend) -> Any:
    """Solid mask from a binary image: bool, or two values {0, v} with v the solid."""
    xp = be.xp
    a = be.asarray(solid)
    if a.dtype == bool:
        return a
    if a.dtype.kind not in "iuf":
        raise InvalidInputError(f"the solid image must be binary (0 = pore, nonzero = solid), got "
                         f"dtype {a.dtype}")
    hi = a.max()
    if bool(xp.any((a != 0) & (a != hi))):
        lo = float(a.min())
        raise InvalidInputError(
            f"the solid image must be binary: 0 = pore and one nonzero value = solid; found "
            f"values in [{lo:g}, {float(hi):g}] with more than one nonzero value"
        )
    return a != 0


#: Default largest pore inclusion filled, in input voxels: the 3x3x3 element's volume.
DEFAULT_HOLE_VOXELS = 27


def prepare(
    solid: Any,
    graphite_prob: Any,
    voxel_size: float | Sequence[float],
    to_voxel_size: float = 20.0,
    *,
    closing_element: str = "none",
    solid_connectivity: int = 26,
    max_hole_volume: float | None = None,
    quantile: float = 0.85,
    quantile_over: str = "all",
    threshold: float | None = None,
    min_graphite_volume: float = DEFAULT_MIN_VOLUME,
    graphite_connectivity: int = 26,
    closing_radius: float = DEFAULT_CLOSING_RADIUS,
    graphite_fraction: float | None = None,
    composition: Mapping[str, Any] | None = None,
    threshold_rule: str = "auto",
    backend: str | Backend = "auto",
) -> PreparedImage:
    """Turn a binary pore/solid segmentation and a graphite probability map into a label
    image on cubic voxels (paper Section 2.3; steps in the module docstring).

    Args:
        solid: binary 3D image (z, y, x): 0/False = pore, one nonzero value = solid
            (additives), at the acquisition voxel size.
        graphite_prob: graphite probability map, values in [0, 1]; the shape of ``solid``
            (sub-sampled like it) or already the down-sampled shape.
        voxel_size: input voxel edge lengths (z, y, x) in nm, or one number (cubic).
        to_voxel_size: target cubic voxel edge in nm; an integer multiple of every input
            voxel edge (slice removal).
        closing_element: ``"none"`` (default: no closing), ``"cube"`` (3x3x3: the paper's
            Section 2.3.1 closing as Fiji does it) or ``"cross"`` (6-neighbourhood).
        solid_connectivity: 6, 18 or 26 for the main-network component (default 26).
        max_hole_volume: pore components (face-connected) up to this volume (nm^3, at the
            input voxel size) are filled after the closing; default None = the volume of
            the 3x3x3 element (27 input voxels); 0 = off.
        quantile, quantile_over, threshold: graphite threshold rule (default: the 0.85
            quantile of the whole map).
        min_graphite_volume: graphite components smaller than this (nm^3) are removed
            (default 5000 voxels at 20 nm = 4e7 nm^3).
        graphite_connectivity: 6, 18 or 26 for the graphite components (default 26).
        closing_radius: radius (nm) of the ball closing of the graphite (default 200 nm).
        graphite_fraction: expected graphite volume fraction of the image; the threshold
            is chosen to label that much (module docstring).
        composition: the expected composition instead (Section 2.3.3): a mapping with
            ``weight_fractions`` and ``densities`` (as
            :func:`~cbagpu.prepare.composition.expected_volume_fractions` takes them) and
            optionally ``porosity`` (default: the porosity of the cleaned, down-sampled
            image); its graphite fraction is the target.
        threshold_rule: ``"auto"`` (the target when one is given, else the quantile),
            ``"quantile"`` (the paper's rule; a target is then only compared with) or
            ``"composition"``.
        backend: ``"auto"``, ``"numpy"``, ``"cupy"`` or a :class:`Backend`.

    Raises:
        ValueError: non-3D or mismatched shapes, a non-binary solid image, probabilities
            outside [0, 1], non-integer resampling factors, bad settings.
        InsufficientMemoryError: the job would not fit (checked before the work starts).
    """
    t0 = time.perf_counter()
    be = get_backend(backend)
    xp = be.xp
    # ---- validate everything before any heavy work
    sizes = as_voxel_sizes(voxel_size)
    factors = resample_factors(sizes, to_voxel_size)
    s = float(to_voxel_size)
    shape_in = _shape(solid, "the solid image")
    shape_p = _shape(graphite_prob, "the graphite probability map")
    shape_out = resampled_shape(shape_in, factors)
    if shape_p == shape_in:
        prob_needs_resampling = factors != (1, 1, 1)
    elif shape_p == shape_out:
        prob_needs_resampling = False
    else:
        also = f" or the down-sampled shape {shape_out}" if shape_out != shape_in else ""
        raise InvalidInputError(
            f"shape mismatch: the graphite probability map has shape {shape_p}; "
            f"it must have the solid image's shape {shape_in}{also}")
    unit_element(closing_element)
    if max_hole_volume is None:
        max_hole_volume = DEFAULT_HOLE_VOXELS * float(np.prod(sizes))
    if not (np.isfinite(max_hole_volume) and max_hole_volume >= 0):
        raise InvalidInputError(f"max_hole_volume must be >= 0 (nm^3), got {max_hole_volume!r}")
    max_hole_voxels = float(max_hole_volume) / float(np.prod(sizes))
    check_connectivity(solid_connectivity, "solid connectivity")
    if graphite_fraction is not None and composition is not None:
        raise InvalidInputError("give either graphite_fraction or composition, not both")
    comp_args = None
    if composition is not None:
        from cbagpu.prepare.composition import expected_volume_fractions

        unknown = set(composition) - {"weight_fractions", "densities", "porosity"}
        if unknown or not {"weight_fractions", "densities"} <= set(composition):
            raise InvalidInputError(
                "composition must give weight_fractions and densities (and optionally "
                f"porosity); got {', '.join(sorted(composition)) or 'nothing'}")
        comp_args = dict(composition)
        por = comp_args.get("porosity")
        # checked now, before any work (the image's porosity is only known later)
        expected_volume_fractions(comp_args["weight_fractions"], comp_args["densities"],
                                  0.5 if por is None else por)
    target_given = 0.5 if comp_args is not None else graphite_fraction
    _check_settings(quantile, quantile_over, threshold, min_graphite_volume, closing_radius,
                    graphite_connectivity, target_given, threshold_rule)
    n_in, n_out = int(np.prod(shape_in)), int(np.prod(shape_out))
    check_fits(max(_BYTES_NATIVE * n_in + 4 * n_out, _BYTES_TARGET * n_out),
               be.available_memory(), f"prepare of a {shape_in} image",
               be.memory_name)
    kz, ky, kx = factors
    prob = graphite_prob[::kz, ::ky, ::kx] if prob_needs_resampling else graphite_prob
    if isinstance(prob, np.ndarray):  # sub-sampled on the host, before any device copy
        prob = np.ascontiguousarray(prob)
    prob = check_probability(prob, be)
    mask = _binary_solid(solid, be)

    # ---- Section 2.3.1 at the input resolution
    steps: list[dict[str, Any]] = [
        {"step": "input", "shape": list(shape_in), "voxel_size": list(sizes),
         "solid": int(xp.count_nonzero(mask))}
    ]
    cleaned, c = clean_device(mask, closing_element, solid_connectivity, be, max_hole_voxels)
    del mask
    steps.append({"step": "closing", "element": closing_element,
                  "solid": c["solid_in"] + c["filled"], "filled": c["filled"]})
    if max_hole_voxels >= 1:
        steps.append({"step": "fill_holes", "max_hole_volume": float(max_hole_volume),
                      "max_hole_voxels": max_hole_voxels, "solid": c["solid_closed"],
                      "filled": c["holes_filled"]})
    steps.append({"step": "main_component", "connectivity": int(solid_connectivity),
                  "components": c["n_components"], "solid": c["solid_out"],
                  "removed": c["removed"]})

    # ---- slice removal to cubic voxels
    if factors != (1, 1, 1):
        cleaned = xp.ascontiguousarray(cleaned[::kz, ::ky, ::kx])
    n_solid = int(xp.count_nonzero(cleaned))
    steps.append({"step": "resample", "factors": list(factors), "shape": list(shape_out),
                  "voxel_size": s, "solid": n_solid,
                  "probability_map_resampled": bool(prob_needs_resampling)})

    # ---- the expected composition (Section 2.3.3), if given
    target = graphite_fraction
    if comp_args is not None:
        from cbagpu.prepare.composition import expected_volume_fractions

        por = comp_args.get("porosity")
        por_from_image = por is None
        if por_from_image:
            por = 1.0 - n_solid / float(np.prod(shape_out))
        comp = expected_volume_fractions(comp_args["weight_fractions"],
                                         comp_args["densities"], por)
        target = comp.graphite
        steps.append({"step": "composition", "porosity": float(por),
                      "porosity_from_image": por_from_image, "graphite": comp.graphite,
                      "cbd": comp.cbd})

    # ---- Section 2.3.2 on the cubic grid
    labels, thr, g, report = segment_device(
        cleaned, prob, s, quantile=quantile, quantile_over=quantile_over, threshold=threshold,
        min_volume=min_graphite_volume, connectivity=graphite_connectivity,
        closing_radius=closing_radius, be=be, target_fraction=target,
        threshold_rule=threshold_rule)
    del cleaned, prob
    steps.append({"step": "threshold", "threshold": thr, "candidates": g["candidates"],
                  "graphite": g["candidates_solid"],
                  "pore_dropped": g["candidates"] - g["candidates_solid"],
                  **{k: v for k, v in report.items() if k != "quantile_over"}})
    messages = [m for m in (threshold_message(report),) if m]
    steps.append({"step": "size_filter", "min_volume": float(min_graphite_volume),
                  "min_voxels": float(min_graphite_volume) / s**3,
                  "connectivity": int(graphite_connectivity), "components": g["components"],
                  "components_removed": g["components_removed"],
                  "graphite": g["after_size_filter"],
                  "removed": g["candidates_solid"] - g["after_size_filter"]})
    steps.append({"step": "ball_closing", "radius": float(closing_radius),
                  "radius_voxels": float(closing_radius) / s, "graphite": g["after_closing"],
                  "added": g["after_closing"] - g["after_size_filter"]})
    steps.append({"step": "pore_correction", "graphite": g["graphite"],
                  "kept_as_pore": g["pore_corrected"]})
    host = be.to_host(labels)
    counts = np.bincount(host.ravel(), minlength=3)
    fractions = {"pore": float(counts[0] / host.size), "cbd": float(counts[1] / host.size),
                 "graphite": float(counts[2] / host.size)}
    settings = {
        "input_voxel_size": list(sizes),
        "to_voxel_size": s,
        "closing_element": closing_element,
        "solid_connectivity": int(solid_connectivity),
        "max_hole_volume": float(max_hole_volume),
        "quantile": float(quantile),
        "quantile_over": quantile_over,
        "threshold": None if threshold is None else float(threshold),
        "min_graphite_volume": float(min_graphite_volume),
        "graphite_connectivity": int(graphite_connectivity),
        "closing_radius": float(closing_radius),
        "graphite_fraction": None if graphite_fraction is None else float(graphite_fraction),
        "composition": None if comp_args is None else {
            "weight_fractions": dict(comp_args["weight_fractions"]),
            "densities": dict(comp_args["densities"]),
            "porosity": comp_args.get("porosity")},
        "threshold_rule": threshold_rule,
    }
    return PreparedImage(
        labels=host, voxel_size=s, input_voxel_size=sizes, factors=factors, threshold=thr,
        fractions=fractions, steps=tuple(steps), settings=settings, backend=be.name,
        seconds=time.perf_counter() - t0, messages=tuple(messages))
