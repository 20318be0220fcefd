"""SWAG in your own training script: the public callback with a plain ``transformers.Trainer``
and with TRL's ``SFTTrainer``; the posterior equals the brute-force moments of the iterates it
collected."""

from __future__ import annotations

import pytest
import torch
from transformers import TrainerCallback

from swag_lora import SwagCallback, SwagPosterior, SwagSettings, swag_lr_scheduler
from swag_lora.bayes.parameters import tracked_parameters
from tests.conftest import make_tiny_llama

TEXTS = [
    "Question: What do plants need to make food?\nAnswer: sunlight",
    "Question: Which is a liquid at room temperature?\nAnswer: water",
    "Question: What pulls objects toward the Earth?\nAnswer: gravity",
    "Question: What is frozen water called?\nAnswer: ice",
    "Question: Which organ pumps blood?\nAnswer: the heart",
    "Question: What gas do we breathe out?\nAnswer: carbon dioxide",
]


class IterateRecorder(TrainerCallback):
    """Keeps a copy of the trainable parameters after every optimizer step (brute force)."""

    def __init__(self):
        self.model = None
        self.iterates: dict[int, torch.Tensor] = {}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        params = [p for _, p in tracked_parameters(model)]
        self.iterates[state.global_step] = torch.cat([p.detach().reshape(-1).double() for p in params])


def check_against_brute_force(posterior: SwagPosterior, callback: SwagCallback, recorder: IterateRecorder, k: int):
    steps = callback.collected_at
    assert len(steps) == posterior.n_collected >= 3
    thetas = torch.stack([recorder.iterates[s] for s in steps])
    mean = thetas.mean(0)
    variance = thetas.var(0, unbiased=False)  # SWAG's population variance
    torch.testing.assert_close(posterior.mean().double(), mean, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(posterior.variance().double(), variance, rtol=1e-3, atol=1e-9)
    assert variance.max() > 0  # the iterates moved: the check is not vacuous
    # deviations: θ_i − θ̄_i (the running mean after adding θ_i), the last K of them
    running = torch.cumsum(thetas, 0) / torch.arange(1, len(steps) + 1, dtype=torch.float64)[:, None]
    expected = (thetas - running)[-k:]
    torch.testing.assert_close(posterior.deviations().double(), expected, rtol=1e-4, atol=1e-7)


def sft_trainer(tmp_path, tokenizer, records: list[dict], max_steps: int):
    """TRL's SFTTrainer on a tiny Llama with LoRA from a peft_config and the SWAG callback
    (its posterior made over the PEFT model SFTTrainer builds), plus an iterate recorder."""
    trl = pytest.importorskip("trl")
    from datasets import Dataset
    from peft import LoraConfig

    callback = SwagCallback(None, SwagSettings(swag_start_step=2, collect_every_steps=1, max_rank=3))
    recorder = IterateRecorder()
    config = trl.SFTConfig(
        output_dir=str(tmp_path / "sft"), max_steps=max_steps, per_device_train_batch_size=2, learning_rate=5e-3,
        logging_steps=100, save_strategy="no", report_to=[], use_cpu=True, max_length=64, seed=0,
        dataloader_pin_memory=False, disable_tqdm=True,
    )
    trainer = trl.SFTTrainer(
        model=make_tiny_llama(len(tokenizer)), args=config, train_dataset=Dataset.from_list(records),
        processing_class=tokenizer, callbacks=[callback, recorder],
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0),
    )
    return trainer, callback, recorder


def test_sft_trainer_with_the_swag_callback(tmp_path, tokenizer):
    trainer, callback, recorder = sft_trainer(tmp_path, tokenizer, [{"text": t} for t in TEXTS], max_steps=7)
    trainer.train()
    posterior = callback.posterior
    assert posterior is not None and all("lora_" in n for n in posterior.names)
    assert callback.collected_at == [3, 4, 5, 6, 7]
    check_against_brute_force(posterior, callback, recorder, k=3)


def test_plain_trainer_with_the_callback_and_the_swag_schedule(tmp_path, tokenizer):
    from transformers import Trainer, TrainingArguments

    from swag_lora.lm.loading import LoraSettings, apply_lora

    model = apply_lora(make_tiny_llama(len(tokenizer)), LoraSettings(lora_dropout=0.0))
    posterior = SwagPosterior(model, max_rank=2)
    settings = SwagSettings(swag_start_step=3, collect_every_steps=1, swag_learning_rate=1e-3, max_rank=2)
    ids = [tokenizer(t, return_tensors="pt")["input_ids"][0] for t in TEXTS]
    dataset = [{"input_ids": i, "labels": i} for i in ids]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    scheduler = swag_lr_scheduler(optimizer, settings, num_training_steps=6, num_train_epochs=6, learning_rate=1e-2)
    recorder = IterateRecorder()
    args = TrainingArguments(output_dir=str(tmp_path / "plain"), max_steps=6, per_device_train_batch_size=1,
                             logging_steps=100, save_strategy="no", report_to=[], use_cpu=True, learning_rate=1e-2,
                             dataloader_pin_memory=False, disable_tqdm=True)
    callback = SwagCallback(posterior, settings)
    trainer = Trainer(model=model, args=args, train_dataset=dataset, optimizers=(optimizer, scheduler),
                      callbacks=[callback, recorder])
    trainer.train()
    assert callback.collected_at == [4, 5, 6]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)  # the constant SWAG rate
    check_against_brute_force(posterior, callback, recorder, k=2)


def test_sft_trainer_on_prompt_completion_pairs_with_the_swag_callback(tmp_path, tokenizer):
    """Training on text with your own script: TRL's prompt-completion format (loss on the completion
    only), LoRA from a peft_config, and the SWAG callback collecting the moments of its iterates."""
    pairs = [{"prompt": t.split("Answer: ")[0] + "Answer:", "completion": " " + t.split("Answer: ")[1]} for t in TEXTS]
    trainer, callback, recorder = sft_trainer(tmp_path, tokenizer, pairs, max_steps=6)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    prompt_len = len(tokenizer(pairs[0]["prompt"], add_special_tokens=False)["input_ids"])
    assert (batch["labels"][0, :prompt_len] == -100).all() and (batch["labels"][0, prompt_len:] != -100).any()
    trainer.train()
    assert callback.collected_at == [3, 4, 5, 6]
    check_against_brute_force(callback.posterior, callback, recorder, k=3)
