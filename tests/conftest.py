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


@pytest.fixture(scope="session")
def torchscript_file(checkpoint, tmp_path_factory):
    """The small model exported as TorchScript (lomit-fast export --format torchscript)."""
    from lomit_fast.cli import main
    path = tmp_path_factory.mktemp("torchscript") / "g.pt"
    assert main(["export", "--format", "torchscript", "--out", str(path),
                 "--checkpoint", str(checkpoint)]) == 0
    return path


@pytest.fixture(scope="session")
def aoti_file(checkpoint, tmp_path_factory):
    """The small model compiled by AOTInductor for the CPU (~30 s: g++ on generated code)."""
    from lomit_fast.cli import main
    path = tmp_path_factory.mktemp("aoti") / "g.pt2"
    assert main(["export", "--format", "aoti", "--out", str(path),
                 "--checkpoint", str(checkpoint)]) == 0
    return path
