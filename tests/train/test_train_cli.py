"""`lomit-fast train` through the real CLI: a user's mistake exits 2 with one line that names the
file or key and what is wrong."""
import os
import re
import resource
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from lomit_fast.config import load_config
from lomit_fast.train.trainer import Trainer


def run_cli(*args, limit_file_size=None):
    def limit():  # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    return subprocess.run([sys.executable, "-m", "lomit_fast.cli", *args], capture_output=True,
                          text=True, timeout=300, preexec_fn=limit if limit_file_size else None,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    progress = re.compile(r"^train: +\d+%\|")  # the progress bar, closed before the error
    lines = [s for s in result.stderr.strip().splitlines() if not progress.match(s)]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def tiny_config(path, **changes):
    """configs/synthetic_64.yaml at 32x32, two steps of batch 2; changes: {"section.key": value}."""
    data = yaml.safe_load(open("configs/synthetic_64.yaml"))
    data["model"].update(image_size=32, critic_layers=4)
    data["train"].update(batch_size=2, iterations=2, checkpoint_every=2, sample_every=2,
                         log_every=1)
    for key, value in changes.items():
        section, name = key.split(".")
        data[section][name] = value
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("key, value, message", [
    ("train.log_every", 0, "config key 'train.log_every': must be at least 1, got 0"),
    ("train.batch_size", 0, "config key 'train.batch_size': must be at least 1, got 0"),
    ("train.iterations", -10, "config key 'train.iterations': must be at least 1, got -10"),
    ("model.hain_eps", -1e-5, "config key 'model.hain_eps': must be greater than 0, got -1e-05"),
])
def test_nonsense_config_values(tmp_path, key, value, message):
    config = tiny_config(tmp_path / "c.yaml", **{key: value})
    assert_user_error(run_cli("train", "--config", config, "--run-dir", str(tmp_path / "run")),
                      "c.yaml", message)
    assert not (tmp_path / "run").exists()


def test_header_only_table_and_non_utf8_celeba_file(tmp_path):
    (tmp_path / "img").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "img" / "a.png")
    (tmp_path / "au.csv").write_text("file,red,green,blue,yellow,magenta,cyan\n")
    config = tiny_config(tmp_path / "c.yaml", **{
        "data.kind": "table", "data.root": str(tmp_path / "img"),
        "data.attr_file": str(tmp_path / "au.csv"), "data.test_size": 0})
    assert_user_error(run_cli("train", "--config", config, "--run-dir", str(tmp_path / "run")),
                      "au.csv: lists no images")
    (tmp_path / "attr.txt").write_bytes(b"1\nred green\n\xff.png 1 -1\n")
    config = tiny_config(tmp_path / "c.yaml", **{
        "data.kind": "celeba", "data.root": str(tmp_path / "img"),
        "data.attr_file": str(tmp_path / "attr.txt")})
    assert_user_error(run_cli("train", "--config", config, "--run-dir", str(tmp_path / "run")),
                      "attr.txt: attribute file is not UTF-8 text (byte 12)")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A two-step run with its checkpoint at step 2."""
    folder = tmp_path_factory.mktemp("trained")
    config = tiny_config(folder / "c.yaml")
    Trainer(load_config(config), folder / "run").train(progress=False)
    return folder


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:100]), "not a readable training state"),
    (lambda p: torch.save({"step": 2.5}, p), "field 'step' is missing or not of type int"),
])
def test_broken_state_on_resume(tmp_path, finished_run, damage, message):
    shutil.copytree(finished_run, tmp_path, dirs_exist_ok=True)
    damage(tmp_path / "run" / "checkpoints" / "step-0000002" / "state.pt")
    result = run_cli("train", "--config", str(tmp_path / "c.yaml"), "--run-dir",
                     str(tmp_path / "run"), "--resume", "--steps", "3")
    assert_user_error(result, "step-0000002/state.pt: " + message)


def test_full_disk_while_writing_a_checkpoint(tmp_path):
    config = tiny_config(tmp_path / "c.yaml")
    # 1 MB: the config, metrics and samples fit; the generator's weights (3.5 MB) do not.
    result = run_cli("train", "--config", config, "--run-dir", str(tmp_path / "run"),
                     limit_file_size=2 ** 20)
    assert_user_error(result, "cannot write checkpoint", "step-0000002:", "File too large")
    checkpoints = tmp_path / "run" / "checkpoints"
    assert not list(checkpoints.glob(".tmp-step-*")) and not list(checkpoints.glob("step-*"))
    assert not list(checkpoints.glob(".*.tmp*"))  # nor the half-written weights file
