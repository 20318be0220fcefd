"""Sample-count study: NLL and ECE of SWAG's model average against the number of samples S,
for i.i.d. and antithetic draws, over several independent replicates.

Each replicate draws S_max samples once (seed ``seed + r``) and scores them once; the curve
at S uses the first S of them (nested samples), so no forward pass is repeated per S, and a
saved SWAG evaluation with the same run, questions, scale and seed is reused when it holds
at least S_max members. Antithetic curves have even S only (whole pairs θ̄ ± δ).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import metrics as M
from ..bayes.names import method_label
from ..bayes.predictive import swag_samples
from ..bayes.sampling import SamplingOptions
from ..errors import InvalidSettingError
from ..files import write_json, write_npy
from .store import SavedOrComputed

__all__ = ["STUDY_FILE", "STUDY_FOLDER", "nested_metrics", "run_sample_study", "summarise_curves",
           "write_sample_study"]

STUDY_FILE = "sample_study.json"
STUDY_FOLDER = "sample-study"


def nested_metrics(log_probs, labels, s_values, ece_bins: int = M.DEFAULT_ECE_BINS) -> dict[str, list[float]]:
    """NLL, ECE and accuracy of the average of the first S members, for every S in ``s_values``."""
    lp = np.asarray(log_probs, dtype=np.float64)
    out = {"nll": [], "ece": [], "acc": []}
    for s in s_values:
        log_p_bar = M.average_log_probs(lp[:, :s])
        p_bar = np.exp(log_p_bar)
        out["nll"].append(M.negative_log_likelihood(log_p_bar, labels))
        out["ece"].append(M.expected_calibration_error(p_bar, labels, ece_bins))
        out["acc"].append(M.accuracy(p_bar, labels))
    return out


def run_sample_study(
    run,
    data,
    max_samples: int = 30,
    replicates: int = 3,
    scale: float = 1.0,
    seed: int = 0,
    diag_only: bool = False,
    ece_bins: int = M.DEFAULT_ECE_BINS,
    batch_size: int = 16,
    progress: bool = False,
    saved_root: str | os.PathLike | None = None,
) -> tuple[dict, dict[str, np.ndarray]]:
    """The study on prepared ``data`` for ``run``'s posterior: the summary (curves per
    replicate) and the [N, S_max, C] log-probabilities of every replicate, by file stem."""
    if max_samples < 2:
        raise InvalidSettingError(f"the sample study needs max_samples >= 2, got {max_samples}")
    if replicates < 1:
        raise InvalidSettingError(f"the sample study needs at least one replicate, got {replicates}")
    labels = data.labels
    n_anti = max_samples - max_samples % 2
    kinds = {"iid": (False, max_samples, list(range(1, max_samples + 1))),
             "antithetic": (True, n_anti, list(range(2, n_anti + 1, 2)))}
    study = {"run": str(run.path), "task": data.task, "split": data.split, "n_examples": len(labels),
             "scale": scale, "diag_only": diag_only, "max_samples": max_samples, "replicates": replicates,
             "seeds": [seed + r for r in range(replicates)], "ece_bins": ece_bins, "reused": 0}
    arrays = {}
    name = "swag-diag" if diag_only else "swag"
    for kind, (antithetic, n, s_values) in kinds.items():
        curves = {"s": s_values, "nll": [], "ece": [], "acc": []}
        for r in range(replicates):
            options = SamplingOptions(n_samples=n, scale=scale, seed=seed + r, antithetic=antithetic,
                                      diag_only=diag_only)
            method = swag_samples(run.posterior, options, name)
            source = SavedOrComputed(method, run.path, method_label(name, scale, antithetic), [saved_root])
            lp = source.log_probs(run.model, data.features, data.collator, batch_size, progress)
            study["reused"] += source.reused
            arrays[f"{kind}_seed{seed + r}"] = lp
            for key, values in nested_metrics(lp, labels, s_values, ece_bins).items():
                curves[key].append(values)
        study[kind] = curves
    return study, arrays


def write_sample_study(folder: str | os.PathLike, study: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write the study's JSON and its log-probability arrays into ``folder``."""
    folder = Path(folder)
    for stem, array in arrays.items():
        write_npy(folder / f"{stem}.npy", array.astype(np.float32))
    write_json(folder / STUDY_FILE, study)
    return folder / STUDY_FILE


def summarise_curves(curves: dict, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S values, mean and sample std (0 with one replicate) over replicates of ``key``."""
    values = np.asarray(curves[key], dtype=np.float64)
    std = values.std(axis=0, ddof=1) if values.shape[0] > 1 else np.zeros(values.shape[1])
    return np.asarray(curves["s"]), values.mean(axis=0), std
