"""Prediction-rejection curves and the prediction-rejection ratio (PRR) of generated answers.

Pure functions on arrays. Each answer has a *quality* (1/0 correctness, or a token F1 in
[0, 1]) and an *uncertainty* (higher: less sure). Rejecting the k most uncertain answers of N
leaves the N − k most certain; the curve is the mean quality of what is left, for
k = 0, 1, ..., K − 1 rejected with K = ⌊max_rejection · N⌋ (the discretisation of
lm-polygraph's ``PredictionRejectionArea``), and the *area* is its mean over those k.

PRR = (area of the uncertainty − area of random rejection) / (area of the oracle − area of
random rejection) (Malinin et al.; lm-polygraph's headline metric): 1 is the oracle's order
(best answers kept longest), 0 is random. Random rejection's area is computed exactly: every
retained subset of a random order has expected mean quality equal to the overall mean, so it is
the mean quality. The oracle rejects the lowest qualities first.

Tied uncertainties count as the mean over their orders (as in :mod:`.selective`), so results do
not depend on input order. With 0/1 quality and ``max_rejection=1`` the area is exactly
1 − AURC of the same ranking.
"""

from __future__ import annotations

import math

import numpy as np

from .selective import expected_prefix_sums

__all__ = ["DEFAULT_REJECTION_RANGES", "prediction_rejection_ratio", "rejection_area", "rejection_curve"]

DEFAULT_REJECTION_RANGES = (1.0, 0.5)  # the full range, and up to half rejected as lm-polygraph also reports


def _arrays(uncertainty, quality) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(uncertainty, dtype=np.float64).reshape(-1)
    q = np.asarray(quality, dtype=np.float64).reshape(-1)
    if u.shape != q.shape:
        raise ValueError(f"{u.shape[0]} uncertainties for {q.shape[0]} qualities")
    if u.size == 0:
        raise ValueError("prediction rejection needs at least one answer")
    if np.isnan(u).any() or np.isnan(q).any():
        raise ValueError("uncertainties or qualities contain NaN")
    return u, q


def _n_rejections(n: int, max_rejection: float) -> int:
    if not 0.0 < max_rejection <= 1.0:
        raise ValueError(f"max_rejection must be in (0, 1], got {max_rejection}")
    return max(1, int(max_rejection * n))


def rejection_curve(uncertainty, quality, max_rejection: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Rejected fraction k/N and the mean quality of the N − k most certain answers, for
    k = 0..K − 1 (K = ⌊max_rejection · N⌋)."""
    u, q = _arrays(uncertainty, quality)
    n = u.size
    kept = np.arange(n, 0, -1, dtype=np.float64)  # N, N−1, ..., 1 answers kept
    sums = expected_prefix_sums(-u, q)[::-1]  # sums over the most certain N, N−1, ..., 1
    k = _n_rejections(n, max_rejection)
    return (n - kept[:k]) / n, sums[:k] / kept[:k]


def rejection_area(uncertainty, quality, max_rejection: float = 1.0) -> float:
    """The mean of :func:`rejection_curve` (lm-polygraph's prediction-rejection area)."""
    return float(rejection_curve(uncertainty, quality, max_rejection)[1].mean())


def prediction_rejection_ratio(uncertainty, quality, max_rejection: float = 1.0) -> float | None:
    """PRR of ``uncertainty`` for answers of ``quality`` over rejections up to ``max_rejection``
    (see the module docstring); ``None`` when every answer has the same quality (the oracle is
    then no better than random)."""
    u, q = _arrays(uncertainty, quality)
    random = float(q.mean())
    oracle = rejection_area(-q, q, max_rejection)
    if math.isclose(oracle, random, rel_tol=0.0, abs_tol=1e-12):
        return None
    return (rejection_area(u, q, max_rejection) - random) / (oracle - random)
