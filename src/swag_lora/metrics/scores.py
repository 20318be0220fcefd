"""Scalar metrics of an averaged predictive p̄ (numpy only): accuracy, NLL, Brier, ECE/MCE
and the reliability table behind them, predictive and expected entropy, mutual information,
(:mod:`.summary` computes all of them from one evaluation's members).

* A temperature changes every metric of p̄ (accuracy only through ties); the members' own
  disagreement (expected entropy, mutual information) is reported untempered.
* ECE/MCE use ``n_bins`` equal-width confidence bins (default 15) that are closed on the
  right: bin b holds confidences in ((b−1)/B, b/B], and the first bin also holds 0, so a
  confidence of exactly 1 is in the last bin.
"""

from __future__ import annotations

import numpy as np

from .averaging import as_float64, average_log_probs, check_labels

__all__ = [
    "DEFAULT_ECE_BINS",
    "accuracy",
    "brier_score",
    "confidence_bins",
    "expected_calibration_error",
    "expected_entropy",
    "maximum_calibration_error",
    "mutual_information",
    "negative_log_likelihood",
    "predictive_entropy",
    "reliability",
]

DEFAULT_ECE_BINS = 15


def accuracy(probs, labels) -> float:
    """Fraction of examples whose most probable choice is the label (ties: lowest index)."""
    p = as_float64(probs)
    y = check_labels(labels, p.shape[0])
    return float((p.argmax(axis=1) == y).mean())


def negative_log_likelihood(log_probs, labels) -> float:
    """−mean log p̄(y), from log-probabilities (so no probability is clipped)."""
    lp = as_float64(log_probs)
    y = check_labels(labels, lp.shape[0])
    return float(-lp[np.arange(lp.shape[0]), y].mean())


def brier_score(probs, labels) -> float:
    """mean over examples of Σ_c (p_c − 1[c = y])² (summed over classes, not averaged)."""
    p = as_float64(probs)
    y = check_labels(labels, p.shape[0])
    onehot = np.zeros_like(p)
    onehot[np.arange(p.shape[0]), y] = 1.0
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def confidence_bins(confidences, n_bins: int = DEFAULT_ECE_BINS) -> np.ndarray:
    """Bin index of each confidence: bins ((b−1)/B, b/B], with 0 in the first bin."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    conf = as_float64(confidences)
    inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return np.searchsorted(inner_edges, conf, side="left")


def reliability(probs, labels, n_bins: int = DEFAULT_ECE_BINS) -> dict[str, np.ndarray]:
    """Per-bin counts, mean confidence and accuracy (NaN for empty bins), for plots and ECE."""
    p = as_float64(probs)
    y = check_labels(labels, p.shape[0])
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    idx = confidence_bins(conf, n_bins)
    counts = np.bincount(idx, minlength=n_bins).astype(np.float64)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "count": counts,
            "confidence": conf_sum / counts,
            "accuracy": acc_sum / counts,
            "edges": np.linspace(0.0, 1.0, n_bins + 1),
        }


def expected_calibration_error(probs, labels, n_bins: int = DEFAULT_ECE_BINS) -> float:
    """ECE = Σ_b (n_b / N) · |acc_b − conf_b| over equal-width confidence bins."""
    r = reliability(probs, labels, n_bins)
    filled = r["count"] > 0
    gaps = np.abs(r["accuracy"][filled] - r["confidence"][filled])
    return float((r["count"][filled] / r["count"].sum() * gaps).sum())


def maximum_calibration_error(probs, labels, n_bins: int = DEFAULT_ECE_BINS) -> float:
    """MCE = max over non-empty bins of |acc_b − conf_b|."""
    r = reliability(probs, labels, n_bins)
    filled = r["count"] > 0
    return float(np.abs(r["accuracy"][filled] - r["confidence"][filled]).max())


def _entropy(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=-1)


def predictive_entropy(probs, n_choices=None) -> np.ndarray:
    """H[p̄] per example, in nats; divided by log C_i when ``n_choices`` (shape [N]) is given."""
    h = _entropy(as_float64(probs))
    if n_choices is not None:
        h = h / np.log(np.maximum(np.asarray(n_choices, dtype=np.float64), 2.0))
    return h


def expected_entropy(member_log_probs, n_choices=None) -> np.ndarray:
    """E_s H[p_s] per example (the aleatoric part), optionally divided by log C_i."""
    h = _entropy(np.exp(as_float64(member_log_probs))).mean(axis=1)
    if n_choices is not None:
        h = h / np.log(np.maximum(np.asarray(n_choices, dtype=np.float64), 2.0))
    return h


def mutual_information(member_log_probs, n_choices=None) -> np.ndarray:
    """H[p̄] − E_s H[p_s] per example (≥ 0; identically 0 for a single member)."""
    lp = as_float64(member_log_probs)
    p_bar = np.exp(average_log_probs(lp))
    mi = predictive_entropy(p_bar, n_choices) - expected_entropy(lp, n_choices)
    return np.maximum(mi, 0.0)
