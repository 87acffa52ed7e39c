"""The op spec: pure-torch reference implementations of every fused op.

This file is the single source of truth that every fast path (Triton kernels, C++/CUDA ops) is
tested and benchmarked against. It imports only torch, is TorchScript-scriptable and exports to
plain ONNX ops.

Conventions shared by all ops:
  * statistics are per sample and channel over the spatial dims H x W;
  * the variance is the biased (population) variance, var = mean((x - mean)^2), computed in two
    passes (never E[x^2] - E[x]^2, which cancels catastrophically for large means);
  * eps goes inside the square root: x_hat = (x - mean) / sqrt(var + eps);
  * fp16/bf16 inputs are computed in fp32 and the result is cast back to the input dtype;
    fp64 stays fp64 (the tests' ground truth).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

ACTIVATIONS = ("none", "relu", "leaky_relu")


def _compute_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def normalize_ref(x: Tensor, eps: float = 1e-5,
                  per_sample: bool = False) -> Tuple[Tensor, Tensor, Tensor]:
    """x_hat, mean, rstd of x (N, C, H, W) in the compute dtype; statistics per sample and
    channel over (H, W), mean/rstd (N, C, 1, 1), or per sample over (C, H, W), (N, 1, 1, 1)."""
    dims = [1, 2, 3] if per_sample else [2, 3]
    xf = x.to(_compute_dtype(x))
    mean = xf.mean(dim=dims, keepdim=True)
    centered = xf - mean
    var = (centered * centered).mean(dim=dims, keepdim=True)
    rstd = torch.rsqrt(var + eps)
    return centered * rstd, mean, rstd


def activate_ref(y: Tensor, activation: str = "none", negative_slope: float = 0.01) -> Tensor:
    """Activation fused after a norm: 'none', 'relu' or 'leaky_relu' (with negative_slope)."""
    if activation == "relu":
        return torch.relu(y)
    if activation == "leaky_relu":
        return torch.where(y >= 0, y, y * negative_slope)
    if activation != "none":
        raise ValueError("activation must be one of ('none', 'relu', 'leaky_relu'), got '"
                         + activation + "'")
    return y


def affine_activate_ref(y: Tensor, weight: Optional[Tensor], bias: Optional[Tensor],
                        activation: str = "none", negative_slope: float = 0.01) -> Tensor:
    """act(y * weight[c] + bias[c]) for normalised y (N, C, H, W); weight/bias None mean 1/0."""
    if weight is not None:
        y = y * weight.to(y.dtype).view(1, -1, 1, 1)
    if bias is not None:
        y = y + bias.to(y.dtype).view(1, -1, 1, 1)
    return activate_ref(y, activation, negative_slope)


def instance_norm_ref(x: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                      eps: float = 1e-5, activation: str = "none",
                      negative_slope: float = 0.01) -> Tensor:
    """Instance norm with optional per-channel affine and fused activation.

        y[n, c] = act( (x[n, c] - mean_HW) / sqrt(var_HW + eps) * weight[c] + bias[c] )

    x: (N, C, H, W); weight, bias: (C,) or None (None means 1 and 0). Returns x's dtype.
    """
    y, _, _ = normalize_ref(x, eps)
    return affine_activate_ref(y, weight, bias, activation, negative_slope).to(x.dtype)


def hain_ref(c: Tensor, mask: Tensor, mu_f: Tensor, sigma_f: Tensor, mu_b: Tensor,
             sigma_b: Tensor, eps: float = 1e-5) -> Tensor:
    """Highway AdaIN: instance norm, then a per-pixel blend of two style affines.

        c_hat = (c - mean_HW(c)) / sqrt(var_HW(c) + eps)
        out   = m * (sigma_f * c_hat + mu_f) + (1 - m) * (sigma_b * c_hat + mu_b)
              = gamma * c_hat + beta,  gamma = m sigma_f + (1 - m) sigma_b,
                                       beta  = m mu_f    + (1 - m) mu_b

    c: (N, C, H, W) content code; mask: (N, 1, H, W) in [0, 1] (m = 1 takes the exemplar's
    foreground style, m = 0 keeps the input's background style); mu_f, sigma_f, mu_b, sigma_b:
    (N, C) per-sample, per-channel style affines. Returns c's dtype.
    """
    c_hat, _, _ = normalize_ref(c, eps)
    dtype = c_hat.dtype
    m = mask.to(dtype)
    gamma = m * sigma_f.to(dtype)[:, :, None, None] + (1 - m) * sigma_b.to(dtype)[:, :, None, None]
    beta = m * mu_f.to(dtype)[:, :, None, None] + (1 - m) * mu_b.to(dtype)[:, :, None, None]
    return (gamma * c_hat + beta).to(c.dtype)


def layer_norm2d_ref(x: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                     eps: float = 1e-5, activation: str = "none",
                     negative_slope: float = 0.01) -> Tensor:
    """Layer norm of the decoder: GroupNorm with one group, per-channel affine, activation.

        y[n] = act( (x[n] - mean_CHW) / sqrt(var_CHW + eps) * weight[c] + bias[c] )
    """
    # Reduced in place over (C, H, W), not through a reshape (a copy for channels-last x).
    y, _, _ = normalize_ref(x, eps, per_sample=True)
    return affine_activate_ref(y, weight, bias, activation, negative_slope).to(x.dtype)


def upsample_mask(mask: Tensor, size: Tuple[int, int]) -> Tensor:
    """The method's up(): a mask (N, 1, h, w) from content to image resolution, bilinear."""
    if mask.shape[-2:] == size:
        return mask
    return F.interpolate(mask, size=size, mode="bilinear", align_corners=False)
