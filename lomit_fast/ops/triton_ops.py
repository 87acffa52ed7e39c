"""The Triton kernels registered as torch ops (lomit_triton::instance_norm, lomit_triton::hain),
so eager, torch.compile and torch.export all see one op; fakes and autograd: registration.py.

Each forward op returns (output, mean, rstd); the saved statistics spare the backward a pass.
Imported only by the backend registry when the triton backend is first used.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.library import triton_op

from ..kernels.hain import hain_backward, hain_forward
from ..kernels.instance_norm import instance_norm_backward, instance_norm_forward
from . import registration


@triton_op("lomit_triton::instance_norm", mutates_args=())
def instance_norm_op(x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], eps: float,
                     activation: str, negative_slope: float) -> tuple[Tensor, Tensor, Tensor]:
    return instance_norm_forward(x, weight, bias, eps, activation, negative_slope)


@triton_op("lomit_triton::instance_norm_backward", mutates_args=())
def instance_norm_backward_op(dy: Tensor, x: Tensor, weight: Optional[Tensor],
                              bias: Optional[Tensor], mean: Tensor, rstd: Tensor, activation: str,
                              negative_slope: float) -> tuple[Tensor, Tensor, Tensor]:
    return instance_norm_backward(dy, x, weight, bias, mean, rstd, activation, negative_slope)


@triton_op("lomit_triton::hain", mutates_args=())
def hain_op(c: Tensor, mask: Tensor, mu_f: Tensor, sigma_f: Tensor, mu_b: Tensor,
            sigma_b: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    return hain_forward(c, mask, mu_f, sigma_f, mu_b, sigma_b, eps)


@triton_op("lomit_triton::hain_backward", mutates_args=())
def hain_backward_op(dy: Tensor, c: Tensor, mask: Tensor, mu_f: Tensor, sigma_f: Tensor,
                     mu_b: Tensor, sigma_b: Tensor, mean: Tensor,
                     rstd: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    return hain_backward(dy, c, mask, mu_f, sigma_f, mu_b, sigma_b, mean, rstd)


# The kernels keep fp32 statistics and partial gradients whatever the input dtype.
registration.register("lomit_triton", lambda x: torch.float32)


def instance_norm_triton(x: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                         eps: float = 1e-5, activation: str = "none",
                         negative_slope: float = 0.01) -> Tensor:
    return torch.ops.lomit_triton.instance_norm(x, weight, bias, eps, activation,
                                                negative_slope)[0]


def hain_triton(c: Tensor, mask: Tensor, mu_f: Tensor, sigma_f: Tensor, mu_b: Tensor,
                sigma_b: Tensor, eps: float = 1e-5) -> Tensor:
    return torch.ops.lomit_triton.hain(c, mask, mu_f, sigma_f, mu_b, sigma_b, eps)[0]


IMPLEMENTATIONS = {"instance_norm": instance_norm_triton, "hain": hain_triton}
