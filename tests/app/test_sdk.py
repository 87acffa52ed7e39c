"""The C++ SDK the way the README's "Embed in C++" section tells a user to use it: `make sdk
PREFIX=<dir>`, then the stand-alone example csrc/examples configured and built from scratch with
nothing but find_package(lomit_fast), run on .pt and .pt2 exports and compared with the Python
engine; and the copy of the libraries inside the Python package (python -m lomit_fast.cpp)."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lomit_fast.engine.translator import Translator

from .conftest import ROOT, run

TORCH_CMAKE = torch.utils.cmake_prefix_path


def check(*command, **kwargs):
    result = run(*command, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def sdk(app, tmp_path_factory):
    """README step 2: make sdk PREFIX=<dir> (the app's build folder, installed)."""
    prefix = tmp_path_factory.mktemp("sdk") / "prefix"
    check("make", "--no-print-directory", "sdk", f"PREFIX={prefix}", cwd=ROOT)
    return prefix


def build_example(prefix, build):
    check("cmake", "-S", ROOT / "csrc" / "examples", "-B", build, "-DCMAKE_BUILD_TYPE=Release",
          f"-DCMAKE_PREFIX_PATH={prefix};{TORCH_CMAKE}")
    check("cmake", "--build", build)
    return build / "translate_batch"


@pytest.fixture(scope="module")
def example(sdk, tmp_path_factory):
    """README step 3: the example project, configured and built against the SDK from scratch."""
    return build_example(sdk, tmp_path_factory.mktemp("example"))


def made_up_batch(n: int, s: int):
    """The inputs translate_batch.cpp makes, by the same torch ops."""
    k = 3 * s * s
    images = (torch.arange(k, dtype=torch.float32)[None]
              + torch.arange(n, dtype=torch.float32)[:, None] * 1000).mul(0.01).sin()
    exemplar = torch.arange(k, dtype=torch.float32).mul(0.02).sin()
    return images.reshape(n, 3, s, s), exemplar.reshape(1, 3, s, s)


@pytest.mark.parametrize("model", ["torchscript_file", "aoti_file"])
def test_the_example_matches_the_python_engine(example, checkpoint, model, request, tmp_path):
    out = tmp_path / "images.f32"
    result = check(example, request.getfixturevalue(model), 8, out)
    cpp = torch.from_numpy(np.fromfile(out, dtype=np.float32).reshape(8, 3, 32, 32))
    images, exemplar = made_up_batch(8, 32)
    with torch.no_grad():
        py, masks_in, masks_ex = Translator.from_checkpoint(checkpoint, backend="reference") \
            .translate(images, exemplar)
    assert (cpp - py).abs().max().item() <= 1e-5
    sums = re.fullmatch(r"checksum images (\S+) masks_in (\S+) masks_ex (\S+)\n", result.stdout)
    assert sums, result.stdout
    for printed, tensor in zip(sums.groups(), (py, masks_in, masks_ex)):
        assert abs(float(printed) - tensor.sum().item()) <= 1e-6 * tensor.numel()


@pytest.mark.parametrize("model", ["torchscript_file", "aoti_file"])
def test_without_the_ops_library_the_error_says_what_to_link(example, model, request, tmp_path):
    """A program whose liblomit_ops.so registers nothing (an empty library found first through
    LD_LIBRARY_PATH), as when the linker dropped it."""
    (tmp_path / "empty.cpp").write_text("")
    check("g++", "-shared", "-fPIC", tmp_path / "empty.cpp", "-o", tmp_path / "liblomit_ops.so")
    (tmp_path / "tmp").mkdir()
    result = run(example, request.getfixturevalue(model), 2,
                 env={"LD_LIBRARY_PATH": str(tmp_path), "TMPDIR": str(tmp_path / "tmp")})
    assert result.returncode == 1
    assert re.search(r"(Unknown builtin op:|Could not find schema for) lomit::instance_norm",
                     result.stderr), result.stderr
    assert "link liblomit_ops.so (CMake: target lomit_fast::ops" in result.stderr
    assert list((tmp_path / "tmp").iterdir()) == [], "extracted files left behind"


def test_the_installed_files_point_nowhere_else(sdk):
    files = sorted(str(p.relative_to(sdk)) for p in sdk.rglob("*") if p.is_file())
    assert files == ["include/lomit_fast/engine/translator.h",
                     "lib/cmake/lomit_fast/lomit_fastConfig.cmake",
                     "lib/cmake/lomit_fast/lomit_fastConfigVersion.cmake",
                     "lib/liblomit_engine.so", "lib/liblomit_ops.so"]
    for library in sdk.glob("lib/*.so"):
        dynamic = check("readelf", "-d", library).stdout
        assert "RPATH" not in dynamic and "RUNPATH" not in dynamic, dynamic
        assert f"Library soname: [{library.name}]" in dynamic
    for config in sdk.glob("lib/cmake/lomit_fast/*"):
        assert str(ROOT) not in config.read_text() and ".venv" not in config.read_text()


def test_portable_builds_leave_out_march_native(tmp_path):
    check("cmake", "-G", "Unix Makefiles", "-S", ROOT / "csrc", "-B", tmp_path,
          "-DLOMIT_PORTABLE=ON", "-DLOMIT_BUILD_APP=OFF", f"-DCMAKE_PREFIX_PATH={TORCH_CMAKE}")
    flags = tmp_path / "CMakeFiles" / "lomit_ops.dir" / "flags.make"
    assert "-O3" in flags.read_text() and "-march=native" not in flags.read_text()
    check("cmake", "-DLOMIT_PORTABLE=OFF", tmp_path)  # the default: this machine's CPU
    assert "-march=native" in flags.read_text()


def test_the_example_builds_on_the_python_package_too(example, torchscript_file, tmp_path):
    prefix = check(sys.executable, "-m", "lomit_fast.cpp", "--cmake-prefix").stdout.strip()
    program = build_example(prefix, tmp_path / "build")
    cache = (tmp_path / "build" / "CMakeCache.txt").read_text()
    assert f"lomit_fast_DIR:PATH={prefix}/lib/cmake/lomit_fast" in cache
    assert check(program, torchscript_file).stdout == check(example, torchscript_file).stdout


def test_the_python_package_ships_the_sdk():
    """python -m lomit_fast.cpp names the package's own copy; torch.ops.load_library takes it in a
    fresh interpreter, and again where lomit_fast._C already registered the ops."""
    prefix = check(sys.executable, "-m", "lomit_fast.cpp", "--cmake-prefix").stdout.strip()
    ops = check(sys.executable, "-m", "lomit_fast.cpp", "--ops-library").stdout.strip()
    assert ops == f"{prefix}/lib/liblomit_ops.so"
    for name in ("lib/cmake/lomit_fast/lomit_fastConfig.cmake", "lib/liblomit_engine.so",
                 "include/lomit_fast/engine/translator.h"):
        assert Path(prefix, name).is_file(), name
    dynamic = check("readelf", "-d", ops).stdout
    assert "libtorch_python" not in dynamic and "libpython" not in dynamic
    script = f"""
import torch, sys
if sys.argv[1] == "with _C":
    import lomit_fast._C
torch.ops.load_library({ops!r})
x = torch.randn(2, 3, 8, 8)
y = torch.ops.lomit.instance_norm(x, None, None, 1e-5, "none", 0.0)[0]
print((y - torch.nn.functional.instance_norm(x)).abs().max().item())
"""
    for mode in "alone", "with _C":
        error = float(check(sys.executable, "-c", script, mode).stdout)
        assert error <= 1e-5, mode


def test_the_locator_says_when_the_libraries_are_not_built(monkeypatch, tmp_path, capsys):
    from lomit_fast import cpp
    monkeypatch.setattr(cpp, "PREFIX", tmp_path)  # a package installed with LOMIT_BUILD_EXT=0
    for flag in "--ops-library", "--cmake-prefix":
        assert cpp.main([flag]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is missing: the C++ libraries of lomit_fast are not " \
            "built" in err and str(tmp_path) in err
