"""The SWAG phase on SGD with momentum after a first phase on the Trainer's AdamW
(``SwagSettings(optimizer="sgd")``, ``swag-lora train --swag_optimizer sgd``)."""

import pytest
import torch
from transformers import TrainerCallback

from swag_lora.errors import InvalidSettingError
from swag_lora.training.checkpoints import CheckpointError
from swag_lora.training.settings import SwagSettings
from swag_lora.training.sgd_phase import sgd_like
from tests.conftest import make_tiny_llama
from tests.test_training import make_trainer

START, RATE, MOMENTUM, DECAY = 4, 0.05, 0.9, 0.1


class RecordSteps(TrainerCallback):
    """Every optimizer step's inner optimizer, rate, and each tracked parameter before the step,
    its (clipped) gradient and after the step."""

    def __init__(self, trainer):
        self.trainer, self.steps = trainer, []

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        wrapper = self.trainer.optimizer
        inner = getattr(wrapper, "optimizer", wrapper)
        decay = {id(p): g["weight_decay"] for g in inner.param_groups for p in g["params"]}
        params = self.trainer.posterior.view.params
        self.steps.append({"optimizer": type(inner).__name__, "lr": inner.param_groups[0]["lr"],
                           "before": [p.detach().clone() for p in params],
                           "grad": [p.grad.detach().clone() for p in params],
                           "decay": [decay[id(p)] for p in params]})

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.steps[-1]["after"] = [p.detach().clone() for p in self.trainer.posterior.view.params]


def sgd_trainer(tmp_path, tokenizer, rows, **args):
    swag = SwagSettings(swag_start_step=START, collect_every_steps=1, swag_learning_rate=RATE, max_rank=3,
                        optimizer="sgd", momentum=MOMENTUM)
    return make_trainer(tmp_path, tokenizer, make_tiny_llama(len(tokenizer)), rows, swag, num_train_epochs=3,
                        learning_rate=1e-2, weight_decay=DECAY, **args)[0]


def test_the_swag_phase_takes_sgd_momentum_steps_at_the_swag_rate(tmp_path, tokenizer, arc_train_rows):
    """Brute force: from the SWAG start on, every step is p ← p − lr·b with
    b ← μ·b + (g + λ·p) (b starting at the first SGD step's g + λ·p), at the constant SWAG rate;
    before it, the Trainer's AdamW ran."""
    trainer = sgd_trainer(tmp_path, tokenizer, arc_train_rows[:32])  # 4 steps per epoch, 12 in all
    record = RecordSteps(trainer)
    trainer.add_callback(record)
    trainer.train()
    steps = record.steps
    assert len(steps) == 12 and trainer.sgd_phase.switched_at == START
    assert [s["optimizer"] for s in steps] == ["AdamW"] * START + ["SGD"] * (12 - START)
    assert all(s["lr"] == pytest.approx(RATE) for s in steps[START:])
    assert all(s["lr"] < 1e-2 + 1e-12 for s in steps[:START])
    buffers = None
    for s in steps[START:]:
        d = [g + lam * p for g, p, lam in zip(s["grad"], s["before"], s["decay"])]
        buffers = d if buffers is None else [MOMENTUM * b + x for b, x in zip(buffers, d)]
        for before, after, b in zip(s["before"], s["after"], buffers):
            torch.testing.assert_close(after, before - RATE * b, rtol=1e-5, atol=1e-7)
    assert trainer.posterior.n_collected == 12 - START


@pytest.mark.parametrize("resume_at", [2, 6])
def test_a_run_resumed_before_or_after_the_switch_ends_as_the_uninterrupted_one(tmp_path, tokenizer, arc_train_rows,
                                                                               resume_at):
    """Checkpoints every 2 steps; resuming from step 2 (before the switch at 4) switches on the
    way, resuming from step 6 rebuilds SGD and loads its momentum buffers: either way the final
    weights and posterior are the uninterrupted run's."""
    rows = arc_train_rows[:32]
    full = sgd_trainer(tmp_path / "full", tokenizer, rows, save_strategy="steps", save_steps=2)
    full.train()
    resumed = sgd_trainer(tmp_path / "resumed", tokenizer, rows, save_strategy="steps", save_steps=2)
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "out" / f"checkpoint-{resume_at}"))
    inner = getattr(resumed.optimizer, "optimizer", resumed.optimizer)
    assert isinstance(inner, torch.optim.SGD) and resumed.sgd_phase.switched_at == START
    torch.testing.assert_close(resumed.posterior.read(), full.posterior.read(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(resumed.posterior.mean(), full.posterior.mean(), rtol=1e-5, atol=1e-7)
    assert resumed.posterior.n_collected == full.posterior.n_collected
    if resume_at > START:  # the checkpoint holds SGD's state: resuming it without the switch is refused
        swag = SwagSettings(swag_start_step=START, collect_every_steps=1, swag_learning_rate=RATE, max_rank=3)
        plain = make_trainer(tmp_path / "plain", tokenizer, make_tiny_llama(len(tokenizer)), rows, swag,
                             num_train_epochs=3, learning_rate=1e-2, weight_decay=DECAY)[0]
        with pytest.raises(CheckpointError, match="resume with the original run's --swag_optimizer sgd"):
            plain.train(resume_from_checkpoint=str(tmp_path / "full" / "out" / f"checkpoint-{resume_at}"))


def test_sgd_like_keeps_the_groups_and_starts_without_momentum():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    adamw = torch.optim.AdamW([{"params": [a], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}], lr=3e-4)
    adamw.param_groups[0]["initial_lr"] = 1e-3
    (a.sum() + b.sum()).backward()
    adamw.step()
    sgd = sgd_like(adamw, 0.5)
    assert [g["params"] for g in sgd.param_groups] == [[a], [b]]
    assert [g["weight_decay"] for g in sgd.param_groups] == [0.1, 0.0]
    assert [g["lr"] for g in sgd.param_groups] == [3e-4, 3e-4] and sgd.param_groups[0]["initial_lr"] == 1e-3
    assert all(g["momentum"] == 0.5 and g["dampening"] == 0 and not g["nesterov"] for g in sgd.param_groups)
    assert len(sgd.state) == 0


def test_the_sgd_phase_settings_are_checked():
    with pytest.raises(InvalidSettingError, match="needs its own swag_learning_rate"):
        SwagSettings(swag_start_step=2, optimizer="sgd")
    with pytest.raises(InvalidSettingError, match="unknown SWAG-phase optimizer 'adam'"):
        SwagSettings(swag_start_step=2, swag_learning_rate=0.01, optimizer="adam")
    with pytest.raises(InvalidSettingError, match=r"momentum must be in \[0, 1\)"):
        SwagSettings(swag_start_step=2, swag_learning_rate=0.01, optimizer="sgd", momentum=1.0)
    assert SwagSettings(swag_start_step=2, swag_learning_rate=0.01, optimizer="sgd").momentum == 0.9
