"""Training speed: iterations/s of Trainer.train_step on one device (issue 16, stage 4).

    python -m benchmarks.bench_train_step
        [--configs configs/synthetic_64.yaml,configs/celeba_128.yaml]
        [--device cuda] [--precisions fp32,bf16] [--steps 20] [--out benchmarks/results]
        [--image-size N --batch-size N]     (tiny shapes, for the CPU rehearsal)

bf16 is the config's train.bf16 autocast, which the trainer applies on CUDA only. A config whose
data is not synthetic (celeba_128: CelebA is not on the benchmark machines) trains on the
synthetic source at its own image size and batch: a step costs what the model costs. Batches are
generated before the clock starts; warm-up covers one whole generator_every cycle, and the timed
steps are whole cycles, so the critic-only and critic+generator steps are weighted as in training.
Rows (benchmarks/rows.py schema) go to train_step_<device>.csv, appended as they are measured.
"""
from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lomit_fast.config import load_config
from lomit_fast.train.trainer import Trainer

from .rows import device_name, result_row, slug, write_rows

SYNTHETIC = "configs/synthetic_64.yaml"


def shrink(model, image_size: int | None):
    """The model config at another image size (tiny shapes for the CPU rehearsal); fewer
    stride-2 critic layers keep the critic's last map at the same size."""
    if image_size and image_size != model.image_size:
        model.critic_layers -= int(math.log2(model.image_size // image_size))
        model.image_size = image_size
    return model


def train_config(path: str, precision: str, image_size: int | None = None,
                 batch_size: int | None = None):
    cfg = load_config(path)
    if cfg.data.kind != "synthetic":
        cfg.data = load_config(SYNTHETIC).data
        cfg.model.n_attributes = len(cfg.data.attributes)
    shrink(cfg.model, image_size)
    if batch_size:
        cfg.train.batch_size = batch_size
    cfg.train.bf16 = precision == "bf16"
    return cfg


def time_steps(cfg, device: str, steps: int) -> list[float]:
    """Seconds of each timed train_step (it ends with .item() calls: the device is synchronised)."""
    every = cfg.train.generator_every
    steps = max(1, math.ceil(steps / every)) * every
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, run_dir, device)
        trainer.generator.train()
        trainer.critic.train()
        batches = list(trainer.source.batches(0, every + steps))
        for batch in batches[:every]:  # warm-up: one cycle (cuDNN autotuning, allocator)
            trainer.train_step(*batch)
        samples = []
        for batch in batches[every:]:
            start = time.perf_counter()
            trainer.train_step(*batch)
            samples.append(time.perf_counter() - start)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=f"{SYNTHETIC},configs/celeba_128.yaml")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (whole cycles)")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    device = args.device
    out = Path(args.out) / f"train_step_{slug(device_name(device))}.csv"
    if out.exists():
        out.unlink()
    for path in args.configs.split(","):
        for precision in args.precisions.split(","):
            if precision == "bf16" and not device.startswith("cuda"):
                print(f"skip {Path(path).stem} bf16: train.bf16 autocasts on CUDA only")
                continue
            cfg = train_config(path, precision, args.image_size, args.batch_size)
            samples = sorted(time_steps(cfg, device, args.steps))
            q = lambda p: samples[min(len(samples) - 1, int(p * len(samples)))]  # noqa: E731
            mean = statistics.fmean(samples)
            size, batch = cfg.model.image_size, cfg.train.batch_size
            row = result_row(f"train:{Path(path).stem}", "Trainer.train_step", device,
                             pass_="train_step", shape=f"{batch}x3x{size}x{size}",
                             dtype="bf16-autocast" if precision == "bf16" else "fp32",
                             times_us=(q(0.2) * 1e6, q(0.5) * 1e6, q(0.8) * 1e6),
                             steps=len(samples), generator_every=cfg.train.generator_every,
                             it_per_s=round(1 / mean, 3), pairs_per_s=round(batch / mean, 2))
            write_rows(out, [row], append=True)
            print(f"{row['subject']:22s} {row['dtype']:14s} batch {batch}: "
                  f"{row['it_per_s']:8.2f} it/s  p50 {q(0.5) * 1e3:8.1f} ms", flush=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
