"""`lomit-fast eval` and `demo` through the real CLI: a user's mistake exits 2 with one line."""
import os
import subprocess
import sys

import pytest


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "lomit_fast.cli", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("args, message", [
    (["eval", "--images", "0"], "lomit-fast eval: error: --images 0: must be at least 1"),
    (["eval", "--images", "-5"], "lomit-fast eval: error: --images -5: must be at least 1"),
    (["demo", "--batch-size", "0"], "lomit-fast demo: error: --batch-size 0: must be at least 1"),
    (["demo", "--metrics-images", "-1"],
     "lomit-fast demo: error: --metrics-images -1: must be 0 (none) or more"),
    (["eval", "--config", "configs/celeba_128_hair.yaml"],
     "lomit-fast eval: error: --inception and --config go together (FID on the config's data); "
     "without both, eval reports the synthetic locality metrics"),
    (["eval", "--inception", "features.pt"],
     "lomit-fast eval: error: --inception and --config go together (FID on the config's data); "
     "without both, eval reports the synthetic locality metrics"),
])
def test_out_of_range_numbers_and_lone_fid_flags(tmp_path, args, message):
    result = run_cli(*args, *(["--out", str(tmp_path / "out")] if args[0] == "demo" else []))
    assert (result.returncode, result.stderr) == (2, message + "\n")
    assert not (tmp_path / "out").exists()


def test_eval_with_a_garbage_feature_extractor(tmp_path):
    (tmp_path / "inception.pt").write_bytes(b"\x89garbage, not TorchScript" * 40)
    result = run_cli("eval", "--inception", str(tmp_path / "inception.pt"),
                     "--config", "configs/celeba_128_hair.yaml")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"lomit-fast eval: error: {tmp_path / 'inception.pt'}: "
                                    "not a TorchScript feature extractor (")
