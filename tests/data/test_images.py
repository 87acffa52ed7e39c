"""Image reading (odd formats converted or refused with the file name), uint8 round trips, grids."""
import numpy as np
import pytest
import torch
from PIL import Image

from lomit_fast.data import images


def test_odd_images_are_converted(tmp_path):
    rgb = (np.random.default_rng(0).random((8, 10, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    Image.fromarray((np.arange(80).reshape(8, 10) * 800).astype(np.uint16)).save(tmp_path / "16.png")
    for name in ("gray", "rgba", "palette", "16"):
        a = images.read_rgb(tmp_path / f"{name}.png")
        assert a.shape == (8, 10, 3) and a.dtype == np.uint8, name
    assert images.read_rgb(tmp_path / "16.png").max() > 200  # 16-bit range scaled, not clipped


def test_rgba_is_composited_over_white(tmp_path):
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert (images.read_rgb(tmp_path / "clear.png") == 255).all()


def test_unreadable_images_name_the_file(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.png: cannot read image"):
        images.read_rgb(tmp_path / "broken.png")
    full = tmp_path / "full.png"
    Image.new("RGB", (16, 16)).save(full)
    (tmp_path / "truncated.png").write_bytes(full.read_bytes()[:40])
    with pytest.raises(ValueError, match="truncated.png"):
        images.read_rgb(tmp_path / "truncated.png")


def test_huge_images_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    Image.new("RGB", (11, 10)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match="big.png: image is 11x10, larger than"):
        images.read_rgb(tmp_path / "big.png")


def test_uint8_round_trip_and_grid():
    a = np.random.default_rng(1).integers(0, 256, (2, 6, 5, 3), dtype=np.uint8)
    assert (images.to_uint8(images.from_uint8(a)) == a).all()
    grid = images.image_grid([images.from_uint8(a), torch.zeros(2, 1, 6, 5)], pad=1)
    assert grid.shape == (2 * 7 + 1, 2 * 6 + 1, 3)
