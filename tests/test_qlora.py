"""A quantised base model (QLoRA) and activation checkpointing, on tiny random Llamas.

bitsandbytes (from 0.48) has a CPU backend: 4-bit (NF4/FP4, double quantisation) and 8-bit layers
run on the CPU with torch 2.13, so these tests run everywhere ``make setup`` ran (it installs
bitsandbytes); they are not skipped when it is missing, the import fails.
"""

from __future__ import annotations

import bitsandbytes  # noqa: F401  (a missing bitsandbytes fails here, loudly)
import pytest
import torch

from swag_lora.lm.encoding import MultipleChoiceCollator, encode_rows
from swag_lora.lm.loading import LoraSettings, apply_lora
from swag_lora.lm.multiple_choice import MultipleChoiceLM
from swag_lora.tasks import Row
from tests.conftest import make_tiny_llama, randomise_lora

ROWS = [
    Row("q1", "What is the colour of the sky on a clear day?", ("blue", "green", "a very dark shade of red"), 0),
    Row("q2", "Which?", ("x", "yy zz", "w", "photosynthesis in green plants uses light"), 3),
]


def _loss_and_grads(model, batch):
    model.zero_grad()
    out = model(**batch)
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    missing = [n for n, g in grads.items() if g is None]
    assert not missing, f"no gradient reached {missing[:3]}"
    return out.loss.detach(), {n: g.clone() for n, g in grads.items()}


@pytest.mark.parametrize("mode", ["cloze", "letter"])
def test_activation_checkpointing_gives_the_same_loss_and_gradients(tokenizer, mode):
    """``--gradient_checkpointing true`` calls the wrapper's ``activation_checkpointing_enable``:
    layers are recomputed in the backward pass, and the loss and LoRA gradients stay the same."""
    model = MultipleChoiceLM(apply_lora(make_tiny_llama(len(tokenizer), seed=2), LoraSettings(lora_dropout=0.0)),
                             tokenizer, mode, n_slots=4)
    randomise_lora(model)
    batch = MultipleChoiceCollator(tokenizer.pad_token_id, 4)(encode_rows(ROWS, tokenizer, mode))
    model.train()
    loss, grads = _loss_and_grads(model, batch)
    model.activation_checkpointing_enable()
    base = model.lm.get_base_model()
    assert all(layer.gradient_checkpointing for layer in base.model.layers)
    checkpointed, checkpointed_grads = _loss_and_grads(model, batch)
    torch.testing.assert_close(checkpointed, loss, rtol=0, atol=1e-6)
    assert grads.keys() == checkpointed_grads.keys() and len(grads) > 0
    for name, grad in grads.items():
        assert grad.abs().max() > 0, name
        torch.testing.assert_close(checkpointed_grads[name], grad, rtol=1e-5, atol=1e-7)


def test_the_trainer_turns_checkpointing_on_through_the_wrapper(tokenizer, tmp_path):
    from transformers import Trainer, TrainingArguments

    model = MultipleChoiceLM(apply_lora(make_tiny_llama(len(tokenizer))), tokenizer, "cloze", n_slots=4)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, report_to=[],
                             use_cpu=True, remove_unused_columns=False, gradient_checkpointing=True,
                             save_strategy="no", disable_tqdm=True, dataloader_pin_memory=False)
    trainer = Trainer(model=model, args=args, train_dataset=encode_rows(ROWS, tokenizer, "cloze"),
                      data_collator=MultipleChoiceCollator(tokenizer.pad_token_id, 4))
    trainer.train()
    assert all(layer.gradient_checkpointing for layer in model.lm.get_base_model().model.layers)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("qlora") / "tiny"
    # hidden 64: bitsandbytes quantises in blocks of 64 values
    make_tiny_llama(len(tokenizer), seed=5, hidden=64).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("bits", [4, 8])
def test_gradients_through_a_quantised_base_survive_an_evaluation_pass(tiny_model_dir, tokenizer, bits):
    """bitsandbytes repacks 4-bit weights for a CPU kernel without backward at the first
    no-grad eval pass (on AVX512-BF16 CPUs); the loader turns that off, so the LoRA gradients
    after a validation pass are the ones before it, every LoRA weight has one, and they follow
    the LoRA weights' own path through the quantised layers."""
    from swag_lora.lm.loading import load_causal_lm
    from swag_lora.lm.quantization import Quantization

    lm, _ = load_causal_lm(str(tiny_model_dir), quantization=Quantization(bits))
    model = MultipleChoiceLM(apply_lora(lm, LoraSettings(lora_dropout=0.0)), tokenizer, "cloze", n_slots=4)
    randomise_lora(model)
    batch = MultipleChoiceCollator(tokenizer.pad_token_id, 4)(encode_rows(ROWS, tokenizer, "cloze"))
    model.train()
    _, before = _loss_and_grads(model, batch)
    model.eval()
    with torch.no_grad():
        model(**batch)
    model.train()
    _, after = _loss_and_grads(model, batch)
    assert before.keys() == after.keys()
    for name, grad in before.items():
        assert grad.abs().max() > 0, name
        torch.testing.assert_close(after[name], grad, rtol=0, atol=0)


@pytest.mark.parametrize("bits", [4, 8])
def test_a_quantised_base_trains_swag_over_float_lora_and_evaluates(tiny_model_dir, data_dir, tmp_path, bits):
    """Train on a 4-bit (NF4, double quantisation) or 8-bit base with gradient checkpointing, then
    evaluate: the base's linear layers are bitsandbytes layers, SWAG tracks only the LoRA weights
    (float32), the run records the quantisation, and evaluating with another one is refused."""
    from bitsandbytes.nn import Linear4bit, Linear8bitLt
    from transformers import TrainingArguments

    from swag_lora.bayes.registry import MethodContext, build_method
    from swag_lora.evaluation.data import EvalSpec, prepare_data
    from swag_lora.files import read_json
    from swag_lora.lm.quantization import QuantizationMismatchError
    from swag_lora.runs.arguments import DataArguments, LoraArguments, ModelArguments, SwagArguments
    from swag_lora.runs.load import load_run
    from swag_lora.runs.train import train_run

    quantisation = ({"load_in_4bit": True, "bnb_4bit_use_double_quant": True} if bits == 4
                    else {"load_in_8bit": True})
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"), learning_rate=1e-2, num_train_epochs=2, per_device_train_batch_size=8,
        eval_strategy="epoch", save_strategy="no", report_to=[], use_cpu=True, remove_unused_columns=False,
        seed=0, disable_tqdm=True, logging_steps=100, dataloader_pin_memory=False, gradient_checkpointing=True,
    )
    run_dir = train_run(
        ModelArguments(model_name_or_path=str(tiny_model_dir), **quantisation),
        DataArguments(task="arc-easy", data_dir=str(data_dir), train_limit=16, validation_limit=8),
        LoraArguments(lora_dropout=0.0),
        SwagArguments(swag_start_epoch=1, swag_collect_every_steps=1, swag_max_rank=2),
        args,
    )
    config = read_json(run_dir / "run_config.json")
    assert all(config["model"][k] == v for k, v in quantisation.items())
    described = "4-bit nf4 with double quantisation" if bits == 4 else "8-bit"
    assert config["base_model"]["quantization"] == described
    assert len(config["swag_collected_at_steps"]) >= 2

    run = load_run(run_dir)
    layer_type = Linear4bit if bits == 4 else Linear8bitLt
    q_proj = run.model.lm.get_base_model().model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, layer_type)
    assert q_proj.base_layer.weight.dtype == (torch.uint8 if bits == 4 else torch.int8)
    tracked = run.posterior.view.params
    assert tracked and all(p.dtype == torch.float32 and p.is_floating_point() for p in tracked)
    names = [n for n, p in run.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)  # SWAG tracks the LoRA weights only
    assert run.posterior.num_parameters == sum(p.numel() for p in tracked)
    assert run.posterior.mean().abs().max() > 0

    data = prepare_data(run, EvalSpec("arc-easy", "test", limit=6, data_dir=str(data_dir)))
    ctx = MethodContext([run])
    for method in ("map", "swag"):
        log_probs = build_method(method, ctx).log_probs(run.model, data.features, data.collator, 4, False)
        assert log_probs.shape[0] == 6 and torch.isfinite(torch.from_numpy(log_probs[..., :4])).all()
    other = {"load_in_8bit": True} if bits == 4 else {"load_in_4bit": True}
    with pytest.raises(QuantizationMismatchError, match=f"quantisation '{described}'"):
        load_run(run_dir, quantization=other)

    from swag_lora.prediction.predictor import predict

    records = [{"question": r.question, "choices": list(r.choices)} for r in data.rows[:3]]
    same = {"load_in_4bit": True} if bits == 4 else {"load_in_8bit": True}
    result = predict(run, records, method="swag", n_samples=2, quantization=same)
    assert len(result.predictions) == 3 and all(0 < p.confidence <= 1 for p in result.predictions)
    with pytest.raises(QuantizationMismatchError):
        predict(run, records, method="map", quantization=other)
