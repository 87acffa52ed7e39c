"""The registered torch ops (lomit::<stem>): schema, fake implementation, autograd."""
import pytest
import torch

from lomit_fast.ops import available_backends

from .parity import backend_devices


def triton_device(device):
    if "triton" not in available_backends(device):
        pytest.skip(f"triton backend does not run on {device} here")
    from lomit_fast.ops import triton_ops  # registers the ops
    return triton_ops


def hain_args(device, requires_grad):
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g).to(device).requires_grad_(requires_grad)  # noqa
    mask = torch.rand(2, 1, 5, 6, generator=g).to(device).requires_grad_(requires_grad)
    return (r(2, 3, 5, 6), mask, r(2, 3), r(2, 3), r(2, 3), r(2, 3), 1e-5)


TRITON_DEVICES = [p for p in backend_devices() if p.values[0] == "triton"]


@pytest.mark.parametrize("backend, device", TRITON_DEVICES)
@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck_hain(backend, device, requires_grad):
    triton_device(device)
    torch.library.opcheck(torch.ops.lomit.hain.default, hain_args(device, requires_grad),
                          test_utils=("test_schema", "test_faketensor",
                                      "test_autograd_registration"))


@pytest.mark.parametrize("backend, device", TRITON_DEVICES)
@pytest.mark.parametrize("affine", [False, True])
def test_opcheck_instance_norm(backend, device, affine):
    triton_device(device)
    x = torch.randn(2, 3, 5, 6, device=device, requires_grad=True)
    w = torch.randn(3, device=device, requires_grad=True) if affine else None
    b = torch.randn(3, device=device, requires_grad=True) if affine else None
    torch.library.opcheck(torch.ops.lomit.instance_norm.default,
                          (x, w, b, 1e-5, "leaky_relu", 0.2),
                          test_utils=("test_schema", "test_faketensor",
                                      "test_autograd_registration"))


@pytest.mark.gpu
@pytest.mark.parametrize("op", ["hain", "instance_norm"])
def test_opcheck_compile_cuda(op):
    """The full opcheck, aot_dispatch included, where Triton compiles (not under the interpreter)."""
    triton_device("cuda")
    if op == "hain":
        args = hain_args("cuda", True)
    else:
        args = (torch.randn(2, 3, 5, 6, device="cuda", requires_grad=True),
                torch.randn(3, device="cuda", requires_grad=True), None, 1e-5, "relu", 0.01)
    torch.library.opcheck(getattr(torch.ops.lomit, op).default, args)
