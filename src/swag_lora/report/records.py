"""Saved evaluations as report input: find every ``metrics.json`` under some paths, group the
records per dataset and method, load their arrays, and the OOD-detection entries.

Each ``metrics.json`` sits beside its ``log_probs.npy`` and ``labels.npy``. Records of the same
(task, split, method) from several runs (seeds) are grouped together. A method's temperature
(``metrics.json``) is applied to its averaged predictive wherever p̄ is used.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .. import metrics as M
from ..evaluation.store import load_evaluation
from ..files import read_json
from .format import method_order

__all__ = ["by_dataset", "find_records", "load_arrays", "ood_records", "pooled_predictive"]


def find_records(paths) -> list[dict]:
    """Every ``metrics.json`` under the given paths, each with ``_folder`` set to its folder."""
    records = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        files = [path] if path.is_file() else sorted(path.rglob("metrics.json"))
        for file in files:
            record = read_json(file)
            record["_folder"] = str(file.parent)
            records.append(record)
    if not records:
        raise FileNotFoundError(f"no metrics.json found under {', '.join(map(str, paths))}: run `swag-lora evaluate` first")
    return records


def _group(records):
    groups = defaultdict(list)
    for r in records:
        groups[(r["task"], r["split"], r["method"])].append(r)
    return groups


def by_dataset(records) -> list[tuple[tuple[str, str], list[tuple[str, list[dict]]]]]:
    """Records grouped per (task, split), sorted; within each, (method, records) in report order."""
    by_data = defaultdict(list)
    for (task, split, method), recs in _group(records).items():
        by_data[(task, split)].append((method, recs))
    return [(key, sorted(entries, key=lambda e: method_order(e[0]))) for key, entries in sorted(by_data.items())]


def load_arrays(record) -> tuple[np.ndarray, np.ndarray]:
    """The [N, S, C] log-probabilities and labels saved beside a record."""
    return load_evaluation(record["_folder"])


def pooled_predictive(recs):
    probs, labels = [], []
    for r in recs:
        lp, y = load_arrays(r)
        probs.append(np.exp(M.predictive_log_probs(lp, r.get("temperature", 1.0))))
        labels.append(y)
    width = max(p.shape[1] for p in probs)
    probs = [np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in probs]
    return np.concatenate(probs), np.concatenate(labels)


def ood_records(records) -> list[dict]:
    """For each OOD record with an in-distribution record of the same run and method: AUROC/AUPR
    from normalised predictive entropy and from mutual information (None for single members),
    and the per-example scores for ROC curves. The in-distribution record is the one named by
    the OOD record's ``ood_reference`` when present, else the first of the same run and method."""
    in_dist = defaultdict(list)
    for r in records:
        if not r.get("ood"):
            in_dist[(r["run"], r["method"])].append(r)
    out = []
    for r in records:
        candidates = in_dist.get((r["run"], r["method"])) if r.get("ood") else None
        if not candidates:
            continue
        wanted = r.get("ood_reference") or {}
        matching = [c for c in candidates if c["task"] == wanted.get("task") and c["split"] == wanted.get("split")]
        ref = (matching or candidates)[0]
        lp_in, _ = load_arrays(ref)
        lp_out, _ = load_arrays(r)
        t_in, t_out = ref.get("temperature", 1.0), r.get("temperature", 1.0)
        entry = M.ood_detection(lp_in, lp_out, t_in, t_out)
        s_in, s_out = M.uncertainty_scores(lp_in, t_in), M.uncertainty_scores(lp_out, t_out)
        entry.update(run=r["run"], method=r["method"], in_task=ref["task"], ood_task=r["task"],
                     _scores={k: (s_in[k], s_out[k]) if s_in[k] is not None else None for k in ("entropy", "mi")})
        out.append(entry)
    return out
