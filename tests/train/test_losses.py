"""Each loss on a case with a known value; R1 reaches the mask network only."""
import torch

from lomit_fast import Critic, Generator
from lomit_fast.config import load_config
from lomit_fast.train import losses


def tiny_config():
    cfg = load_config("configs/synthetic_64.yaml")
    cfg.model.image_size = 32
    cfg.model.critic_layers = 4
    return cfg


def test_identical_inputs_give_zero_reconstruction():
    x = torch.randn(2, 3, 8, 8)
    assert losses.l1(x, x.clone()) == 0
    assert losses.l1(x, x + 0.5) == 0.5


def test_wgan_terms():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([1.0, -1.0])
    assert losses.wgan_critic(real, fake) == 0.0 - 3.0
    assert losses.wgan_generator(fake) == 0.0


class LinearCritic(torch.nn.Module):
    """D(x) = <w, x> with ||w|| = 1: its gradient norm is 1 everywhere."""

    def __init__(self, shape):
        super().__init__()
        w = torch.randn(shape)
        self.w = w / w.norm()

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1, keepdim=True), None


def test_gradient_penalty_of_unit_gradient_critic_is_zero():
    critic = LinearCritic((3, 8, 8))
    gp = losses.gradient_penalty(critic, torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8))
    assert abs(gp.item()) < 1e-10
    doubled = LinearCritic((3, 8, 8))
    doubled.w = critic.w * 2  # gradient norm 2: penalty (2 - 1)^2 = 1
    gp = losses.gradient_penalty(doubled, torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8))
    assert abs(gp.item() - 1) < 1e-6


def test_attribute_bce_by_hand():
    logits, labels = torch.zeros(2, 3), torch.tensor([[1.0, 0, 1], [0, 0, 0]])
    # log(2) per attribute, summed over 3 attributes, mean over the batch.
    assert abs(losses.attribute_bce(logits, labels).item() - 3 * torch.log(torch.tensor(2.0))) < 1e-6


def test_mask_similarity_by_hand():
    content = torch.zeros(1, 2, 1, 2)
    content[0, 0] = 1.0                      # both positions point the same way: S = 1
    mask = torch.tensor([[[[1.0, 0.25]]]])
    # mean over the 2 x 2 pairs of S_ij |m_i - m_j| = (0 + 0.75 + 0.75 + 0) / 4
    assert abs(losses.mask_similarity(mask, content).item() - 0.375) < 1e-6
    content[0, 0, 0, 1], content[0, 1, 0, 1] = -1.0, 0.0   # opposite directions: S clamped to 0
    assert losses.mask_similarity(mask, content).item() == 0


def test_mask_sparsity_sums_the_mask_means():
    means = [1.0, 0.0, 0.25, 0.5, 0.75, 0.5]
    masks = [torch.full((2, 1, 4, 4), m) for m in means]
    assert losses.mask_sparsity(*masks).item() == 3.0  # the authors' sum, not the mean 0.5


def test_r1_and_r2_cover_the_six_masks():
    cfg = tiny_config()
    torch.manual_seed(0)
    gen, critic = Generator(cfg.model), Critic(cfg.model)
    x_a, x_b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        _, terms, _ = losses.generator_objective(gen, critic, x_a, x_b, torch.ones(2, 6),
                                                 torch.zeros(2, 6), cfg.loss)
        # By hand: m_A, m_B, m_AA, m_BB and the masks m_AB, m_BA of the two translations.
        c_a, c_b = gen.content(x_a), gen.content(x_b)
        m_a, m_b = gen.mask(c_a, c_b), gen.mask(c_b, c_a)
        s_fa, s_ba = gen.styles(x_a, m_a)
        s_fb, s_bb = gen.styles(x_b, m_b)
        c_ab = gen.content(gen.decode(c_a, m_a, s_fb, s_ba))
        c_ba = gen.content(gen.decode(c_b, m_b, s_fa, s_bb))
        pairs = [(c_a, c_b), (c_b, c_a), (c_a, c_a), (c_b, c_b), (c_ab, c_ba), (c_ba, c_ab)]
        masks = [gen.mask(c, p) for c, p in pairs]
        r1 = sum(losses.mask_similarity(m, c) for m, (c, _) in zip(masks, pairs))
        r2 = sum(m.mean() for m in masks)
    torch.testing.assert_close(terms["mask_similarity"], r1, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(terms["mask_sparsity"], r2, rtol=1e-4, atol=1e-6)
    two = losses.mask_similarity(masks[0], c_a) + losses.mask_similarity(masks[1], c_b)
    assert r1 > two * 1.5  # the four other masks count: at the same weight R1 is ~3x stronger


def test_r1_reaches_the_mask_network_only():
    cfg = tiny_config()
    torch.manual_seed(0)
    gen, critic = Generator(cfg.model), Critic(cfg.model)
    x_a, x_b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    weights = type(cfg.loss)(**{k: 0.0 for k in cfg.loss.__dict__})
    weights.mask_similarity = 1.0
    total, terms, _ = losses.generator_objective(gen, critic, x_a, x_b, torch.ones(2, 6),
                                                 torch.zeros(2, 6), weights)
    total.backward()
    assert terms["mask_similarity"] > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.mask_net.parameters())
    for module in (gen.content_encoder, gen.style_encoder, gen.decoder):
        assert all(p.grad is None or p.grad.abs().sum() == 0 for p in module.parameters())
