"""Refit the regressions of Eqs. 28-29 from a finished sweep's ``results.csv`` without
recomputing any realization (``cbagpu regress``)."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cbagpu.errors import InvalidInputError
from cbagpu.studies.regression import EQ28_DEFAULT_SPACE
from cbagpu.studies.sweep import COLUMNS, EXTRA_COLUMNS, fit_rows

__all__ = ["EQ28_FORMS", "Refit", "read_results", "regress"]

#: The Eq. 28 fits of each group (keys of :func:`~cbagpu.studies.sweep.fit_rows`), the
#: default first: on M with a, b, c >= 0; on log M with a, b, c >= 0; on log M unbounded.
EQ28_FORMS = ("eq28", "eq28_log", "eq28_unconstrained")
_BOOL = {"true": True, "false": False}


def _value(name: str, text: str, where: str) -> Any:
    if name == "phase":
        return text
    if name == "seed":
        try:
            return int(text)
        except ValueError:
            raise InvalidInputError(f"{where}: seed {text!r} is not an integer") from None
    if name in ("percolates", "converged"):
        if text not in _BOOL:
            raise InvalidInputError(f"{where}: {name} must be true or false, got {text!r}")
        return _BOOL[text]
    try:
        return float(text)  # repr() of a float, or inf / nan as results.csv writes them
    except ValueError:
        raise InvalidInputError(f"{where}: {name} {text!r} is not a number") from None


def read_results(path: str | os.PathLike[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows of a sweep's ``results.csv``: ``(varied parameter names, rows)``, each row a
    dict of the varied parameters and :data:`~cbagpu.studies.sweep.COLUMNS` +
    :data:`~cbagpu.studies.sweep.EXTRA_COLUMNS` with their types (seed int, phase str,
    percolates / converged bool, the rest float; ``inf`` for a non-percolating phase's
    tortuosity). Raises :class:`~cbagpu.errors.InvalidInputError` for a file that is not a
    sweep's table."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"{p}: no such file")
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise InvalidInputError(f"{p}: empty file")
        tail = [*COLUMNS, *EXTRA_COLUMNS]
        if "seed" not in header or header[header.index("seed"):] != tail:
            raise InvalidInputError(
                f"{p}: not a sweep's results.csv (expected the columns "
                f"{', '.join(tail)} after the varied parameters)")
        vary = header[: header.index("seed")]
        rows = []
        for i, rec in enumerate(reader, start=2):
            if not rec:
                continue
            if len(rec) != len(header):
                raise InvalidInputError(f"{p}:{i}: {len(rec)} fields, expected {len(header)}")
            rows.append({h: _value(h, t, f"{p}:{i}") for h, t in zip(header, rec, strict=True)})
    if not rows:
        raise InvalidInputError(f"{p}: no rows")
    phases = {r["phase"] for r in rows}
    if not phases <= {"solid", "pore"}:
        raise InvalidInputError(f"{p}: unknown phases {sorted(phases - {'solid', 'pore'})}")
    return vary, rows


@dataclass(frozen=True)
class Refit:
    """The regressions of a finished sweep, refitted from its table.

    ``fits``: as a sweep's ``fits.json`` (:func:`~cbagpu.studies.sweep.fit_rows`) -- per
    group ``solid``, ``pore`` and ``both`` (pooled), the Eq. 28 forms of
    :data:`EQ28_FORMS` and, per phase, Eq. 29. ``default``: the group and form the package
    recommends (the paper's description: on M, both phases pooled).
    """

    path: str
    vary: tuple[str, ...]
    n_rows: int
    fits: dict[str, Any]
    default: tuple[str, str] = ("both", "eq28")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (fits.json's layout plus what was read)."""
        return {
            "results": self.path,
            "vary": list(self.vary),
            "n_rows": self.n_rows,
            "default": {"group": self.default[0], "fit": self.default[1],
                        "space": EQ28_DEFAULT_SPACE},
            "fits": self.fits,
        }


def regress(results_csv: str | os.PathLike[str], *,
            out: str | os.PathLike[str] | None = None) -> Refit:
    """Refit Eqs. 28 (on M and on log M; per phase and pooled) and 29 from a sweep's
    ``results.csv`` (:func:`read_results`), without recomputing anything.

    ``out``: also write :meth:`Refit.to_dict` there as strict JSON (atomically).

    Returns
    -------
    Refit
        The fits as :func:`~cbagpu.studies.sweep.fit_rows` gives them for the same rows,
        so a refit of an unchanged table equals the sweep's ``fits.json``.
    """
    vary, rows = read_results(results_csv)
    for r in rows:
        for k in ("epsilon", "M"):
            if math.isnan(r[k]):
                raise InvalidInputError(f"{results_csv}: {k} is NaN in a row (seed {r['seed']})")
    res = Refit(path=str(results_csv), vary=tuple(vary), n_rows=len(rows),
                fits=fit_rows(rows))
    if out is not None:
        from cbagpu.io.atomic import write_json_atomic

        write_json_atomic(out, res.to_dict())
    return res
