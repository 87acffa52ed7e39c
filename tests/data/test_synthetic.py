"""The synthetic what & where set: deterministic, masks exactly on the drawn object."""
import torch

from lomit_fast.data.synthetic import COLOUR_CLASSES, synthetic_batch


def test_deterministic_and_seed_dependent():
    a, b = synthetic_batch(4, 32, seed=3, index=2), synthetic_batch(4, 32, seed=3, index=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.images, synthetic_batch(4, 32, seed=4, index=2).images)
    assert not torch.equal(a.images, synthetic_batch(4, 32, seed=3, index=3).images)


def test_masks_cover_the_object_in_its_colour_class():
    batch = synthetic_batch(16, 64, seed=0)
    palette = torch.tensor(list(COLOUR_CLASSES.values()))
    rgb = (batch.images + 1) / 2
    for i in range(16):
        m = batch.masks[i, 0] > 0.5
        assert m.sum() > 20  # a visible object
        inside = rgb[i][:, m].mean(dim=1)
        nearest = ((palette - inside) ** 2).sum(1).argmin()
        assert nearest == batch.classes[i]
    assert torch.equal(batch.labels.argmax(1), batch.classes)
    assert set(batch.masks.unique().tolist()) <= {0.0, 1.0}
