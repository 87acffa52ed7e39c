"""Public layer_norm2d op (GroupNorm with one group + affine + activation, the decoder's norm)."""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from . import backends
from ._checks import check_activation, check_image_like, check_shape
from .reference import ACTIVATIONS, layer_norm2d_ref


def layer_norm2d(x: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                 eps: float = 1e-5, activation: str = "none", negative_slope: float = 0.01,
                 backend: str = "auto") -> Tensor:
    """Per-sample norm over (C, H, W), per-channel affine, fused activation. x: (N, C, H, W)."""
    check_image_like("x", x)
    channels = x.shape[1]
    check_shape("weight", weight, (channels,), x)
    check_shape("bias", bias, (channels,), x)
    check_activation(activation, ACTIVATIONS)
    impl = backends.implementation("layer_norm2d", backend, x.device.type)
    return impl(x, weight, bias, eps, activation, negative_slope)


__all__ = ["layer_norm2d", "layer_norm2d_ref"]
