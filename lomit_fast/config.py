"""Typed configuration: dataclasses loaded from YAML, strictly.

Every field has a default taken from method.md (the paper's 128x128 CelebA settings); the YAML
files under configs/ override them. Unknown keys and wrong types are errors that name the key,
because a silently ignored typo in a training config wastes a whole run.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A config file or dict that does not match the dataclasses below."""


@dataclass
class ModelConfig:
    image_size: int = 128          # square input/output resolution
    channels: int = 3              # image channels (RGB)
    content_width: int = 64        # first content-encoder width; doubles per downsampling
    content_downsample: int = 2    # stride-2 convs in E_c: content map is image_size / 2**n
    content_res_blocks: int = 4    # residual blocks in E_c
    mask_layers: int = 6           # conv-norm-ReLU layers of the mask network
    mask_attention_width: int = 512  # hidden width of the channel-attention MLP (W1)
    mask_norm: str = "instance"    # batch-independent norm of the mask net: instance | group
    style_width: int = 64          # first style-encoder width
    style_downsample: int = 4      # stride-2 convs in E_s
    style_max_width: int = 256     # style-encoder width cap
    style_shared_layers: int = 3   # trunk layers shared by the fg/bg heads (conv7x7 counts as 1)
    style_dim: int = 8             # style code size
    mlp_width: int = 256           # hidden width of the style MLPs
    mlp_layers: int = 3            # linear layers per style MLP
    decoder_res_blocks: int = 4    # residual blocks with layer norm in G
    hain_eps: float = 1e-5         # epsilon inside the square root of HAIN's instance norm
    critic_width: int = 64         # first critic width; doubles per layer
    critic_layers: int = 6         # stride-2 convs in the critic
    critic_max_width: int = 2048   # critic width cap
    n_attributes: int = 10         # auxiliary classifier outputs (one logit per attribute)
    global_adain: bool = False     # ablation: masks forced to 1 (MUNIT-style global AdaIN)

    @property
    def content_channels(self) -> int:
        return self.content_width * 2 ** self.content_downsample

    @property
    def content_size(self) -> int:
        return self.image_size // 2 ** self.content_downsample


@dataclass
class DataConfig:
    kind: str = "celeba"           # celeba | folders | table | synthetic
    root: str = ""                 # image folder (celeba/table) or folder of domains (folders)
    attr_file: str = ""            # list_attr_celeba.txt (celeba) or CSV (table)
    attributes: list[str] = field(default_factory=lambda: [
        "Black_Hair", "Blond_Hair", "Brown_Hair", "Smiling", "Mustache",
        "No_Beard", "Male", "Goatee", "Heavy_Makeup", "Wearing_Lipstick"])
    crop_size: int = 178           # centre crop before resizing (celeba)
    flip: bool = True              # random horizontal flip during training
    test_size: int = 2000          # images held out (the last ones, a fixed split)
    seed: int = 0                  # seed of synthetic data / shuffling
    workers: int = 2               # data-loading worker processes


@dataclass
class LossConfig:
    adversarial: float = 1.0       # WGAN generator term -D(x_AB)
    classification: float = 1.0    # BCE of D_cls(x_AB) against the exemplar's labels
    self_reconstruction: float = 10.0
    cycle: float = 10.0
    style_foreground: float = 1.0
    style_background: float = 1.0
    content: float = 1.0
    mask_similarity: float = 0.1   # R1
    mask_sparsity: float = 1e-4    # R2
    gradient_penalty: float = 10.0  # WGAN-GP on the critic
    critic_classification: float = 1.0  # BCE of D_cls on real images


@dataclass
class TrainConfig:
    batch_size: int = 8
    iterations: int = 200_000
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    generator_every: int = 5       # critic every iteration, generator every n-th
    lr_constant_fraction: float = 0.5  # constant lr for this fraction of training
    lr_decay_every: int = 10_000   # then halved every this many iterations
    bf16: bool = False             # autocast to bf16 on CUDA
    seed: int = 0
    checkpoint_every: int = 1000
    sample_every: int = 1000
    log_every: int = 100


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        return dataclass_from_dict(cls, data, "")


def _check(value, hint, key: str):
    """Check (and lightly coerce) one value against a type hint; error names the key."""
    origin = typing.get_origin(hint)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config key '{key}': expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(hint)
        return [_check(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _check(value, option, key)
            except ConfigError:
                pass
        raise ConfigError(f"config key '{key}': {value!r} does not match {hint}")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # YAML writes 10 for 10.0
    if hint is type(None) and value is None:
        return value
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"config key '{key}': expected {hint.__name__}, "
                          f"got {type(value).__name__} ({value!r})")
    return value


def dataclass_from_dict(cls, data, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix or '<root>'}': expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"'{prefix}.{unknown[0]}'" if prefix else f"'{unknown[0]}'"
        raise ConfigError(f"unknown config key {where} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        hint = hints[name]
        kwargs[name] = (dataclass_from_dict(hint, value, key) if dataclasses.is_dataclass(hint)
                        else _check(value, hint, key))
    return cls(**kwargs)


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    try:
        return Config.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def save_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

