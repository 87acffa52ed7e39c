"""The module every export traces: (images, exemplars, mask_in, mask_ex) -> (images, input masks,
exemplar masks), with tensors only, so ONNX, TorchScript and AOTInductor see the same graph.

Shapes: images, exemplars (N, 3, S, S) in [-1, 1]; mask_in, mask_ex (N, 1, s, s) with s = S / 4;
a mask entry < 0 means "use the predicted mask" (graphs have no optional inputs; pass -1 for
none). Outputs: images (N, 3, S, S) in [-1, 1], masks (N, 1, s, s) in [0, 1].
"""
from __future__ import annotations

import json

import torch
from torch import Tensor, nn

from ..ops import use_backend
from ..version import __version__
from .generator import Generator

INPUTS = ("images", "exemplars", "mask_in", "mask_ex")
OUTPUTS = ("output", "masks_in", "masks_ex")
MASK_CONVENTION = "mask inputs < 0 mean: use the predicted mask"
MAX_BATCH = 4096  # the dynamic batch dimension of exported programs
METADATA_KEYS = ("image_size", "content_size", "value_range", "lomit_fast_version", "precision",
                 "mask_convention", "model_config")


class InferenceModule(nn.Module):
    """(images, exemplars, mask_in, mask_ex) -> (images, input masks, exemplar masks); mask
    entries < 0 are replaced by the predicted mask (user intervention where they are >= 0)."""

    def __init__(self, generator: Generator):
        super().__init__()
        self.generator = generator
        self.eval()  # the wrapper too: exporters warn about (and may trace) training mode

    def forward(self, images: Tensor, exemplars: Tensor, mask_in: Tensor, mask_ex: Tensor):
        gen = self.generator
        c_in, c_ex = gen.contents(images, exemplars)
        predicted_in, predicted_ex = gen.masks(c_in, c_ex)
        m_in = torch.where(mask_in < 0, predicted_in, mask_in)
        m_ex = torch.where(mask_ex < 0, predicted_ex, mask_ex)
        out = gen.decode(c_in, m_in, *gen.translation_styles(exemplars, m_ex, images, m_in))
        return out, m_in, m_ex


def export_program(generator: Generator, ops_backend: str,
                   batch: int | None = None) -> torch.export.ExportedProgram:
    """torch.export of InferenceModule(generator) for batches of 1..MAX_BATCH (or of `batch`
    images only), its norms traced on `ops_backend` (cpp: calls of the C++ ops; reference: plain
    aten ops a compiler can fuse)."""
    device = next(generator.parameters()).device
    inputs = tuple(t.to(device) for t in example_inputs(generator, batch or 2))
    dims = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    dynamic = None if batch else {name: {0: dims} for name in INPUTS}
    with use_backend(ops_backend), torch.no_grad():
        return torch.export.export(InferenceModule(generator.eval()), inputs,
                                   dynamic_shapes=dynamic)


def example_inputs(generator: Generator, batch: int = 2, dtype=torch.float32) -> tuple:
    cfg = generator.cfg
    s, c = cfg.image_size, cfg.content_size
    g = torch.Generator().manual_seed(0)
    image = lambda: (torch.rand(batch, 3, s, s, generator=g) * 2 - 1).to(dtype)  # noqa: E731
    return image(), image(), torch.full((batch, 1, c, c), -1.0, dtype=dtype), \
        torch.full((batch, 1, c, c), -1.0, dtype=dtype)


def metadata(generator: Generator, precision: str = "fp32") -> dict[str, str]:
    """What every exported file records about its model (string keys and values)."""
    cfg = generator.cfg
    return {"image_size": str(cfg.image_size), "content_size": str(cfg.content_size),
            "value_range": "[-1, 1]", "lomit_fast_version": __version__, "precision": precision,
            "mask_convention": MASK_CONVENTION, "model_config": json.dumps(cfg.__dict__)}
