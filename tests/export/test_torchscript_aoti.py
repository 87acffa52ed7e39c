"""TorchScript and AOTInductor exports: round trips against eager (Python and the C++ engine),
the lomit:: C++ ops inside the graph, metadata, optional masks, and clear errors."""
import zipfile

import pytest
import torch

from lomit_fast.models.checkpoint import load_generator
from lomit_fast.engine.translator import Translator
from lomit_fast.export.torchscript import load_torchscript
from lomit_fast.engine.runners import cpp_engine
from lomit_fast.ops import BackendError, cpp_ops, use_backend

pytestmark = pytest.mark.skipif(cpp_ops.IMPORT_ERROR is not None,
                                reason=f"lomit_fast._C not built: {cpp_ops.IMPORT_ERROR}")


def images(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def generator(checkpoint):
    return load_generator(checkpoint)


def eager(generator, x, exemplar, mask_in=None, mask_ex=None):
    with torch.no_grad(), use_backend("reference"):
        return generator.translate(x, exemplar, mask_in, mask_ex)


def assert_matches(out, ref, atol=1e-5):
    assert len(out) == 3
    for name, a, b in zip(("images", "masks_in", "masks_ex"), out, ref):
        assert a.shape == b.shape, name
        torch.testing.assert_close(a, b, rtol=0, atol=atol, msg=lambda m: f"{name}: {m}")


def runners(torchscript_file, aoti_file):
    ts, _ = load_torchscript(torchscript_file)
    package = torch._inductor.aoti_load_package(str(aoti_file))
    return {"torchscript (Python)": lambda x, e: ts(x, e),
            "aoti (Python)": lambda x, e: package(x, e.expand_as(x).contiguous(),
                                                  torch.full((x.shape[0], 1, 8, 8), -1.0),
                                                  torch.full((x.shape[0], 1, 8, 8), -1.0)),
            "torchscript (C++ engine)": cpp_engine(torchscript_file).run,
            "aoti (C++ engine)": cpp_engine(aoti_file).run}


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_round_trips_match_eager(generator, torchscript_file, aoti_file, batch):
    x, exemplar = images(batch, 0), images(batch, 1)
    ref = eager(generator, x, exemplar)
    for name, run in runners(torchscript_file, aoti_file).items():
        with torch.no_grad():
            out = run(x, exemplar)
        assert_matches(out, ref), name


def test_graph_calls_the_cpp_ops(torchscript_file):
    module, meta = load_torchscript(torchscript_file)
    graph = str(module.core.inlined_graph)
    assert "lomit::hain" in graph and "lomit::instance_norm" in graph
    assert meta["image_size"] == "32" and meta["content_size"] == "8"
    assert meta["value_range"] == "[-1, 1]" and '"style_dim"' in meta["model_config"]


def test_archive_root_is_the_file_name(torchscript_file, aoti_file):
    """torch.jit.save and AOTInductor name the zip's root folder after the file they write: the
    final name (g/...), not the temporary one (.g.x1y2.tmp/...)."""
    for path in (torchscript_file, aoti_file):
        with zipfile.ZipFile(path) as archive:
            roots = {name.split("/", 1)[0] for name in archive.namelist()}
        assert roots == {path.stem}, (path, roots)


def test_engine_metadata(torchscript_file, aoti_file):
    for path, fmt in ((torchscript_file, "torchscript"), (aoti_file, "aoti")):
        engine = cpp_engine(path)
        assert (engine.format, engine.image_size, engine.content_size) == (fmt, 32, 8)
        assert engine.metadata["precision"] == "fp32"


def test_masks_and_single_exemplar(generator, torchscript_file, aoti_file):
    """User masks (content or image resolution) and one exemplar for the batch, in every runner
    that takes them, match eager with the same arguments."""
    x, exemplar = images(3, 2), images(1, 3)
    g = torch.Generator().manual_seed(4)
    mask_in, mask_ex = torch.rand(3, 1, 8, 8, generator=g), torch.rand(1, 1, 32, 32, generator=g)
    ref = eager(generator, x, exemplar, mask_in, mask_ex)
    ts, _ = load_torchscript(torchscript_file)
    with torch.no_grad():
        assert_matches(ts(x, exemplar, mask_in, mask_ex), ref)
    for path in (torchscript_file, aoti_file):
        assert_matches(cpp_engine(path).run(x, exemplar, mask_in, mask_ex), ref)
    only_in = eager(generator, x, exemplar, mask_in)
    assert_matches(cpp_engine(aoti_file).run(x, exemplar, mask_in=mask_in), only_in)


def test_translator_backends_run_the_exports(checkpoint, torchscript_file, aoti_file):
    x, exemplar = images(2, 5), images(1, 6)
    ref = Translator.from_checkpoint(checkpoint, backend="reference").translate(x, exemplar)
    for backend, path in (("torchscript", torchscript_file), ("aoti", aoti_file)):
        t = Translator.from_checkpoint(checkpoint, backend=backend, model_file=str(path))
        assert_matches(t.translate(x, exemplar), ref)


def test_engine_errors_are_clear(torchscript_file, aoti_file, tmp_path):
    with pytest.raises(RuntimeError, match="model file not found: .*missing.pt"):
        cpp_engine(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(torchscript_file.read_bytes()[:2000])
    with pytest.raises(RuntimeError, match="corrupt.pt is not a loadable TorchScript file"):
        cpp_engine(corrupt)
    garbage = tmp_path / "garbage.pt2"
    garbage.write_bytes(b"not a package")
    with pytest.raises(RuntimeError, match="garbage.pt2 is not a loadable AOTInductor package"):
        cpp_engine(garbage)
    with pytest.raises(ValueError, match="device must be"):
        cpp_engine(torchscript_file, "tpu")
    image, exemplar = torch.zeros(2, 3, 32, 32), torch.zeros(1, 3, 32, 32)
    wrong_shape = r"images must have shape \(N, 3, 32, 32\), got "
    for path in (torchscript_file, aoti_file):
        engine = cpp_engine(path)
        with pytest.raises(ValueError, match=wrong_shape + r"\[2, 3, 16, 16\]"):
            engine.run(torch.zeros(2, 3, 16, 16), exemplar)
        with pytest.raises(ValueError, match=wrong_shape + r"\[2, 1, 32, 32\]"):
            engine.run(torch.zeros(2, 1, 32, 32), exemplar)
        with pytest.raises(ValueError, match="exemplars must hold 1 or 2 images"):
            engine.run(image, torch.zeros(3, 3, 32, 32))
        with pytest.raises(ValueError, match="mask_in must have shape"):
            engine.run(image, exemplar, torch.zeros(2, 1, 5, 5))
        with pytest.raises(ValueError, match=r"mask_ex values must lie in \[0, 1\]"):
            engine.run(image, exemplar,
                       mask_ex=torch.full((1, 1, 8, 8), 2.0))


def test_scripted_module_checks_its_inputs(torchscript_file):
    module, _ = load_torchscript(torchscript_file)
    with pytest.raises(Exception, match=r"images must have shape \(N, 3, 32, 32\)"):
        module(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 32, 32))


def test_translator_rejects_a_wrong_or_mismatched_file(checkpoint, torchscript_file, tmp_path):
    with pytest.raises(BackendError, match="needs an exported .pt2 file"):
        Translator.from_checkpoint(checkpoint, backend="aoti", model_file=str(torchscript_file))
    with pytest.raises(BackendError, match="model file not found"):
        Translator.from_checkpoint(checkpoint, backend="torchscript",
                                   model_file=str(tmp_path / "nope.pt"))
    with pytest.raises(BackendError, match="runs the file as exported"):
        Translator.from_checkpoint(checkpoint, backend="torchscript", precision="bf16",
                                   model_file=str(torchscript_file))
    with pytest.raises(BackendError, match="translates 32x32 images, the checkpoint 64x64"):
        Translator.from_checkpoint(None, backend="torchscript", model_file=str(torchscript_file))


def test_export_cli_errors_name_the_problem(checkpoint, tmp_path, capsys):
    from lomit_fast.cli import main
    assert main(["export", "--format", "aoti", "--out", str(tmp_path / "g.pt"),
                 "--checkpoint", str(checkpoint)]) == 2
    assert "must end in .pt2" in capsys.readouterr().err
    assert main(["export", "--format", "torchscript", "--out", str(tmp_path / "g.pt"),
                 "--checkpoint", str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["export", "--format", "aoti", "--out", str(tmp_path / "g.pt2"),
                     "--checkpoint", str(checkpoint), "--device", "cuda"]) == 2
        assert "--device cuda: CUDA is not available" in capsys.readouterr().err
    assert not list(tmp_path.iterdir()), "nothing is written when an export fails"
