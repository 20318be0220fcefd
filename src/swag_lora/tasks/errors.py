"""Errors of the task layer: an unknown task name, a malformed row, a missing data folder."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SwagLoraError

__all__ = ["DataFormatError", "DataNotFoundError", "TaskDefinitionError", "UnknownTaskError", "Where"]


class UnknownTaskError(SwagLoraError, ValueError):
    """A task name that the registry does not know; the message lists the known ones."""


class DataNotFoundError(SwagLoraError, FileNotFoundError):
    """No data where the task looked for it; the message says what was looked for, and where."""


class TaskDefinitionError(SwagLoraError, ValueError):
    """A custom task definition that cannot work: the message names the option and the reason."""


@dataclass(frozen=True)
class Where:
    """Where a record came from: a file (or hub split) and a 1-based line or a 0-based record index.

    ``line`` is the line a record starts on (jsonl, CSV, JSON arrays); ``record`` its position
    among the records of the file (JSON arrays, parquet, hub splits).
    """

    path: str
    line: int | None = None
    record: int | None = None

    def describe(self) -> str:
        parts = [self.path]
        if self.record is not None:
            parts.append(f"record {self.record}")
        if self.line is not None:
            parts.append(f"line {self.line}")
        return ", ".join(parts)

    def fail(self, field: str | None, reason: str) -> DataFormatError:
        """The error for a bad ``field`` of this record (``None`` for a syntax error)."""
        return DataFormatError(reason, path=self.path, line=self.line, record=self.record, field=field)


class DataFormatError(SwagLoraError, ValueError):
    """A malformed row or file. ``str()`` names the file, the line or record, and the field.

    Attributes ``path``, ``line`` (1-based, or ``None``), ``record`` (0-based, or ``None``),
    ``field`` (a dotted path such as ``question.choices[2].text``, or ``None`` for a syntax
    error) and ``reason`` are kept for programs.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str,
        line: int | None = None,
        record: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        self.record = record
        self.field = field
        where = Where(path, line, record).describe()
        what = f"field {field!r}" if field is not None else "syntax"
        super().__init__(f"{where}: {what}: {reason}")

    def __reduce__(self):  # keep the keyword-only arguments through pickling (multiprocessing)
        return (_rebuild_format_error, (self.reason, self.path, self.line, self.record, self.field))


def _rebuild_format_error(reason, path, line, record, field) -> DataFormatError:
    return DataFormatError(reason, path=path, line=line, record=record, field=field)
