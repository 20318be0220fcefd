"""Telling wrong answers from right ones by a method's uncertainty (numpy only).

A temperature keeps each question's order of choices and nearly the order of confidences
across questions, so it can barely change these numbers: they show whether a posterior adds
information about which answers to trust. Wrong answers are the positive class and a higher
score means "more likely wrong"; AUROC is P(score_wrong > score_right) + ½ P(tie), 0.5 for a
score that knows nothing.
"""

from __future__ import annotations

import numpy as np

from .averaging import as_float64, check_labels, num_choices, predictive_log_probs
from .ood import auroc
from .scores import mutual_information, predictive_entropy

__all__ = ["ERROR_SCORES", "error_detection", "error_detection_auroc"]

ERROR_SCORES = ("confidence", "entropy", "mi")


def error_detection_auroc(uncertainty, correct) -> float | None:
    """AUROC of ``uncertainty`` (higher: less sure) for telling wrong answers (positive) from
    right ones; ``None`` when all answers are right or all wrong."""
    u = as_float64(uncertainty).reshape(-1)
    c = np.asarray(correct, dtype=bool).reshape(-1)
    if c.all() or not c.any():
        return None
    return auroc(u[c], u[~c])


def error_detection(member_log_probs, labels, temperature: float = 1.0) -> dict[str, float | None]:
    """``auroc_err_confidence`` (score: 1 − max p̄), ``auroc_err_entropy`` (entropy of p̄ over
    log C) and ``auroc_err_mi`` (mutual information over log C; ``None`` for one member, where it
    is identically 0), from the tempered p̄ of the members."""
    lp = as_float64(member_log_probs)
    p_bar = np.exp(predictive_log_probs(lp, temperature))
    correct = p_bar.argmax(axis=1) == check_labels(labels, lp.shape[0])
    n_c = num_choices(lp)
    scores = {"confidence": -p_bar.max(axis=1), "entropy": predictive_entropy(p_bar, n_c),
              "mi": mutual_information(lp, n_c) if lp.shape[1] > 1 else None}
    return {f"auroc_err_{k}": None if v is None else error_detection_auroc(v, correct) for k, v in scores.items()}
