"""One writer at a time per run directory: an exclusive lock held while a command writes into it.

``swag-lora train`` holds the lock of its output directory for the whole run, and ``evaluate``
the lock of the folder it writes results into (the run directory when that is ``RUN/eval``).
The lock is an ``flock`` on ``.swag-lora.lock`` inside the folder: the operating system
releases it when the process ends, also on a crash or a kill, so a stale lock never blocks
anyone. The file records who holds it (PID, host, command, since when), and a second writer is
refused with a message that says so. Taking the lock also proves, before any work is done, that
the folder can be written.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import SwagLoraError
from .layout import EVAL_DIR, RUN_CONFIG

__all__ = ["LOCK_FILE", "RunLockedError", "UnwritableFolderError", "lock_folder_for", "run_lock"]

LOCK_FILE = ".swag-lora.lock"
_HELD: dict[str, tuple[int, int]] = {}  # folder -> (file descriptor, depth): re-entrant within a process


class RunLockedError(SwagLoraError, RuntimeError):
    """Another process is writing into the same run directory."""


class UnwritableFolderError(SwagLoraError, PermissionError):
    """The folder results would be written to cannot be written (read-only, no permission)."""


def lock_folder_for(root: str | os.PathLike) -> Path:
    """The folder whose lock guards writing into ``root``: the run directory for ``RUN/eval``,
    else ``root`` itself."""
    root = Path(root)
    if root.name == EVAL_DIR and (root.parent / RUN_CONFIG).is_file():
        return root.parent
    return root


def _holder(path: Path) -> str:
    for _ in range(20):  # the holder writes its details right after taking the lock
        try:
            info = json.loads(path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            info = None
        if info:
            return f"PID {info.get('pid')} on host {info.get('host')} ({info.get('command')}, since {info.get('since')})"
        time.sleep(0.05)
    return "another process"


@contextmanager
def run_lock(folder: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (created if missing) for the ``with`` block.

    Raises :class:`RunLockedError` naming the holder when another process has it, and
    :class:`UnwritableFolderError` when the folder cannot be written. Re-entrant within one
    process (the same folder locked again by nested blocks)."""
    folder = Path(folder).resolve()
    key = str(folder)
    if key in _HELD:
        fd, depth = _HELD[key]
        _HELD[key] = (fd, depth + 1)
        try:
            yield folder
        finally:
            fd, depth = _HELD[key]
            _HELD[key] = (fd, depth - 1)
        return
    path = folder / LOCK_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise UnwritableFolderError(
                f"cannot write into {folder}: {err.strerror}; write the results elsewhere (--output_dir)"
            ) from err
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunLockedError(
            f"{folder} is in use by {_holder(path)}: wait for it to finish, or choose another output folder"
        ) from None
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        _HELD[key] = (fd, 1)
        yield folder
    finally:
        _HELD.pop(key, None)
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)  # releases the lock
