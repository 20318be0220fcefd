"""The zero-shot method scores with the base model's weights and restores the fine-tuned ones."""

import copy

import pytest
import torch

from swag_lora.bayes.names import method_label
from swag_lora.bayes.predictive import member_log_probs
from swag_lora.bayes.registry import METHODS
from swag_lora.bayes.zero_shot import base_model, zero_shot
from swag_lora.lm.encoding import MultipleChoiceCollator, encode_rows
from swag_lora.lm.loading import LoraSettings, apply_lora
from swag_lora.lm.multiple_choice import MultipleChoiceLM
from swag_lora.tasks import Row
from tests.conftest import make_tiny_llama, randomise_lora

ROWS = [
    Row("a", "What is the colour of the sky on a clear day?", ("blue", "green", "red"), 0),
    Row("b", "Which gas do plants take from the air?", ("oxygen", "carbon dioxide", "helium", "argon"), 1),
]


@pytest.mark.parametrize("mode", ["cloze", "letter"])
def test_zero_shot_is_the_base_model_and_fine_tuning_comes_back(tokenizer, mode):
    base = make_tiny_llama(len(tokenizer), seed=3)
    reference = MultipleChoiceLM(copy.deepcopy(base), tokenizer, mode, n_slots=4).eval()  # never fine-tuned
    model = MultipleChoiceLM(apply_lora(base, LoraSettings(lora_dropout=0.0)), tokenizer, mode, n_slots=4).eval()
    randomise_lora(model, std=0.2)  # "fine-tuned": LoRA and, in letter mode, the answer head moved
    features = encode_rows(ROWS, tokenizer, mode)
    collator = MultipleChoiceCollator(tokenizer.pad_token_id, 4)
    method = zero_shot(model)
    assert method.name == "zero-shot" and len(method) == 1 and method.settings == {"n_samples": 1}

    tuned = member_log_probs(model, features, collator, _identity(), 2)
    got = member_log_probs(model, features, collator, method, 2)
    expected = member_log_probs(reference, features, collator, _identity(), 2)
    assert got.shape == (2, 1, 4)
    torch.testing.assert_close(torch.from_numpy(got), torch.from_numpy(expected), atol=1e-5, rtol=0)
    assert not torch.allclose(torch.from_numpy(got), torch.from_numpy(tuned), atol=1e-3)
    after = member_log_probs(model, features, collator, _identity(), 2)
    torch.testing.assert_close(torch.from_numpy(after), torch.from_numpy(tuned), atol=0, rtol=0)


def test_base_model_restores_the_head_after_an_error(tokenizer):
    from peft.tuners.tuners_utils import BaseTunerLayer

    model = MultipleChoiceLM(apply_lora(make_tiny_llama(len(tokenizer)), LoraSettings()), tokenizer, "letter", 4)
    randomise_lora(model)
    before = model.answer_head.weight.detach().clone()
    lora_layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    with pytest.raises(RuntimeError, match="boom"):
        with base_model(model):
            assert not torch.equal(model.answer_head.weight, before)
            assert lora_layers and all(m.disable_adapters is True for m in lora_layers)
            raise RuntimeError("boom")
    assert torch.equal(model.answer_head.weight, before)
    assert all(m.disable_adapters is False for m in lora_layers)  # adapters on again


def test_zero_shot_is_registered_without_a_scale_label():
    assert "zero-shot" in METHODS
    assert method_label("zero-shot", 10.0) == "zero-shot"


def _identity():
    """A one-member method that leaves the model as it is."""
    from contextlib import nullcontext

    from swag_lora.bayes.predictive import Method

    return Method("as-is", [nullcontext], {"n_samples": 1})
