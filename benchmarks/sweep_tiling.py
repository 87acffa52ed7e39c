"""Sweep the Triton kernels' tile settings (kernels/_common.py knobs) on the performance.md
shapes, to choose the defaults from measurements rather than guesses.

    python -m benchmarks.sweep_tiling [--out DIR]
Writes tiling_sweep_<device>.csv: one row per (profile, op, pass, shape, dtype), same columns as
the op benchmarks, the profile in the backend column.
"""
import argparse
from pathlib import Path

import torch

from lomit_fast.kernels import _common

from . import bench_hain, bench_instance_norm
from .harness import (TABLE_SHAPES, _forward, _forward_backward, check_close, copy_bandwidth,
                      op_row, time_us)
from .rows import device_name, slug, write_rows

# (forward tile, forward elements per thread, backward tile, backward elements per thread)
PROFILES = [(4096, 16, 4096, 8), (4096, 8, 2048, 8), (8192, 16, 8192, 16), (16384, 32, 4096, 16)]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--layouts", default="nchw")
    args = parser.parse_args()
    device = "cuda"
    bandwidth = copy_bandwidth(device)
    path = Path(args.out) / f"tiling_sweep_{slug(device_name(device))}.csv"
    path.unlink(missing_ok=True)
    defaults = (_common.FORWARD_TILE, _common.FORWARD_ELEMENTS_PER_THREAD,
                _common.BACKWARD_TILE, _common.BACKWARD_ELEMENTS_PER_THREAD)
    for module, op in ((bench_hain, "hain"), (bench_instance_norm, "instance_norm")):
        for shape in TABLE_SHAPES:
            for dtype in (torch.float32, torch.bfloat16):
                for layout in args.layouts.split(","):
                    inputs = module.make_inputs(shape, dtype, layout, device)
                    expected = module.run_backend("eager")(*inputs)
                    exact = module.run_backend("eager")(*(t.double() for t in inputs))
                    fn = module.run_backend("triton")
                    for profile in PROFILES:
                        (_common.FORWARD_TILE, _common.FORWARD_ELEMENTS_PER_THREAD,
                         _common.BACKWARD_TILE, _common.BACKWARD_ELEMENTS_PER_THREAD) = profile
                        name = "triton[{}/{} {}/{}]".format(*profile)
                        check_close(f"{op} {name} {shape}", fn(*inputs), expected, exact)
                        for pass_, timed in (("forward", _forward(fn, inputs)),
                                             ("forward+backward", _forward_backward(fn, inputs))):
                            byte_floor = module.byte_floor(inputs, pass_)
                            row = op_row(op, name, pass_, shape, dtype, layout,
                                         time_us(timed, device), byte_floor, bandwidth, device)
                            write_rows(path, [row], append=True)
                            print(f"{op:14s} {name:28s} {pass_:17s} {row['shape']:16s} "
                                  f"{row['dtype']:9s} {layout:6s} {row['p50_us']:9.1f} us "
                                  f"{row['pct_of_floor']:6.1f} %", flush=True)
                    del inputs, expected, exact
    (_common.FORWARD_TILE, _common.FORWARD_ELEMENTS_PER_THREAD,
     _common.BACKWARD_TILE, _common.BACKWARD_ELEMENTS_PER_THREAD) = defaults
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
