"""ONNX export of the inference generator (engine/runners.py runs the file with onnxruntime).

The graph (every input and output carries its own doc string, see DOCS):
  inputs  images (N, 3, S, S) in [-1, 1]
          exemplars (1 or N, 3, S, S): one exemplar serves the whole batch (its own batch axis;
                    image i takes exemplar i % count, gathered inside the graph)
          mask_in, mask_ex (1 or N, 1, s, s), s = S / 4, optional: an entry < 0 means "use the
                    predicted mask"; left out, they default to -1 everywhere (an initializer
                    that is also an input is ONNX's optional input with a default)
  outputs output (N, 3, S, S) in [-1, 1], masks_in, masks_ex (N, 1, s, s) in [0, 1]
Exported with the default (torch.export-based) exporter, opset 18, symbolic batch axes and
standard ops only: the norms are InstanceNormalization (ops backend "native"), HAIN's style
affines explicit Mul/Add. Metadata: image_size, content_size, value_range, lomit_fast_version,
mask_convention, ...; model_version is the package version as major * 10^6 + minor * 10^3 + patch.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..io import atomic_path
from ..models import Generator
from ..models.inference import INPUTS, OUTPUTS, InferenceModule, example_inputs, metadata
from ..ops import use_backend
from ..version import __version__

OPSET = 18
DOCS = {
    "images": "(N, 3, S, S) float in [-1, 1]: the images to translate",
    "exemplars": "(1 or N, 3, S, S) float in [-1, 1]: whose foreground style is taken; one "
                 "exemplar serves the whole batch",
    "mask_in": "(1 or N, 1, s, s) float, s = S/4, optional: where to translate, in [0, 1]; an "
               "entry < 0 (the default, -1 everywhere) means: use the predicted mask",
    "mask_ex": "(1 or N, 1, s, s) float, s = S/4, optional: what to take from the exemplar, in "
               "[0, 1]; an entry < 0 (the default, -1 everywhere) means: use the predicted mask",
    "output": "(N, 3, S, S) float in [-1, 1]: the translated images",
    "masks_in": "(N, 1, s, s) float in [0, 1]: the input masks used (given or predicted)",
    "masks_ex": "(N, 1, s, s) float in [0, 1]: the exemplar masks used (given or predicted)",
}


class BroadcastInputs(nn.Module):
    """The graph's front: exemplars and masks hold 1 or N entries, image i takes entry
    i % count (so one serves all) by an index inside the graph, not by a shared batch axis."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.eval()

    def forward(self, images: Tensor, exemplars: Tensor, mask_in: Tensor, mask_ex: Tensor):
        index = torch.arange(images.shape[0], device=images.device)
        # fmod, not %: the exporter has no remainder by a symbolic size
        pick = lambda t: t.index_select(0, torch.fmod(index, t.shape[0]))  # noqa: E731
        return self.module(images, pick(exemplars), pick(mask_in), pick(mask_ex))


def version_number(version: str = __version__) -> int:
    """ONNX's model_version is an integer: 1.2.3 -> 1_002_003."""
    major, minor, patch = (int(part) for part in (version.split(".") + ["0", "0"])[:3])
    return major * 1_000_000 + minor * 1_000 + patch


def describe(model, generator: Generator, dtype: torch.dtype) -> None:
    """Doc strings, default masks (-1: predict) and model_version, in place."""
    from onnx import numpy_helper

    for value in [*model.graph.input, *model.graph.output]:
        value.doc_string = DOCS[value.name]
    c = generator.cfg.content_size
    for name in ("mask_in", "mask_ex"):
        default = torch.full((1, 1, c, c), -1.0, dtype=dtype).numpy()
        model.graph.initializer.append(numpy_helper.from_array(default, name))
    model.graph.doc_string = (f"LOMIT generator, lomit_fast {__version__}: images and an exemplar "
                              "in, translations and both masks out (see each input's doc string)")
    model.model_version = version_number()


def export_onnx(generator: Generator, path: str | Path, fp16: bool = False) -> Path:
    """Write the ONNX graph of `generator` to `path` (atomically) and return the path."""
    import onnx

    path = Path(path)
    generator = generator.cpu().eval()
    module = BroadcastInputs(InferenceModule(generator))
    dtype = torch.float16 if fp16 else torch.float32
    if fp16:
        module = module.half()  # the norms still compute their statistics in fp32 (ops.native)
    shapes = {name: {0: torch.export.Dim(axis, min=1, max=4096)}
              for name, axis in zip(INPUTS, ("batch", "exemplars", "masks_in", "masks_ex"))}
    with use_backend("native"), torch.no_grad():
        program = torch.onnx.export(module, example_inputs(generator, 2, dtype), dynamo=True,
                                    opset_version=OPSET, input_names=list(INPUTS),
                                    output_names=list(OUTPUTS), dynamic_shapes=shapes,
                                    verbose=False)
    model = program.model_proto
    for key, value in metadata(generator, "fp16" if fp16 else "fp32").items():
        model.metadata_props.add(key=key, value=value)
    describe(model, generator, dtype)
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return path
