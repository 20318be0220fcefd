"""The pretrained SmolLM2-135M-Instruct (packaged GGUF, converted once): load, train a step, sample."""

import pytest
import torch

from swag_lora import SwagPosterior
from swag_lora.lm.encoding import MultipleChoiceCollator, encode_rows
from swag_lora.lm.loading import apply_lora, load_causal_lm
from swag_lora.lm.multiple_choice import MultipleChoiceLM

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def smol(smollm2_dir):
    torch.manual_seed(0)
    lm, tok = load_causal_lm(str(smollm2_dir))
    return MultipleChoiceLM(apply_lora(lm), tok, mode="cloze", n_slots=5), tok


def test_smollm2_trains_and_swag_samples_change_logits_then_restore(smol, arc_train_rows):
    model, tok = smol
    assert model.lm.get_base_model().config.model_type == "llama"
    rows = arc_train_rows[:8]
    batch = MultipleChoiceCollator(tok.pad_token_id, 5)(encode_rows(rows, tok, "cloze"))
    post = SwagPosterior(model, max_rank=5)
    assert post.num_parameters == 460_800  # r=8 on q and v of 30 layers
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.0)
    model.train()
    losses = []
    for _ in range(3):  # three optimizer steps on one batch; collect after each
        out = model(**batch)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        post.collect()
        losses.append(out.loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]  # the adapter learns
    model.eval()
    with torch.no_grad():
        before = model(**batch).logits
        weights = post.read()
        with post.sampled(scale=1.0, seed=0):
            sampled = model(**batch).logits
        after = model(**batch).logits
    finite = torch.isfinite(before)
    assert (sampled[finite] - before[finite]).abs().max() > 1e-4  # the sample changes the answer logits
    torch.testing.assert_close(after, before, rtol=0, atol=0)  # and the weights come back exactly
    torch.testing.assert_close(post.read(), weights, rtol=0, atol=0)
