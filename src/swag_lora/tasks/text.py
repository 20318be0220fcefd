"""Text tasks: a prompt and the reference answers a model should write.

A :class:`TextRow` is one prompt with its references; a :class:`TextSplit` the rows of one
split with where they came from. The multiple-choice tasks have a generative form
(:func:`text_rows`): the question with its lettered choices in the prompt, the answer the text
of the right choice (``form="choices"``), or the question alone (``form="open"``, much harder:
nothing tells the model which words to use). Prompts end with ``"Answer:"``; the answer follows
after one space.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .base import Row, TaskSplit
from .errors import TaskDefinitionError
from .prompts import LETTERS

__all__ = ["PROMPT_FORMS", "TextRow", "TextSplit", "text_prompt", "text_row", "text_rows"]

PROMPT_FORMS = ("choices", "open")
QUESTION_HEAD = "Question: "
ANSWER_CUE = "\nAnswer:"


@dataclass(frozen=True)
class TextRow:
    """One prompt and its reference answers (empty when unknown); ``answers[0]`` is the one a
    model is trained to write."""

    id: str
    prompt: str
    answers: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict, compare=False, hash=False)


class TextSplit(TaskSplit):
    """The rows of one split of a text task (a :class:`~swag_lora.tasks.base.TaskSplit` of
    :class:`TextRow`), with the prompt form they were made with (``None`` for prompts read from
    files; then ``files`` names them)."""

    def __init__(self, rows: Iterable[TextRow], *, form: str | None = None, files: dict | None = None,
                 **provenance) -> None:
        super().__init__(rows, **provenance)
        self.form = form
        self.files = files

    @property
    def max_choices(self) -> int:
        return 0

    def to_dict(self) -> dict:
        out = {**super().to_dict(), "form": self.form}
        if self.files is not None:
            out["files"] = self.files
        return out


def _check_form(form: str) -> None:
    if form not in PROMPT_FORMS:
        raise TaskDefinitionError(f"unknown prompt form {form!r}; choose from {', '.join(PROMPT_FORMS)}")


def text_prompt(question: str, choices: Sequence[str] = (), form: str = "choices", passage: str | None = None) -> str:
    """The prompt of a question: ``"Question: {q}\\nA. {c1}\\nB. {c2}...\\nAnswer:"`` (``form="choices"``)
    or ``"Question: {q}\\nAnswer:"`` (``"open"``, or no choices); a passage goes first."""
    _check_form(form)
    text = (passage.strip() + "\n" if passage else "") + QUESTION_HEAD + question.strip()
    if form == "choices" and choices:
        text += "".join(f"\n{letter}. {choice.strip()}" for letter, choice in zip(LETTERS, choices, strict=False))
    return text + ANSWER_CUE


def text_row(row: Row, form: str = "choices") -> TextRow:
    """The generative form of a multiple-choice row; its reference is the right choice's text.
    Fill-in-the-blank rows (WinoGrande) have no such form."""
    style = row.meta.get("style", "question") if row.meta else "question"
    if style == "fill-blank":
        raise TaskDefinitionError(f"row {row.id!r}: fill-in-the-blank tasks have no generative form")
    if len(row.choices) > len(LETTERS):
        raise TaskDefinitionError(f"row {row.id!r} has {len(row.choices)} choices; at most {len(LETTERS)} are lettered")
    passage = str(row.meta.get("passage")) if style == "passage" else None
    prompt = text_prompt(row.question, row.choices, form, passage)
    return TextRow(row.id, prompt, (row.choices[row.label].strip(),), {"task": row.meta.get("task"), "form": form})


def text_rows(split: TaskSplit, form: str = "choices") -> TextSplit:
    """Every row of a multiple-choice split in its generative form, with the split's provenance."""
    _check_form(form)
    rows = [text_row(row, form) for row in split]
    return TextSplit(rows, form=form, task=split.task, split=split.split, source=split.source,
                     rule=f"{split.rule}; generative form '{form}'", available=split.available, limit=split.limit,
                     subset_seed=split.subset_seed, skipped=split.skipped, problems=split.problems,
                     definition=split.definition)
