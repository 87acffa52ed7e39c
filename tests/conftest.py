"""Fixtures shared by the engine and export tests."""
import pytest
import torch

from lomit_fast import Generator
from lomit_fast.checkpoint import save_weights
from lomit_fast.config import load_config


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A small random-weight model at 32x32 (fast on the CPU, same code as the shipped one)."""
    cfg = load_config("configs/synthetic_64.yaml").model
    cfg.image_size = 32
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "g.safetensors"
    save_weights(Generator(cfg), cfg, path)
    return path
