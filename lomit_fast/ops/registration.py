"""Fake implementations and autograd of the fused ops, registered once for each op library.

Two libraries hold the same four ops under the same schemas (instance_norm, instance_norm_backward,
hain, hain_backward; each forward returns (output, mean, rstd) so the backward skips a pass):
  * `lomit::`        the C++ extension (csrc/ops/, TORCH_LIBRARY): what TorchScript, AOTInductor
                     packages and C++ programs call, CPU kernels (CUDA where compiled);
  * `lomit_triton::` the Triton kernels (ops/triton_ops.py, triton_op), which torch.compile and
                     AOTInductor trace into. They keep their own library: as kernels of the C++
                     schema they would be opaque Python kernels that no C++ program could run.
The fakes give the layout the kernels give: NHWC in, NHWC out; NCHW (or any other strides) in,
contiguous NCHW out.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def output_like(x: Tensor) -> Tensor:
    """An empty tensor laid out as the kernels lay out their output for input x."""
    dense = x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)
    return torch.empty_like(x if dense else x.contiguous())


def register(namespace: str, stats_dtype: Callable[[Tensor], torch.dtype]) -> None:
    """Fakes and autograd for the four ops of `namespace`; stats_dtype(x) is the dtype of the
    statistics and partial gradients the library's kernels produce for input x."""
    ops = getattr(torch.ops, namespace)

    def stats(x: Tensor, *leading: int) -> Tensor:
        return x.new_empty((*leading, x.shape[0], x.shape[1]), dtype=stats_dtype(x))

    @torch.library.register_fake(f"{namespace}::instance_norm")
    def _(x, weight, bias, eps, activation, negative_slope):
        return output_like(x), stats(x), stats(x)

    @torch.library.register_fake(f"{namespace}::instance_norm_backward")
    def _(dy, x, weight, bias, mean, rstd, activation, negative_slope):
        none = x.new_empty((0,), dtype=stats_dtype(x))
        return output_like(x), stats(x) if weight is not None else none, \
            stats(x) if bias is not None else none

    @torch.library.register_fake(f"{namespace}::hain")
    def _(c, mask, mu_f, sigma_f, mu_b, sigma_b, eps):
        return output_like(c), stats(c), stats(c)

    @torch.library.register_fake(f"{namespace}::hain_backward")
    def _(dy, c, mask, mu_f, sigma_f, mu_b, sigma_b, mean, rstd):
        n, _, h, w = c.shape
        return output_like(c), c.new_empty((n, 1, h, w), dtype=stats_dtype(c)), stats(c, 4)

    def instance_norm_setup(ctx, inputs, output):
        x, weight, bias, _eps, activation, negative_slope = inputs
        _y, mean, rstd = output
        ctx.save_for_backward(x, weight, bias, mean, rstd)
        ctx.activation, ctx.negative_slope = activation, negative_slope
        ctx.mark_non_differentiable(mean, rstd)

    def instance_norm_grad(ctx, dy, _dmean, _drstd):
        x, weight, bias, mean, rstd = ctx.saved_tensors
        dx, dweight, dbias = ops.instance_norm_backward(dy, x, weight, bias, mean, rstd,
                                                        ctx.activation, ctx.negative_slope)
        dweight = None if weight is None else dweight.sum(0).to(weight.dtype)
        dbias = None if bias is None else dbias.sum(0).to(bias.dtype)
        return dx, dweight, dbias, None, None, None

    torch.library.register_autograd(f"{namespace}::instance_norm", instance_norm_grad,
                                    setup_context=instance_norm_setup)

    def hain_setup(ctx, inputs, output):
        *tensors, _eps = inputs
        _out, mean, rstd = output
        ctx.save_for_backward(*tensors, mean, rstd)
        ctx.mark_non_differentiable(mean, rstd)

    def hain_grad(ctx, dy, _dmean, _drstd):
        c, mask, mu_f, sigma_f, mu_b, sigma_b, mean, rstd = ctx.saved_tensors
        dc, dmask, dstyles = ops.hain_backward(dy, c, mask, mu_f, sigma_f, mu_b, sigma_b,
                                               mean, rstd)
        grads = [g.to(s.dtype) for g, s in zip(dstyles, (mu_f, sigma_f, mu_b, sigma_b))]
        return (dc, dmask.to(mask.dtype), *grads, None)

    torch.library.register_autograd(f"{namespace}::hain", hain_grad, setup_context=hain_setup)
