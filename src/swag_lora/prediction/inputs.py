"""Prediction inputs: records from a file or standard input, as rows prompted like a run's task.

A run trained on a custom task reads inputs through that task's column mapping (its question,
choices and optional id columns; the answer column may be absent), from any format the task
reads (CSV, TSV, JSON lines, JSON, parquet). Any other run reads JSON lines
``{"question": ..., "choices": [...], "id": ... (optional), "answer": ... (optional)}``
(BoolQ runs also need ``"passage"``; WinoGrande runs a sentence with a blank ``_`` as the
question), prompted in the style of the task it was trained on. Standard input is JSON lines.

Rows whose input carries no answer have label −1. A bad record raises
:class:`~swag_lora.tasks.DataFormatError` naming the file (``<stdin>``), the line and the field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import replace

from ..runs.config import RunConfig
from ..tasks import ColumnMapping, CustomTask, DataFormatError, Row, get_task
from ..tasks.columns import cell_text
from ..tasks.custom import STDIN, input_records
from ..tasks.errors import Where

__all__ = ["STDIN", "input_format", "read_inputs", "rows_from_records"]

_STYLES = {"winogrande": "fill-blank", "boolq": "passage"}


def input_format(run_config: RunConfig) -> tuple[ColumnMapping, dict]:
    """The column mapping inputs are read with, and the prompt ``meta`` their rows get."""
    definition = run_config.task_definition
    if definition:
        task = CustomTask.from_dict(definition)
        return task.mapping, {"task": task.name, "style": "question", "add_period": task.add_period}
    spec = get_task(run_config.training_task)
    return ColumnMapping(), {"task": spec.name, "style": _STYLES.get(spec.parser, "question"),
                             "add_period": spec.add_period}


def rows_from_records(items: Iterable, run_config: RunConfig, source: str = "<inputs>") -> list[Row]:
    """Rows from ``(where, record)`` pairs or plain records (dicts); :class:`Row` objects pass through."""
    mapping, meta = input_format(run_config)
    rows: list[Row] = []
    checked = False
    for index, item in enumerate(items):
        if isinstance(item, Row):
            rows.append(item)
            continue
        where, record = item if isinstance(item, tuple) else (Where(source, record=index), item)
        if isinstance(record, DataFormatError):
            raise record
        if not checked and isinstance(record, Mapping):
            mapping.check_columns(list(record), f"inputs {where.path}", with_answer=False)
            checked = True
        rows.append(_row(mapping, meta, record, where, index))
    return rows


def _row(mapping: ColumnMapping, meta: dict, record, where: Where, index: int) -> Row:
    fallback = f"input-{index}"
    if mapping.id_column is None and isinstance(record, Mapping) and record.get("id") not in (None, ""):
        fallback = cell_text(record["id"], where, "id")
    row = mapping.row(record, where, task=meta["task"], fallback_id=fallback, require_answer=False)
    extra = {"style": meta["style"], "add_period": meta["add_period"]}
    if meta["style"] == "passage":
        if "passage" not in record:
            raise where.fail("passage", "missing (this run's task reads a passage with each question)")
        extra["passage"] = cell_text(record["passage"], where, "passage")
    if meta["style"] == "fill-blank" and "_" not in row.question:
        raise where.fail(mapping.question_column or "question", "has no blank '_' to fill (this run's task fills one)")
    return replace(row, meta={**row.meta, **extra})


def read_inputs(source: str | os.PathLike, run_config: RunConfig, stdin=None) -> list[Row]:
    """Rows from a file (by its extension) or, for ``"-"``, JSON lines on standard input."""
    items, name = input_records(source, stdin)
    return rows_from_records(items, run_config, name)
