"""Training on text and decoding with members, on tiny random Llamas with SmolLM2's tokenizer: the
answer-only loss against a hand computation, ensemble decoding against greedy generation and
against a brute-force average recomputed from scratch, and a memorised answer coming back."""

from __future__ import annotations

import math
from contextlib import nullcontext

import pytest
import torch

from swag_lora.bayes.posterior import SwagPosterior
from swag_lora.generation.answers import answer_text
from swag_lora.generation.decoding import DecodingOptions, StopTokens, ensemble_decode, member_decode
from swag_lora.lm.generative import IGNORE_INDEX, GenerativeLM
from swag_lora.lm.loading import LoraSettings, apply_lora, base_causal_lm
from swag_lora.lm.text_encoding import AnswerOnlyCollator, answer_ids, encode_prompts, encode_text_rows
from swag_lora.tasks import TextRow
from tests.conftest import make_tiny_llama, randomise_lora

ROWS = [
    TextRow("a", "Question: What is frozen water called?\nAnswer:", ("ice cubes",)),
    TextRow("b", "Question: Which organ pumps blood through the body?\nAnswer:", ("the heart",)),
    TextRow("c", "Question: Name a gas.\nAnswer:", ("carbon dioxide",)),
]
NO_STOPS = StopTokens(frozenset(), frozenset())


@pytest.fixture(scope="module")
def lora_model(tokenizer):
    """A tiny Llama with random LoRA weights (so they act), in eval mode."""
    lm = apply_lora(make_tiny_llama(len(tokenizer), seed=3), LoraSettings(lora_dropout=0.0))
    randomise_lora(lm, seed=1, std=0.3)
    return lm.eval()


def member_vectors(lm, n: int, seed: int = 0) -> tuple[SwagPosterior, list[torch.Tensor]]:
    posterior = SwagPosterior(lm)
    base = posterior.read()
    gen = torch.Generator().manual_seed(seed)
    return posterior, [base + 0.3 * torch.randn(base.shape, generator=gen) for _ in range(n)]


def test_the_loss_is_the_cross_entropy_of_the_answer_tokens_only(tokenizer, lora_model):
    model = GenerativeLM(lora_model)
    features = encode_text_rows(ROWS, tokenizer)
    batch = AnswerOnlyCollator(tokenizer.pad_token_id)(features)
    # prompt and padding are masked; the answer and its EOS are labelled
    for f, row in zip(features, ROWS):
        n_answer = len(answer_ids(tokenizer, row.prompt, row.answers[0])) + 1
        assert f["labels"][:-n_answer] == [IGNORE_INDEX] * (len(f["input_ids"]) - n_answer)
        assert f["labels"][-n_answer:] == f["input_ids"][-n_answer:] and f["labels"][-1] == tokenizer.eos_token_id
    with torch.no_grad():
        loss = model(**batch).loss
        total, count = 0.0, 0
        for f in features:  # by hand, one unpadded sequence at a time, the full-vocabulary head everywhere
            ids = torch.tensor([f["input_ids"]])
            log_probs = torch.log_softmax(lora_model(input_ids=ids).logits[0].double(), dim=-1)
            for t, label in enumerate(f["labels"]):
                if label != IGNORE_INDEX:
                    total -= float(log_probs[t - 1, label])
                    count += 1
    assert count == sum(len(answer_ids(tokenizer, r.prompt, r.answers[0])) + 1 for r in ROWS)
    assert float(loss) == pytest.approx(total / count, rel=1e-5)


def test_identical_members_decode_as_greedy_generation_with_zero_mutual_information(tokenizer, lora_model):
    prompts = encode_prompts(ROWS, tokenizer)
    options = DecodingOptions(max_new_tokens=6, batch_size=3)
    single = ensemble_decode(lora_model, [nullcontext], prompts, tokenizer.pad_token_id, NO_STOPS, options)
    triple = ensemble_decode(lora_model, [nullcontext] * 3, prompts, tokenizer.pad_token_id, NO_STOPS, options)
    for prompt, one, three in zip(prompts, single, triple):
        ids = torch.tensor([prompt])
        reference = lora_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6,
                                        min_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        assert one.tokens == three.tokens == reference[0, len(prompt):].tolist()
        assert abs(three.epistemic).max() < 1e-9
        assert three.log_prob == pytest.approx(one.log_prob, abs=1e-9)
    assert len({tuple(d.tokens) for d in single}) > 1  # the prompts get different answers: not vacuous


def test_ensemble_decoding_equals_the_brute_force_average_recomputed_from_scratch(tokenizer, lora_model):
    posterior, vectors = member_vectors(lora_model, 3)
    members = [(lambda v=v: posterior.written(v)) for v in vectors]
    prompts = encode_prompts(ROWS, tokenizer)
    decoded = ensemble_decode(lora_model, members, prompts, tokenizer.pad_token_id, NO_STOPS,
                              DecodingOptions(max_new_tokens=5, batch_size=3))  # one left-padded batch, KV caches
    assert max(d.epistemic.max() for d in decoded) > 1e-4  # the members disagree: the check is not vacuous
    with torch.no_grad():
        for prompt, d in zip(prompts, decoded):
            for t, token in enumerate(d.tokens):
                ids = torch.tensor([prompt + d.tokens[:t]])  # no padding, no cache
                per_member = []
                for v in vectors:
                    with posterior.written(v):
                        per_member.append(torch.log_softmax(lora_model(input_ids=ids).logits[0, -1].double(), -1))
                lp = torch.stack(per_member)
                mean = torch.logsumexp(lp, 0) - math.log(len(vectors))
                assert int(mean.argmax()) == token
                assert d.log_prob[t] == pytest.approx(float(mean[token]), abs=2e-5)
                assert d.total[t] == pytest.approx(float(-(mean.exp() * mean).sum()), abs=2e-5)
                assert d.aleatoric[t] == pytest.approx(float(-(lp.exp() * lp).sum(-1).mean()), abs=2e-5)
                assert d.member_log_probs[:, t] == pytest.approx(lp[:, token].numpy(), abs=2e-5)
    assert torch.equal(posterior.read(), member_vectors(lora_model, 0)[0].read())  # weights restored


def test_sample_then_decode_gives_each_members_own_greedy_answer(tokenizer, lora_model):
    posterior, vectors = member_vectors(lora_model, 3, seed=5)
    members = [(lambda v=v: posterior.written(v)) for v in vectors]
    prompts = encode_prompts(ROWS, tokenizer)
    options = DecodingOptions(max_new_tokens=4, batch_size=2)
    per_member = member_decode(lora_model, members, prompts, tokenizer.pad_token_id, NO_STOPS, options)
    for s, member in enumerate(members):
        alone = ensemble_decode(lora_model, [member, member], prompts, tokenizer.pad_token_id, NO_STOPS, options)
        assert [d.tokens for d in per_member[s]] == [d.tokens for d in alone]


def test_sequences_stop_at_their_own_stop_token_and_sampling_is_seeded(tokenizer, lora_model):
    prompts = encode_prompts(ROWS, tokenizer)
    free = ensemble_decode(lora_model, [nullcontext], prompts, tokenizer.pad_token_id, NO_STOPS,
                           DecodingOptions(max_new_tokens=6))
    stop = free[0].tokens[2]  # make the first answer's third token a stop token
    stops = StopTokens(frozenset({stop}), frozenset())
    stopped = ensemble_decode(lora_model, [nullcontext], prompts, tokenizer.pad_token_id, stops,
                              DecodingOptions(max_new_tokens=6))
    assert stopped[0].tokens == free[0].tokens[:3] and stopped[0].stop == "eos"
    for f, s in zip(free[1:], stopped[1:]):
        cut = f.tokens.index(stop) + 1 if stop in f.tokens else len(f.tokens)
        assert s.tokens == f.tokens[:cut]
    sample = DecodingOptions(max_new_tokens=6, do_sample=True, temperature=2.0, seed=7)
    first = ensemble_decode(lora_model, [nullcontext], prompts, tokenizer.pad_token_id, NO_STOPS, sample)
    again = ensemble_decode(lora_model, [nullcontext], prompts, tokenizer.pad_token_id, NO_STOPS, sample)
    assert [d.tokens for d in first] == [d.tokens for d in again]
    assert [d.tokens for d in first] != [d.tokens for d in free]


def test_a_memorised_answer_comes_back_token_for_token(tokenizer):
    """The answer tokens trained on are exactly those generated after the prompt (no boundary split)."""
    base = make_tiny_llama(len(tokenizer))
    base.get_input_embeddings().weight.data *= 30  # logits large enough to memorise with LoRA alone
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    torch.manual_seed(0)  # LoRA's initialisation
    lm = apply_lora(base, LoraSettings(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=modules))
    model = GenerativeLM(lm)
    rows = ROWS[:2]
    batch = AnswerOnlyCollator(tokenizer.pad_token_id)(encode_text_rows(rows, tokenizer))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(100):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.1
    stops = StopTokens.of(tokenizer)
    decoded = ensemble_decode(base_causal_lm(lm), [nullcontext], encode_prompts(rows, tokenizer),
                              tokenizer.pad_token_id, stops, DecodingOptions(max_new_tokens=8))
    for row, d in zip(rows, decoded):
        assert d.tokens == answer_ids(tokenizer, row.prompt, row.answers[0]) + [tokenizer.eos_token_id]
        assert d.stop == "eos" and answer_text(tokenizer, d, stops) == row.answers[0]
