"""The three phases of a label image: values, names and display colours.

Labels follow the paper and NOTES.md: 0 pore, 1 CBD (nanoporous binder-conductive
additive), 2 graphite. The colours are fixed, so every picture and every viewer (OME-Zarr
label metadata, :func:`cbagpu.viz.show`) paints a phase alike, and colour-blind safe: the
orange and blue of the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"),
told apart under protanopia, deuteranopia and tritanopia and in grey scale (different
lightness). Pore is transparent.
"""

from __future__ import annotations

__all__ = ["LABELS", "PHASE_COLORS", "PHASE_NAMES", "PHASE_VALUES"]

#: Label values of the phase images and their names as image metadata records them
#: (JSON object keys are strings).
LABELS: dict[str, str] = {"0": "pore", "1": "cbd", "2": "graphite"}

#: Label value of each phase.
PHASE_VALUES: dict[str, int] = {"pore": 0, "cbd": 1, "graphite": 2}

#: Display name of each label value (as in NGFF ``image-label`` properties).
PHASE_NAMES: dict[int, str] = {0: "pore", 1: "CBD", 2: "graphite"}

#: RGBA (0-255) of each label value: pore transparent, CBD Okabe-Ito orange (#E69F00),
#: graphite Okabe-Ito blue (#0072B2).
PHASE_COLORS: dict[int, tuple[int, int, int, int]] = {
    0: (0, 0, 0, 0),
    1: (230, 159, 0, 255),
    2: (0, 114, 178, 255),
}
