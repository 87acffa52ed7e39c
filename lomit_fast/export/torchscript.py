"""TorchScript export: a file that C++ loads with torch::jit::load (csrc/engine/) and Python with
torch.jit.load, the norms running as the C++ ops lomit::instance_norm / lomit::hain.

The traced graph of InferenceModule sits inside a scripted front that gives the file optional
masks and clear errors:  forward(images, exemplars, mask_in=None, mask_ex=None)
  images (N, 3, S, S) in [-1, 1]; exemplars (N or 1, 3, S, S); masks (N or 1, 1, s, s) at content
  or (.., S, S) at image resolution, in [0, 1]; -> (images, input masks, exemplar masks).
The batch is dynamic. The file's metadata (extra files) holds image_size, content_size,
value_range, precision, model_config and the version.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..io import atomic_named_path
from ..models import Generator
from ..models.inference import METADATA_KEYS, InferenceModule, example_inputs, metadata
from ..ops import use_backend


class OptionalMasks(nn.Module):
    """Checks the inputs, fills absent masks with -1 and broadcasts a single exemplar."""

    def __init__(self, core: nn.Module, image_size: int, content_size: int):
        super().__init__()
        self.core, self.image_size, self.content_size = core, image_size, content_size

    def _mask(self, name: str, mask: Optional[Tensor], like: Tensor) -> Tensor:
        n, s = like.shape[0], self.content_size
        if mask is None:
            return torch.full([n, 1, s, s], -1.0, dtype=like.dtype, device=like.device)
        if mask.dim() != 4 or mask.shape[1] != 1 or (mask.shape[0] != n and mask.shape[0] != 1):
            raise ValueError(name + " must have shape (N or 1, 1, h, w), got "
                             + str(mask.shape))
        if mask.shape[2] == self.image_size and mask.shape[3] == self.image_size:
            mask = F.adaptive_avg_pool2d(mask, [s, s])
        elif mask.shape[2] != s or mask.shape[3] != s:
            raise ValueError(name + " must be " + str(s) + "x" + str(s) + " or "
                             + str(self.image_size) + "x" + str(self.image_size))
        return mask.to(like.dtype).expand(n, 1, s, s)

    def forward(self, images: Tensor, exemplars: Tensor, mask_in: Optional[Tensor] = None,
                mask_ex: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
        size = self.image_size
        for name, t in (("images", images), ("exemplars", exemplars)):
            if t.dim() != 4 or t.shape[1] != 3 or t.shape[2] != size or t.shape[3] != size:
                raise ValueError(name + " must have shape (N, 3, " + str(size) + ", "
                                 + str(size) + "), got " + str(t.shape))
        n = images.shape[0]
        if exemplars.shape[0] != n:
            if exemplars.shape[0] != 1:
                raise ValueError("exemplars must hold 1 or N images")
            exemplars = exemplars.expand(n, 3, size, size)
        return self.core(images, exemplars.contiguous(), self._mask("mask_in", mask_in, images),
                         self._mask("mask_ex", mask_ex, images))


def script_generator(generator: Generator) -> torch.jit.ScriptModule:
    """The scripted module (not yet saved); its norms call the lomit:: C++ ops."""
    from ..ops import cpp_ops
    cpp_ops.require("TorchScript export")
    generator = generator.cpu().eval()
    cfg = generator.cfg
    with use_backend("cpp"), torch.no_grad(), warnings.catch_warnings():
        # The generator's Python argument checks hold for every batch: not graph decisions.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        core = torch.jit.trace(InferenceModule(generator), example_inputs(generator, 2),
                               check_trace=False)
    return torch.jit.script(OptionalMasks(core, cfg.image_size, cfg.content_size))


def export_torchscript(generator: Generator, path: str | Path) -> Path:
    """Write the TorchScript file of `generator` to `path` (atomically) and return the path."""
    path = Path(path)
    module = script_generator(generator)
    with atomic_named_path(path) as tmp:  # the archive's root folder is named after the file
        torch.jit.save(module, str(tmp), _extra_files=metadata(generator, "fp32"))
    return path


def load_torchscript(path: str | Path, device: str | torch.device = "cpu"):
    """(module, metadata) of an exported file; the C++ ops are loaded first."""
    from ..ops import cpp_ops  # noqa: F401  (registers lomit:: before the graph is read)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TorchScript file not found: {path}")
    extra = dict.fromkeys(METADATA_KEYS, "")
    try:
        module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except RuntimeError as e:
        raise ValueError(f"{path} is not a readable TorchScript file: {e}") from None
    return module.eval(), {key: value.decode() for key, value in extra.items()}
