"""The C++ app against awkward folders and files (issue 12, sections 2 and 5): symlink loops,
stems that repeat, two apps writing into one folder, a full disk, broken model files, threads.
Every case runs the built app; translated + failed always adds up to the entries."""
import re
import resource
import signal
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from .conftest import run


def counts(stdout):
    found = re.search(r"translated (\d+) image\(s\), (\d+) failed", stdout)
    assert found, stdout
    return int(found[1]), int(found[2])


def translate(app, model, folder, *extra, **kwargs):
    return run(app, "--model", model, "--input", folder / "in", "--exemplar", folder / "ex.png",
               "--output", folder / "out", *extra, **kwargs)


def test_symlink_loops_are_reported_by_name_and_skipped(app, folder, torchscript_file):
    inputs = folder / "in"
    (inputs / "loop.png").symlink_to("loop.png")
    (inputs / "a").symlink_to("b")
    (inputs / "b").symlink_to("a")
    result = translate(app, torchscript_file, folder)
    assert result.returncode == 1, result.stderr
    assert counts(result.stdout) == (4, 3)
    for name in "loop.png", "a", "b":
        assert f"skipped {inputs / name}: Too many levels of symbolic links" in result.stderr
    assert sorted(p.name for p in (folder / "out").iterdir()) == [f"{i}.png" for i in range(4)]


def test_repeated_stems_get_numbered_names_like_the_python_job(app, folder, checkpoint,
                                                               torchscript_file, tmp_path):
    inputs = folder / "in"
    with Image.open(inputs / "1.png") as image:
        image.save(inputs / "0.jpg", quality=95)  # 0.jpg sorts before 0.png
    result = translate(app, torchscript_file, folder)
    assert result.returncode == 0, result.stderr
    assert counts(result.stdout) == (5, 0)
    # Sorted inputs 0.jpg, 0.png, ... -> 0.png, 0_1.png: the rule of lomit-fast translate.
    python = run(sys.executable, "-m", "lomit_fast.cli", "translate", "--input", inputs,
                 "--exemplar", folder / "ex.png", "--output", tmp_path / "py",
                 "--checkpoint", checkpoint, "--backend", "reference")
    assert python.returncode == 0, python.stderr
    names = sorted(p.name for p in (folder / "out").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "py").glob("*.png"))
    assert names == ["0.png", "0_1.png", "1.png", "2.png", "3.png"]
    # The same input behind each name in both: 0.jpg -> 0.png, 0.png -> 0_1.png.
    for name in names:
        cpp, py = (np.asarray(Image.open(f / name)).astype(int) for f in (folder / "out",
                                                                           tmp_path / "py"))
        assert np.abs(cpp - py).max() <= 1, name


def test_two_apps_write_into_one_folder(app, folder, torchscript_file):
    rng = np.random.default_rng(2)
    for i in range(4, 40):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            folder / "in" / f"{i}.png")
    import subprocess
    args = [str(app), "--model", str(torchscript_file), "--input", str(folder / "in"),
            "--exemplar", str(folder / "ex.png"), "--output", str(folder / "out"), "--batch", "1"]
    both = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={"OMP_NUM_THREADS": "1"}) for _ in range(2)]
    for process in both:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        assert counts(stdout) == (40, 0)
    assert sorted(p.name for p in (folder / "out").iterdir()) == sorted(
        f"{i}.png" for i in range(40)), "a temporary file was left behind or an output lost"


def test_a_full_disk_counts_every_failed_write(app, folder, torchscript_file):
    """A file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes every write of a larger PNG fail
    with EFBIG, as a full disk does with ENOSPC, in the middle of batches."""
    rng = np.random.default_rng(3)
    for i in range(4, 9):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            folder / "in" / f"{i}.png")
    assert translate(app, torchscript_file, folder).returncode == 0
    sizes = {p.name: p.stat().st_size for p in (folder / "out").iterdir()}
    limit = sorted(sizes.values())[len(sizes) // 2]
    fits = sorted(name for name, size in sizes.items() if size <= limit)
    assert 0 < len(fits) < len(sizes)
    for p in (folder / "out").iterdir():
        p.unlink()

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    result = translate(app, torchscript_file, folder, "--batch", "3", preexec_fn=limit_file_size)
    assert result.returncode == 1
    assert counts(result.stdout) == (len(fits), len(sizes) - len(fits))
    assert result.stderr.count("cannot write PNG") == len(sizes) - len(fits), result.stderr
    assert sorted(p.name for p in (folder / "out").iterdir()) == fits  # no temporary files


def rewrite(source, target, replace):
    """A copy of the zip archive `source` with the entries whose name ends with a key of
    `replace` given that content."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for entry in old.infolist():
            data = old.read(entry)
            for suffix, content in replace.items():
                if entry.filename.endswith(suffix):
                    data = content
            new.writestr(entry, data)
    return target


def test_a_broken_pt2_leaves_no_extracted_files(app, folder, aoti_file, tmp_path):
    broken = rewrite(aoti_file, tmp_path / "broken.pt2", {".so": b"\x7fELF not really"})
    temp = tmp_path / "tmp"
    temp.mkdir()
    result = translate(app, broken, folder, env={"TMPDIR": str(temp)})
    assert result.returncode == 2, result.stderr
    reason = result.stderr.split("is not a loadable AOTInductor package:", 1)[1]
    assert reason.strip() and ".so" in reason, result.stderr
    assert list(temp.iterdir()) == [], "extracted files left behind"
    # A good package is extracted there too and removed when the app ends.
    assert translate(app, aoti_file, folder, env={"TMPDIR": str(temp)}).returncode == 0
    assert list(temp.iterdir()) == []


def test_a_pt2_for_another_cpu_is_refused_before_its_code_runs(app, folder, aoti_file):
    """The package's code is compiled for this CPU's vector ISA (AOTI_CPU_ISA: AVX2 or AVX512 on
    x86-64); a process limited to plain x86-64 (ATEN_CPU_CAPABILITY=default) stands for an older
    CPU, which would die of SIGILL in that code."""
    result = translate(app, aoti_file, folder, env={"ATEN_CPU_CAPABILITY": "default"})
    assert result.returncode == 2, result.stderr
    assert re.search(r"it holds code compiled for AVX(2|512)\S*( \S+)*, which this CPU \(ATen "
                     r"capability DEFAULT\) does not run: export it again", result.stderr), \
        result.stderr


def test_a_poisoned_torchscript_file_gives_a_reason(app, folder, torchscript_file, tmp_path):
    poisoned = rewrite(torchscript_file, tmp_path / "poisoned.pt",
                       {"code/__torch__/lomit_fast/models/generator.py": b"def forward(:\n"})
    result = translate(app, poisoned, folder)
    assert result.returncode == 2, result.stderr
    reason = result.stderr.split("is not a loadable TorchScript file:", 1)[1]
    assert reason.split("\n", 1)[0].strip(), result.stderr  # the reason starts on that line
    assert "terminate called" not in result.stderr


@pytest.mark.parametrize("threads, ok", [("1", True), ("0", False), ("x", False)])
def test_threads(app, folder, torchscript_file, threads, ok):
    result = translate(app, torchscript_file, folder, "--threads", threads)
    if ok:
        assert result.returncode == 0 and counts(result.stdout) == (4, 0), result.stderr
    else:
        assert result.returncode == 2
        assert f"--threads must be a positive integer, got {threads}" in result.stderr
