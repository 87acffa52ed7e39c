"""Triton instance norm: per-(n, c) spatial normalisation, optional per-channel affine, fused
ReLU / LeakyReLU; forward and backward. Statistics in fp32 for every input dtype.

The spec is lomit_fast.ops.reference.instance_norm_ref; tests/ops/test_instance_norm.py checks
these kernels against it and benchmarks/bench_instance_norm.py times them.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ._common import (ACTIVATION_CODES, activate, activation_grad, choose_tiling,
                      is_channels_last, like, plane_statistics, plane_strides, program_channels,
                      row_mean, tile_offsets)


@triton.jit
def _forward_kernel(
    x_ptr,                          # (N, C, H, W) input, NCHW or NHWC
    y_ptr,                          # (N, C, H, W) output, same strides as x
    weight_ptr,                     # (C,) scale, read when HAS_WEIGHT
    bias_ptr,                       # (C,) shift, read when HAS_BIAS
    mean_ptr,                       # (N, C) fp32 out: plane means, kept for the backward
    rstd_ptr,                       # (N, C) fp32 out: 1 / sqrt(var + eps)
    C, HW,                          # channels, plane size H * W
    stride_n, stride_c, stride_hw,  # element strides of x and y
    eps, slope,                     # epsilon inside the sqrt; LeakyReLU slope
    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr,
    ACTIVATION: tl.constexpr,       # 0 none, 1 relu, 2 leaky_relu
    BLOCK_C: tl.constexpr,          # channels per program
    BLOCK_HW: tl.constexpr,         # plane elements per tile
    SINGLE_PASS: tl.constexpr,      # the whole plane fits in one tile
):
    n, cols = program_channels(tl.program_id(0), C, BLOCK_C)
    mean, rstd, x = plane_statistics(x_ptr, mean_ptr, rstd_ptr, n, cols, C, HW, stride_n,
                                     stride_c, stride_hw, eps, BLOCK_C, BLOCK_HW, SINGLE_PASS)
    cmask = cols < C
    # y = act((x - mean) * scale + shift), scale = rstd * weight. Centering first keeps constant
    # planes exact (folding the mean into the shift loses digits when rstd is large).
    scale = rstd
    if HAS_WEIGHT:
        scale = scale * tl.load(weight_ptr + cols, mask=cmask, other=1.0).to(tl.float32)
    shift = tl.zeros([BLOCK_C], tl.float32)
    if HAS_BIAS:
        shift = tl.load(bias_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
    if SINGLE_PASS:
        offs, bounds, _ = tile_offsets(n, cols, C, HW, stride_n, stride_c, stride_hw, 0, BLOCK_HW)
        y = activate((x - mean[:, None]) * scale[:, None] + shift[:, None], slope, ACTIVATION)
        tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=bounds)
    else:
        for start in range(0, HW, BLOCK_HW):
            offs, bounds, _ = tile_offsets(n, cols, C, HW, stride_n, stride_c, stride_hw, start,
                                           BLOCK_HW)
            chunk = tl.load(x_ptr + offs, mask=bounds, other=0.0).to(tl.float32)
            y = activate((chunk - mean[:, None]) * scale[:, None] + shift[:, None], slope,
                         ACTIVATION)
            tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=bounds)


@triton.jit
def _backward_tile(dy_ptr, x_ptr, offs, bounds, mean, rstd, weight, bias, slope,
                   ACTIVATION: tl.constexpr):
    """x_hat, dz (gradient before the affine) and dx_hat of one tile."""
    x = tl.load(x_ptr + offs, mask=bounds, other=0.0).to(tl.float32)
    dy = tl.load(dy_ptr + offs, mask=bounds, other=0.0).to(tl.float32)
    x_hat = tl.where(bounds, (x - mean[:, None]) * rstd[:, None], 0.0)
    if ACTIVATION != 0:  # the activation's input z is recomputed, never stored
        dy = activation_grad(dy, x_hat * weight[:, None] + bias[:, None], slope, ACTIVATION)
    # The select keeps dx_hat a rounded product: fused into a later FMA it would differ from the
    # dx_hat summed for the mean by one rounding, which rstd amplifies on constant planes.
    return x_hat, dy, tl.where(bounds, dy * weight[:, None], 0.0)


@triton.jit
def _backward_kernel(
    dy_ptr,                         # (N, C, H, W) incoming gradient, same strides as x
    x_ptr,                          # (N, C, H, W) forward input
    dx_ptr,                         # (N, C, H, W) out: gradient of x, same strides as x
    weight_ptr, bias_ptr,           # (C,) affine of the forward, read when HAS_WEIGHT / HAS_BIAS
    mean_ptr, rstd_ptr,             # (N, C) fp32 statistics saved by the forward
    dweight_ptr, dbias_ptr,         # (N, C) fp32 out: per-sample partial sums of dweight, dbias
    C, HW,                          # channels, plane size
    stride_n, stride_c, stride_hw,  # element strides of dy, x and dx
    slope,                          # LeakyReLU slope
    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, ACTIVATION: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, SINGLE_PASS: tl.constexpr,
):
    n, cols = program_channels(tl.program_id(0), C, BLOCK_C)
    cmask = cols < C
    mean = tl.load(mean_ptr + n * C + cols, mask=cmask, other=0.0)
    rstd = tl.load(rstd_ptr + n * C + cols, mask=cmask, other=0.0)
    weight = tl.zeros([BLOCK_C], tl.float32) + 1.0
    bias = tl.zeros([BLOCK_C], tl.float32)
    if HAS_WEIGHT:
        weight = tl.load(weight_ptr + cols, mask=cmask, other=1.0).to(tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
    # Plane sums: of dx_hat and dx_hat * x_hat for dx; of dz * x_hat and dz for the affine.
    if SINGLE_PASS:
        offs, bounds, _ = tile_offsets(n, cols, C, HW, stride_n, stride_c, stride_hw, 0, BLOCK_HW)
        x_hat, dz, dx_hat = _backward_tile(dy_ptr, x_ptr, offs, bounds, mean, rstd, weight,
                                           bias, slope, ACTIVATION)
        sum_dxh = tl.sum(dx_hat, axis=1)
        sum_dxh_xh = tl.sum(dx_hat * x_hat, axis=1)
        sum_dz_xh = tl.sum(dz * x_hat, axis=1)
        sum_dz = tl.sum(dz, axis=1)
    else:
        sum_dxh = tl.zeros([BLOCK_C], tl.float32)
        sum_dxh_xh = tl.zeros([BLOCK_C], tl.float32)
        sum_dz_xh = tl.zeros([BLOCK_C], tl.float32)
        sum_dz = tl.zeros([BLOCK_C], tl.float32)
        for start in range(0, HW, BLOCK_HW):
            offs, bounds, _ = tile_offsets(n, cols, C, HW, stride_n, stride_c, stride_hw, start,
                                           BLOCK_HW)
            x_hat, dz, dx_hat = _backward_tile(dy_ptr, x_ptr, offs, bounds, mean, rstd, weight,
                                               bias, slope, ACTIVATION)
            sum_dxh += tl.sum(dx_hat, axis=1)
            sum_dxh_xh += tl.sum(dx_hat * x_hat, axis=1)
            sum_dz_xh += tl.sum(dz * x_hat, axis=1)
            sum_dz += tl.sum(dz, axis=1)
    if HAS_WEIGHT:
        tl.store(dweight_ptr + n * C + cols, sum_dz_xh, mask=cmask)
    if HAS_BIAS:
        tl.store(dbias_ptr + n * C + cols, sum_dz, mask=cmask)
    mean_dxh = row_mean(sum_dxh, HW)
    mean_dxh_xh = row_mean(sum_dxh_xh, HW)
    # dx = rstd * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat))
    if SINGLE_PASS:
        dx = rstd[:, None] * (dx_hat - mean_dxh[:, None] - x_hat * mean_dxh_xh[:, None])
        tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=bounds)
    else:
        for start in range(0, HW, BLOCK_HW):
            offs, bounds, _ = tile_offsets(n, cols, C, HW, stride_n, stride_c, stride_hw, start,
                                           BLOCK_HW)
            x_hat, dz, dx_hat = _backward_tile(dy_ptr, x_ptr, offs, bounds, mean, rstd, weight,
                                               bias, slope, ACTIVATION)
            dx = rstd[:, None] * (dx_hat - mean_dxh[:, None] - x_hat * mean_dxh_xh[:, None])
            tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=bounds)


def instance_norm_forward(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                          eps: float, activation: str, negative_slope: float):
    """(y, mean, rstd): y like x (same layout and dtype), mean/rstd (N, C) fp32."""
    x, strides = plane_strides(x)
    n, c, h, w = x.shape
    tiling = choose_tiling(n, c, h * w, is_channels_last(strides))
    y = torch.empty_like(x)
    mean = torch.empty((n, c), device=x.device, dtype=torch.float32)
    rstd = torch.empty((n, c), device=x.device, dtype=torch.float32)
    wrap_triton(_forward_kernel)[tiling.grid](
        x, y, x if weight is None else weight, x if bias is None else bias, mean, rstd,
        c, h * w, *strides, eps, negative_slope,
        HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None,
        ACTIVATION=ACTIVATION_CODES[activation], BLOCK_C=tiling.block_c,
        BLOCK_HW=tiling.block_hw, SINGLE_PASS=tiling.single_pass, num_warps=tiling.num_warps)
    return y, mean, rstd


def instance_norm_backward(dy: torch.Tensor, x: torch.Tensor, weight: torch.Tensor | None,
                           bias: torch.Tensor | None, mean: torch.Tensor, rstd: torch.Tensor,
                           activation: str, negative_slope: float):
    """(dx, dweight_partial, dbias_partial): dx like x; partials (N, C) fp32 (empty when the
    forward had no weight / bias), summed over N by the caller."""
    x, strides = plane_strides(x)
    dy = like(dy, x)
    n, c, h, w = x.shape
    tiling = choose_tiling(n, c, h * w, is_channels_last(strides), backward=True)
    dx = torch.empty_like(x)
    partial = lambda present: torch.empty((n, c) if present else (0,), device=x.device,  # noqa
                                          dtype=torch.float32)
    dweight, dbias = partial(weight is not None), partial(bias is not None)
    wrap_triton(_backward_kernel)[tiling.grid](
        dy, x, dx, x if weight is None else weight, x if bias is None else bias, mean, rstd,
        dweight, dbias, c, h * w, *strides, negative_slope,
        HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None,
        ACTIVATION=ACTIVATION_CODES[activation], BLOCK_C=tiling.block_c,
        BLOCK_HW=tiling.block_hw, SINGLE_PASS=tiling.single_pass, num_warps=tiling.num_warps)
    return dx, dweight, dbias
