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


def test_weights_must_be_floating_and_finite(tmp_path):
    from safetensors.torch import load_file, save_file

    from lomit_fast.models.checkpoint import SHIPPED_MODEL, read_metadata
    state, meta = load_file(str(SHIPPED_MODEL)), read_metadata(SHIPPED_MODEL)
    key = next(iter(state))
    for name, value, message in (
            ("int8", state[key].to(torch.int8), "dtype I8; weights must be floating"),
            ("bool", state[key] > 0, "dtype BOOL"),
            ("nan", torch.full_like(state[key], float("nan")), "NaN or infinite")):
        path = tmp_path / f"{name}.safetensors"
        save_file({**state, key: value}, str(path), metadata=meta)
        with pytest.raises(CheckpointError, match=f"{name}.safetensors: tensor '{key}'.*{message}"):
            load_generator(path)


def test_a_config_claiming_a_huge_model_fails_before_anything_is_built(tmp_path, monkeypatch):
    """A tiny file whose stored config says content_width 4096: refused from its header,
    with the model built only on the meta device (no memory)."""
    import json

    from safetensors.torch import save_file

    from lomit_fast.models import checkpoint
    cfg = json.loads(checkpoint.read_metadata(checkpoint.SHIPPED_MODEL)["model_config"])
    cfg["content_width"] = 4096
    path = tmp_path / "huge.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"model_config": json.dumps(cfg)})
    assert path.stat().st_size < 2000
    devices = []
    real = checkpoint.Generator

    def spy(cfg):
        devices.append(torch.get_default_device().type)
        return real(cfg)
    monkeypatch.setattr(checkpoint, "Generator", spy)
    with pytest.raises(CheckpointError, match="huge.safetensors: does not match"):
        load_generator(path)
    assert devices == ["meta"]
