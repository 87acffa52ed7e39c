"""The trainer: a step changes the weights, a resumed run continues exactly, bad resumes fail."""
import json

import pytest
import torch

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


def test_existing_run_needs_resume_and_the_same_config(tmp_path):
    cfg = tiny_config()
    Trainer(cfg, tmp_path / "run").train(2, progress=False)
    with pytest.raises(TrainError, match="--resume"):
        Trainer(cfg, tmp_path / "run")
    cfg.loss.cycle = 3.0
    with pytest.raises(TrainError, match="loss.cycle"):
        Trainer(cfg, tmp_path / "run", resume=True)


def test_lr_schedule():
    cfg = tiny_config()
    cfg.train.iterations, cfg.train.lr_constant_fraction, cfg.train.lr_decay_every = 100, 0.5, 10
    assert [lr_factor(s, cfg) for s in (0, 49, 50, 59, 60, 75)] == [1, 1, 0.5, 0.5, 0.25, 0.125]
