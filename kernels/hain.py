"""Triton Highway AdaIN: instance norm of the content code, then the per-pixel blend of two style
affines, out = gamma(p) * c_hat + beta(p) with gamma = m sigma_f + (1 - m) sigma_b and
beta = m mu_f + (1 - m) mu_b; forward and backward, fp32 statistics for every dtype.

The spec is lomit_fast.ops.reference.hain_ref; tests/ops/test_hain.py checks these kernels against
it and benchmarks/bench_hain.py times them.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ._common import (choose_tiling, is_channels_last, like, plane_statistics, plane_strides,
                      program_channels, row_mean, tile_offsets)


@triton.jit
def _load_styles(mu_f_ptr, sigma_f_ptr, mu_b_ptr, sigma_b_ptr, n, cols, C):
    """The four (N, C) style vectors of sample n at channels `cols`, in fp32."""
    cmask = cols < C
    at = n * C + cols
    mu_f = tl.load(mu_f_ptr + at, mask=cmask, other=0.0).to(tl.float32)
    sigma_f = tl.load(sigma_f_ptr + at, mask=cmask, other=0.0).to(tl.float32)
    mu_b = tl.load(mu_b_ptr + at, mask=cmask, other=0.0).to(tl.float32)
    sigma_b = tl.load(sigma_b_ptr + at, mask=cmask, other=0.0).to(tl.float32)
    return mu_f, sigma_f, mu_b, sigma_b


@triton.jit
def _blend(x, mask_ptr, n, hw, HW, mean, rstd, mu_f, sigma_f, mu_b, sigma_b):
    """HAIN of one tile: (x - mean) rstd (sigma_b + m (sigma_f - sigma_b)) + mu_b + m (mu_f - mu_b)."""
    m = tl.load(mask_ptr + n.to(tl.int64) * HW + hw, mask=hw < HW, other=0.0).to(tl.float32)
    gamma = sigma_b[:, None] + m[None, :] * (sigma_f - sigma_b)[:, None]
    beta = mu_b[:, None] + m[None, :] * (mu_f - mu_b)[:, None]
    return (x - mean[:, None]) * rstd[:, None] * gamma + beta


@triton.jit
def _forward_kernel(
    c_ptr,                          # (N, C, H, W) content code, NCHW or NHWC
    out_ptr,                        # (N, C, H, W) output, same strides as c
    mask_ptr,                       # (N, H*W) blend mask in [0, 1]
    mu_f_ptr, sigma_f_ptr,          # (N, C) foreground style affine
    mu_b_ptr, sigma_b_ptr,          # (N, C) background style affine
    mean_ptr, rstd_ptr,             # (N, C) fp32 out: statistics kept for the backward
    C, HW,                          # channels, plane size
    stride_n, stride_c, stride_hw,  # element strides of c and out
    eps,                            # epsilon inside the sqrt
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, SINGLE_PASS: tl.constexpr,
):
    n, cols = program_channels(tl.program_id(0), C, BLOCK_C)
    mean, rstd, x = plane_statistics(c_ptr, mean_ptr, rstd_ptr, n, cols, C, HW, stride_n,
                                     stride_c, stride_hw, eps, BLOCK_C, BLOCK_HW, SINGLE_PASS)
    mu_f, sigma_f, mu_b, sigma_b = _load_styles(mu_f_ptr, sigma_f_ptr, mu_b_ptr, sigma_b_ptr,
                                                n, cols, C)
    if SINGLE_PASS:
        offs, bounds, hw = tile_offsets(n, cols, C, HW, stride_n, stride_c, stride_hw, 0, BLOCK_HW)
        out = _blend(x, mask_ptr, n, hw, HW, mean, rstd, mu_f, sigma_f, mu_b, sigma_b)
        tl.store(out_ptr + offs, out.to(out_ptr.dtype.element_ty), mask=bounds)
    else:
        for start in range(0, HW, BLOCK_HW):
            offs, bounds, hw = tile_offsets(n, cols, C, HW, stride_n, stride_c, stride_hw, start,
                                            BLOCK_HW)
            chunk = tl.load(c_ptr + offs, mask=bounds, other=0.0).to(tl.float32)
            out = _blend(chunk, mask_ptr, n, hw, HW, mean, rstd, mu_f, sigma_f, mu_b, sigma_b)
            tl.store(out_ptr + offs, out.to(out_ptr.dtype.element_ty), mask=bounds)


@triton.jit
def _backward_tile(dy_ptr, c_ptr, mask_ptr, dmask_ptr, offs, bounds, n, hw, HW, mean, rstd,
                   mu_f, sigma_f, mu_b, sigma_b, ACCUMULATE_DMASK: tl.constexpr):
    """x_hat, m, dy and dx_hat = dy * gamma of one tile; adds the tile's share of dmask."""
    x = tl.load(c_ptr + offs, mask=bounds, other=0.0).to(tl.float32)
    dy = tl.load(dy_ptr + offs, mask=bounds, other=0.0).to(tl.float32)
    m = tl.load(mask_ptr + n.to(tl.int64) * HW + hw, mask=hw < HW, other=0.0).to(tl.float32)
    x_hat = tl.where(bounds, (x - mean[:, None]) * rstd[:, None], 0.0)
    if ACCUMULATE_DMASK:
        # dL/dm(p) = sum_c dy (x_hat (sigma_f - sigma_b) + mu_f - mu_b): this program's channels.
        share = dy * (x_hat * (sigma_f - sigma_b)[:, None] + (mu_f - mu_b)[:, None])
        tl.atomic_add(dmask_ptr + n.to(tl.int64) * HW + hw, tl.sum(share, axis=0), mask=hw < HW)
    gamma = sigma_b[:, None] + m[None, :] * (sigma_f - sigma_b)[:, None]
    # A rounded product (see instance_norm._backward_tile): the select stops FMA contraction.
    return x_hat, m[None, :], dy, tl.where(bounds, dy * gamma, 0.0)


@triton.jit
def _backward_kernel(
    dy_ptr,                         # (N, C, H, W) incoming gradient, same strides as c
    c_ptr,                          # (N, C, H, W) forward content input
    mask_ptr,                       # (N, H*W) forward blend mask
    mu_f_ptr, sigma_f_ptr, mu_b_ptr, sigma_b_ptr,  # (N, C) forward styles
    mean_ptr, rstd_ptr,             # (N, C) fp32 statistics saved by the forward
    dc_ptr,                         # (N, C, H, W) out: gradient of c, same strides as c
    dmask_ptr,                      # (N, H*W) fp32 out, zero-initialised: gradient of mask
    dstyle_ptr,                     # (4, N, C) fp32 out: gradients of mu_f, sigma_f, mu_b, sigma_b
    N, C, HW,                       # batch, channels, plane size
    stride_n, stride_c, stride_hw,  # element strides of dy, c and dc
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, SINGLE_PASS: tl.constexpr,
):
    n, cols = program_channels(tl.program_id(0), C, BLOCK_C)
    cmask = cols < C
    mean = tl.load(mean_ptr + n * C + cols, mask=cmask, other=0.0)
    rstd = tl.load(rstd_ptr + n * C + cols, mask=cmask, other=0.0)
    mu_f, sigma_f, mu_b, sigma_b = _load_styles(mu_f_ptr, sigma_f_ptr, mu_b_ptr, sigma_b_ptr,
                                                n, cols, C)
    # Plane sums: dx_hat and dx_hat x_hat (for dc); dy x_hat m, dy x_hat, dy m, dy (for styles).
    if SINGLE_PASS:
        offs, bounds, hw = tile_offsets(n, cols, C, HW, stride_n, stride_c, stride_hw, 0, BLOCK_HW)
        x_hat, m, dy, dx_hat = _backward_tile(dy_ptr, c_ptr, mask_ptr, dmask_ptr, offs, bounds,
                                              n, hw, HW, mean, rstd, mu_f, sigma_f, mu_b,
                                              sigma_b, True)
        sum_dxh = tl.sum(dx_hat, axis=1)
        sum_dxh_xh = tl.sum(dx_hat * x_hat, axis=1)
        sum_dy_xh_m = tl.sum(dy * x_hat * m, axis=1)
        sum_dy_xh = tl.sum(dy * x_hat, axis=1)
        sum_dy_m = tl.sum(dy * m, axis=1)
        sum_dy = tl.sum(dy, axis=1)
    else:
        sum_dxh = tl.zeros([BLOCK_C], tl.float32)
        sum_dxh_xh = tl.zeros([BLOCK_C], tl.float32)
        sum_dy_xh_m = tl.zeros([BLOCK_C], tl.float32)
        sum_dy_xh = tl.zeros([BLOCK_C], tl.float32)
        sum_dy_m = tl.zeros([BLOCK_C], tl.float32)
        sum_dy = tl.zeros([BLOCK_C], tl.float32)
        for start in range(0, HW, BLOCK_HW):
            offs, bounds, hw = tile_offsets(n, cols, C, HW, stride_n, stride_c, stride_hw, start,
                                            BLOCK_HW)
            x_hat, m, dy, dx_hat = _backward_tile(dy_ptr, c_ptr, mask_ptr, dmask_ptr, offs,
                                                  bounds, n, hw, HW, mean, rstd, mu_f, sigma_f,
                                                  mu_b, sigma_b, True)
            sum_dxh += tl.sum(dx_hat, axis=1)
            sum_dxh_xh += tl.sum(dx_hat * x_hat, axis=1)
            sum_dy_xh_m += tl.sum(dy * x_hat * m, axis=1)
            sum_dy_xh += tl.sum(dy * x_hat, axis=1)
            sum_dy_m += tl.sum(dy * m, axis=1)
            sum_dy += tl.sum(dy, axis=1)
    at = n * C + cols
    NC = N * C
    tl.store(dstyle_ptr + at, sum_dy_m, mask=cmask)                        # d mu_f
    tl.store(dstyle_ptr + NC + at, sum_dy_xh_m, mask=cmask)                # d sigma_f
    tl.store(dstyle_ptr + 2 * NC + at, sum_dy - sum_dy_m, mask=cmask)      # d mu_b
    tl.store(dstyle_ptr + 3 * NC + at, sum_dy_xh - sum_dy_xh_m, mask=cmask)  # d sigma_b
    mean_dxh = row_mean(sum_dxh, HW)
    mean_dxh_xh = row_mean(sum_dxh_xh, HW)
    # dc = rstd * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat))
    if SINGLE_PASS:
        dc = rstd[:, None] * (dx_hat - mean_dxh[:, None] - x_hat * mean_dxh_xh[:, None])
        tl.store(dc_ptr + offs, dc.to(dc_ptr.dtype.element_ty), mask=bounds)
    else:
        for start in range(0, HW, BLOCK_HW):
            offs, bounds, hw = tile_offsets(n, cols, C, HW, stride_n, stride_c, stride_hw, start,
                                            BLOCK_HW)
            x_hat, m, dy, dx_hat = _backward_tile(dy_ptr, c_ptr, mask_ptr, dmask_ptr, offs,
                                                  bounds, n, hw, HW, mean, rstd, mu_f, sigma_f,
                                                  mu_b, sigma_b, False)
            dc = rstd[:, None] * (dx_hat - mean_dxh[:, None] - x_hat * mean_dxh_xh[:, None])
            tl.store(dc_ptr + offs, dc.to(dc_ptr.dtype.element_ty), mask=bounds)


def _styles(*styles: torch.Tensor) -> list[torch.Tensor]:
    return [s.contiguous() for s in styles]


def hain_forward(c: torch.Tensor, mask: torch.Tensor, mu_f: torch.Tensor, sigma_f: torch.Tensor,
                 mu_b: torch.Tensor, sigma_b: torch.Tensor, eps: float):
    """(out, mean, rstd): out like c (same layout and dtype), mean/rstd (N, C) fp32."""
    c, strides = plane_strides(c)
    n, ch, h, w = c.shape
    tiling = choose_tiling(n, ch, h * w, is_channels_last(strides))
    out = torch.empty_like(c)
    mean = torch.empty((n, ch), device=c.device, dtype=torch.float32)
    rstd = torch.empty((n, ch), device=c.device, dtype=torch.float32)
    wrap_triton(_forward_kernel)[tiling.grid](
        c, out, mask.reshape(n, h * w).contiguous(), *_styles(mu_f, sigma_f, mu_b, sigma_b),
        mean, rstd, ch, h * w, *strides, eps,
        BLOCK_C=tiling.block_c, BLOCK_HW=tiling.block_hw, SINGLE_PASS=tiling.single_pass,
        num_warps=tiling.num_warps)
    return out, mean, rstd


def hain_backward(dy: torch.Tensor, c: torch.Tensor, mask: torch.Tensor, mu_f: torch.Tensor,
                  sigma_f: torch.Tensor, mu_b: torch.Tensor, sigma_b: torch.Tensor,
                  mean: torch.Tensor, rstd: torch.Tensor):
    """(dc, dmask, dstyles): dc like c; dmask (N, 1, H, W) fp32; dstyles (4, N, C) fp32 holding
    the gradients of mu_f, sigma_f, mu_b, sigma_b."""
    c, strides = plane_strides(c)
    dy = like(dy, c)
    n, ch, h, w = c.shape
    tiling = choose_tiling(n, ch, h * w, is_channels_last(strides), backward=True)
    dc = torch.empty_like(c)
    dmask = torch.zeros((n, 1, h, w), device=c.device, dtype=torch.float32)
    dstyles = torch.empty((4, n, ch), device=c.device, dtype=torch.float32)
    wrap_triton(_backward_kernel)[tiling.grid](
        dy, c, mask.reshape(n, h * w).contiguous(), *_styles(mu_f, sigma_f, mu_b, sigma_b),
        mean, rstd, dc, dmask, dstyles, n, ch, h * w, *strides,
        BLOCK_C=tiling.block_c, BLOCK_HW=tiling.block_hw, SINGLE_PASS=tiling.single_pass,
        num_warps=tiling.num_warps)
    return dc, dmask, dstyles
