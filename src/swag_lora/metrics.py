"""Predictive metrics as pure functions on arrays (no model, no torch required).

Conventions, used by every function here:

* ``member_log_probs`` has shape [N, S, C]: per example, per posterior member (sample,
  ensemble member, dropout pass) the log-probabilities over C choice slots. Questions with
  fewer choices than C have ``-inf`` in the absent slots.
* The Bayesian model average is ``log p̄ = log (1/S) Σ_s p_s``, computed in float64 with a
  log-sum-exp (:func:`average_log_probs`); every metric of one evaluation uses that one p̄.
* A temperature T recalibrates the averaged predictive: softmax(log p̄ / T)
  (:func:`temper`). It changes every metric of p̄ (accuracy only through ties); the members'
  own disagreement (expected entropy, mutual information) is reported untempered.
* ECE/MCE use ``n_bins`` equal-width confidence bins (default 15) that are closed on the
  right: bin b holds confidences in ((b−1)/B, b/B], and the first bin also holds 0, so a
  confidence of exactly 1 is in the last bin.
"""

from __future__ import annotations

import numpy as np

from .selective import aurc

DEFAULT_ECE_BINS = 15


def _as_f64(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _labels(labels, n: int) -> np.ndarray:
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if labels.shape[0] != n:
        raise ValueError(f"{labels.shape[0]} labels for {n} examples")
    return labels


def average_log_probs(member_log_probs) -> np.ndarray:
    """log p̄ [N, C] = log of the mean over members of p, in float64 (log-mean-exp over axis 1)."""
    lp = _as_f64(member_log_probs)
    if lp.ndim != 3:
        raise ValueError(f"member_log_probs must have shape [N, S, C], got {lp.shape}")
    top = lp.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return (np.log(np.exp(lp - top).mean(axis=1)) + top[:, 0, :])


def temper(log_probs, temperature: float = 1.0) -> np.ndarray:
    """log softmax(log_probs / T) over the last axis in float64; −inf (absent choices) stays −inf."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    lp = _as_f64(log_probs)
    if temperature == 1.0:
        return lp
    z = lp / temperature
    top = np.max(z, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return z - top - np.log(np.exp(z - top).sum(axis=-1, keepdims=True))


def predictive_log_probs(member_log_probs, temperature: float = 1.0) -> np.ndarray:
    """log p̄ [N, C] of a method: the log-mean-exp over members, then its temperature."""
    return temper(average_log_probs(member_log_probs), temperature)


def accuracy(probs, labels) -> float:
    """Fraction of examples whose most probable choice is the label (ties: lowest index)."""
    p = _as_f64(probs)
    y = _labels(labels, p.shape[0])
    return float((p.argmax(axis=1) == y).mean())


def negative_log_likelihood(log_probs, labels) -> float:
    """−mean log p̄(y), from log-probabilities (so no probability is clipped)."""
    lp = _as_f64(log_probs)
    y = _labels(labels, lp.shape[0])
    return float(-lp[np.arange(lp.shape[0]), y].mean())


def brier_score(probs, labels) -> float:
    """mean over examples of Σ_c (p_c − 1[c = y])² (summed over classes, not averaged)."""
    p = _as_f64(probs)
    y = _labels(labels, p.shape[0])
    onehot = np.zeros_like(p)
    onehot[np.arange(p.shape[0]), y] = 1.0
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def confidence_bins(confidences, n_bins: int = DEFAULT_ECE_BINS) -> np.ndarray:
    """Bin index of each confidence: bins ((b−1)/B, b/B], with 0 in the first bin."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    conf = _as_f64(confidences)
    inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return np.searchsorted(inner_edges, conf, side="left")


def reliability(probs, labels, n_bins: int = DEFAULT_ECE_BINS) -> dict[str, np.ndarray]:
    """Per-bin counts, mean confidence and accuracy (NaN for empty bins), for plots and ECE."""
    p = _as_f64(probs)
    y = _labels(labels, p.shape[0])
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


def num_choices(log_probs) -> np.ndarray:
    """Number of present choices per example (slots that are not −inf), shape [N]."""
    lp = _as_f64(log_probs)
    if lp.ndim == 3:
        lp = lp[:, 0, :]
    return np.isfinite(lp).sum(axis=-1)


def predictive_entropy(probs, n_choices=None) -> np.ndarray:
    """H[p̄] per example, in nats; divided by log C_i when ``n_choices`` (shape [N]) is given."""
    h = _entropy(_as_f64(probs))
    if n_choices is not None:
        h = h / np.log(np.maximum(np.asarray(n_choices, dtype=np.float64), 2.0))
    return h


def expected_entropy(member_log_probs, n_choices=None) -> np.ndarray:
    """E_s H[p_s] per example (the aleatoric part), optionally divided by log C_i."""
    h = _entropy(np.exp(_as_f64(member_log_probs))).mean(axis=1)
    if n_choices is not None:
        h = h / np.log(np.maximum(np.asarray(n_choices, dtype=np.float64), 2.0))
    return h


def mutual_information(member_log_probs, n_choices=None) -> np.ndarray:
    """H[p̄] − E_s H[p_s] per example (≥ 0; identically 0 for a single member)."""
    lp = _as_f64(member_log_probs)
    p_bar = np.exp(average_log_probs(lp))
    mi = predictive_entropy(p_bar, n_choices) - expected_entropy(lp, n_choices)
    return np.maximum(mi, 0.0)


def summarise(member_log_probs, labels, n_bins: int = DEFAULT_ECE_BINS, temperature: float = 1.0) -> dict[str, float]:
    """Every scalar metric of one evaluation, from one averaged predictive p̄ (tempered by
    ``temperature``; expected entropy and mutual information are the members' own)."""
    lp = _as_f64(member_log_probs)
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
        "aurc": aurc(p_bar.max(axis=1), p_bar.argmax(axis=1) == _labels(labels, lp.shape[0])),
    }


def _counts_at_thresholds(scores_in, scores_out) -> tuple[np.ndarray, np.ndarray, int, int]:
    """True and false positives (OOD positive) at every distinct score threshold, highest
    first; tied scores are admitted together. Also returns n_out and n_in."""
    s_in, s_out = _as_f64(scores_in).ravel(), _as_f64(scores_out).ravel()
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
    lp = _as_f64(member_log_probs)
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
