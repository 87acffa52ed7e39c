"""The LOMIT trainer: critic every step, generator every n-th, Adam with the method's schedule,
atomic checkpoints that resume exactly, JSONL metrics, PNG sample grids and training curves
(curves.png; run folder layout: run_dir.py). Multi-GPU: launched with torchrun, each rank trains on its own data and gradients
are averaged.
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from ..config import Config, load_config, save_config
from ..data.datasets import build_source
from ..data.images import image_grid, save_png
from ..data.locality import evaluate_synthetic
from ..data.synthetic import HELD_OUT
from ..models import Critic, Generator
from ..models.checkpoint import CheckpointError, load_weights
from ..ops.reference import upsample_mask
from .curves import plot_curves
from .losses import critic_objective, generator_objective
from .run_dir import (TrainError, append_metrics, latest_checkpoint, read_state, remove_partial,
                      trim_metrics, write_checkpoint)

__all__ = ["TrainError", "Trainer", "lr_factor", "train_from_config"]


def lr_factor(step: int, cfg: Config) -> float:
    """The learning rate's factor at (0-based) `step`: 1 for the first lr_constant_fraction of
    training and the lr_decay_every steps after it, then halved every lr_decay_every steps, as
    the authors (who halve when the step is past half-way and a multiple of 10k). For 200k
    iterations: 1 until 109,999, 0.5 from 110k, ..., 2^-9 from 190k to the end."""
    start = int(cfg.train.iterations * cfg.train.lr_constant_fraction)
    return 0.5 ** ((step - start) // cfg.train.lr_decay_every) if step > start else 1.0


class Trainer:
    def __init__(self, cfg: Config, run_dir: str | Path, device: str | torch.device = "cpu",
                 resume: bool = False):
        self.cfg, self.run_dir, self.device = cfg, Path(run_dir), torch.device(device)
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        torch.manual_seed(cfg.train.seed)
        self.generator = Generator(cfg.model).to(self.device)
        self.critic = Critic(cfg.model).to(self.device)
        betas = tuple(cfg.train.betas)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), cfg.train.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.critic.parameters(), cfg.train.lr, betas=betas)
        self.step = 0
        self.checkpoints = self.run_dir / "checkpoints"
        if self.rank == 0:
            remove_partial(self.checkpoints)
        if resume and (self.checkpoints / "latest").is_file():
            self.load()
        elif resume and self.rank == 0:  # said, so a mistyped --run-dir is not a silent restart
            print(f"--resume: {self.run_dir} holds no checkpoint yet; starting at step 0",
                  file=sys.stderr)
        elif self.checkpoints.joinpath("latest").is_file():
            raise TrainError(f"{self.run_dir} already holds a run: pass --resume to continue it "
                             "or choose another --run-dir")
        else:
            if cfg.train.init_from:
                self.init_from(Path(cfg.train.init_from))
            if self.rank == 0:  # a run killed before its first checkpoint: its lines are redone
                trim_metrics(self.run_dir / "metrics.jsonl", 0)
        data_cfg = cfg.data
        if self.world > 1:  # each rank its own stream of batches
            data_cfg = dataclasses.replace(cfg.data, seed=cfg.data.seed + 7919 * self.rank)
        self.source = build_source(data_cfg, cfg.model.image_size, cfg.train.batch_size, self.device)
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.run_dir / "config.yaml")

    # --- checkpoints ----------------------------------------------------------------------
    def save(self) -> Path:
        state = {"step": self.step, "opt_g": self.opt_g.state_dict(),
                 "opt_d": self.opt_d.state_dict(), "rng_cpu": torch.get_rng_state(),
                 "config": self.cfg.to_dict()}
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return write_checkpoint(self.checkpoints, self.step, self.generator, self.critic,
                                self.cfg.model, state)

    def load(self) -> None:
        """Resume from the latest checkpoint; metric lines past it are dropped (redone)."""
        folder = latest_checkpoint(self.checkpoints)
        state = read_state(folder, self.cfg)
        load_weights(self.generator, folder / "generator.safetensors")
        load_weights(self.critic, folder / "critic.safetensors")
        try:
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            torch.set_rng_state(state["rng_cpu"])
        except (ValueError, KeyError, TypeError, RuntimeError) as e:
            raise TrainError(f"{folder / 'state.pt'}: optimiser or RNG state does not fit this "
                             f"model ({e})") from e
        if "rng_cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)
        self.step = state["step"]
        if self.rank == 0:
            trim_metrics(self.run_dir / "metrics.jsonl", self.step)

    def init_from(self, folder: Path) -> None:
        """A new run's networks from another run's checkpoint (fresh optimisers, step 0)."""
        for name, module in (("generator", self.generator), ("critic", self.critic)):
            path = folder / f"{name}.safetensors"
            if not path.is_file():
                raise TrainError(f"train.init_from {folder}: no {name}.safetensors there (give a "
                                 "checkpoint folder such as runs/x/checkpoints/step-0003500)")
            try:
                load_weights(module, path)
            except CheckpointError as e:
                raise TrainError(f"train.init_from: {e}") from e

    # --- one iteration --------------------------------------------------------------------
    def set_lr(self) -> float:
        lr = self.cfg.train.lr * lr_factor(self.step, self.cfg)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        return lr

    def autocast(self):
        enabled = self.cfg.train.bf16 and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def average_gradients(self, module: torch.nn.Module) -> None:
        if self.world == 1:
            return
        for p in module.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.world

    def train_step(self, x_a, labels_a, x_b, labels_b) -> dict[str, float]:
        """One critic update and, every generator_every steps, one generator update."""
        lr = self.set_lr()
        w = self.cfg.loss
        with torch.no_grad(), self.autocast():  # both directions in one batch
            fakes, _, _ = self.generator.translate(torch.cat([x_a, x_b]), torch.cat([x_b, x_a]))
        x_ab, x_ba = fakes.float().chunk(2)
        with self.autocast():
            d_total, d_terms = critic_objective(
                self.critic, [(x_a, labels_a, x_ab), (x_b, labels_b, x_ba)], w)
        self.opt_d.zero_grad(set_to_none=True)
        d_total.backward()
        self.average_gradients(self.critic)
        self.opt_d.step()
        logs = {"lr": lr, "critic_total": d_total.item(), **{k: v.item() for k, v in d_terms.items()}}
        if self.step % self.cfg.train.generator_every == 0:
            self.critic.requires_grad_(False)
            with self.autocast():
                g_total, g_terms, _ = generator_objective(self.generator, self.critic, x_a, x_b,
                                                          labels_b, labels_a, w)
            self.opt_g.zero_grad(set_to_none=True)
            g_total.backward()
            self.critic.requires_grad_(True)
            self.average_gradients(self.generator)
            self.opt_g.step()
            logs |= {"generator_total": g_total.item(), **{k: v.item() for k, v in g_terms.items()}}
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if bad:  # stop before a NaN reaches a checkpoint; the last one stays intact
            raise TrainError(f"step {self.step + 1}: the loss term '{bad[0]}' is "
                             f"{logs[bad[0]]}; stopped without saving (try a lower train.lr)")
        self.step += 1
        return logs

    # --- the loop -------------------------------------------------------------------------
    @torch.no_grad()
    def diagnostics(self, x_a, x_b) -> dict:
        """Style-collapse watch (method.md): spread of style codes over the batch and how much the
        output moves between two exemplars; the locality metrics on synthetic data."""
        self.generator.eval()
        out, m_a, _ = self.generator.translate(x_a, x_b)
        out_other, _, _ = self.generator.translate(x_a, x_b.roll(1, 0))
        style = self.generator.style_foreground(x_b, self.generator.mask(
            self.generator.content(x_b), self.generator.content(x_a)))
        logs = {"style_spread": style.std(0).mean().item(),
                "exemplar_effect": (out - out_other).abs().mean().item(),
                "mask_mean": m_a.mean().item()}
        if self.cfg.data.kind == "synthetic":
            logs |= evaluate_synthetic(self.generator, images=64, device=self.device,
                                       backgrounds=self.cfg.data.backgrounds)
            held_out = evaluate_synthetic(self.generator, images=64, device=self.device,
                                          backgrounds=HELD_OUT)
            logs |= {f"held_out_{k}": v for k, v in held_out.items() if k != "images"}
        self.generator.train()
        return logs

    def sample(self, x_a, x_b) -> None:
        self.generator.eval()
        with torch.no_grad():
            out, m_a, m_b = self.generator.translate(x_a[:8], x_b[:8])
        self.generator.train()
        size = x_a.shape[-2:]
        grid = image_grid([x_a[:8], x_b[:8], upsample_mask(m_a, size) * 2 - 1,
                           upsample_mask(m_b, size) * 2 - 1, out])
        save_png(grid, self.run_dir / "samples" / f"step-{self.step:07d}.png")

    def log(self, record: dict) -> None:
        append_metrics(self.run_dir / "metrics.jsonl", record)

    def train(self, steps: int | None = None, progress: bool = True) -> dict:
        """Train until `steps` (default: the config's iterations); returns the last log record."""
        end = steps if steps is not None else self.cfg.train.iterations
        t = self.cfg.train
        self.generator.train()
        self.critic.train()
        record: dict = {}
        started, started_step = time.perf_counter(), self.step
        with tqdm(total=end, initial=self.step, disable=not progress or self.rank != 0,
                  desc="train", unit="it") as bar:  # closed before an error is printed
            for x_a, labels_a, x_b, labels_b in self.source.batches(self.step, end):
                logs = self.train_step(x_a, labels_a, x_b, labels_b)
                bar.update(1)
                if self.rank != 0:
                    continue
                if self.step % t.log_every == 0 or self.step == end:
                    speed = (self.step - started_step) / (time.perf_counter() - started)
                    record = {"step": self.step, "it_per_s": round(speed, 3),
                              **{k: round(v, 5) for k, v in logs.items()}}
                    if self.step % t.sample_every == 0 or self.step == end:
                        record |= self.diagnostics(x_a, x_b)
                    self.log(record)
                    bar.set_postfix(g=logs.get("generator_total", float("nan")),
                                    d=logs["critic_total"])
                if self.step % t.sample_every == 0 or self.step == end:
                    self.sample(x_a, x_b)
                    plot_curves(self.run_dir / "metrics.jsonl", self.run_dir / "curves.png")
                if self.step % t.checkpoint_every == 0 or self.step == end:
                    self.save()
        return record


def train_from_config(config_path: str, run_dir: str, device: str, resume: bool,
                      steps: int | None = None) -> dict:
    """`lomit-fast train`: sets up torch.distributed under torchrun, then trains."""
    if steps is not None and steps < 0:
        raise TrainError(f"--steps {steps}: must be 0 or more")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        if device == "cuda":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    trainer = Trainer(load_config(config_path), run_dir, device, resume)
    return trainer.train(steps)
