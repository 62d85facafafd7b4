"""A picture of a label image (issue 17 item 3): three orthogonal slices through the centre
and a 3D view of a central sub-cube, as in the paper's Figure 3.

Colours (:data:`cbagpu.phases.PHASE_COLORS`, colour-blind safe): CBD Okabe-Ito orange
``#E69F00``, graphite Okabe-Ito blue ``#0072B2``; pore is transparent, so in the slices
it shows the white background and in the 3D view one sees into the structure. Each slice
has a scale bar in µm; the caption gives the voxel size, the image's size and the phase
volume fractions of the whole image.

The 3D view draws the visible faces of the solid voxels of the sub-cube (those facing the
viewer and not covered by a solid neighbour), built with NumPy and drawn as one
:class:`~mpl_toolkits.mplot3d.art3d.Poly3DCollection` with a fixed shade per face
direction. The sub-cube (default: the central cube of edge ``min(shape, 96)`` voxels) is
down-sampled by the label-preserving mode of :func:`cbagpu.io.ngff.downsample_mode` until
its edge is at most ``max_edge`` voxels (default 48), which keeps a 400³ image to a few
seconds on a CPU.

Drawn on a :class:`matplotlib.figure.Figure` with ``FigureCanvasAgg`` (headless; the
global backend is never touched); the PNG is written atomically. Needs matplotlib
(``pip install "cbagpu[plot]"``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cbagpu.errors import InvalidInputError
from cbagpu.io.atomic import save_figure_atomic
from cbagpu.phases import PHASE_COLORS, PHASE_NAMES
from cbagpu.validation import check_voxel_size

__all__ = ["ShowResult", "open_labels", "show"]

#: Shade of a face by the axis of its normal (z: lit from above).
_SHADE = {0: 1.0, 1: 0.78, 2: 0.62}
#: Panels of the picture, left to right.
PANELS = ("xy", "xz", "yz", "3d")


@dataclass(frozen=True)
class ShowResult:
    """What :func:`show` drew.

    ``panels``: the pixel box ``(left, top, right, bottom)`` of each panel's axes in the
    PNG (rows from the top), for ``"xy"`` (slice z = centre), ``"xz"`` (y = centre),
    ``"yz"`` (x = centre) and ``"3d"``. ``centre``: the slice indices (z, y, x).
    ``cube``: first voxel and edge of the sub-cube, ``cube_step``: its down-sampling.
    """

    path: str
    shape: tuple[int, int, int]
    voxel_size: float
    fractions: dict[str, float]
    centre: tuple[int, int, int]
    cube_start: tuple[int, int, int]
    cube_edge: tuple[int, int, int]
    cube_step: int
    panels: dict[str, tuple[int, int, int, int]]
    size_px: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _rgba(labels: np.ndarray) -> np.ndarray:
    """RGBA (float, 0..1) image of a 2-D label slice; pore transparent."""
    table = np.zeros((256, 4))
    for value, rgba in PHASE_COLORS.items():
        table[value] = np.asarray(rgba) / 255
    return table[labels]


def _nice_length(limit: float) -> float:
    """The largest 1, 2 or 5 x 10^k not above ``limit``."""
    k = math.floor(math.log10(limit))
    for m in (5, 2, 1):
        if m * 10**k <= limit:
            return m * 10**k
    return 10 ** (k - 1) * 5  # pragma: no cover


def _scale_bar(ax: Any, width_um: float) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length = _nice_length(width_um / 3)
    label = f"{length:g} µm"
    ax.add_artist(AnchoredSizeBar(ax.transData, length, label, "lower right", pad=0.3,
                                  color="black", frameon=True, size_vertical=width_um / 80,
                                  label_top=True))


def _visible_faces(filled: np.ndarray, toward: Sequence[int]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quads (n, 4, 3) in plot coordinates (x, y, z), the voxel index (n, 3) and the normal
    axis (n,) of every face of ``filled`` (z, y, x) that faces ``toward`` (a sign per axis
    z, y, x) and is not covered by a filled neighbour."""
    quads, owners, axes = [], [], []
    for axis in range(3):
        sign = int(toward[axis])
        nb = np.zeros_like(filled)
        src = [slice(None)] * 3
        dst = [slice(None)] * 3
        if sign > 0:
            src[axis], dst[axis] = slice(1, None), slice(None, -1)
        else:
            src[axis], dst[axis] = slice(None, -1), slice(1, None)
        nb[tuple(dst)] = filled[tuple(src)]
        idx = np.argwhere(filled & ~nb)
        if not len(idx):
            continue
        base = idx.astype(float)
        base[:, axis] += 1.0 if sign > 0 else 0.0
        u, v = [a for a in range(3) if a != axis]
        corners = np.repeat(base[:, None, :], 4, axis=1)
        corners[:, 1, u] += 1
        corners[:, 2, u] += 1
        corners[:, 2, v] += 1
        corners[:, 3, v] += 1
        quads.append(corners[:, :, ::-1])  # (z, y, x) -> (x, y, z)
        owners.append(idx)
        axes.append(np.full(len(idx), axis))
    if not quads:
        return np.zeros((0, 4, 3)), np.zeros((0, 3), int), np.zeros(0, int)
    return np.concatenate(quads), np.concatenate(owners), np.concatenate(axes)


def _labels_of(part: Any) -> np.ndarray:
    """A read part of the image as uint8 labels 0..2 (anything else refused)."""
    arr = np.asarray(part)
    if arr.size and (arr.min() < 0 or arr.max() > 2):
        raise InvalidInputError("labels must be integers 0 (pore), 1 (CBD), 2 (graphite)")
    return arr.astype(np.uint8, copy=False)


def _cube(labels: Any, cube: int | None, max_edge: int
          ) -> tuple[np.ndarray, tuple[int, int, int], tuple[int, int, int], int]:
    from cbagpu.io.ngff import downsample_mode

    edge = tuple(min(n, cube if cube is not None else 96) for n in labels.shape)
    start = tuple((n - e) // 2 for n, e in zip(labels.shape, edge, strict=True))
    sub = _labels_of(labels[tuple(slice(s, s + e) for s, e in zip(start, edge, strict=True))])
    step = 1
    while max(sub.shape) > max_edge:
        sub = downsample_mode(sub)
        step *= 2
    return sub, start, edge, step  # type: ignore[return-value]


def show(
    labels: Any,
    path: str | os.PathLike[str],
    *,
    voxel_size: float,
    title: str | None = None,
    cube: int | None = None,
    max_edge: int = 48,
    dpi: int = 100,
    elev: float = 25.0,
    azim: float = -55.0,
    metadata: Mapping[str, Any] | None = None,
    fractions: Mapping[str, float] | None = None,
) -> ShowResult:
    """Draw three orthogonal centre slices and a 3D view of a central sub-cube of a label
    image into a PNG (see the module docstring).

    Parameters
    ----------
    labels : array_like, 3-D (z, y, x), labels 0, 1, 2
        A NumPy array, or any array that reads by slicing (a Zarr array): only the three
        slices and the sub-cube are read when ``fractions`` is given.
    path : path
        Output ``.png``.
    voxel_size : float
        Voxel edge in nm (scale bars, caption).
    title : str, optional
        Title above the panels.
    cube : int, optional
        Edge (voxels) of the central sub-cube of the 3D view (default ``min(shape, 96)``).
    max_edge : int
        The sub-cube is down-sampled (mode of 2x2x2 blocks) until its edge is at most this.
    dpi, elev, azim
        Resolution of the PNG and the viewing angles (degrees) of the 3D view.
    metadata : mapping, optional
        The image's metadata; its seed is named in the caption.
    fractions : mapping, optional
        Volume fractions {pore, cbd, graphite} of the whole image, if known (default:
        counted here, which reads the whole image).

    Returns
    -------
    ShowResult
    """
    from cbagpu.plots import require_matplotlib

    require_matplotlib()
    if hasattr(labels, "get") and hasattr(labels, "device"):  # CuPy: to the host
        labels = labels.get()
    a = labels if hasattr(labels, "shape") and hasattr(labels, "__getitem__") \
        else np.asarray(labels)
    if len(a.shape) != 3 or 0 in a.shape:
        raise InvalidInputError(f"a 3-D label image is needed, got shape {tuple(a.shape)}")
    if np.dtype(a.dtype).kind not in "ui":
        raise InvalidInputError("labels must be integers 0 (pore), 1 (CBD), 2 (graphite)")
    s = check_voxel_size(voxel_size, "voxel_size")
    if not str(path).lower().endswith(".png"):
        raise InvalidInputError(f"the picture is a .png, got {path}")
    if cube is not None and (isinstance(cube, bool) or not isinstance(cube, int) or cube < 1):
        raise InvalidInputError(f"cube must be a positive integer, got {cube!r}")
    if isinstance(max_edge, bool) or not isinstance(max_edge, int) or max_edge < 2:
        raise InvalidInputError(f"max_edge must be an integer >= 2, got {max_edge!r}")

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    z, y, x = (int(n) for n in a.shape)
    centre = (z // 2, y // 2, x // 2)
    planes = {"xy": _labels_of(a[centre[0]]), "xz": _labels_of(a[:, centre[1], :]),
              "yz": _labels_of(a[:, :, centre[2]])}
    if fractions is None:
        whole = _labels_of(a[...])
        counts = np.bincount(whole.ravel(), minlength=3)[:3]
        fractions = {PHASE_NAMES[i].lower(): float(counts[i] / whole.size) for i in range(3)}
    fractions = {k: float(fractions[k]) for k in ("pore", "cbd", "graphite")}
    um = s / 1000.0

    fig = Figure(figsize=(15.0, 4.4), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = {}
    slices = {
        "xy": (planes["xy"], (x, y), f"x-y slice at z = {centre[0]}"),
        "xz": (planes["xz"], (x, z), f"x-z slice at y = {centre[1]}"),
        "yz": (planes["yz"], (y, z), f"y-z slice at x = {centre[2]}"),
    }
    for i, (name, (img, (w, h), label)) in enumerate(slices.items()):
        ax = fig.add_axes((0.02 + 0.235 * i, 0.17, 0.215, 0.7))
        ax.imshow(_rgba(img), interpolation="nearest", origin="lower",
                  extent=(0, w * um, 0, h * um))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(label, fontsize=10)
        _scale_bar(ax, w * um)
        axes[name] = ax

    sub, start, edge, step = _cube(a, cube, max_edge)
    ax3 = fig.add_axes((0.72, 0.06, 0.27, 0.86), projection="3d")
    ax3.view_init(elev=elev, azim=azim)
    er, ar = math.radians(elev), math.radians(azim)
    camera_xyz = (math.cos(er) * math.cos(ar), math.cos(er) * math.sin(ar), math.sin(er))
    toward = [1 if c >= 0 else -1 for c in camera_xyz[::-1]]  # z, y, x
    quads, owners, normal_axis = _visible_faces(sub > 0, toward)
    if len(quads):
        base = np.array([np.asarray(PHASE_COLORS[v][:3]) / 255 for v in range(3)])
        colours = base[sub[tuple(owners.T)]] * np.vectorize(_SHADE.get)(normal_axis)[:, None]
        ax3.add_collection3d(Poly3DCollection(quads * step * um, facecolors=colours,
                                              edgecolors="none", linewidths=0))
    ez, ey, ex = (n * um for n in edge)
    ax3.set_xlim(0, ex)
    ax3.set_ylim(0, ey)
    ax3.set_zlim(0, ez)
    ax3.set_box_aspect((ex, ey, ez))
    ax3.set_xlabel("x (µm)", fontsize=8)
    ax3.set_ylabel("y (µm)", fontsize=8)
    ax3.set_zlabel("z (µm)", fontsize=8)
    ax3.tick_params(labelsize=7)
    ax3.set_title(f"central {edge[2]}x{edge[1]}x{edge[0]} voxels"
                  + (f" (mode of {step}³ blocks)" if step > 1 else ""), fontsize=10)
    axes["3d"] = ax3

    seed = (metadata or {}).get("seed")
    caption = (f"voxel {s:g} nm; {z}x{y}x{x} voxels ({z * um:.3g} x {y * um:.3g} x "
               f"{x * um:.3g} µm); volume fractions: pore {fractions['pore']:.3f}, "
               f"CBD {fractions['cbd']:.3f}, graphite {fractions['graphite']:.3f}"
               + (f"; seed {seed}" if seed is not None else "")
               + ".  Colours: CBD orange, graphite blue, pore transparent.")
    fig.text(0.01, 0.03, caption, fontsize=9, ha="left")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    panels = {}
    for name, ax in axes.items():
        bb = ax.get_window_extent()
        panels[name] = (int(math.ceil(bb.x0)), int(math.ceil(height - bb.y1)),
                        int(math.floor(bb.x1)), int(math.floor(height - bb.y0)))
    out = save_figure_atomic(fig, Path(path), dpi=dpi)
    return ShowResult(str(out), (z, y, x), s, fractions, centre, start, edge, step,
                      panels, (width, height))


def open_labels(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any],
                                                      dict[str, float] | None]:
    """A label image to draw, its metadata and its phase fractions where recorded.

    A ``.zarr`` / ``.ome.zarr`` store written by cbagpu is opened lazily (its full
    resolution level; :func:`show` then reads three slices and the sub-cube only) and its
    fractions are taken from the label counts recorded in it; any other file is read whole
    with :func:`cbagpu.io.read_image`.
    """
    from cbagpu.io import read_image

    p = Path(path)
    if p.suffix.lower() == ".zarr" and p.is_dir():
        import json

        import zarr

        from cbagpu.io.ngff import METADATA_KEY, is_ome_zarr

        if is_ome_zarr(p):
            group = zarr.open_group(str(p), mode="r")
            attrs = json.loads(json.dumps(dict(group.attrs)))
            meta = dict(attrs.get(METADATA_KEY) or {})
            arr = zarr.open_array(str(p / attrs["multiscales"][0]["datasets"][0]["path"]),
                                  mode="r")
        else:
            arr = zarr.open_array(str(p), mode="r")
            meta = json.loads(json.dumps(dict(arr.attrs)))
        counts = meta.get("_cbagpu_label_counts") or meta.get("label_counts")
        if isinstance(counts, dict) and not meta.get("incomplete") \
                and set(counts) == {"pore", "cbd", "graphite"}:
            n = sum(int(v) for v in counts.values())
            if n == math.prod(arr.shape):
                return arr, meta, {k: int(v) / n for k, v in counts.items()}
        if meta.get("incomplete"):
            read_image(p)  # raises the standard "incomplete" error
    image, meta = read_image(p)
    return image, meta, None
