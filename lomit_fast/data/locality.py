"""Locality metrics on the synthetic set, whose ground-truth masks say what is object and what is
background. Training logs them and `lomit-fast eval` reports them (held-out seed):

  mask_iou           input mask (upsampled, > 0.5) against the true object mask
  background_psnr    output vs input over true background pixels (dB)
  self_psnr          self-reconstruction (input as its own exemplar) vs input, same pixels (dB)
  transfer_accuracy  the output object's mean colour is nearest to the exemplar's colour class
  leakage_psnr       the same input translated with two exemplars of the same class on different
                     backgrounds: outputs compared over the input's background (dB; higher = less
                     of the exemplar's background leaks in)
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from ..ops.reference import upsample_mask
from .synthetic import COLOUR_CLASSES, TRAINING, synthetic_batch

EVAL_SEED = 1_000_003  # never used for training


def psnr(a: Tensor, b: Tensor, region: Tensor) -> Tensor:
    """Per-image PSNR (dB) of images in [-1, 1] over pixels where region (N, 1, H, W) is 1."""
    err = (((a.float() - b.float()) / 2) ** 2 * region).flatten(1).sum(1)
    count = (region.expand_as(a).flatten(1).sum(1)).clamp(min=1)
    return 10 * torch.log10(1.0 / (err / count).clamp(min=1e-10))


def mask_iou(mask: Tensor, truth: Tensor) -> Tensor:
    """Per-image IoU of a content-resolution mask (upsampled, thresholded at 0.5) and the truth."""
    pred = upsample_mask(mask.float(), truth.shape[-2:]) > 0.5
    gt = truth > 0.5
    inter = (pred & gt).flatten(1).sum(1).float()
    union = (pred | gt).flatten(1).sum(1).float().clamp(min=1)
    return inter / union


def nearest_class(images: Tensor, region: Tensor) -> Tensor:
    """Index of the colour class nearest to each image's mean colour over `region`."""
    palette = torch.tensor(list(COLOUR_CLASSES.values()), device=images.device)
    rgb = (images.float() + 1) / 2
    mean = (rgb * region).flatten(2).sum(2) / region.flatten(2).sum(2).clamp(min=1)
    return torch.cdist(mean, palette).argmin(1)


@torch.no_grad()
def evaluate_synthetic(generator, images: int = 256, batch_size: int = 32,
                       seed: int = EVAL_SEED, device: str | torch.device = "cpu",
                       backgrounds: Sequence[str] = TRAINING) -> dict:
    """The locality metrics of `generator` (a models.Generator) on `images` held-out pairs
    (a seed never used for training) whose backgrounds come from the families `backgrounds`:
    TRAINING for the in-distribution figures, HELD_OUT for backgrounds never trained on."""
    if images < 1:
        raise ValueError(f"images must be at least 1, got {images}")
    size = generator.cfg.image_size
    sums: dict[str, float] = {}
    done = 0
    for index in range(math.ceil(images / batch_size)):
        n = min(batch_size, images - done)
        draw = lambda k, **kw: synthetic_batch(n, size, seed, 3 * index + k, device,  # noqa
                                               backgrounds=backgrounds, **kw)
        x, ex = draw(0), draw(1)
        ex_same = draw(2, classes=ex.classes)
        out, m_in, _ = generator.translate(x.images, ex.images)
        out_same, _, _ = generator.translate(x.images, ex_same.images)
        own, _, _ = generator.translate(x.images, x.images)
        background = 1 - x.masks
        values = {
            "mask_iou": mask_iou(m_in, x.masks),
            "background_psnr": psnr(out, x.images, background),
            "self_psnr": psnr(own, x.images, background),
            "transfer_accuracy": (nearest_class(out, x.masks) == ex.classes).float(),
            "leakage_psnr": psnr(out, out_same, background),
        }
        for key, v in values.items():
            sums[key] = sums.get(key, 0.0) + v.sum().item()
        done += n
    return {key: round(total / done, 4) for key, total in sums.items()} | {"images": done}
