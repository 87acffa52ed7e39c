"""The Triton kernels registered as torch ops (lomit::instance_norm, lomit::hain) with fake
implementations and autograd, so eager, torch.compile and torch.export all see one op.

Each forward op returns (output, mean, rstd); the saved statistics spare the backward a pass.
Imported only by the backend registry when the triton backend is first used.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.library import triton_op

from ..kernels._common import plane_strides
from ..kernels.hain import hain_backward, hain_forward
from ..kernels.instance_norm import instance_norm_backward, instance_norm_forward


def _like_output(x: Tensor) -> Tensor:
    """An empty tensor laid out as the kernels lay out their output for input x."""
    return torch.empty_like(plane_strides(x)[0])


def _stats(x: Tensor) -> Tensor:
    return x.new_empty((x.shape[0], x.shape[1]), dtype=torch.float32)


@triton_op("lomit::instance_norm", mutates_args=())
def instance_norm_op(x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], eps: float,
                     activation: str, negative_slope: float) -> tuple[Tensor, Tensor, Tensor]:
    return instance_norm_forward(x, weight, bias, eps, activation, negative_slope)


@triton_op("lomit::instance_norm_backward", mutates_args=())
def instance_norm_backward_op(dy: Tensor, x: Tensor, weight: Optional[Tensor],
                              bias: Optional[Tensor], mean: Tensor, rstd: Tensor, activation: str,
                              negative_slope: float) -> tuple[Tensor, Tensor, Tensor]:
    return instance_norm_backward(dy, x, weight, bias, mean, rstd, activation, negative_slope)


@instance_norm_op.register_fake
def _(x, weight, bias, eps, activation, negative_slope):
    # Explicit fakes: the kernels' launchers cannot run on fake tensors under the interpreter.
    return _like_output(x), _stats(x), _stats(x)


@instance_norm_backward_op.register_fake
def _(dy, x, weight, bias, mean, rstd, activation, negative_slope):
    partial = lambda t: _stats(x) if t is not None else x.new_empty((0,), dtype=torch.float32)  # noqa
    return _like_output(x), partial(weight), partial(bias)


def _instance_norm_setup(ctx, inputs, output):
    x, weight, bias, _eps, activation, negative_slope = inputs
    _y, mean, rstd = output
    ctx.save_for_backward(x, weight, bias, mean, rstd)
    ctx.activation, ctx.negative_slope = activation, negative_slope
    ctx.mark_non_differentiable(mean, rstd)


def _instance_norm_grad(ctx, dy, _dmean, _drstd):
    x, weight, bias, mean, rstd = ctx.saved_tensors
    dx, dweight, dbias = torch.ops.lomit.instance_norm_backward(
        dy, x, weight, bias, mean, rstd, ctx.activation, ctx.negative_slope)
    dweight = None if weight is None else dweight.sum(0).to(weight.dtype)
    dbias = None if bias is None else dbias.sum(0).to(bias.dtype)
    return dx, dweight, dbias, None, None, None


instance_norm_op.register_autograd(_instance_norm_grad, setup_context=_instance_norm_setup)


@triton_op("lomit::hain", mutates_args=())
def hain_op(c: Tensor, mask: Tensor, mu_f: Tensor, sigma_f: Tensor, mu_b: Tensor,
            sigma_b: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    return hain_forward(c, mask, mu_f, sigma_f, mu_b, sigma_b, eps)


@triton_op("lomit::hain_backward", mutates_args=())
def hain_backward_op(dy: Tensor, c: Tensor, mask: Tensor, mu_f: Tensor, sigma_f: Tensor,
                     mu_b: Tensor, sigma_b: Tensor, mean: Tensor,
                     rstd: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    return hain_backward(dy, c, mask, mu_f, sigma_f, mu_b, sigma_b, mean, rstd)


@hain_op.register_fake
def _(c, mask, mu_f, sigma_f, mu_b, sigma_b, eps):
    return _like_output(c), _stats(c), _stats(c)


@hain_backward_op.register_fake
def _(dy, c, mask, mu_f, sigma_f, mu_b, sigma_b, mean, rstd):
    n, ch, h, w = c.shape
    return (_like_output(c), c.new_empty((n, 1, h, w), dtype=torch.float32),
            c.new_empty((4, n, ch), dtype=torch.float32))


def _hain_setup(ctx, inputs, output):
    *tensors, _eps = inputs
    _out, mean, rstd = output
    ctx.save_for_backward(*tensors, mean, rstd)
    ctx.mark_non_differentiable(mean, rstd)


def _hain_grad(ctx, dy, _dmean, _drstd):
    c, mask, mu_f, sigma_f, mu_b, sigma_b, mean, rstd = ctx.saved_tensors
    dc, dmask, dstyles = torch.ops.lomit.hain_backward(dy, c, mask, mu_f, sigma_f, mu_b, sigma_b,
                                                       mean, rstd)
    grads = [g.to(s.dtype) for g, s in zip(dstyles, (mu_f, sigma_f, mu_b, sigma_b))]
    return (dc, dmask.to(mask.dtype), *grads, None)


hain_op.register_autograd(_hain_grad, setup_context=_hain_setup)


def instance_norm_triton(x: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                         eps: float = 1e-5, activation: str = "none",
                         negative_slope: float = 0.01) -> Tensor:
    return torch.ops.lomit.instance_norm(x, weight, bias, eps, activation, negative_slope)[0]


def hain_triton(c: Tensor, mask: Tensor, mu_f: Tensor, sigma_f: Tensor, mu_b: Tensor,
                sigma_b: Tensor, eps: float = 1e-5) -> Tensor:
    return torch.ops.lomit.hain(c, mask, mu_f, sigma_f, mu_b, sigma_b, eps)[0]


IMPLEMENTATIONS = {"instance_norm": instance_norm_triton, "hain": hain_triton}
