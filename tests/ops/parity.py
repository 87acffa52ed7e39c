"""Parity of fast backends with the fp64 reference, by the rule of lomit_fast.ops.parity."""
import os

import pytest
import torch

from lomit_fast.ops import available_backends, known_backends, unavailable_reason
from lomit_fast.ops.parity import parity_check


REQUIRED = [b for b in os.environ.get("LOMIT_REQUIRE_BACKENDS", "").split(",") if b]


def backend_devices():
    """(backend, device) pairs for every known fast backend, present here or not (a missing one
    is skipped with its reason, so it cannot vanish silently); CUDA pairs carry the gpu marker."""
    params = []
    for name in known_backends():
        if name == "reference":
            continue
        params.append(pytest.param(name, "cpu", id=f"{name}-cpu"))
        params.append(pytest.param(name, "cuda", id=f"{name}-cuda", marks=pytest.mark.gpu))
    return params


def require(backend, device):
    """Skip where `backend` does not run on `device` here; fail instead where CI requires it
    (LOMIT_REQUIRE_BACKENDS=cpp,triton): a backend that failed to build must not pass green."""
    if backend in available_backends(device):
        return
    reason = unavailable_reason(backend) or f"it does not run on {device} tensors here"
    if backend in REQUIRED and device == "cpu":
        pytest.fail(f"backend {backend} is required (LOMIT_REQUIRE_BACKENDS) but unavailable: "
                    f"{reason}")
    pytest.skip(f"backend {backend} on {device}: {reason}")


def assert_parity(name, fast, same_dtype_ref, fp64_ref, dtype):
    err_fast, bound, err_ref = parity_check(fast, same_dtype_ref, fp64_ref, dtype)
    assert err_fast <= bound, f"{name}: error {err_fast:.3g} > bound {bound:.3g} " \
                              f"(same-dtype reference error {err_ref:.3g})"


def run_with_grads(fn, inputs, grad_out):
    """Output and gradients of fn(*inputs) for the floating tensors among inputs."""
    leaves = [t.detach().clone().requires_grad_(True) if isinstance(t, torch.Tensor) else t
              for t in inputs]
    out = fn(*leaves)
    out.backward(grad_out.to(out.dtype))
    return out.detach(), [t.grad for t in leaves if isinstance(t, torch.Tensor)]


def check_op(fast_fn, ref_fn, inputs64, dtype, device, grad_seed=0, memory_format=None):
    """Compare forward and every gradient of fast_fn (on dtype/device) with ref_fn in fp64."""
    def cast(t, first):
        if not isinstance(t, torch.Tensor):
            return t
        t = t.to(device=device, dtype=dtype)
        return t.contiguous(memory_format=memory_format) if first and memory_format else t

    casted = [cast(t, i == 0) for i, t in enumerate(inputs64)]
    g = torch.Generator().manual_seed(grad_seed)
    grad64 = torch.randn(inputs64[0].shape, generator=g, dtype=torch.float64)
    out64, grads64 = run_with_grads(ref_fn, inputs64, grad64)
    out_ref, grads_ref = run_with_grads(ref_fn, casted, grad64.to(device))
    out_fast, grads_fast = run_with_grads(fast_fn, casted, grad64.to(device))
    assert out_fast.dtype == dtype and out_fast.shape == out64.shape
    if memory_format is not None:
        assert out_fast.is_contiguous(memory_format=memory_format)
    assert_parity("forward", out_fast, out_ref, out64, dtype)
    for i, (gf, gr, g64) in enumerate(zip(grads_fast, grads_ref, grads64)):
        assert_parity(f"gradient of input {i}", gf, gr, g64, dtype)
