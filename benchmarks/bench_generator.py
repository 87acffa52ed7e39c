"""End-to-end generator benchmark: images/s per backend and batch size, batch-1 latency.

    python -m benchmarks.bench_generator [--config configs/celeba_128.yaml] [--batches 1,8,32]
        [--backends reference,native,cpp,compile,onnxruntime,torchscript,aoti,triton,compile-stock]
Each backend translates the same random batch with one exemplar for the whole batch (cached
where the backend supports it: reference, native, cpp, triton) and with a different exemplar per
image. The graph backends run files exported for the occasion (ONNX, TorchScript, AOTI).
compile-stock is torch.compile of the same model on stock PyTorch ops (no Triton kernels): the
baseline of the generator target in performance.md.
Outputs are checked against the fp64 model by the parity rule before anything is timed. FLOPs per image come from
torch.utils.flop_counter. Writes benchmarks/results/generator_<device>.csv and .png.
"""
from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from lomit_fast import Generator
from lomit_fast.config import load_config
from lomit_fast.engine.translator import PRECISIONS, Translator
from lomit_fast.ops import BackendError
from lomit_fast.ops.parity import parity_check

from .rows import device_name, result_row, slug, write_rows

CACHEABLE = {"reference", "native", "triton", "cpp"}


class StockCompile(Translator):
    """The compile backend tracing the reference ops: what torch.compile makes of the model."""
    @property
    def op_backend(self) -> str:
        return "reference"


def flops_per_image(generator: Generator, size: int) -> float:
    x = torch.rand(1, 3, size, size) * 2 - 1
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        generator.translate(x, x)
    return counter.get_total_flops()


def timed(fn, device: str, seconds: float) -> list[float]:
    """Wall-clock seconds of repeated calls (after warm-up), synchronising CUDA each call."""
    for _ in range(3):
        fn()
    samples, deadline = [], time.perf_counter() + seconds
    while len(samples) < 5 or (time.perf_counter() < deadline and len(samples) < 500):
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return samples


def percentiles(samples: list[float]) -> tuple[float, float, float, float]:
    """p20, p50, p80 and p99 of timing samples."""
    samples = sorted(samples)
    return tuple(samples[min(len(samples) - 1, int(q * len(samples)))]
                 for q in (0.2, 0.5, 0.8, 0.99))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/synthetic_64.yaml")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", default=None, help="default: 1,8,32 on CPU, 1..256 on GPU")
    parser.add_argument("--backends",
                        default="reference,native,cpp,compile,onnxruntime,torchscript,aoti,triton")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing budget per case")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    device = args.device
    # Each (batch, exemplar batch) is a graph of its own; past dynamo's default limit of 8 per
    # code object, torch.compile silently runs eager and the compile rows would time that.
    torch._dynamo.config.recompile_limit = 64
    cfg = load_config(args.config).model
    torch.manual_seed(0)
    generator = Generator(cfg).eval()
    size = cfg.image_size
    batches = [int(b) for b in (args.batches or ("1,8,32" if device == "cpu" else
                                                 "1,8,32,64,128,256")).split(",")]
    flops = flops_per_image(generator, size)
    print(f"{device_name(device)}: {Path(args.config).name}, {flops / 1e9:.2f} GFLOP per image")
    out = Path(args.out) / f"generator_{Path(args.config).stem}_{slug(device_name(device))}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    if out.exists():  # rows are appended as they are measured: a run cut short keeps them
        out.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        eager = Translator(generator, "reference", args.precision, device)
        exact = copy.deepcopy(generator).double().to(device)
        for backend in args.backends.split(","):
            try:
                # A copy: export moves the model (TorchScript traces on the CPU) in place.
                model_file = export_for(backend, copy.deepcopy(generator), Path(tmp), device)
                make = StockCompile if backend == "compile-stock" else Translator
                translator = make(generator, backend.removesuffix("-stock"), args.precision,
                                  device, model_file=model_file)
            except (BackendError, ValueError, ImportError) as e:
                print(f"skip {backend}: {e}")
                continue
            for batch in batches:
                g = torch.Generator().manual_seed(batch)
                x = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
                exemplars = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
                with torch.no_grad():
                    fp64 = exact.translate(x.double(), exemplars[:1].double())[0]
                err, bound, _ = parity_check(translator.translate(x, exemplars[:1])[0],
                                             eager.translate(x, exemplars[:1])[0], fp64,
                                             PRECISIONS[args.precision])
                if err > bound:
                    raise AssertionError(f"{backend} batch {batch}: error {err:.3g} against the "
                                         f"fp64 model exceeds the parity bound {bound:.3g}")
                cases = {"per_image_exemplars": lambda: translator.translate(x, exemplars)}
                if backend in CACHEABLE:
                    cache = translator.cache_exemplar(exemplars[:1])
                    cases["one_exemplar_cached"] = lambda: translator.translate(x, cache)
                else:
                    cases["one_exemplar"] = lambda: translator.translate(x, exemplars[:1])
                for mode, fn in cases.items():
                    p20, p50, p80, p99 = percentiles(timed(fn, device, args.seconds))
                    row = result_row(f"generator:{Path(args.config).stem}", backend, device,
                                     shape=f"{batch}x3x{size}x{size}", dtype=args.precision,
                                     layout="nchw" if backend == "reference" else
                                     "channels_last", times_us=(p20 * 1e6, p50 * 1e6, p80 * 1e6),
                                     mode=mode, batch=batch, images_per_s=round(batch / p50, 2),
                                     latency_p50_ms=round(p50 * 1e3, 3),
                                     latency_p99_ms=round(p99 * 1e3, 3),
                                     gflop_per_image=round(flops / 1e9, 3),
                                     achieved_tflops=round(flops * batch / p50 / 1e12, 4))
                    rows.append(row)
                    write_rows(out, [row], append=True)
                    print(f"{backend:12s} {mode:20s} batch {batch:4d}: {row['images_per_s']:10.1f} "
                          f"img/s  p50 {row['latency_p50_ms']:9.2f} ms  p99 "
                          f"{row['latency_p99_ms']:9.2f} ms", flush=True)
    if not rows:
        print("no backend ran: nothing written")
        return
    plot(rows, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


def export_for(backend: str, generator, folder: Path, device: str) -> str | None:
    """The exported file a graph backend runs (None for the others)."""
    if backend == "onnxruntime":
        from lomit_fast.export.onnx import export_onnx
        return str(export_onnx(generator, folder / "g.onnx"))
    if backend == "torchscript":
        from lomit_fast.export.torchscript import export_torchscript
        return str(export_torchscript(generator, folder / "g.pt"))
    if backend == "aoti":
        from lomit_fast.export.aoti import export_aoti
        return str(export_aoti(generator, folder / "g.pt2", device))
    return None


def plot(rows: list[dict], path: Path) -> None:
    """Images/s against batch, one panel per model, a line per (backend, precision, mode)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    subjects = list(dict.fromkeys(r["subject"] for r in rows))
    fig, axes = plt.subplots(1, len(subjects), figsize=(7 * len(subjects), 4.5), squeeze=False)
    for ax, subject in zip(axes[0], subjects):
        sel = [r for r in rows if r["subject"] == subject]
        for key in dict.fromkeys((r["provider"], r["dtype"], r["mode"]) for r in sel):
            line = [r for r in sel if (r["provider"], r["dtype"], r["mode"]) == key]
            ax.plot([int(r["batch"]) for r in line], [float(r["images_per_s"]) for r in line],
                    marker="o", label=" ".join(key).replace("_", " "))
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel("images / s")
        ax.set_title(f"{subject} on {sel[0]['device']}", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
