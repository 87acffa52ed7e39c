"""Every layer_norm2d backend against the fp64 reference, forward and every gradient.

A backend without its own layer_norm2d serves the op with the reference (the registry's rule);
those cases check that the fallback is the reference itself."""
import pytest
import torch

from lomit_fast import ops
from lomit_fast.ops import backends
from lomit_fast.ops.reference import layer_norm2d_ref

from .parity import backend_devices, check_op, require

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
SHAPES = [(2, 3, 1, 1), (2, 3, 7, 5), (1, 4, 33, 65), (2, 40, 6, 6)]


def inputs(shape, affine=True, seed=0, offset=0.5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2 + offset
    c = shape[1]
    w = torch.randn(c, generator=g, dtype=torch.float64) if affine else None
    b = torch.randn(c, generator=g, dtype=torch.float64) if affine else None
    return [x, w, b]


def fast(backend, activation="none", slope=0.2):
    return lambda x, w, b: ops.layer_norm2d(x, w, b, 1e-5, activation, slope, backend=backend)


def ref(activation="none", slope=0.2):
    return lambda x, w, b: layer_norm2d_ref(x, w, b, 1e-5, activation, slope)


def require_kernel(backend, device):
    require(backend, device)
    if backends.implementation("layer_norm2d", backend, device) is layer_norm2d_ref:
        pytest.skip(f"backend {backend} serves layer_norm2d with the reference itself")


@pytest.mark.parametrize("backend, device", backend_devices())
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_parity(backend, device, dtype, shape):
    require_kernel(backend, device)
    check_op(fast(backend), ref(), inputs(shape), dtype, device)


@pytest.mark.parametrize("backend, device", backend_devices())
@pytest.mark.parametrize("activation", ["none", "relu", "leaky_relu"])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_parity_variants(backend, device, activation, affine, channels_last):
    require_kernel(backend, device)
    fmt = torch.channels_last if channels_last else None
    check_op(fast(backend, activation), ref(activation), inputs((2, 5, 9, 7), affine, seed=1),
             torch.float32, device, memory_format=fmt)


@pytest.mark.parametrize("backend, device", backend_devices())
def test_large_mean_keeps_precision(backend, device):
    require_kernel(backend, device)
    check_op(fast(backend), ref(), inputs((1, 3, 16, 16), offset=1e4), torch.float32, device)


def test_formula_by_hand():
    """One sample, two channels of two pixels: mean and biased variance over all four values."""
    x = torch.tensor([[[[1.0, 3.0]], [[5.0, 7.0]]]], dtype=torch.float64)   # mean 4, var 5
    w, b = torch.tensor([2.0, 1.0], dtype=torch.float64), torch.tensor([0.0, -1.0],
                                                                        dtype=torch.float64)
    expected = torch.tensor([[[[-3, -1]], [[1, 3]]]], dtype=torch.float64) / 5 ** 0.5
    expected = expected * w[:, None, None] + b[:, None, None]
    torch.testing.assert_close(layer_norm2d_ref(x, w, b, eps=0.0), expected)
