"""Morphology shared by the preparation steps, written once against ``be.xp``.

The only library calls that differ between the CPU (SciPy) and the GPU (cupyx) are the
binary dilation/erosion with a small structuring element; :func:`ndimage` picks the module.
Ball operations use the backend's exact Euclidean distance transform instead of a
structuring element (see :func:`dilate_ball`).

Window convention (all operations here): nothing outside the image belongs to the set
being dilated, and erosions treat the outside as belonging to the set. A closing is
therefore extensive (``X`` is contained in its closing) and never eats into the image's
faces; this is the convention of ``skimage``/MorphoLibJ for closings, not of
``scipy.ndimage.binary_closing`` (whose default erosion border removes the outer layer).
The price: a gap between the set and a face narrower than the element is filled, e.g. a
lone voxel one voxel from a corner grows into the 2 x 2 x 2 corner block under the cube.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cbagpu.backend import Backend
from cbagpu.errors import InvalidInputError

#: Accepted connectivities (number of neighbours) and the matching ``Backend.label`` rank.
CONNECTIVITY_RANK = {6: 1, 18: 2, 26: 3}

#: Structuring elements of radius one voxel for the clean-up closing ("none": no closing).
ELEMENTS = ("cube", "cross", "none")


def ndimage(be: Backend) -> Any:
    """The backend's ``scipy.ndimage`` API (:attr:`Backend.ndimage`)."""
    return be.ndimage


def check_connectivity(connectivity: int, what: str = "connectivity") -> int:
    """Return ``Backend.label``'s rank for a neighbour count 6, 18 or 26."""
    if isinstance(connectivity, bool) or connectivity not in CONNECTIVITY_RANK:
        raise InvalidInputError(f"{what} must be 6, 18 or 26 (neighbours), got {connectivity!r}")
    return CONNECTIVITY_RANK[int(connectivity)]


def unit_element(element: str) -> np.ndarray:
    """The 3x3x3 structuring element ``"cube"`` (26 neighbours) or ``"cross"`` (6);
    ``"none"`` gives the one-voxel element (the closing is the identity)."""
    if element == "none":
        return np.ones((1, 1, 1), bool)
    if element == "cube":
        return np.ones((3, 3, 3), bool)
    if element == "cross":
        s = np.zeros((3, 3, 3), bool)
        s[1, 1, :] = s[1, :, 1] = s[:, 1, 1] = True
        return s
    raise InvalidInputError(
        f"closing element must be one of {', '.join(ELEMENTS)}, got {element!r}"
    )


def close_unit(mask: Any, element: str, be: Backend) -> Any:
    """Closing of ``mask`` with a radius-one element (dilation, then erosion with the
    outside counted as set: extensive, faces untouched)."""
    if element == "none":
        unit_element(element)
        return mask.copy()
    ndi = ndimage(be)
    s = be.asarray(unit_element(element))
    dil = ndi.binary_dilation(mask, structure=s, border_value=0)
    return ndi.binary_erosion(dil, structure=s, border_value=1)


def _ball_threshold(radius: float) -> float:
    """Threshold on float32 EDT values equivalent to ``|d|^2 <= floor(radius^2)``.

    The squared lattice distances are integers, so ``sqrt(floor(r^2) + 1/2)`` lies strictly
    between the largest one inside the ball and the smallest one outside; float32 EDT
    values (relative error ~6e-8) are compared with it exactly up to radii of ~1000 voxels.
    """
    return math.sqrt(math.floor(radius * radius + 1e-9) + 0.5)


def dilate_ball(mask: Any, radius: float, be: Backend) -> Any:
    """Dilation by the digital ball ``B_r = {d in Z^3 : |d| <= r}`` (r in voxels).

    ``x`` is in ``X (+) B_r`` iff its distance to the nearest voxel of ``X`` is ``<= r``:
    one EDT of the complement, exact on the lattice (no structuring element, so the cost
    does not grow with r). Outside the window nothing belongs to ``X``.
    """
    xp = be.xp
    if radius < 1 or not bool(mask.any()):
        return mask.copy()
    if bool(mask.all()):
        return mask.copy()
    d = be.distance_transform_edt(~mask)
    return d <= xp.float32(_ball_threshold(radius))


def erode_ball(mask: Any, radius: float, be: Backend) -> Any:
    """Erosion by ``B_r``: ``x`` stays iff its distance to the nearest voxel outside the set
    is ``> r``. The outside of the window counts as set (the EDT ignores it)."""
    xp = be.xp
    if radius < 1 or bool(mask.all()) or not bool(mask.any()):
        return mask.copy()
    d = be.distance_transform_edt(mask)
    return d > xp.float32(_ball_threshold(radius))


def close_ball(mask: Any, radius: float, be: Backend) -> Any:
    """Closing by ``B_r`` (two EDTs): fills gaps narrower than the ball, extensive."""
    return erode_ball(dilate_ball(mask, radius, be), radius, be)


def component_sizes(mask: Any, rank: int, be: Backend) -> tuple[Any, Any]:
    """``(labels, sizes)``: the connected components of ``mask`` and their voxel counts
    (``sizes[0]`` = 0 stands for the background)."""
    xp = be.xp
    lab, n = be.label(mask, rank)
    sizes = xp.bincount(lab.ravel(), minlength=n + 1)
    sizes[0] = 0
    return lab, sizes


def keep_largest(mask: Any, rank: int, be: Backend) -> tuple[Any, int]:
    """The largest connected component of ``mask`` and the number of components."""
    xp = be.xp
    lab, sizes = component_sizes(mask, rank, be)
    n = int(sizes.shape[0]) - 1
    if n <= 1:
        return mask.copy(), n
    return lab == xp.argmax(sizes), n


def fill_small_holes(mask: Any, max_voxels: float, be: Backend) -> tuple[Any, int]:
    """Fill the face-connected (6-neighbour) components of the complement with at most
    ``max_voxels`` voxels; returns ``(mask, voxels filled)``."""
    xp = be.xp
    if max_voxels < 1:
        return mask.copy(), 0
    lab, sizes = component_sizes(~mask, 1, be)
    small = sizes <= max_voxels
    small[0] = False
    fill = small[lab]
    return mask | fill, int(xp.count_nonzero(fill))


def remove_small(mask: Any, min_voxels: float, rank: int, be: Backend) -> tuple[Any, int, int]:
    """Remove the components with fewer than ``min_voxels`` voxels.

    Returns ``(mask, n_components, n_removed)``.
    """
    xp = be.xp
    lab, sizes = component_sizes(mask, rank, be)
    n = int(sizes.shape[0]) - 1
    keep = sizes >= min_voxels
    keep[0] = False
    n_removed = n - int(xp.count_nonzero(keep))
    return keep[lab], n, n_removed
