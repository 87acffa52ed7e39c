"""The run folder: checkpoints that are committed atomically and read back with clear errors, and
the metrics log that a resume trims back to the checkpoint.

  config.yaml                 the config this run trains (a resumed run must match it)
  checkpoints/latest          name of the newest complete checkpoint (written last, atomically)
  checkpoints/step-0001000/   generator.safetensors, critic.safetensors, state.pt
  checkpoints/.tmp-step-*     a checkpoint being written; removed on failure and at the next start
  metrics.jsonl               one line per log interval (losses, lr, speed, locality metrics)
  samples/step-0001000.png    input, exemplar, input mask, exemplar mask, output
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn

from ..config import Config, ConfigError, ModelConfig
from ..io import atomic_path
from ..models.checkpoint import save_weights

KEEP_CHECKPOINTS = 2
# What state.pt must hold (rng_cuda is optional: only CUDA runs write it).
STATE_FIELDS = {"step": int, "opt_g": dict, "opt_d": dict, "rng_cpu": torch.Tensor, "config": dict}


class TrainError(RuntimeError):
    """A run that cannot start, resume or save as asked (the CLI prints it as one line)."""


def remove_partial(checkpoints: Path) -> None:
    """Remove checkpoints a killed or failed save left half-written."""
    for tmp in checkpoints.glob(".tmp-step-*"):
        shutil.rmtree(tmp, ignore_errors=True)


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def write_checkpoint(checkpoints: Path, step: int, generator: nn.Module, critic: nn.Module,
                     cfg: ModelConfig, state: dict) -> Path:
    """checkpoints/step-<step>/, written under a temporary name and renamed; then `latest` is
    pointed at it and all but the newest KEEP_CHECKPOINTS are removed. A failed write (a full
    disk) removes what it wrote and raises TrainError; the previous checkpoint stays latest."""
    folder = checkpoints / f"step-{step:07d}"
    tmp = checkpoints / f".tmp-step-{step:07d}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_weights(generator, cfg, tmp / "generator.safetensors")
        save_weights(critic, cfg, tmp / "critic.safetensors")
        torch.save(state, tmp / "state.pt")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        with atomic_path(checkpoints / "latest") as pointer:  # the commit point
            pointer.write_text(folder.name)
    except (OSError, RuntimeError, SafetensorError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise TrainError(f"cannot write checkpoint {folder}: {_reason(e)}") from e
    for old in sorted(checkpoints.glob("step-*"))[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def latest_checkpoint(checkpoints: Path) -> Path:
    name = (checkpoints / "latest").read_text().strip()
    folder = checkpoints / name
    if not name or "/" in name or not folder.is_dir():
        raise TrainError(f"{checkpoints / 'latest'}: names {name!r}, which is not a checkpoint "
                         "folder here")
    return folder


def read_state(folder: Path, cfg: Config) -> dict:
    """state.pt of a checkpoint, checked: readable, of the expected fields, made with cfg."""
    path = folder / "state.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types for a truncated or foreign file
        raise TrainError(f"{path}: not a readable training state ({_reason(e)})") from e
    if not isinstance(state, dict):
        raise TrainError(f"{path}: not a training state (holds a {type(state).__name__})")
    for key, kind in STATE_FIELDS.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise TrainError(f"{path}: field '{key}' is missing or not of type {kind.__name__}")
    try:  # files written before a config field existed hold its default
        saved = Config.from_dict(state["config"]).to_dict()
    except ConfigError as e:
        raise TrainError(f"{path}: stored config is invalid: {e}") from e
    current = cfg.to_dict()
    if saved != current:
        diff = [f"{s}.{k}" for s in saved for k in saved[s] if saved[s][k] != current[s][k]]
        raise TrainError(f"{folder}: checkpoint was trained with another config "
                         f"(differs in {', '.join(diff)})")
    return state


def trim_metrics(path: Path, step: int) -> None:
    """Drop metric lines past `step` (and a line a kill cut short): a resumed run redoes those
    steps and logs them again."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) \
                and record["step"] <= step:
            kept.append(line + "\n")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(kept))


def append_metrics(path: Path, record: dict) -> None:
    try:
        with open(path, "a") as f:  # one line per write: appends are safe
            f.write(json.dumps(record) + "\n")
    except OSError as e:
        raise TrainError(f"{path}: cannot append metrics: {_reason(e)}") from e
