"""Every hain backend against the fp64 reference, forward and every gradient."""
import pytest
import torch

from lomit_fast import ops
from lomit_fast.ops.reference import hain_ref

from .parity import assert_parity, backend_devices, check_op, require

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
SHAPES = [(2, 3, 1, 1), (2, 3, 7, 5), (1, 4, 33, 65), (2, 40, 6, 6)]


def inputs(shape, mask="random", seed=0):
    n, c, h, w = shape
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    m = {"random": torch.rand(n, 1, h, w, generator=g, dtype=torch.float64),
         "zeros": torch.zeros(n, 1, h, w, dtype=torch.float64),
         "ones": torch.ones(n, 1, h, w, dtype=torch.float64)}[mask]
    return [r(n, c, h, w) * 2 + 0.5, m, r(n, c), r(n, c).abs() + 0.1, r(n, c), r(n, c).abs() + 0.1]


def fast(backend):
    return lambda *a: ops.hain(*a, eps=1e-5, backend=backend)


@pytest.mark.parametrize("backend, device", backend_devices())
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_parity(backend, device, dtype, shape):
    require(backend, device)
    check_op(fast(backend), hain_ref, inputs(shape), dtype, device)


@pytest.mark.parametrize("backend, device", backend_devices())
@pytest.mark.parametrize("mask", ["random", "zeros", "ones"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_parity_masks_and_layouts(backend, device, mask, channels_last):
    require(backend, device)
    fmt = torch.channels_last if channels_last else None
    check_op(fast(backend), hain_ref, inputs((2, 5, 9, 7), mask, seed=1), torch.float32, device,
             memory_format=fmt)


@pytest.mark.parametrize("backend, device", backend_devices())
@pytest.mark.parametrize("channels_last", [False, True])
def test_planes_larger_than_one_tile(backend, device, channels_last, monkeypatch):
    require(backend, device)
    if backend == "triton":
        from lomit_fast.kernels import _common
        monkeypatch.setattr(_common, "FORWARD_TILE", 128)
        monkeypatch.setattr(_common, "BACKWARD_TILE", 128)
    fmt = torch.channels_last if channels_last else None
    for dtype in (torch.float32, torch.bfloat16):
        check_op(fast(backend), hain_ref, inputs((2, 6, 13, 11), seed=2), dtype, device,
                 memory_format=fmt)


@pytest.mark.parametrize("backend, device", backend_devices())
def test_constant_planes(backend, device):
    require(backend, device)
    args = inputs((2, 4, 5, 5))
    args[0][:, ::2] = -2.0
    check_op(fast(backend), hain_ref, args, torch.float32, device)


@pytest.mark.parametrize("backend, device", backend_devices())
def test_mixed_dtypes_and_broadcast_mask(backend, device):
    """bf16 content with fp32 mask and styles; a batch-1 mask expanded over the batch."""
    require(backend, device)
    c, m, *styles = inputs((3, 4, 6, 6), seed=3)
    c = c.to(device=device, dtype=torch.bfloat16)
    m = m[:1].to(device).float().expand(3, 1, 6, 6)
    styles = [s.to(device).float() for s in styles]
    out = ops.hain(c, m, *styles, backend=backend)
    expected = hain_ref(c, m, *styles)  # the reference on the same mixed dtypes
    exact = hain_ref(c.double(), m.double(), *(s.double() for s in styles))
    assert out.dtype == torch.bfloat16
    assert_parity("mixed dtypes", out, expected, exact, torch.bfloat16)


@pytest.mark.parametrize("backend, device", backend_devices())
@pytest.mark.parametrize("channels", [16, 64])
def test_channels_last_common_widths(backend, device, channels):
    """Channel counts with their own CPU code path, planes over several row chunks, an offset
    mean (the blocked fp32 sums must keep the two-pass accuracy)."""
    require(backend, device)
    c, *rest = inputs((1, channels, 33, 35), seed=3)
    check_op(fast(backend), hain_ref, [c + 100, *rest], torch.float32, device,
             memory_format=torch.channels_last)
