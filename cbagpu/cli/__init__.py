"""The ``cbagpu`` command line: one module per command, each of which parses its options,
calls one library function and prints (:mod:`cbagpu.cli.common` holds what they share).

Commands: ``generate``, ``theory``, ``describe``, ``transport``, ``fit``, ``prepare``,
``composition``, ``validate``, ``sweep``, ``regress``, ``info``, ``export``, ``show``,
``crop``, ``resample``, ``rve``. Exit status: 0 done; 1 the work ran
but did not succeed (failed tasks of a study, a transport solve that did not converge);
2 bad input, an unavailable backend, a request too large for memory, a bad path or a
missing optional extra (one line on stderr); 130 interrupted. Anything else is a bug and
shows its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cbagpu._version import __version__
from cbagpu.cli import (
    composition,
    crop,
    describe,
    export,
    fit,
    generate,
    info,
    prepare,
    regress,
    resample,
    rve,
    show,
    sweep,
    theory,
    transport,
    validate,
)
from cbagpu.cli.common import Parser, exit_status

__all__ = ["build_parser", "main"]

#: The command modules in the order ``cbagpu --help`` lists them.
COMMANDS = (generate, theory, describe, transport, fit, prepare, composition, validate,
            sweep, regress, info, export, show, crop, resample, rve)


def build_parser() -> argparse.ArgumentParser:
    """The ``cbagpu`` parser with every command."""
    p = Parser(prog="cbagpu", description="GPU-accelerated stochastic 3D model of the "
               "nanoporous binder-conductive additive phase of battery cathodes")
    p.add_argument("--version", action="version", version=f"cbagpu {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"cbagpu {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        status = exit_status(args.command, exc)
        if status is None:
            raise
        return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
