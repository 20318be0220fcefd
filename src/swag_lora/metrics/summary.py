"""Every scalar metric of one evaluation, from its members' log-probabilities (numpy only)."""

from __future__ import annotations

import numpy as np

from .averaging import as_float64, check_labels, num_choices, predictive_log_probs
from .misclassification import error_detection
from .scores import (
    DEFAULT_ECE_BINS,
    accuracy,
    brier_score,
    expected_calibration_error,
    expected_entropy,
    maximum_calibration_error,
    mutual_information,
    negative_log_likelihood,
    predictive_entropy,
)
from .selective import aurc

__all__ = ["summarise"]


def summarise(member_log_probs, labels, n_bins: int = DEFAULT_ECE_BINS, temperature: float = 1.0) -> dict[str, float]:
    """Every scalar metric of one evaluation, from one averaged predictive p̄ (tempered by
    ``temperature``; expected entropy and mutual information are the members' own): accuracy,
    NLL, ECE, MCE, Brier, entropies, MI, AURC and the AUROCs of detecting wrong answers."""
    lp = as_float64(member_log_probs)
    log_p_bar = predictive_log_probs(lp, temperature)
    p_bar = np.exp(log_p_bar)
    n_c = num_choices(lp)
    return {
        "n_examples": int(lp.shape[0]),
        "n_members": int(lp.shape[1]),
        "ece_bins": int(n_bins),
        "temperature": float(temperature),
        "acc": accuracy(p_bar, labels),
        "nll": negative_log_likelihood(log_p_bar, labels),
        "ece": expected_calibration_error(p_bar, labels, n_bins),
        "mce": maximum_calibration_error(p_bar, labels, n_bins),
        "brier": brier_score(p_bar, labels),
        "entropy": float(predictive_entropy(p_bar, n_c).mean()),
        "expected_entropy": float(expected_entropy(lp, n_c).mean()),
        "mutual_information": float(mutual_information(lp, n_c).mean()),
        "aurc": aurc(p_bar.max(axis=1), p_bar.argmax(axis=1) == check_labels(labels, lp.shape[0])),
        **error_detection(lp, labels, temperature),
    }
