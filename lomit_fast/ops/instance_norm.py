"""Public instance_norm op: argument checks, then dispatch to the chosen backend."""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from . import backends
from ._checks import check_activation, check_image_like, check_shape
from .reference import ACTIVATIONS, instance_norm_ref


def instance_norm(x: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                  eps: float = 1e-5, activation: str = "none", negative_slope: float = 0.01,
                  backend: str = "auto") -> Tensor:
    """Instance norm with optional per-channel affine and fused activation (see
    reference.instance_norm_ref for the formula). x: (N, C, H, W); weight, bias: (C,) or None."""
    check_image_like("x", x)
    channels = x.shape[1]
    check_shape("weight", weight, (channels,), x)
    check_shape("bias", bias, (channels,), x)
    check_activation(activation, ACTIVATIONS)
    impl = backends.implementation("instance_norm", backend, x.device.type)
    return impl(x, weight, bias, eps, activation, negative_slope)


__all__ = ["instance_norm", "instance_norm_ref"]
