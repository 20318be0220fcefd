"""Paired bootstrap confidence intervals for differences between two methods on the same questions.

With a few hundred test questions, a point of accuracy is within noise; comparing two
methods on the *same* questions (and the same seeds) and resampling questions jointly
gives much tighter, honest intervals than comparing two separate error bars.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .misclassification import error_detection_auroc
from .scores import (
    accuracy,
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
    predictive_entropy,
)
from .selective import aurc

__all__ = ["METRIC_FUNCTIONS", "NEEDS_MI", "paired_bootstrap"]

MetricFn = Callable[[np.ndarray, np.ndarray], float]

def _correct(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    return p.argmax(axis=1) == y


def _nan(value):
    return np.nan if value is None else value


METRIC_FUNCTIONS: dict[str, MetricFn] = {
    "acc": accuracy,
    "nll": lambda p, y: negative_log_likelihood(np.log(np.clip(p, 1e-300, None)), y),
    "ece": expected_calibration_error,
    "brier": brier_score,
    "aurc": lambda p, y: aurc(p.max(axis=1), _correct(p, y)),
    "auroc_err_confidence": lambda p, y: _nan(error_detection_auroc(-p.max(axis=1), _correct(p, y))),
    "auroc_err_entropy": lambda p, y: _nan(error_detection_auroc(predictive_entropy(p, np.maximum((p > 0).sum(1), 2)),
                                                                 _correct(p, y))),
    # the last column holds the per-question mutual information (see NEEDS_MI)
    "auroc_err_mi": lambda x, y: _nan(error_detection_auroc(x[:, -1], _correct(x[:, :-1], y))),
}
NEEDS_MI = ("auroc_err_mi",)  # metrics whose predictives carry the mutual information as a last column


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
    lo, hi = np.nanquantile(reps, [tail, 1 - tail])  # NaN: a resample where a metric is undefined
    return {"diff": point, "lo": float(lo), "hi": float(hi), "n_boot": n_boot, "confidence": confidence}
