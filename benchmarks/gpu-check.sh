#!/usr/bin/env bash
# One prepared GPU check (adapted from shared/tools/gpu-check.sh): install carried wheels,
# print the card, run the GPU test suite (tests/gpu plus the kernel tests), then benchmark
# steps, each under its own time limit. Full logs go to $OUT (the folder whose files come
# back: at most 8 files, two folders deep).
#
# Prepare here:   ../shared/tools/gpu-wheels.sh edt zarr==3.1.6 numcodecs donfig google-crc32c \
#                     dask==2026.8.0 distributed==2026.8.0 partd locket tblib zict tornado
#                 (fills .whl/, ignored by git; the device has CuPy, NumPy, SciPy, Numba,
#                 tifffile, scikit-image, but not cuCIM, edt, zarr or dask.distributed,
#                 whose GPU tests then skip)
# Run on the GPU machine, from the project root, carrying .whl:
#   bash benchmarks/gpu-check.sh                       # tests + the default steps below
#   STEPS="60 describe --sizes 400" bash benchmarks/gpu-check.sh
#   TESTS="" STEPS="..." bash benchmarks/gpu-check.sh  # benchmarks only
# STEPS: one step per line, "SECONDS SUITE [ARGS of python -m benchmarks run]"; each runs on
# the cupy backend unless ARGS name --backend. Each step's failure is logged and the next
# step still runs. Keep the sum of the limits inside the device call's timeout_s.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.." || exit 1
PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-120}
# the device checks: tests/gpu and the CUDA variant of every kernel-vs-twin registry check
TESTS=${TESTS-tests/gpu tests/test_kernels_registry.py -m gpu}
# (the host-compiled variants of tests/test_kernels_registry.py, tests/test_gpu_route_on_host.py
# and test_kernels_compile.py need no GPU: CI runs them.)
# The four jobs of the GPU table (issue "GPU route at its floor"), most wanted first. With
# the tests (120 s), the budget report (90 s) and the profile (60 s) the limits add up to
# ~580 s: one device call of timeout_s=600. The others warm up first; describe and fit run
# once after the warm-up.
DEFAULT_STEPS="60 transport --sizes 400 --repeat 1 --timeout 55 -k transport-400
110 describe --sizes 800 --repeat 1 --timeout 105 -k describe-800
50 generate --sizes 1024 --repeat 3 --timeout 45 -k generate-1024
90 fit --repeat 1 --timeout 85 -k fit-400"
STEPS=${STEPS:-$DEFAULT_STEPS}
RESULTS=${RESULTS:-/tmp/bench-results}
mkdir -p "$RESULTS"

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
  python3 -c "import numba, numpy, scipy; print('numba', numba.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__)"
  python3 -c "import edt; print('edt present')" || echo "edt missing"
  nproc
} 2>&1 | tee -a "$OUT/gpu.txt"

# 2. The GPU tests (no -x: every failure is listed).
if [ -n "$TESTS" ]; then
  echo "== pytest $TESTS ==" | tee "$OUT/pytest.txt"
  # shellcheck disable=SC2086  # TESTS is a list of paths
  timeout "$PYTEST_TIMEOUT" python3 -m pytest -q -p no:cacheprovider -rfE $TESTS 2>&1 \
    | tee -a "$OUT/pytest.txt" | tail -60
  echo "pytest exit status: ${PIPESTATUS[0]}" | tee -a "$OUT/pytest.txt"
fi

# 3. The cost account (counts on the host-compiled kernels, as in CI) beside the seconds of
#    the same stages on the GPU: what the CPU account predicted against what the GPU shows.
BUDGET=${BUDGET-1}
if [ -n "$BUDGET" ]; then
  timeout 90 python3 -m benchmarks budget --json --seconds > "$OUT/budget.json" \
    2> "$OUT/budget.err"
  echo "budget exit status: $? (0: every budget met; the JSON is in budget.json)" \
    | tee -a "$OUT/gpu.txt"
fi

# 4. Stage timings of the transport solve and the geodesic routes (benchmarks/profile_stages.py).
PROFILE=${PROFILE---transport 200}
if [ -n "$PROFILE" ]; then
  # shellcheck disable=SC2086
  timeout 60 python3 -m benchmarks.profile_stages --backend cupy $PROFILE 2>&1 \
    | tee "$OUT/profile.txt" | tail -30
fi

# 5. Benchmark steps.
: > "$OUT/bench.txt"
while IFS= read -r line; do
  [ -z "$line" ] && continue
  read -r limit suite args <<< "$line"
  case " $args " in *" --backend "*) backend_arg="" ;; *) backend_arg="--backend cupy" ;; esac
  echo "== $suite $backend_arg $args (limit ${limit}s) ==" | tee -a "$OUT/bench.txt"
  # shellcheck disable=SC2086
  timeout "$limit" python3 -m benchmarks run "$suite" $backend_arg $args --out "$RESULTS" 2>&1 \
    | tee -a "$OUT/bench.txt" | tail -20
  echo "exit status: ${PIPESTATUS[0]}" | tee -a "$OUT/bench.txt"
  mkdir -p "$OUT/results" && cp "$RESULTS"/*.json "$OUT/results/" 2>/dev/null
done <<< "$STEPS"

# Only 8 files come back: gpu, pytest, budget (json, err), profile, bench and at most 2
# results; else a tarball.
if [ "$(find "$OUT/results" -maxdepth 1 -name "*.json" 2>/dev/null | wc -l)" -gt 2 ]; then
  tar -czf "$OUT/results.tar.gz" -C "$OUT" results && rm -rf "$OUT/results"
fi
echo "done; files under \$OUT come back: gpu.txt pytest.txt budget.json budget.err profile.txt bench.txt results/ (or results.tar.gz)"
