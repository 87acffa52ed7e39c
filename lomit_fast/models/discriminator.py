"""The critic: a WGAN realness map plus an auxiliary attribute classifier (method.md)."""
from __future__ import annotations

from typing import Tuple

from torch import Tensor, nn

from ..config import ModelConfig
from .layers import ConvNormAct, init_critic_


class Critic(nn.Module):
    """conv4x4/2 layers (widths double up to critic_max_width), LeakyReLU 0.01, no norm;
    a 3x3 head -> realness map and a head with kernel = remaining size -> one logit per attribute.

    The stride-2 convs pad by reflection (1 pixel), as the authors' blocks; the heads pad with
    zeros (the realness head) or not at all. Padding has no weights, so critics saved when the
    body padded with zeros still load, but score borders slightly differently."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        final = cfg.image_size // 2 ** cfg.critic_layers
        if final < 1 or cfg.image_size % 2 ** cfg.critic_layers:
            raise ValueError(f"critic_layers={cfg.critic_layers} does not fit image_size="
                             f"{cfg.image_size} (needs image_size divisible by 2**critic_layers)")
        widths = [cfg.channels] + [min(cfg.critic_width * 2 ** i, cfg.critic_max_width)
                                   for i in range(cfg.critic_layers)]
        self.body = nn.Sequential(*[
            ConvNormAct(a, b, 4, stride=2, activation="leaky_relu", pad_mode="reflect")
            for a, b in zip(widths[:-1], widths[1:])])
        self.realness = nn.Conv2d(widths[-1], 1, 3, padding=1)
        self.classify = nn.Sequential(nn.Conv2d(widths[-1], cfg.n_attributes, final), nn.Flatten(1))
        init_critic_(self)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """x: (N, 3, S, S) -> (realness (N, 1, s, s), attribute logits (N, n_attributes))."""
        h = self.body(x)
        return self.realness(h), self.classify(h)
