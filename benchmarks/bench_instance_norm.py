"""Benchmark of instance_norm (affine + ReLU, as in the content encoder's blocks): reference
eager, torch.compile of the reference, Triton.

    python -m benchmarks.bench_instance_norm [--shapes table|small] [--dtypes fp32,bf16] ...
Writes benchmarks/results/instance_norm_<device>.csv and .png.
"""
import argparse

import torch

from lomit_fast import ops
from lomit_fast.ops.reference import instance_norm_ref

from .harness import add_common_args, run_op_benchmark


def make_inputs(shape, dtype, layout, device):
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(shape, device=device, generator=g).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(shape[1], device=device, generator=g).to(dtype)
    bias = torch.randn(shape[1], device=device, generator=g).to(dtype)
    return [x, weight, bias]


def run_backend(backend):
    def reference(x, w, b):
        return instance_norm_ref(x, w, b, 1e-5, "relu")
    if backend == "compile":
        return torch.compile(reference, dynamic=False)
    name = "reference" if backend == "eager" else backend
    return lambda x, w, b: ops.instance_norm(x, w, b, 1e-5, "relu", backend=name)


def byte_floor(inputs, pass_):
    x, weight, bias = inputs
    x_bytes = x.numel() * x.element_size()
    params = 2 * weight.numel() * weight.element_size()
    forward = 2 * x_bytes + params                   # read x, write y
    if pass_ == "forward":
        return forward
    return forward + 3 * x_bytes + 2 * params        # read x, dy, write dx; weight/bias grads


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    run_op_benchmark(parser.parse_args(), "instance_norm", make_inputs, run_backend, byte_floor)


if __name__ == "__main__":
    main()
