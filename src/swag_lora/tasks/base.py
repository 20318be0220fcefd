"""Shared types of the task layer: a multiple-choice row and a prompt split into parts.

Every task, whatever its source, yields :class:`Row` objects. Prompt formatting turns a
row into :class:`ClozePrompt` or :class:`LetterPrompt`; the model layer tokenises them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Row:
    """One multiple-choice question.

    ``label`` indexes ``choices``; ``id`` is stable across loads of the same source.
    ``meta`` holds task-specific extras (e.g. a WinoGrande sentence, a BoolQ passage,
    an MMLU subject) that prompt formatting may use.
    """

    id: str
    question: str
    choices: tuple[str, ...]
    label: int
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class PromptParts:
    """A prompt as ``head + body + tail``.

    The joined string is what the model reads. When it is too long for ``max_length``,
    only ``body`` (the question or passage) is shortened; ``head`` (instructions) and
    ``tail`` (choices listed in letter mode, the answer cue) are always kept whole.
    """

    head: str
    body: str
    tail: str

    @property
    def text(self) -> str:
        return self.head + self.body + self.tail


@dataclass(frozen=True)
class ClozePrompt:
    """Cloze scoring: choice ``i`` is scored as the log-probability of
    ``continuations[i]`` after ``contexts[context_index[i]]``.

    Most tasks have one context shared by every choice (``context_index`` all zero); a
    WinoGrande question has one context per option (the option fills the blank) and the
    same continuation (the rest of the sentence) for both.
    """

    contexts: tuple[PromptParts, ...]
    continuations: tuple[str, ...]
    context_index: tuple[int, ...]


@dataclass(frozen=True)
class LetterPrompt:
    """Letter scoring: one prompt; the answer is read from the next-token logits of the
    answer-letter tokens ``letters`` (" A", " B", ...), one per choice."""

    prompt: PromptParts
    letters: tuple[str, ...]
