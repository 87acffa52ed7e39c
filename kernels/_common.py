"""Shared pieces of the Triton kernels: tile geometry, plane statistics, activations.

Both fused ops normalise per (n, c) plane over H x W. A program owns one sample n and a block
of BLOCK_C channels and sees the plane through three element strides, so the same kernel reads
contiguous NCHW (planes contiguous: stride_hw = 1) and channels-last NHWC (channels contiguous:
stride_c = 1) natively. Where a whole tile [BLOCK_C, HW] fits in registers the plane is read
once (SINGLE_PASS); larger planes are read in chunks of BLOCK_HW, with the statistics of the
chunks merged exactly (Chan et al.), never through E[x^2] - E[x]^2.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

ACTIVATION_CODES = {"none": 0, "relu": 1, "leaky_relu": 2}
# Elements of the [BLOCK_C, BLOCK_HW] tile one program holds in registers, and elements per
# thread (which sets num_warps). Chosen from the H200 sweep (benchmarks/NOTES.md): planes of up
# to 2048 elements do best with half the forward tile.
FORWARD_TILE, FORWARD_ELEMENTS_PER_THREAD = 8192, 16
BACKWARD_TILE, BACKWARD_ELEMENTS_PER_THREAD = 8192, 16
MIN_PROGRAMS = 1024  # fewer channel blocks than this starve the GPU: narrow the blocks instead


@dataclass(frozen=True)
class Tiling:
    block_c: int
    block_hw: int
    single_pass: bool
    num_warps: int
    grid: tuple[int]


def plane_strides(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """x in a layout the kernels read (NCHW or NHWC dense) and its (n, c, hw) element strides."""
    n, c, h, w = x.shape
    s = x.stride()
    dense_nchw = s == (c * h * w, h * w, w, 1)
    dense_nhwc = s == (h * w * c, 1, w * c, c)
    if not (dense_nchw or dense_nhwc):
        x = x.contiguous()
        s = x.stride()
    return x, (s[0], s[1], s[3])


def is_channels_last(strides: tuple[int, int, int]) -> bool:
    return strides[1] == 1 and strides[2] != 1


def like(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """t (same shape as x) in x's memory layout, copied only when the layouts differ."""
    return t if t.stride() == x.stride() else torch.empty_like(x, dtype=t.dtype).copy_(t)


def choose_tiling(n: int, c: int, hw: int, channels_last: bool, backward: bool = False) -> Tiling:
    """Tile shape per program: whole planes when they fit, else chunks along H x W."""
    tile, per_thread = ((BACKWARD_TILE, BACKWARD_ELEMENTS_PER_THREAD) if backward
                        else (FORWARD_TILE if hw > 2048 else FORWARD_TILE // 2,
                              FORWARD_ELEMENTS_PER_THREAD))
    hw_pow2 = triton.next_power_of_2(hw)
    c_pow2 = triton.next_power_of_2(c)
    if channels_last:  # channels are contiguous: >= 8 of them keep loads in whole sectors
        block_c = min(c_pow2, 32)
        while block_c > 8 and n * triton.cdiv(c, block_c) < MIN_PROGRAMS:
            block_c //= 2
        block_hw = min(hw_pow2, max(1, tile // block_c))
    else:              # planes are contiguous: several small planes per program
        block_hw = min(hw_pow2, tile)
        block_c = min(c_pow2, max(1, tile // block_hw))
        while block_c > 1 and n * triton.cdiv(c, block_c) < MIN_PROGRAMS:
            block_c //= 2
    num_warps = max(1, min(16, block_c * block_hw // (32 * per_thread)))
    grid = (n * triton.cdiv(c, block_c),)
    return Tiling(block_c, block_hw, block_hw >= hw, num_warps, grid)


@triton.jit
def program_channels(pid, C, BLOCK_C: tl.constexpr):
    """The sample n and the BLOCK_C channel indices that program `pid` owns."""
    num_cblocks = tl.cdiv(C, BLOCK_C)
    return pid // num_cblocks, (pid % num_cblocks) * BLOCK_C + tl.arange(0, BLOCK_C)


@triton.jit
def tile_offsets(n, cols, C, HW, stride_n, stride_c, stride_hw, start, BLOCK_HW: tl.constexpr):
    """Element offsets, bounds mask and spatial indices of the [BLOCK_C, BLOCK_HW] tile of
    sample n, channels `cols`, at spatial offset `start`."""
    hw = start + tl.arange(0, BLOCK_HW)
    offsets = (n.to(tl.int64) * stride_n + cols[:, None].to(tl.int64) * stride_c
               + hw[None, :].to(tl.int64) * stride_hw)
    return offsets, (cols[:, None] < C) & (hw[None, :] < HW), hw


@triton.jit
def chunk_moments(x, bounds, count):
    """Mean and sum of squared deviations of each row of a masked tile (`count` valid columns)."""
    mean = tl.math.div_rn(tl.sum(x, axis=1), count * 1.0)  # IEEE division: exact for count 1
    d = tl.where(bounds, x - mean[:, None], 0.0)
    return mean, tl.sum(d * d, axis=1)


@triton.jit
def merge_moments(mean_a, m2_a, count_a, mean_b, m2_b, count_b):
    """Chan's exact merge of two (mean, M2, count) summaries."""
    total = count_a + count_b
    delta = mean_b - mean_a
    mean = mean_a + delta * tl.math.div_rn(count_b, total)
    m2 = m2_a + m2_b + delta * delta * tl.math.div_rn(count_a * count_b, total)
    return mean, m2, total


@triton.jit
def inverse_std(m2, HW, eps):
    """1 / sqrt(M2 / HW + eps), correctly rounded steps (per row: their cost is nil)."""
    return tl.math.div_rn(1.0, tl.math.sqrt_rn(tl.math.div_rn(m2, HW * 1.0) + eps))


@triton.jit
def row_mean(total, HW):
    return tl.math.div_rn(total, HW * 1.0)


@triton.jit
def plane_statistics(x_ptr, mean_ptr, rstd_ptr, n, cols, C, HW, stride_n, stride_c, stride_hw,
                     eps, BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr,
                     SINGLE_PASS: tl.constexpr):
    """Mean and 1 / sqrt(var + eps) of the planes of sample n, channels `cols`; stores both to
    (N, C) buffers for the backward. Returns (mean, rstd, x): x is the loaded fp32 tile when the
    plane fits in one (SINGLE_PASS), so the caller does not read it again; else unused zeros."""
    if SINGLE_PASS:
        offs, bounds, _ = tile_offsets(n, cols, C, HW, stride_n, stride_c, stride_hw, 0, BLOCK_HW)
        x = tl.load(x_ptr + offs, mask=bounds, other=0.0).to(tl.float32)
        mean, m2 = chunk_moments(x, bounds, HW)
    else:
        x = tl.zeros([BLOCK_C, BLOCK_HW], tl.float32)
        mean = tl.zeros([BLOCK_C], tl.float32)
        m2 = tl.zeros([BLOCK_C], tl.float32)
        count = tl.zeros([BLOCK_C], tl.float32)
        for start in range(0, HW, BLOCK_HW):
            offs, bounds, _ = tile_offsets(n, cols, C, HW, stride_n, stride_c, stride_hw, start,
                                           BLOCK_HW)
            chunk = tl.load(x_ptr + offs, mask=bounds, other=0.0).to(tl.float32)
            valid = tl.zeros([BLOCK_C], tl.float32) + tl.minimum(HW - start, BLOCK_HW)
            mean_b, m2_b = chunk_moments(chunk, bounds, valid)
            mean, m2, count = merge_moments(mean, m2, count, mean_b, m2_b, valid)
    rstd = inverse_std(m2, HW, eps)
    cmask = cols < C
    tl.store(mean_ptr + n * C + cols, mean, mask=cmask)
    tl.store(rstd_ptr + n * C + cols, rstd, mask=cmask)
    return mean, rstd, x


@triton.jit
def activate(z, slope, ACTIVATION: tl.constexpr):
    if ACTIVATION == 1:
        z = tl.maximum(z, 0.0)
    elif ACTIVATION == 2:
        z = tl.where(z >= 0, z, z * slope)
    return z


@triton.jit
def activation_grad(dy, z, slope, ACTIVATION: tl.constexpr):
    """dL/dz from dL/dy for y = act(z)."""
    if ACTIVATION == 1:
        dy = tl.where(z > 0, dy, 0.0)
    elif ACTIVATION == 2:
        dy = tl.where(z >= 0, dy, dy * slope)
    return dy
