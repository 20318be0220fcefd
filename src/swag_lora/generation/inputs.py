"""Prompts to answer: records from a file or standard input, as :class:`~swag_lora.tasks.TextRow`.

A record is ``{"prompt": ..., "answers": [...] (optional), "id": ... (optional)}`` (see
:mod:`swag_lora.tasks.text_files`), or ``{"question": ..., "choices": [...] (optional), ...}``,
which is prompted as the run's task was (``Question: ...``, its lettered choices unless the run
was trained on the open form, ``Answer:``). Files are read by extension (.jsonl, .json, .csv,
.tsv, .parquet); standard input (``-``) is JSON lines. Bad records raise
:class:`~swag_lora.tasks.DataFormatError` naming the file (``<stdin>``), line and field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from ..errors import InvalidSettingError
from ..tasks import PROMPT_FORMS, TextRow, text_prompt
from ..tasks.custom import STDIN, input_records
from ..tasks.errors import DataFormatError, Where
from ..tasks.text_files import text_records

__all__ = ["STDIN", "read_prompts", "rows_from_records"]



def _prompted(record: object, where: Where, form: str) -> object:
    """A ``question`` record as a ``prompt`` record (others unchanged)."""
    if not isinstance(record, Mapping) or "prompt" in record or "question" not in record:
        return record
    question, choices = record["question"], record.get("choices") or []
    if not isinstance(question, str) or not question.strip():
        raise where.fail("question", f"must be a non-empty string, got {question!r}"[:200])
    if not isinstance(choices, (list, tuple)) or not all(isinstance(c, str) and c.strip() for c in choices):
        raise where.fail("choices", "must be a list of non-empty strings")
    rest = {k: v for k, v in record.items() if k not in ("question", "choices")}
    return {**rest, "prompt": text_prompt(question, choices, form)}


def rows_from_records(items: Iterable, form: str = "choices", source: str = "<inputs>") -> list[TextRow]:
    """Rows from ``(where, record)`` pairs or plain records (dicts); :class:`TextRow` objects pass
    through. ``form`` prompts ``question`` records (``choices`` or ``open``)."""
    if form not in PROMPT_FORMS:
        raise InvalidSettingError(f"unknown prompt form {form!r}; choose from {', '.join(PROMPT_FORMS)}")
    rows: list[TextRow | None] = []
    pairs: list[tuple[Where, object]] = []
    for index, item in enumerate(items):
        if isinstance(item, TextRow):
            rows.append(item)
            continue
        where, record = item if isinstance(item, tuple) else (Where(source, record=index), item)
        if not isinstance(record, DataFormatError):
            record = _prompted(record, where, form)
        pairs.append((where, record))
        rows.append(None)
    parsed = iter(text_records(pairs, prefix="input", require_answers=False))
    return [row if row is not None else next(parsed) for row in rows]


def read_prompts(source: str | os.PathLike, form: str = "choices", stdin=None) -> list[TextRow]:
    """Rows from a file (by its extension) or, for ``"-"``, JSON lines on standard input."""
    items, name = input_records(source, stdin)
    return rows_from_records(items, form, name)
