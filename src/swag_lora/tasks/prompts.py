"""Prompt formatting for the two scoring modes, and length-safe tokenisation.

Every task's rows format through :func:`format_cloze` and :func:`format_letter`; a row's
``meta["style"]`` picks the form:

- ``"question"`` (OBQA, ARC, CommonsenseQA, MMLU, and rows without meta): cloze
  ``"Question: {q}\\nAnswer:"`` + ``" {choice}"`` (lm-evaluation-harness's ``arc_easy`` and
  ``arc_challenge``), or with the ``"bare"`` cloze prompt ``"{q}"`` + ``" {choice}"``
  (lm-evaluation-harness's ``openbookqa``); letter: the paper's prompt.
- ``"fill-blank"`` (WinoGrande): cloze contexts are the sentence up to the blank with each
  option filled in, and the shared continuation is the rest of the sentence; letter: the
  paper's prompt with the sentence (blank included) as the question.
- ``"passage"`` (BoolQ): the passage, then the question, answered "yes" or "no".

The wording is a setting (:class:`ClozeTemplate`, :class:`LetterTemplate`), and an instruct
model's chat template can wrap any prompt (:class:`ChatFormat`).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from ..errors import InvalidSettingError
from .base import ClozePrompt, LetterPrompt, PromptParts, Row

__all__ = [
    "BARE_CLOZE",
    "CLOZE_HEAD",
    "CLOZE_PROMPTS",
    "CLOZE_TAIL",
    "DEFAULT_CLOZE",
    "DEFAULT_LETTER",
    "LETTERS",
    "LETTER_HEAD",
    "ChatFormat",
    "ClozeTemplate",
    "EncodedCloze",
    "KeepEndParts",
    "LetterTemplate",
    "cloze_template",
    "encode_cloze",
    "encode_prompt",
    "format_cloze",
    "format_letter",
]


CLOZE_HEAD = "Question: "
CLOZE_TAIL = "\nAnswer:"
LETTER_HEAD = "Select one of the choices that answers the following question: "
LETTERS = tuple(string.ascii_uppercase)


@dataclass(frozen=True)
class ClozeTemplate:
    """Wording of cloze prompts. The defaults are lm-evaluation-harness's forms (its ``arc_easy``
    for questions). With ``bare_question`` a question-style row's context is its question text
    alone, without ``question_head`` and ``answer_cue`` (lm-evaluation-harness's ``openbookqa``);
    passages and fill-blank sentences are formatted as without it."""

    question_head: str = CLOZE_HEAD
    answer_cue: str = CLOZE_TAIL
    choice_prefix: str = " "
    passage_head: str = ""
    passage_question: str = "\nQuestion: "
    blank_head: str = ""
    chat_blank_instruction: str = "Fill in the blank (_) in this sentence: "
    bare_question: bool = False


@dataclass(frozen=True)
class LetterTemplate:
    """Wording of letter prompts. The defaults are the SWAG-LoRA paper's prompt."""

    instruction: str = LETTER_HEAD
    choices_intro: str = " Choices: "
    choice: str = "{letter}. {text}"
    choice_sep: str = " "
    answer_cue: str = " Answer:"
    capitalise: bool = True
    letter_prefix: str = " "
    passage_instruction: str = (
        "Read the passage, then select one of the choices that answers the question.\nPassage: "
    )
    passage_question: str = "\nQuestion: "


DEFAULT_CLOZE = ClozeTemplate()
BARE_CLOZE = ClozeTemplate(bare_question=True)
DEFAULT_LETTER = LetterTemplate()
# The named cloze prompts a run can choose (``--cloze_prompt``): "question" is the default.
CLOZE_PROMPTS = {"question": DEFAULT_CLOZE, "bare": BARE_CLOZE}


def cloze_template(name: str) -> ClozeTemplate:
    """The cloze template called ``name`` in :data:`CLOZE_PROMPTS` (:class:`InvalidSettingError` otherwise)."""
    try:
        return CLOZE_PROMPTS[name]
    except KeyError:
        raise InvalidSettingError(f"unknown cloze prompt {name!r}; choose one of {', '.join(CLOZE_PROMPTS)}") from None


@dataclass(frozen=True)
class KeepEndParts(PromptParts):
    """Prompt parts whose ``body`` is shortened from its start, keeping the text nearest the tail
    (a WinoGrande sentence up to its blank)."""


@dataclass(frozen=True)
class ChatFormat:
    """An instruct model's chat template around a prompt: the prompt is the user's turn and the
    answer is scored where the assistant's turn starts.

    Build it with :meth:`from_tokenizer`; pass it as ``chat=`` to the formatting functions.
    With a chat template, letters and cloze continuations lose their leading space (the
    assistant's reply starts a fresh turn).
    """

    prefix: str
    suffix: str

    _MARKER = "<<swag-lora:user-turn>>"

    @classmethod
    def from_tokenizer(cls, tokenizer, system: str | None = None) -> ChatFormat:
        """Split the tokenizer's chat template (with the generation prompt) around the user turn."""
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("this tokenizer has no chat template; format prompts without chat=")
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": cls._MARKER})
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if text.count(cls._MARKER) != 1:
            raise ValueError("could not find the user's turn in the rendered chat template")
        prefix, suffix = text.split(cls._MARKER)
        return cls(prefix, suffix)

    def wrap(self, parts: PromptParts) -> PromptParts:
        """``parts`` as the user's turn, ending where the assistant's turn starts."""
        return type(parts)(self.prefix + parts.head, parts.body, parts.tail + self.suffix)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _as_question(text: str) -> str:
    text = text.strip()
    return text if text.endswith("?") else text + "?"


def _style(row: Row) -> str:
    return row.meta.get("style", "question") if row.meta else "question"


def _split_blank(row: Row) -> tuple[str, str]:
    sentence = row.question
    at = sentence.find("_")
    if at < 0:
        raise ValueError(f"row {row.id!r}: a fill-blank row needs a '_' in its sentence")
    return sentence[:at], sentence[at + 1 :]


def format_cloze(
    row: Row, *, template: ClozeTemplate = DEFAULT_CLOZE, chat: ChatFormat | None = None
) -> ClozePrompt:
    """The cloze form of a row: ``"Question: {q}\\nAnswer:"`` + ``" {choice}"`` for questions
    (``"{q}"`` + ``" {choice}"`` with a ``bare_question`` template), the passage before the
    question for BoolQ, and partial scoring for WinoGrande."""
    style = _style(row)
    prefix = "" if chat is not None else template.choice_prefix
    if style == "fill-blank":
        before, after = _split_blank(row)
        rest = after.strip()
        head = template.blank_head
        if chat is not None:
            head = chat.prefix + template.chat_blank_instruction + row.question + chat.suffix + head
        if rest:
            # Each option fills the blank; the rest of the sentence is scored after it.
            return ClozePrompt(
                contexts=tuple(KeepEndParts(head, before, option) for option in row.choices),
                continuations=tuple(" " + rest for _ in row.choices),
                context_index=tuple(range(len(row.choices))),
            )
        # The blank ends the sentence: score each option after the shared beginning.
        return ClozePrompt(
            contexts=(KeepEndParts(head, before.rstrip(), ""),),
            continuations=tuple(" " + option for option in row.choices),
            context_index=(0,) * len(row.choices),
        )
    if style == "passage":
        passage = str(row.meta.get("passage", ""))
        tail = template.passage_question + _as_question(row.question) + template.answer_cue
        context = PromptParts(template.passage_head, passage, tail)
    elif template.bare_question:
        context = PromptParts("", row.question, "")
    else:
        context = PromptParts(template.question_head, row.question, template.answer_cue)
    if chat is not None:
        context = chat.wrap(context)
    return ClozePrompt(
        contexts=(context,),
        continuations=tuple(prefix + c for c in row.choices),
        context_index=(0,) * len(row.choices),
    )


def format_letter(
    row: Row,
    add_period: bool | None = None,
    *,
    template: LetterTemplate = DEFAULT_LETTER,
    chat: ChatFormat | None = None,
) -> LetterPrompt:
    """The paper's letter prompt; choice text capitalised, optionally ending in ".".

    ``Select one of the choices that answers the following question: {q} Choices:
    A. {c1} B. {c2} ... Answer:``

    ``add_period=None`` follows the task (``row.meta["add_period"]``: OBQA and MMLU, as in the
    paper); ``True`` or ``False`` overrides it. BoolQ rows put the passage before the question.
    """
    if len(row.choices) > len(LETTERS):
        raise ValueError(f"row {row.id!r} has {len(row.choices)} choices; letter mode supports at most 26")
    if add_period is None:
        add_period = bool(row.meta.get("add_period", False)) if row.meta else False
    parts = []
    for letter, choice in zip(LETTERS[: len(row.choices)], row.choices, strict=True):
        text = choice.strip()
        if template.capitalise:
            text = _capitalise(text)
        if add_period and not text.endswith("."):
            text += "."
        parts.append(template.choice.format(letter=letter, text=text))
    choices = template.choices_intro + template.choice_sep.join(parts) + template.answer_cue
    if _style(row) == "passage":
        question = _as_question(row.question)
        if template.capitalise:
            question = _capitalise(question)
        passage = str(row.meta.get("passage", ""))
        prompt = PromptParts(
            template.passage_instruction, passage, template.passage_question + question + choices
        )
    else:
        prompt = PromptParts(template.instruction, row.question, choices)
    letter_prefix = template.letter_prefix
    if chat is not None:
        prompt, letter_prefix = chat.wrap(prompt), ""
    letters = tuple(letter_prefix + letter for letter in LETTERS[: len(row.choices)])
    return LetterPrompt(prompt=prompt, letters=letters)


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def encode_prompt(tokenizer, parts: PromptParts, max_length: int | None = None) -> list[int]:
    """Token ids of ``parts.text`` (no special tokens added), at most ``max_length`` long.

    The whole string is tokenised as one when it fits. Otherwise ``head``, ``body`` and
    ``tail`` are tokenised separately and tokens are dropped from the end of ``body`` only
    (from its start for :class:`KeepEndParts`); if ``head`` and ``tail`` alone exceed
    ``max_length`` a ``ValueError`` says so.
    """
    ids = _ids(tokenizer, parts.text)
    if max_length is None or len(ids) <= max_length:
        return ids
    head, body, tail = _ids(tokenizer, parts.head), _ids(tokenizer, parts.body), _ids(tokenizer, parts.tail)
    room = max_length - len(head) - len(tail)
    if room < 0:
        raise ValueError(
            f"max_length={max_length} is too short: the prompt's fixed parts (instructions, "
            f"choices, answer cue) alone take {len(head) + len(tail)} tokens"
        )
    kept = body[len(body) - room :] if isinstance(parts, KeepEndParts) else body[:room]
    return head + (kept if room else []) + tail


@dataclass(frozen=True)
class EncodedCloze:
    """Token ids of a cloze prompt: ``contexts[context_index[i]] + continuations[i]`` is choice
    ``i``'s sequence, and its score sums the log-probabilities of ``continuations[i]``."""

    contexts: tuple[tuple[int, ...], ...]
    continuations: tuple[tuple[int, ...], ...]
    context_index: tuple[int, ...]


def encode_cloze(tokenizer, prompt: ClozePrompt, max_length: int | None = None) -> EncodedCloze:
    """Tokenise a cloze prompt so that every context plus each of its continuations fits in
    ``max_length``: contexts are shortened in their body only, continuations never."""
    continuations = tuple(tuple(_ids(tokenizer, c)) for c in prompt.continuations)
    contexts = []
    for j, context in enumerate(prompt.contexts):
        limit = None
        if max_length is not None:
            longest = max(
                (len(continuations[i]) for i, k in enumerate(prompt.context_index) if k == j), default=0
            )
            limit = max_length - longest
            if limit <= 0:
                raise ValueError(
                    f"max_length={max_length} is too short: a choice alone takes {longest} tokens"
                )
        contexts.append(tuple(encode_prompt(tokenizer, context, limit)))
    return EncodedCloze(tuple(contexts), continuations, tuple(prompt.context_index))
