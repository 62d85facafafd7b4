"""Densities of the intrinsic volumes V_V, S_V, M_V, chi_V of a binary image in a window, by
counting 2x2x2 configurations (paper Eqs. 6-9, Table 1; NOTES §6).

Method (Ohser & Muecklich 2000, ch. 4-5; Schladitz, Ohser & Nagel 2006; Ohser & Schladitz
2009, ch. 4-5): the image is a point lattice with spacing ``s`` (voxel ``i`` has its centre
at ``i*s``, NOTES §1). Every *cell* -- the cube spanned by 2x2x2 neighbouring voxel centres
-- gets an 8-bit code ``l`` from its vertices, bit ``4*dz + 2*dy + dx`` for the vertex at
offset ``(dz, dy, dx)``. The 256-bin histogram ``h`` of these codes holds everything the
estimators need; each density is a dot product::

    density = (h . w) / (N * s^3),      N = sum(h) = (nz-1)(ny-1)(nx-1)

with a weight vector ``w`` over the 256 configurations derived below (see
:func:`configuration_weights`). Only cells lying fully inside the image are counted and the
result is divided by the volume they span, so the window's own faces, edges and corners are
never counted as surface, curvature or Euler number: the estimators are *edge-corrected*
(unbiased for a stationary random set, up to discretisation).

* ``V_V``: point counting, each vertex of each cell with weight 1/8.
* ``S_V``: Crofton/Cauchy, S_V = 2 * mean_u P_L(u) (P_L(u) = boundary points per unit length
  of lines with direction u). The mean over the sphere is replaced by a weighted sum over the
  13 lattice directions (3 axes, |d| = 1; 6 face diagonals, |d| = sqrt 2; 4 space diagonals,
  |d| = sqrt 3). P_L(d) is estimated from the vertex pairs (v, v+d) of the cell (4 pairs per
  axis, 2 per face diagonal, 1 per space diagonal): the fraction of pairs with different
  values, divided by the pair length |d| s.
* ``M_V`` (integral of mean curvature, H = (k1+k2)/2, a ball of radius r has M = 4 pi r,
  Eq. 8): Crofton for planar sections, M_V = 2 pi * mean_u chi_A(u), chi_A(u) the Euler
  number per unit area of the sections by planes with normal u. (For a convex body K the
  planes with normal u that hit K form an interval of length b(K, u), the width, and the mean
  width is M / (2 pi).) The same 13 directions and weights serve as normals. The lattice
  planes with normal u cut each cell in polygons with lattice vertices: two unit squares for
  an axis (each shared by two cells), one 1 x sqrt 2 rectangle for a face diagonal, two
  equilateral triangles of side sqrt 2 for a space diagonal. chi_A(u) = (sum of the local
  Euler numbers of the polygons) / (sum of their areas) -- every polygon of the plane lattice
  lies in the same number of cells, so the multiplicity cancels. Local Euler numbers of a
  polygon by Euler's formula on the planar cell complex, each vertex / edge weighted by the
  reciprocal of the number of polygons sharing it: parallelograms chi = n_v/4 - n_e/2 + n_f
  (4-adjacency), minus 1 for the two "diagonal" configurations under 8-adjacency (then the
  diagonal is an edge); triangles chi = n_v/6 - n_e/2 + n_f (the triangular lattice has one
  adjacency only).
* ``chi_V`` (Euler number density, the paper's N of Eq. 9: by Gauss-Bonnet the Gaussian
  curvature integrates to 4 pi times the Euler number): Euler's formula on the voxel
  complex. With 6-adjacency of the foreground the complex is cubical (vertices = voxels,
  edges = face neighbours, squares, cubes), each cell contributing
  ``n_v/8 - n_e/4 + n_f/2 - n_c``. With 26-adjacency of the foreground (6 for the background)
  the local Euler number is that of the complement under 6-adjacency (3-D duality
  chi_26(X) = chi_6(X^c) per cell, which holds because the dimension is odd).

Weights of the 13 directions: the spherical Voronoi cells of the 26 unit vectors d/|d| on
S^2, a direction and its opposite combined: fractions of the sphere 2 * 0.0457779 (axes),
2 * 0.0369806 (face diagonals), 2 * 0.0351956 (space diagonals); they sum to 1 (Schladitz,
Ohser & Nagel 2006). Computed by :class:`scipy.spatial.SphericalVoronoi`.

Adjacency pair (``connectivity``): 26 (default) means (26, 6) -- foreground voxels are
connected across faces, edges and corners, background across faces -- and in the planar
sections 8-adjacency for the foreground of squares and rectangles. 6 means (6, 26) and
4-adjacency in the sections. The two pairs are dual: with ``X^c`` the complement in the same
window, ``chi_V(X, 26) = chi_V(X^c, 6)``, ``M_V(X, 26) = -M_V(X^c, 6)``, ``S_V`` equal and
``V_V`` complementary -- as for smooth sets in R^3. The default is 26 because it is robust for
thin structures: a digitised plate of thickness >= 1 voxel has no spurious tunnels under
(26, 6) but needs up to sqrt 3 voxels under (6, 26) (naive vs standard digital planes). For
the paper's graphite platelets at 20 nm (single grains of the Table 2 law, half-thickness
~5 voxels) chi is exact for every grain under 26 but wrong for about half of them under 6
(M: +2.6 % vs +14 %). It is also scikit-image's default.

Limitations (measured; tests/test_measure_minkowski.py, tests/test_measure_minkowski_accuracy.py,
benchmarks/accuracy_minkowski.py; README "Accuracy of the descriptors"). Smooth convex
grains of radius >= 10 voxels are exact in chi and within 1 % in V, S, M. Unions of
overlapping grains (Boolean models) are not, and the cause is the digitisation of the set,
not the estimator: (i) the local Euler numbers are exact -- on every digitised image chi is
scikit-image's ``euler_number`` of the same adjacency, an integer; (ii) the edge correction
is unbiased (windowed estimates of a periodic image average to its periodic density);
(iii) where two grains barely overlap, the complement has a thin wedge along their
intersection circle, and its digitisation makes spurious one-voxel cavities and tunnels
whose number grows with the wedge's length in voxels. So the chi error does not shrink
when the same model is digitised finer (Boolean balls, V = 0.15, against Miles at each
window's own intensity: chi -19 / -20 / -23 % under (6, 26) and -58 / -52 / -63 % under
(26, 6) at r = 8 / 16 / 32 voxels; against the exact Euler number of the same unions, from
their alpha complex: -0.05 / -0.06 / -0.08 under (6, 26) and -0.16 / -0.15 / -0.17 under
(26, 6) per ball), as Ohser, Nagel & Schladitz (Image Anal Stereol 22 (2003) 11-19) found
for these adjacencies; no 2x2x2 adjacency tried (6, 26 and the self-dual 14 of the
Freudenthal triangulation) reaches 10 %. M_V, from the planar sections' Euler numbers, has
the 2-D version of the same error: -4 / -2 / -3 % under (6, 26), -8 / -5 / -6 % under
(26, 6). For unions of convex grains the pair (6, 26) is the less biased one; for their
complements, by duality, (26, 6); for thin platelets (26, 6) (above).

The mean over directions is exact only for isotropic structures: a plane with unit normal n
has S estimated as 2 * sum_d c_d |d.n|/|d| times its area, between 0.927 (axis-aligned
planes; 0.933 for face-diagonal, 0.961 for space-diagonal normals) and 1.023 depending on
n, and 1 on average over n; isotropic sets are unbiased up to the digitisation.

References
----------
J. Ohser, F. Muecklich. Statistical Analysis of Microstructures in Materials Science. Wiley,
2000, ch. 4-5.
K. Schladitz, J. Ohser, W. Nagel. Measuring intrinsic volumes in digital 3d images. In
Discrete Geometry for Computer Imagery (DGCI 2006), LNCS 4245, Springer, 2006, 247-258.
J. Ohser, K. Schladitz. 3D Images of Materials Structures: Processing and Analysis.
Wiley-VCH, 2009 (the paper's ref. [49]).
J. Toriwaki, T. Yonekura. Euler number and connectivity indexes of a three dimensional
digital picture. Forma 17 (2002) 183-209.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cbagpu.backend import Backend, get_backend
from cbagpu.errors import InvalidInputError
from cbagpu.validation import check_int, check_mask_3d, check_voxel_size

__all__ = [
    "CONNECTIVITIES",
    "EULER_METHODS",
    "IntrinsicVolumes",
    "check_connectivity",
    "configuration_histogram",
    "configuration_weights",
    "check_euler_method",
    "densities_from_histogram",
    "direction_weights",
    "intrinsic_volumes",
    "lattice_directions",
    "tile_configuration_histograms",
]

#: Estimators of chi_V (:func:`intrinsic_volumes`).
EULER_METHODS = ("direct", "closing")
#: Accepted foreground adjacencies (the background gets the complementary one).
CONNECTIVITIES = (6, 26)

#: Cells per slab of the streamed histogram (bounds the temporary arrays, ~9 bytes per cell
#: of a slab on the CPU: the uint8 codes and the intp copy that ``bincount`` makes).
_SLAB_CELLS = 1 << 21


@dataclass(frozen=True)
class IntrinsicVolumes:
    """Densities of the intrinsic volumes of a phase in a window (paper Eqs. 6-9).

    Attributes
    ----------
    V_V : volume fraction [-] (Eq. 6).
    S_V : surface area per unit volume [nm^-1] (Eq. 7).
    M_V : integral of mean curvature H = (k1+k2)/2 per unit volume [nm^-2] (Eq. 8; the
        paper's K; a ball of radius r has M = 4 pi r).
    chi_V : Euler number per unit volume [nm^-3] (the paper's N, Eq. 9).
    volume : the volume the densities refer to [nm^3], (nz-1)(ny-1)(nx-1) s^3; density
        times volume gives the window's (edge-corrected) totals.
    connectivity : foreground adjacency used for M_V and chi_V (26 or 6).
    euler : how chi_V was estimated: "direct" or "closing" (see :func:`intrinsic_volumes`).
    """

    V_V: float
    S_V: float
    M_V: float
    chi_V: float
    volume: float
    connectivity: int
    euler: str = "direct"


# ------------------------------------------------------------------------------ geometry
def _vertices() -> np.ndarray:
    """(8, 3) int offsets (dz, dy, dx) of the cell vertices; vertex i has bit i."""
    return np.array([((i >> 2) & 1, (i >> 1) & 1, i & 1) for i in range(8)], dtype=np.int64)


def _bits() -> np.ndarray:
    """(256, 8) bool: vertex i of configuration l is foreground."""
    return ((np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1).astype(bool)


def lattice_directions() -> np.ndarray:
    """The 13 lattice directions (dz, dy, dx) of a cell, one of each pair +-d: 3 axes, 6 face
    diagonals, 4 space diagonals (first non-zero component positive)."""
    out = []
    for d in itertools.product((-1, 0, 1), repeat=3):
        nz = [c for c in d if c != 0]
        if nz and nz[0] > 0:
            out.append(d)
    out.sort(key=lambda d: (sum(map(abs, d)), [-c for c in d]))
    return np.array(out, dtype=np.int64)


@functools.cache
def direction_weights() -> tuple[np.ndarray, np.ndarray]:
    """The 13 directions and their weights: the areas of the spherical Voronoi cells of +-d/|d|
    among the 26 unit vectors, as fractions of the sphere (summing to 1).

    Returns ``(directions (13, 3) int, weights (13,) float64)``.
    """
    from scipy.spatial import SphericalVoronoi

    dirs = lattice_directions()
    both = np.concatenate([dirs, -dirs]).astype(np.float64)
    unit = both / np.linalg.norm(both, axis=1, keepdims=True)
    sv = SphericalVoronoi(unit)
    sv.sort_vertices_of_regions()
    area = sv.calculate_areas() / (4.0 * math.pi)
    w = area[:13] + area[13:]
    w = w / w.sum()  # already 1 to ~1e-15
    dirs.setflags(write=False)
    w.setflags(write=False)
    return dirs, w


def _pairs(d: np.ndarray) -> list[tuple[int, int]]:
    """Vertex pairs (i, j) of the cell with v_j - v_i = d."""
    v = _vertices()
    return [
        (i, j) for i in range(8) for j in range(8) if np.array_equal(v[j] - v[i], d)
    ]


def _section_polygons(u: np.ndarray) -> list[list[int]]:
    """Polygons in which the lattice planes with normal ``u`` cut the cell: the groups of >= 3
    cell vertices with equal u.v, each in cyclic order."""
    v = _vertices()
    key = v @ u
    polys = []
    for k in np.unique(key):
        idx = [int(i) for i in np.flatnonzero(key == k)]
        if len(idx) == 4:
            # parallelogram: order the vertices cyclically (opposite = the farthest pair)
            a = idx[0]
            far = max(idx[1:], key=lambda j: float(np.sum((v[j] - v[a]) ** 2)))
            rest = [j for j in idx[1:] if j != far]
            idx = [a, rest[0], far, rest[1]]
        if len(idx) >= 3:
            polys.append(idx)
    return polys


def _polygon_area(pts: np.ndarray) -> float:
    """Area (lattice units) of a planar convex polygon given in cyclic order."""
    c = np.zeros(3)
    for k in range(1, len(pts) - 1):
        c += np.cross(pts[k] - pts[0], pts[k + 1] - pts[0])
    return 0.5 * float(np.linalg.norm(c))


def _planar_euler(bits: np.ndarray, poly: list[int], connectivity: int) -> np.ndarray:
    """Local Euler number (256,) of one section polygon for every configuration.

    Vertices shared by ``m_v`` polygons of the planar lattice count 1/m_v (4 for squares and
    rectangles, 6 for triangles), edges 1/2, the polygon itself 1 if all its vertices are
    foreground. Under 8-adjacency a parallelogram holding exactly one diagonal pair also has
    that diagonal as an edge (-1)."""
    b = bits[:, poly].astype(np.float64)
    k = len(poly)
    n_v = b.sum(axis=1)
    n_e = sum(b[:, i] * b[:, (i + 1) % k] for i in range(k))
    n_f = b.prod(axis=1)
    m_v = 4.0 if k == 4 else 6.0
    chi = n_v / m_v - n_e / 2.0 + n_f
    if k == 4 and connectivity == 26:
        diag = (n_v == 2) & (b[:, 0] == b[:, 2])
        chi = chi - diag
    return chi


def _euler6(bits: np.ndarray) -> np.ndarray:
    """Local Euler number (256,) of the cubical complex under 6-adjacency:
    n_v/8 - n_e/4 + n_f/2 - n_c (each vertex is in 8 cells, each edge in 4, each face in 2)."""
    v = _vertices()
    b = bits.astype(np.float64)
    n_v = b.sum(axis=1)
    n_e = np.zeros(256)
    for d in np.eye(3, dtype=np.int64):
        for i, j in _pairs(d):
            n_e += b[:, i] * b[:, j]
    n_f = np.zeros(256)
    for axis in range(3):
        for side in (0, 1):
            idx = np.flatnonzero(v[:, axis] == side)
            n_f += b[:, idx].prod(axis=1)
    n_c = b.prod(axis=1)
    return n_v / 8.0 - n_e / 4.0 + n_f / 2.0 - n_c


@functools.cache
def _unit_weights(connectivity: int) -> np.ndarray:
    """(4, 256) weights for s = 1: V [s^3], S [s^2], M [s], chi [1] per cell."""
    if connectivity not in CONNECTIVITIES:
        raise InvalidInputError(
            f"connectivity must be one of {CONNECTIVITIES}, got {connectivity!r}"
        )
    bits = _bits()
    b = bits.astype(np.float64)
    dirs, c = direction_weights()
    w_v = b.sum(axis=1) / 8.0
    w_s = np.zeros(256)
    w_m = np.zeros(256)
    v = _vertices().astype(np.float64)
    for d, cd in zip(dirs, c, strict=True):
        length = float(np.linalg.norm(d))
        pairs = _pairs(d)
        diff = sum(b[:, i] != b[:, j] for i, j in pairs)
        w_s += 2.0 * cd * diff / (len(pairs) * length)
        polys = _section_polygons(d)
        area = sum(_polygon_area(v[p]) for p in polys)
        chi = sum(_planar_euler(bits, p, connectivity) for p in polys)
        w_m += 2.0 * math.pi * cd * chi / area
    chi6 = _euler6(bits)
    w_chi = chi6 if connectivity == 6 else chi6[255 - np.arange(256)]
    out = np.stack([w_v, w_s, w_m, w_chi])
    out.setflags(write=False)
    return out


def configuration_weights(voxel_size: float = 1.0, connectivity: int = 26) -> np.ndarray:
    """Weight vectors (4, 256) float64 over the 2x2x2 configurations: rows V [nm^3],
    S [nm^2], M [nm], chi [1] per cell, so that ``density = (hist @ w[k]) / (sum(hist) *
    voxel_size**3)``. See the module docstring for their derivation."""
    s = check_voxel_size(voxel_size)
    scale = np.array([s**3, s**2, s, 1.0])[:, None]
    return _unit_weights(_check_connectivity(connectivity)) * scale


# ------------------------------------------------------------------------------ histogram
def _shl(xp: Any, a: Any, k: int) -> Any:
    """uint8 left shift (both operands uint8, so no promotion on either backend)."""
    return xp.left_shift(a, xp.uint8(k))


def _plane_codes(xp: Any, planes: Any) -> Any:
    """4-bit codes of the 2x2 squares of each plane (uint8 0/1 input): bit 2*dy + dx."""
    c = planes[:, :-1, :-1].copy()
    c |= _shl(xp, planes[:, :-1, 1:], 1)
    c |= _shl(xp, planes[:, 1:, :-1], 2)
    c |= _shl(xp, planes[:, 1:, 1:], 3)
    return c


def _as_uint8(xp: Any, a: Any) -> Any:
    if a.dtype == xp.bool_:
        return xp.ascontiguousarray(a).view(xp.uint8)
    return (a != 0).view(xp.uint8)


def _histogram(be: Backend, mask: Any) -> np.ndarray:
    """256-bin histogram of the cell codes of ``mask`` (an array of backend ``be``), streamed
    over z-slabs."""
    xp = be.xp
    nz, ny, nx = mask.shape
    per_plane = (ny - 1) * (nx - 1)
    step = max(1, _SLAB_CELLS // per_plane)
    hist = xp.zeros(256, dtype=xp.int64)
    for z0 in range(0, nz - 1, step):
        z1 = min(z0 + step, nz - 1)
        c2 = _plane_codes(xp, _as_uint8(xp, mask[z0 : z1 + 1]))
        codes = c2[:-1]
        codes |= _shl(xp, c2[1:], 4)
        hist += xp.bincount(codes.ravel(), minlength=256)
    return be.to_host(hist).astype(np.int64)


def configuration_histogram(mask: Any, backend: str | Backend = "auto") -> np.ndarray:
    """Histogram (256,) int64 of the 2x2x2 configurations of the cells fully inside ``mask``.

    Configuration code of the cell at (z, y, x): ``sum mask[z+dz, y+dy, x+dx] << (4*dz + 2*dy
    + dx)``. ``mask`` is a 3-D boolean (or 0/1) NumPy or CuPy array with every dimension >= 2;
    it is read in z-slabs, so the extra memory is bounded (a few MB) whatever its size.
    """
    be = get_backend(backend)
    m = _check_mask(be, mask)
    return _histogram(be, m)


def tile_configuration_histograms(mask: Any, edge: int,
                                  backend: str | Backend = "auto") -> np.ndarray:
    """Configuration histograms of the cubic tiles of edge ``edge`` that partition ``mask``.

    The image is cut into ``(nz // edge) * (ny // edge) * (nx // edge)`` non-overlapping
    tiles of ``edge**3`` voxels (from the origin; a remainder at the high ends is left out).
    Row ``t`` (tiles in raster order, z slowest) equals
    ``configuration_histogram(mask[tile t])``: the cells lying fully inside the tile, so the
    cells straddling two tiles are counted in neither. One pass per z-row of tiles, a
    ``bincount`` over ``tile * 256 + code``; the same code on both backends.

    Parameters
    ----------
    mask : 3-D boolean (or 0/1) NumPy or CuPy array (z, y, x).
    edge : tile edge in voxels (>= 2; at least one tile must fit).
    backend : "auto", "numpy", "cupy" or a :class:`~cbagpu.backend.Backend`.

    Returns
    -------
    numpy.ndarray
        int64 of shape (number of tiles, 256); densities of one tile follow from
        :func:`densities_from_histogram`, of all at once from
        ``hist @ configuration_weights(s).T / ((edge - 1)**3 * s**3)``.
    """
    be = get_backend(backend)
    m = _check_mask(be, mask)
    xp = be.xp
    e = check_int(edge, "edge")
    c = [n // e for n in m.shape]
    if e < 2 or min(c) < 1:
        raise InvalidInputError(f"tile edge must be >= 2 and fit in the image "
                                f"{tuple(m.shape)}, got {edge!r}")
    c0, c1, c2 = c
    out = []
    for i in range(c0):
        slab = _as_uint8(xp, m[i * e:(i + 1) * e, : c1 * e, : c2 * e])
        p2 = _plane_codes(xp, slab)
        codes = p2[:-1]
        codes |= _shl(xp, p2[1:], 4)  # (e-1, c1*e-1, c2*e-1)
        full = xp.zeros((e - 1, c1 * e, c2 * e), dtype=xp.int64)
        full[:, :-1, :-1] = codes
        cells = full.reshape(e - 1, c1, e, c2, e)[:, :, : e - 1, :, : e - 1]
        tile = xp.arange(c1 * c2, dtype=xp.int64).reshape(1, c1, 1, c2, 1) * 256
        hist = xp.bincount((cells + tile).ravel(), minlength=c1 * c2 * 256)
        out.append(be.to_host(hist).astype(np.int64).reshape(c1 * c2, 256))
    return np.concatenate(out, axis=0)


# ------------------------------------------------------------------------------ densities
def densities_from_histogram(
    hist: Any, voxel_size: float, connectivity: int = 26
) -> IntrinsicVolumes:
    """Densities of the intrinsic volumes from a configuration histogram (see
    :func:`configuration_histogram`): each is ``(hist . w) / (sum(hist) * s^3)``."""
    h = np.asarray(hist, dtype=np.float64)
    if h.shape != (256,):
        raise InvalidInputError(f"histogram must have 256 bins, got shape {h.shape}")
    n = float(h.sum())
    if n <= 0:
        raise InvalidInputError("empty histogram")
    s = check_voxel_size(voxel_size)
    conn = _check_connectivity(connectivity)
    w = configuration_weights(s, conn)
    volume = n * s**3
    vv, sv, mv, chiv = (w @ h) / volume
    return IntrinsicVolumes(float(vv), float(sv), float(mv), float(chiv), volume, conn)


def intrinsic_volumes(
    mask: Any,
    voxel_size: float,
    backend: str | Backend = "auto",
    connectivity: int = 26,
    *,
    euler: str = "direct",
) -> IntrinsicVolumes:
    """Edge-corrected densities V_V, S_V [nm^-1], M_V [nm^-2], chi_V [nm^-3] of a phase.

    Parameters
    ----------
    mask : 3-D boolean NumPy or CuPy array (z, y, x), True = the phase; each dimension >= 2.
    voxel_size : voxel edge length s [nm] (> 0).
    backend : "auto", "numpy", "cupy" or a :class:`~cbagpu.backend.Backend`.
    connectivity : 26 (default; foreground 26-, background 6-adjacent) or 6 (the reverse);
        affects M_V and chi_V only.
    euler : "direct" (default) or "closing"
        ``"direct"``: chi_V of the image as it is (exact for the digital image).
        ``"closing"``: chi_V of the image after a guarded closing
        (:func:`cbagpu.measure.euler_closing.guarded_closing`): one-voxel background
        gaps are filled where the foreground on both sides is already connected within
        a few voxels. On unions of grains this removes the spurious tunnels and cavities
        that the digitisation makes in the thin background wedge along every
        intersection curve of two grains (their number per grain does *not* fall with
        resolution) without joining grains that do not touch. Measured on Boolean balls
        with the pair (6, 26) (README, "Accuracy of the descriptors"): within a few %
        of Miles at r = 8, 16, 32 voxels, against about -20 % with "direct". V_V, S_V
        and M_V are always those of the image as it is.

    Returns
    -------
    IntrinsicVolumes
        The densities of the paper's Eqs. 6-9 (V, S, K, N of Table 1) with respect to the
        volume ``(nz-1)(ny-1)(nx-1) s^3`` spanned by the cells inside the image.

    Notes
    -----
    One pass over the image (streamed in z-slabs) builds the 256-bin histogram of 2x2x2
    configurations; the densities are dot products with derived weight vectors (module
    docstring). The window's own faces are not counted.

    References
    ----------
    Ohser & Muecklich (2000), ch. 4-5; Schladitz, Ohser & Nagel (2006); Ohser & Schladitz
    (2009), the paper's ref. [49].
    """
    s = check_voxel_size(voxel_size)
    conn = _check_connectivity(connectivity)
    method = check_euler_method(euler)
    be = get_backend(backend)
    m = _check_mask(be, mask)
    out = densities_from_histogram(_histogram(be, m), s, conn)
    if method == "direct":
        return out
    from cbagpu.measure.euler_closing import guarded_closing

    closed = guarded_closing(m, be, connectivity=conn)
    chi = densities_from_histogram(_histogram(be, closed), s, conn).chi_V
    return dataclasses.replace(out, chi_V=chi, euler=method)


def check_euler_method(euler: Any) -> str:
    """``euler`` if it names one of :data:`EULER_METHODS`, else InvalidInputError."""
    if euler not in EULER_METHODS:
        raise InvalidInputError(f"euler must be one of {', '.join(map(repr, EULER_METHODS))}"
                                f", got {euler!r}")
    return str(euler)


# ------------------------------------------------------------------------------ checks
def _check_mask(be: Backend, mask: Any) -> Any:
    """A 3-D mask of this backend with every edge >= 2 (one 2x2x2 configuration)."""
    return check_mask_3d(mask, be.xp, min_edge=2)


def check_connectivity(connectivity: Any) -> int:
    """The foreground adjacency (6 or 26) as an int; InvalidInputError otherwise."""
    return _check_connectivity(connectivity)


def _check_connectivity(connectivity: Any) -> int:
    if isinstance(connectivity, bool) or connectivity not in CONNECTIVITIES:
        raise InvalidInputError(
            f"connectivity must be one of {CONNECTIVITIES}, got {connectivity!r}"
        )
    return int(connectivity)
