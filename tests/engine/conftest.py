import numpy as np
import pytest
from PIL import Image

from lomit_fast.data.images import save_png, to_uint8
from lomit_fast.data.synthetic import synthetic_batch


@pytest.fixture
def image_folder(tmp_path):
    """Good images of several sizes plus odd and broken files."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    batch = to_uint8(synthetic_batch(4, 48, seed=7).images)
    for i, array in enumerate(batch[:3]):
        save_png(array, folder / f"good{i}.png")
    save_png(batch[3], folder / "sub" / "nested.png")
    Image.fromarray(batch[0]).resize((40, 30)).save(folder / "wide.jpg")
    Image.fromarray(batch[1]).convert("L").save(folder / "gray.png")
    Image.fromarray(batch[2]).convert("RGBA").save(folder / "rgba.png")
    Image.fromarray(batch[0]).convert("P").save(folder / "palette.png")
    Image.fromarray((np.arange(48 * 48).reshape(48, 48) * 20).astype(np.uint16)).save(
        folder / "deep16.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG not really")
    (folder / "truncated.png").write_bytes((folder / "good0.png").read_bytes()[:60])
    return folder
