"""FID per target attribute: translations towards an attribute against real images that have it."""
import numpy as np
import pytest
import torch
from PIL import Image

from lomit_fast.config import load_config, save_config
from lomit_fast.eval.fid import fid_of_translations, fid_per_attribute, load_extractor
from lomit_fast.eval.metrics import fid

# Eight test images; attribute 0 on images 0-3, attribute 1 on images 4-5.
LABELS = torch.tensor([[1, 0], [1, 0], [1, 0], [1, 0], [0, 1], [0, 1], [0, 0], [0, 0]]).float()
IMAGES = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1


def load(indices):
    return IMAGES[indices]


def colour_features(x):  # a stand-in for Inception: per-channel mean and std
    return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1).double()


def test_identity_translation_gives_the_fid_of_the_two_groups():
    report = fid_per_attribute(lambda x, e: x, colour_features, load, LABELS, ["a", "b"], 100)
    f = colour_features(IMAGES)
    by_hand = {"a": fid(f[:4], f[4:]), "b": fid(f[4:6], f[[0, 1, 2, 3, 6, 7]])}
    assert report["fid_per_attribute"] == pytest.approx(by_hand, abs=1e-3)
    assert report["fid"] == pytest.approx((by_hand["a"] + by_hand["b"]) / 2, abs=1e-3)
    assert report["images"] == {"a": 4, "b": 6}  # inputs: the images without the attribute


def test_copying_the_exemplar_matches_the_real_images():
    # Four inputs lack "a" and four images have it: the exemplars, in turn, are exactly the reals.
    report = fid_per_attribute(lambda x, e: e, colour_features, load, LABELS, ["a"], 100)
    assert report["fid_per_attribute"]["a"] == pytest.approx(0.0, abs=1e-6)


def test_images_limits_inputs_and_reals_and_too_few_is_an_error():
    report = fid_per_attribute(lambda x, e: x, colour_features, load, LABELS, ["a"], 2)
    f = colour_features(IMAGES)
    assert report["images"] == {"a": 2}
    assert report["fid"] == pytest.approx(fid(f[:2], f[4:6]), abs=1e-3)
    labels = LABELS.clone()
    labels[5, 1] = 0
    with pytest.raises(ValueError, match="FID for 'b': the test split has 1 images with it"):
        fid_per_attribute(lambda x, e: x, colour_features, load, labels, ["a", "b"], 100)
    with pytest.raises(ValueError, match="--images must be at least 2"):
        fid_per_attribute(lambda x, e: x, colour_features, load, LABELS, ["a"], 1)


class Features(torch.nn.Module):
    def forward(self, x):
        return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1)


class CopyExemplar:
    """A generator stand-in whose output is the exemplar."""
    class cfg:
        image_size = 8

    def translate(self, x, exemplar):
        return exemplar, None, None


def test_fid_on_a_data_sets_test_split(tmp_path):
    rng = np.random.default_rng(0)
    for domain in ("horse", "zebra"):
        (tmp_path / domain).mkdir()
        for i in range(3):
            pixels = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / domain / f"{i}.png")
    cfg = load_config("configs/celeba_128.yaml")
    cfg.data.kind, cfg.data.root, cfg.data.attributes = "folders", str(tmp_path), ["horse", "zebra"]
    cfg.model.n_attributes, cfg.data.test_size = 2, 4   # test split: horse 0, 1 and zebra 0, 1
    save_config(cfg, tmp_path / "c.yaml")
    torch.jit.script(Features()).save(str(tmp_path / "features.pt"))
    report = fid_of_translations(CopyExemplar(), str(tmp_path / "c.yaml"),
                                 str(tmp_path / "features.pt"), images=100)
    assert report["images"] == {"horse": 2, "zebra": 2}
    assert report["fid_per_attribute"] == pytest.approx({"horse": 0.0, "zebra": 0.0}, abs=1e-6)


def test_a_file_that_is_not_an_extractor_is_named(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"\x00not torchscript" * 10)
    with pytest.raises(ValueError, match=r"garbage.pt: not a TorchScript feature extractor"):
        load_extractor(str(tmp_path / "garbage.pt"), "cpu")
    torch.jit.script(torch.nn.Identity()).save(str(tmp_path / "identity.pt"))
    features = load_extractor(str(tmp_path / "identity.pt"), "cpu")
    with pytest.raises(ValueError, match=r"identity.pt: the feature extractor must return \(N, D\) "
                                         r"features, returned \(2, 3, 299, 299\)"):
        features(torch.zeros(2, 3, 8, 8))


def test_fid_needs_a_real_data_set(tmp_path):
    torch.jit.script(Features()).save(str(tmp_path / "features.pt"))
    with pytest.raises(ValueError, match="--config is needed with --inception"):
        fid_of_translations(CopyExemplar(), None, str(tmp_path / "features.pt"), images=8)
    with pytest.raises(ValueError, match=r"synthetic_64.yaml: FID needs a real data set"):
        fid_of_translations(CopyExemplar(), "configs/synthetic_64.yaml",
                            str(tmp_path / "features.pt"), images=8)
