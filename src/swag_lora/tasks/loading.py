"""``load_task``: a task's split as rows, from a local folder in the release format or the hub,
with a record of which rule served it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .base import BadRowCollector, Row, TaskSplit
from .custom import CUSTOM, CustomTask, is_task_file
from .errors import DataFormatError, DataNotFoundError, TaskDefinitionError, Where
from .hub import ENV_VAR, hub_dataset
from .parsing import parse_boolq, parse_mmlu_csv, parse_mmlu_record, parse_multiple_choice, parse_winogrande
from .readers import reader_for
from .registry import SPLITS, SourceFile, TaskSpec, get_task
from .splits import carve, draw_subset

__all__ = [
    "SOURCES",
    "find_local_data",
    "find_local_folder",
    "load_task",
]


SOURCES = ("auto", "local", "hub")


@dataclass
class _Loaded:
    rows: list[Row]
    source: str
    description: str


def load_task(
    name,
    split: str,
    data_dir: str | os.PathLike | None = None,
    *,
    source: str = "auto",
    limit: int | None = None,
    subset_seed: int = 0,
    skip_bad_rows: bool = False,
) -> TaskSplit:
    """One split (``"train"``, ``"validation"`` or ``"test"``) of a task, as rows.

    ``data_dir`` is a task folder in its release format or a data root holding per-task folders
    (``obqa/``, ``arc-easy/``, ...); without it the root named by ``$SWAG_LORA_DATA`` is used
    when it holds the task's folder. ``source="auto"`` reads a local folder when one is found
    and the hub otherwise; ``"local"`` and ``"hub"`` insist. ``limit`` keeps that many rows,
    drawn with ``subset_seed`` (independently of any training seed) and kept in file order.
    A malformed row raises :class:`DataFormatError`, unless ``skip_bad_rows`` is set: then it
    is left out and counted in ``skipped`` (and a warning says how many).

    ``name`` may also be a custom task: a task file (``"my_task.yaml"``) or a
    :class:`~swag_lora.tasks.custom.CustomTask` (``data_dir`` and ``source`` do not apply to it).
    """
    if isinstance(name, CustomTask) or is_task_file(name):
        task = name if isinstance(name, CustomTask) else CustomTask.from_file(name)
        return task.load(split, limit=limit, subset_seed=subset_seed, skip_bad_rows=skip_bad_rows)
    if isinstance(name, str) and name.strip().lower() == CUSTOM:
        raise TaskDefinitionError(
            "task 'custom' needs its definition: a task file (my_task.yaml) or a CustomTask with data files and a "
            "column mapping"
        )
    spec = get_task(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; sources are {', '.join(SOURCES)}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    if source == "hub" and data_dir is not None:
        raise ValueError("data_dir names a local folder; it cannot be used with source='hub'")

    folder = None
    if source != "hub":
        folder = find_local_folder(spec, data_dir)
        if folder is None and source == "local":
            raise DataNotFoundError(
                f"task {spec.name}: no local copy; pass data_dir=<folder> or set {ENV_VAR} to a data root "
                f"holding a folder named {' or '.join(spec.folders)} "
                f"({ENV_VAR} is {os.environ.get(ENV_VAR)!r})"
            )

    rule = spec.splits[split]
    collector = BadRowCollector(skip_bad_rows)
    source_file = spec.file(rule.file)
    if folder is not None:
        loaded = _load_local(spec, source_file, folder, collector)
    else:
        loaded = _load_hub(spec, source_file, collector)

    rows, text = loaded.rows, loaded.description
    if rule.part != "all":
        rest, carved = carve(rows, spec.carve_fraction, spec.carve_seed)
        pct = f"{spec.carve_fraction * 100:g}%"
        counts = f"{len(carved)} of {len(rows)}"
        if rule.part == "carved":
            rows, text = carved, f"carved {pct} ({counts}) from {text} with seed {spec.carve_seed}"
        else:
            rows, text = rest, f"{text} less the {pct} validation carve ({counts}, seed {spec.carve_seed})"
    if rule.note:
        text += f" ({rule.note})"

    available = len(rows)
    if limit is not None:
        rows = draw_subset(rows, limit, subset_seed)
    if collector.skipped:
        warnings.warn(
            f"{spec.name}/{split}: skipped {collector.skipped} bad rows; first: {collector.problems[0]}",
            stacklevel=2,
        )
    return TaskSplit(
        rows,
        task=spec.name,
        split=split,
        source=loaded.source,
        rule=text,
        available=available,
        limit=limit,
        subset_seed=subset_seed,
        skipped=collector.skipped,
        problems=collector.problems,
    )


def find_local_folder(spec: TaskSpec, data_dir: str | os.PathLike | None) -> Path | None:
    """The task's local folder: ``data_dir`` itself when it holds the task's files, else its
    subfolder named for the task; without ``data_dir``, that subfolder of ``$SWAG_LORA_DATA``.

    A ``data_dir`` that is neither raises :class:`DataNotFoundError`; a missing subfolder of
    the environment's root gives ``None`` (so ``source="auto"`` turns to the hub).
    """
    if data_dir is not None:
        base = Path(data_dir).expanduser()
        if not base.is_dir():
            raise DataNotFoundError(f"task {spec.name}: data_dir {str(base)!r} is not a folder")
        if _holds_task_files(spec, base):
            return base
        for name in spec.folders:
            if (base / name).is_dir():
                return base / name
        raise DataNotFoundError(
            f"task {spec.name}: {str(base)!r} holds neither the task's files (looked for "
            f"{', '.join(p for f in spec.files for p in _patterns(f, spec)[:2])}, ...) nor a task folder named "
            f"{' or '.join(spec.folders)}"
        )
    root = os.environ.get(ENV_VAR)
    if root:
        for name in spec.folders:
            candidate = Path(root).expanduser() / name
            if candidate.is_dir():
                return candidate
    return None


def _patterns(source_file: SourceFile, spec: TaskSpec, subject: str | None = None) -> list[str]:
    if spec.parser == "mmlu":
        subject = subject or spec.subjects[0]
        return [p.format(subject=subject) for p in source_file.local]
    return list(source_file.local)


def _match(folder: Path, patterns: Sequence[str]) -> tuple[str, list[Path]]:
    """The first pattern with matching files in ``folder``, and those files (sorted)."""
    for pattern in patterns:
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if found:
            return pattern, found
    return "", []


def _holds_task_files(spec: TaskSpec, folder: Path) -> bool:
    return any(_match(folder, _patterns(f, spec))[1] for f in spec.files)


def _parse(
    spec: TaskSpec, value: object, where: Where, *, key: str, index: int, subject: str, csv: bool
) -> Row:
    if spec.parser == "multiple_choice":
        return parse_multiple_choice(value, where, task=spec.name, add_period=spec.add_period)
    if spec.parser == "winogrande":
        return parse_winogrande(value, where, task=spec.name, fallback_id=f"{key}-{index}")
    if spec.parser == "boolq":
        return parse_boolq(value, where, task=spec.name, fallback_id=f"{key}-{index}")
    row_id = f"{subject}/{key}/{index}"
    parse = parse_mmlu_csv if csv else parse_mmlu_record
    return parse(value, where, task=spec.name, subject=subject, row_id=row_id)


def _rows_of(
    spec: TaskSpec,
    items: Iterable[tuple[Where, object]],
    collector: BadRowCollector,
    seen: dict[str, Where],
    *,
    key: str,
    subject: str = "",
    csv: bool = False,
    start: int = 0,
) -> tuple[list[Row], int]:
    rows: list[Row] = []
    index = start
    for where, value in items:
        position, index = index, index + 1
        if isinstance(value, DataFormatError):
            collector.bad(value)
            continue
        try:
            row = _parse(spec, value, where, key=key, index=position, subject=subject, csv=csv)
            if row.id in seen:
                raise where.fail(
                    spec.id_field, f"duplicate id {row.id!r} (first at {seen[row.id].describe()})"
                )
        except DataFormatError as err:
            collector.bad(err)
            continue
        seen[row.id] = where
        rows.append(row)
    return rows, index


def _load_local(spec: TaskSpec, source_file: SourceFile, folder: Path, collector: BadRowCollector) -> _Loaded:
    subjects = spec.subjects or ("",)
    rows: list[Row] = []
    used_patterns: list[str] = []
    files: list[Path] = []
    seen: dict[str, Where] = {}
    for subject in subjects:
        patterns = _patterns(source_file, spec, subject or None)
        pattern, paths = _match(folder, patterns)
        if not paths:
            what = f"{source_file.key} file" + (f" of subject {subject}" if subject else "")
            raise DataNotFoundError(
                f"task {spec.name}: no {what} in {str(folder)!r}; looked for {', '.join(patterns)}"
            )
        generic = source_file.local[patterns.index(pattern)].replace("{subject}", "<subject>")
        if generic not in used_patterns:
            used_patterns.append(generic)
        index = 0
        for path in paths:
            items = reader_for(path)(path)
            more, index = _rows_of(
                spec,
                items,
                collector,
                seen,
                key=source_file.key,
                subject=subject,
                csv=path.suffix.lower() == ".csv",
                start=index,
            )
            rows += more
            files.append(path)
    if spec.subjects:
        description = f"local files {', '.join(used_patterns)} for {len(spec.subjects)} subject" + (
            "s" if len(spec.subjects) > 1 else ""
        )
    else:
        names = [str(p.relative_to(folder)) for p in files]
        description = ("local file " if len(names) == 1 else "local files ") + ", ".join(names)
    where = files[0] if len(files) == 1 else folder
    return _Loaded(rows, f"local:{where}", description)


def _load_hub(spec: TaskSpec, source_file: SourceFile, collector: BadRowCollector) -> _Loaded:
    split = source_file.hub_split
    rows: list[Row] = []
    seen: dict[str, Where] = {}
    configs = spec.subjects or (spec.hub_config,)
    for config in configs:
        label = f"{spec.hub_name}/{config or 'default'}/{split}"
        dataset = hub_dataset(spec.hub_name, config, split)
        items = ((Where(f"hub:{label}", record=i), record) for i, record in enumerate(dataset))
        more, _ = _rows_of(
            spec, items, collector, seen, key=source_file.key, subject=config if spec.subjects else ""
        )
        rows += more
    if len(configs) == 1:
        source = f"hub:{spec.hub_name}/{configs[0] or 'default'}/{split}"
    else:
        source = f"hub:{spec.hub_name}/<{len(configs)} subjects>/{split}"
    return _Loaded(rows, source, f"hub split {split}")


def find_local_data() -> str | None:
    """``$SWAG_LORA_DATA``, else a ``shared/data`` folder beside or inside the current folder, else
    None (the hub)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    for candidate in (Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data"):
        if candidate.is_dir():
            return str(candidate)
    return None
