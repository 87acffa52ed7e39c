"""The LOMIT networks: shapes, mask ranges, batch independence, user masks, bad input."""
import pytest
import torch

from lomit_fast import Critic, Generator, ModelConfig
from lomit_fast.config import load_config


def small_config(image_size=64):
    cfg = load_config("configs/synthetic_64.yaml").model
    cfg.image_size = image_size
    return cfg


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return Generator(small_config()).double().eval()


def images(n, size=64, seed=0, dtype=torch.float64):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed),
                      dtype=dtype) * 2 - 1


@pytest.mark.parametrize("cfg", [small_config(64), small_config(128), ModelConfig()],
                         ids=["synthetic64", "synthetic@128", "celeba128"])
def test_shapes(cfg):
    torch.manual_seed(0)
    g, d = Generator(cfg).eval(), Critic(cfg)
    x = images(2, cfg.image_size, dtype=torch.float32)
    with torch.no_grad():
        out, m_in, m_ex = g.translate(x, images(2, cfg.image_size, 1, torch.float32))
        realness, logits = d(out)
    s = cfg.content_size
    assert out.shape == x.shape and m_in.shape == m_ex.shape == (2, 1, s, s)
    assert g.content(x).shape == (2, cfg.content_channels, s, s)
    assert g.style_foreground(x, m_in).shape == (2, cfg.style_dim)
    assert logits.shape == (2, cfg.n_attributes) and realness.shape[:2] == (2, 1)
    assert out.abs().max() <= 1
    for m in (m_in, m_ex):
        assert 0 <= m.min() and m.max() <= 1


def test_batch_independence(generator):
    x, ex = images(3), images(3, seed=1)
    with torch.no_grad():
        out, m_in, _ = generator.translate(x, ex)
        x2, ex2 = x.clone(), ex.clone()
        x2[1:], ex2[1:] = images(2, seed=5), images(2, seed=6)
        out2, m_in2, _ = generator.translate(x2, ex2)
    torch.testing.assert_close(out2[0], out[0])
    torch.testing.assert_close(m_in2[0], m_in[0])


def test_pairs_in_one_batch_equal_separate_calls(generator):
    """contents / masks / translation_styles run input and exemplar as one batch: the same
    per-sample math as the method's separate calls (fp64, to rounding), gradients included."""
    x, ex = images(2).requires_grad_(), images(2, seed=1)
    c_in, c_ex = generator.contents(x, ex)
    torch.testing.assert_close(c_in, generator.content(x))
    torch.testing.assert_close(c_ex, generator.content(ex))
    m_in, m_ex = generator.masks(c_in, c_ex)
    torch.testing.assert_close(m_in, generator.mask(c_in, c_ex))
    torch.testing.assert_close(m_ex, generator.mask(c_ex, c_in))
    s_f, s_b = generator.translation_styles(ex, m_ex, x, m_in)
    separate_f = generator.style_foreground(ex, m_ex)
    separate_b = generator.style_background(x, m_in)
    torch.testing.assert_close(s_f, separate_f)
    torch.testing.assert_close(s_b, separate_b)
    grad, = torch.autograd.grad((s_f.sum() + s_b.sum()), x, retain_graph=True)
    expected, = torch.autograd.grad((separate_f.sum() + separate_b.sum()), x)
    torch.testing.assert_close(grad, expected)


def test_given_masks_replace_predicted_ones(generator):
    x, ex = images(2), images(2, seed=1)
    s = generator.cfg.content_size
    with torch.no_grad():
        half = torch.zeros(2, 1, s, s, dtype=torch.float64)
        half[..., : s // 2] = 1
        out_a, m_in, _ = generator.translate(x, ex, mask_in=half)
        out_b, _, _ = generator.translate(x, ex, mask_in=1 - half)
        full_res = torch.ones(2, 1, 64, 64, dtype=torch.float64)
        _, m_full, m_ex = generator.translate(x, ex, mask_in=full_res, mask_ex=full_res[:1])
    torch.testing.assert_close(m_in, half)
    torch.testing.assert_close(m_full, torch.ones_like(half))  # image-res mask pooled down
    torch.testing.assert_close(m_ex, torch.ones_like(half))    # batch of one broadcast
    assert (out_a - out_b).abs().max() > 1e-3


def test_zero_input_mask_ignores_the_exemplar(generator):
    # m = 0 everywhere: HAIN uses only the input's own background style, so the exemplar
    # cannot change the output.
    x = images(2)
    zero = torch.zeros(2, 1, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        out_a, _, _ = generator.translate(x, images(2, seed=1), mask_in=zero)
        out_b, _, _ = generator.translate(x, images(2, seed=2), mask_in=zero)
        c = generator.content(x)
        own = generator.decode(c, zero, torch.zeros(2, 8, dtype=torch.float64),
                               generator.style_background(x, zero))
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(out_a, own)


def test_style_path_is_alive_at_init(generator):
    # Kaiming init: AdaIN parameters vary across inputs by far more than 1e-4 (method.md).
    x = images(8, seed=3)
    with torch.no_grad():
        mu, sigma = generator.style_affine(generator.mlp_foreground,
                                           generator.style_foreground(x, torch.ones(8, 1, 16, 16,
                                                                      dtype=torch.float64)))
    assert mu.std(dim=0).mean() > 1e-2 and sigma.std(dim=0).mean() > 1e-2


@pytest.mark.parametrize("kwargs, message", [
    (dict(x=images(2)[:, :1]), r"x must have shape \(N, 3, H, W\)"),
    (dict(exemplar=images(2, size=32)), "exemplar size"),
    (dict(x=(images(2) * 100).long()), "x must be a floating tensor"),
    (dict(exemplar=images(3)), "exemplar batch size 3 must be 1 or 2"),
    (dict(mask_in=torch.rand(2, 1, 8, 8, dtype=torch.float64)), "mask_in must be at content"),
    (dict(mask_ex=torch.rand(2, 2, 16, 16, dtype=torch.float64)), r"mask_ex must have shape"),
    (dict(mask_in=torch.full((2, 1, 16, 16), 2.0, dtype=torch.float64)), r"lie in \[0, 1\]"),
])
def test_translate_bad_input(generator, kwargs, message):
    args = dict(x=images(2), exemplar=images(2, seed=1))
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        generator.translate(**args)
