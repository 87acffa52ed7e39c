#!/usr/bin/env bash
# The whole product on the GPU once (issue 16): build + gpu tests, every translate backend against
# the reference run, the generator benchmark, training-step speed, in that order within
# --budget seconds (default 480). Results (8 files, the device's name in each) go to $OUT;
# benchmarks/gpu_product.py says what each stage writes, benchmarks/NOTES.md how to run it.
# Usage from the repository root:  bash benchmarks/gpu_product.sh [--stages bench] [--budget S]
# The same logic on the CPU, tiny:  python -m benchmarks.gpu_product --device cpu --quick --out DIR
set -uo pipefail
export PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" -m benchmarks.gpu_product --device cuda \
  --out "${OUT:-benchmarks/results/product}" "$@"
