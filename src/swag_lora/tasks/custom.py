"""Custom tasks: your own multiple-choice or classification data as a task like the built-in ones.

A custom task is data files (CSV, TSV, JSON lines, JSON arrays, parquet; or splits of a hub
dataset) plus a *column mapping* that says where a record keeps its question, its choices and
its answer:

- the question: ``question_column`` (default ``question``), or ``question_template``, a
  ``str.format`` template over the record's columns (``"Review: {text}\\nSentiment?"``);
- the choices, one of: ``choices_columns`` (one column per choice, e.g. ``A B C D``),
  ``choices_column`` (one column holding a list, a JSON list in a CSV cell, or a
  ``{"text": [...], "label": [...]}`` object as on the hub), or ``label_words`` (a fixed label
  set, the same choices for every record, e.g. ``negative positive``);
- the answer: ``answer_column`` (default ``answer``) holding a 0-based index, a letter, the
  answer's text, or (with ``label_words``) the label word; ``answer_format`` says which
  (``auto``, ``index``, ``index1`` for 1-based, ``letter``, ``text``). ``auto`` accepts any of
  them and refuses a value that reads two ways (choices ``"B"``, ``"A"`` and answer ``"A"``);
- ``id_column`` (optional; default: the split and the record's position, ``train-17``).

A task is defined by a YAML (or JSON) task file, ``load_task("my_task.yaml", "train")``, or by
:class:`CustomTask` in Python; on the command line by ``--task FILE.yaml`` or ``--task custom``
with ``--data_files train=a.csv test=b.csv`` and the mapping flags. Relative paths are read
from the task file's folder (the current folder for flags). Splits not given are carved from
train as the built-in tasks do (10% with the fixed seed 0; test first, then validation), and
each split records its rule. A run records the resolved definition (``to_dict()``, absolute
paths) so evaluation and prediction can re-create the task from the run directory.

Errors: a mapping that cannot work (no choices given, a column named twice, an unknown option)
raises :class:`TaskDefinitionError` at once; a mapped column that a file does not have raises
it naming the option, the file and the columns the file has; a bad record raises
:class:`DataFormatError` naming the file, line (or record) and field, like the built-in tasks.
"""

from __future__ import annotations

import json
import os
import re
import string
import warnings
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from .base import Row
from .errors import DataFormatError, DataNotFoundError, Where
from .parsing import _kind
from .readers import read_csv_records, read_json, read_jsonl, read_parquet
from .registry import CARVE_FRACTION, CARVE_SEED, SPLITS
from .splits import carve, draw_subset

CUSTOM = "custom"
ANSWER_FORMATS = ("auto", "index", "index1", "letter", "text")
TASK_FILE_SUFFIXES = (".yaml", ".yml", ".json")
DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
_SPLIT_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation", "eval": "validation"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
LETTERS = string.ascii_uppercase


class TaskDefinitionError(ValueError):
    """A custom task definition that cannot work: the message names the option and the reason."""


# ----------------------------------------------------------------------------------- mapping
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
            raise where.fail("<record>", f"expected an object with named columns, found {_kind(record)}")
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
            row_id = _text(_value(record, self.id_column, where), where, self.id_column)
        else:
            row_id = fallback_id
        meta = {"task": task, "style": "question", "add_period": bool(add_period), "choice_labels": tuple(labels)}
        return Row(id=row_id, question=question, choices=tuple(texts), label=label, meta=meta)

    # -------------------------------------------------------------------- internals
    def _question(self, record: Mapping, where: Where) -> str:
        if self.question_template is None:
            column = self.question_column or "question"
            return _text(_value(record, column, where), where, column)
        values = {}
        for name in self.template_columns():
            values[name] = _text(_value(record, name, where), where, name)
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
            texts = [_text(_value(record, c, where), where, c) for c in self.choices_columns]
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
            raise where.fail(path, f"expected an index, a letter or the answer's text, found {_kind(value)}")
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


def _text(value: object, where: Where, path: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise where.fail(path, f"expected text, found {_kind(value)}")
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
            raise where.fail(f"{path}.text", f"expected a list, found {_kind(raw)}")
        texts = [_text(t, where, f"{path}.text[{i}]") for i, t in enumerate(raw)]
        if "label" in value and value["label"] is not None:
            raw_labels = value["label"]
            if not isinstance(raw_labels, (list, tuple)):
                raise where.fail(f"{path}.label", f"expected a list, found {_kind(raw_labels)}")
            labels = [_text(t, where, f"{path}.label[{i}]") for i, t in enumerate(raw_labels)]
            if len(labels) != len(texts):
                raise where.fail(path, f"{len(texts)} texts but {len(labels)} labels")
            return texts, labels
        return texts, list(LETTERS[: len(texts)])
    if not isinstance(value, (list, tuple)):
        raise where.fail(path, f"expected a list of choices, found {_kind(value)}")
    texts = [_text(t, where, f"{path}[{i}]") for i, t in enumerate(value)]
    return texts, list(LETTERS[: len(texts)])


# ------------------------------------------------------------------------------------- task
_MAPPING_OPTIONS = tuple(f.name for f in fields(ColumnMapping))
_TASK_OPTIONS = ("name", "data_files", "hub_dataset", "hub_config", "add_period")
#: Every option of a custom task definition (task-file keys; command-line flags of ``train``).
OPTIONS = _TASK_OPTIONS + _MAPPING_OPTIONS
#: The options that are also ``swag-lora train`` flags (``DataArguments`` fields).
ARGUMENT_OPTIONS = ("data_files", "hub_dataset", "hub_config") + _MAPPING_OPTIONS


@dataclass(frozen=True)
class CustomTask:
    """A task defined by data files (or hub splits) and a :class:`ColumnMapping`.

    ``data_files`` maps a split to its files (absolute paths) or, with ``hub_dataset``, to the
    hub split names that serve it. Splits not given are carved from train.
    """

    name: str = CUSTOM
    data_files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    mapping: ColumnMapping = field(default_factory=ColumnMapping)
    hub_dataset: str | None = None
    hub_config: str | None = None
    add_period: bool = False
    carve_fraction: float = CARVE_FRACTION
    carve_seed: int = CARVE_SEED

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise TaskDefinitionError(
                f"task name {self.name!r} must start with a letter or digit and hold only letters, digits, '.', '_' "
                "and '-' (it names result folders)"
            )
        from .errors import UnknownTaskError
        from .registry import get_task

        try:
            get_task(self.name)
        except UnknownTaskError:
            pass
        else:
            raise TaskDefinitionError(f"task name {self.name!r} is a built-in task's; give the custom task another name")
        if not self.data_files:
            raise TaskDefinitionError(
                "a custom task needs data: data_files (e.g. train=train.csv test=test.csv)"
                + (" naming the hub dataset's splits" if self.hub_dataset else "")
            )
        for split, files in self.data_files.items():
            if split not in SPLITS:
                raise TaskDefinitionError(f"data_files: unknown split {split!r}; splits are {', '.join(SPLITS)}")
            if not files:
                raise TaskDefinitionError(f"data_files: no file for split {split!r}")

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_options(cls, options: Mapping, base_dir: str | os.PathLike | None = None) -> CustomTask:
        """A task from a flat dict of options (task-file keys); relative paths against ``base_dir``."""
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise TaskDefinitionError(f"unknown custom task option(s) {', '.join(unknown)}; options are {', '.join(OPTIONS)}")
        given = {k: v for k, v in options.items() if v is not None}
        mapping = ColumnMapping(**{k: _as_tuple(v) if k in ("choices_columns", "label_words") else v
                                   for k, v in given.items() if k in _MAPPING_OPTIONS})
        hub = given.get("hub_dataset")
        files = parse_data_files(given.get("data_files"), base_dir=None if hub else base_dir)
        if hub and not files:
            files = {"train": ("train",), "test": ("test",)}
        return cls(
            name=given.get("name", CUSTOM),
            data_files=files,
            mapping=mapping,
            hub_dataset=hub,
            hub_config=given.get("hub_config"),
            add_period=bool(given.get("add_period", False)),
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike, overrides: Mapping | None = None) -> CustomTask:
        """A task from a YAML or JSON task file; ``overrides`` (options not ``None``) win over it.
        The name defaults to the file's stem; relative data paths are read from its folder."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise DataNotFoundError(f"task file not found: {path}")
        with open(path, encoding="utf-8") as handle:
            try:
                if path.suffix.lower() == ".json":
                    options = json.load(handle)
                else:
                    import yaml

                    options = yaml.safe_load(handle)
            except Exception as err:  # yaml and json raise several types
                raise TaskDefinitionError(f"task file {path}: cannot read it ({err})") from None
        if not isinstance(options, dict):
            raise TaskDefinitionError(f"task file {path}: expected a mapping of options ({', '.join(OPTIONS)})")
        options = {"name": path.stem, **options}
        options.update({k: v for k, v in (overrides or {}).items() if v is not None})
        try:
            return cls.from_options(options, base_dir=path.parent)
        except TaskDefinitionError as err:
            raise TaskDefinitionError(f"task file {path}: {err}") from None

    @classmethod
    def from_dict(cls, data: Mapping) -> CustomTask:
        """The inverse of :meth:`to_dict`."""
        return cls.from_options({k: v for k, v in data.items() if k in OPTIONS})

    def to_dict(self) -> dict:
        """The definition as JSON-ready options (absolute paths), enough to re-create the task."""
        out = {"name": self.name, "data_files": {k: list(v) for k, v in self.data_files.items()}}
        if self.hub_dataset:
            out.update(hub_dataset=self.hub_dataset, hub_config=self.hub_config)
        for option in _MAPPING_OPTIONS:
            value = getattr(self.mapping, option)
            if value not in (None, ()):
                out[option] = list(value) if isinstance(value, tuple) else value
        out["add_period"] = self.add_period
        return out

    # --------------------------------------------------------------------- loading
    def load(
        self, split: str, *, limit: int | None = None, subset_seed: int = 0, skip_bad_rows: bool = False
    ):
        """One split as a :class:`~swag_lora.tasks.TaskSplit` (see :func:`~swag_lora.tasks.load_task`)."""
        from .loading import TaskSplit, _Collector

        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
        collector = _Collector(skip_bad_rows)
        carves = [part for part in ("test", "validation") if part not in self.data_files]
        if split in self.data_files and not (split == "train" and carves):
            rows, source, rule = self._read(split, collector)
        else:
            rows, source, rule = self._carved(split, collector)
        available = len(rows)
        if limit is not None:
            rows = draw_subset(rows, limit, subset_seed)
        if collector.skipped:
            warnings.warn(
                f"{self.name}/{split}: skipped {collector.skipped} bad rows; first: {collector.problems[0]}",
                stacklevel=3,
            )
        return TaskSplit(
            rows, task=self.name, split=split, source=source, rule=rule, available=available, limit=limit,
            subset_seed=subset_seed, skipped=collector.skipped, problems=collector.problems,
            definition=self.to_dict(),
        )

    def _carved(self, split: str, collector) -> tuple[list[Row], str, str]:
        if "train" not in self.data_files:
            given = ", ".join(self.data_files)
            raise DataNotFoundError(
                f"custom task {self.name}: no {split} data (data_files gives {given}); give data_files "
                f"{split}=FILE{' or train=FILE to carve it from' if split != 'train' else ''}"
            )
        rows, source, text = self._read("train", collector)
        pct = f"{self.carve_fraction * 100:g}%"
        for part in ("test", "validation"):
            if part in self.data_files:
                continue
            rest, carved = carve(rows, self.carve_fraction, self.carve_seed)
            if part == split:
                return carved, source, f"carved {pct} ({len(carved)} of {len(rows)}) from {text} with seed {self.carve_seed}"
            text = f"{text} less the {pct} {part} carve ({len(carved)} of {len(rows)}, seed {self.carve_seed})"
            rows = rest
        return rows, source, text

    def _read(self, split: str, collector) -> tuple[list[Row], str, str]:
        rows: list[Row] = []
        seen: dict[str, Where] = {}
        sources = self.data_files[split]
        if self.hub_dataset:
            items = _hub_items(self.hub_dataset, self.hub_config, sources)
            label = f"hub:{self.hub_dataset}/{self.hub_config or 'default'}/{'+'.join(sources)}"
            text = f"hub split{'s' if len(sources) > 1 else ''} {', '.join(sources)}"
        else:
            items = _file_items(sources)
            label = f"local:{sources[0]}" if len(sources) == 1 else f"local:{os.path.dirname(sources[0])}"
            text = ("local file " if len(sources) == 1 else "local files ") + ", ".join(Path(s).name for s in sources)
        for index, (where, value, columns) in enumerate(items):
            if columns is not None:
                self.mapping.check_columns(columns, f"task {self.name}, {where.path}")
            if isinstance(value, DataFormatError):
                collector.bad(value)
                continue
            try:
                row = self.mapping.row(
                    value, where, task=self.name, fallback_id=f"{split}-{index}", add_period=self.add_period
                )
                if row.id in seen:
                    raise where.fail(
                        self.mapping.id_column, f"duplicate id {row.id!r} (first at {seen[row.id].describe()})"
                    )
            except DataFormatError as err:
                collector.bad(err)
                continue
            seen[row.id] = where
            rows.append(row)
        if not rows and not collector.skipped:
            raise DataFormatError(f"no records for split {split!r}", path=", ".join(sources))
        return rows, label, text


def _as_tuple(value) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def parse_data_files(value, base_dir: str | os.PathLike | None = None) -> dict[str, tuple[str, ...]]:
    """``{"train": "a.csv"}``, ``{"train": ["a.csv", "b.csv"]}`` or ``["train=a.csv", "test=b.csv"]``
    as ``{split: (path, ...)}``. With ``base_dir``, paths become absolute (relative ones from
    ``base_dir``) and must exist; without it (hub split names) they are kept as given."""
    if value is None:
        return {}
    pairs: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        for split, files in value.items():
            pairs += [(str(split), str(f)) for f in _as_tuple(files)]
    else:
        for item in _as_tuple(value):
            if not isinstance(item, str) or "=" not in item:
                raise TaskDefinitionError(f"data_files entry {item!r} must be SPLIT=PATH, e.g. train=train.csv")
            split, _, path = item.partition("=")
            pairs += [(split, p) for p in path.split(",")]
    out: dict[str, list[str]] = {}
    for split, path in pairs:
        split = _SPLIT_ALIASES.get(split.strip().lower(), split.strip().lower())
        if split not in SPLITS:
            raise TaskDefinitionError(f"data_files: unknown split {split!r}; splits are {', '.join(SPLITS)}")
        path = path.strip()
        if not path:
            raise TaskDefinitionError(f"data_files: empty path for split {split!r}")
        if base_dir is not None:
            resolved = Path(base_dir, path).expanduser().resolve()
            if resolved.suffix.lower() not in DATA_SUFFIXES:
                raise TaskDefinitionError(
                    f"data file {path}: no reader for {resolved.suffix or 'files without an extension'}; "
                    f"use {', '.join(DATA_SUFFIXES)}"
                )
            if not resolved.is_file():
                raise DataNotFoundError(f"data file for split {split} not found: {resolved}")
            path = str(resolved)
        out.setdefault(split, []).append(path)
    return {k: tuple(v) for k, v in out.items()}


def _file_items(paths: Sequence[str]) -> Iterator[tuple[Where, object, Collection[str] | None]]:
    """``(where, record, columns)`` of every record; ``columns`` (the file's column names) comes
    with the first record of each file, ``None`` after."""
    for name in paths:
        path = Path(name)
        suffix = path.suffix.lower()
        if suffix in (".csv", ".tsv"):
            items: Iterable = read_csv_records(path, "\t" if suffix == ".tsv" else ",")
        elif suffix == ".jsonl":
            items = read_jsonl(path)
        elif suffix == ".json":
            items = read_json(path)
        else:
            items = read_parquet(path)
        first = True
        for where, value in items:
            columns = None
            if first and isinstance(value, Mapping):
                columns, first = list(value), False
            yield where, value, columns


def _hub_items(name: str, config: str | None, splits: Sequence[str]):
    from .loading import _hub_dataset

    for split in splits:
        dataset = _hub_dataset(name, config, split)
        columns = list(getattr(dataset, "column_names", None) or [])
        label = f"hub:{name}/{config or 'default'}/{split}"
        for i, record in enumerate(dataset):
            yield Where(label, record=i), record, (columns or list(record)) if i == 0 else None


# ---------------------------------------------------------------------- resolving task names
def is_task_file(name: object) -> bool:
    """Whether a task name is a path to a task file (it ends in .yaml, .yml or .json)."""
    return isinstance(name, (str, os.PathLike)) and str(name).lower().endswith(TASK_FILE_SUFFIXES)


def resolve_task(task: str | CustomTask, options: Mapping | None = None) -> str | CustomTask:
    """What a task argument names: a built-in task (its name, returned as is), a task file, or
    ``"custom"`` with ``options`` (data files and column mapping; relative paths from the current
    folder). Options with a built-in task are an error."""
    if isinstance(task, CustomTask):
        return task
    given = {k: v for k, v in (options or {}).items() if v not in (None, [], ())}
    if is_task_file(task):
        return CustomTask.from_file(task, given)
    if isinstance(task, str) and task.strip().lower() == CUSTOM:
        if not given.get("data_files") and not given.get("hub_dataset"):
            raise TaskDefinitionError(
                "task 'custom' needs data: --data_files train=FILE [validation=FILE] [test=FILE] (or --hub_dataset) "
                "and a column mapping, or a task file (--task my_task.yaml)"
            )
        return CustomTask.from_options(given, base_dir=Path.cwd())
    if given:
        raise TaskDefinitionError(
            f"{', '.join(sorted(given))} define a custom task; task {task!r} is built in: use --task custom or "
            "--task FILE.yaml with them"
        )
    return task


def task_from_arguments(data_args) -> str | CustomTask:
    """The task of ``swag-lora train``'s data arguments (a ``DataArguments``)."""
    return resolve_task(data_args.task, {k: getattr(data_args, k, None) for k in ARGUMENT_OPTIONS})


def run_task(run_config: Mapping, task: str) -> str | CustomTask:
    """The task ``task`` means for a run: the run's own custom task (re-created from the
    definition it recorded) when ``task`` names it (``custom``, the task's name, or how training
    named it), else ``task`` itself."""
    definition = ((run_config.get("splits") or {}).get("train") or {}).get("definition")
    if definition:
        names = {CUSTOM, definition.get("name"), str((run_config.get("data") or {}).get("task"))}
        if task in names:
            return CustomTask.from_dict(definition)
    return task
