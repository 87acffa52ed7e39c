"""The stand-alone C++ translator against the Python engine: images/s on the same model, the same
images and the same batch size, model alone and end to end (PNG decode, model, PNG encode).

    make app && python -m benchmarks.bench_cpp_app [--images 256] [--batch 8] [--checkpoint F]
Python runs in this process (Translator, backends cpp / torchscript / aoti, two warm-up batches
like the app); the app runs as a subprocess and reports its own timings. Writes
benchmarks/results/cpp_app_<device>.csv and .png.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lomit_fast.models.checkpoint import load_generator
from lomit_fast.engine.translator import Translator
from lomit_fast.export.aoti import export_aoti
from lomit_fast.export.torchscript import export_torchscript
from lomit_fast.data.images import from_uint8, read_rgb, save_png, to_uint8

from .rows import device_name, result_row, slug, write_rows

APP = Path(__file__).resolve().parents[1] / "build" / "app" / "lomit-translate-cpp"


def python_engine(translator: Translator, files: list[Path], exemplar: Path, out: Path,
                  batch: int) -> tuple[float, float]:
    """(end-to-end seconds, model seconds) of the Python engine over `files`."""
    ex = from_uint8(read_rgb(exemplar))
    size = translator.cfg.image_size
    for _ in range(2):
        translator.translate(torch.zeros(batch, 3, size, size), ex)
    model = 0.0
    start = time.perf_counter()
    for first in range(0, len(files), batch):
        chunk = files[first:first + batch]
        x = torch.cat([from_uint8(read_rgb(f)) for f in chunk])
        t0 = time.perf_counter()
        images = translator.translate(x, ex)[0]
        model += time.perf_counter() - t0
        for f, pixels in zip(chunk, to_uint8(images)):
            save_png(pixels, out / f"{f.stem}.png")
    return time.perf_counter() - start, model


def cpp_app(model: Path, folder: Path, exemplar: Path, out: Path,
            batch: int) -> tuple[float, float]:
    result = subprocess.run([str(APP), "--model", str(model), "--input", str(folder), "--exemplar",
                             str(exemplar), "--output", str(out), "--batch", str(batch)],
                            capture_output=True, text=True, check=True)
    found = re.search(r"translated (\d+) image.*?([\d.]+) images/s end to end, ([\d.]+) images/s "
                      r"in the model", result.stdout)
    n, end_to_end, in_model = int(found[1]), float(found[2]), float(found[3])
    return n / end_to_end, n / in_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default=None, help="default: the shipped model")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    if not APP.exists():
        raise SystemExit(f"{APP} is not built: run `make app` first")
    generator = load_generator(args.checkpoint)
    size = generator.cfg.image_size
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs, out = tmp / "in", tmp / "out"
        inputs.mkdir()
        rng = np.random.default_rng(0)
        for i in range(args.images + 1):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            name = tmp / "ex.png" if i == args.images else inputs / f"{i:05d}.png"
            Image.fromarray(pixels).save(name)
        files = sorted(inputs.iterdir())
        exports = {"torchscript": export_torchscript(generator, tmp / "g.pt"),
                   "aoti": export_aoti(generator, tmp / "g.pt2")}
        runs = [("python", "cpp", None), ("python", "torchscript", exports["torchscript"]),
                ("python", "aoti", exports["aoti"]),
                ("c++ app", "torchscript", exports["torchscript"]),
                ("c++ app", "aoti", exports["aoti"])]
        for engine, backend, model in runs:
            best = (float("inf"), float("inf"))
            for _ in range(args.repeats):
                if engine == "python":
                    t = Translator(generator, backend, model_file=str(model) if model else None)
                    timing = python_engine(t, files, tmp / "ex.png", out, args.batch)
                else:
                    timing = cpp_app(model, inputs, tmp / "ex.png", out, args.batch)
                best = min(best, timing)
            row = result_row("translate", f"{engine}/{backend}", "cpu",
                             shape=f"{args.batch}x3x{size}x{size}", dtype="fp32", engine=engine,
                             backend=backend, batch=args.batch, images=len(files),
                             end_to_end_images_per_s=round(len(files) / best[0], 1),
                             model_images_per_s=round(len(files) / best[1], 1))
            rows.append(row)
            print(f"{engine:8s} {backend:12s} end to end {row['end_to_end_images_per_s']:8.1f} "
                  f"img/s   model {row['model_images_per_s']:8.1f} img/s", flush=True)
    path = Path(args.out) / f"cpp_app_{slug(device_name('cpu'))}.csv"
    write_rows(path, rows)
    plot(rows, path.with_suffix(".png"))
    print(f"wrote {path} and {path.with_suffix('.png')}")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [f"{r['engine']}\n{r['backend']}" for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(x - 0.2, [r["model_images_per_s"] for r in rows], 0.4, label="model alone")
    ax.bar(x + 0.2, [r["end_to_end_images_per_s"] for r in rows], 0.4, label="end to end (PNG)")
    ax.set_xticks(x, labels)
    ax.set_ylabel("images / s")
    ax.set_title(f"{rows[0]['device']}: C++ app vs Python engine, batch {rows[0]['batch']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
