"""The C++ ops of the extension lomit_fast._C (csrc/ops/: lomit::instance_norm, lomit::hain),
with fakes and autograd (registration.py) so training, torch.compile and torch.export use them
too. Imported by the backend registry when the cpp backend is first used, and by the exporters.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import registration
from .errors import BackendError

try:
    from .. import _C  # noqa: F401  (loading the library registers the lomit:: ops)
except ImportError as error:  # the package works without it; the registry reports why
    IMPORT_ERROR: str | None = f"{type(error).__name__}: {error}"
else:
    IMPORT_ERROR = None
    registration.register("lomit", lambda x: torch.float64 if x.dtype == torch.float64
                          else torch.float32)


def unavailable_reason() -> str | None:
    """None when the extension is loaded, else why not and what to do."""
    if IMPORT_ERROR is None:
        return None
    return (f"the C++ extension lomit_fast._C is not built ({IMPORT_ERROR}); reinstall with "
            "`pip install --no-build-isolation -e .` and a C++ compiler")


def require(purpose: str) -> None:
    """Raise BackendError saying that `purpose` needs the extension, where it is not built."""
    if IMPORT_ERROR is not None:
        raise BackendError(f"{purpose} needs the C++ ops: {unavailable_reason()}")


def built_with_cuda() -> bool:
    return IMPORT_ERROR is None and _C.built_with_cuda()


def load_engine(path: str, device: str = "cpu"):
    """The extension's binding of the C++ engine (csrc/engine/); engine/runners.py is its user."""
    return _C.Engine(str(path), device)


def instance_norm_cpp(x: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                      eps: float = 1e-5, activation: str = "none",
                      negative_slope: float = 0.01) -> Tensor:
    return torch.ops.lomit.instance_norm(x, weight, bias, eps, activation, negative_slope)[0]


def hain_cpp(c: Tensor, mask: Tensor, mu_f: Tensor, sigma_f: Tensor, mu_b: Tensor,
             sigma_b: Tensor, eps: float = 1e-5) -> Tensor:
    return torch.ops.lomit.hain(c, mask, mu_f, sigma_f, mu_b, sigma_b, eps)[0]


IMPLEMENTATIONS = {"instance_norm": instance_norm_cpp, "hain": hain_cpp}
