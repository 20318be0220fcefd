"""Paired bootstrap confidence intervals for differences between two methods on the same questions.

With a few hundred test questions, a point of accuracy is within noise; comparing two
methods on the *same* questions (and the same seeds) and resampling questions jointly
gives much tighter, honest intervals than comparing two separate error bars.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .scores import accuracy, brier_score, expected_calibration_error, negative_log_likelihood

__all__ = ["METRIC_FUNCTIONS", "paired_bootstrap"]

MetricFn = Callable[[np.ndarray, np.ndarray], float]

METRIC_FUNCTIONS: dict[str, MetricFn] = {
    "acc": accuracy,
    "nll": lambda p, y: negative_log_likelihood(np.log(np.clip(p, 1e-300, None)), y),
    "ece": expected_calibration_error,
    "brier": brier_score,
}


def paired_bootstrap(
    probs_a,
    probs_b,
    labels,
    metric: str | MetricFn,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    b_weight: float = 1.0,
) -> dict[str, float]:
    """Difference ``metric(a) − b_weight · metric(b)`` with a percentile bootstrap interval
    (``b_weight`` 0.5 asks "is a's metric below half of b's?").

    ``probs_a`` and ``probs_b`` are averaged predictives of shape [N, C], or [R, N, C] for R
    runs (seeds) evaluated on the same N questions; the metric is averaged over runs. Each
    bootstrap replicate draws N question indices with replacement and applies them to
    both methods and every run, so the pairing is kept.
    """
    fn = METRIC_FUNCTIONS[metric] if isinstance(metric, str) else metric
    a = np.asarray(probs_a, dtype=np.float64)
    b = np.asarray(probs_b, dtype=np.float64)
    a = a[None] if a.ndim == 2 else a
    b = b[None] if b.ndim == 2 else b
    y = np.asarray(labels)
    if a.shape[1] != y.shape[0] or b.shape[1] != y.shape[0]:
        raise ValueError(f"predictives cover {a.shape[1]} and {b.shape[1]} questions but there are {y.shape[0]} labels")

    def diff(idx: np.ndarray) -> float:
        return float(np.mean([fn(r[idx], y[idx]) for r in a]) - b_weight * np.mean([fn(r[idx], y[idx]) for r in b]))

    n = y.shape[0]
    point = diff(np.arange(n))
    rng = np.random.default_rng(seed)
    reps = np.array([diff(rng.integers(0, n, size=n)) for _ in range(n_boot)])
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(reps, [tail, 1 - tail])
    return {"diff": point, "lo": float(lo), "hi": float(hi), "n_boot": n_boot, "confidence": confidence}
