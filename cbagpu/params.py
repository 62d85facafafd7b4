"""Model parameters of the CBD nanostructure model (paper Section 3.1, Table 2).

:class:`CBAParams` holds the eight parameters of the model
Ξ = Ξ1 ∪ (Ξ2 ∩ (Ξ3)ᶜ) (Eq. 4) in the physical units of Table 2:

========== ========= ==================================================
name        unit      meaning
========== ========= ==================================================
lambda_x    nm^-3     intensity of the graphite germs (Eq. 1)
alpha1      nm        gamma shape parameter of the half-axis A
alpha2      nm        gamma shape parameter of the half-axis C
gamma       -         common gamma rate of A and C
mu          -         excursion level of the Gaussian field (Eq. 18)
eta         nm^-1     scale of the Cauchy covariance (Eq. 2)
theta       nm^-1     rate of the exponential ball radii of Ξ3 (Eq. 24)
lambda_y    nm^-3     intensity of the large-pore germs (Eq. 25)
========== ========= ==================================================

**Gamma convention** (NOTES §3, paper Section 3.3).  At voxel edge length ``s`` nm every
parameter with a unit is converted to voxel units (λ·s³, η·s, θ·s, α/s) while γ and μ are
kept.  The half-axes *in voxels* are then

    A ~ Gamma(shape = α1/s, rate = γ),    C ~ Gamma(shape = α2/s, rate = γ),

so the mean half-axis is α/γ nm at every ``s`` but the spread (and hence V̄, S̄, K̄ of
Eqs. 14–16) depends on ``s``.  A parameter set is therefore tied to the resolution at
which it was calibrated; :attr:`CBAParams.calibrated_voxel_size` records it (20 nm for
the paper's Table 2).

This module only uses plain Python floats; it imports no array or GPU library.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cbagpu.errors import InvalidInputError

__all__ = [
    "PARAM_NAMES",
    "PRESETS",
    "TABLE3_LAMBDA_X",
    "TABLE3_V1",
    "CBAParams",
    "VoxelParams",
    "preset",
]

#: The eight model parameters, in Table 2 order of the JSON files.
PARAM_NAMES: tuple[str, ...] = (
    "lambda_x",
    "alpha1",
    "alpha2",
    "gamma",
    "mu",
    "eta",
    "theta",
    "lambda_y",
)
_OPTIONAL_NAMES: tuple[str, ...] = ("calibrated_voxel_size",)
_POSITIVE: frozenset[str] = frozenset({"lambda_x", "alpha1", "alpha2", "gamma", "eta", "theta"})


def _as_finite_float(name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise ValueError naming ``name`` and ``value``.

    Accepts real numbers (Python or NumPy ints/floats); rejects bools, strings, None,
    complex numbers, NaN and infinities.
    """
    if isinstance(value, bool) or type(value).__name__ in ("bool", "bool_"):
        raise InvalidInputError(
            f"parameter {name!r} must be a finite real number, got bool {value!r}"
        )
    if not isinstance(value, numbers.Real):
        raise InvalidInputError(
            f"parameter {name!r} must be a finite real number, got {type(value).__name__} {value!r}"
        )
    out = float(value)
    if not math.isfinite(out):
        raise InvalidInputError(f"parameter {name!r} must be a finite real number, got {value!r}")
    return out


@dataclass(frozen=True)
class VoxelParams:
    """Model parameters in voxel units at voxel edge length ``voxel_size`` (NOTES §3).

    Attributes
    ----------
    lambda_x:
        Graphite germ intensity per voxel, λ_X·s³.
    shape1, shape2:
        Gamma shape parameters of the half-axes in voxels, α1/s and α2/s.  The half-axes
        are A ~ Gamma(shape1, rate=gamma) and C ~ Gamma(shape2, rate=gamma) voxels.
    gamma:
        Common gamma rate (dimensionless, unchanged by the conversion).
    mu:
        Excursion level (dimensionless, unchanged).
    eta:
        Covariance scale per voxel, η·s (Eq. 2 with h in voxels).
    theta:
        Exponential rate of the large-pore radii per voxel, θ·s (mean radius 1/(θ·s) voxels).
    lambda_y:
        Large-pore germ intensity per voxel, λ_Y·s³.
    voxel_size:
        The voxel edge length s in nm.
    """

    lambda_x: float
    shape1: float
    shape2: float
    gamma: float
    mu: float
    eta: float
    theta: float
    lambda_y: float
    voxel_size: float

    def as_dict(self) -> dict[str, float]:
        """Return the fields as a plain dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CBAParams:
    """The eight parameters of the model of Eq. 4 in Table 2 units (see module docstring).

    Parameters
    ----------
    lambda_x:
        Intensity λ_X of the graphite germs [nm^-3], > 0 (Eq. 1).
    alpha1, alpha2:
        Gamma shape parameters α1, α2 of the half-axes A, C [nm], > 0.  Under the paper's
        convention (NOTES §3) the half-axes in voxels of size s are Gamma(α/s, rate γ).
    gamma:
        Common gamma rate γ [-], > 0.
    mu:
        Excursion level μ of the Gaussian field [-], any finite real (Eq. 18).
    eta:
        Covariance scale η [nm^-1], > 0 (Eq. 2).
    theta:
        Rate θ of the exponential large-pore radii [nm^-1], > 0 (Eq. 24).
    lambda_y:
        Intensity λ_Y of the large-pore germs [nm^-3], >= 0 (0 = no large pores).
    calibrated_voxel_size:
        Voxel edge length [nm] at which the set was calibrated, or None if unknown.

    Raises
    ------
    ValueError
        If a value is not a finite real number (bools, strings, NaN and inf are rejected)
        or violates its sign constraint; the message names the parameter and the value.
    """

    lambda_x: float
    alpha1: float
    alpha2: float
    gamma: float
    mu: float
    eta: float
    theta: float
    lambda_y: float
    calibrated_voxel_size: float | None = None

    def __post_init__(self) -> None:
        for name in PARAM_NAMES:
            value = _as_finite_float(name, getattr(self, name))
            if name in _POSITIVE and not value > 0.0:
                raise InvalidInputError(f"parameter {name!r} must be > 0, got {value!r}")
            if name == "lambda_y" and not value >= 0.0:
                raise InvalidInputError(f"parameter {name!r} must be >= 0, got {value!r}")
            object.__setattr__(self, name, value)
        cvs = self.calibrated_voxel_size
        if cvs is not None:
            value = _as_finite_float("calibrated_voxel_size", cvs)
            if not value > 0.0:
                raise InvalidInputError(
                    f"parameter 'calibrated_voxel_size' must be > 0 or None, got {value!r}"
                )
            object.__setattr__(self, "calibrated_voxel_size", value)

    # ------------------------------------------------------------------ conversion
    def to_voxel(self, voxel_size: float) -> VoxelParams:
        """Convert to voxel units at voxel edge length ``voxel_size`` nm (NOTES §3).

        λ_X·s³, α1/s, α2/s, γ, μ, η·s, θ·s, λ_Y·s³.  The half-axes in voxels are
        A ~ Gamma(shape=α1/s, rate=γ), C ~ Gamma(shape=α2/s, rate=γ): their mean is
        α/γ nm at every s, their spread depends on s.
        """
        s = _as_finite_float("voxel_size", voxel_size)
        if not s > 0.0:
            raise InvalidInputError(f"parameter 'voxel_size' must be > 0, got {s!r}")
        return VoxelParams(
            lambda_x=self.lambda_x * s**3,
            shape1=self.alpha1 / s,
            shape2=self.alpha2 / s,
            gamma=self.gamma,
            mu=self.mu,
            eta=self.eta * s,
            theta=self.theta * s,
            lambda_y=self.lambda_y * s**3,
            voxel_size=s,
        )

    def replace(self, **changes: Any) -> CBAParams:
        """Return a copy with some fields changed (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, float]:
        """Return the Table 2 values keyed by :data:`PARAM_NAMES`.

        ``calibrated_voxel_size`` is included only when it is not None.
        """
        out: dict[str, float] = {name: getattr(self, name) for name in PARAM_NAMES}
        if self.calibrated_voxel_size is not None:
            out["calibrated_voxel_size"] = self.calibrated_voxel_size
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CBAParams:
        """Build from a dict with exactly the eight keys (+ optional calibrated_voxel_size).

        Raises
        ------
        ValueError
            If keys are missing or unknown (the message lists them), or a value is invalid.
        """
        if not isinstance(d, dict):
            raise InvalidInputError(f"expected a dict of parameters, got {type(d).__name__}")
        keys = set(d)
        missing = [name for name in PARAM_NAMES if name not in keys]
        unknown = sorted(str(k) for k in keys - set(PARAM_NAMES) - set(_OPTIONAL_NAMES))
        problems = []
        if missing:
            problems.append("missing keys: " + ", ".join(missing))
        if unknown:
            problems.append("unknown keys: " + ", ".join(unknown))
        if problems:
            raise InvalidInputError(
                "invalid CBAParams dict ("
                + "; ".join(problems)
                + "); expected keys: "
                + ", ".join(PARAM_NAMES + _OPTIONAL_NAMES)
            )
        return cls(**d)

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Return the JSON text of :meth:`to_dict`; also write it to ``path`` if given.

        The file is written atomically: a temporary file in the same directory is
        written, flushed and then moved over ``path`` with :func:`os.replace`.
        """
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        if path is not None:
            from cbagpu.io.atomic import write_text_atomic

            write_text_atomic(path, text)
        return text

    @classmethod
    def from_json(cls, path_or_str: str | os.PathLike[str]) -> CBAParams:
        """Load from a JSON file path or from JSON text.

        A :class:`os.PathLike` is always read as a file; a ``str`` is parsed as JSON when
        it starts with ``{`` (after whitespace) and is otherwise taken as a file path.
        """
        if isinstance(path_or_str, str) and path_or_str.lstrip().startswith("{"):
            text = path_or_str
        else:
            text = Path(path_or_str).read_text(encoding="utf-8")
        data = json.loads(text)
        return cls.from_dict(data)


# ---------------------------------------------------------------------- presets
#: λ_X values of Table 3 [nm^-3].
TABLE3_LAMBDA_X: tuple[float, ...] = (
    2.21e-11,
    3.55e-11,
    4.93e-11,
    6.36e-11,
    7.81e-11,
    9.33e-11,
    1.09e-10,
)
#: Volume fractions V1 of Ξ1 reported in Table 3 for :data:`TABLE3_LAMBDA_X`.
TABLE3_V1: tuple[float, ...] = (0.0381, 0.0605, 0.0830, 0.1057, 0.1283, 0.1512, 0.1744)

_PAPER = CBAParams(
    lambda_x=6.355e-11,
    alpha1=205.0,
    alpha2=3944.0,
    gamma=1.971,
    mu=0.499,
    eta=0.0127,
    theta=0.0105,
    lambda_y=9.340e-9,
    calibrated_voxel_size=20.0,
)

#: Named parameter sets: ``"paper"`` (Table 2) and ``"table3-1"`` … ``"table3-7"``
#: (Table 2 with λ_X from Table 3).
PRESETS: dict[str, CBAParams] = {"paper": _PAPER}
for _i, _lam in enumerate(TABLE3_LAMBDA_X, start=1):
    PRESETS[f"table3-{_i}"] = _PAPER.replace(lambda_x=_lam)
del _i, _lam


def preset(name: str) -> CBAParams:
    """Return the preset parameter set ``name`` (see :data:`PRESETS`).

    Raises
    ------
    ValueError
        ``unknown preset 'x'; choose one of: ...`` if ``name`` is not a preset.
    """
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise InvalidInputError(
            f"unknown preset {name!r}; choose one of: " + ", ".join(PRESETS)) from None
