"""Model weights as safetensors, with the model config stored in the file's metadata.

A weights file is self-describing: loading it needs no separate config, and loading it into a
model of another config is a clear error that names the first mismatching tensor.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from ..version import __version__
from ..config import ConfigError, ModelConfig, dataclass_from_dict
from ..io import atomic_path
from .generator import Generator

FLOAT_DTYPES = ("F32", "F16", "BF16", "F64")  # safetensors' names
SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "assets" / "synthetic_64.safetensors"


class CheckpointError(ValueError):
    """A weights file that is missing, corrupt, or made for another config."""


def save_weights(module: nn.Module, cfg: ModelConfig, path: str | os.PathLike,
                 extra: dict[str, str] | None = None) -> None:
    """Write module's state dict and cfg to `path` atomically."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    metadata = {"model_config": json.dumps(dataclasses.asdict(cfg)),
                "lomit_fast_version": __version__, **(extra or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e


def read_model_config(path: str | os.PathLike) -> ModelConfig:
    metadata = read_metadata(path)
    if "model_config" not in metadata:
        raise CheckpointError(f"{path}: no model_config in the file's metadata "
                              "(was it written by lomit_fast?)")
    try:
        return dataclass_from_dict(ModelConfig, json.loads(metadata["model_config"]), "model")
    except (ConfigError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: stored model config is invalid: {e}") from e


def check_tensors(path: str | os.PathLike, expected: dict[str, torch.Size]) -> None:
    """The file's tensor names and shapes (read from its header, before any tensor is) are
    exactly `expected`, and every tensor is a floating one."""
    read_metadata(path)  # clear error for missing / corrupt files
    try:
        with safe_open(str(path), framework="pt") as f:
            stored = {key: (tuple(f.get_slice(key).get_shape()), f.get_slice(key).get_dtype())
                      for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: does not match this model's config: "
                              f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    for key, shape in expected.items():
        if stored[key][0] != tuple(shape):
            raise CheckpointError(f"{path}: tensor '{key}' has shape {stored[key][0]}, "
                                  f"this model's config expects {tuple(shape)}")
        if stored[key][1] not in FLOAT_DTYPES:
            raise CheckpointError(f"{path}: tensor '{key}' has dtype {stored[key][1]}; weights "
                                  f"must be floating ({', '.join(FLOAT_DTYPES)})")


def load_weights(module: nn.Module, path: str | os.PathLike) -> None:
    """Load `path` into `module`, strictly: every tensor present, of the same shape, floating
    and finite (NaN or inf weights are refused: they would give flat images silently)."""
    check_tensors(path, {k: v.shape for k, v in module.state_dict().items()})
    state = load_file(str(path))
    for key, value in state.items():
        if not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: tensor '{key}' holds NaN or infinite values")
    module.load_state_dict(state)


def load_generator(path: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
    """The generator stored at `path` (default: the shipped model), in eval mode. The file is
    checked against its stored config on the meta device first (no memory is allocated), so a
    file whose config claims a huge model fails before anything is built."""
    path = Path(path) if path is not None else SHIPPED_MODEL
    cfg = read_model_config(path)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in Generator(cfg).state_dict().items()}
    check_tensors(path, shapes)
    generator = Generator(cfg)
    load_weights(generator, path)
    return generator.to(device).eval()
