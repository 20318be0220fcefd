"""SWAG collection inside the HF Trainer, the SWAG learning-rate schedule, and an end-to-end run."""

import math

import numpy as np
import pytest
import torch
from transformers import TrainerCallback, TrainingArguments

from swag_lora import SwagPosterior
from swag_lora.bayes.posterior import POSTERIOR_FILE
from swag_lora.bayes.predictive import evaluate_predictive, fixed_weights, swag_samples
from swag_lora.bayes.sampling import SamplingOptions
from swag_lora.lm.encoding import MultipleChoiceCollator, encode_rows
from swag_lora.lm.loading import LoraSettings, apply_lora
from swag_lora.lm.multiple_choice import MultipleChoiceLM
from swag_lora.training.schedule import swag_lr_multiplier
from swag_lora.training.settings import SwagSettings
from swag_lora.training.trainer import SwagTrainer, compute_eval_metrics
from tests.conftest import make_tiny_llama


def make_trainer(tmp_path, tokenizer, lm, rows, swag, eval_rows=None, **args):
    model = MultipleChoiceLM(apply_lora(lm, LoraSettings(lora_dropout=0.0)), tokenizer, "cloze", n_slots=5)
    features = encode_rows(rows, tokenizer, "cloze")
    eval_features = encode_rows(eval_rows, tokenizer, "cloze") if eval_rows else None
    defaults = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        learning_rate=1e-3,
        num_train_epochs=2,
        logging_steps=100,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        remove_unused_columns=False,
        seed=0,
        warmup_steps=0.06,
        disable_tqdm=True,
    )
    defaults.update(args)
    trainer = SwagTrainer(
        model=model,
        args=TrainingArguments(**defaults),
        train_dataset=features,
        eval_dataset=eval_features,
        data_collator=MultipleChoiceCollator(tokenizer.pad_token_id, n_slots=5),
        compute_metrics=compute_eval_metrics if eval_features else None,
        swag=swag,
    )
    return trainer, model, features


def test_lr_schedule_warmup_decay_then_anneal_to_constant():
    kw = dict(warmup_steps=2, total_steps=20, swag_start_step=10, anneal_steps=4, swag_lr_ratio=0.25)
    values = [swag_lr_multiplier(t, **kw) for t in range(20)]
    assert values[0] == 0 and values[1] == 0.5 and values[2] == 1.0
    assert values[9] == pytest.approx((20 - 9) / 18)  # linear decay before SWAG
    start = (20 - 10) / 18
    assert values[10] == pytest.approx(start)
    assert values[12] == pytest.approx(start + 0.5 * (0.25 - start))  # anneal halfway
    assert values[14:] == [0.25] * 6  # constant SWAG rate
    no_swag_lr = [swag_lr_multiplier(t, **{**kw, "swag_lr_ratio": None}) for t in range(20)]
    assert no_swag_lr[15] == pytest.approx(5 / 18)


def test_lr_schedule_follows_the_trainers_constant_schedules():
    kw = dict(warmup_steps=2, total_steps=20, swag_start_step=10, anneal_steps=0, swag_lr_ratio=None)
    assert [swag_lr_multiplier(t, **kw, schedule="constant") for t in range(20)] == [1.0] * 20
    assert [swag_lr_multiplier(t, **kw, schedule="constant_with_warmup") for t in range(4)] == [0, 0.5, 1.0, 1.0]
    assert swag_lr_multiplier(19, **kw, schedule="constant_with_warmup") == 1.0
    with pytest.raises(ValueError, match="schedule must be one of"):
        swag_lr_multiplier(3, **kw, schedule="cosine")


def test_a_swag_rate_from_a_base_rate_of_zero_is_refused_and_zero_stays_zero():
    from swag_lora.errors import InvalidSettingError
    from swag_lora.training.schedule import swag_lr_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.0)
    settings = SwagSettings(swag_start_step=0, swag_learning_rate=0.01)
    with pytest.raises(InvalidSettingError, match="cannot be reached from learning_rate 0"):
        swag_lr_scheduler(optimizer, settings, num_training_steps=4, num_train_epochs=1, learning_rate=0.0)
    still = swag_lr_scheduler(optimizer, SwagSettings(swag_start_step=0, swag_learning_rate=0.0), num_training_steps=4,
                              num_train_epochs=1, learning_rate=0.0)
    assert still.get_last_lr() == [0.0]


@pytest.mark.parametrize("schedule, expected", [("constant", [1e-2] * 4), ("linear", [1e-2, 7.5e-3, 5e-3, 2.5e-3])])
def test_the_trainer_keeps_a_constant_schedule_it_is_given(tmp_path, tokenizer, tiny_llama, arc_train_rows, schedule,
                                                           expected):
    """lr_scheduler_type "constant" was silently replaced by a linear decay to 0 (the
    benchmark's SWAG branches, which ask for a constant rate, decayed)."""
    rates = []

    class Rates(TrainerCallback):
        def on_step_begin(self, args, state, control, optimizer=None, **kw):
            rates.append(optimizer.param_groups[0]["lr"])

    swag = SwagSettings(swag_start_step=0, collect_every_steps=1, max_rank=2)
    trainer, _, _ = make_trainer(tmp_path, tokenizer, tiny_llama, arc_train_rows[:16], swag, num_train_epochs=2,
                                 learning_rate=1e-2, warmup_steps=0, lr_scheduler_type=schedule,
                                 per_device_train_batch_size=8)
    trainer.add_callback(Rates())
    trainer.train()
    assert rates == pytest.approx(expected)


def test_an_unsupported_lr_schedule_is_refused(tmp_path, tokenizer, tiny_llama, arc_train_rows):
    from swag_lora.errors import InvalidSettingError

    swag = SwagSettings(swag_start_step=0, collect_every_steps=1, max_rank=2)
    trainer, _, _ = make_trainer(tmp_path, tokenizer, tiny_llama, arc_train_rows[:8], swag, lr_scheduler_type="cosine")
    with pytest.raises(InvalidSettingError, match="lr_scheduler_type cosine is not supported"):
        trainer.train()


def test_settings_validation():
    with pytest.raises(ValueError, match="start is missing"):
        SwagSettings()
    with pytest.raises(ValueError, match="not both"):
        SwagSettings(swag_start_epoch=1, swag_start_step=3)
    with pytest.raises(ValueError, match="collect_every_steps"):
        SwagSettings(swag_start_step=1, collect_every_steps=-1)
    assert SwagSettings(swag_start_epoch=1.5).start_step(max_steps=40, num_train_epochs=4) == 15


def test_callback_collects_every_n_steps_from_start(tmp_path, tokenizer, tiny_llama, arc_train_rows):
    rows = arc_train_rows[:32]  # 4 steps per epoch at batch 8
    swag = SwagSettings(swag_start_step=3, collect_every_steps=2, swag_learning_rate=5e-4, max_rank=3)
    trainer, model, _ = make_trainer(tmp_path, tokenizer, tiny_llama, rows, swag, num_train_epochs=3)
    lrs = []

    class RecordLR(TrainerCallback):
        def on_step_begin(self, args, state, control, lr_scheduler=None, **kwargs):
            lrs.append(lr_scheduler.get_last_lr()[0])

    trainer.add_callback(RecordLR())
    trainer.train()
    assert trainer.state.global_step == 12
    assert trainer.swag_callback.collected_at == [5, 7, 9, 11]
    assert trainer.posterior.n_collected == 4 and trainer.posterior.rank == 3
    # after the (zero-step) anneal the rate is the constant SWAG rate
    assert lrs[-1] == pytest.approx(5e-4)
    # the posterior mean is the average of what was collected: here its last deviation
    # row equals the final weights minus the mean (the last collection was step 11 of 12)
    assert torch.isfinite(trainer.posterior.mean()).all()


def test_callback_collects_per_epoch_after_start_epoch(tmp_path, tokenizer, tiny_llama, arc_train_rows):
    rows = arc_train_rows[:32]
    swag = SwagSettings(swag_start_epoch=1, collect_every_steps=0)
    trainer, _, _ = make_trainer(tmp_path, tokenizer, tiny_llama, rows, swag, num_train_epochs=4)
    trainer.train()
    assert trainer.swag_callback.collected_at == [8, 12, 16]


def test_checkpoints_hold_adapter_and_posterior_not_base_weights(tmp_path, tokenizer, tiny_llama, arc_train_rows):
    swag = SwagSettings(swag_start_step=1, collect_every_steps=1)
    trainer, model, _ = make_trainer(
        tmp_path, tokenizer, tiny_llama, arc_train_rows[:16], swag, save_strategy="steps", save_steps=1,
        num_train_epochs=1,
    )
    trainer.train()
    ckpt = tmp_path / "out" / "checkpoint-2"
    names = {p.name for p in ckpt.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", POSTERIOR_FILE} <= names
    assert "model.safetensors" not in names and "pytorch_model.bin" not in names
    saved = SwagPosterior.load(ckpt / POSTERIOR_FILE, model)
    assert saved.n_collected == 1  # collected at step 2 only (start 1, every step after it)
    torch.testing.assert_close(saved.mean(), trainer.posterior.mean())


def test_end_to_end_tiny_model_arc_easy(tmp_path, tokenizer, tiny_llama, arc_train_rows, data_dir):
    from swag_lora.tasks import load_task

    val_rows = list(load_task("arc-easy", "validation", data_dir=data_dir, limit=32))
    swag = SwagSettings(swag_start_epoch=1, collect_every_steps=2, swag_learning_rate=1e-3, max_rank=5)
    trainer, model, _ = make_trainer(
        tmp_path, tokenizer, tiny_llama, arc_train_rows, swag, eval_rows=val_rows, num_train_epochs=3,
        eval_strategy="epoch",
    )
    trainer.train()
    post = trainer.posterior
    assert post.n_collected == 8  # steps 10, 12, 14, 16 ... of 8 per epoch, from step 8
    best = trainer.best_callback
    assert best.best_vector is not None and math.isfinite(best.best_value)

    collator = MultipleChoiceCollator(tokenizer.pad_token_id, n_slots=5)
    features = encode_rows(val_rows, tokenizer, "cloze")
    methods = [
        fixed_weights("map", post, best.best_vector),
        fixed_weights("swa", post, post.mean()),
        swag_samples(post, SamplingOptions(n_samples=4, scale=1.0, seed=0)),
        swag_samples(post, SamplingOptions(n_samples=4, scale=1.0, seed=0, diag_only=True)),
    ]
    before = post.read()
    results = {}
    for method in methods:
        log_probs, summary = evaluate_predictive(model, features, collator, method, batch_size=16)
        assert log_probs.shape == (32, len(method), 5)
        for key in ("acc", "nll", "ece", "brier", "mce", "entropy", "mutual_information"):
            assert np.isfinite(summary[key]), (method.name, key)
        results[method.name] = summary
    torch.testing.assert_close(post.read(), before)  # evaluation restores the weights
    assert results["map"]["nll"] == pytest.approx(best.best_value, rel=1e-4)  # same as the Trainer's eval
    assert results["swag"]["mutual_information"] > 0
    assert results["map"]["mutual_information"] == 0


@pytest.mark.parametrize("branch", [True, False])
def test_the_swag_phase_starts_from_the_best_validation_weights_when_asked(tmp_path, tokenizer, arc_train_rows,
                                                                          branch, monkeypatch):
    """With ``branch_from_best`` the SWAG phase starts at the best-validation candidate (here
    forced to be epoch 1's, before the SWAG start at epoch 2) with fresh optimizer moments; at a
    SWAG rate of 0 the iterates then stay there, so SWA equals that candidate exactly. Without
    it, they stay at the last iterate."""
    from swag_lora.training.callbacks import BestValidationCallback

    record = BestValidationCallback.on_evaluate

    def first_only(self, args, state, control, metrics=None, **kwargs):  # the best is epoch 1's evaluation
        if self.best_vector is None:
            record(self, args, state, control, metrics=metrics, **kwargs)

    monkeypatch.setattr(BestValidationCallback, "on_evaluate", first_only)
    rows = arc_train_rows[:32]
    swag = SwagSettings(swag_start_epoch=2, collect_every_steps=1, swag_learning_rate=0.0, branch_from_best=branch)
    trainer, _, _ = make_trainer(tmp_path, tokenizer, make_tiny_llama(len(tokenizer)), rows, swag,
                                 eval_rows=rows[:8], num_train_epochs=3, learning_rate=5e-2, eval_strategy="epoch")
    trainer.train()
    post, best = trainer.posterior, trainer.best_callback
    assert best.best_step == 4 and trainer.swag_callback.start_step == 8
    start = trainer.swag_callback.map_phase_end_vector
    assert not torch.equal(start, best.best_vector)  # the last iterate moved on from the candidate
    torch.testing.assert_close(post.mean(), best.best_vector if branch else start, rtol=0, atol=1e-7)
    assert post.variance().max() < 1e-10  # rate 0: every iterate is the starting point
    if branch:
        assert trainer.branch_callback.branched_at == {"step": 8, "from": "best validation NLL at step 4"}
    else:
        assert trainer.branch_callback is None
