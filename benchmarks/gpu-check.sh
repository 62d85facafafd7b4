#!/usr/bin/env bash
# One prepared GPU check (adapted from shared/tools/gpu-check.sh): install carried wheels,
# print the card, run the WHOLE test suite, then every benchmark suite on cupy, plus the
# generate suite on numpy at 200^3 for a CPU number on the same machine. Full logs go to
# $OUT (the folder whose files come back: at most 8 files, two folders deep).
#
# Prepare here:   ../shared/tools/gpu-wheels.sh edt numba llvmlite tifffile
#                 (fills .whl/, ignored by git; the device has CuPy, NumPy, SciPy but not
#                 cuCIM, edt or Numba, which the CPU-side twins of the tests import)
# Run on the GPU machine, from the project root:
#   bash benchmarks/gpu-check.sh                 # every benchmarks/suite_*.py
#   bash benchmarks/gpu-check.sh "generate"      # only these suites
#   BENCH_ARGS="--quick" bash benchmarks/gpu-check.sh      # extra args for each cupy suite
# carrying .whl along, with a time limit that leaves room to run it once more.
# Each step's failure is logged and the next step still runs.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.." || exit 1
BENCH_ARGS=${BENCH_ARGS:-}
# Time limits (seconds); keep their sum inside the device call's timeout_s.
PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-300}   # the test suite
SUITE_TIMEOUT=${SUITE_TIMEOUT:-240}     # each benchmark suite on cupy
CPU_TIMEOUT=${CPU_TIMEOUT:-90}          # generate on numpy at 200^3
RESULTS=benchmarks/results
mkdir -p "$RESULTS"
STAMP=$(mktemp)                         # results newer than this come back

if ls .whl/*.whl >/dev/null 2>&1; then
  if python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl; then
    export PYTHONPATH=/tmp/site:$PWD
  else
    echo "WARNING: installing the carried wheels failed; going on without them" | tee "$OUT/gpu.txt"
    export PYTHONPATH=$PWD
  fi
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1

# 1. The card and the GPU stack.
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
  python3 -c "import cupy; print('cupy', cupy.__version__, 'cuda runtime', cupy.cuda.runtime.runtimeGetVersion())"
  python3 -c "import cucim; print('cucim', cucim.__version__)" || echo "cucim missing"
  python3 -c "import pynvml; print('nvidia-ml-py present')" || echo "nvidia-ml-py missing"
  python3 -c "import porespy; print('porespy', porespy.__version__)" 2>/dev/null || echo "porespy missing"
} 2>&1 | tee -a "$OUT/gpu.txt"

# Copy the result files written since the start into $OUT/results (after each suite, so a
# run cut short still brings back what it finished).
collect() {
  mkdir -p "$OUT/results"
  find "$RESULTS" -maxdepth 1 -name '*.json' -newer "$STAMP" -exec cp {} "$OUT/results/" \;
}

# 2. The whole test suite (no -x: every failure is listed).
echo "== pytest ==" | tee "$OUT/pytest.txt"
timeout "$PYTEST_TIMEOUT" python3 -m pytest -q -p no:cacheprovider tests 2>&1 \
  | tee -a "$OUT/pytest.txt" | tail -40
rc=${PIPESTATUS[0]}; echo; echo "pytest exit status: $rc" | tee -a "$OUT/pytest.txt"

# 3. Every benchmark suite on cupy.
if [ $# -gt 0 ] && [ -n "$1" ]; then
  suites=$1
else
  suites=$(for f in benchmarks/suite_*.py; do b=$(basename "$f" .py); echo "${b#suite_}"; done)
fi
: > "$OUT/bench.txt"
for s in $suites; do
  echo "== suite $s, backend cupy $BENCH_ARGS ==" | tee -a "$OUT/bench.txt"
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of words
  timeout "$SUITE_TIMEOUT" python3 -m benchmarks run "$s" --backend cupy $BENCH_ARGS 2>&1 \
    | tee -a "$OUT/bench.txt" | tail -25
  echo "exit status: ${PIPESTATUS[0]}" | tee -a "$OUT/bench.txt"
  collect
done

# 4. A CPU number on the same machine: generate at 200^3 on numpy.
echo "== suite generate, backend numpy, 200^3 ==" | tee -a "$OUT/bench.txt"
timeout "$CPU_TIMEOUT" python3 -m benchmarks run generate --backend numpy --sizes 200 2>&1 \
  | tee -a "$OUT/bench.txt" | tail -12
echo "exit status: ${PIPESTATUS[0]}" | tee -a "$OUT/bench.txt"
collect

# Only 8 files come back: gpu.txt, pytest.txt, bench.txt and at most 5 results; else a tarball.
if [ "$(find "$OUT/results" -maxdepth 1 -name '*.json' | wc -l)" -gt 5 ]; then
  tar -czf "$OUT/results.tar.gz" -C "$OUT" results && rm -rf "$OUT/results"
fi
rm -f "$STAMP"
echo "done; files under \$OUT come back: gpu.txt pytest.txt bench.txt results/ (or results.tar.gz)"
