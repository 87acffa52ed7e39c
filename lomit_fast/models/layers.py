"""Building blocks shared by the generator and the critic."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import ops
from ..ops.reference import activate_ref

NORMS = ("none", "instance", "instance_affine", "layer", "group")


class ConvNormAct(nn.Module):
    """pad -> conv -> norm -> activation, with the norm and activation fused where possible.

    norm: none | instance (no affine, as MUNIT's content encoder) | instance_affine |
    layer (GroupNorm with one group, affine) | group (32 groups, affine).
    activation: none | relu | leaky_relu (slope 0.01, the method's LeakyReLU).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 norm: str = "none", activation: str = "relu", pad_mode: str = "reflect"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got '{norm}'")
        self.padding = (kernel_size - 1) // 2
        self.pad_mode = pad_mode
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride)
        self.norm, self.activation = norm, activation
        if norm in ("instance_affine", "layer", "group"):
            self.weight = nn.Parameter(torch.ones(out_channels))
            self.bias = nn.Parameter(torch.zeros(out_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        if self.padding:
            x = F.pad(x, [self.padding] * 4, mode=self.pad_mode)
        x = self.conv(x)
        if self.norm in ("instance", "instance_affine"):
            return ops.instance_norm(x, self.weight, self.bias, activation=self.activation)
        if self.norm == "layer":
            return ops.layer_norm2d(x, self.weight, self.bias, activation=self.activation)
        if self.norm == "group":
            x = F.group_norm(x, min(32, x.shape[1]), self.weight, self.bias)
        return activate_ref(x, self.activation)


class ResBlock(nn.Module):
    """x + [conv3x3, norm, ReLU, conv3x3, norm](x)."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.block = nn.Sequential(ConvNormAct(channels, channels, 3, norm=norm, activation="relu"),
                                   ConvNormAct(channels, channels, 3, norm=norm, activation="none"))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class MLP(nn.Module):
    """Linear layers with LeakyReLU(0.01) between them (none after the last)."""

    def __init__(self, in_features: int, hidden: int, out_features: int, layers: int):
        super().__init__()
        widths = [in_features] + [hidden] * (layers - 1) + [out_features]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for i, linear in enumerate(self.linears):
            x = linear(x)
            if i < len(self.linears) - 1:
                x = F.leaky_relu(x, 0.01)
        return x


def init_generator_(module: nn.Module) -> None:
    """Kaiming-normal (fan-in) weights and zero biases for every conv and linear layer.

    The authors' init (after MUNIT); with PyTorch's default init the style path starts dead."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0.0, mode="fan_in")
            nn.init.zeros_(m.bias)


def init_critic_(module: nn.Module) -> None:
    """N(0, 0.02) weights and zero biases, as in the authors' critic."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
