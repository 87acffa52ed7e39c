"""auto on the CPU: the model compiled once per model and machine (engine/compiled.py), cached
privately, exact to the parity rule, and never in the way (where it cannot be built, the C++ ops)."""
import os

import pytest
import torch

from lomit_fast.engine import compiled
from lomit_fast.engine.translator import Translator
from lomit_fast.models.checkpoint import load_generator
from lomit_fast.ops import available_backends
from lomit_fast.ops.parity import parity_check

pytestmark = pytest.mark.skipif(compiled.unavailable_reason() is not None,
                                reason=f"{compiled.unavailable_reason()}")


def images(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def default(checkpoint):
    """The translator users get by default (the session's cache: compiled at most once)."""
    return Translator.from_checkpoint(checkpoint)


def test_auto_on_the_cpu_runs_the_cached_compiled_model(default):
    assert default.backend == "aoti"
    path = default.model_file
    assert os.path.dirname(path) == str(compiled.cache_dir() / "aoti")
    assert os.stat(path).st_mode & 0o077 == 0  # code: private to this user


@pytest.mark.parametrize("n, exemplars, masks", [(1, 1, False), (5, 5, False), (3, 1, True)])
def test_the_compiled_default_keeps_the_parity_rule(checkpoint, default, n, exemplars, masks):
    x, exemplar = images(n), images(exemplars, seed=1)
    mask_in = mask_ex = None
    if masks:  # user masks at image resolution, as translate --mask-in gives them
        mask_in, mask_ex = torch.rand(n, 1, 32, 32), torch.rand(1, 1, 32, 32)
    exact = load_generator(checkpoint).double()
    with torch.no_grad():
        fp64 = exact.translate(x.double(), exemplar.double(),
                               *(m if m is None else m.double() for m in (mask_in, mask_ex)))
    reference = Translator.from_checkpoint(checkpoint, backend="reference")
    fast_out = default.translate(x, exemplar, mask_in, mask_ex)
    ref_out = reference.translate(x, exemplar, mask_in, mask_ex)
    for fast, ref, want in zip(fast_out, ref_out, fp64):
        err, bound, _ = parity_check(fast, ref, want, torch.float32)
        assert err <= bound, (err, bound)
    cache = default.cache_exemplar(exemplar[:1])  # a cached exemplar runs the same graph
    torch.testing.assert_close(default.translate(x, cache)[0],
                               default.translate(x, exemplar[:1])[0], rtol=0, atol=0)


def test_a_second_translator_loads_the_package_without_compiling(checkpoint, default,
                                                                  monkeypatch):
    monkeypatch.setattr(compiled, "_compile", lambda *a: pytest.fail("compiled again"))
    again = Translator.from_checkpoint(checkpoint)
    assert again.backend == "aoti" and again.model_file == default.model_file


def test_the_key_follows_the_weights(checkpoint):
    generator = load_generator(checkpoint)
    key = compiled.model_key(generator)
    assert compiled.model_key(load_generator(checkpoint)) == key
    with torch.no_grad():
        next(generator.parameters()).add_(1e-3)
    assert compiled.model_key(generator) != key


def test_a_cache_others_can_write_is_refused_and_auto_goes_on(checkpoint, tmp_path,
                                                             monkeypatch, capsys):
    shared = tmp_path / "shared"
    (shared / "aoti").mkdir(parents=True)
    os.chmod(shared / "aoti", 0o777)
    monkeypatch.setenv(compiled.CACHE_ENV, str(shared))
    monkeypatch.setattr(compiled, "_compile", lambda *a: pytest.fail("compiled into it"))
    translator = Translator.from_checkpoint(checkpoint)
    expected = "cpp" if "cpp" in available_backends("cpu") else "reference"
    assert translator.backend == expected
    message = capsys.readouterr().err
    assert "writable by others" in message and "running the C++ ops instead" in message


def test_a_failed_compile_falls_back_in_one_line(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(compiled.CACHE_ENV, str(tmp_path / "cache"))

    def broken(generator, path):
        raise RuntimeError("g++: internal compiler error\nmore lines")
    monkeypatch.setattr(compiled, "_compile", broken)
    translator = Translator.from_checkpoint(checkpoint)
    assert translator.backend in ("cpp", "reference")
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lomit-fast: the compiled CPU path is unavailable (g++: internal compiler "
                   "error); running the C++ ops instead"]
    assert not list((tmp_path / "cache" / "aoti").glob("*.pt2"))


def test_bf16_and_other_devices_keep_the_op_rule(checkpoint, monkeypatch):
    monkeypatch.setattr(compiled, "_compile", lambda *a: pytest.fail("compiled"))
    assert Translator.from_checkpoint(checkpoint, precision="bf16").backend in ("cpp", "reference")


def test_a_compile_says_where_and_how_long_and_writes_a_private_file(checkpoint, tmp_path,
                                                                      monkeypatch, capsys):
    """The first use's cost is shown; the package lands whole (atomically) and private. It
    holds the dynamic-batch model and the single-image one, both compiled under no_grad
    (freezing, which folds and pre-packs the weights, is silently off otherwise)."""
    compiles = []

    def fake_files(batch, about):
        assert not torch.is_grad_enabled()
        compiles.append((batch, about.get("single_image_model")))
        return [f"files of batch {batch}"]

    def fake_package(package_path, files):
        assert files == {"model": ["files of batch None"],
                         compiled.SINGLE_IMAGE_MODEL: ["files of batch 1"]}
        open(package_path, "wb").write(b"package")
    monkeypatch.setattr(compiled, "export_program", lambda generator, ops, batch=None: batch)
    monkeypatch.setattr(compiled, "_aoti_files", fake_files)
    monkeypatch.setattr(compiled, "package_aoti", fake_package)
    path = tmp_path / "model.pt2"
    compiled._compile(load_generator(checkpoint), path)
    assert compiles == [(None, compiled.SINGLE_IMAGE_MODEL), (1, None)]
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"lomit-fast: compiling the model for this CPU (once; cached in {tmp_path})..."
    assert err[1].startswith("lomit-fast: compiled in ") and err[1].endswith(" s")
    assert path.read_bytes() == b"package" and path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt2"]  # no temporary left behind


def test_large_images_run_image_by_image_and_keep_the_parity_rule(checkpoint, tmp_path,
                                                                  monkeypatch):
    """A model whose activations outgrow the caches runs every batch through the single-image
    model (here forced: any size counts as large)."""
    monkeypatch.setenv(compiled.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(compiled, "IMAGE_BY_IMAGE_BYTES", 0)
    translator = Translator.from_checkpoint(checkpoint)
    assert translator.backend == "aoti"
    assert translator._runner.metadata["image_by_image"] == "true"
    x, exemplar = images(3), images(3, seed=1)
    with torch.no_grad():
        fp64 = load_generator(checkpoint).double().translate(x.double(), exemplar.double())
    ref_out = Translator.from_checkpoint(checkpoint, backend="reference").translate(x, exemplar)
    for fast, ref, want in zip(translator.translate(x, exemplar), ref_out, fp64):
        assert fast.shape == want.shape
        err, bound, _ = parity_check(fast, ref, want, torch.float32)
        assert err <= bound, (err, bound)
    assert [t.shape[0] for t in translator.translate(images(0), exemplar[:1])] == [0, 0, 0]


def test_the_cache_keeps_the_most_recently_used_packages(tmp_path):
    import time
    now = time.time()
    for i in range(compiled.KEEP + 3):  # package i last used i days ago; one just now
        package = tmp_path / f"{i:02d}.pt2"
        package.write_bytes(b"x")
        (tmp_path / f"{i:02d}.lock").touch()
        os.utime(package, (now - i * 86400, now - i * 86400))
    os.utime(tmp_path / "10.pt2")  # the oldest, used again just now
    compiled._prune(tmp_path)
    kept = sorted(p.stem for p in tmp_path.glob("*.pt2"))  # the KEEP most recently used
    assert kept == [f"{i:02d}" for i in range(compiled.KEEP - 1)] + ["10"]
    assert sorted(p.stem for p in tmp_path.glob("*.lock")) == kept


def test_packages_used_within_the_hour_are_never_pruned(tmp_path):
    for i in range(compiled.KEEP + 2):  # e.g. other processes' packages, in use right now
        (tmp_path / f"{i:02d}.pt2").write_bytes(b"x")
    compiled._prune(tmp_path)
    assert len(list(tmp_path.glob("*.pt2"))) == compiled.KEEP + 2
