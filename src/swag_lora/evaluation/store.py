"""Evaluation files on disk, and reuse of saved per-member log-probabilities.

One evaluation is a folder ``ROOT/TASK/SPLIT/LABEL/`` holding ``metrics.json`` (the record),
``log_probs.npy`` [N, S, C], ``labels.npy`` [N] and ``ids.json`` (question ids in row order).
A method that needs a run's MAP or SWAG log-probabilities (ensemble, MultiSWAG, the
sample-count study) takes them from such a folder when the run, the question ids and every
sampling setting match, with no forward pass; otherwise it computes them.

An evaluation run again with ``resume`` (``swag-lora evaluate --resume``, the benchmark's
units) takes every (method, dataset) already written from its folder when
:func:`find_finished_evaluation` says it is this very evaluation: the same run directory with
the same ``run_config.json`` (its digest), the same questions in the same order, and the same
method, settings and sampling options.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..files import json_default, read_json, write_json, write_npy

__all__ = ["MATCHED_SETTINGS", "SavedOrComputed", "file_digest", "find_finished_evaluation", "find_saved_log_probs",
           "load_evaluation", "write_evaluation"]

# Settings that must be equal for saved members to be the members asked for.
MATCHED_SETTINGS = ("scale", "seed", "diag_only", "antithetic", "dropout")


def write_evaluation(folder: str | os.PathLike, record: dict, log_probs: np.ndarray, labels, ids) -> None:
    """Write one evaluation's four files (each atomically; ``metrics.json`` last)."""
    folder = Path(folder)
    write_npy(folder / "log_probs.npy", np.asarray(log_probs, dtype=np.float32))
    write_npy(folder / "labels.npy", np.asarray(labels, dtype=np.int64))
    write_json(folder / "ids.json", list(ids))
    write_json(folder / "metrics.json", record)


def load_evaluation(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The [N, S, C] log-probabilities and [N] labels of one saved evaluation."""
    folder = Path(folder)
    return np.load(folder / "log_probs.npy"), np.load(folder / "labels.npy")


def file_digest(path: str | os.PathLike) -> str:
    """``sha256:HEX`` of a file's bytes (a run's ``run_config.json``: another training run in the
    same directory has another digest, its provenance and timings differ)."""
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _as_json(value):
    return json.loads(json.dumps(value, default=json_default))


def find_finished_evaluation(folder: str | os.PathLike, ids: list, expected: dict) -> tuple[dict, np.ndarray] | None:
    """The record and [N, S, C] log-probabilities written in ``folder`` (see
    :func:`write_evaluation`) when it holds the evaluation described: question ids ``ids`` in
    the same order, and for every key of ``expected`` the same value as the record's (compared
    as JSON, so tuples equal lists). ``None`` when the folder is missing, unreadable, unfinished
    (``metrics.json`` is written last) or describes anything else."""
    folder = Path(folder)
    if any(i is None for i in ids):
        return None
    try:
        record = read_json(folder / "metrics.json")
        if read_json(folder / "ids.json") != list(ids):
            return None
        want = _as_json(expected)
        if any(k not in record or record[k] != v for k, v in want.items()):
            return None
        log_probs = np.load(folder / "log_probs.npy")
    except (OSError, ValueError):
        return None
    if log_probs.shape[0] != len(ids):
        return None
    return record, log_probs


def _same_path(a, b) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return str(a) == str(b)


def find_saved_log_probs(
    root: str | os.PathLike,
    label: str,
    run_path,
    ids: list,
    n_members: int,
    settings: dict,
) -> np.ndarray | None:
    """The first ``n_members`` members of a saved evaluation under ``root`` of method folder
    ``label`` for run ``run_path`` on exactly the questions ``ids`` (same order), whose record
    has the same value for every key of ``settings`` that is in :data:`MATCHED_SETTINGS` (a
    missing key counts as its default: False, or None for ``dropout``), temperature 1 and at
    least ``n_members`` members; None when there is none. Members are nested (the first S of
    a seed are the same for every S), so a prefix of a longer evaluation is the same draw."""
    root = Path(root)
    if not root.is_dir() or any(i is None for i in ids):
        return None
    for ids_file in sorted(root.glob(f"*/*/{label}/ids.json")):
        folder = ids_file.parent
        try:
            if read_json(ids_file) != list(ids):
                continue
            record = read_json(folder / "metrics.json")
        except (OSError, ValueError):
            continue
        if not _same_path(record.get("run", ""), run_path) or record.get("n_members", 0) < n_members:
            continue
        if record.get("temperature", 1.0) != 1.0:
            continue
        defaults = {"diag_only": False, "antithetic": False, "dropout": None}
        if any(record.get(k, defaults.get(k)) != v for k, v in settings.items() if k in MATCHED_SETTINGS):
            continue
        log_probs = np.load(folder / "log_probs.npy")
        return log_probs[:, :n_members]
    return None


class SavedOrComputed:
    """A run's predictive that first looks for its saved log-probabilities (see
    :func:`find_saved_log_probs`) and computes them only when none match.

    ``features`` must carry an ``id`` per question for a lookup; ``reused`` counts the
    datasets served from disk.
    """

    def __init__(self, inner, run_path, label: str, roots: list):
        self.inner = inner
        self.run_path = run_path
        self.label = label
        self.roots = [Path(r) for r in roots if r is not None]
        self.reused = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def settings(self) -> dict:
        return self.inner.settings

    def log_probs(self, model, features, collator, batch_size: int = 16, progress: bool = False) -> np.ndarray:
        ids = [f.get("id") for f in features]
        n = int(self.settings.get("n_samples", 1))
        for root in self.roots:
            saved = find_saved_log_probs(root, self.label, self.run_path, ids, n, self.settings)
            if saved is not None and np.isneginf(saved[:, :, collator.n_slots:]).all():
                self.reused += 1
                width = collator.n_slots - saved.shape[2]
                if width > 0:
                    saved = np.pad(saved, ((0, 0), (0, 0), (0, width)), constant_values=-np.inf)
                return saved[:, :, : collator.n_slots]
        return self.inner.log_probs(model, features, collator, batch_size, progress)
