"""Column mappings of custom tasks: where a record keeps its question, choices and answer, and
turning one record into a :class:`~swag_lora.tasks.base.Row` with errors that name the field.

The options are described in :mod:`swag_lora.tasks.custom`.
"""

from __future__ import annotations

import json
import string
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from .base import Row
from .errors import TaskDefinitionError, Where
from .parsing import kind_of

__all__ = ["ANSWER_FORMATS", "LETTERS", "ColumnMapping", "cell_text"]

ANSWER_FORMATS = ("auto", "index", "index1", "letter", "text")
LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class ColumnMapping:
    """Where a record keeps its question, choices, answer and id (see the module docstring).

    Exactly one of ``choices_columns``, ``choices_column`` and ``label_words`` gives the
    choices; a mapping without any reads a ``choices`` column holding a list.
    """

    question_column: str | None = None
    question_template: str | None = None
    choices_columns: tuple[str, ...] = ()
    choices_column: str | None = None
    label_words: tuple[str, ...] = ()
    answer_column: str = "answer"
    answer_format: str = "auto"
    id_column: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices_columns", tuple(self.choices_columns or ()))
        object.__setattr__(self, "label_words", tuple(self.label_words or ()))
        for option in ("question_column", "choices_column", "answer_column", "id_column"):
            value = getattr(self, option)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise TaskDefinitionError(f"{option} must name a column, got {value!r}")
        for option in ("choices_columns", "label_words"):
            values = getattr(self, option)
            if any(not isinstance(v, str) or not v.strip() for v in values):
                raise TaskDefinitionError(f"{option} must be non-empty texts, got {list(values)!r}")
        if self.question_column is not None and self.question_template is not None:
            raise TaskDefinitionError("give question_column or question_template, not both")
        if self.question_template is not None:
            try:
                names = self.template_columns()
            except ValueError as err:
                raise TaskDefinitionError(f"question_template {self.question_template!r}: {err}") from None
            if not names:
                raise TaskDefinitionError(
                    f"question_template {self.question_template!r} names no column; use {{column}} fields"
                )
        given = [o for o in ("choices_columns", "choices_column", "label_words") if getattr(self, o)]
        if len(given) > 1:
            raise TaskDefinitionError(f"give one of choices_columns, choices_column and label_words, not {' and '.join(given)}")
        if self.choices_columns and len(self.choices_columns) < 2:
            raise TaskDefinitionError(f"choices_columns needs at least 2 columns, got {list(self.choices_columns)}")
        if self.label_words:
            if len(self.label_words) < 2:
                raise TaskDefinitionError(f"label_words needs at least 2 words, got {list(self.label_words)}")
            folded = [w.strip().lower() for w in self.label_words]
            if len(set(folded)) != len(folded):
                raise TaskDefinitionError(f"label_words must differ (ignoring case), got {list(self.label_words)}")
        if self.answer_format not in ANSWER_FORMATS:
            raise TaskDefinitionError(
                f"answer_format must be one of {', '.join(ANSWER_FORMATS)}, got {self.answer_format!r}"
            )
        seen: dict[str, str] = {}
        for option, column in self.columns().items():
            if column in seen:
                raise TaskDefinitionError(f"column {column!r} is named twice: by {seen[column]} and by {option}")
            seen[column] = option

    def template_columns(self) -> list[str]:
        """The columns ``question_template`` reads."""
        names = []
        for _, name, _, _ in string.Formatter().parse(self.question_template or ""):
            if name is not None:
                if not name or name.isdigit():
                    raise ValueError("template fields must name columns, as {text}")
                if name not in names:
                    names.append(name)
        return names

    def columns(self, with_answer: bool = True) -> dict[str, str]:
        """Each option that names a column, and that column (``choices_columns[1]``: ``"B"``)."""
        out: dict[str, str] = {}
        if self.question_template is not None:
            for name in self.template_columns():
                out[f"question_template field {{{name}}}"] = name
        else:
            out["question_column"] = self.question_column or "question"
        for i, column in enumerate(self.choices_columns):
            out[f"choices_columns[{i}]"] = column
        if not self.choices_columns and not self.label_words:
            out["choices_column"] = self.choices_column or "choices"
        if with_answer:
            out["answer_column"] = self.answer_column
        if self.id_column is not None:
            out["id_column"] = self.id_column
        return out

    def check_columns(self, available: Collection[str], source: str, with_answer: bool = True) -> None:
        """Raise :class:`TaskDefinitionError` naming every mapped column ``available`` lacks."""
        missing = [(o, c) for o, c in self.columns(with_answer).items() if c not in available]
        if missing:
            named = "; ".join(f"{option} {column!r}" for option, column in missing)
            raise TaskDefinitionError(
                f"{source}: the column mapping names columns the data does not have: {named}; "
                f"its columns are: {', '.join(map(str, available)) or '(none)'}"
            )

    def row(
        self,
        record: object,
        where: Where,
        *,
        task: str,
        fallback_id: str,
        add_period: bool = False,
        require_answer: bool = True,
    ) -> Row:
        """One record as a :class:`Row`; a bad value raises :class:`DataFormatError` naming the
        field. Without ``require_answer`` a record may lack its answer: the row's label is then −1."""
        if not isinstance(record, Mapping):
            raise where.fail("<record>", f"expected an object with named columns, found {kind_of(record)}")
        question = self._question(record, where)
        texts, labels = self._choices(record, where)
        label = -1
        if self.answer_column in record or require_answer:
            value = _value(record, self.answer_column, where)
            if not require_answer and (value is None or (isinstance(value, str) and not value.strip())):
                label = -1
            else:
                label = self._answer(value, texts, labels, where)
        if self.id_column is not None:
            row_id = cell_text(_value(record, self.id_column, where), where, self.id_column)
        else:
            row_id = fallback_id
        meta = {"task": task, "style": "question", "add_period": bool(add_period), "choice_labels": tuple(labels)}
        return Row(id=row_id, question=question, choices=tuple(texts), label=label, meta=meta)

    # -------------------------------------------------------------------- internals
    def _question(self, record: Mapping, where: Where) -> str:
        if self.question_template is None:
            column = self.question_column or "question"
            return cell_text(_value(record, column, where), where, column)
        values = {}
        for name in self.template_columns():
            values[name] = cell_text(_value(record, name, where), where, name)
        try:
            text = self.question_template.format(**values)
        except (ValueError, IndexError, KeyError) as err:
            raise where.fail("question_template", f"cannot fill the template: {err}") from None
        if not text.strip():
            raise where.fail("question_template", "empty text")
        return text.strip()

    def _choices(self, record: Mapping, where: Where) -> tuple[list[str], list[str]]:
        if self.label_words:
            texts = [w.strip() for w in self.label_words]
            return texts, list(LETTERS[: len(texts)])
        if self.choices_columns:
            texts = [cell_text(_value(record, c, where), where, c) for c in self.choices_columns]
            labels = list(LETTERS[: len(texts)])
        else:
            column = self.choices_column or "choices"
            texts, labels = _choice_list(_value(record, column, where), where, column)
        path = self.choices_column or "choices" if not self.choices_columns else "choices_columns"
        if len(texts) < 2:
            raise where.fail(path, f"needs at least 2 choices, found {len(texts)}")
        if len(texts) > len(LETTERS):
            raise where.fail(path, f"has {len(texts)} choices; at most {len(LETTERS)} are supported")
        if len(set(labels)) != len(labels):
            raise where.fail(path, f"choice labels {labels} are not all different")
        return texts, labels

    def _answer(self, value: object, texts: Sequence[str], labels: Sequence[str], where: Where) -> int:
        path, fmt, n = self.answer_column, self.answer_format, len(texts)
        if isinstance(value, bool):
            raise where.fail(path, f"expected an index, a letter or the answer's text, found a boolean ({value})")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int):
            if fmt in ("letter", "text"):
                raise where.fail(path, f"answer_format is {fmt!r} but the answer is the number {value}")
            index = value - 1 if fmt == "index1" else value
            low, high = (1, n) if fmt == "index1" else (0, n - 1)
            if not 0 <= index < n:
                raise where.fail(path, f"index {value} is outside {low}..{high} ({n} choices)")
            return index
        if not isinstance(value, str):
            raise where.fail(path, f"expected an index, a letter or the answer's text, found {kind_of(value)}")
        answer = value.strip()
        if not answer:
            raise where.fail(path, "empty text")
        readings: dict[str, int] = {}
        if fmt in ("auto", "text"):
            exact = [i for i, t in enumerate(texts) if t == answer]
            folded = [i for i, t in enumerate(texts) if t.lower() == answer.lower()]
            match = exact or (folded if len(folded) == 1 else [])
            if len(match) == 1:
                readings["the text of choice"] = match[0]
        if fmt in ("auto", "letter"):
            if answer in labels:
                readings["the label of choice"] = list(labels).index(answer)
            elif fmt == "letter" and answer.upper() in labels:
                readings["the label of choice"] = list(labels).index(answer.upper())
        if fmt in ("auto", "index", "index1") and answer.isdigit():
            number = int(answer)
            index = number - 1 if fmt == "index1" else number
            if 0 <= index < n:
                readings["index"] = index
            elif fmt != "auto":
                low, high = (1, n) if fmt == "index1" else (0, n - 1)
                raise where.fail(path, f"index {number} is outside {low}..{high} ({n} choices)")
        if len(set(readings.values())) > 1:
            what = ", ".join(f"{k} {v}" for k, v in readings.items())
            raise where.fail(
                path, f"answer {answer!r} is ambiguous ({what}); set answer_format to text, letter or index"
            )
        if readings:
            return next(iter(readings.values()))
        tried = {
            "auto": f"a choice's text, a label ({', '.join(labels)}) or an index 0..{n - 1}",
            "text": "a choice's text",
            "letter": f"a label ({', '.join(labels)})",
            "index": f"an index 0..{n - 1}",
            "index1": f"an index 1..{n}",
        }[fmt]
        shown = ", ".join(repr(t) for t in texts[:6]) + (", ..." if n > 6 else "")
        raise where.fail(path, f"answer {answer!r} is not {tried}; the choices are {shown}")


def _value(record: Mapping, column: str, where: Where) -> object:
    if column not in record:
        raise where.fail(column, "missing")
    value = record[column]
    if isinstance(value, float) and value != value:  # NaN: a missing value in a parquet or pandas file
        return None
    return value


def cell_text(value: object, where: Where, path: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise where.fail(path, f"expected text, found {kind_of(value)}")
    if not value.strip():
        raise where.fail(path, "empty text")
    return value.strip()


def _choice_list(value: object, where: Where, path: str) -> tuple[list[str], list[str]]:
    if isinstance(value, str) and value.strip().startswith(("[", "{")):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise where.fail(path, f"a cell holding choices must be a JSON list: {err.msg}") from None
    if isinstance(value, Mapping):
        if "text" not in value:
            raise where.fail(path, "an object of choices needs a 'text' list (and optionally 'label')")
        raw = value["text"]
        if not isinstance(raw, (list, tuple)):
            raise where.fail(f"{path}.text", f"expected a list, found {kind_of(raw)}")
        texts = [cell_text(t, where, f"{path}.text[{i}]") for i, t in enumerate(raw)]
        if "label" in value and value["label"] is not None:
            raw_labels = value["label"]
            if not isinstance(raw_labels, (list, tuple)):
                raise where.fail(f"{path}.label", f"expected a list, found {kind_of(raw_labels)}")
            labels = [cell_text(t, where, f"{path}.label[{i}]") for i, t in enumerate(raw_labels)]
            if len(labels) != len(texts):
                raise where.fail(path, f"{len(texts)} texts but {len(labels)} labels")
            return texts, labels
        return texts, list(LETTERS[: len(texts)])
    if not isinstance(value, (list, tuple)):
        raise where.fail(path, f"expected a list of choices, found {kind_of(value)}")
    texts = [cell_text(t, where, f"{path}[{i}]") for i, t in enumerate(value)]
    return texts, list(LETTERS[: len(texts)])
