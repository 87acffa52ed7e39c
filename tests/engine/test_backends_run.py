"""The chosen backend is what runs, on every path: a deliberately altered exported file changes
the CLI's output, with one exemplar (the cached path) and with several, and the report names it."""
import json
from typing import Optional

import numpy as np
import pytest
import torch
from PIL import Image

from lomit_fast.ops import cpp_ops

from .cli_run import lomit, translate_args


def negated_onnx(exported, path):
    """The exported graph with its image output negated (a Neg node after it)."""
    import onnx
    model = onnx.load(str(exported))
    graph = model.graph
    for node in graph.node:
        node.output[:] = ["output_raw" if o == "output" else o for o in node.output]
    graph.node.append(onnx.helper.make_node("Neg", ["output_raw"], ["output"]))
    onnx.save(model, str(path))
    return path


def zeros_torchscript(torchscript_file, path):
    """A TorchScript module with the export's metadata whose images are all 0 (mid grey)."""
    extra = {"image_size": "", "content_size": "", "value_range": "", "lomit_fast_version": "",
             "precision": "", "mask_convention": "", "model_config": ""}
    torch.jit.load(str(torchscript_file), _extra_files=extra)

    class Zeros(torch.nn.Module):
        def forward(self, images: torch.Tensor, exemplars: torch.Tensor,
                    mask_in: Optional[torch.Tensor] = None,
                    mask_ex: Optional[torch.Tensor] = None):
            n, s = images.shape[0], images.shape[-1] // 4
            masks = torch.zeros(n, 1, s, s)
            return torch.zeros_like(images), masks, masks
    torch.jit.save(torch.jit.script(Zeros()), str(path), _extra_files=extra)
    return path


def outputs(folder):
    return {p.name: np.asarray(Image.open(p), np.int16) for p in sorted(folder.glob("good*.png"))}


@pytest.fixture
def two_exemplars(image_folder, tmp_path):
    folder = tmp_path / "exemplars"
    folder.mkdir()
    for name in ("good1.png", "good2.png"):
        (folder / name).write_bytes((image_folder / name).read_bytes())
    return folder


@pytest.mark.parametrize("several", [False, True], ids=["one exemplar", "several"])
def test_altered_onnx_graph_changes_the_output(image_folder, checkpoint, exported, tmp_path,
                                               two_exemplars, several):
    for bad in ("corrupt.png", "truncated.png"):
        (image_folder / bad).unlink()
    exemplar = two_exemplars if several else image_folder / "good0.png"
    mode = ["--pair-mode", "cycle"] if several else []
    runs = {}
    for name, graph in (("plain", exported), ("negated", negated_onnx(exported,
                                                                       tmp_path / "neg.onnx"))):
        out = tmp_path / name
        result = lomit(*translate_args(image_folder, exemplar, out, checkpoint, "--backend",
                                       "onnxruntime", "--model-file", graph, *mode))
        assert result.code == 0, result.err[-2000:]
        assert json.loads((out / "report.json").read_text())["backend"] == "onnxruntime"
        runs[name] = outputs(out)
    for key, plain in runs["plain"].items():  # -x in [-1, 1] is 255 - p in 8 bits (+-1)
        assert np.abs(runs["negated"][key] - (255 - plain)).max() <= 1, key


@pytest.mark.skipif(cpp_ops.IMPORT_ERROR is not None, reason="lomit_fast._C not built")
@pytest.mark.parametrize("several", [False, True], ids=["one exemplar", "several"])
def test_altered_torchscript_file_changes_the_output(image_folder, checkpoint, torchscript_file,
                                                     tmp_path, two_exemplars, several):
    exemplar = two_exemplars if several else image_folder / "good0.png"
    zeros = zeros_torchscript(torchscript_file, tmp_path / "zeros.pt")
    out = tmp_path / "out"
    result = lomit(*translate_args(image_folder, exemplar, out, checkpoint, "--backend",
                                   "torchscript", "--model-file", zeros,
                                   *(["--pair-mode", "cycle"] if several else [])))
    assert result.code == 1  # the two broken inputs; every other one translated by the file
    assert json.loads((out / "report.json").read_text())["backend"] == "torchscript"
    for name, image in outputs(out).items():
        assert (np.abs(image - 128) <= 1).all(), name
