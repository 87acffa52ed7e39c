"""FID per target attribute on a real data set's test split (the first data.test_size images).

For each attribute a of data.attributes (a target value: the attribute present), the test images
without a are translated with exemplars that have a (taken in turn, in list order), and the FID is
taken between those translations and the real test images that have a. The report gives each
attribute's FID and their mean, `fid` (method.md: "FID per attribute and averaged"). At most
`images` inputs and `images` real images are used per attribute. For one-hot domains (hair
colours, data.kind folders) the attributes are exactly the target values; for a lone binary
attribute (Male) only the direction towards it is measured.

Features come from a TorchScript file the user supplies ((N, 3, 299, 299) in [-1, 1] -> (N, D));
nothing is downloaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import load_config
from ..data.datasets import read_table, split
from ..models import Generator
from .metrics import fid

Images = Callable[[list[int]], Tensor]  # indices into the test split -> (n, 3, H, W) in [-1, 1]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def load_extractor(path: str, device: str) -> Callable[[Tensor], Tensor]:
    """The user's TorchScript feature extractor, as images (N, 3, H, W) in [-1, 1] -> (N, D)
    features (resized to 299x299 first); a file that is not one is a ValueError naming it."""
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such feature extractor file")
    try:
        module = torch.jit.load(path, map_location=device).eval()
    except (RuntimeError, ValueError, OSError) as e:
        raise ValueError(f"{path}: not a TorchScript feature extractor "
                         f"({_first_line(e)})") from None

    def features(x: Tensor) -> Tensor:
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        try:
            out = module(x)
        except (RuntimeError, ValueError, TypeError) as e:
            raise ValueError(f"{path}: the feature extractor fails on a (N, 3, 299, 299) "
                             f"batch ({_first_line(e)})") from None
        if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"{path}: the feature extractor must return (N, D) features, "
                             f"returned {shape}")
        return out.double().cpu()

    return features


@torch.no_grad()
def fid_per_attribute(translate: Callable[[Tensor, Tensor], Tensor],
                      features: Callable[[Tensor], Tensor], images: Images, labels: Tensor,
                      names: list[str], limit: int, batch_size: int = 16) -> dict:
    """The protocol of this module's docstring. labels: (N, K) 0/1 of the N test images."""
    if limit < 2:
        raise ValueError(f"--images must be at least 2 for FID, got {limit}")

    def feature_rows(inputs: Tensor, exemplars: Tensor | None = None) -> Tensor:
        out = []
        for start in range(0, len(inputs), batch_size):
            x = images(inputs[start:start + batch_size].tolist())
            if exemplars is not None:
                x = translate(x, images(exemplars[start:start + batch_size].tolist()))
            out.append(features(x))
        return torch.cat(out)

    per_attribute, counts = {}, {}
    for k, name in enumerate(names):
        having = (labels[:, k] == 1).nonzero().flatten()
        lacking = (labels[:, k] == 0).nonzero().flatten()
        if len(having) < 2 or len(lacking) < 2:
            raise ValueError(f"FID for '{name}': the test split has {len(having)} images with it "
                             f"and {len(lacking)} without; at least 2 of each are needed")
        inputs = lacking[:limit]
        exemplars = having[torch.arange(len(inputs)) % len(having)]
        value = fid(feature_rows(having[:limit]), feature_rows(inputs, exemplars))
        per_attribute[name], counts[name] = round(value, 3), len(inputs)
    mean = sum(per_attribute.values()) / len(per_attribute)
    return {"fid": round(mean, 3), "fid_per_attribute": per_attribute, "images": counts}


def fid_of_translations(generator: Generator, config_path: str | None, inception_path: str,
                        images: int, device: str = "cpu", batch_size: int = 16) -> dict:
    """`lomit-fast eval --inception`: fid_per_attribute on the test split of config_path."""
    if config_path is None:
        raise ValueError("--config is needed with --inception (it names the data set)")
    cfg = load_config(config_path)
    if cfg.data.kind == "synthetic":
        raise ValueError(f"{config_path}: FID needs a real data set (data.kind celeba, folders "
                         "or table); the synthetic set has the locality metrics (eval without "
                         "--inception)")
    features = load_extractor(inception_path, device)
    _, test = split(read_table(cfg.data, generator.cfg.image_size), cfg.data.test_size)
    if len(test) == 0:
        raise ValueError(f"{config_path}: data.test_size is 0, so there is no test split")
    labels = torch.tensor([row[1] for row in test.rows])

    def load(indices: list[int]) -> Tensor:  # ImageTable.load: an unreadable image is an error
        return torch.stack([test.load(i) for i in indices]).to(device)

    def translate(x: Tensor, exemplars: Tensor) -> Tensor:
        return generator.translate(x, exemplars)[0]

    return fid_per_attribute(translate, features, load, labels, cfg.data.attributes, images,
                             batch_size)
