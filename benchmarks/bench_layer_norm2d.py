"""Benchmark of layer_norm2d (the decoder's norm: GroupNorm with one group, affine, ReLU):
reference eager, torch.compile of the reference, and every backend with its own kernel (today
native: torch's group_norm, what ONNX exports).

    python -m benchmarks.bench_layer_norm2d [--shapes table|small] [--dtypes fp32,bf16] ...
Writes benchmarks/results/layer_norm2d_<device>.csv and .png.
"""
import argparse

import torch

from lomit_fast import ops
from lomit_fast.ops.reference import layer_norm2d_ref

from .bench_instance_norm import byte_floor, make_inputs  # same arguments, same bytes
from .harness import add_common_args, run_op_benchmark

__all__ = ["byte_floor", "make_inputs", "run_backend"]


def run_backend(backend):
    def reference(x, w, b):
        return layer_norm2d_ref(x, w, b, 1e-5, "relu")
    if backend == "compile":
        return torch.compile(reference, dynamic=False)
    name = "reference" if backend == "eager" else backend
    return lambda x, w, b: ops.layer_norm2d(x, w, b, 1e-5, "relu", backend=name)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    run_op_benchmark(parser.parse_args(), "layer_norm2d", make_inputs, run_backend, byte_floor)


if __name__ == "__main__":
    main()
