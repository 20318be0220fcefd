"""The Bayesian model average of a method's members, in float64 (numpy only).

``member_log_probs`` has shape [N, S, C]: per example, per posterior member (sample,
ensemble member, dropout pass) the log-probabilities over C choice slots, ``-inf`` in the
slots of choices a question does not have. The model average is
``log p̄ = log (1/S) Σ_s p_s``, a log-sum-exp in float64 (:func:`average_log_probs`); a
temperature T recalibrates it as softmax(log p̄ / T) (:func:`temper`). Every metric of one
evaluation is computed from that one p̄.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_float64", "average_log_probs", "check_labels", "num_choices", "predictive_log_probs", "temper"]


def as_float64(x) -> np.ndarray:
    """``x`` (an array, list or torch tensor) as a float64 numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def check_labels(labels, n: int) -> np.ndarray:
    """``labels`` as a flat int64 array of length ``n`` (a clear error otherwise)."""
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if labels.shape[0] != n:
        raise ValueError(f"{labels.shape[0]} labels for {n} examples")
    return labels


def average_log_probs(member_log_probs) -> np.ndarray:
    """log p̄ [N, C] = log of the mean over members of p, in float64 (log-mean-exp over axis 1)."""
    lp = as_float64(member_log_probs)
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
    lp = as_float64(log_probs)
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


def num_choices(log_probs) -> np.ndarray:
    """Number of present choices per example (slots that are not −inf), shape [N]."""
    lp = as_float64(log_probs)
    if lp.ndim == 3:
        lp = lp[:, 0, :]
    return np.isfinite(lp).sum(axis=-1)
