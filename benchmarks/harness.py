"""Shared benchmark machinery: timing, the byte floor, CSV rows and PNG charts.

GPU timings use triton.testing.do_bench (median of many runs after warm-up); CPU timings a plain
median of repeated calls. Every variant is timed in the same process on the same device, and the
device-to-device copy bandwidth is measured in the same run, so "percent of floor" compares like
with like (performance.md).
"""
from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from lomit_fast.ops.parity import parity_check

from .rows import device_name, result_row, slug, write_rows

BACKEND_COLOURS = {"eager": "tab:blue", "compile": "tab:orange", "triton": "tab:green",
                   "cpp": "tab:red"}


def time_us(fn: Callable[[], object], device: str) -> tuple[float, float, float]:
    """(p20, p50, p80) in microseconds. On CUDA the calls are replayed from a CUDA graph, so the
    GPU time is measured rather than Python's launch overhead (which exceeds the kernel time of
    a 60 us op); the engine runs these ops under CUDA graphs too."""
    if device == "cuda":
        from triton.testing import do_bench, do_bench_cudagraph
        try:
            p20, p50, p80 = do_bench_cudagraph(fn, rep=100, quantiles=[0.2, 0.5, 0.8])
        except RuntimeError as e:  # not capturable: time with events, overhead included
            print(f"CUDA graph capture failed ({e}); timing with events", flush=True)
            p20, p50, p80 = do_bench(fn, quantiles=[0.2, 0.5, 0.8], warmup=25, rep=100)
        return p20 * 1e3, p50 * 1e3, p80 * 1e3
    for _ in range(2):
        fn()
    samples = []
    deadline = time.perf_counter() + 0.5
    while len(samples) < 5 or (time.perf_counter() < deadline and len(samples) < 200):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    q = statistics.quantiles(samples, n=10)
    return q[1], statistics.median(samples), q[7]


def copy_bandwidth(device: str, nbytes: int = 1 << 30) -> float:
    """Device-to-device copy bandwidth in bytes/s, counting bytes read and written.

    Timed with events, never from a CUDA graph: a captured copy_ becomes a memcpy node that the
    copy engines run at ~2.7 TB/s on an H200 instead of the SMs' ~4.2 TB/s (seen in run 3)."""
    if device != "cuda":
        nbytes = 1 << 27
    src = torch.empty(nbytes // 4, device=device, dtype=torch.float32).uniform_()
    dst = torch.empty_like(src)
    if device == "cuda":
        from triton.testing import do_bench
        p50 = do_bench(lambda: dst.copy_(src), warmup=25, rep=200) * 1e3
    else:
        _, p50, _ = time_us(lambda: dst.copy_(src), device)
    return 2 * nbytes / (p50 * 1e-6)


def check_close(name: str, out: torch.Tensor, same_dtype_ref: torch.Tensor,
                fp64_ref: torch.Tensor) -> None:
    """Refuse to time a variant whose output breaks the parity rule (lomit_fast.ops.parity)."""
    err, bound, _ = parity_check(out, same_dtype_ref, fp64_ref, same_dtype_ref.dtype)
    if not err <= bound:
        raise AssertionError(f"{name}: max error {err:.3g} against the fp64 reference exceeds "
                             f"the parity bound {bound:.3g}; not timing it")


def op_row(op, backend, pass_, shape, dtype, layout, times, nbytes, bandwidth, device) -> dict:
    """A result row of an op timing, with its byte floor (each byte moved once at `bandwidth`)."""
    floor_us = nbytes / bandwidth * 1e6
    return result_row(op, backend, device, pass_=pass_, shape="x".join(map(str, shape)),
                      dtype=dtype, layout=layout, times_us=times,
                      pct_of_floor=floor_us / times[1] * 100, bytes_moved=nbytes,
                      gbps=round(nbytes / (times[1] * 1e-6) / 1e9, 1),
                      floor_us=round(floor_us, 2),
                      copy_bandwidth_tbps=round(bandwidth / 1e12, 2))


def plot(csv_path: Path, png_path: Path, title: str) -> None:
    """Bar chart of percent-of-floor per shape, one bar per backend, a panel per pass/layout."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart")
        return
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    panels = sorted({(r["pass"], r["layout"]) for r in rows})
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 3.2 * len(panels)), squeeze=False)
    for ax, (pass_, layout) in zip(axes[:, 0], panels):
        sel = [r for r in rows if r["pass"] == pass_ and r["layout"] == layout]
        cases = list(dict.fromkeys(f"{r['shape']}\n{r['dtype']}" for r in sel))
        backends = list(dict.fromkeys(r["provider"] for r in sel))
        width = 0.8 / len(backends)
        for i, backend in enumerate(backends):
            colour = BACKEND_COLOURS.get(backend.split("[")[0], None)
            values = {f"{r['shape']}\n{r['dtype']}": float(r["pct_of_floor"])
                      for r in sel if r["provider"] == backend}
            ax.bar([j + i * width for j in range(len(cases))],
                   [values.get(c, 0) for c in cases], width, label=backend, color=colour)
        ax.axhline(90, color="k", linestyle="--", linewidth=0.8)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cases))], cases, fontsize=7)
        ax.set_ylabel("% of byte floor")
        ax.set_title(f"{title}: {pass_}, {layout}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


# --- the driver shared by bench_<stem>.py ---------------------------------------------------
TABLE_SHAPES = [(64, 256, 64, 64), (256, 256, 32, 32), (16, 256, 128, 128), (8, 64, 256, 256)]
SMALL_SHAPES = [(4, 64, 32, 32), (8, 64, 16, 16), (2, 64, 64, 64), (1, 16, 128, 128)]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def add_common_args(parser) -> None:
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shapes", choices=["table", "small"], default=None,
                        help="performance.md's table (default on CUDA) or scaled-down shapes")
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--layouts", default="nchw,channels_last")
    parser.add_argument("--backends", default=None,
                        help="comma list of eager, compile, native, triton, cpp (default: all that run here)")
    parser.add_argument("--passes", default="forward,forward+backward")
    parser.add_argument("--compile-layouts", default="nchw",
                        help="layouts timed with torch.compile (each costs a compilation)")
    parser.add_argument("--compile-passes", default="forward,forward+backward",
                        help="passes timed with torch.compile")
    parser.add_argument("--out", default="benchmarks/results")


def run_op_benchmark(args, op: str, make_inputs: Callable, run_backend: Callable,
                     byte_floor: Callable) -> Path:
    """Time every (shape, dtype, layout, backend, pass) of one op and write CSV + PNG.

    make_inputs(shape, dtype, layout, device) -> list of tensors (content first);
    run_backend(backend) -> fn(*inputs) -> output; byte_floor(inputs, pass_) -> bytes."""
    from lomit_fast.ops import available_backends, backends as registry

    device = args.device
    shapes = TABLE_SHAPES if (args.shapes or ("table" if device == "cuda" else "small")) == "table" \
        else SMALL_SHAPES
    # Triton on the CPU is its interpreter: not a fast path worth timing; a backend that serves
    # this op with the reference has no row of its own.
    reference = getattr(registry.reference, f"{op}_ref")
    fast = [b for b in ("native", "triton", "cpp") if b in available_backends(device)
            and (b != "triton" or device == "cuda")
            and registry.implementation(op, b, device) is not reference]
    backends = args.backends.split(",") if args.backends else ["eager", "compile", *fast]
    bandwidth = copy_bandwidth(device)
    print(f"{device_name(device)}: copy bandwidth {bandwidth / 1e12:.2f} TB/s", flush=True)
    out_dir = Path(args.out)
    csv_path = out_dir / f"{op}_{slug(device_name(device))}.csv"
    if csv_path.exists():
        csv_path.unlink()
    for shape in shapes:
        for dtype_name in args.dtypes.split(","):
            dtype = DTYPES[dtype_name]
            for layout in args.layouts.split(","):
                inputs = make_inputs(shape, dtype, layout, device)
                expected = run_backend("eager")(*inputs)
                inputs64 = [t.double() if isinstance(t, torch.Tensor) and t.is_floating_point()
                            else t for t in inputs]
                exact = run_backend("eager")(*inputs64)
                for backend in backends:
                    if backend == "compile" and layout not in args.compile_layouts.split(","):
                        continue
                    if backend == "compile":
                        # Fresh compile caches per case: past its recompile limit torch.compile
                        # silently falls back to eager (what run 1 of this benchmark timed).
                        torch._dynamo.reset()
                    fn = run_backend(backend)
                    check_close(f"{op} {backend} {shape} {dtype_name} {layout}", fn(*inputs),
                                expected, exact)
                    for pass_ in args.passes.split(","):
                        if backend == "compile" and pass_ not in args.compile_passes.split(","):
                            continue
                        timed = _forward(fn, inputs) if pass_ == "forward" \
                            else _forward_backward(fn, inputs)
                        row = op_row(op, backend, pass_, shape, dtype, layout,
                                     time_us(timed, device), byte_floor(inputs, pass_),
                                     bandwidth, device)
                        write_rows(csv_path, [row], append=True)
                        print(f"{op:14s} {backend:8s} {pass_:17s} {row['shape']:16s} "
                              f"{row['dtype']:9s} {layout:13s} {row['p50_us']:10.1f} us "
                              f"{row['gbps']:8.1f} GB/s {row['pct_of_floor']:6.1f} % of floor",
                              flush=True)
                del inputs, inputs64, expected, exact
    plot(csv_path, csv_path.with_suffix(".png"), f"{op} on {device_name(device)}")
    print(f"wrote {csv_path} and {csv_path.with_suffix('.png')}")
    return csv_path


def _forward(fn, inputs):
    def run():
        with torch.no_grad():
            return fn(*inputs)
    return run


def _forward_backward(fn, inputs):
    leaves = [t.detach().requires_grad_(True) for t in inputs]
    grad = torch.randn_like(fn(*inputs))

    def run():
        out = fn(*leaves)
        return torch.autograd.grad(out, leaves, grad)
    return run
