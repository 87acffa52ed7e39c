"""The LOMIT generator: content encoder, co-segmentation mask network, style encoder with
foreground/background heads, style MLPs, Highway AdaIN and decoder (method.md, "Networks").

Every method is a pure function of tensors (no state set inside forward), so that scripting,
export and exemplar caching can call the pieces directly.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import ops
from ..ops.reference import upsample_mask
from ..config import ModelConfig
from .layers import MLP, ConvNormAct, ResBlock, init_generator_

VALUE_SLACK = 1e-3  # images decoded in another precision may overshoot [-1, 1] by rounding


class ContentEncoder(nn.Module):
    """conv7x7 (IN, ReLU), n x conv4x4/2 (IN, ReLU), residual blocks with IN. Signed output."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        width = cfg.content_width
        layers: list[nn.Module] = [ConvNormAct(cfg.channels, width, 7, norm="instance")]
        for _ in range(cfg.content_downsample):
            layers.append(ConvNormAct(width, width * 2, 4, stride=2, norm="instance"))
            width *= 2
        layers += [ResBlock(width, "instance") for _ in range(cfg.content_res_blocks)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MaskNet(nn.Module):
    """Co-segmentation: channel attention from the partner's content, then conv layers -> mask."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        channels = cfg.content_channels
        self.attend_in = nn.Linear(channels, cfg.mask_attention_width)
        self.attend_out = nn.Linear(cfg.mask_attention_width, channels)
        norm = "instance_affine" if cfg.mask_norm == "instance" else cfg.mask_norm
        self.body = nn.Sequential(*[ConvNormAct(channels, channels, 3, norm=norm)
                                    for _ in range(cfg.mask_layers)])
        self.head = nn.Conv2d(channels, 1, 1)

    def attention(self, c_partner: Tensor) -> Tensor:
        """a = sigmoid(W2 tanh(W1 GAP(c_partner))): (N, C) channel weights."""
        pooled = c_partner.mean(dim=(2, 3))
        return torch.sigmoid(self.attend_out(torch.tanh(self.attend_in(pooled))))

    def forward(self, c: Tensor, attention: Tensor) -> Tensor:
        """Mask (N, 1, h, w) in [0, 1] of content c under the partner's attention."""
        h = c * attention[:, :, None, None]
        return torch.sigmoid(self.head(self.body(h)))


class StyleEncoder(nn.Module):
    """Shared trunk (conv7x7 + first stride-2 convs) and separate foreground/background heads
    (remaining stride-2 convs, global average pool, 1x1 conv). LeakyReLU 0.01, no norm."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        widths = [cfg.style_width]
        for _ in range(cfg.style_downsample):
            widths.append(min(widths[-1] * 2, cfg.style_max_width))
        convs = [ConvNormAct(cfg.channels, widths[0], 7, activation="leaky_relu")]
        convs += [ConvNormAct(a, b, 4, stride=2, activation="leaky_relu")
                  for a, b in zip(widths[:-1], widths[1:])]
        shared = cfg.style_shared_layers
        if not 1 <= shared <= len(convs):
            raise ValueError(f"style_shared_layers must be in [1, {len(convs)}], got {shared}")
        self.trunk = nn.Sequential(*convs[:shared])

        def head() -> nn.Sequential:
            tail = [ConvNormAct(a, b, 4, stride=2, activation="leaky_relu")
                    for a, b in zip(widths[shared - 1:-1], widths[shared:])]
            return nn.Sequential(*tail, nn.AdaptiveAvgPool2d(1),
                                 nn.Conv2d(widths[-1], cfg.style_dim, 1), nn.Flatten(1))

        self.foreground, self.background = head(), head()

    def encode_foreground(self, masked_x: Tensor) -> Tensor:
        return self.foreground(self.trunk(masked_x))

    def encode_background(self, masked_x: Tensor) -> Tensor:
        return self.background(self.trunk(masked_x))

    def encode_both(self, masked_f: Tensor, masked_b: Tensor) -> Tuple[Tensor, Tensor]:
        """(foreground code of masked_f, background code of masked_b), the trunk run once."""
        n = masked_f.shape[0]
        shared = self.trunk(torch.cat([masked_f, masked_b]))
        return self.foreground(shared[:n]), self.background(shared[n:])


class Decoder(nn.Module):
    """Residual blocks with layer norm, then [nearest x2, conv5x5 halving, LN, ReLU] per
    content downsampling, conv7x7 -> image, tanh."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        width = cfg.content_channels
        layers: list[nn.Module] = [ResBlock(width, "layer") for _ in range(cfg.decoder_res_blocks)]
        for _ in range(cfg.content_downsample):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       ConvNormAct(width, width // 2, 5, norm="layer")]
            width //= 2
        layers.append(ConvNormAct(width, cfg.channels, 7, activation="none"))
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        return torch.tanh(self.net(h))


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.content_encoder = ContentEncoder(cfg)
        self.mask_net = MaskNet(cfg)
        self.style_encoder = StyleEncoder(cfg)
        channels = cfg.content_channels
        self.mlp_foreground = MLP(cfg.style_dim, cfg.mlp_width, 2 * channels, cfg.mlp_layers)
        self.mlp_background = MLP(cfg.style_dim, cfg.mlp_width, 2 * channels, cfg.mlp_layers)
        self.decoder = Decoder(cfg)
        init_generator_(self)
        # Masks start at sigmoid(mask_prior_logit): 0 (0.5) as the authors; on the synthetic set
        # nothing in HAIN said which side of the mask is the object and from 0.5 the masks settled
        # on the background, while from a small prior (-2: 0.12) they grew on the object.
        nn.init.constant_(self.mask_net.head.bias, cfg.mask_prior_logit)

    # --- pieces ---------------------------------------------------------------------------
    # Pairs (input and exemplar) go through a shared network as one batch: every norm is per
    # sample, so this is the same math as two calls, in half the (larger, faster) convolutions.
    def content(self, x: Tensor) -> Tensor:
        """Content code (N, C, H/4, W/4) of images x (N, 3, H, W) in [-1, 1]."""
        return self.content_encoder(x)

    def contents(self, x: Tensor, exemplar: Tensor) -> Tuple[Tensor, Tensor]:
        """(content(x), content(exemplar)) for batches of the same size."""
        both = self.content(torch.cat([x, exemplar]))
        return both[:x.shape[0]], both[x.shape[0]:]

    def mask(self, c: Tensor, c_partner: Tensor) -> Tensor:
        """M(c, c_partner): (N, 1, H/4, W/4) in [0, 1]; all ones for the global-AdaIN ablation."""
        return self.mask_from_attention(c, self.mask_net.attention(c_partner))

    def mask_from_attention(self, c: Tensor, attention: Tensor) -> Tensor:
        """M(c, .) given the partner's attention (N, C) already computed (exemplar caching)."""
        if self.cfg.global_adain:
            return torch.ones_like(c[:, :1])
        return self.mask_net(c, attention)

    def masks(self, c_in: Tensor, c_ex: Tensor) -> Tuple[Tensor, Tensor]:
        """(m_in, m_ex): M(c_in, c_ex) and M(c_ex, c_in), each (N, 1, H/4, W/4) in [0, 1]."""
        both = self.mask_from_attention(torch.cat([c_in, c_ex]),
                                        self.mask_net.attention(torch.cat([c_ex, c_in])))
        return both[:c_in.shape[0]], both[c_in.shape[0]:]

    def style_foreground(self, x: Tensor, m: Tensor) -> Tensor:
        """s_f(x) = E_s^f(up(m) * x): (N, style_dim)."""
        return self.style_encoder.encode_foreground(upsample_mask(m, x.shape[-2:]) * x)

    def style_background(self, x: Tensor, m: Tensor) -> Tensor:
        """s_b(x) = E_s^b(up(1 - m) * x): (N, style_dim)."""
        return self.style_encoder.encode_background(upsample_mask(1 - m, x.shape[-2:]) * x)

    def styles(self, x: Tensor, m: Tensor) -> Tuple[Tensor, Tensor]:
        """(s_f, s_b) of images x under their mask m."""
        return self.translation_styles(x, m, x, m)

    def translation_styles(self, exemplar: Tensor, m_ex: Tensor, x: Tensor,
                           m_in: Tensor) -> Tuple[Tensor, Tensor]:
        """(s_f(exemplar), s_b(x)): what a translation takes from each, the trunk run once."""
        size = x.shape[-2:]
        return self.style_encoder.encode_both(upsample_mask(m_ex, size) * exemplar,
                                              upsample_mask(1 - m_in, size) * x)

    def style_affine(self, mlp: nn.Module, style: Tensor) -> Tuple[Tensor, Tensor]:
        """(mu, sigma), each (N, C): the MLP gives (mu, log sigma^2), sigma = exp(log sigma^2 / 2)."""
        mu, log_var = mlp(style).chunk(2, dim=1)
        return mu, torch.exp(0.5 * log_var)

    def decode(self, c: Tensor, m: Tensor, style_f: Tensor, style_b: Tensor) -> Tensor:
        """G(HAIN(c, m, style_f, style_b)): image (N, 3, H, W) in [-1, 1]."""
        mu_f, sigma_f = self.style_affine(self.mlp_foreground, style_f)
        mu_b, sigma_b = self.style_affine(self.mlp_background, style_b)
        h = ops.hain(c, m, mu_f, sigma_f, mu_b, sigma_b, self.cfg.hain_eps)
        return self.decoder(h)

    # --- the whole translation -------------------------------------------------------------
    def translate(self, x: Tensor, exemplar: Tensor, mask_in: Optional[Tensor] = None,
                  mask_ex: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """Translate x with the exemplar's foreground style, only where x's mask says.

        x: (N, 3, H, W) in [-1, 1]; exemplar: (N or 1, 3, H, W). mask_in / mask_ex (optional,
        user intervention): (N or 1, 1, h, w) in [0, 1] at content or image resolution; a given
        mask replaces the predicted one. Returns (image, m_in, m_ex), masks at content resolution.
        """
        self.check_images("x", x)
        self.check_images("exemplar", exemplar)
        if exemplar.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"exemplar size {tuple(exemplar.shape[-2:])} does not match x size "
                             f"{tuple(x.shape[-2:])}")
        exemplar = self.broadcast_batch("exemplar", exemplar, x.shape[0])
        c_in, c_ex = self.contents(x, exemplar)
        m_in, m_ex = self.masks(c_in, c_ex)
        if mask_in is not None:
            m_in = self.prepare_mask("mask_in", mask_in, x, c_in)
        if mask_ex is not None:
            m_ex = self.prepare_mask("mask_ex", mask_ex, x, c_in)
        image = self.decode(c_in, m_in, *self.translation_styles(exemplar, m_ex, x, m_in))
        return image, m_in, m_ex

    forward = translate

    # --- argument checks -------------------------------------------------------------------
    def check_images(self, name: str, t: Tensor) -> None:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4 or t.shape[1] != self.cfg.channels:
            raise ValueError(f"{name} must have shape (N, {self.cfg.channels}, H, W), "
                             f"got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating tensor in [-1, 1], got dtype {t.dtype}")
        factor = 2 ** max(self.cfg.content_downsample, self.cfg.style_downsample)
        if t.shape[2] % factor or t.shape[3] % factor:
            raise ValueError(f"{name} height and width must be multiples of {factor}, "
                             f"got {tuple(t.shape[-2:])}")
        # Values: images in [0, 255] or [0, 1] are the usual mistake, and NaN/inf poison the
        # output silently. Not while compiling (the Translator checks before it runs a graph).
        if not torch.compiler.is_compiling() and t.numel():
            low, high = t.aminmax()
            if not (bool(low >= -1 - VALUE_SLACK) and bool(high <= 1 + VALUE_SLACK)):
                raise ValueError(f"{name} values must lie in [-1, 1] (got min {low.item():.4g}, "
                                 f"max {high.item():.4g}; NaN fails too)")

    @staticmethod
    def broadcast_batch(name: str, t: Tensor, batch: int) -> Tensor:
        if t.shape[0] == batch:
            return t
        if t.shape[0] == 1:
            return t.expand(batch, *t.shape[1:])
        raise ValueError(f"{name} batch size {t.shape[0]} must be 1 or {batch}")

    @staticmethod
    def check_mask(name: str, mask: Tensor, batch: int) -> None:
        """A user mask: (N or 1, 1, h, w), floating, every value in [0, 1] (NaN is refused)."""
        if not isinstance(mask, Tensor) or mask.dim() != 4 or mask.shape[1] != 1:
            shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
            raise ValueError(f"{name} must have shape (N, 1, h, w), got {shape}")
        if not mask.is_floating_point():
            raise ValueError(f"{name} must be a floating tensor in [0, 1], got dtype {mask.dtype}")
        if mask.shape[0] not in (1, batch):
            raise ValueError(f"{name} batch size {mask.shape[0]} must be 1 or {batch}")
        low, high = mask.aminmax()
        if not (bool(low >= 0) and bool(high <= 1)):  # NaN fails both comparisons
            raise ValueError(f"{name} values must lie in [0, 1] (got min {low.item():.4g}, "
                             f"max {high.item():.4g})")

    def prepare_mask(self, name: str, mask: Tensor, x: Tensor, c: Tensor) -> Tensor:
        """A user mask at content or image resolution -> (N, 1, h, w) at content resolution."""
        self.check_mask(name, mask, c.shape[0])
        if mask.shape[-2:] == x.shape[-2:]:
            mask = F.adaptive_avg_pool2d(mask, c.shape[-2:])
        elif mask.shape[-2:] != c.shape[-2:]:
            raise ValueError(f"{name} must be at content {tuple(c.shape[-2:])} or image "
                             f"{tuple(x.shape[-2:])} resolution, got {tuple(mask.shape[-2:])}")
        return self.broadcast_batch(name, mask.to(c.dtype), c.shape[0])
