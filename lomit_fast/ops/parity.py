"""The parity rule every fast path is held to (flash-attention's): its error against the fp64
reference may be at most twice the error of the reference run in the same dtype, plus a small
floor scaled by the magnitude of the result. Tests and benchmarks both check with it."""
from __future__ import annotations

import torch
from torch import Tensor

FLOOR = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 4e-3}


def parity_check(fast: Tensor, same_dtype_ref: Tensor, fp64_ref: Tensor,
                 dtype: torch.dtype) -> tuple[float, float, float]:
    """(error of fast, bound, error of the same-dtype reference), all max-abs against fp64."""
    fp64_ref = fp64_ref.double().cpu()
    err_fast = (fast.double().cpu() - fp64_ref).abs().max().item()
    err_ref = (same_dtype_ref.double().cpu() - fp64_ref).abs().max().item()
    bound = 2 * err_ref + FLOOR[dtype] * max(1.0, fp64_ref.abs().max().item())
    return err_fast, bound, err_ref
