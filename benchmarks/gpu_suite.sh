#!/usr/bin/env bash
# One prepared run on a GPU machine: CUDA parity tests of every op and of the whole generator,
# then the kernel benchmarks. Results (logs, CSV, PNG) go to $OUT (default benchmarks/results).
# Usage from the repository root:  bash benchmarks/gpu_suite.sh [tests|kernels|all]
set -uo pipefail
OUT=${OUT:-benchmarks/results}
WHAT=${1:-all}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/suite.log"; }

log "install (no C++ extension build: the kernels under test are Triton)"
LOMIT_BUILD_EXT=0 $PY -m pip install -q --no-build-isolation --no-deps -e . >>"$OUT/suite.log" 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/suite.log"
$PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" \
  | tee -a "$OUT/suite.log"

if [[ $WHAT == all || $WHAT == tests ]]; then
  log "gpu tests"
  timeout 300 $PY -m pytest -m gpu -q -p no:cacheprovider tests 2>&1 | tail -40 >"$OUT/gpu_tests.log"
  tail -3 "$OUT/gpu_tests.log" | tee -a "$OUT/suite.log"
fi
if [[ $WHAT == all || $WHAT == kernels ]]; then
  log "bench hain"
  $PY -m benchmarks.bench_hain --out "$OUT" >>"$OUT/suite.log" 2>&1
  log "bench instance_norm (torch.compile timed forward only, to fit the time on the card)"
  $PY -m benchmarks.bench_instance_norm --out "$OUT" --compile-passes forward >>"$OUT/suite.log" 2>&1
fi
log "done"
