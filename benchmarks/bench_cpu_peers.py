"""The CPU default against what a user would pick instead, in one process run.

    python -m benchmarks.bench_cpu_peers [--models shipped,configs/celeba_128.yaml]
        [--batches 1,8,32] [--backends auto,cpp,reference] [--seconds 3]

Per model (the shipped synthetic_64 weights; any other config with random weights, which is fine
for speed): the project's backends through Translator (auto is what `translate` and the Python
API run by default), and the peers on our own exported ONNX graph: onnxruntime with every graph
optimisation, and OpenVINO (f32, latency hint, compiled per batch size), an optional dependency
(pip install -r benchmarks/requirements.txt), skipped with a message where it is missing. Every
provider gets the same inputs: a batch of images, one exemplar per image, predicted masks. Each
output is checked against the fp64 model by the parity rule (the peers' error is recorded).

The fp32 GEMM rate of this CPU is measured in the same run (gemm_rates: MKL's SGEMM and a oneDNN
convolution, the faster counts), and with the FLOPs per image (torch.utils.flop_counter) gives the
arithmetic limit in images/s that the pct_of_limit column compares against. Writes benchmarks/results/cpu_peers_<device>.csv and .png.
"""
from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lomit_fast import Generator
from lomit_fast.config import load_config
from lomit_fast.engine.translator import Translator
from lomit_fast.export.onnx import export_onnx
from lomit_fast.models.checkpoint import load_generator
from lomit_fast.models.inference import INPUTS, OUTPUTS
from lomit_fast.ops.parity import parity_check

from .bench_generator import flops_per_image, percentiles, plot, timed
from .rows import device_name, result_row, slug, write_rows


def gemm_rates(seconds: float = 2.0) -> dict[str, float]:
    """FLOP/s of this CPU's best fp32 GEMM-class kernels on all threads: a 2048^3 matmul (MKL's
    SGEMM) and a 64->64 3x3 convolution of 32x64x32x32 channels-last (oneDNN). On AMD CPUs MKL's
    SGEMM runs well under oneDNN's kernels, so the limit is taken from the faster of the two."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    x = torch.randn(32, 64, 34, 34).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 3, 3).contiguous(memory_format=torch.channels_last)
    cases = {"sgemm": (lambda: torch.mm(a, b), 2 * 2048 ** 3),
             "conv": (lambda: torch.nn.functional.conv2d(x, w), 2 * 32 * 64 * 64 * 9 * 32 * 32)}
    rates = {}
    with torch.no_grad():
        for name, (fn, flops) in cases.items():
            rates[name] = flops / percentiles(timed(fn, "cpu", seconds))[1]
    return rates


def onnxruntime_runner(path: Path, batch: int):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(list(OUTPUTS), feeds)


def openvino_runner(path: Path, batch: int):
    import openvino as ov
    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({i.get_any_name(): [batch, *i.get_partial_shape()[1:]] for i in model.inputs})
    compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                 "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    names = [i.get_any_name() for i in compiled.inputs]

    def run(feeds):
        request.infer({name: feeds[name] for name in names})
        return [request.get_tensor(name).data.copy() for name in OUTPUTS]
    return run


PEERS = {"onnxruntime": onnxruntime_runner, "openvino": openvino_runner}


def peer_versions() -> dict[str, str]:
    versions = {}
    for name, module in (("onnxruntime", "onnxruntime"), ("openvino", "openvino")):
        try:
            versions[name] = __import__(module).__version__.split("-")[0]
        except ImportError:
            versions[name] = ""
    return versions


def measure(model_name: str, generator: Generator, args, rates: dict, out: Path) -> list:
    size, content = generator.cfg.image_size, generator.cfg.content_size
    flops = flops_per_image(generator, size)
    limit = max(rates.values()) / flops
    print(f"{model_name}: {flops / 1e9:.2f} GFLOP per image, limit {limit:.0f} images/s")
    exact = copy.deepcopy(generator).double()
    eager = Translator(generator, "reference")
    versions, rows = peer_versions(), []
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(copy.deepcopy(generator), Path(tmp) / "g.onnx")
        providers = {}
        for backend in args.backends.split(","):
            translator = Translator(generator, backend)
            label = backend if backend != "auto" else f"auto ({translator.backend})"
            providers[label] = ("project", translator)
        for peer in args.peers.split(","):
            if not versions.get(peer):
                print(f"skip {peer}: not installed (pip install -r benchmarks/requirements.txt)")
                continue
            providers[f"{peer} {versions[peer]}"] = ("peer", PEERS[peer])
        for batch in [int(b) for b in args.batches.split(",")]:
            g = torch.Generator().manual_seed(batch)
            x = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
            exemplars = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
            masks = torch.full((batch, 1, content, content), -1.0)
            feeds = dict(zip(INPUTS, (t.numpy() for t in (x, exemplars, masks, masks))))
            with torch.no_grad():
                fp64 = exact.translate(x.double(), exemplars.double())[0]
            same_dtype = eager.translate(x, exemplars)[0]
            for label, (kind, runner) in providers.items():
                if kind == "project":
                    fn = lambda: runner.translate(x, exemplars)  # noqa: E731
                    output = fn()[0]
                else:
                    run = runner(onnx_path, batch)
                    fn = lambda: run(feeds)  # noqa: E731
                    output = torch.from_numpy(np.asarray(fn()[0]))
                err, bound, _ = parity_check(output, same_dtype, fp64, torch.float32)
                if kind == "project" and err > bound:
                    raise AssertionError(f"{label} batch {batch}: error {err:.3g} against the "
                                         f"fp64 model exceeds the parity bound {bound:.3g}")
                p20, p50, p80, p99 = percentiles(timed(fn, "cpu", args.seconds))
                row = result_row(f"generator:{model_name}", label, "cpu",
                                 shape=f"{batch}x3x{size}x{size}", dtype="fp32",
                                 times_us=(p20 * 1e6, p50 * 1e6, p80 * 1e6),
                                 mode="per_image_exemplars", batch=batch,
                                 images_per_s=round(batch / p50, 2),
                                 latency_p50_ms=round(p50 * 1e3, 3),
                                 latency_p99_ms=round(p99 * 1e3, 3),
                                 gflop_per_image=round(flops / 1e9, 3),
                                 sgemm_gflops=round(rates["sgemm"] / 1e9, 1),
                                 conv_gflops=round(rates["conv"] / 1e9, 1),
                                 limit_images_per_s=round(limit, 1),
                                 pct_of_limit=round(100 * batch / p50 / limit, 1),
                                 max_err_vs_fp64=f"{err:.2e}", parity_bound=f"{bound:.2e}")
                rows.append(row)
                write_rows(out, [row], append=True)
                print(f"{label:22s} batch {batch:3d}: {row['images_per_s']:8.1f} img/s "
                      f"({row['pct_of_limit']:5.1f} % of limit)  p50 {p50 * 1e3:7.2f} ms  "
                      f"p99 {p99 * 1e3:7.2f} ms  err {err:.1e}", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="shipped,configs/celeba_128.yaml",
                        help="'shipped' (the shipped weights) or config files (random weights)")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--backends", default="auto,cpp,reference")
    parser.add_argument("--peers", default="onnxruntime,openvino")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing budget per case")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    out = Path(args.out) / f"cpu_peers_{slug(device_name('cpu'))}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)  # rows are appended as measured: a cut run keeps what it did
    rates = gemm_rates()
    print(f"{device_name('cpu')}, {torch.get_num_threads()} threads: SGEMM (MKL) "
          f"{rates['sgemm'] / 1e9:.0f} GFLOP/s, convolution (oneDNN) {rates['conv'] / 1e9:.0f}")
    rows = []
    for spec in args.models.split(","):
        torch.manual_seed(0)
        if spec == "shipped":
            name, generator = "synthetic_64", load_generator()
        else:
            name, generator = Path(spec).stem, Generator(load_config(spec).model).eval()
        rows += measure(name, generator, args, rates, out)
    if rows:
        plot(rows, out.with_suffix(".png"))
        print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
