"""ONNX export of the inference generator (engine/runners.py runs the file with onnxruntime).

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

import torch

from ..io import atomic_path
from ..models import Generator
from ..models.inference import INPUTS, OUTPUTS, InferenceModule, example_inputs, metadata
from ..ops import use_backend

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
