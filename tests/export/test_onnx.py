"""ONNX export: standard ops, symbolic batch, metadata, onnxruntime parity, clear errors."""
import onnx
import onnxruntime
import pytest
import torch

from lomit_fast.models.checkpoint import load_generator
from lomit_fast.cli import main
from lomit_fast.engine.translator import Translator
from lomit_fast.engine.runners import OnnxRunner
from lomit_fast.export.onnx import export_onnx, version_number
from lomit_fast.version import __version__


def inputs(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1


def test_graph_is_standard_with_symbolic_batch(exported):
    model = onnx.load(str(exported))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version >= 18
    ops = {(node.domain, node.op_type) for node in model.graph.node}
    assert all(domain in ("", "ai.onnx") for domain, _ in ops)
    assert ("", "InstanceNormalization") in ops
    for value in list(model.graph.input) + list(model.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param  # a named, symbolic batch axis
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["image_size"] == "32" and meta["value_range"] == "[-1, 1]"
    assert meta["lomit_fast_version"] == __version__


def test_graph_documents_its_inputs_and_outputs(exported):
    """Exemplars and masks have batch axes of their own (1 or N); the masks are optional inputs
    (an initializer of -1: predict); every input and output says what it is."""
    model = onnx.load(str(exported))
    axes = {v.name: v.type.tensor_type.shape.dim[0].dim_param for v in model.graph.input}
    assert len(set(axes.values())) == 4, axes
    defaults = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer
                if t.name in ("mask_in", "mask_ex")}
    assert sorted(defaults) == ["mask_ex", "mask_in"]
    assert all(d.shape == (1, 1, 8, 8) and (d == -1).all() for d in defaults.values())
    for value in [*model.graph.input, *model.graph.output]:
        assert value.doc_string.startswith("(")  # shape first, then meaning
    mask_doc = model.graph.input[2].doc_string
    assert "< 0" in mask_doc and "optional" in mask_doc
    assert model.model_version == version_number(__version__) != 2**63 - 1
    assert version_number("1.2.3") == 1_002_003


def test_one_exemplar_for_a_batch_and_no_masks_in_onnxruntime(exported, checkpoint):
    """What a deployment engineer passes: 8 images, 1 exemplar, nothing else."""
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    x, exemplar = inputs(8), inputs(1, seed=1)
    got = session.run(None, {"images": x.numpy(), "exemplars": exemplar.numpy()})
    with torch.no_grad():
        want = load_generator(checkpoint).translate(x, exemplar.expand(8, -1, -1, -1))
    for name, g, w in zip(("output", "masks_in", "masks_ex"), got, want):
        assert g.shape[0] == 8 and (torch.from_numpy(g) - w).abs().max().item() <= 1e-4, name


@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("masks", [False, True])
def test_onnxruntime_matches_eager(exported, checkpoint, batch, masks):
    generator = load_generator(checkpoint)
    runner = OnnxRunner(exported, torch.device("cpu"))
    x, exemplar = inputs(batch), inputs(batch, seed=1)
    mask_in = torch.rand(batch, 1, 8, 8) if masks else None
    mask_ex = torch.rand(batch, 1, 32, 32) if masks else None  # image resolution is pooled
    with torch.no_grad():
        expected = generator.translate(x, exemplar, mask_in, mask_ex)
    for got, want in zip(runner.run(x, exemplar, mask_in, mask_ex), expected):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_engine_backend_runs_the_file(exported, checkpoint):
    onnx_backend = Translator.from_checkpoint(checkpoint, "onnxruntime", model_file=str(exported))
    eager = Translator.from_checkpoint(checkpoint, "reference")
    x, exemplar = inputs(2), inputs(1, seed=1)
    torch.testing.assert_close(onnx_backend.translate(x, exemplar)[0],
                               eager.translate(x, exemplar)[0], atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_fp16_graph_within_half_precision_error(checkpoint, tmp_path):
    path = export_onnx(load_generator(checkpoint), tmp_path / "g16.onnx", fp16=True)
    generator = load_generator(checkpoint)
    x, exemplar = inputs(2), inputs(2, seed=1)
    with torch.no_grad():
        reference = generator.translate(x, exemplar)[0]
        half = generator.half().translate(x.half(), exemplar.half())[0].float()  # same in torch
    got = OnnxRunner(path, torch.device("cpu")).run(x, exemplar)[0]
    err_ref = (half - reference).abs().max().item()
    assert (got - reference).abs().max().item() <= 2 * err_ref + 1e-3


def test_bad_checkpoint_and_unwritable_path(checkpoint, tmp_path, capsys):
    (tmp_path / "bad.safetensors").write_bytes(b"nonsense")
    assert main(["export", "--format", "onnx", "--out", str(tmp_path / "x.onnx"),
                 "--checkpoint", str(tmp_path / "bad.safetensors")]) == 2
    assert "not a readable safetensors file" in capsys.readouterr().err
    blocked = tmp_path / "file"
    blocked.write_text("a file where a folder should be")
    assert main(["export", "--format", "onnx", "--out", str(blocked / "x.onnx"),
                 "--checkpoint", str(checkpoint)]) == 2
    assert capsys.readouterr().err
    assert not list(tmp_path.glob("**/*.onnx*"))  # no partial file left behind
