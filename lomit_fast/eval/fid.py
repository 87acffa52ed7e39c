"""FID of translations on a real data set's test split, with Inception features from a file the
user supplies (TorchScript: (N, 3, 299, 299) in [-1, 1] -> (N, D)); nothing is downloaded."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import load_config
from ..models import Generator
from ..data.datasets import ImageTable, build_source
from .metrics import fid


@torch.no_grad()
def fid_of_translations(generator: Generator, config_path: str | None, inception_path: str,
                        images: int, device: str = "cpu", batch_size: int = 16) -> dict:
    """FID between real test images and translations of test images with test exemplars."""
    if config_path is None:
        raise ValueError("--config is needed with --inception (it names the data set)")
    if not Path(inception_path).is_file():
        raise ValueError(f"{inception_path}: no such feature extractor file")
    cfg = load_config(config_path)
    cfg.data.test_size = 0  # read the rows; the test split is the last rows of the table
    table = build_source(cfg.data, generator.cfg.image_size, batch_size, torch.device(device)).dataset
    if table is None:
        raise ValueError("FID needs a real data set (data.kind celeba, folders or table)")
    held_out = load_config(config_path).data.test_size
    test = ImageTable(table.root, table.rows[-held_out:], table.size, table.crop)
    extractor = torch.jit.load(inception_path, map_location=device).eval()

    def features(x):
        return extractor(F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False))

    real, fake = [], []
    n = min(images, len(test))
    for start in range(0, n, batch_size):
        batch = torch.stack([test[i][0] for i in range(start, min(start + batch_size, n))])
        batch = batch.to(device)
        exemplars = batch.roll(1, 0)
        out, _, _ = generator.translate(batch, exemplars)
        real.append(features(batch).double().cpu())
        fake.append(features(out).double().cpu())
    return {"fid": round(fid(torch.cat(real), torch.cat(fake)), 3), "images": n}
