"""`lomit-fast translate` against careless and hostile use, through the real CLI: odd folders,
collisions, interrupted runs, reruns with other settings, mistakes that must exit 2."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from .cli_run import lomit, translate_args, user_error

BAD = ("corrupt.png", "truncated.png")


@pytest.fixture
def clean_folder(image_folder):
    for name in BAD:
        (image_folder / name).unlink()
    return image_folder


def run(inputs, exemplar, output, checkpoint, *extra):
    return lomit(*translate_args(inputs, exemplar, output, checkpoint, *extra))


def test_symlink_loops_and_folders_named_like_images(clean_folder, checkpoint, tmp_path):
    os.symlink("loop.png", clean_folder / "loop.png")         # a link to itself
    os.symlink(clean_folder, clean_folder / "sub" / "again")  # a folder cycle
    os.symlink(tmp_path / "gone.png", clean_folder / "dangling.png")
    (clean_folder / "folder.png").mkdir()                     # not a file, not an input
    out = tmp_path / "out"
    result = run(clean_folder, clean_folder / "good0.png", out, checkpoint)
    assert result.code == 1 and "Traceback" not in result.err
    failed = {os.path.basename(f["file"]) for f in json.loads((out / "report.json")
                                                              .read_text())["failures"]}
    assert failed == {"loop.png", "dangling.png"}
    assert "loop.png" in result.err
    assert (out / "sub" / "nested.png").is_file() and not (out / "sub" / "again").exists()
    assert not (out / "folder.png").exists()


def test_outputs_never_collide_or_overwrite_inputs(checkpoint, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for name in ("a.png", "a.jpg", "x.png", "x_mask_in.png"):
        Image.fromarray(pixels).save(folder / name)
    out = tmp_path / "out"
    result = run(folder, folder / "a.png", out, checkpoint, "--save-masks")
    assert result.code == 0, result.err[-2000:]
    names = {p.name for p in out.glob("*.png")}
    assert {"a.png", "a_1.png", "x.png", "x_mask_in.png", "x_mask_in_1.png"} <= names
    assert len(names) == 4 * 3  # four inputs, each an image and two masks
    # A glob whose outputs would land on the inputs themselves: numbered instead.
    before = {p: p.read_bytes() for p in folder.iterdir()}
    result = run(str(folder / "*.png"), folder / "a.png", folder, checkpoint)
    assert result.code == 0, result.err[-2000:]
    assert all(p.read_bytes() == b for p, b in before.items())


def test_output_is_input_and_empty_inputs_are_refused(clean_folder, checkpoint, tmp_path):
    user_error(run(clean_folder, clean_folder / "good0.png", clean_folder, checkpoint),
               "--output", "is the input folder")
    assert not (clean_folder / "report.json").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    user_error(run(empty, clean_folder / "good0.png", tmp_path / "o", checkpoint),
               f"--input {empty}: no images to translate")
    (tmp_path / "list.txt").write_text("\n\n")
    user_error(run(tmp_path / "list.txt", clean_folder / "good0.png", tmp_path / "o", checkpoint),
               "no images to translate")
    (tmp_path / "noexemplars").mkdir()
    user_error(run(clean_folder, tmp_path / "noexemplars", tmp_path / "o2", checkpoint),
               "--exemplar", "no exemplar images")


def test_kill_leftovers_and_missing_masks_are_redone(clean_folder, checkpoint, tmp_path):
    out = tmp_path / "out"
    assert run(clean_folder, clean_folder / "good0.png", out, checkpoint, "--save-masks").code == 0
    first = (out / "good1_mask_in.png").read_bytes()
    (out / "good1_mask_in.png").unlink()          # killed between the masks and the image
    (out / ".good2.ab12cd34.tmp.png").write_bytes(b"half a png")   # a kill's temporary
    (out / "notes.txt").write_text("mine")        # not ours: left alone
    result = run(clean_folder, clean_folder / "good0.png", out, checkpoint, "--save-masks")
    assert result.code == 0, result.err[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["done"] == 1 and (out / "good1_mask_in.png").read_bytes() == first
    assert not (out / ".good2.ab12cd34.tmp.png").exists() and (out / "notes.txt").is_file()


def test_rerun_with_other_settings_is_refused_unless_overwrite(clean_folder, checkpoint,
                                                               tmp_path):
    out = tmp_path / "out"
    assert run(clean_folder, clean_folder / "good0.png", out, checkpoint).code == 0
    before = (out / "good2.png").read_bytes()
    user_error(run(clean_folder, clean_folder / "good1.png", out, checkpoint),
               "other settings", "exemplars")
    user_error(run(clean_folder, clean_folder / "good0.png", out, checkpoint, "--composite"),
               "composite")
    assert (out / "good2.png").read_bytes() == before
    result = run(clean_folder, clean_folder / "good1.png", out, checkpoint, "--overwrite")
    assert result.code == 0 and json.loads((out / "report.json").read_text())["skipped"] == 0
    assert (out / "good2.png").read_bytes() != before
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backend"] and len(manifest["exemplars"]) == 64


def test_an_unwritable_output_fails_alone(clean_folder, checkpoint, tmp_path):
    out = tmp_path / "out"
    (out / "good1.png").mkdir(parents=True)       # a folder where an output should go
    result = run(clean_folder, clean_folder / "good0.png", out, checkpoint)
    assert result.code == 1 and "cannot write output" in result.err
    report = json.loads((out / "report.json").read_text())
    n = len([p for p in clean_folder.rglob("*") if p.is_file()])
    assert report["failed"] == 1 and report["done"] == n - 1


@pytest.mark.parametrize("extra, fragments", [
    (["--device", "bogus"], ["--device bogus", "not a device"]),
    (["--device", "cuda:7"], ["--device cuda:7"]),
    (["--batch-size", "0"], ["--batch-size 0"]),
    (["--workers", "-1"], ["--workers -1"]),
    (["--backend", "cpp", "--model-file", "g.onnx"], ["--model-file", "would ignore it"]),
])
def test_argument_mistakes_exit_2(clean_folder, checkpoint, tmp_path, extra, fragments):
    user_error(run(clean_folder, clean_folder / "good0.png", tmp_path / "o", checkpoint, *extra),
               *fragments)


def test_bad_model_files_exit_2(clean_folder, checkpoint, exported, tmp_path):
    import onnx
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not protobuf at all" * 10)
    bare = tmp_path / "bare.onnx"
    model = onnx.load(str(exported))
    del model.metadata_props[:]
    onnx.save(model, str(bare))
    for path, fragment in ((garbage, "not a loadable ONNX graph"),
                           (bare, "not a lomit_fast export")):
        user_error(run(clean_folder, clean_folder / "good0.png", tmp_path / "o", checkpoint,
                       "--backend", "onnxruntime", "--model-file", path), str(path), fragment)


def test_odd_list_and_input_files_exit_2(clean_folder, checkpoint, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"good0.png\n\xff\xfe\x00bad")
    user_error(run(listing, clean_folder / "good0.png", tmp_path / "o", checkpoint),
               str(listing), "UTF-8")
    notes = tmp_path / "notes.md"
    notes.write_text("# not an image")
    user_error(run(notes, clean_folder / "good0.png", tmp_path / "o", checkpoint),
               str(notes), "not an image")
    (tmp_path / "file").write_text("x")
    user_error(run(clean_folder, clean_folder / "good0.png", tmp_path / "file", checkpoint),
               "--output", "not a folder")
