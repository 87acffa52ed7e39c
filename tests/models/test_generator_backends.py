"""The whole generator on each fast backend matches the reference backend (forward and the
gradients that training needs)."""
import pytest
import torch

from lomit_fast import Generator
from lomit_fast.config import load_config
from lomit_fast.ops import use_backend

from ..ops.parity import backend_devices, require


def tiny_config(image_size):
    cfg = load_config("configs/synthetic_64.yaml").model
    cfg.image_size = image_size
    cfg.content_width, cfg.style_width, cfg.mlp_width = 8, 8, 16
    cfg.mask_attention_width, cfg.content_res_blocks, cfg.decoder_res_blocks = 16, 1, 1
    return cfg


@pytest.fixture
def no_tf32():
    """Full fp32 convolutions on CUDA, so that only the ops under test differ."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("backend, device", backend_devices())
def test_generator_matches_reference(backend, device, no_tf32):
    require(backend, device)
    size = 64 if device == "cuda" else 32  # the interpreter is slow: keep CPU shapes tiny
    torch.manual_seed(0)
    generator = Generator(tiny_config(size)).to(device)
    x = torch.rand(2, 3, size, size, device=device) * 2 - 1
    exemplar = torch.rand(2, 3, size, size, device=device) * 2 - 1

    def run(name):
        generator.zero_grad()
        with use_backend(name):
            out, m_in, m_ex = generator.translate(x, exemplar)
        (out.square().mean() + m_in.mean() + m_ex.mean()).backward()
        grads = {k: p.grad.clone() for k, p in generator.named_parameters()}
        return out.detach(), m_in.detach(), grads

    out_ref, mask_ref, grads_ref = run("reference")
    out_fast, mask_fast, grads_fast = run(backend)
    torch.testing.assert_close(out_fast, out_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mask_fast, mask_ref, atol=1e-4, rtol=1e-4)
    # Relative to each gradient, with a floor from the largest one: a conv bias just before an
    # instance norm has a true gradient of zero, and both paths give rounding noise there.
    floor = 1e-5 * max(g.abs().max().item() for g in grads_ref.values())
    for name, g in grads_ref.items():
        scale = g.abs().max().item()
        err = (grads_fast[name] - g).abs().max().item()
        assert err <= 1e-3 * scale + floor, f"gradient of {name}: error {err:.3g}, scale {scale:.3g}"


@pytest.mark.gpu
def test_generator_bf16_autocast_on_triton():
    """bf16 autocast through the fused ops stays within bf16 error of the fp32 reference."""
    require("triton", "cuda")
    torch.manual_seed(0)
    generator = Generator(load_config("configs/synthetic_64.yaml").model).cuda().eval()
    x = torch.rand(4, 3, 64, 64, device="cuda") * 2 - 1
    with torch.no_grad():
        with use_backend("reference"):
            ref, _, _ = generator.translate(x, x.flip(0))
            with torch.autocast("cuda", dtype=torch.bfloat16):
                ref_bf16, _, _ = generator.translate(x, x.flip(0))
        with use_backend("triton"), torch.autocast("cuda", dtype=torch.bfloat16):
            fast, _, _ = generator.translate(x, x.flip(0))
    err_ref = (ref_bf16.float() - ref).abs().max().item()
    err_fast = (fast.float() - ref).abs().max().item()
    assert err_fast <= 2 * err_ref + 1e-2, (err_fast, err_ref)
