"""ONNX export of the inference generator, and an onnxruntime runner for the engine.

The graph: inputs  images (N, 3, S, S), exemplars (N, 3, S, S), mask_in (N, 1, s, s),
                   mask_ex (N, 1, s, s)   (s = S / 4; a mask value < 0 means "predict it":
                                           ONNX has no optional inputs, so pass -1 for none)
           outputs images (N, 3, S, S) in [-1, 1], masks_in, masks_ex (N, 1, s, s).
Exported with the default (torch.export-based) exporter, opset 18, a symbolic batch axis and
standard ops only: the norms are InstanceNormalization (ops backend "native"), HAIN's style
affines explicit Mul/Add. Metadata: image_size, content_size, value_range, lomit_fast_version.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import __version__
from ..io import atomic_path
from ..models import Generator
from ..ops import use_backend

OPSET = 18
INPUTS = ("images", "exemplars", "mask_in", "mask_ex")
OUTPUTS = ("output", "masks_in", "masks_ex")


class InferenceModule(nn.Module):
    """(images, exemplars, mask_in, mask_ex) -> (images, input masks, exemplar masks); mask
    entries < 0 are replaced by the predicted mask (user intervention where they are >= 0)."""

    def __init__(self, generator: Generator):
        super().__init__()
        self.generator = generator.eval()

    def forward(self, images: Tensor, exemplars: Tensor, mask_in: Tensor, mask_ex: Tensor):
        gen = self.generator
        c_in, c_ex = gen.content(images), gen.content(exemplars)
        predicted_in, predicted_ex = gen.masks(c_in, c_ex)
        m_in = torch.where(mask_in < 0, predicted_in, mask_in)
        m_ex = torch.where(mask_ex < 0, predicted_ex, mask_ex)
        out = gen.decode(c_in, m_in, gen.style_foreground(exemplars, m_ex),
                         gen.style_background(images, m_in))
        return out, m_in, m_ex


def example_inputs(generator: Generator, batch: int = 2, dtype=torch.float32) -> tuple:
    cfg = generator.cfg
    s, c = cfg.image_size, cfg.content_size
    g = torch.Generator().manual_seed(0)
    image = lambda: (torch.rand(batch, 3, s, s, generator=g) * 2 - 1).to(dtype)  # noqa: E731
    return image(), image(), torch.full((batch, 1, c, c), -1.0, dtype=dtype), \
        torch.full((batch, 1, c, c), -1.0, dtype=dtype)


def export_onnx(generator: Generator, path: str | Path, fp16: bool = False) -> Path:
    """Write the ONNX graph of `generator` to `path` (atomically) and return the path."""
    import onnx

    path = Path(path)
    generator = generator.cpu().eval()
    module = InferenceModule(generator)
    dtype = torch.float16 if fp16 else torch.float32
    if fp16:
        module = module.half()  # the norms still compute their statistics in fp32 (ops.native)
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes = {name: {0: batch} for name in INPUTS}
    with use_backend("native"), torch.no_grad():
        program = torch.onnx.export(module, example_inputs(generator, 2, dtype), dynamo=True,
                                    opset_version=OPSET, input_names=list(INPUTS),
                                    output_names=list(OUTPUTS), dynamic_shapes=shapes,
                                    verbose=False)
    model = program.model_proto
    cfg = generator.cfg
    metadata = {"image_size": str(cfg.image_size), "content_size": str(cfg.content_size),
                "value_range": "[-1, 1]", "lomit_fast_version": __version__,
                "precision": "fp16" if fp16 else "fp32",
                "mask_convention": "mask inputs < 0 mean: use the predicted mask",
                "model_config": json.dumps(cfg.__dict__)}
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return path


class OnnxRunner:
    """Runs an exported graph with onnxruntime (CUDA provider where installed) on torch tensors."""

    def __init__(self, path: str | Path | None, device: torch.device):
        from ..ops import BackendError
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendError("backend 'onnxruntime' is not available: onnxruntime is not "
                               "installed (pip install 'lomit_fast[onnx]')") from None
        if path is None or not Path(path).is_file():
            raise BackendError(f"backend 'onnxruntime' needs an exported ONNX file "
                               f"(lomit-fast export --format onnx), got {path}")
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), providers=providers)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.image_size, self.content_size = int(meta["image_size"]), int(meta["content_size"])
        self.dtype = torch.float16 if meta.get("precision") == "fp16" else torch.float32
        self.device = device

    def _mask(self, mask: Optional[Tensor], n: int) -> Tensor:
        s = self.content_size
        if mask is None:
            return torch.full((n, 1, s, s), -1.0)
        mask = mask.float().cpu()
        if mask.shape[-1] != s:
            mask = F.adaptive_avg_pool2d(mask, (s, s))
        return mask.expand(n, 1, s, s)

    def run(self, x: Tensor, exemplar: Tensor, mask_in: Optional[Tensor] = None,
            mask_ex: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
        n = x.shape[0]
        if x.shape[-1] != self.image_size or exemplar.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"the ONNX graph translates {self.image_size}x{self.image_size} "
                             f"images, got x {tuple(x.shape)}, exemplar {tuple(exemplar.shape)}")
        feeds = [x.float().cpu(), exemplar.float().cpu().expand(n, -1, -1, -1),
                 self._mask(mask_in, n), self._mask(mask_ex, n)]
        feeds = {name: t.to(self.dtype).contiguous().numpy() for name, t in zip(INPUTS, feeds)}
        outputs = self.session.run(list(OUTPUTS), feeds)
        return tuple(torch.from_numpy(o).float().to(self.device) for o in outputs)
