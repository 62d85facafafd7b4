"""``cbagpu regress``: refit the regressions of Eqs. 28-29 from a finished sweep's
results.csv, without recomputing it."""

from __future__ import annotations

import argparse
from typing import Any

from cbagpu.cli.common import format_coefficient, print_json

_FORM_TEXT = {
    "eq28": "on M, a,b,c >= 0",
    "eq28_log": "on log M, a,b,c >= 0",
    "eq28_unconstrained": "on log M, unbounded",
}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``regress`` on an argparse subparsers object."""
    p = sub.add_parser(
        "regress",
        help="refit Eqs. 28-29 from a sweep's results.csv",
        description="Refit the M-factor regressions of a finished sweep from its "
        "results.csv: Eq. 28 on M (the default, the paper's description) and on log M, "
        "per phase and pooled over both phases, and Eq. 29 per phase, each coefficient "
        "with its 95 %% confidence interval.",
    )
    p.add_argument("results", metavar="RESULTS_CSV", help="a sweep's results.csv")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="also write the fits as strict JSON to FILE")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``cbagpu regress``; exit 0, 2 on a file that is not a sweep's table."""
    from cbagpu.studies.refit import EQ28_FORMS, regress

    res = regress(args.results, out=args.out)
    if args.json:
        print_json(res.to_dict())
        return 0
    print(f"{args.results}: {res.n_rows} rows" + (f", varied {', '.join(res.vary)}"
                                                  if res.vary else ""))
    for group in ("both", "solid", "pore"):
        f = res.fits[group]
        print(f"{group}: {f['n_rows']} rows, {f['non_percolating']} not percolating, "
              f"{f['not_converged']} not converged")
        for form in EQ28_FORMS:
            e = f[form]
            mark = "  <- default" if (group, form) == res.default else ""
            text = f"  Eq. 28 {_FORM_TEXT[form]:<22}"
            if "error" in e:
                print(f"{text} not fitted ({e['error']})")
                continue
            print(f"{text} " + ", ".join(format_coefficient(e, k) for k in "abc")
                  + f", R2 = {e['r2']:.3f} (n = {e['n']}){mark}")
        if "eq29" in f:
            e = f["eq29"]
            if "error" in e:
                print(f"  Eq. 29 not fitted ({e['error']})")
            else:
                c1, c0 = format_coefficient(e, "c1"), format_coefficient(e, "c0")
                print(f"  Eq. 29 {c1}, {c0}, R2 = {e['r2']:.3f}")
    if args.out is not None:
        print(f"wrote {args.out}")
    return 0
