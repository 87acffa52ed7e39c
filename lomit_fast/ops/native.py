"""The fused ops written with torch's own norm kernels (F.instance_norm, F.group_norm).

Same formulas as reference.py. This is the form exporters understand: an ONNX export of it holds
InstanceNormalization nodes (on centred input: the two-pass variance of the spec) with the
affines as explicit Mul/Add (HAIN's per-sample,
per-pixel gamma and beta cannot be an InstanceNormalization scale). Low-precision inputs are
normalised in fp32 and cast back, so an fp16 graph keeps its statistics in fp32.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .reference import activate_ref, affine_activate_ref


def _compute(x: Tensor) -> Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _normalize(x: Tensor, eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) per (n, c) plane, in the compute dtype. Centred first so the
    variance is the two-pass one (torch's kernel alone loses digits on large means)."""
    xc = _compute(x)
    centred = xc - xc.mean(dim=(2, 3), keepdim=True)
    if x.shape[2] * x.shape[3] == 1:  # variance 0 (F.instance_norm refuses a single element)
        return centred * eps ** -0.5
    return F.instance_norm(centred, eps=eps)


def _like_input(y: Tensor, x: Tensor) -> Tensor:
    """y in x's dtype and memory layout (channels-last stays channels-last)."""
    y = y.to(x.dtype)
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        y = y.contiguous(memory_format=torch.channels_last)
    return y


def instance_norm_native(x: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                         eps: float = 1e-5, activation: str = "none",
                         negative_slope: float = 0.01) -> Tensor:
    y = _normalize(x, eps)
    return _like_input(affine_activate_ref(y, weight, bias, activation, negative_slope), x)


def hain_native(c: Tensor, mask: Tensor, mu_f: Tensor, sigma_f: Tensor, mu_b: Tensor,
                sigma_b: Tensor, eps: float = 1e-5) -> Tensor:
    c_hat = _normalize(c, eps)
    dtype = c_hat.dtype
    m = mask.to(dtype)
    # Upcast before subtracting, as the spec does: sigma_f - sigma_b in bf16 loses digits.
    sigma_f, sigma_b, mu_f, mu_b = (t.to(dtype)[:, :, None, None]
                                    for t in (sigma_f, sigma_b, mu_f, mu_b))
    gamma = sigma_b + m * (sigma_f - sigma_b)
    beta = mu_b + m * (mu_f - mu_b)
    return _like_input(c_hat * gamma + beta, c)


def layer_norm2d_native(x: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                        eps: float = 1e-5, activation: str = "none",
                        negative_slope: float = 0.01) -> Tensor:
    xc = _compute(x)
    cast = (lambda t: None if t is None else t.to(xc.dtype))  # noqa: E731
    y = F.group_norm(xc - xc.mean(dim=(1, 2, 3), keepdim=True), 1, cast(weight), cast(bias), eps)
    return _like_input(activate_ref(y, activation, negative_slope), x)


IMPLEMENTATIONS = {"instance_norm": instance_norm_native, "hain": hain_native,
                   "layer_norm2d": layer_norm2d_native}
