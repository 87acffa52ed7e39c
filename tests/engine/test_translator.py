"""The Translator: backends agree, exemplar caching is exact, masks are honoured, errors clear."""
import pytest
import torch

from lomit_fast.engine.translator import Translator
from lomit_fast.models.checkpoint import load_generator
from lomit_fast.ops import BackendError, available_backends, use_backend
from lomit_fast.ops.parity import parity_check


def inputs(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def eager(checkpoint):
    return Translator.from_checkpoint(checkpoint, backend="reference")


def test_exemplar_cache_is_exact(eager):
    # The same arithmetic; convolution kernels may round differently for other batch sizes.
    x, exemplar = inputs(), inputs(1, seed=1)
    plain = eager.translate(x, exemplar)
    cached = eager.translate(x, eager.cache_exemplar(exemplar))
    for a, b in zip(plain, cached):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    mask_ex = torch.rand(1, 1, 32, 32)
    plain = eager.translate(x, exemplar, mask_ex=mask_ex)
    cached = eager.translate(x, eager.cache_exemplar(exemplar, mask_ex))
    torch.testing.assert_close(plain[0], cached[0], rtol=0, atol=1e-5)


def test_zero_input_mask_gives_the_mask_zero_reference(eager):
    x, gen = inputs(), eager.generator
    zero = torch.zeros(3, 1, 8, 8)
    out, m_in, _ = eager.translate(x, inputs(1, seed=2), mask_in=zero)
    with torch.no_grad(), use_backend("reference"):
        c = gen.content(x)
        expected = gen.decode(c, zero, torch.zeros(3, gen.cfg.style_dim),
                              gen.style_background(x, zero))
    assert torch.equal(m_in, zero)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_cpp_backend_agrees_with_eager(checkpoint, eager):
    fast = Translator.from_checkpoint(checkpoint, backend="cpp")
    x, exemplar = inputs(2), inputs(2, seed=1)
    for a, b in zip(fast.translate(x, exemplar), eager.translate(x, exemplar)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_triton_backend_agrees_with_eager(checkpoint, eager):
    try:
        fast = Translator.from_checkpoint(checkpoint, backend="triton")
    except BackendError as e:
        pytest.skip(str(e))
    x, exemplar = inputs(2), inputs(2, seed=1)
    torch.testing.assert_close(fast.translate(x, exemplar)[0], eager.translate(x, exemplar)[0],
                               atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_compile_backend_agrees_with_eager(checkpoint, eager):
    compiled = Translator.from_checkpoint(checkpoint, backend="compile")
    x, exemplar = inputs(3), inputs(3, seed=1)  # padded to the batch bucket of 4
    torch.testing.assert_close(compiled.translate(x, exemplar)[0],
                               eager.translate(x, exemplar)[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("backend", ["native", "cpp"])
def test_bf16_keeps_the_parity_rule(checkpoint, backend):
    """A fast backend at bf16 is within twice the reference's own bf16 error of the fp64
    model (plus the bf16 floor), the rule every fast path is held to."""
    if backend not in available_backends("cpu"):
        pytest.skip(f"backend {backend} is not available here")
    x, exemplar = inputs(2), inputs(2, seed=1)
    exact = Translator(load_generator(checkpoint).double(), "reference")
    with torch.no_grad():
        fp64 = exact.generator.translate(x.double(), exemplar.double())[0]
    reference = Translator.from_checkpoint(checkpoint, backend="reference", precision="bf16")
    fast = Translator.from_checkpoint(checkpoint, backend=backend, precision="bf16")
    err, bound, _ = parity_check(fast.translate(x, exemplar)[0],
                                 reference.translate(x, exemplar)[0], fp64, torch.bfloat16)
    assert err <= bound, (err, bound)


@pytest.mark.parametrize("backend, message", [
    ("torchscript", "needs an exported .pt file"), ("aoti", "needs an exported .pt2 file"),
    ("tensorrt", "TensorRT"), ("warp", "unknown backend 'warp'"),
])
def test_unavailable_backends_say_why(checkpoint, backend, message):
    with pytest.raises(BackendError, match=message):
        Translator.from_checkpoint(checkpoint, backend=backend)


def test_bad_precision(checkpoint):
    with pytest.raises(ValueError, match="precision must be one of"):
        Translator.from_checkpoint(checkpoint, precision="int8")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        Translator.from_checkpoint(checkpoint, precision="fp16")


@pytest.mark.parametrize("backend", ["reference", "compile"])
def test_out_of_range_images_and_nan_masks_are_refused(checkpoint, backend):
    t = Translator.from_checkpoint(checkpoint, backend=backend)
    x = inputs(2)
    for bad, fragment in ((x * 1e3, "x values must lie in"), (x * float("nan"), "x values")):
        with pytest.raises(ValueError, match=fragment):
            t.translate(bad, inputs(1, seed=1))
    with pytest.raises(ValueError, match="exemplar values must lie in"):
        t.translate(x, inputs(1, seed=1) * 255)
    nan_mask = torch.full((2, 1, 32, 32), float("nan"))
    with pytest.raises(ValueError, match=r"mask_in values must lie in \[0, 1\]"):
        t.translate(x, inputs(1, seed=1), mask_in=nan_mask)
    with pytest.raises(ValueError, match="must be a floating tensor"):
        t.translate((x * 127).to(torch.int8), inputs(1, seed=1))


def test_fp64_inputs_translate_like_fp32(eager):
    x, exemplar = inputs(2), inputs(1, seed=1)
    for a, b in zip(eager.translate(x.double(), exemplar.double()), eager.translate(x, exemplar)):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_graph_backends_check_their_inputs(checkpoint, exported):
    t = Translator.from_checkpoint(checkpoint, backend="onnxruntime", model_file=str(exported))
    with pytest.raises(ValueError, match="x values must lie in"):
        t.translate(inputs(2) * 10, inputs(1, seed=1))
    with pytest.raises(ValueError, match="mask_ex values must lie in"):
        t.translate(inputs(2), inputs(1, seed=1), mask_ex=torch.full((1, 1, 8, 8), 2.0))
