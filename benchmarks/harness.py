"""Shared benchmark machinery: timing, the byte floor, CSV rows and PNG charts.

GPU timings use triton.testing.do_bench (median of many runs after warm-up); CPU timings a plain
median of repeated calls. Every variant is timed in the same process on the same device, and the
device-to-device copy bandwidth is measured in the same run, so "percent of floor" compares like
with like (performance.md).
"""
from __future__ import annotations

import csv
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch

BACKEND_COLOURS = {"eager": "tab:blue", "compile": "tab:orange", "triton": "tab:green",
                   "cpp": "tab:red"}
REFERENCE_TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 5e-2, torch.float16: 1e-2}


@dataclass
class Row:
    device: str
    torch_version: str
    triton_version: str
    op: str
    backend: str
    pass_: str          # forward | forward+backward
    shape: str
    dtype: str
    layout: str         # nchw | channels_last
    p20_us: float
    p50_us: float
    p80_us: float
    bytes_moved: int    # the floor's bytes: each input read once, each output written once
    gbps: float         # bytes_moved / p50
    floor_us: float     # bytes_moved / measured copy bandwidth
    pct_of_floor: float  # floor_us / p50_us * 100


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"cpu-{platform.processor() or platform.machine()}-{os.cpu_count()}cores"


def versions() -> tuple[str, str]:
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = "none"
    return torch.__version__, triton_version


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


def check_close(name: str, out: torch.Tensor, expected: torch.Tensor) -> None:
    """Refuse to time a variant whose output is wrong."""
    tol = REFERENCE_TOLERANCE[expected.dtype]
    err = (out.float() - expected.float()).abs().max().item()
    scale = max(1.0, expected.float().abs().max().item())
    if not err <= tol * scale:
        raise AssertionError(f"{name}: max error {err:.3g} against the reference exceeds "
                             f"{tol * scale:.3g}; not timing it")


def make_row(op, backend, pass_, shape, dtype, layout, times, nbytes, bandwidth, device) -> Row:
    p20, p50, p80 = times
    floor_us = nbytes / bandwidth * 1e6
    torch_version, triton_version = versions()
    return Row(device_name(device), torch_version, triton_version, op, backend, pass_,
               "x".join(map(str, shape)), str(dtype).replace("torch.", ""), layout,
               round(p20, 2), round(p50, 2), round(p80, 2), nbytes,
               round(nbytes / (p50 * 1e-6) / 1e9, 1), round(floor_us, 2),
               round(floor_us / p50 * 100, 1))


def append_csv(path: Path, row: Row) -> None:
    """Append one row (header first if the file is new); rows land as they are measured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow([f.name.rstrip("_") for f in fields(Row)])
        writer.writerow(list(asdict(row).values()))


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows of dicts (the first one's keys are the header) to a new CSV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


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
        backends = list(dict.fromkeys(r["backend"] for r in sel))
        width = 0.8 / len(backends)
        for i, backend in enumerate(backends):
            colour = BACKEND_COLOURS.get(backend.split("[")[0], None)
            values = {f"{r['shape']}\n{r['dtype']}": float(r["pct_of_floor"])
                      for r in sel if r["backend"] == backend}
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
                        help="comma list of eager, compile, triton (default: all that run here)")
    parser.add_argument("--passes", default="forward,forward+backward")
    parser.add_argument("--compile-layouts", default="nchw",
                        help="layouts timed with torch.compile (each costs a compilation)")
    parser.add_argument("--compile-passes", default="forward,forward+backward",
                        help="passes timed with torch.compile")
    parser.add_argument("--out", default="benchmarks/results")


def slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name).strip("-").lower()


def run_op_benchmark(args, op: str, make_inputs: Callable, run_backend: Callable,
                     byte_floor: Callable) -> Path:
    """Time every (shape, dtype, layout, backend, pass) of one op and write CSV + PNG.

    make_inputs(shape, dtype, layout, device) -> list of tensors (content first);
    run_backend(backend) -> fn(*inputs) -> output; byte_floor(inputs, pass_) -> bytes."""
    from lomit_fast.ops import available_backends

    device = args.device
    shapes = TABLE_SHAPES if (args.shapes or ("table" if device == "cuda" else "small")) == "table" \
        else SMALL_SHAPES
    # Triton on the CPU is its interpreter: not a fast path worth timing.
    fast = [b for b in ("triton", "cpp") if b in available_backends(device)
            and (b != "triton" or device == "cuda")]
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
                for backend in backends:
                    if backend == "compile" and layout not in args.compile_layouts.split(","):
                        continue
                    if backend == "compile":
                        # Fresh compile caches per case: past its recompile limit torch.compile
                        # silently falls back to eager (what run 1 of this benchmark timed).
                        torch._dynamo.reset()
                    fn = run_backend(backend)
                    check_close(f"{op} {backend} {shape} {dtype_name} {layout}", fn(*inputs),
                                expected)
                    for pass_ in args.passes.split(","):
                        if backend == "compile" and pass_ not in args.compile_passes.split(","):
                            continue
                        timed = _forward(fn, inputs) if pass_ == "forward" \
                            else _forward_backward(fn, inputs)
                        row = make_row(op, backend, pass_, shape, dtype, layout,
                                       time_us(timed, device), byte_floor(inputs, pass_),
                                       bandwidth, device)
                        append_csv(csv_path, row)
                        print(f"{op:14s} {backend:8s} {pass_:17s} {row.shape:16s} {row.dtype:9s} "
                              f"{layout:13s} {row.p50_us:10.1f} us {row.gbps:8.1f} GB/s "
                              f"{row.pct_of_floor:6.1f} % of floor", flush=True)
                del inputs, expected
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
