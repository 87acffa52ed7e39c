"""Where the time of one fused op goes: a torch.profiler table of forward + backward on one
performance.md shape (GPU kernels and their CPU launch cost side by side).

    python -m benchmarks.profile_step [--op hain|instance_norm] [--dtype fp32|bf16]
"""
import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from . import bench_hain, bench_instance_norm
from .harness import DTYPES, _forward_backward


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--op", default="hain", choices=["hain", "instance_norm"])
    parser.add_argument("--dtype", default="fp32", choices=list(DTYPES))
    parser.add_argument("--backend", default="triton")
    parser.add_argument("--shape", default="64,256,64,64")
    args = parser.parse_args()
    module = bench_hain if args.op == "hain" else bench_instance_norm
    shape = tuple(int(s) for s in args.shape.split(","))
    inputs = module.make_inputs(shape, DTYPES[args.dtype], "nchw", "cuda")
    step = _forward_backward(module.run_backend(args.backend), inputs)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(10):
            step()
        torch.cuda.synchronize()
    print(f"{args.op} {args.backend} {shape} {args.dtype}: forward + backward, 10 steps")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12))


if __name__ == "__main__":
    main()
