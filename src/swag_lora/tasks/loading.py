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
from .locate import DataDirs, Located, advice, find_local_folder, locate, match_files, patterns_of
from .parsing import parse_boolq, parse_mmlu_csv, parse_mmlu_record, parse_multiple_choice, parse_winogrande
from .readers import reader_for
from .registry import SPLITS, SourceFile, TaskSpec, get_task
from .slices import check_slice, read_slice
from .splits import carve, draw_subset

__all__ = [
    "SOURCES",
    "find_local_data",
    "find_local_folder",
    "load_task",
]

# find_local_folder lives in .locate; it stays importable from here.


SOURCES = ("auto", "local", "hub")


@dataclass
class _Loaded:
    rows: list[Row]
    source: str
    description: str


def load_task(
    name,
    split: str,
    data_dir: str | os.PathLike | Sequence[str] | DataDirs | None = None,
    *,
    source: str = "auto",
    limit: int | None = None,
    subset_seed: int = 0,
    skip_bad_rows: bool = False,
) -> TaskSplit:
    """One split (``"train"``, ``"validation"`` or ``"test"``) of a task, as rows.

    ``data_dir`` is a task folder in its release format or a data root holding per-task folders
    (``obqa/``, ``arc-easy/``, ...), or a list of one such folder and ``"TASK=DIR"`` pairs that
    give single tasks their folders (:class:`~swag_lora.tasks.locate.DataDirs`); a folder of
    another task points to the data root beside it, and ``$SWAG_LORA_DATA`` names a root looked
    in after the folders given (:func:`~swag_lora.tasks.locate.locate` has the order).
    ``source="auto"`` reads a local folder when one is found and the hub otherwise; ``"local"``
    and ``"hub"`` insist. A folder that is a slice of a release (the demo's packaged questions,
    :mod:`~swag_lora.tasks.slices`) serves only the subsets it holds exactly. ``limit`` keeps
    that many rows, drawn with ``subset_seed`` (independently of any training seed) and kept in
    file order.
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
    if source == "hub" and DataDirs.parse(data_dir):
        raise ValueError("data_dir names a local folder; it cannot be used with source='hub'")

    located = Located(None, [])
    if source != "hub":
        located = locate(spec, data_dir)
        if located.folder is None and source == "local":
            raise DataNotFoundError(f"task {spec.name}: no local copy ({located.describe()}); {advice(spec)}")

    rule = spec.splits[split]
    collector = BadRowCollector(skip_bad_rows)
    source_file = spec.file(rule.file)
    release_size, slice_note = None, ""
    if located.folder is not None:
        record = read_slice(located.folder)
        if record is not None:
            release_size, slice_note = check_slice(record, located.folder, spec.name, split, rule.part == "all",
                                                   limit, subset_seed, advice(spec))
        loaded = _load_local(spec, source_file, located.folder, collector)
    else:
        loaded = _load_hub(spec, source_file, collector, located)

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
    if slice_note:
        text += f" ({slice_note})"

    available = len(rows) if release_size is None else release_size
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
        patterns = patterns_of(source_file, spec, subject or None)
        pattern, paths = match_files(folder, patterns)
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


def _load_hub(spec: TaskSpec, source_file: SourceFile, collector: BadRowCollector, located: Located) -> _Loaded:
    split = source_file.hub_split
    rows: list[Row] = []
    seen: dict[str, Where] = {}
    configs = spec.subjects or (spec.hub_config,)
    for config in configs:
        label = f"{spec.hub_name}/{config or 'default'}/{split}"
        try:
            dataset = hub_dataset(spec.hub_name, config, split)
        except DataNotFoundError as err:
            local = f"no local copy ({located.describe()}) and " if located.looked else ""
            raise DataNotFoundError(f"task {spec.name}: {local}{err}; {advice(spec)}") from err
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
    """``$SWAG_LORA_DATA``, else a ``shared/data`` folder beside or inside the current folder or
    beside the swag-lora checkout this package runs from, else None (the hub)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    candidates = [Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data"]
    checkout = Path(__file__).resolve().parents[3]  # src/swag_lora/tasks/loading.py in a checkout
    if (checkout / "pyproject.toml").is_file() and (checkout / "src" / "swag_lora").is_dir():
        candidates.append(checkout.parent / "shared" / "data")
    for candidate in candidates:
        if candidate.is_dir():
            return str(candidate)
    return None
