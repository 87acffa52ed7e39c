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


def test_background_families():
    """Every family is deterministic, in range and textured; CLASSIC batches are the same as
    before the other families existed (drawn from the same stream); held-out families are never
    among the training ones; unknown names are refused."""
    import pytest

    from lomit_fast.data.synthetic import BACKGROUNDS, CLASSIC, HELD_OUT, TRAINING
    assert not set(HELD_OUT) & set(TRAINING) and set(CLASSIC) <= set(TRAINING)
    for family in BACKGROUNDS:
        a = synthetic_batch(6, 32, seed=2, backgrounds=(family,))
        b = synthetic_batch(6, 32, seed=2, backgrounds=(family,))
        assert torch.equal(a.images, b.images), family
        assert a.images.min() >= -1 and a.images.max() <= 1, family
        background = a.images[:, :, :4, :4]  # a corner the object rarely covers
        assert background.std() > 0.01, family
    # Adding families did not change what the classic draws produce.
    assert torch.equal(synthetic_batch(4, 32, seed=9).images,
                       synthetic_batch(4, 32, seed=9, backgrounds=CLASSIC).images)
    mixed = synthetic_batch(4, 32, seed=9, backgrounds=TRAINING)
    assert not torch.equal(mixed.images, synthetic_batch(4, 32, seed=9).images)
    with pytest.raises(ValueError, match="backgrounds must name families"):
        synthetic_batch(2, 32, backgrounds=("plasma",))


def test_fine_texture_has_high_frequencies():
    """The generalisation set needs real high-frequency content: neighbouring pixels of the
    fine texture differ far more than those of the smooth gradient."""
    def roughness(family):
        x = synthetic_batch(8, 64, seed=1, backgrounds=(family,)).images
        return (x[..., 1:] - x[..., :-1]).abs().mean()
    assert roughness("fine_texture") > 4 * roughness("gradient")
