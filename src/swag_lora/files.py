"""Atomic file writes: a file appears under its name complete or not at all.

Every writer here puts its bytes into a temporary name beside the target, flushes them to
disk, and renames the temporary into place (``os.replace``, atomic on POSIX). A process
killed at any moment leaves either the previous file or the new one, never a half-written
file under the real name; stray temporaries start with ``.`` and end in ``.tmp``.

A failed write (no space left, no permission, read-only file system) raises
:class:`ArtifactWriteError`, an ``OSError`` whose message names the file and the cause in
one line, and leaves any previous file untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import SwagLoraError

__all__ = [
    "ArtifactWriteError",
    "atomic_folder_write",
    "atomic_write",
    "is_io_error",
    "json_default",
    "read_json",
    "write_error",
    "write_json",
    "write_npy",
    "write_npz",
    "write_text",
]


class ArtifactWriteError(SwagLoraError, OSError):
    """A file could not be written (disk full, permissions, ...); the previous version is kept."""


def write_error(path, err: BaseException) -> ArtifactWriteError:
    """An :class:`ArtifactWriteError` naming ``path`` and the cause of ``err`` in one line."""
    reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).strip().splitlines()[0]
    error = ArtifactWriteError(f"cannot write {path}: {reason}")
    error.errno = err.errno if isinstance(err, OSError) else None
    return error


def _fsync(path: str) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    Raises :class:`ArtifactWriteError` if the file cannot be written; ``path`` then keeps its
    previous content (or stays absent) and the temporary is removed.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except ArtifactWriteError:
        raise
    except Exception as err:
        if isinstance(err, OSError) or is_io_error(err):
            raise write_error(path, err) from err
        raise
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def is_io_error(err: BaseException) -> bool:
    """Errors that libraries raise for failed writes without using ``OSError`` (safetensors'
    Rust I/O errors, torch's stream writer)."""
    text = str(err)
    return any(s in text for s in ("IoError", "No space left", "Permission denied", "failed writing", "Read-only"))


def atomic_folder_write(folder: str | os.PathLike, write: Callable[[str], None], last: tuple[str, ...] = ()) -> None:
    """Call ``write(tmp_dir)`` on a fresh temporary folder beside ``folder``, then move each
    file it wrote into ``folder`` by an atomic rename (files named in ``last`` go last).

    Use it for writers that create several files themselves (``save_pretrained``): every
    file under ``folder`` is then complete, old or new. Other files in ``folder`` are kept.
    """
    folder = Path(folder)
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent)
        write(tmp)
        names = sorted(os.listdir(tmp), key=lambda name: (name in last, last.index(name) if name in last else 0))
        for name in names:
            source = os.path.join(tmp, name)
            if os.path.isdir(source):
                raise ValueError(f"atomic_folder_write moves files only; the writer made a folder {name!r}")
            _fsync(source)
        for name in names:
            os.replace(os.path.join(tmp, name), folder / name)
    except Exception as err:
        if isinstance(err, OSError) or is_io_error(err):
            raise write_error(folder, err) from err
        raise
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike, data) -> None:
    """Write ``data`` as indented JSON, atomically."""

    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, default=json_default)
            handle.write("\n")

    atomic_write(path, _write)


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a NumPy array (``.npy``), atomically."""

    def _write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array)

    atomic_write(path, _write)


def read_json(path: str | os.PathLike):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def json_default(value):
    """How :func:`write_json` writes what JSON has no type for: NumPy numbers and arrays as
    numbers and lists, anything else (paths) as its string."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text, atomically (creating the parent folder)."""

    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    atomic_write(path, _write)


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write several arrays to one compressed ``.npz``, atomically."""

    def _write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    atomic_write(path, _write)
