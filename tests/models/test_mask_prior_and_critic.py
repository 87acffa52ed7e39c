"""The mask head's prior is a config field that old weight files still satisfy; the critic pads
its stride-2 convs by reflection as the authors."""
import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from lomit_fast import Critic, Generator
from lomit_fast.config import load_config
from lomit_fast.data.synthetic import synthetic_batch
from lomit_fast.models.checkpoint import SHIPPED_MODEL, load_generator, read_model_config


@pytest.mark.parametrize("logit", [0.0, -2.0, 1.5])
def test_mask_prior_sets_the_initial_masks(logit):
    cfg = load_config("configs/synthetic_64.yaml").model
    cfg.mask_prior_logit = logit
    torch.manual_seed(0)
    gen = Generator(cfg)
    assert torch.all(gen.mask_net.head.bias == logit)
    torch.manual_seed(0)
    lower = Generator(dataclasses.replace(cfg, mask_prior_logit=logit - 1))
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1

    def mask_logits(g):
        with torch.no_grad():
            return torch.logit(g.mask(g.content(x), g.content(x.flip(0))).double())

    # Only the head's bias differs: the mask logits shift by exactly 1.
    shift = mask_logits(gen) - mask_logits(lower)
    torch.testing.assert_close(shift, torch.ones_like(shift), atol=1e-3, rtol=0)


def test_configs_choose_their_prior():
    assert load_config("configs/celeba_128.yaml").model.mask_prior_logit == 0.0  # the authors'
    assert load_config("configs/synthetic_64.yaml").model.mask_prior_logit == -2.0


def test_files_written_before_the_field_load_with_its_old_value(tmp_path):
    """A weights file whose stored config has no mask_prior_logit (written before the field
    existed, as the first shipped model was) reads as -2.0, what such models were trained with,
    and translates exactly as the same weights stored with the field."""
    from safetensors.torch import load_file, save_file
    with safe_open(str(SHIPPED_MODEL), framework="pt") as f:
        metadata = dict(f.metadata())
    stored = json.loads(metadata["model_config"])
    assert read_model_config(SHIPPED_MODEL) == load_config("configs/synthetic_64.yaml").model
    tensors = load_file(str(SHIPPED_MODEL))
    old, new = tmp_path / "old.safetensors", tmp_path / "new.safetensors"
    save_file(tensors, str(old), metadata=metadata | {"model_config": json.dumps(
        {k: v for k, v in stored.items() if k != "mask_prior_logit"})})
    save_file(tensors, str(new), metadata=metadata | {"model_config": json.dumps(
        stored | {"mask_prior_logit": -2.0})})
    assert read_model_config(old).mask_prior_logit == -2.0
    assert read_model_config(old) == read_model_config(new)
    x = synthetic_batch(4, 64, seed=90210, index=0).images
    e = synthetic_batch(4, 64, seed=90210, index=1).images
    with torch.no_grad():
        for a, b in zip(load_generator(old).translate(x, e), load_generator(new).translate(x, e)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_critic_pads_its_stride_two_convs_by_reflection():
    cfg = load_config("configs/synthetic_64.yaml").model
    torch.manual_seed(0)
    critic = Critic(cfg)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    conv = critic.body[0].conv
    by_hand = F.leaky_relu(F.conv2d(F.pad(x, [1] * 4, mode="reflect"), conv.weight, conv.bias,
                                    stride=2), 0.01)
    with torch.no_grad():
        torch.testing.assert_close(critic.body[0](x), by_hand)
        zero_padded = F.leaky_relu(conv(F.pad(x, [1] * 4)), 0.01)
    assert not torch.allclose(by_hand[..., 0, :], zero_padded[..., 0, :])  # borders differ
    torch.testing.assert_close(by_hand[..., 1:-1, 1:-1], zero_padded[..., 1:-1, 1:-1])
