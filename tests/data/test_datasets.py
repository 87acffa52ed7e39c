"""Data loaders on small fixture folders, including malformed ones."""
import numpy as np
import pytest
import torch
from PIL import Image

from lomit_fast.config import DataConfig
from lomit_fast.data.datasets import DataError, build_source, read_table, split


def write_images(folder, names, size=(20, 24)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).save(folder / name)


def celeba(tmp_path, lines=None):
    write_images(tmp_path / "img", [f"{i:06d}.jpg" for i in range(1, 6)])
    text = lines or ["5", "Black_Hair Blond_Hair Smiling"] + [
        f"{i:06d}.jpg {'1' if i % 2 else '-1'} -1 {'1' if i > 2 else '-1'}" for i in range(1, 6)]
    (tmp_path / "attr.txt").write_text("\n".join(text) + "\n")
    return DataConfig(kind="celeba", root=str(tmp_path / "img"), attr_file=str(tmp_path / "attr.txt"),
                      attributes=["Smiling", "Black_Hair"], crop_size=16, test_size=1, workers=0)


def first_pair(cfg, size=8, batch=2):
    return next(build_source(cfg, size, batch, torch.device("cpu")).batches(0, 1))


def test_celeba_layout(tmp_path):
    x_a, labels_a, x_b, labels_b = first_pair(celeba(tmp_path))
    assert x_a.shape == (2, 3, 8, 8) and labels_a.shape == (2, 2)
    assert x_a.min() >= -1 and x_a.max() <= 1
    assert set(labels_a.flatten().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("lines, message", [
    (["5", "Black_Hair Blond_Hair Smiling", "000001.jpg 1 -1"], r"attr.txt:3: malformed line"),
    (["x"], r"attr.txt:1: expected the image count"),
    (["1", "Black_Hair Blond_Hair", "000001.jpg 1 -1"], r"attr.txt:2: unknown attribute"),
    (["2", "Black_Hair Blond_Hair Smiling", "000001.jpg 1 -1 1"], r"attr.txt:1: says 2 images"),
])
def test_malformed_attribute_file(tmp_path, lines, message):
    with pytest.raises(DataError, match=message):
        build_source(celeba(tmp_path, lines), 8, 2, torch.device("cpu"))


def test_unreadable_image_is_reported_and_skipped(tmp_path, capsys):
    cfg = celeba(tmp_path)
    (tmp_path / "img" / "000001.jpg").write_bytes(b"broken")
    cfg.test_size = 0
    source = build_source(cfg, 8, 2, torch.device("cpu"))
    for _ in source.batches(0, 3):
        pass
    assert "000001.jpg" in capsys.readouterr().err


def test_folder_domains_and_errors(tmp_path):
    write_images(tmp_path / "horse", ["a.png", "b.png"])
    write_images(tmp_path / "zebra", ["c.jpg", "d.jpg"])
    cfg = DataConfig(kind="folders", root=str(tmp_path), attributes=["horse", "zebra"],
                     test_size=0, workers=0)
    _, labels, _, _ = first_pair(cfg)
    assert labels.sum(1).tolist() == [1.0, 1.0]
    (tmp_path / "empty").mkdir()
    cfg.attributes = ["horse", "empty"]
    with pytest.raises(DataError, match="empty: domain folder holds no images"):
        build_source(cfg, 8, 2, torch.device("cpu"))


def test_attribute_table(tmp_path):
    write_images(tmp_path / "img", ["a.png", "b.png", "c.png"])
    (tmp_path / "au.csv").write_text("file,AU1,AU2\na.png,1,0\nb.png,0,1\nc.png,1,1\n")
    cfg = DataConfig(kind="table", root=str(tmp_path / "img"), attr_file=str(tmp_path / "au.csv"),
                     attributes=["AU2"], test_size=0, workers=0)
    _, labels, _, _ = first_pair(cfg)
    assert labels.shape == (2, 1)
    (tmp_path / "au.csv").write_text("file,AU1,AU2\na.png,1,2\n")
    with pytest.raises(DataError, match=r"au.csv:2: malformed row"):
        build_source(cfg, 8, 2, torch.device("cpu"))


def test_batches_are_a_function_of_the_step(tmp_path):
    cfg = celeba(tmp_path)
    source = build_source(cfg, 8, 1, torch.device("cpu"))
    all_steps = [b[0] for b in source.batches(0, 4)]
    from_two = [b[0] for b in source.batches(2, 4)]
    assert torch.equal(all_steps[2], from_two[0]) and torch.equal(all_steps[3], from_two[1])


def test_test_split_is_the_first_images(tmp_path):
    cfg = celeba(tmp_path)
    cfg.test_size = 2
    train, test = split(read_table(cfg, 8), cfg.test_size)
    assert [r[0] for r in test.rows] == ["000001.jpg", "000002.jpg"]
    assert [r[0] for r in train.rows] == ["000003.jpg", "000004.jpg", "000005.jpg"]
    source = build_source(cfg, 8, 2, torch.device("cpu"))
    assert source.dataset.rows == train.rows  # training never sees the test split
    cfg.test_size = 5
    with pytest.raises(DataError, match=r"attr.txt: lists 5 images, none left for training"):
        build_source(cfg, 8, 2, torch.device("cpu"))


def test_folder_rows_take_the_domains_in_turn(tmp_path):
    write_images(tmp_path / "horse", ["a.png", "b.png", "c.png"])
    write_images(tmp_path / "zebra", ["d.jpg"])
    cfg = DataConfig(kind="folders", root=str(tmp_path), attributes=["horse", "zebra"],
                     test_size=2, workers=0)
    _, test = split(read_table(cfg, 8), cfg.test_size)
    assert [r[0] for r in test.rows] == ["horse/a.png", "zebra/d.jpg"]  # both domains held out
    assert len(read_table(cfg, 8).rows) == 4


def test_header_only_table_and_non_utf8_files_are_named(tmp_path):
    write_images(tmp_path / "img", ["a.png"])
    (tmp_path / "au.csv").write_text("file,AU1\n")
    cfg = DataConfig(kind="table", root=str(tmp_path / "img"), attr_file=str(tmp_path / "au.csv"),
                     attributes=["AU1"], test_size=0, workers=0)
    with pytest.raises(DataError, match=r"au.csv: lists no images"):
        build_source(cfg, 8, 2, torch.device("cpu"))
    cfg = celeba(tmp_path)
    (tmp_path / "attr.txt").write_bytes(b"1\nBlack_Hair Smiling\n\xe9t\xe9.jpg 1 -1\n")
    with pytest.raises(DataError, match=r"attr.txt: attribute file is not UTF-8 text \(byte 21\)"):
        build_source(cfg, 8, 2, torch.device("cpu"))
