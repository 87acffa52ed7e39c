"""The registered torch ops of both libraries, lomit:: (C++) and lomit_triton:: (Triton): one
schema per stem, fake implementations, autograd."""
import pytest
import torch

from lomit_fast.ops import available_backends

from .parity import backend_devices

# backend -> the op library that serves it
NAMESPACES = {"cpp": "lomit", "triton": "lomit_triton"}
OPS = ("instance_norm", "instance_norm_backward", "hain", "hain_backward")


def library(backend, device):
    """The torch.ops namespace of `backend`, its ops registered; skip where it cannot run."""
    if backend not in available_backends(device):
        pytest.skip(f"backend {backend} does not run on {device} here")
    from lomit_fast.ops import cpp_ops, triton_ops  # noqa: F401  (register the ops)
    return getattr(torch.ops, NAMESPACES[backend])


def hain_args(device, requires_grad):
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g).to(device).requires_grad_(requires_grad)  # noqa
    mask = torch.rand(2, 1, 5, 6, generator=g).to(device).requires_grad_(requires_grad)
    return (r(2, 3, 5, 6), mask, r(2, 3), r(2, 3), r(2, 3), r(2, 3), 1e-5)


OP_BACKENDS = [p for p in backend_devices() if p.values[0] in NAMESPACES]
QUICK = ("test_schema", "test_faketensor", "test_autograd_registration")
FULL = QUICK + ("test_aot_dispatch_static", "test_aot_dispatch_dynamic")


def test_both_libraries_share_one_schema_per_op():
    for backend in NAMESPACES:
        if backend not in available_backends():
            pytest.skip(f"backend {backend} is not available here")
    cpp, tri = library("cpp", "cpu"), torch.ops.lomit_triton
    for op in OPS:
        a, b = str(getattr(cpp, op).default._schema), str(getattr(tri, op).default._schema)
        assert a.split("::", 1)[1] == b.split("::", 1)[1], (a, b)


@pytest.mark.parametrize("backend, device", OP_BACKENDS)
@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck_hain(backend, device, requires_grad):
    ops = library(backend, device)
    tests = FULL if backend == "cpp" else QUICK  # aot_dispatch needs compiled Triton
    torch.library.opcheck(ops.hain.default, hain_args(device, requires_grad), test_utils=tests)


@pytest.mark.parametrize("backend, device", OP_BACKENDS)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_opcheck_instance_norm(backend, device, affine, channels_last):
    ops = library(backend, device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 3, 5, 6, device=device).contiguous(memory_format=fmt).requires_grad_()
    w = torch.randn(3, device=device, requires_grad=True) if affine else None
    b = torch.randn(3, device=device, requires_grad=True) if affine else None
    tests = FULL if backend == "cpp" else QUICK
    torch.library.opcheck(ops.instance_norm.default, (x, w, b, 1e-5, "leaky_relu", 0.2),
                          test_utils=tests)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpp_statistics_dtype(dtype):
    """The C++ kernels keep fp64 statistics for fp64 input (the fakes say the same)."""
    ops = library("cpp", "cpu")
    _, mean, rstd = ops.hain(*[a.to(dtype) if isinstance(a, torch.Tensor) else a
                               for a in hain_args("cpu", False)])
    assert mean.dtype == rstd.dtype == dtype


def test_cpp_op_errors_name_the_argument():
    ops = library("cpp", "cpu")
    c, mask, *styles, eps = hain_args("cpu", False)
    with pytest.raises(RuntimeError, match="mu_f must have shape"):
        ops.hain(c, mask, styles[0][:, :2], *styles[1:], eps)
    with pytest.raises(RuntimeError, match="mask must have shape"):
        ops.hain(c, mask[:, :, :4], *styles, eps)
    with pytest.raises(RuntimeError, match="c must be 4-D"):
        ops.hain(c[0], mask, *styles, eps)
    with pytest.raises(RuntimeError, match="activation must be one of"):
        ops.instance_norm(c, None, None, 1e-5, "gelu", 0.0)
    with pytest.raises(RuntimeError, match="weight must have shape"):
        ops.instance_norm(c, torch.ones(4), None, 1e-5, "none", 0.0)


@pytest.mark.gpu
@pytest.mark.parametrize("op", ["hain", "instance_norm"])
def test_opcheck_compile_cuda(op):
    """The full opcheck, aot_dispatch included, where Triton compiles (not under the
    interpreter)."""
    ops = library("triton", "cuda")
    if op == "hain":
        args = hain_args("cuda", True)
    else:
        args = (torch.randn(2, 3, 5, 6, device="cuda", requires_grad=True),
                torch.randn(3, device="cuda", requires_grad=True), None, 1e-5, "relu", 0.01)
    torch.library.opcheck(getattr(ops, op).default, args)
