"""Trainer checkpoints that are complete or ignored.

A checkpoint folder ``OUTPUT/checkpoint-N`` is *complete* when it holds
``swag_checkpoint.json``, written last and atomically after everything else (adapter,
optimizer, scheduler, RNG and Trainer state, SWAG posterior and SWAG trainer state). The
marker lists every file of the folder with its size. A folder without the marker was cut
off while being written; a folder whose files no longer match it was damaged since. Either
way it is never loaded: resuming picks the newest complete checkpoint, and rotation keeps
complete checkpoints only.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import torch
from safetensors import SafetensorError

from ..errors import SwagLoraError
from ..files import read_json, write_json
from ..tensorfile import load_checked, save_checked

__all__ = [
    "MARKER",
    "TRAINER_STATE_FILE",
    "CheckpointError",
    "describe_resume",
    "incomplete_reason",
    "invalidate",
    "latest_complete",
    "list_checkpoints",
    "mark_complete",
    "read_trainer_state",
    "resolve_resume",
    "rotate",
    "wants_resume",
    "write_trainer_state",
]

MARKER = "swag_checkpoint.json"
TRAINER_STATE_FILE = "swag_trainer_state.safetensors"
TRAINER_STATE_FORMAT = "swag-lora/trainer-state"
MARKER_FORMAT = "swag-lora/checkpoint"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(SwagLoraError, ValueError):
    """No usable checkpoint to resume from, or one that does not fit this run."""


def _files(folder: str) -> dict[str, int]:
    """Every file under ``folder`` (relative path -> size), without the marker and temporaries."""
    found = {}
    for parent, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if name.startswith(".") or (parent == folder and name == MARKER):
                continue
            path = os.path.join(parent, name)
            found[os.path.relpath(path, folder)] = os.path.getsize(path)
    return found


def mark_complete(folder: str | os.PathLike, **info) -> None:
    """Declare ``folder`` complete: write the marker listing its files (call it last)."""
    folder = os.fspath(folder)
    write_json(os.path.join(folder, MARKER), {"format": MARKER_FORMAT, "files": _files(folder), **info})


def invalidate(folder: str | os.PathLike) -> None:
    """Remove the marker of ``folder`` before it is rewritten, so a rewrite cut off midway
    cannot pass for complete."""
    path = os.path.join(os.fspath(folder), MARKER)
    if os.path.exists(path):
        os.remove(path)


def incomplete_reason(folder: str | os.PathLike) -> str | None:
    """``None`` if ``folder`` is a complete checkpoint, else why not (one phrase)."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return "no such folder"
    marker = os.path.join(folder, MARKER)
    if not os.path.isfile(marker):
        return f"no {MARKER}: it was cut off while being written, or not written by swag-lora"
    try:
        meta = read_json(marker)
    except (OSError, ValueError) as err:
        return f"unreadable {MARKER} ({err})"
    if not isinstance(meta, dict) or meta.get("format") != MARKER_FORMAT:
        return f"{MARKER} is not a swag-lora checkpoint marker"
    present = _files(folder)
    for name, size in meta.get("files", {}).items():
        if name not in present:
            return f"{name} is missing"
        if present[name] != size:
            return f"{name} has {present[name]} bytes, {size} when the checkpoint was written"
    return None


def list_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, str]]:
    """``(step, path)`` of every ``checkpoint-N`` folder in ``output_dir``, oldest first."""
    output_dir = os.fspath(output_dir)
    if not os.path.isdir(output_dir):
        return []
    found = []
    for name in os.listdir(output_dir):
        match = _CHECKPOINT.match(name)
        path = os.path.join(output_dir, name)
        if match and os.path.isdir(path):
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_complete(output_dir: str | os.PathLike) -> str | None:
    """The newest complete checkpoint in ``output_dir``, or ``None``."""
    for _, path in reversed(list_checkpoints(output_dir)):
        if incomplete_reason(path) is None:
            return path
    return None


def wants_resume(requested) -> bool:
    """Whether a ``resume_from_checkpoint`` value asks to resume (a path, ``True``, ``"true"``);
    ``None``, ``False`` and ``"false"``/``"no"``/``"0"``/``""`` do not."""
    if requested in (None, False):
        return False
    return not (isinstance(requested, str) and requested.strip().lower() in ("", "false", "0", "no"))


def resolve_resume(output_dir: str | os.PathLike, requested: bool | str) -> str:
    """The checkpoint to resume from: ``True`` (or ``"true"``) means the newest complete one
    in ``output_dir``; a path must be a complete checkpoint. Raises :class:`CheckpointError`
    with the reason otherwise."""
    if requested is True or (isinstance(requested, str) and requested.lower() in ("true", "1", "yes")):
        path = latest_complete(output_dir)
        if path is None:
            skipped = [os.path.basename(p) for _, p in list_checkpoints(output_dir)]
            detail = f" ({', '.join(skipped)} incomplete)" if skipped else ""
            raise CheckpointError(f"--resume_from_checkpoint: no complete checkpoint in {output_dir}{detail}")
        return path
    path = os.fspath(requested)
    reason = incomplete_reason(path)
    if reason is not None:
        newest = latest_complete(os.path.dirname(os.path.abspath(path)))
        hint = f"; the newest complete one is {newest}" if newest else ""
        raise CheckpointError(f"cannot resume from {path}: {reason}{hint}")
    return path


def describe_resume(path: str | os.PathLike) -> str:
    """One line saying which checkpoint a resume uses and which newer ones it passed over, and why."""
    path = os.path.abspath(os.fspath(path))
    chosen = int(_CHECKPOINT.match(os.path.basename(path)).group(1)) if _CHECKPOINT.match(os.path.basename(path)) else -1
    skipped = [f"{os.path.basename(p)} ({incomplete_reason(p)})" for step, p in list_checkpoints(os.path.dirname(path))
               if step > chosen]
    line = f"resuming from {path}"
    if skipped:
        line += "; skipped the newer, incomplete " + ", ".join(skipped)
    return line


def rotate(output_dir: str | os.PathLike, limit: int | None, protect: tuple[str | None, ...] = ()) -> list[str]:
    """Keep the newest ``limit`` complete checkpoints (plus ``protect``ed ones); delete older
    complete ones and every incomplete one older than the newest complete. Returns what was
    deleted. ``limit`` of ``None`` or 0 deletes nothing."""
    if not limit or limit <= 0:
        return []
    checkpoints = list_checkpoints(output_dir)
    complete = [p for _, p in checkpoints if incomplete_reason(p) is None]
    if not complete:
        return []
    keep = {os.path.abspath(p) for p in complete[-limit:]} | {os.path.abspath(p) for p in protect if p}
    newest_step = next(step for step, p in checkpoints if p == complete[-1])
    deleted = []
    for step, path in checkpoints:
        if os.path.abspath(path) in keep or step > newest_step:
            continue
        shutil.rmtree(path, ignore_errors=True)
        deleted.append(path)
    return deleted


# ------------------------------------------------------------------ SWAG trainer state
def write_trainer_state(path: str, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    """The SWAG trainer state of a checkpoint: JSON values as metadata, vectors as tensors."""
    cpu = {k: v.detach().float() for k, v in tensors.items()}
    save_checked(path, cpu, {"format": TRAINER_STATE_FORMAT, "state": json.dumps(meta)})


def read_trainer_state(path: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read what :func:`write_trainer_state` wrote; a missing or damaged file raises
    :class:`CheckpointError`."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path} is missing: the checkpoint has no SWAG trainer state")
    try:
        tensors, metadata = load_checked(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:  # ChecksumMismatchError is a ValueError
        raise CheckpointError(f"cannot read {path}: {err} (truncated or corrupted?)") from err
    if metadata.get("format") != TRAINER_STATE_FORMAT:
        raise CheckpointError(f"{path} is not a swag-lora trainer state")
    return json.loads(metadata["state"]), tensors
