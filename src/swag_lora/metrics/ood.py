"""Out-of-distribution detection from a method's uncertainty (numpy only).

OOD questions are the positive class and a higher score means "more likely OOD". The scores
are the predictive entropy of p̄ divided by log C_i (questions may differ in their number of
choices) and the mutual information between the answer and the posterior member. AUROC is
P(score_out > score_in) + ½ P(tie); AUPR is average precision, whose chance level is the base
rate n_out / (n_in + n_out).
"""

from __future__ import annotations

import numpy as np

from .averaging import as_float64, num_choices, predictive_log_probs
from .scores import mutual_information, predictive_entropy

__all__ = ["auroc", "average_precision", "ood_detection", "roc_curve", "uncertainty_scores"]


def _counts_at_thresholds(scores_in, scores_out) -> tuple[np.ndarray, np.ndarray, int, int]:
    """True and false positives (OOD positive) at every distinct score threshold, highest
    first; tied scores are admitted together. Also returns n_out and n_in."""
    s_in, s_out = as_float64(scores_in).ravel(), as_float64(scores_out).ravel()
    scores = np.concatenate([s_out, s_in])
    positive = np.concatenate([np.ones(len(s_out)), np.zeros(len(s_in))])
    order = np.argsort(-scores, kind="mergesort")
    scores, positive = scores[order], positive[order]
    last_of_tie = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tp = np.cumsum(positive)[last_of_tie]
    fp = np.cumsum(1 - positive)[last_of_tie]
    return tp, fp, len(s_out), len(s_in)


def roc_curve(scores_in, scores_out) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates over all thresholds, OOD as the positive class and a
    higher score meaning "more likely OOD". Starts at (0, 0), ends at (1, 1); ties step together."""
    tp, fp, n_out, n_in = _counts_at_thresholds(scores_in, scores_out)
    return np.r_[0.0, fp / max(n_in, 1)], np.r_[0.0, tp / max(n_out, 1)]


def auroc(scores_in, scores_out) -> float:
    """Area under the ROC curve, OOD positive: P(score_out > score_in) + ½ P(tie)."""
    fpr, tpr = roc_curve(scores_in, scores_out)
    return float(np.trapezoid(tpr, fpr)) if hasattr(np, "trapezoid") else float(np.trapz(tpr, fpr))


def average_precision(scores_in, scores_out) -> float:
    """Average precision (area under precision-recall as a step sum), OOD positive.

    Its chance level is the base rate ``n_out / (n_in + n_out)``."""
    tp, fp, n_out, _ = _counts_at_thresholds(scores_in, scores_out)
    precision = tp / (tp + fp)
    recall = tp / max(n_out, 1)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def uncertainty_scores(member_log_probs, temperature: float = 1.0) -> dict[str, np.ndarray | None]:
    """Per-example OOD scores: ``entropy``, the predictive entropy of p̄ normalised by log C_i,
    and ``mi``, the mutual information (None for a single member, where it is identically 0)."""
    lp = as_float64(member_log_probs)
    n_c = num_choices(lp)
    entropy = predictive_entropy(np.exp(predictive_log_probs(lp, temperature)), n_c)
    mi = mutual_information(lp, n_c) if lp.shape[1] > 1 else None
    return {"entropy": entropy, "mi": mi}


def ood_detection(lp_in, lp_out, temperature_in: float = 1.0, temperature_out: float = 1.0) -> dict:
    """AUROC and AUPR (average precision) of telling OOD from in-distribution examples, OOD as
    the positive class, scored by normalised predictive entropy and by mutual information
    (``None`` for single-member methods), with the base rate n_out / (n_in + n_out)."""
    s_in, s_out = uncertainty_scores(lp_in, temperature_in), uncertainty_scores(lp_out, temperature_out)
    out = {"n_in": int(len(s_in["entropy"])), "n_out": int(len(s_out["entropy"]))}
    out["base_rate"] = out["n_out"] / max(out["n_in"] + out["n_out"], 1)
    for key in ("entropy", "mi"):
        pair = None if s_in[key] is None or s_out[key] is None else (s_in[key], s_out[key])
        out[f"auroc_{key}"] = auroc(*pair) if pair else None
        out[f"aupr_{key}"] = average_precision(*pair) if pair else None
    return out
