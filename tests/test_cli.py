"""The main job end to end."""
import json

import numpy as np
from PIL import Image

from lomit_fast.cli import main


def test_demo_writes_a_grid_and_metrics(tmp_path, capsys):
    """The main job with the shipped model."""
    assert main(["demo", "--out", str(tmp_path), "--batch-size", "3", "--metrics-images", "8"]) == 0
    grid = np.asarray(Image.open(tmp_path / "demo_grid.png"))
    assert grid.shape[0] > 5 * 192 and grid.shape[1] > 3 * 192 and grid.std() > 10
    tile = grid[2:2 + 192, 2:2 + 192]  # the first input, enlarged 3x pixel for pixel
    assert (tile[::3, ::3] == tile[1::3, 1::3]).all()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == {"training_backgrounds", "held_out_backgrounds"}
    for values in metrics.values():
        assert {"mask_iou", "background_psnr", "self_psnr", "transfer_accuracy",
                "leakage_psnr"} <= set(values) and values["images"] == 8
    assert "images/s" in capsys.readouterr().out


def test_demo_reports_bad_checkpoint(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--checkpoint", str(tmp_path / "no")]) == 2
    assert "no such weights file" in capsys.readouterr().err
