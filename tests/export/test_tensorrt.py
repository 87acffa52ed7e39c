"""The TensorRT path: what runs without TensorRT is tested here; the real build skips without it."""
import importlib.util

import pytest

from lomit_fast.cli import main
from lomit_fast.export.tensorrt import (TensorRTUnavailable, batch_profile,
                                        graph_with_required_inputs, io_names, require_tensorrt)

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None


def test_io_names_and_profile(exported):
    inputs, outputs, shapes = io_names(exported)
    assert inputs == ["images", "exemplars", "mask_in", "mask_ex"]
    assert outputs == ["output", "masks_in", "masks_ex"]
    profile = batch_profile(exported, 1, 8, 64).shapes
    assert profile["images"] == ((1, 3, 32, 32), (8, 3, 32, 32), (64, 3, 32, 32))
    assert profile["mask_ex"][2] == (64, 1, 8, 8)
    with pytest.raises(ValueError, match="1 <= min <= opt <= max"):
        batch_profile(exported, 4, 2, 8)


def test_tensorrt_gets_the_masks_as_plain_inputs(exported):
    """TensorRT would read the optional masks' defaults as weights: it parses a copy of the graph
    where all four inputs are required, as the runner feeds them."""
    import onnx
    import onnxruntime
    model = onnx.load_from_string(graph_with_required_inputs(exported))
    assert not {t.name for t in model.graph.initializer} & {"mask_in", "mask_ex"}
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images", "exemplars", "mask_in", "mask_ex"]


def test_missing_onnx_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such ONNX file"):
        io_names(tmp_path / "absent.onnx")


@pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed: the unavailable path cannot occur")
def test_clear_message_without_tensorrt(exported, tmp_path, capsys):
    with pytest.raises(TensorRTUnavailable, match="TensorRT is not installed"):
        require_tensorrt()
    assert main(["export", "--format", "tensorrt", "--onnx", str(exported),
                 "--out", str(tmp_path / "g.plan")]) == 2
    assert "TensorRT is not installed" in capsys.readouterr().err


@pytest.mark.skipif(not HAVE_TRT, reason="TensorRT is not installed (import tensorrt fails)")
@pytest.mark.gpu
def test_build_and_run_engine(exported, checkpoint, tmp_path):
    import torch

    from lomit_fast.engine.translator import Translator
    from lomit_fast.export.tensorrt import build_engine
    engine = build_engine(exported, tmp_path / "g.plan", 1, 4, 8)
    trt = Translator.from_checkpoint(checkpoint, "tensorrt", device="cuda", model_file=str(engine))
    eager = Translator.from_checkpoint(checkpoint, "reference", device="cuda")
    x = torch.rand(3, 3, 32, 32, device="cuda") * 2 - 1
    torch.testing.assert_close(trt.translate(x, x)[0], eager.translate(x, x)[0], atol=1e-3, rtol=1e-3)
