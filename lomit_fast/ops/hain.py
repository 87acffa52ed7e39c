"""Public hain (Highway AdaIN) op: argument checks, then dispatch to the chosen backend."""
from __future__ import annotations

from torch import Tensor

from . import backends
from ._checks import check_image_like, check_shape
from .reference import hain_ref


def hain(c: Tensor, mask: Tensor, mu_f: Tensor, sigma_f: Tensor, mu_b: Tensor, sigma_b: Tensor,
         eps: float = 1e-5, backend: str = "auto") -> Tensor:
    """Highway AdaIN (see reference.hain_ref for the formula).

    c: (N, C, H, W) content code; mask: (N, 1, H, W) in [0, 1];
    mu_f, sigma_f, mu_b, sigma_b: (N, C) foreground / background style affines.
    """
    check_image_like("c", c)
    n, channels, height, width = c.shape
    check_shape("mask", mask, (n, 1, height, width), c)
    for name, style in (("mu_f", mu_f), ("sigma_f", sigma_f), ("mu_b", mu_b), ("sigma_b", sigma_b)):
        check_shape(name, style, (n, channels), c)
    impl = backends.implementation("hain", backend, c.device.type)
    return impl(c, mask, mu_f, sigma_f, mu_b, sigma_b, eps)


__all__ = ["hain", "hain_ref"]
