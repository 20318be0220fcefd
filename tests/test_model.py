"""Scoring modes against brute-force computations on a tiny random Llama."""

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
    Row("q3", "Plants make food by a process that needs which of these inputs from the air?", ("CO2", "O"), 1),
]


def brute_force_cloze(lm, features):
    """Each choice as its own unpadded sequence (question ids + choice ids), full-vocabulary log-softmax."""
    scores = []
    for f in features:
        row = []
        for cont, ci in zip(f["continuations"], f["context_index"]):
            ctx = f["contexts"][ci]
            ids = torch.tensor([ctx + cont])
            logp = lm(input_ids=ids).logits.float().log_softmax(-1)[0]
            row.append(sum(logp[len(ctx) - 1 + t, tok].item() for t, tok in enumerate(cont)))
        scores.append(row)
    return scores


def test_cloze_scores_equal_brute_force(tiny_llama, tokenizer):
    peft_model = apply_lora(tiny_llama, LoraSettings(lora_dropout=0.0))
    randomise_lora(peft_model)
    model = MultipleChoiceLM(peft_model, tokenizer, mode="cloze", n_slots=4).eval()
    features = encode_rows(ROWS, tokenizer, "cloze")
    lengths = [len(c) for f in features for c in f["continuations"]]
    assert len(set(lengths)) > 2  # choices of different token lengths
    assert len({len(f["contexts"][0]) for f in features}) == 3  # questions of different lengths
    batch = MultipleChoiceCollator(tokenizer.pad_token_id, n_slots=4)(features)
    assert (batch["segment_ids"] == -1).any()  # the batch really has padding
    with torch.no_grad():
        got = model(**batch).logits
        expected = brute_force_cloze(peft_model, features)
    for q, row in enumerate(expected):
        assert torch.allclose(got[q, : len(row)], torch.tensor(row), atol=1e-4), (got[q], row)
        assert torch.isinf(got[q, len(row) :]).all()


def test_length_normalised_cloze_is_the_mean_token_log_prob(tiny_llama, tokenizer):
    peft_model = apply_lora(tiny_llama, LoraSettings(lora_dropout=0.0))
    randomise_lora(peft_model)
    model = MultipleChoiceLM(peft_model, tokenizer, mode="cloze", n_slots=4, length_normalize=True).eval()
    features = encode_rows(ROWS, tokenizer, "cloze")
    batch = MultipleChoiceCollator(tokenizer.pad_token_id, n_slots=4)(features)
    with torch.no_grad():
        got = model(**batch).logits
        sums = brute_force_cloze(peft_model, features)
    for q, (f, row) in enumerate(zip(features, sums)):
        means = [total / len(cont) for total, cont in zip(row, f["continuations"])]
        assert torch.allclose(got[q, : len(row)], torch.tensor(means), atol=1e-4), (got[q], means)
        assert torch.isinf(got[q, len(row) :]).all()
    with pytest.raises(ValueError, match="cloze scoring only"):
        MultipleChoiceLM(peft_model, tokenizer, mode="letter", n_slots=4, length_normalize=True)


@pytest.mark.parametrize("normalize", ["chars", "bytes"])
def test_text_length_normalised_cloze_divides_by_the_choice_text(tiny_llama, tokenizer, normalize):
    """lm-evaluation-harness's acc_norm (characters) and acc_bytes (UTF-8 bytes): the summed
    log-probability divided by the length of the choice's text, without the joining space."""
    rows = ROWS + [Row("q4", "Which is hot?", ("café crème", "ice"), 0)]  # é, è: 2 bytes, 1 character each
    peft_model = apply_lora(tiny_llama, LoraSettings(lora_dropout=0.0))
    randomise_lora(peft_model)
    model = MultipleChoiceLM(peft_model, tokenizer, mode="cloze", n_slots=4, normalize=normalize).eval()
    features = encode_rows(rows, tokenizer, "cloze")
    with torch.no_grad():
        got = model(**MultipleChoiceCollator(tokenizer.pad_token_id, n_slots=4)(features)).logits
        sums = brute_force_cloze(peft_model, features)
    for q, (row, total) in enumerate(zip(rows, sums)):
        lengths = [len(c) if normalize == "chars" else len(c.encode("utf-8")) for c in row.choices]
        expected = [s / n for s, n in zip(total, lengths)]
        assert torch.allclose(got[q, : len(total)], torch.tensor(expected), atol=1e-4), (got[q], expected)
    assert features[3]["choice_chars"] == [10, 3] and features[3]["choice_bytes"] == [12, 3]


def test_cloze_normalisation_settings_are_checked(tiny_llama, tokenizer):
    peft_model = apply_lora(tiny_llama, LoraSettings(lora_dropout=0.0))
    assert MultipleChoiceLM(peft_model, tokenizer, normalize="tokens").length_normalize
    assert MultipleChoiceLM(peft_model, tokenizer, length_normalize=True).normalize == "tokens"
    with pytest.raises(ValueError, match="unknown cloze normalisation 'words'"):
        MultipleChoiceLM(peft_model, tokenizer, normalize="words")
    with pytest.raises(ValueError, match="contradicts normalize='chars'"):
        MultipleChoiceLM(peft_model, tokenizer, length_normalize=True, normalize="chars")
    feature = {"contexts": [[5, 6]], "continuations": [[7], [8]], "context_index": [0, 0], "label": 0,
               "n_choices": 2}  # made by hand: no text lengths
    model = MultipleChoiceLM(peft_model, tokenizer, n_slots=2, normalize="chars")
    with pytest.raises(ValueError, match="needs the choices' text lengths"):
        model(**MultipleChoiceCollator(tokenizer.pad_token_id, 2)([feature]))


def test_bare_cloze_prompt_is_the_question_alone(tokenizer):
    """lm-evaluation-harness's openbookqa context: the question stem, no "Question:"/"Answer:"."""
    bare = encode_rows(ROWS[:1], tokenizer, "cloze", cloze_prompt="bare")[0]
    default = encode_rows(ROWS[:1], tokenizer, "cloze")[0]
    assert tokenizer.decode(bare["contexts"][0]) == ROWS[0].question
    assert tokenizer.decode(default["contexts"][0]) == f"Question: {ROWS[0].question}\nAnswer:"
    assert bare["continuations"] == default["continuations"]
    with pytest.raises(ValueError, match="unknown cloze prompt 'qa'"):
        encode_rows(ROWS[:1], tokenizer, "cloze", cloze_prompt="qa")


def test_cloze_shared_blank_contexts(tiny_llama, tokenizer):
    """WinoGrande-style: one context per option, one shared continuation."""
    model = MultipleChoiceLM(apply_lora(tiny_llama, LoraSettings(lora_dropout=0.0)), tokenizer, "cloze", 2).eval()
    randomise_lora(model)
    ctx = [tokenizer("The trophy did not fit in the suitcase because the trophy")["input_ids"],
           tokenizer("The trophy did not fit in the suitcase because the suitcase")["input_ids"]]
    cont = tokenizer(" was too big.")["input_ids"]
    feature = {"contexts": ctx, "continuations": [cont, cont], "context_index": [0, 1], "label": 0, "n_choices": 2}
    batch = MultipleChoiceCollator(tokenizer.pad_token_id, 2)([feature])
    with torch.no_grad():
        got = model(**batch).logits[0]
        expected = brute_force_cloze(model.lm, [feature])[0]
    assert torch.allclose(got, torch.tensor(expected), atol=1e-4)


@pytest.mark.parametrize("side", ["left", "right"])
def test_letter_logits_read_the_last_real_position(tiny_llama, tokenizer, side):
    peft_model = apply_lora(tiny_llama, LoraSettings(lora_dropout=0.0))
    model = MultipleChoiceLM(peft_model, tokenizer, mode="letter", n_slots=4).eval()
    features = encode_rows(ROWS, tokenizer, "letter")
    batch = MultipleChoiceCollator(tokenizer.pad_token_id, 4, padding_side=side)(features)
    assert (batch["attention_mask"] == 0).any()
    letter_ids = [tokenizer(f" {c}", add_special_tokens=False)["input_ids"][0] for c in "ABCD"]
    with torch.no_grad():
        got = model(**batch).logits
        for q, f in enumerate(features):
            full = peft_model(input_ids=torch.tensor([f["input_ids"]])).logits[0, -1]
            n = f["n_choices"]
            # the head starts as the LM-head rows of " A", " B", ...: same logits as the full LM
            assert torch.allclose(got[q, :n], full[letter_ids[:n]], atol=1e-4)
            assert torch.isinf(got[q, n:]).all()


def test_tracked_parameters_are_lora_and_head_never_the_tied_matrix(tiny_llama, tokenizer):
    from swag_lora import SwagPosterior

    model = MultipleChoiceLM(apply_lora(tiny_llama), tokenizer, mode="letter", n_slots=4)
    post = SwagPosterior(model)
    assert post.names[-1] == "answer_head.weight"
    assert all("lora_" in n for n in post.names[:-1])
    assert not any("embed" in n or "lm_head" in n for n in post.names)
    head = model.answer_head.weight
    assert head.data_ptr() != model.lm_head.weight.data_ptr()
    # 2 layers x (q, v) x (A, B) LoRA tensors + the head
    assert len(post.names) == 2 * 2 * 2 + 1
    fresh = make_tiny_llama(len(tokenizer))
    cloze = SwagPosterior(MultipleChoiceLM(apply_lora(fresh), tokenizer, mode="cloze", n_slots=4))
    assert all("lora_" in n for n in cloze.names)


def test_letter_mode_rejects_a_tokenizer_that_splits_letters(tiny_llama, tokenizer):
    class SplittingTokenizer:
        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": [1, 2] if text.strip() in "ABCDE" else [3]}

    with pytest.raises(ValueError, match="letter scoring needs one token per letter"):
        MultipleChoiceLM(apply_lora(tiny_llama), SplittingTokenizer(), mode="letter", n_slots=4)


def test_truncation_keeps_choices_and_cue(tokenizer):
    long_q = Row("long", "why " * 300 + "is the sky blue?", ("light scattering", "paint"), 0)
    features = encode_rows([long_q], tokenizer, "cloze", max_length=64)
    f = features[0]
    assert len(f["contexts"][0]) + max(map(len, f["continuations"])) <= 64
    assert tokenizer.decode(f["contexts"][0]).endswith("\nAnswer:")
    assert tokenizer.decode(f["continuations"][0]) == " light scattering"
    letter = encode_rows([long_q], tokenizer, "letter", max_length=64)[0]
    assert len(letter["input_ids"]) <= 64
    assert tokenizer.decode(letter["input_ids"]).endswith("Choices: A. Light scattering B. Paint Answer:")


def test_loss_is_cross_entropy_over_choices(tiny_llama, tokenizer):
    model = MultipleChoiceLM(apply_lora(tiny_llama, LoraSettings(lora_dropout=0.0)), tokenizer, "cloze", 4).eval()
    batch = MultipleChoiceCollator(tokenizer.pad_token_id, 4)(encode_rows(ROWS, tokenizer, "cloze"))
    out = model(**batch)
    manual = -torch.stack([out.logits[i].log_softmax(-1)[y] for i, y in enumerate(batch["labels"])]).mean()
    assert torch.allclose(out.loss, manual)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
