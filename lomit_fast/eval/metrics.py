"""FID arithmetic: the Frechet distance between two sets of (Inception) features.

The locality metrics of the synthetic set live in lomit_fast.data.locality (training logs them
too); the FID of translations on a real data set is in fid.py.
"""
from __future__ import annotations

import torch
from torch import Tensor


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
