"""Benchmark of hain: reference eager, torch.compile of the reference, Triton.

    python -m benchmarks.bench_hain [--shapes table|small] [--dtypes fp32,bf16] ...
Writes benchmarks/results/hain_<device>.csv and .png.
"""
import argparse

import torch

from lomit_fast import ops
from lomit_fast.ops.reference import hain_ref

from .harness import add_common_args, run_op_benchmark


def make_inputs(shape, dtype, layout, device):
    n, c, h, w = shape
    g = torch.Generator(device=device).manual_seed(0)
    content = torch.randn(shape, device=device, generator=g).to(dtype)
    if layout == "channels_last":
        content = content.contiguous(memory_format=torch.channels_last)
    mask = torch.rand(n, 1, h, w, device=device, generator=g).to(dtype)
    styles = [torch.randn(n, c, device=device, generator=g).to(dtype) for _ in range(4)]
    return [content, mask, styles[0], styles[1].abs() + 0.1, styles[2], styles[3].abs() + 0.1]


def run_backend(backend):
    if backend == "compile":
        return torch.compile(hain_ref, dynamic=False)
    name = "reference" if backend == "eager" else backend
    return lambda *a: ops.hain(*a, backend=name)


def byte_floor(inputs, pass_):
    content, mask, *styles = inputs
    c_bytes = content.numel() * content.element_size()
    small = mask.numel() * mask.element_size() + sum(s.numel() * s.element_size() for s in styles)
    forward = 2 * c_bytes + small                    # read c, write out; read mask and styles
    if pass_ == "forward":
        return forward
    return forward + 3 * c_bytes + 2 * small         # read c, dy, write dc; mask/styles and grads


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    run_op_benchmark(parser.parse_args(), "hain", make_inputs, run_backend, byte_floor)


if __name__ == "__main__":
    main()
