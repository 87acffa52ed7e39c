"""Fixtures of the C++ tests: the built app (`make app`), a folder of inputs, and `run`, which runs
a program the way a user does (a subprocess, text output)."""
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "build" / "app" / "lomit-translate-cpp"


@pytest.fixture(scope="session")
def app():
    """The binary, built with `make app` if it is not there yet."""
    if not APP.exists():
        build = subprocess.run(["make", "app"], cwd=ROOT, capture_output=True, text=True)
        assert build.returncode == 0, f"make app failed:\n{build.stdout}\n{build.stderr}"
    return APP


def run(program, *args, env=None, **kwargs):
    """program args... -> CompletedProcess; `env` adds to the environment (one thread by default:
    the tests share two cores)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([str(program), *map(str, args)], capture_output=True, text=True,
                          env=env, **kwargs)


@pytest.fixture
def folder(tmp_path):
    """Four RGB 32x32 PNGs and an exemplar."""
    rng = np.random.default_rng(0)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(inputs / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "ex.png")
    return tmp_path
