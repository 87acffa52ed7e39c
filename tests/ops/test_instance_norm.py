"""Every instance_norm backend against the fp64 reference, forward and every gradient."""
import pytest
import torch

from lomit_fast import ops
from lomit_fast.ops.reference import instance_norm_ref

from .parity import backend_devices, check_op, require

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
SHAPES = [(2, 3, 1, 1), (2, 3, 7, 5), (1, 4, 33, 65), (2, 40, 6, 6)]


def inputs(shape, affine, seed=0, constant=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2 + 0.5
    if constant:
        x[:, ::2] = 3.0  # zero-variance planes
    c = shape[1]
    w = torch.randn(c, generator=g, dtype=torch.float64) if affine else None
    b = torch.randn(c, generator=g, dtype=torch.float64) if affine else None
    return [x, w, b]


def fast(backend, activation, slope=0.2):
    return lambda x, w, b: ops.instance_norm(x, w, b, 1e-5, activation, slope, backend=backend)


def ref(activation, slope=0.2):
    return lambda x, w, b: instance_norm_ref(x, w, b, 1e-5, activation, slope)


@pytest.mark.parametrize("backend, device", backend_devices())
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_parity(backend, device, dtype, shape):
    require(backend, device)
    check_op(fast(backend, "none"), ref("none"), inputs(shape, True), dtype, device)


@pytest.mark.parametrize("backend, device", backend_devices())
@pytest.mark.parametrize("activation", ["none", "relu", "leaky_relu"])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_parity_variants(backend, device, activation, affine, channels_last):
    require(backend, device)
    fmt = torch.channels_last if channels_last else None
    check_op(fast(backend, activation), ref(activation), inputs((2, 5, 9, 7), affine, seed=1),
             torch.float32, device, memory_format=fmt)


@pytest.mark.parametrize("backend, device", backend_devices())
@pytest.mark.parametrize("channels_last", [False, True])
def test_planes_larger_than_one_tile(backend, device, channels_last, monkeypatch):
    require(backend, device)
    if backend == "triton":  # force the looped path: 8x16 tiles over 13x11 planes
        from lomit_fast.kernels import _common
        monkeypatch.setattr(_common, "FORWARD_TILE", 128)
        monkeypatch.setattr(_common, "BACKWARD_TILE", 128)
    fmt = torch.channels_last if channels_last else None
    for dtype in (torch.float32, torch.bfloat16):
        check_op(fast(backend, "leaky_relu"), ref("leaky_relu"), inputs((2, 6, 13, 11), True, 2),
                 dtype, device, memory_format=fmt)


@pytest.mark.parametrize("backend, device", backend_devices())
def test_constant_planes(backend, device):
    require(backend, device)
    check_op(fast(backend, "none"), ref("none"), inputs((2, 4, 5, 5), True, constant=True),
             torch.float32, device)


@pytest.mark.parametrize("backend, device", backend_devices())
def test_large_mean_keeps_precision(backend, device):
    require(backend, device)
    x, w, b = inputs((1, 2, 16, 16), True)
    check_op(fast(backend, "none"), ref("none"), [x + 1e4, w, b], torch.float32, device)


@pytest.mark.parametrize("backend, device", backend_devices())
@pytest.mark.parametrize("channels", [16, 64])
def test_channels_last_common_widths(backend, device, channels):
    """Channel counts with their own CPU code path, planes over several row chunks, an offset
    mean (the blocked fp32 sums must keep the two-pass accuracy)."""
    require(backend, device)
    x, w, b = inputs((1, channels, 33, 35), True, seed=3)
    check_op(fast(backend, "relu"), ref("relu"), [x + 100, w, b], torch.float32, device,
             memory_format=torch.channels_last)
