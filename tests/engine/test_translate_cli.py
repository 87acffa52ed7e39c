"""`lomit-fast translate` end to end on a folder of good, odd and broken images."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lomit_fast.cli import main
from lomit_fast.engine import batch

BAD = {"corrupt.png", "truncated.png"}


def run(image_folder, out, checkpoint, *extra):
    return main(["translate", "--input", str(image_folder), "--exemplar",
                 str(image_folder / "good0.png"), "--output", str(out), "--checkpoint",
                 str(checkpoint), "--batch-size", "3", "--workers", "0", "--quiet", *extra])


def test_folder_with_bad_files(image_folder, checkpoint, capsys):
    out = image_folder / "out"  # inside the input folder: must not be read as input
    before = {p: p.read_bytes() for p in image_folder.rglob("*") if p.is_file()}
    assert run(image_folder, out, checkpoint, "--save-masks") == 1  # something failed
    report = json.loads((out / "report.json").read_text())
    assert {os.path.basename(f["file"]) for f in report["failures"]} == BAD
    good = [p for p in before if p.name not in BAD]
    assert report["done"] == len(good) and report["failed"] == 2
    for p in good:
        rel = p.relative_to(image_folder).with_suffix(".png")
        with Image.open(out / rel) as image:
            assert image.size == (32, 32) and image.mode == "RGB"
        assert (out / rel.parent / f"{rel.stem}_mask_in.png").is_file()
    assert all(p.read_bytes() == b for p, b in before.items())  # inputs untouched
    assert "corrupt.png" in capsys.readouterr().err
    # A second run finds everything done and translates nothing again.
    assert run(image_folder, out, checkpoint) == 1
    assert json.loads((out / "report.json").read_text())["skipped"] == len(good)


def test_interrupted_run_resumes_to_identical_outputs(image_folder, checkpoint, monkeypatch):
    for name in BAD:
        (image_folder / name).unlink()
    clean = image_folder.parent / "clean"
    assert run(image_folder, clean, checkpoint) == 0
    calls = {"n": 0}
    original = batch.save_png

    def crash_after_four(array, path):
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt("killed")
        original(array, path)

    monkeypatch.setattr(batch, "save_png", crash_after_four)
    out = image_folder.parent / "resumed"
    assert run(image_folder, out, checkpoint) == 130  # Ctrl-C: a message, no traceback
    monkeypatch.setattr(batch, "save_png", original)
    assert len(list(out.rglob("*.png"))) == 4
    assert run(image_folder, out, checkpoint) == 0
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no partial files
    for p in clean.rglob("*.png"):
        assert p.read_bytes() == (out / p.relative_to(clean)).read_bytes()


def test_original_size_composite_and_given_masks(image_folder, checkpoint, tmp_path):
    mask = np.zeros((32, 32), np.uint8)
    Image.fromarray(mask).save(tmp_path / "zero.png")
    out = tmp_path / "out"
    run(image_folder, out, checkpoint, "--output-size", "original", "--composite",
        "--mask-in", str(tmp_path / "zero.png"))
    with Image.open(out / "wide.png") as image:
        assert image.size == (40, 30)
    # Zero input mask + composite: the output is the input itself (at model size, resized back).
    with Image.open(out / "good1.png") as a, Image.open(image_folder / "good1.png") as b:
        diff = np.abs(np.asarray(a, np.int16) - np.asarray(b.resize((32, 32), Image.BICUBIC)
                                                           .resize((48, 48), Image.BICUBIC), np.int16))
    assert diff.max() <= 1


def test_clear_errors(image_folder, checkpoint, tmp_path, capsys):
    assert main(["translate", "--input", str(tmp_path / "nothing*"), "--exemplar",
                 str(image_folder / "good0.png"), "--output", str(tmp_path / "o"),
                 "--checkpoint", str(checkpoint)]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["translate", "--input", str(image_folder), "--exemplar", str(tmp_path / "x.png"),
                 "--output", str(tmp_path / "o"), "--checkpoint", str(checkpoint)]) == 2
    assert "x.png: no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_shards_over_two_processes(image_folder, checkpoint, tmp_path):
    for name in BAD:
        (image_folder / name).unlink()
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-port", "29533", "-m", "lomit_fast.cli", "translate", "--input",
           str(image_folder), "--exemplar", str(image_folder / "good0.png"), "--output", str(out),
           "--checkpoint", str(checkpoint), "--device", "cpu", "--workers", "0"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    n_inputs = len([p for p in image_folder.rglob("*") if p.is_file()])
    assert report["ranks"] == 2 and report["done"] == n_inputs
    # One progress bar, rank 0's: every bar line counts towards rank 0's share of the inputs.
    totals = set(re.findall(r"translate:.*?\| *\d+/(\d+) \[", result.stderr))
    assert totals == {str(len(range(0, n_inputs, 2)))}, totals
    assert len(list(out.rglob("*.png"))) == n_inputs
