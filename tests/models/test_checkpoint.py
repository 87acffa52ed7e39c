"""Weights files: round trip, config stored inside, clear errors for wrong files."""
import pytest
import torch

from lomit_fast import Generator
from lomit_fast.models.checkpoint import (CheckpointError, load_generator, load_weights,
                                   read_model_config, save_weights)
from lomit_fast.config import load_config


def test_round_trip(tmp_path):
    cfg = load_config("configs/synthetic_64.yaml").model
    torch.manual_seed(0)
    g = Generator(cfg).eval()
    save_weights(g, cfg, tmp_path / "g.safetensors")
    assert read_model_config(tmp_path / "g.safetensors") == cfg
    loaded = load_generator(tmp_path / "g.safetensors")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded.translate(x, x.flip(0))[0], g.translate(x, x.flip(0))[0])
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_checkpoint_from_another_config(tmp_path):
    cfg = load_config("configs/synthetic_64.yaml").model
    save_weights(Generator(cfg), cfg, tmp_path / "g.safetensors")
    cfg.content_width += 8
    with pytest.raises(CheckpointError, match="tensor '.*' has shape .* expects"):
        load_weights(Generator(cfg), tmp_path / "g.safetensors")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such weights file"):
        load_generator(tmp_path / "absent.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_generator(tmp_path / "bad.safetensors")
