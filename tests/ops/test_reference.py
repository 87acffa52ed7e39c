"""The op spec itself: formulas checked by hand and against torch's own norms."""
import math

import pytest
import torch
import torch.nn.functional as F

from lomit_fast.ops.reference import hain_ref, instance_norm_ref, layer_norm2d_ref


def adain(c, mu, sigma, eps=1e-5):
    return F.instance_norm(c, eps=eps) * sigma[:, :, None, None] + mu[:, :, None, None]


def random_hain_inputs(n=2, c=3, h=5, w=7, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    return (r(n, c, h, w), torch.rand(n, 1, h, w, generator=g, dtype=dtype),
            r(n, c), r(n, c).abs() + 0.1, r(n, c), r(n, c).abs() + 0.1)


def test_hain_mask_one_is_adain_with_foreground_style():
    c, m, mu_f, s_f, mu_b, s_b = random_hain_inputs()
    out = hain_ref(c, torch.ones_like(m), mu_f, s_f, mu_b, s_b)
    torch.testing.assert_close(out, adain(c, mu_f, s_f))


def test_hain_mask_zero_is_adain_with_background_style():
    c, m, mu_f, s_f, mu_b, s_b = random_hain_inputs()
    out = hain_ref(c, torch.zeros_like(m), mu_f, s_f, mu_b, s_b)
    torch.testing.assert_close(out, adain(c, mu_b, s_b))


def test_hain_by_hand():
    # One plane [[1, 2], [3, 4]]: mean 2.5, biased var 1.25, eps 0 -> c_hat = (x - 2.5) / sqrt(1.25).
    c = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)
    m = torch.tensor([[[[1.0, 0.0], [0.5, 0.25]]]], dtype=torch.float64)
    one = lambda v: torch.tensor([[v]], dtype=torch.float64)  # noqa: E731
    out = hain_ref(c, m, one(1.0), one(2.0), one(-1.0), one(0.5), eps=0.0)
    k = 1 / math.sqrt(1.25)
    expected = [[2 * (-1.5 * k) + 1,        # m = 1: sigma_f c_hat + mu_f
                 0.5 * (-0.5 * k) - 1],     # m = 0: sigma_b c_hat + mu_b
                [1.25 * (0.5 * k) + 0.0,    # m = 0.5: gamma 1.25, beta 0
                 0.875 * (1.5 * k) - 0.5]]  # m = 0.25: gamma 0.875, beta -0.5
    torch.testing.assert_close(out[0, 0], torch.tensor(expected, dtype=torch.float64))


def test_hain_gradcheck():
    inputs = [t.requires_grad_() for t in random_hain_inputs(n=2, c=2, h=3, w=4)]
    assert torch.autograd.gradcheck(lambda *a: hain_ref(*a), inputs)


@pytest.mark.parametrize("activation", ["none", "relu", "leaky_relu"])
def test_instance_norm_gradcheck(activation):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: instance_norm_ref(x, w, b, activation=activation, negative_slope=0.2),
        (x, w, b))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("affine", [False, True])
def test_instance_norm_matches_torch(dtype, affine):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 4, 9, 11, generator=g, dtype=dtype) * 3 + 2
    w = torch.randn(4, generator=g, dtype=dtype) if affine else None
    b = torch.randn(4, generator=g, dtype=dtype) if affine else None
    torch.testing.assert_close(instance_norm_ref(x, w, b), F.instance_norm(x, weight=w, bias=b))


def test_instance_norm_fused_activations():
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    y = F.instance_norm(x)
    torch.testing.assert_close(instance_norm_ref(x, activation="relu"), F.relu(y))
    torch.testing.assert_close(instance_norm_ref(x, activation="leaky_relu", negative_slope=0.1),
                               F.leaky_relu(y, 0.1))


def test_instance_norm_low_precision_accumulates_in_fp32():
    x = (torch.randn(2, 3, 16, 16) * 4 + 1).to(torch.bfloat16)
    out = instance_norm_ref(x)
    assert out.dtype == torch.bfloat16
    expected = F.instance_norm(x.double()).to(torch.bfloat16)
    # Exact up to one bf16 rounding step of the fp32 result.
    assert (out.double() - expected.double()).abs().max() <= 2 ** -7 * expected.abs().max()


def test_instance_norm_large_mean_does_not_cancel():
    # E[x^2] - E[x]^2 would lose every digit here (1e8 - 1e8 in fp32); two passes keep the
    # error at the rounding of the fp32 mean (~1e-3 of the unit-variance output).
    x = (torch.randn(1, 2, 32, 32, generator=torch.Generator().manual_seed(0)) + 1e4)
    out = instance_norm_ref(x)
    torch.testing.assert_close(out.double(), F.instance_norm(x.double()), atol=1e-2, rtol=0)


def test_layer_norm2d_matches_group_norm():
    x = torch.randn(2, 6, 5, 5, dtype=torch.float64)
    w, b = torch.randn(6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    torch.testing.assert_close(layer_norm2d_ref(x, w, b, activation="relu"),
                               F.relu(F.group_norm(x, 1, w, b)))


def test_reference_is_scriptable():
    scripted = torch.jit.script(hain_ref)
    args = random_hain_inputs(dtype=torch.float32)
    torch.testing.assert_close(scripted(*args), hain_ref(*args))
    torch.jit.script(instance_norm_ref)
