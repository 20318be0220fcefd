"""Prompt formatting for the two scoring modes, and length-safe tokenisation."""

from __future__ import annotations

import string

from .base import ClozePrompt, LetterPrompt, PromptParts, Row

CLOZE_HEAD = "Question: "
CLOZE_TAIL = "\nAnswer:"
LETTER_HEAD = "Select one of the choices that answers the following question: "
LETTERS = tuple(string.ascii_uppercase)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def format_cloze(row: Row) -> ClozePrompt:
    """The lm-evaluation-harness cloze form: ``"Question: {q}\\nAnswer:"`` + ``" {choice}"``."""
    context = PromptParts(CLOZE_HEAD, row.question, CLOZE_TAIL)
    return ClozePrompt(
        contexts=(context,),
        continuations=tuple(" " + c for c in row.choices),
        context_index=(0,) * len(row.choices),
    )


def format_letter(row: Row, add_period: bool = False) -> LetterPrompt:
    """The paper's letter prompt; choice text capitalised, optionally ending in ".".

    ``Select one of the choices that answers the following question: {q} Choices:
    A. {c1} B. {c2} ... Answer:``
    """
    if len(row.choices) > len(LETTERS):
        raise ValueError(f"row {row.id!r} has {len(row.choices)} choices; letter mode supports at most 26")
    parts = []
    for letter, choice in zip(LETTERS, row.choices):
        text = _capitalise(choice.strip())
        if add_period and not text.endswith("."):
            text += "."
        parts.append(f"{letter}. {text}")
    tail = " Choices: " + " ".join(parts) + " Answer:"
    letters = tuple(" " + letter for letter in LETTERS[: len(row.choices)])
    return LetterPrompt(prompt=PromptParts(LETTER_HEAD, row.question, tail), letters=letters)


def encode_prompt(tokenizer, parts: PromptParts, max_length: int | None = None) -> list[int]:
    """Token ids of ``parts.text`` (no special tokens added), at most ``max_length`` long.

    The whole string is tokenised as one when it fits. Otherwise ``head``, ``body`` and
    ``tail`` are tokenised separately and tokens are dropped from the end of ``body``
    only; if ``head`` and ``tail`` alone exceed ``max_length`` a ``ValueError`` says so.
    """
    ids = tokenizer(parts.text, add_special_tokens=False)["input_ids"]
    if max_length is None or len(ids) <= max_length:
        return list(ids)
    head = tokenizer(parts.head, add_special_tokens=False)["input_ids"] if parts.head else []
    body = tokenizer(parts.body, add_special_tokens=False)["input_ids"] if parts.body else []
    tail = tokenizer(parts.tail, add_special_tokens=False)["input_ids"] if parts.tail else []
    room = max_length - len(head) - len(tail)
    if room < 0:
        raise ValueError(
            f"max_length={max_length} is too short: the prompt's fixed parts (instructions, "
            f"choices, answer cue) alone take {len(head) + len(tail)} tokens"
        )
    return list(head) + list(body[:room]) + list(tail)
