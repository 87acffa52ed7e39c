"""Evaluation: locality metrics on the synthetic set (ground-truth masks) and FID arithmetic.

Synthetic metrics (held-out seed):
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

import torch
from torch import Tensor

from ..models import Generator
from ..models.generator import upsample_mask
from ..train.synthetic import COLOUR_CLASSES, synthetic_batch

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
def evaluate_synthetic(generator: Generator, images: int = 256, batch_size: int = 32,
                       seed: int = EVAL_SEED, device: str | torch.device = "cpu") -> dict:
    """The locality metrics of `generator` on `images` held-out synthetic pairs."""
    size = generator.cfg.image_size
    sums: dict[str, float] = {}
    done = 0
    for index in range(math.ceil(images / batch_size)):
        n = min(batch_size, images - done)
        x = synthetic_batch(n, size, seed, 3 * index, device)
        ex = synthetic_batch(n, size, seed, 3 * index + 1, device)
        ex_same = synthetic_batch(n, size, seed, 3 * index + 2, device, classes=ex.classes)
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


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), in float64 (the FID formula)."""
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))

    def sqrtm_psd(m: Tensor) -> Tensor:
        values, vectors = torch.linalg.eigh((m + m.T) / 2)
        return vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T

    root1 = sqrtm_psd(sigma1)
    cross = sqrtm_psd(root1 @ sigma2 @ root1)
    value = (mu1 - mu2).square().sum() + torch.trace(sigma1 + sigma2 - 2 * cross)
    return float(value)


def feature_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and covariance (N - 1 normalised) of (N, D) features."""
    f = features.double()
    return f.mean(0), torch.cov(f.T)


@torch.no_grad()
def fid(real_features: Tensor, fake_features: Tensor) -> float:
    """FID between two sets of Inception (pool3) features, (N, 2048) each. The features come
    from Inception weights the user supplies; nothing is downloaded."""
    return frechet_distance(*feature_statistics(real_features),
                            *feature_statistics(fake_features))
