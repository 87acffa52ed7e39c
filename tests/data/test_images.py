"""Image reading (odd formats converted or refused with the file name), uint8 round trips, grids."""
import io as io_module

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


def test_mask_modes_map_to_unit_range(tmp_path):
    """Each mode's documented mapping (read_mask): 16-bit by 65535 whatever its largest value,
    alpha multiplies (transparent = 0), 1-bit and float masks as they are."""
    Image.fromarray(np.full((4, 4), 200, np.uint16)).save(tmp_path / "m16.png")
    assert np.allclose(images.read_mask(tmp_path / "m16.png"), 200 / 65535)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:2, :, 3] = 255  # the top half painted white, the rest transparent white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert images.read_mask(tmp_path / "rgba.png")[:, 0].tolist() == [1, 1, 0, 0]
    Image.fromarray(np.eye(4, dtype=bool)).save(tmp_path / "bits.png")
    assert (images.read_mask(tmp_path / "bits.png") == np.eye(4)).all()
    Image.fromarray(np.full((4, 4), 0.25, np.float32)).save(tmp_path / "f.tif")
    assert np.allclose(images.read_mask(tmp_path / "f.tif"), 0.25)
    Image.fromarray(np.full((4, 4), 2.0, np.float32)).save(tmp_path / "f2.tif")
    with pytest.raises(ValueError, match="f2.tif: a float mask must hold values in"):
        images.read_mask(tmp_path / "f2.tif")
    gray = np.full((4, 4), 100, np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    assert np.allclose(images.read_mask(tmp_path / "g.png"), 100 / 255)


def test_dark_16_bit_images_stay_dark(tmp_path):
    Image.fromarray(np.full((4, 4), 200, np.uint16)).save(tmp_path / "dark16.png")
    assert images.read_rgb(tmp_path / "dark16.png").max() == 1  # 200 / 65535 of full scale


def test_exif_orientation_is_applied(tmp_path):
    """A phone photo stored sideways (orientation 6: rotate 90 degrees clockwise to view)."""
    stored = np.zeros((2, 4, 3), np.uint8)
    stored[0, 0] = 255  # top-left pixel of the stored (landscape) array
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    upright = images.read_rgb(tmp_path / "phone.jpg")
    assert upright.shape == (4, 2, 3)          # portrait, as the camera saw it
    assert upright[0, -1].mean() > 128         # that pixel is now at the top right


ODD_MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "I", "I;16", "F", "HSV", "LAB"]


@given(data=st.binary(max_size=2048), cut=st.integers(0, 4096),
       mode=st.sampled_from(ODD_MODES), size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       fmt=st.sampled_from(["PNG", "TIFF", "BMP", "JPEG", "WEBP"]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_readers_never_raise_anything_but_a_named_value_error(tmp_path, data, cut, mode, size, fmt):
    """Random bytes, truncated real files and every mode: an array or a ValueError naming the
    file, never another exception and never a hang."""
    candidates = [data]
    try:
        image = Image.new(mode, size)
        buffer = io_module.BytesIO()
        image.save(buffer, format=fmt)
        encoded = buffer.getvalue()
        candidates += [encoded, encoded[:cut]]
    except (OSError, ValueError, KeyError):
        pass  # a mode this format cannot store
    for k, blob in enumerate(candidates):
        path = tmp_path / f"fuzz{k}.{fmt.lower()}"
        path.write_bytes(blob)
        for read in (images.read_rgb, images.read_mask):
            try:
                out = read(path)
            except ValueError as e:
                assert str(path) in str(e)
                continue
            if read is images.read_rgb:
                assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8
            else:
                assert out.ndim == 2 and out.dtype == np.float32
                assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
