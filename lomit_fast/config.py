"""Typed configuration: dataclasses loaded from YAML, strictly.

Every field has a default taken from method.md (the paper's 128x128 CelebA settings), except
model.mask_prior_logit, whose default is what weights files written before the field existed were
trained with; the YAML files under configs/ override them. Unknown keys, wrong types and values
out of range (a batch size of 0, a negative epsilon, NaN) are errors that name the key, because a
silently ignored typo in a training config wastes a whole run.
"""
from __future__ import annotations

import dataclasses
import math
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
    # Initial bias of the mask head's 1x1 conv: masks start at sigmoid(this). 0 is the authors'
    # (a zero bias like every other layer, masks at 0.5); -2 (0.12) is what the synthetic model
    # needed and is the default for files written before this field existed. Only the
    # initialisation depends on it: a trained model's bias is in its weights.
    mask_prior_logit: float = -2.0

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
    test_size: int = 2000          # images held out: the first of the list (the authors' split)
    seed: int = 0                  # seed of synthetic data / shuffling
    workers: int = 2               # data-loading worker processes
    backgrounds: list[str] = field(default_factory=lambda: [
        "stripes", "checker", "gradient", "blobs"])  # synthetic: background families to draw


@dataclass
class LossConfig:
    adversarial: float = 1.0       # WGAN generator term -D(x_AB)
    classification: float = 1.0    # BCE of D_cls(x_AB) against the exemplar's labels
    self_reconstruction: float = 10.0
    cycle: float = 10.0
    style_foreground: float = 1.0
    style_background: float = 1.0
    content: float = 1.0
    mask_similarity: float = 0.1   # R1, summed over the six masks
    mask_sparsity: float = 1e-4    # R2 = sum over the six masks of their mean value
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
    init_from: str = ""            # a checkpoint folder (run/checkpoints/step-N) whose generator
                                   # and critic start this run: a second stage, other weights/schedule


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
        cfg = dataclass_from_dict(cls, data, "")
        if len(cfg.data.attributes) != cfg.model.n_attributes:
            raise ConfigError(f"config key 'model.n_attributes': {cfg.model.n_attributes} does not "
                              f"match the {len(cfg.data.attributes)} names in data.attributes")
        return cfg


# Ranges checked when a config is read: key -> (test, what it must be). Exponents are capped
# before anything computes 2**n with them.
def _at_least(low):
    return (lambda v: v >= low), f"at least {low}"


_POSITIVE = ((lambda v: v > 0), "greater than 0")
_FRACTION = ((lambda v: 0 <= v <= 1), "between 0 and 1")
_EXPONENT = ((lambda v: 0 <= v <= 16), "between 0 and 16")
RULES = {
    **{f"model.{k}": _at_least(1) for k in (
        "image_size", "channels", "content_width", "mask_attention_width", "style_width",
        "style_max_width", "style_dim", "mlp_width", "mlp_layers", "critic_width",
        "critic_max_width", "n_attributes")},
    **{f"model.{k}": _at_least(0) for k in (
        "content_res_blocks", "mask_layers", "decoder_res_blocks")},
    **{f"model.{k}": _EXPONENT for k in ("content_downsample", "style_downsample")},
    "model.critic_layers": ((lambda v: 1 <= v <= 16), "between 1 and 16"),
    "model.hain_eps": _POSITIVE,
    "model.mask_norm": ((lambda v: v in ("instance", "group")), "instance or group"),
    "data.kind": ((lambda v: v in ("celeba", "folders", "table", "synthetic")),
                  "celeba, folders, table or synthetic"),
    "data.attributes": ((lambda v: len(v) > 0 and len(set(v)) == len(v)),
                        "a non-empty list of distinct names"),
    "data.crop_size": _at_least(1),
    "data.test_size": _at_least(0),
    "data.workers": _at_least(0),
    **{f"loss.{f.name}": _at_least(0) for f in dataclasses.fields(LossConfig)},
    **{f"train.{k}": _at_least(1) for k in (
        "batch_size", "iterations", "generator_every", "lr_decay_every", "checkpoint_every",
        "sample_every", "log_every")},
    "train.lr": _POSITIVE,
    "train.betas": ((lambda v: len(v) == 2 and all(0 <= b < 1 for b in v)),
                    "two numbers in [0, 1)"),
    "train.lr_constant_fraction": _FRACTION,
}


def _check_range(value, key: str) -> None:
    """A value of the right type against RULES; NaN and infinity are never meaningful here."""
    numbers = value if isinstance(value, list) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
        raise ConfigError(f"config key '{key}': must be finite, got {value!r:.60}")
    if key in RULES and not RULES[key][0](value):
        raise ConfigError(f"config key '{key}': must be {RULES[key][1]}, got {value!r:.60}")


def _check_model(cfg: "ModelConfig", prefix: str) -> None:
    """Sizes that must fit together (checked after each field's range)."""
    factor = 2 ** max(cfg.content_downsample, cfg.style_downsample, cfg.critic_layers)
    if cfg.image_size % factor:
        raise ConfigError(f"config key '{prefix}.image_size': {cfg.image_size} must be a multiple "
                          f"of {factor} (2 ** the most stride-2 convs of E_c, E_s or the critic)")
    if not 1 <= cfg.style_shared_layers <= cfg.style_downsample + 1:
        raise ConfigError(f"config key '{prefix}.style_shared_layers': must be between 1 and "
                          f"{cfg.style_downsample + 1}, got {cfg.style_shared_layers}")


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
        raise ConfigError(f"config key '{key}': {value!r:.60} does not match {hint}")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)  # YAML writes 10 for 10.0
        except OverflowError:
            raise ConfigError(f"config key '{key}': a {len(str(abs(value)))}-digit number is too "
                              "large") from None
    if hint is type(None) and value is None:
        return value
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"config key '{key}': expected {hint.__name__}, "
                          f"got {type(value).__name__} ({value!r:.60})")
    return value


def dataclass_from_dict(cls, data, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix or '<root>'}': expected a mapping, "
                          f"got {data!r:.60}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    odd = [k for k in data if not isinstance(k, str)]
    if odd:
        raise ConfigError(f"config section '{prefix or '<root>'}': key {odd[0]!r} is not a name")
    unknown = sorted(set(data) - names)
    if unknown:
        where = repr(f"{prefix}.{unknown[0]}" if prefix else unknown[0])[:80]  # a key may hold \n
        raise ConfigError(f"unknown config key {where} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = dataclass_from_dict(hint, value, key)
        else:
            kwargs[name] = _check(value, hint, key)
            _check_range(kwargs[name], key)
    obj = cls(**kwargs)
    if cls is ModelConfig:  # given values and defaults must fit together
        _check_model(obj, prefix or "model")
    return obj


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as e:  # ValueError: a 5000-digit int
        detail = "nested too deeply" if isinstance(e, RecursionError) else " ".join(str(e).split())
        raise ConfigError(f"config file {path} is not valid YAML: {detail}") from None
    data = {} if data is None else data
    try:
        return Config.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def save_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

