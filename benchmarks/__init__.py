"""Benchmark harness and suites for cbagpu.

Run ``python -m benchmarks list`` to see the suites and
``python -m benchmarks run SUITE [--backend numpy|cupy|auto]`` to run one; see
``benchmarks/README.md``.  Results are written to ``benchmarks/results/SUITE-MACHINE.json``.
"""

from benchmarks.harness import Case, SkipCase, list_suites, run_suite

__all__ = ["Case", "SkipCase", "list_suites", "run_suite"]
