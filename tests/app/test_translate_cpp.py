"""The stand-alone C++ translator (csrc/app, `make app`): the same pixels as the Python engine,
clear messages and exit statuses for bad input."""
import numpy as np
import pytest
from PIL import Image

from lomit_fast.engine.translator import Translator
from lomit_fast.data.images import from_uint8, read_rgb, to_uint8

from .conftest import run


def python_translation(checkpoint, path, exemplar):
    t = Translator.from_checkpoint(checkpoint, backend="reference")
    out, _, _ = t.translate(from_uint8(read_rgb(path)), from_uint8(read_rgb(exemplar)))
    return to_uint8(out)[0].astype(int)


@pytest.mark.parametrize("model", ["torchscript_file", "aoti_file"])
def test_same_pixels_as_the_python_engine(app, folder, checkpoint, model, request):
    result = run(app, "--model", request.getfixturevalue(model), "--input", folder / "in",
                 "--exemplar", folder / "ex.png", "--output", folder / "out", "--batch", 3)
    assert result.returncode == 0, result.stderr
    assert "translated 4 image(s), 0 failed" in result.stdout and "images/s" in result.stdout
    for i in range(4):
        cpp = np.asarray(Image.open(folder / "out" / f"{i}.png")).astype(int)
        py = python_translation(checkpoint, folder / "in" / f"{i}.png", folder / "ex.png")
        assert cpp.shape == py.shape == (32, 32, 3)
        assert np.abs(cpp - py).max() <= 1, f"{i}.png differs by more than one level"


def test_jpeg_in_and_out(app, folder, torchscript_file):
    Image.open(folder / "in" / "0.png").save(folder / "in" / "photo.jpg", quality=95)
    result = run(app, "--model", torchscript_file, "--input", folder / "in", "--exemplar",
                 folder / "ex.png", "--output", folder / "out", "--format", "jpg")
    assert result.returncode == 0, result.stderr
    with Image.open(folder / "out" / "photo.jpg") as image:
        assert image.format == "JPEG" and image.size == (32, 32) and image.mode == "RGB"
    assert not list((folder / "out").glob(".*")), "temporary files left behind"


def test_bad_images_are_reported_and_skipped(app, folder, torchscript_file):
    rng = np.random.default_rng(1)
    bad = folder / "in"
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(bad / "gray.png")
    Image.fromarray(rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)).save(bad / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (16, 32, 3), dtype=np.uint8)).save(bad / "small.png")
    (bad / "cut.png").write_bytes((bad / "0.png").read_bytes()[:120])
    (bad / "fake.jpg").write_bytes(b"not a jpeg")
    result = run(app, "--model", torchscript_file, "--input", bad, "--exemplar",
                 folder / "ex.png", "--output", folder / "out")
    assert result.returncode == 1
    assert "translated 4 image(s), 5 failed" in result.stdout
    err = result.stderr
    assert "gray.png: image is grayscale" in err
    assert "rgba.png: image has an alpha channel" in err
    assert "small.png: image is 32x16, the model translates 32x32 images" in err
    assert "cut.png: cannot decode PNG" in err or "cut.png: cannot read PNG" in err
    assert "fake.jpg: cannot decode JPEG" in err
    assert sorted(p.name for p in (folder / "out").iterdir()) == [f"{i}.png" for i in range(4)]


@pytest.mark.parametrize("case, message", [
    ("missing model", "model file not found"),
    ("corrupt model", "is not a loadable TorchScript file"),
    ("missing input", "is not a folder"),
    ("output is input", "must not be the input folder"),
    ("missing exemplar", "cannot read PNG"),
    ("bad batch", "--batch must be a positive integer"),
    ("unknown flag", "unknown argument --fast"),
])
def test_bad_arguments_exit_2_with_a_message(app, folder, torchscript_file, case, message):
    corrupt = folder / "corrupt.pt"
    corrupt.write_bytes(torchscript_file.read_bytes()[:1000])
    args = {"--model": torchscript_file, "--input": folder / "in", "--exemplar": folder / "ex.png",
            "--output": folder / "out"}
    extra = []
    if case == "missing model":
        args["--model"] = folder / "nope.pt"
    elif case == "corrupt model":
        args["--model"] = corrupt
    elif case == "missing input":
        args["--input"] = folder / "nowhere"
    elif case == "output is input":
        args["--output"] = folder / "in"
    elif case == "missing exemplar":
        args["--exemplar"] = folder / "nope.png"
    elif case == "bad batch":
        extra = ["--batch", "zero"]
    else:
        extra = ["--fast", "yes"]
    result = run(app, *[x for kv in args.items() for x in kv], *extra)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr and "terminate called" not in result.stderr
    before = sorted(p.name for p in (folder / "in").iterdir())
    assert before == [f"{i}.png" for i in range(4)], "inputs must never change"
