import pytest

from lomit_fast.cli import main


@pytest.fixture(scope="session")
def exported(checkpoint, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "g.onnx"
    assert main(["export", "--format", "onnx", "--out", str(path),
                 "--checkpoint", str(checkpoint)]) == 0
    return path
