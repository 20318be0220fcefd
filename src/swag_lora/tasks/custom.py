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
import sys
import warnings
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from ..errors import InvalidSettingError
from .base import BadRowCollector, Row, TaskSplit
from .columns import ColumnMapping
from .errors import DataFormatError, DataNotFoundError, TaskDefinitionError, UnknownTaskError, Where
from .hub import hub_dataset
from .readers import jsonl_records, read_csv_records, read_json, read_jsonl, read_parquet
from .registry import CARVE_FRACTION, CARVE_SEED, SPLITS, get_task
from .splits import carve, draw_subset

__all__ = [
    "ARGUMENT_OPTIONS",
    "CUSTOM",
    "DATA_SUFFIXES",
    "OPTIONS",
    "STDIN",
    "CustomTask",
    "file_items",
    "input_records",
    "is_task_file",
    "parse_data_files",
    "resolve_task",
    "run_task",
    "task_from_arguments",
]

CUSTOM = "custom"
STDIN = "-"  # an input "file" that is standard input (JSON lines)
TASK_FILE_SUFFIXES = (".yaml", ".yml", ".json")
DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
_SPLIT_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation", "eval": "validation"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
        collector = BadRowCollector(skip_bad_rows)
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
            items = file_items(sources)
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


def file_items(paths: Sequence[str]) -> Iterator[tuple[Where, object, Collection[str] | None]]:
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


def input_records(source: str | os.PathLike, stdin=None) -> tuple[Iterator[tuple[Where, object]], str]:
    """``(where, record)`` of an input file (read by its extension) or, for ``"-"``, of JSON lines on
    standard input (``stdin``, a binary or text stream; default the process's), and the name the
    records are located under."""
    if str(source) == STDIN:
        data = (stdin if stdin is not None else sys.stdin.buffer).read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        return jsonl_records(data, "<stdin>"), "<stdin>"
    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    if path.suffix.lower() not in DATA_SUFFIXES:
        raise InvalidSettingError(f"input {path}: no reader for {path.suffix or 'files without an extension'}; "
                                  f"use {', '.join(DATA_SUFFIXES)} or - for JSON lines on standard input")
    return ((where, record) for where, record, _ in file_items([str(path)])), str(path)


def _hub_items(name: str, config: str | None, splits: Sequence[str]):
    for split in splits:
        try:
            dataset = hub_dataset(name, config, split)
        except DataNotFoundError as err:
            raise DataNotFoundError(f"{err}; give the task local files instead: --data_files SPLIT=FILE (or "
                                    "data_files: in its task file)") from err
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


def run_task(task: str, definition: Mapping | None, trained_as: str | None = None) -> str | CustomTask:
    """The task ``task`` means for a run trained on a custom task with ``definition`` (recorded
    in the run) under the name ``trained_as`` (its ``--task`` value): the run's own custom task,
    re-created from the definition, when ``task`` names it (``custom``, the task's name, or
    ``trained_as``); else ``task`` itself (also for runs of built-in tasks, ``definition`` None)."""
    if definition:
        names = {CUSTOM, definition.get("name"), str(trained_as)}
        if task in names:
            return CustomTask.from_dict(definition)
    return task
