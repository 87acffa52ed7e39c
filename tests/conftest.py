"""Fixtures shared by the engine and export tests."""
import pytest
import torch

from lomit_fast import Generator
from lomit_fast.models.checkpoint import save_weights
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


def export(checkpoint, folder, fmt: str, name: str):
    """The small model exported by the CLI (lomit-fast export --format fmt)."""
    from lomit_fast.cli import main
    path = folder / name
    assert main(["export", "--format", fmt, "--out", str(path),
                 "--checkpoint", str(checkpoint)]) == 0
    return path


@pytest.fixture(scope="session")
def exported(checkpoint, tmp_path_factory):
    """The ONNX graph."""
    return export(checkpoint, tmp_path_factory.mktemp("onnx"), "onnx", "g.onnx")


@pytest.fixture(scope="session")
def torchscript_file(checkpoint, tmp_path_factory):
    return export(checkpoint, tmp_path_factory.mktemp("torchscript"), "torchscript", "g.pt")


@pytest.fixture(scope="session")
def aoti_file(checkpoint, tmp_path_factory):
    """The AOTInductor package for the CPU (~30 s: g++ compiles the generated code)."""
    return export(checkpoint, tmp_path_factory.mktemp("aoti"), "aoti", "g.pt2")
