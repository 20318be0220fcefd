"""Exact resume at every checkpoint, also one written at the last step of an epoch (where the
epoch's evaluation and the random state it consumes come after the checkpoint step), with
LoRA dropout on so that the random state matters."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainingArguments

from swag_lora.files import read_json
from swag_lora.runs.arguments import (
    TRAINING_DEFAULTS,
    DataArguments,
    LoraArguments,
    ModelArguments,
    SwagArguments,
)
from swag_lora.runs.train import train_run
from swag_lora.training.trainer import SwagTrainer
from tests.conftest import make_tiny_llama


class Killed(Exception):
    """Stands for a kill -9 right after a checkpoint is complete."""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("resume-model")
    make_tiny_llama(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def train(out, model_dir, data_dir, resume=False):
    """64 questions, batch 8 (8 steps an epoch), 4 epochs, SWAG from epoch 2 collecting every
    2 steps with K = 3, a checkpoint every 4 steps, LoRA dropout 0.1."""
    args = TrainingArguments(**{
        **TRAINING_DEFAULTS, "output_dir": str(out), "num_train_epochs": 4, "per_device_train_batch_size": 8,
        "learning_rate": 1e-2, "save_strategy": "steps", "save_steps": 4, "save_total_limit": 3,
        "eval_strategy": "epoch", "use_cpu": True, "disable_tqdm": True, "dataloader_pin_memory": False,
        "seed": 0, "logging_steps": 100, "resume_from_checkpoint": "true" if resume else None,
    })
    return train_run(
        ModelArguments(model_name_or_path=str(model_dir)),
        DataArguments(task="arc-easy", data_dir=str(data_dir), train_limit=64, validation_limit=16),
        LoraArguments(lora_dropout=0.1),
        SwagArguments(swag_start_epoch=2, swag_collect_every_steps=2, swag_max_rank=3),
        args,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory, model_dir, data_dir):
    return train(tmp_path_factory.mktemp("reference") / "run", model_dir, data_dir)


def assert_same(run, reference):
    for name in ("swag_posterior.safetensors", "map/adapter_model.safetensors", "swa/adapter_model.safetensors"):
        got, want = load_file(run / name), load_file(reference / name)
        for key in want:
            torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=lambda m, k=key, n=name: f"{n} {k}: {m}")
    got, want = read_json(run / "run_config.json"), read_json(reference / "run_config.json")
    assert got["swag_collected_at_steps"] == want["swag_collected_at_steps"]
    assert got["map_selection"] == want["map_selection"]
    evals = lambda path: [e["step"] for e in read_json(path / "train_log.json") if "eval_nll" in e]  # noqa: E731
    assert evals(run) == evals(reference) == [8, 16, 24, 32]


@pytest.mark.parametrize("kill_at", [24, 20])  # the last step of epoch 3, and a step inside epoch 3
def test_resume_after_a_kill_equals_the_uninterrupted_run(kill_at, tmp_path, model_dir, data_dir, reference,
                                                         monkeypatch):
    save = SwagTrainer._save_checkpoint

    def save_then_die(self, model, trial):
        save(self, model, trial)
        if self.state.global_step == kill_at:
            raise Killed

    monkeypatch.setattr(SwagTrainer, "_save_checkpoint", save_then_die)
    out = tmp_path / "run"
    with pytest.raises(Killed):
        train(out, model_dir, data_dir)
    monkeypatch.setattr(SwagTrainer, "_save_checkpoint", save)
    train(out, model_dir, data_dir, resume=True)
    assert read_json(out / "run_config.json")["resumed_from"] == str(out / f"checkpoint-{kill_at}")
    assert_same(out, reference)
