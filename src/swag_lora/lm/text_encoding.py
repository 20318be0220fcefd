"""Token ids of prompts and answers for generation, and padded batches with answer-only labels.

The answer tokens are exactly the tokens a model generates after the prompt: the prompt and the
answer are tokenised separately (the answer as ``" " + answer``, unless the prompt already ends
in white space), never as one string whose split at the boundary could differ, and the answer
ends with the tokenizer's end-of-sequence token, which teaches the model to stop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from ..errors import InvalidSettingError
from ..tasks import TextRow
from .encoding import pad_sequences, special_prefix
from .generative import IGNORE_INDEX

__all__ = ["AnswerOnlyCollator", "answer_ids", "encode_prompts", "encode_text_rows"]


def answer_ids(tokenizer, prompt: str, answer: str) -> list[int]:
    """The ids of ``answer`` as written after ``prompt`` (a leading space unless the prompt ends in
    white space), without the end-of-sequence token."""
    text = answer.strip() if prompt[-1:].isspace() else " " + answer.strip()
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _prompt_ids(tokenizer, prompt: str, budget: int | None, row_id: str) -> list[int]:
    prefix = special_prefix(tokenizer)
    ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    if budget is not None:
        room = budget - len(prefix)
        if room <= 0:
            raise InvalidSettingError(f"row {row_id!r}: max_length leaves no room for the prompt")
        ids = ids[-room:]  # a long prompt loses its beginning; its end (the answer cue) is kept
    return prefix + ids


def encode_prompts(rows: Iterable[TextRow], tokenizer, max_length: int | None = None) -> list[list[int]]:
    """The prompt ids of every row (the tokenizer's special prefix first), at most ``max_length``
    long (a long prompt loses tokens from its start)."""
    return [_prompt_ids(tokenizer, row.prompt, max_length, row.id) for row in rows]


def encode_text_rows(rows: Iterable[TextRow], tokenizer, max_length: int | None = None) -> list[dict]:
    """Training features: ``input_ids`` = prompt + first answer + EOS, ``labels`` the same with the
    prompt set to −100; with ``max_length`` the prompt is shortened from its start, never the answer."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InvalidSettingError("the tokenizer has no end-of-sequence token: a generated answer could not end")
    out = []
    for row in rows:
        if not row.answers:
            raise InvalidSettingError(f"row {row.id!r} has no reference answer to train on")
        answer = answer_ids(tokenizer, row.prompt, row.answers[0]) + [eos]
        budget = None
        if max_length is not None:
            budget = max_length - len(answer)
            if budget <= 0:
                raise InvalidSettingError(f"row {row.id!r}: the answer alone takes {len(answer)} tokens, "
                                          f"max_length is {max_length}")
        prompt = _prompt_ids(tokenizer, row.prompt, budget, row.id)
        out.append({"input_ids": prompt + answer, "labels": [IGNORE_INDEX] * len(prompt) + answer})
    return out


class AnswerOnlyCollator:
    """Pads training features on the right: ``input_ids``, ``attention_mask`` and ``labels``
    (−100 on padding)."""

    def __init__(self, pad_token_id: int | None):
        self.pad_token_id = 0 if pad_token_id is None else int(pad_token_id)

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        ids, mask = pad_sequences([f["input_ids"] for f in features], self.pad_token_id)
        labels, _ = pad_sequences([f["labels"] for f in features], IGNORE_INDEX)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
