"""Where a task's local copy is: the folders a user gives (:class:`DataDirs`: one folder for
every task, and ``TASK=DIR`` pairs for single tasks), the data root in ``$SWAG_LORA_DATA``, and
the rule that picks one folder per task (:func:`locate`).

Each task is resolved on its own, in this order:

1. a folder given for the task itself (``TASK=DIR``; it must hold the task);
2. the folder given for every task, when it holds the task's files (a task folder; unless its
   name is another task's folder name) or a subfolder named for the task (a data root);
3. when that folder is another task's folder (it has another task's folder name, or holds another
   task's files), or the folder a run was trained with on another task
   (:meth:`DataDirs.pinned`), the folder beside it: its parent as a data root;
4. a subfolder named for the task in ``$SWAG_LORA_DATA``;
5. otherwise no local copy (``load_task(source="auto")`` then turns to the hub).

A folder given for every task that is no task's folder and holds nothing of this task is an
error, not a step on to the hub: it was meant to hold the task.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidSettingError
from .errors import DataNotFoundError
from .hub import ENV_VAR
from .registry import SourceFile, TaskSpec, get_task, list_tasks

__all__ = ["DataDirs", "Located", "advice", "find_local_folder", "locate", "match_files", "patterns_of", "task_keys"]


def patterns_of(source_file: SourceFile, spec: TaskSpec, subject: str | None = None) -> list[str]:
    """The glob patterns of one release file (MMLU's filled in for ``subject``, default its first)."""
    if spec.parser == "mmlu":
        subject = subject or spec.subjects[0]
        return [p.format(subject=subject) for p in source_file.local]
    return list(source_file.local)


def match_files(folder: Path, patterns: Sequence[str]) -> tuple[str, list[Path]]:
    """The first pattern with matching files in ``folder``, and those files (sorted)."""
    for pattern in patterns:
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if found:
            return pattern, found
    return "", []


def _holds_files(spec: TaskSpec, folder: Path) -> bool:
    return any(match_files(folder, patterns_of(f, spec))[1] for f in spec.files)


def _subfolder(spec: TaskSpec, root: Path) -> Path | None:
    for name in spec.folders:
        if (root / name).is_dir():
            return root / name
    return None


def task_keys(spec: TaskSpec) -> set[str]:
    """The names a ``TASK=DIR`` pair may use for ``spec``: its name and its folder names (so
    ``mmlu=DIR`` serves every MMLU selection and ``winogrande=DIR`` every WinoGrande size)."""
    return {spec.name.lower(), *(name.lower() for name in spec.folders)}


def _all_specs() -> list[TaskSpec]:
    specs, seen = [], set()
    for name in list_tasks():
        spec = get_task(name)
        if spec.folders not in seen:
            seen.add(spec.folders)
            specs.append(spec)
    return specs


def _known_key(key: str) -> str | None:
    """``key`` as a pair's task key (lower case) if it names a task or a task folder, else None."""
    try:
        return get_task(key).name.lower()
    except ValueError:
        lowered = key.strip().lower()
        return lowered if any(lowered in task_keys(spec) for spec in _all_specs()) else None


def _named_for(folder: Path, spec: TaskSpec) -> bool:
    return folder.name.lower() in {name.lower() for name in spec.folders}


def _named_owner(folder: Path, spec: TaskSpec) -> str | None:
    """The other task whose folder name ``folder`` has, if any."""
    for other in _all_specs():
        if other.folders != spec.folders and _named_for(folder, other):
            return other.name
    return None


def _file_owner(folder: Path, spec: TaskSpec) -> str | None:
    """The other task whose files ``folder`` holds (several tasks share the Hugging Face file
    names: then "another task"), if any."""
    holders = [other.name for other in _all_specs() if other.folders != spec.folders and _holds_files(other, folder)]
    if not holders:
        return None
    return holders[0] if len(holders) == 1 else "another task"


@dataclass(frozen=True)
class DataDirs:
    """The local data folders a user gave: ``root``, one folder for every task (a data root or a
    task folder), and ``pairs``, ``(task key, folder)`` for single tasks; ``near`` holds
    ``(folder, task)`` for task folders whose neighbours are looked in (see :meth:`pinned`).

    :meth:`parse` reads what ``--data_dir`` takes: ``DIR``, ``TASK=DIR`` or a list of those (at
    most one plain ``DIR``)."""

    root: str | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    near: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, value) -> DataDirs:
        if value is None or isinstance(value, DataDirs):
            return value or cls()
        items = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        root, pairs = None, []
        for item in items:
            text = os.fspath(item)
            key, sep, folder = text.partition("=")
            if sep and not Path(text).exists() and "/" not in key and os.sep not in key:
                known = _known_key(key)
                if known is None:
                    raise InvalidSettingError(
                        f"--data_dir {text}: {key!r} is not a task name (TASK=DIR gives one task its folder; "
                        f"tasks: {', '.join(list_tasks())})")
                if not folder:
                    raise InvalidSettingError(f"--data_dir {text}: no folder after '='")
                pairs.append((known, folder))
            elif root is not None:
                raise InvalidSettingError(
                    f"--data_dir: two folders for every task ({root!r}, {text!r}); give one, and TASK=DIR for "
                    "single tasks")
            else:
                root = text
        return cls(root, tuple(pairs))

    def __bool__(self) -> bool:
        return self.root is not None or bool(self.pairs) or bool(self.near)

    def folder_for(self, spec: TaskSpec) -> str | None:
        """The folder given for ``spec`` itself (the last pair naming it), if any."""
        keys = task_keys(spec)
        found = [folder for key, folder in self.pairs if key in keys]
        return found[-1] if found else None

    def pinned(self, task: str) -> DataDirs:
        """These folders as a run trained on ``task`` recorded them: a folder for every task that
        is ``task``'s own folder (it holds the task's files) serves ``task`` alone, and other tasks
        are looked for beside it (a folder of ARC-Easy's ``train.json`` would otherwise serve any
        task whose Hugging Face layout has that name)."""
        if self.root is None:
            return self
        try:
            spec = get_task(task)
        except ValueError:  # a custom task: it carries its own files
            return self
        base = Path(self.root).expanduser()
        if not base.is_dir() or _subfolder(spec, base) is not None or not _holds_files(spec, base):
            return self
        return DataDirs(None, ((spec.name.lower(), self.root),) + self.pairs, ((self.root, spec.name),) + self.near)

    def merged_over(self, other) -> DataDirs:
        """These folders over ``other`` (e.g. a run's recorded ones): a folder for every task given
        here replaces all of ``other``; pairs given here are added to ``other``'s, winning for
        their tasks."""
        other = DataDirs.parse(other)
        if self.root is not None:
            return self
        return DataDirs(other.root, other.pairs + self.pairs, other.near + self.near)

    def to_value(self) -> str | list[str] | None:
        """What ``--data_dir`` would take for these folders (a plain string for one folder)."""
        items = ([self.root] if self.root is not None else []) + [f"{k}={v}" for k, v in self.pairs]
        if not items:
            return None
        return items[0] if len(items) == 1 and not self.pairs else items


@dataclass
class Located:
    """The task's local folder (or None) and the places looked at without finding it."""

    folder: Path | None
    looked: list[str]

    def describe(self) -> str:
        return "; ".join(self.looked) if self.looked else "no local folder given and $" + ENV_VAR + " is not set"


def advice(spec: TaskSpec) -> str:
    """How to give ``spec`` a local copy (the end of a message)."""
    return (f"pass --data_dir DIR (a data root or this task's folder) or --data_dir {spec.name}=DIR, or set "
            f"${ENV_VAR} to a data root holding a folder named {' or '.join(spec.folders)}")


def locate(spec: TaskSpec, data_dir=None) -> Located:
    """The local folder of ``spec`` from the folders given (see the module docstring)."""
    dirs = DataDirs.parse(data_dir)
    looked: list[str] = []
    given = dirs.folder_for(spec)
    if given is not None:
        base = Path(given).expanduser()
        if not base.is_dir():
            raise DataNotFoundError(f"task {spec.name}: the folder given for it, {str(base)!r}, is not a folder")
        folder = base if _holds_files(spec, base) else _subfolder(spec, base)
        if folder is None:
            raise DataNotFoundError(f"task {spec.name}: the folder given for it, {str(base)!r}, holds neither the "
                                    f"task's files ({_expected(spec)}) nor a task folder named "
                                    f"{' or '.join(spec.folders)}")
        return Located(folder, looked)
    near = [(Path(folder).expanduser(), owner) for folder, owner in dirs.near]
    if dirs.root is not None:
        base = Path(dirs.root).expanduser()
        if not base.is_dir():
            raise DataNotFoundError(f"task {spec.name}: data_dir {str(base)!r} is not a folder")
        owner = _named_owner(base, spec)  # another task's folder by its name: not this task's, whatever it holds
        if owner is None:
            folder = base if _holds_files(spec, base) else _subfolder(spec, base)
            if folder is not None:
                return Located(folder, looked)
            owner = _file_owner(base, spec)
        if owner is None:
            raise DataNotFoundError(
                f"task {spec.name}: {str(base)!r} holds neither the task's files ({_expected(spec)}) nor a task "
                f"folder named {' or '.join(spec.folders)}; {advice(spec)}")
        near.insert(0, (base, owner))
    for base, owner in near:
        folder = _subfolder(spec, base.parent)
        if folder is not None:
            return Located(folder, looked)
        looked.append(f"{str(base)!r} is {owner}'s folder and {str(base.parent)!r} beside it has no folder named "
                      f"{' or '.join(spec.folders)}")
    root = os.environ.get(ENV_VAR)
    if root:
        folder = _subfolder(spec, Path(root).expanduser())
        if folder is not None:
            return Located(folder, looked)
        looked.append(f"${ENV_VAR} ({root!r}) has no folder named {' or '.join(spec.folders)}")
    else:
        looked.append(f"${ENV_VAR} is not set")
    return Located(None, looked)


def _expected(spec: TaskSpec) -> str:
    return f"looked for {', '.join(p for f in spec.files for p in patterns_of(f, spec)[:2])}, ..."


def find_local_folder(spec: TaskSpec, data_dir=None) -> Path | None:
    """The task's local folder from ``data_dir`` (``DIR``, ``TASK=DIR`` pairs or a
    :class:`DataDirs`) and ``$SWAG_LORA_DATA``, or ``None``; see :func:`locate`."""
    return locate(spec, data_dir).folder
