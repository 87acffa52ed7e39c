#!/usr/bin/env bash
# One prepared run on a GPU machine: CUDA parity tests of every op and of the whole generator,
# then the kernel benchmarks. Results (logs, CSV, PNG) go to $OUT (default benchmarks/results).
# Usage from the repository root:  bash benchmarks/gpu_suite.sh [tests|sweep|kernels|all]
# BENCH_ARGS adds options to both kernel benchmarks (e.g. "--backends compile,triton").
set -uo pipefail
OUT=${OUT:-benchmarks/results}
WHAT=${1:-all}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/suite.log"; }

log "install with the C++/CUDA extension (its cpp-cuda tests run below)"
if ! MAX_JOBS=16 $PY -m pip install -q --no-build-isolation --no-deps -e . >>"$OUT/suite.log" 2>&1
then
  log "extension build FAILED (log above): installing without it, the Triton tests still run"
  LOMIT_BUILD_EXT=0 $PY -m pip install -q --no-build-isolation --no-deps -e . >>"$OUT/suite.log" 2>&1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/suite.log"
$PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" \
  | tee -a "$OUT/suite.log"

if [[ $WHAT == all || $WHAT == tests ]]; then
  log "gpu tests"
  # Triton compiles dominate: spread them over processes where pytest-xdist is installed.
  XDIST=$($PY -c "import xdist" 2>/dev/null && echo "-n 8")
  timeout 300 $PY -m pytest -m gpu -q -p no:cacheprovider $XDIST tests 2>&1 | tail -60 \
    >"$OUT/gpu_tests.log"
  tail -3 "$OUT/gpu_tests.log" | tee -a "$OUT/suite.log"
fi
if [[ $WHAT == all || $WHAT == sweep ]]; then
  log "profile of one forward + backward"
  $PY -m benchmarks.profile_step --op hain >>"$OUT/suite.log" 2>&1
  $PY -m benchmarks.profile_step --op instance_norm >>"$OUT/suite.log" 2>&1
  log "tile sweep"
  $PY -m benchmarks.sweep_tiling --out "$OUT" >>"$OUT/suite.log" 2>&1
fi
if [[ $WHAT == all || $WHAT == kernels ]]; then
  log "bench hain"
  $PY -m benchmarks.bench_hain --out "$OUT" ${BENCH_ARGS:-} >>"$OUT/suite.log" 2>&1
  log "bench instance_norm (torch.compile timed forward only, to fit the time on the card)"
  $PY -m benchmarks.bench_instance_norm --out "$OUT" --compile-passes forward ${BENCH_ARGS:-} \
    >>"$OUT/suite.log" 2>&1
fi
log "done"
