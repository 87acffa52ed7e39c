"""Runners of exported files: the engine's way to translate with a graph someone exported.

Each takes torch tensors (images (N, 3, S, S), exemplars (N or 1, 3, S, S), optional masks) and
returns (images, masks_in, masks_ex), like Translator.translate. Writing these files is export's
job (lomit_fast/export/); running them is the engine's.

  OnnxRunner       an .onnx graph, with onnxruntime (CUDA provider where installed)
  TensorRTRunner   a serialized TensorRT engine (.plan), where TensorRT is installed
  cpp_engine       a TorchScript .pt or AOTInductor .pt2 file, run by the C++ engine
                   (csrc/engine/, bound as lomit_fast._C.Engine)
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.inference import INPUTS, OUTPUTS
from ..ops import BackendError, cpp_ops
from ..optional import TensorRTUnavailable, require_onnxruntime, require_tensorrt


def cpp_engine(path: str | Path, device: str = "cpu"):
    """The C++ engine on an exported .pt (TorchScript) or .pt2 (AOTInductor) file:
    .run(images, exemplars, mask_in=None, mask_ex=None) -> (images, masks_in, masks_ex).
    Both formats are code: load only files you made or trust."""
    cpp_ops.require("the C++ engine")
    return cpp_ops.load_engine(str(path), device)


class OnnxRunner:
    """Runs an exported graph with onnxruntime (CUDA provider where installed) on torch tensors."""

    def __init__(self, path: str | Path | None, device: torch.device):
        try:
            ort = require_onnxruntime()
        except ImportError as e:
            raise BackendError(f"backend 'onnxruntime' is not available: {e}") from None
        if path is None or not Path(path).is_file():
            raise BackendError(f"backend 'onnxruntime' needs an exported ONNX file "
                               f"(lomit-fast export --format onnx), got {path}")
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        # Errors only: onnxruntime warns about every input with a default (an initializer that
        # is also an input), which is how the graph makes mask_in / mask_ex optional.
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # onnxruntime raises its own types for unreadable graphs
            reason = " ".join(str(e).split())
            raise BackendError(f"{path}: not a loadable ONNX graph ({reason[:300]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.image_size, self.content_size = int(meta["image_size"]), int(meta["content_size"])
        except (KeyError, ValueError):
            raise BackendError(f"{path}: not a lomit_fast export (its metadata has no image_size "
                               "/ content_size; export with lomit-fast export --format onnx)")
        names = [i.name for i in self.session.get_inputs()
                 + self.session.get_overridable_initializers()]  # the optional masks
        if names != list(INPUTS):
            raise BackendError(f"{path}: inputs {names} are not lomit_fast's {list(INPUTS)}")
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


class TensorRTRunner:
    """Runs a serialized engine on CUDA torch tensors, bound by tensor name, on one stream."""

    def __init__(self, engine_path: str | Path | None):
        try:
            trt = require_tensorrt()
        except TensorRTUnavailable as e:
            raise BackendError(f"backend 'tensorrt' is not available: {e}") from None
        if engine_path is None or not Path(engine_path).is_file():
            raise BackendError(f"backend 'tensorrt' needs a serialized engine "
                               f"(lomit-fast export --format tensorrt), got {engine_path}")
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise BackendError(f"{engine_path}: not a TensorRT engine for this TensorRT/GPU")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()

    def run(self, images, exemplars, mask_in=None, mask_ex=None):
        n, s = images.shape[0], images.shape[-1] // 4
        missing = lambda m: torch.full((n, 1, s, s), -1.0, device=images.device) if m is None \
            else torch.nn.functional.adaptive_avg_pool2d(m.float(), (s, s)).expand(n, 1, s, s)  # noqa
        feeds = dict(zip(INPUTS, (images, exemplars.expand(n, -1, -1, -1), missing(mask_in),
                                  missing(mask_ex))))
        outputs = {}
        for name, tensor in feeds.items():
            tensor = tensor.contiguous().cuda()
            feeds[name] = tensor
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        for name in OUTPUTS:
            shape = tuple(self.context.get_tensor_shape(name))
            outputs[name] = torch.empty(shape, device="cuda", dtype=images.dtype)
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        with torch.cuda.stream(self.stream):
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
        self.stream.synchronize()
        return tuple(outputs[name] for name in OUTPUTS)
