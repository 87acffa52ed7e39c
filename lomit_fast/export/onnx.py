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

from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..io import atomic_path
from ..models import Generator
from ..ops import use_backend
from .inference import INPUTS, OUTPUTS, InferenceModule, example_inputs, metadata

OPSET = 18


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
    for key, value in metadata(generator, "fp16" if fp16 else "fp32").items():
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
