"""Shared types of the task layer: a multiple-choice row, a loaded split of rows, and a prompt
split into parts.

Every task, whatever its source, yields :class:`Row` objects, gathered in a :class:`TaskSplit`
that records where they came from. Prompt formatting turns a row into :class:`ClozePrompt` or
:class:`LetterPrompt`; the model layer tokenises them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from .errors import DataFormatError

__all__ = ["BadRowCollector", "ClozePrompt", "LetterPrompt", "PromptParts", "Row", "TaskSplit"]

MAX_PROBLEMS = 20  # bad-row messages kept when bad rows are skipped


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


class TaskSplit(Sequence[Row]):
    """The rows of one split of a task, with where they came from.

    A read-only sequence of :class:`Row`. ``source`` is ``"local:<path>"`` or
    ``"hub:<name>/<config>/<split>"``; ``rule`` says in words which file or hub split served
    the split and how (whole, carved, or less a carve); ``available`` is the split's size before
    a ``limit`` subset; ``skipped`` counts bad rows left out on request, and ``problems`` holds
    the first messages about them. ``definition`` is a custom task's definition
    (:meth:`~swag_lora.tasks.custom.CustomTask.to_dict`), ``None`` for a built-in task.
    """

    def __init__(
        self,
        rows: Iterable[Row],
        *,
        task: str,
        split: str,
        source: str,
        rule: str,
        available: int,
        limit: int | None = None,
        subset_seed: int = 0,
        skipped: int = 0,
        problems: Sequence[str] = (),
        definition: dict | None = None,
    ) -> None:
        self._rows = tuple(rows)
        self.definition = definition
        self.task = task
        self.split = split
        self.source = source
        self.rule = rule
        self.available = available
        self.limit = limit
        self.subset_seed = subset_seed
        self.skipped = skipped
        self.problems = tuple(problems)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index):
        return self._rows[index]

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)

    def __repr__(self) -> str:
        return (
            f"TaskSplit(task={self.task!r}, split={self.split!r}, size={self.size}, source={self.source!r})"
        )

    @property
    def rows(self) -> tuple[Row, ...]:
        return self._rows

    @property
    def size(self) -> int:
        return len(self._rows)

    @property
    def max_choices(self) -> int:
        """The largest number of choices of any row (the answer head's width)."""
        return max((len(row.choices) for row in self._rows), default=0)

    def to_dict(self) -> dict:
        """Provenance for a run's config: task, split, source, rule, sizes (and a custom task's
        definition); no rows."""
        out = {
            "task": self.task,
            "split": self.split,
            "source": self.source,
            "rule": self.rule,
            "size": self.size,
            "available": self.available,
            "limit": self.limit,
            "subset_seed": self.subset_seed,
            "skipped": self.skipped,
            "max_choices": self.max_choices,
        }
        if self.definition is not None:
            out["definition"] = self.definition
        return out


@dataclass
class BadRowCollector:
    """Raises a bad row's error, or counts it when bad rows are to be skipped."""

    skip: bool
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def bad(self, error: DataFormatError) -> None:
        if not self.skip:
            raise error
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(str(error))
