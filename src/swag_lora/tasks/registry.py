"""The task registry: for each task, its release files on the hub and in a local folder, and
the rule that serves each of the splits ``train``, ``validation`` and ``test``.

A split means the same questions whichever source serves it: rules are written against files
that both the hub and the usual local release hold. Where a task has no labelled split to
spare (no labelled test set, or a local copy without one), the official dev set serves as
test and validation is carved from train with a fixed seed (see :mod:`.splits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from . import mmlu
from .errors import UnknownTaskError

__all__ = [
    "CARVE_FRACTION",
    "CARVE_SEED",
    "MMLU_GROUP_NAMES",
    "SPLITS",
    "SourceFile",
    "SplitRule",
    "TaskSpec",
    "get_task",
    "hf_layout",
    "list_tasks",
]


SPLITS = ("train", "validation", "test")
CARVE_FRACTION = 0.1
CARVE_SEED = 0


@dataclass(frozen=True)
class SourceFile:
    """One release file of a task: its split name on the hub and the names it has in a local
    folder (glob patterns relative to the task folder, most specific first; ``{subject}`` is
    filled in for MMLU)."""

    key: str
    hub_split: str
    local: tuple[str, ...]


@dataclass(frozen=True)
class SplitRule:
    """How a split is served: all of a source file, the part carved from it (``"carved"``), or
    the file less that part (``"rest"``). ``note`` explains a non-obvious choice."""

    file: str
    part: str = "all"
    note: str = ""


@dataclass(frozen=True)
class TaskSpec:
    """Everything the loader needs to know about a task."""

    name: str
    title: str
    parser: str  # "multiple_choice", "winogrande", "boolq" or "mmlu"
    hub_name: str
    hub_config: str | None
    files: tuple[SourceFile, ...]
    splits: dict[str, SplitRule]
    folders: tuple[str, ...]
    add_period: bool = False
    subjects: tuple[str, ...] = ()
    carve_fraction: float = CARVE_FRACTION
    carve_seed: int = CARVE_SEED
    id_field: str = "id"

    def file(self, key: str) -> SourceFile:
        for source_file in self.files:
            if source_file.key == key:
                return source_file
        raise KeyError(key)


def hf_layout(split: str, prefixes: tuple[str, ...] = ("", "data/")) -> tuple[str, ...]:
    """Names a split has in a Hugging Face style folder: ``{split}.jsonl|json|parquet`` or
    parquet shards ``{split}-00000-of-00001.parquet``, under each of ``prefixes``."""
    names: list[str] = []
    for prefix in prefixes:
        names += [f"{prefix}{split}.jsonl", f"{prefix}{split}.json", f"{prefix}{split}.parquet"]
        names.append(f"{prefix}{split}-*.parquet")
    return tuple(names)


_CARVED = SplitRule("train", "carved", "the official dev set serves as test")
_REST = SplitRule("train", "rest")


def _arc(level: str, name: str) -> TaskSpec:
    stem = f"ARC-{level}"
    prefixes = ("", "data/", f"{stem}/")
    files = (
        SourceFile("train", "train", (f"{stem}-Train.jsonl", *hf_layout("train", prefixes))),
        SourceFile("dev", "validation", (f"{stem}-Dev.jsonl", *hf_layout("validation", prefixes))),
        SourceFile("test", "test", (f"{stem}-Test.jsonl", *hf_layout("test", prefixes))),
    )
    if level == "Easy":
        splits = {"train": SplitRule("train"), "validation": SplitRule("dev"), "test": SplitRule("test")}
    else:
        note = "official dev set used as test: the local release copy has no test file"
        splits = {"train": _REST, "validation": _CARVED, "test": SplitRule("dev", note=note)}
        files = files[:2]
    return TaskSpec(
        name=name,
        title=f"AI2 Reasoning Challenge, {level} set",
        parser="multiple_choice",
        hub_name="allenai/ai2_arc",
        hub_config=stem,
        files=files,
        splits=splits,
        folders=(name, stem, name.replace("-", "_")),
    )


def _winogrande(size: str) -> TaskSpec:
    config = f"winogrande_{size}"
    return TaskSpec(
        name=f"winogrande-{size}",
        title=f"WinoGrande, training size {size.upper()}",
        parser="winogrande",
        hub_name="allenai/winogrande",
        hub_config=config,
        files=(
            SourceFile("train", "train", (f"train_{size}.jsonl", *hf_layout("train", (f"{config}/",)))),
            SourceFile(
                "dev", "validation", ("dev.jsonl", *hf_layout("validation", (f"{config}/", "", "data/")))
            ),
        ),
        splits={
            "train": _REST,
            "validation": _CARVED,
            "test": SplitRule("dev", note="official dev set used as test: the test labels are not public"),
        },
        folders=("winogrande", "WinoGrande", config),
        id_field="qID",
    )


def _static_specs() -> dict[str, TaskSpec]:
    specs = [
        TaskSpec(
            name="obqa",
            title="OpenBookQA (main)",
            parser="multiple_choice",
            hub_name="allenai/openbookqa",
            hub_config="main",
            files=(
                SourceFile("train", "train", hf_layout("train", ("", "data/", "main/"))),
                SourceFile("test", "test", hf_layout("test", ("", "data/", "main/"))),
            ),
            splits={
                "train": _REST,
                "validation": SplitRule(
                    "train",
                    "carved",
                    "the local release copy has no validation file; carved on the hub too, so both agree",
                ),
                "test": SplitRule("test"),
            },
            folders=("obqa", "openbookqa", "OpenBookQA"),
            add_period=True,
        ),
        _arc("Easy", "arc-easy"),
        _arc("Challenge", "arc-challenge"),
        TaskSpec(
            name="cqa",
            title="CommonsenseQA (5 choices)",
            parser="multiple_choice",
            hub_name="tau/commonsense_qa",
            hub_config=None,
            files=(
                SourceFile("train", "train", ("train_rand_split.jsonl", *hf_layout("train"))),
                SourceFile("dev", "validation", ("dev_rand_split.jsonl", *hf_layout("validation"))),
            ),
            splits={
                "train": _REST,
                "validation": _CARVED,
                "test": SplitRule(
                    "dev", note="official dev set used as test: the test labels are not public"
                ),
            },
            folders=("cqa", "commonsense_qa", "commonsenseqa", "CommonsenseQA"),
        ),
        *(_winogrande(size) for size in ("xs", "s", "m", "l", "xl")),
        TaskSpec(
            name="boolq",
            title="BoolQ (yes/no questions about a passage)",
            parser="boolq",
            hub_name="google/boolq",
            hub_config=None,
            files=(
                SourceFile("train", "train", hf_layout("train")),
                SourceFile("dev", "validation", ("dev.jsonl", "val.jsonl", *hf_layout("validation"))),
            ),
            splits={
                "train": _REST,
                "validation": SplitRule("train", "carved", "the official validation set serves as test"),
                "test": SplitRule(
                    "dev", note="official validation set used as test: BoolQ has no test split"
                ),
            },
            folders=("boolq", "BoolQ"),
        ),
    ]
    return {spec.name: spec for spec in specs}


_SPECS = _static_specs()
MMLU_GROUP_NAMES = tuple(f"mmlu-{group}" for group in mmlu.GROUPS)


def _mmlu_files() -> tuple[SourceFile, ...]:
    def local(release: str, hub: str) -> tuple[str, ...]:
        csv = (f"{release}/{{subject}}_{release}.csv", f"data/{release}/{{subject}}_{release}.csv")
        return csv + hf_layout(hub, ("{subject}/",))

    return (
        SourceFile("dev", "dev", local("dev", "dev")),
        SourceFile("val", "validation", local("val", "validation")),
        SourceFile("test", "test", local("test", "test")),
    )


@lru_cache(maxsize=256)
def _mmlu_spec(name: str, subjects: tuple[str, ...]) -> TaskSpec:
    if len(subjects) == len(mmlu.SUBJECTS) and set(subjects) == set(mmlu.SUBJECTS):
        title = "MMLU, all 57 subjects"
    elif len(subjects) == 1:
        title = f"MMLU, {subjects[0]}"
    else:
        title = f"MMLU, {len(subjects)} subjects"
    return TaskSpec(
        name=name,
        title=title,
        parser="mmlu",
        hub_name="cais/mmlu",
        hub_config=None,
        files=_mmlu_files(),
        splits={
            "train": SplitRule("dev", note="MMLU's 5 few-shot questions per subject"),
            "validation": SplitRule("val"),
            "test": SplitRule("test"),
        },
        folders=("mmlu", "MMLU"),
        add_period=True,
        subjects=subjects,
    )


def list_tasks(include_mmlu_subjects: bool = False) -> list[str]:
    """Names of the registered tasks; MMLU's single subjects (``mmlu-<subject>``) only on request.

    Any ``+``-joined list of MMLU subjects and categories is a task too (``mmlu-anatomy+virology``).
    """
    names = ["obqa", "arc-easy", "arc-challenge", "cqa", "mmlu", *MMLU_GROUP_NAMES]
    names += [n for n in _SPECS if n not in names]
    if include_mmlu_subjects:
        names += [f"mmlu-{subject}" for subject in mmlu.SUBJECTS]
    return names


def get_task(name: str) -> TaskSpec:
    """The spec of a task name (case and ``_``/``-`` are not significant)."""
    if not isinstance(name, str):
        raise UnknownTaskError(f"task name must be a string, got {name!r}")
    key = name.strip().lower()
    if key.replace("_", "-") in _SPECS:
        return _SPECS[key.replace("_", "-")]
    if key == "mmlu":
        return _mmlu_spec("mmlu", mmlu.SUBJECTS)
    if key.startswith(("mmlu-", "mmlu:", "mmlu_")):
        selection = key[5:]
        subjects = mmlu.parse_selection(selection)
        if subjects is not None:
            items = [part.strip().replace("_", "-") for part in selection.replace(",", "+").split("+")]
            canonical = "mmlu-" + "+".join(items)
            if len(items) == 1 and items[0].replace("-", "_") in mmlu.SUBJECTS:
                canonical = "mmlu-" + items[0].replace("-", "_")
            return _mmlu_spec(canonical, subjects)
    raise UnknownTaskError(
        f"unknown task {name!r}; known tasks: {', '.join(list_tasks())}; and any MMLU subject as "
        f"mmlu-<subject> (e.g. mmlu-abstract_algebra), or a list of subjects and categories joined "
        f"by '+' (e.g. mmlu-anatomy+virology, mmlu-stem+other)"
    )
