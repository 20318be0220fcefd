"""Text tasks from your own files, and ``load_text_task`` for every text task.

A text file holds one record per prompt: JSON lines (or a JSON array, CSV, TSV, parquet) with

``{"prompt": "Question: ...\\nAnswer:", "answers": ["...", "..."], "id": "q1"}``

``prompt`` is a non-empty string; ``answers`` a list of non-empty strings (required for
training and evaluation, optional for prompts you only want answered); ``id`` optional (default:
the split and the record's position) and unique. A bad record raises
:class:`~swag_lora.tasks.errors.DataFormatError` naming the file, the line and the field, as the
multiple-choice loaders do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .base import BadRowCollector
from .custom import CUSTOM, file_items, parse_data_files
from .errors import DataFormatError, DataNotFoundError, TaskDefinitionError, Where
from .loading import load_task
from .registry import CARVE_FRACTION, CARVE_SEED, SPLITS
from .splits import carve, draw_subset
from .text import TextRow, TextSplit, text_rows

__all__ = ["load_text_task", "read_text_file", "text_records", "text_row_from_record"]


def text_row_from_record(record: object, where: Where, fallback_id: str, require_answers: bool = True) -> TextRow:
    """A :class:`TextRow` from one ``{"prompt", "answers", "id"}`` record."""
    if not isinstance(record, Mapping):
        raise where.fail(None, f"a record must be a JSON object with 'prompt' and 'answers', got {type(record).__name__}")
    prompt = record.get("prompt")
    if prompt is None:
        raise where.fail("prompt", "missing")
    if not isinstance(prompt, str) or not prompt.strip():
        raise where.fail("prompt", f"must be a non-empty string, got {prompt!r}"[:200])
    answers = record.get("answers")
    if answers is None:
        if require_answers:
            raise where.fail("answers", "missing (a list of reference answers, e.g. [\"Paris\"])")
        answers = []
    if not isinstance(answers, (list, tuple)):
        raise where.fail("answers", f"must be a list of strings, got {type(answers).__name__}")
    for i, answer in enumerate(answers):
        if not isinstance(answer, str) or not answer.strip():
            raise where.fail(f"answers[{i}]", f"must be a non-empty string, got {answer!r}"[:200])
    if require_answers and not answers:
        raise where.fail("answers", "is empty: give at least one reference answer")
    row_id = record.get("id")
    if row_id is None or row_id == "":
        row_id = fallback_id
    elif not isinstance(row_id, (str, int)) or isinstance(row_id, bool):
        raise where.fail("id", f"must be a string or an integer, got {type(row_id).__name__}")
    return TextRow(str(row_id), prompt, tuple(a.strip() for a in answers))


def text_records(items: Iterable[tuple[Where, object]], prefix: str = "input", require_answers: bool = True,
                 collector: BadRowCollector | None = None) -> list[TextRow]:
    """Rows from ``(where, record)`` pairs (a record may be a :class:`DataFormatError` a reader
    met); ids must be unique. Bad records raise unless ``collector`` skips them."""
    collector = collector or BadRowCollector(skip=False)
    rows: list[TextRow] = []
    seen: dict[str, Where] = {}
    for index, (where, record) in enumerate(items):
        try:
            if isinstance(record, DataFormatError):
                raise record
            row = text_row_from_record(record, where, f"{prefix}-{index}", require_answers)
            if row.id in seen:
                raise where.fail("id", f"duplicate id {row.id!r} (first at {seen[row.id].describe()})")
        except DataFormatError as err:
            collector.bad(err)
            continue
        seen[row.id] = where
        rows.append(row)
    return rows


def read_text_file(paths: str | os.PathLike | Sequence[str], prefix: str = "input", require_answers: bool = True,
                   collector: BadRowCollector | None = None) -> list[TextRow]:
    """Rows of one or more text files (by extension: .jsonl, .json, .csv, .tsv, .parquet)."""
    names = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    for name in names:
        if not Path(name).is_file():
            raise DataNotFoundError(f"text data file not found: {name}")
    rows = text_records(((w, r) for w, r, _ in file_items(names)), prefix, require_answers, collector)
    if not rows and not (collector and collector.skipped):
        raise DataFormatError("no records", path=", ".join(names))
    return rows


def _custom_split(data_files, split: str, collector: BadRowCollector) -> tuple[list[TextRow], str, str]:
    files = parse_data_files(data_files, base_dir=Path.cwd())
    if split in files and not (split == "train" and "validation" not in files):
        return read_text_file(files[split], split, True, collector), f"local:{files[split][0]}", \
            "local file " + ", ".join(Path(f).name for f in files[split])
    if split == "test" or "train" not in files:
        raise DataNotFoundError(f"text task: no {split} data (data_files gives {', '.join(files) or 'nothing'}); "
                                f"give data_files {split}=FILE")
    rows = read_text_file(files["train"], "train", True, collector)
    rest, carved = carve(rows, CARVE_FRACTION, CARVE_SEED)
    name = Path(files["train"][0]).name
    pct = f"{CARVE_FRACTION * 100:g}%"
    if split == "validation":
        return carved, f"local:{files['train'][0]}", f"carved {pct} ({len(carved)} of {len(rows)}) from {name} " \
                                                     f"with seed {CARVE_SEED}"
    return rest, f"local:{files['train'][0]}", f"{name} less the {pct} validation carve ({len(carved)} of " \
                                                f"{len(rows)}, seed {CARVE_SEED})"


def load_text_task(
    task: str,
    split: str,
    *,
    form: str = "choices",
    data_dir: str | os.PathLike | None = None,
    source: str = "auto",
    data_files=None,
    limit: int | None = None,
    subset_seed: int = 0,
    skip_bad_rows: bool = False,
) -> TextSplit:
    """One split of a text task: a multiple-choice task's generative form in prompt ``form``
    (the same questions :func:`~swag_lora.tasks.loading.load_task` gives for ``limit`` and
    ``subset_seed``), or, for ``task="custom"``, your text files (``data_files``: ``SPLIT=PATH``
    items or a ``{split: path}`` mapping; a missing validation split is carved from train)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
    if str(task).strip().lower() != CUSTOM:
        if data_files:
            raise TaskDefinitionError(f"data files define a custom text task; task {task!r} is built in: use "
                                      "--task custom with them")
        return text_rows(load_task(task, split, data_dir, source=source, limit=limit, subset_seed=subset_seed,
                                   skip_bad_rows=skip_bad_rows), form)
    if not data_files:
        raise TaskDefinitionError("task 'custom' with the generation objective needs --data_files train=FILE.jsonl "
                                  "[validation=FILE] [test=FILE] of {\"prompt\": ..., \"answers\": [...]} records")
    collector = BadRowCollector(skip_bad_rows)
    rows, where, rule = _custom_split(data_files, split, collector)
    available = len(rows)
    if limit is not None:
        rows = draw_subset(rows, limit, subset_seed)
    return TextSplit(rows, form=None, task=CUSTOM, split=split, source=where, rule=rule, available=available,
                     limit=limit, subset_seed=subset_seed, skipped=collector.skipped, problems=collector.problems,
                     files={k: list(v) for k, v in parse_data_files(data_files, Path.cwd()).items()})
