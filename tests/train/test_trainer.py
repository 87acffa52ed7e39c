"""The trainer: a step changes the weights, a resumed run continues exactly, bad resumes fail."""
import copy
import json

import pytest
import torch
import torch.nn.functional as F

from lomit_fast.config import load_config
from lomit_fast.train.trainer import TrainError, Trainer, lr_factor


def tiny_config():
    cfg = load_config("configs/synthetic_64.yaml")
    cfg.model.image_size, cfg.model.critic_layers = 32, 4
    cfg.train.batch_size, cfg.train.iterations = 2, 4
    cfg.train.checkpoint_every = cfg.train.sample_every = 2
    cfg.train.log_every = 1
    return cfg


def test_one_step_changes_the_weights(tmp_path):
    trainer = Trainer(tiny_config(), tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    batch = next(trainer.source.batches(0, 1))
    logs = trainer.train_step(*batch)
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    changed = [k for k, v in trainer.generator.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) > len(before) // 2


def test_resume_continues_exactly(tmp_path):
    cfg = tiny_config()
    straight = Trainer(cfg, tmp_path / "a")
    straight.train(4, progress=False)
    first = Trainer(cfg, tmp_path / "b")
    first.train(2, progress=False)  # checkpoint at step 2, as if killed after it
    resumed = Trainer(cfg, tmp_path / "b", resume=True)
    assert resumed.step == 2
    resumed.train(4, progress=False)

    def losses(run):
        lines = [json.loads(s) for s in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        return {r["step"]: r["generator_total"] for r in lines}

    assert losses("a") == losses("b")
    for key, value in straight.generator.state_dict().items():
        torch.testing.assert_close(resumed.generator.state_dict()[key], value, rtol=0, atol=0)
    assert (tmp_path / "b" / "samples" / "step-0000004.png").is_file()
    lines = [json.loads(s) for s in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert {"mask_iou", "held_out_mask_iou", "held_out_self_psnr"} <= set(lines[-1])
    from PIL import Image
    with Image.open(tmp_path / "b" / "curves.png") as curves:  # redrawn at every sample step
        assert curves.width > 800


def test_existing_run_needs_resume_and_the_same_config(tmp_path):
    cfg = tiny_config()
    Trainer(cfg, tmp_path / "run").train(2, progress=False)
    with pytest.raises(TrainError, match="--resume"):
        Trainer(cfg, tmp_path / "run")
    cfg.loss.cycle = 3.0
    with pytest.raises(TrainError, match="loss.cycle"):
        Trainer(cfg, tmp_path / "run", resume=True)


def test_lr_schedule_at_the_authors_boundaries():
    cfg = tiny_config()
    cfg.train.iterations, cfg.train.lr_constant_fraction = 200_000, 0.5
    cfg.train.lr_decay_every = 10_000
    steps = [0, 100_000, 109_999, 110_000, 119_999, 120_000, 189_999, 190_000, 199_999]
    factors = [1, 1, 1, 0.5, 0.5, 0.25, 2 ** -8, 2 ** -9, 2 ** -9]
    assert [lr_factor(s, cfg) for s in steps] == factors
    cfg.train.iterations, cfg.train.lr_decay_every = 100, 10   # the same shape at any scale
    assert [lr_factor(s, cfg) for s in (49, 50, 59, 60, 70, 99)] == [1, 1, 1, 0.5, 0.25, 2 ** -4]


def test_critic_loss_of_one_step_is_the_sum_of_both_directions(tmp_path):
    trainer = Trainer(tiny_config(), tmp_path / "run")
    x_a, labels_a, x_b, labels_b = next(trainer.source.batches(0, 1))
    gen, critic = copy.deepcopy(trainer.generator), copy.deepcopy(trainer.critic)
    torch.manual_seed(7)  # the interpolation weights of the gradient penalty
    logs = trainer.train_step(x_a, labels_a, x_b, labels_b)
    with torch.no_grad():
        x_ab, x_ba = gen.translate(x_a, x_b)[0], gen.translate(x_b, x_a)[0]

    def direction(real, labels, fake):  # WGAN-GP + 10 * penalty + 1 * BCE, written out
        wasserstein = critic(fake)[0].mean() - critic(real)[0].mean()
        alpha = torch.rand(len(real), 1, 1, 1)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(mixed)[0].sum(), mixed)
        penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        bce = F.binary_cross_entropy_with_logits(critic(real)[1], labels, reduction="sum")
        return wasserstein + 10 * penalty + bce / len(real)

    torch.manual_seed(7)
    a_to_b, b_to_a = direction(x_a, labels_a, x_ab), direction(x_b, labels_b, x_ba)
    assert logs["critic_total"] == pytest.approx((a_to_b + b_to_a).item(), rel=1e-5)
    assert abs(b_to_a.item()) > 1e-3 * abs(logs["critic_total"])  # x_BA is really shown


def read_steps(run, strict=True):
    steps = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except json.JSONDecodeError:
            if strict:
                raise
    return steps


def test_resume_drops_the_metric_lines_of_redone_steps(tmp_path):
    cfg = tiny_config()
    Trainer(cfg, tmp_path / "run").train(4, progress=False)
    checkpoints = tmp_path / "run" / "checkpoints"
    (checkpoints / "latest").write_text("step-0000002")  # as if killed before step 4 was committed
    with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "cut sho')                  # and mid-line
    assert read_steps(tmp_path / "run", strict=False) == [1, 2, 3, 4]
    resumed = Trainer(cfg, tmp_path / "run", resume=True)
    assert read_steps(tmp_path / "run") == [1, 2]
    resumed.train(4, progress=False)
    assert read_steps(tmp_path / "run") == [1, 2, 3, 4]


def test_a_fresh_start_drops_the_lines_of_a_run_killed_before_its_first_checkpoint(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n')
    Trainer(tiny_config(), tmp_path / "run").train(1, progress=False)
    assert read_steps(tmp_path / "run") == [1]


def test_a_failed_save_leaves_nothing_and_a_stale_one_is_removed(tmp_path, monkeypatch):
    cfg = tiny_config()
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.train(2, progress=False)
    checkpoints = tmp_path / "run" / "checkpoints"

    def full_disk(obj, path, *args, **kwargs):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(TrainError, match=r"cannot write checkpoint .*step-0000004: No space left"):
        trainer.train(4, progress=False)
    monkeypatch.undo()
    assert not list(checkpoints.glob(".tmp-step-*"))
    assert (checkpoints / "latest").read_text() == "step-0000002"  # the last good one
    (checkpoints / ".tmp-step-0000009").mkdir()                     # left by a kill -9
    Trainer(cfg, tmp_path / "run", resume=True)
    assert not list(checkpoints.glob(".tmp-step-*"))


@pytest.mark.parametrize("content, message", [
    (b"PK\x03\x04truncated", r"state.pt: not a readable training state"),
    ([1, 2, 3], r"state.pt: not a training state \(holds a list\)"),
    ({"step": "2"}, r"state.pt: field 'step' is missing or not of type int"),
])
def test_a_broken_state_file_is_named(tmp_path, content, message):
    cfg = tiny_config()
    Trainer(cfg, tmp_path / "run").train(2, progress=False)
    state = tmp_path / "run" / "checkpoints" / "step-0000002" / "state.pt"
    if isinstance(content, bytes):
        state.write_bytes(content)
    else:
        torch.save(content, state)
    with pytest.raises(TrainError, match=message):
        Trainer(cfg, tmp_path / "run", resume=True)


def test_checkpoint_written_before_a_config_field_existed_resumes(tmp_path):
    cfg = tiny_config()
    Trainer(cfg, tmp_path / "run").train(2, progress=False)
    state_path = tmp_path / "run" / "checkpoints" / "step-0000002" / "state.pt"
    state = torch.load(state_path, weights_only=True)
    del state["config"]["model"]["mask_prior_logit"]  # as written before the field
    torch.save(state, state_path)
    assert Trainer(cfg, tmp_path / "run", resume=True).step == 2


def test_a_non_finite_loss_stops_before_a_checkpoint(tmp_path):
    cfg = tiny_config()
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.train(2, progress=False)
    with torch.no_grad():
        trainer.critic.realness.bias.fill_(float("inf"))
    with pytest.raises(TrainError, match=r"step 3: the loss term 'critic_total' is nan; stopped "
                                         r"without saving"):
        trainer.train(4, progress=False)
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text() == "step-0000002"
    assert trainer.step == 2


def test_latest_naming_a_missing_checkpoint_is_named(tmp_path):
    cfg = tiny_config()
    Trainer(cfg, tmp_path / "run").train(2, progress=False)
    (tmp_path / "run" / "checkpoints" / "latest").write_text("step-0000099")
    with pytest.raises(TrainError, match=r"latest: names 'step-0000099', which is not a checkpoint"):
        Trainer(cfg, tmp_path / "run", resume=True)


def test_negative_steps_are_refused():
    from lomit_fast.train.trainer import train_from_config
    with pytest.raises(TrainError, match=r"--steps -1: must be 0 or more"):
        train_from_config("configs/synthetic_64.yaml", "unused", "cpu", False, steps=-1)


def test_init_from_starts_a_new_run_from_another_runs_networks(tmp_path):
    cfg = tiny_config()
    first = Trainer(cfg, tmp_path / "stage1")
    first.train(2, progress=False)
    second_cfg = copy.deepcopy(cfg)
    second_cfg.loss.self_reconstruction = 25.0
    second_cfg.train.init_from = str(tmp_path / "stage1" / "checkpoints" / "step-0000002")
    second = Trainer(second_cfg, tmp_path / "stage2")
    assert second.step == 0
    for name in ("generator", "critic"):
        mine, theirs = getattr(second, name).state_dict(), getattr(first, name).state_dict()
        for key, value in theirs.items():
            torch.testing.assert_close(mine[key], value, rtol=0, atol=0)
    resumed_cfg = copy.deepcopy(second_cfg)  # a resumed second stage continues its own run
    second.train(2, progress=False)
    again = Trainer(resumed_cfg, tmp_path / "stage2", resume=True)
    assert again.step == 2


@pytest.mark.parametrize("target, message", [("missing", "no generator.safetensors"),
                                             ("other", "shape")])
def test_init_from_a_wrong_folder_is_named(tmp_path, target, message):
    cfg = tiny_config()
    if target == "other":  # a checkpoint of another model
        other = copy.deepcopy(cfg)
        other.model.content_width = 8
        Trainer(other, tmp_path / "other").train(2, progress=False)
    cfg.train.init_from = str(tmp_path / target / "checkpoints" / "step-0000002")
    with pytest.raises(TrainError, match=f"train.init_from.*{message}"):
        Trainer(cfg, tmp_path / "run")


def test_resume_of_a_run_dir_without_a_checkpoint_says_it_starts_fresh(tmp_path, capsys):
    trainer = Trainer(tiny_config(), tmp_path / "typo", resume=True)
    assert trainer.step == 0
    assert "holds no checkpoint yet; starting at step 0" in capsys.readouterr().err
