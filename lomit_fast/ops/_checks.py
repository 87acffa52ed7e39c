"""Argument checks shared by the public ops: clear errors that name the argument."""
from __future__ import annotations

from torch import Tensor


def check_image_like(name: str, t: Tensor) -> None:
    """A floating (N, C, H, W) tensor."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got dtype {t.dtype}")


def check_shape(name: str, t: Tensor | None, shape: tuple[int, ...], like: Tensor) -> None:
    """`t` (if given) is a floating tensor of exactly `shape` on like's device."""
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got dtype {t.dtype}")
    if t.device != like.device:
        raise ValueError(f"{name} is on {t.device} but the input is on {like.device}")


def check_activation(activation: str, allowed: tuple[str, ...]) -> None:
    if activation not in allowed:
        raise ValueError(f"activation must be one of {allowed}, got '{activation}'")

