"""LOMIT's objective as free functions (method.md, "Objective").

The terms are combined with the weights of LossConfig in `generator_objective` and
`critic_objective`; each returns the weighted total and the unweighted terms for logging.
Conventions, as the authors': every term is summed over both directions (A->B and B->A); an L1
term is the mean absolute difference per element; a BCE term is summed over attributes and
averaged over the batch; R1 and R2 are summed over the six masks m_A, m_B (translation), m_AA,
m_BB (self-reconstruction) and m_AB, m_BA (of the translations, for the cycle).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import LossConfig
from ..models import Critic, Generator


def l1(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).abs().mean()


def wgan_generator(fake_realness: Tensor) -> Tensor:
    """-D_src(fake): the generator raises the critic's score of its images."""
    return -fake_realness.mean()


def wgan_critic(real_realness: Tensor, fake_realness: Tensor) -> Tensor:
    """D_src(fake) - D_src(real): the Wasserstein critic's loss."""
    return fake_realness.mean() - real_realness.mean()


def gradient_penalty(critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP: mean (||grad_x D_src(x)||_2 - 1)^2 on random interpolates of real and fake."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    realness, _ = critic(mixed)
    (grad,) = torch.autograd.grad(realness.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def attribute_bce(logits: Tensor, labels: Tensor) -> Tensor:
    """Binary cross-entropy of attribute logits, summed over attributes, mean over the batch
    (StarGAN's convention, which the prototype follows)."""
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / logits.shape[0]


def mask_similarity(mask: Tensor, content: Tensor) -> Tensor:
    """R1 of one mask = mean over the batch and over all pairs (i, j) of content-map positions of
    S_ij |m_i - m_j|, S = cosine similarity of the (detached) content vectors, clamped at 0:
    positions with similar content get similar mask values. mask: (N, 1, h, w), content:
    (N, C, h, w). The objective sums it over the six masks."""
    vectors = F.normalize(content.detach().flatten(2), dim=1)           # (N, C, hw)
    similarity = torch.relu(vectors.transpose(1, 2) @ vectors)          # (N, hw, hw)
    m = mask.flatten(1)                                                 # (N, hw)
    return (similarity * (m[:, :, None] - m[:, None, :]).abs()).mean()


def mask_sparsity(*masks: Tensor) -> Tensor:
    """R2 = sum over the masks given (the objective gives the six) of each mask's mean value over
    batch and positions: in [0, 6] for six masks. The authors sum, as every other term; a mean
    over the masks would make the same weight six times weaker."""
    return torch.stack([m.mean() for m in masks]).sum()


def generator_objective(gen: Generator, critic: Critic, x_a: Tensor, x_b: Tensor,
                        labels_b: Tensor, labels_a: Tensor, w: LossConfig
                        ) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
    """All generator terms for the pair (A = input, B = exemplar) in both directions.

    Returns (weighted total, unweighted terms, tensors for logging: masks and translations)."""
    c_a, c_b = gen.contents(x_a, x_b)
    m_a, m_b = gen.masks(c_a, c_b)
    s_fa, s_ba = gen.styles(x_a, m_a)
    s_fb, s_bb = gen.styles(x_b, m_b)
    x_ab = gen.decode(c_a, m_a, s_fb, s_ba)   # A with B's foreground style where m_a says
    x_ba = gen.decode(c_b, m_b, s_fa, s_bb)
    m_aa, m_bb = gen.mask(c_a, c_a), gen.mask(c_b, c_b)
    x_aa = gen.decode(c_a, m_aa, s_fa, s_ba)
    x_bb = gen.decode(c_b, m_bb, s_fb, s_bb)

    # Second level: encode the translations again.
    c_ab, c_ba = gen.contents(x_ab, x_ba)
    m_ab, m_ba = gen.masks(c_ab, c_ba)
    s_f_ab, s_b_ab = gen.styles(x_ab, m_ab)
    s_f_ba, s_b_ba = gen.styles(x_ba, m_ba)
    x_aba = gen.decode(c_ab, m_ab, s_f_ba, s_b_ab)  # A's foreground comes back from x_BA
    x_bab = gen.decode(c_ba, m_ba, s_f_ab, s_b_ba)

    realness_ab, logits_ab = critic(x_ab)
    realness_ba, logits_ba = critic(x_ba)
    # R1 reaches the mask network only: the six masks recomputed from detached content codes,
    # in one batch (the mask net does not mix samples).
    pairs = [(c_a, c_b), (c_b, c_a), (c_a, c_a), (c_b, c_b), (c_ab, c_ba), (c_ba, c_ab)]
    contents = [c.detach() for c, _ in pairs]
    r1_masks = gen.mask(torch.cat(contents), torch.cat([p for _, p in pairs]).detach())

    terms = {
        "adversarial": wgan_generator(realness_ab) + wgan_generator(realness_ba),
        "classification": attribute_bce(logits_ab, labels_b) + attribute_bce(logits_ba, labels_a),
        "self_reconstruction": l1(x_aa, x_a) + l1(x_bb, x_b),
        "cycle": l1(x_aba, x_a) + l1(x_bab, x_b),
        "style_foreground": l1(s_f_ab, s_fb) + l1(s_f_ba, s_fa),
        "style_background": l1(s_b_ab, s_ba) + l1(s_b_ba, s_bb),
        "content": l1(c_ab, c_a) + l1(c_ba, c_b),
        "mask_similarity": sum(mask_similarity(m, c)
                               for m, c in zip(r1_masks.chunk(len(pairs)), contents)),
        "mask_sparsity": mask_sparsity(m_a, m_b, m_aa, m_bb, m_ab, m_ba),
    }
    total = sum(getattr(w, name) * value for name, value in terms.items())
    return total, terms, {"x_ab": x_ab, "m_a": m_a, "m_b": m_b}


def critic_objective(critic: Critic, directions: list[tuple[Tensor, Tensor, Tensor]],
                     w: LossConfig) -> tuple[Tensor, dict[str, Tensor]]:
    """The critic's loss summed over directions, each (real, labels of real, fake): for LOMIT
    (x_A, labels_A, x_AB) and (x_B, labels_B, x_BA). Per direction: WGAN-GP with real = the
    input and fake = its (detached) translation, the penalty on interpolates between the two, and
    the auxiliary classifier's BCE on the real images against their own labels."""
    terms = {"wasserstein": 0, "gradient_penalty": 0, "critic_classification": 0}
    for x_real, labels_real, x_fake in directions:
        x_fake = x_fake.detach()
        real_realness, real_logits = critic(x_real)
        fake_realness, _ = critic(x_fake)
        terms["wasserstein"] += wgan_critic(real_realness, fake_realness)
        terms["gradient_penalty"] += gradient_penalty(critic, x_real, x_fake)
        terms["critic_classification"] += attribute_bce(real_logits, labels_real)
    total = (terms["wasserstein"] + w.gradient_penalty * terms["gradient_penalty"]
             + w.critic_classification * terms["critic_classification"])
    return total, terms
