"""Typed configs: YAML round trip, strict keys and types."""
from pathlib import Path

import pytest

from lomit_fast.config import Config, ConfigError, load_config, save_config


@pytest.mark.parametrize("name", ["celeba_128.yaml", "synthetic_64.yaml"])
def test_shipped_configs_round_trip(tmp_path, name):
    cfg = load_config(Path("configs") / name)
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_defaults_are_the_paper_settings():
    cfg = Config()
    assert cfg.model.content_channels == 256 and cfg.model.content_size == 32
    assert cfg.loss.self_reconstruction == 10 and cfg.loss.mask_sparsity == 1e-4
    assert cfg.train.betas == [0.5, 0.999] and cfg.train.generator_every == 5


def test_unknown_key_names_the_key(tmp_path):
    (tmp_path / "c.yaml").write_text("model:\n  image_sise: 64\n")
    with pytest.raises(ConfigError, match=r"'model.image_sise'"):
        load_config(tmp_path / "c.yaml")


@pytest.mark.parametrize("text, key", [
    ("model:\n  image_size: big\n", "model.image_size"),
    ("train:\n  betas: 0.5\n", "train.betas"),
    ("train:\n  bf16: 1\n", "train.bf16"),
    ("data:\n  attributes: [a, 3]\n", r"data.attributes\[1\]"),
    ("loss: 3\n", "loss"),
])
def test_wrong_type_names_the_key(tmp_path, text, key):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=key):
        load_config(tmp_path / "c.yaml")


def test_ints_are_accepted_for_floats(tmp_path):
    (tmp_path / "c.yaml").write_text("loss:\n  cycle: 10\n")
    assert load_config(tmp_path / "c.yaml").loss.cycle == 10.0


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
